// postrag's web page: plain modules, no build step. Every call goes to the public JSON API
// with the token the user pasted (kept in sessionStorage, this tab only).
const TOKEN_KEY = "postrag.token";
const $ = (selector) => document.querySelector(selector);
let currentCollection = null;
let pollTimer = null;

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${token()}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 204) return null;
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const error = new Error(body?.detail || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

async function signIn(candidate) {
  sessionStorage.setItem(TOKEN_KEY, candidate);
  try {
    const me = await api("/api/v1/me");
    $("#who").textContent = `Signed in as ${me.name}`;
    $("#sign-in").hidden = true;
    $("#app").hidden = false;
    $("#sign-out").hidden = false;
    await Promise.all([loadCollections(), loadChats(), loadPreferences()]);
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("#sign-in-error").textContent = error.status === 401 ? "That token is not valid." : error.message;
  }
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
}

async function loadCollections() {
  const page = await api("/api/v1/collections?limit=100");
  const list = $("#collections");
  list.replaceChildren(...page.items.map((c) => element("li", {},
    element("button", { type: "button", "aria-current": String(c.id === currentCollection?.id),
      onclick: () => choose(c) }, c.name),
    " ",
    element("button", { type: "button", "aria-label": `Delete collection ${c.name}`,
      onclick: () => removeCollection(c) }, "Delete"))));
  if (!currentCollection && page.items.length) await choose(page.items[0]);
}

async function choose(collection) {
  currentCollection = collection;
  $("#current-collection").textContent = `in ${collection.name}`;
  await loadCollections();
  await loadDocuments();
}

async function removeCollection(collection) {
  if (!confirm(`Delete ${collection.name} with all its documents?`)) return;
  await api(`/api/v1/collections/${collection.id}`, { method: "DELETE" });
  if (currentCollection?.id === collection.id) currentCollection = null;
  await loadCollections();
  await loadDocuments();
}

async function loadDocuments() {
  clearTimeout(pollTimer);
  const body = $("#documents tbody");
  if (!currentCollection) { body.replaceChildren(); return; }
  const page = await api(`/api/v1/documents?collection_id=${currentCollection.id}&limit=100`);
  body.replaceChildren(...page.items.map((d) => element("tr", { "data-document": d.id },
    element("td", {}, d.filename),
    element("td", { class: `status-${d.status}` }, d.status),
    element("td", {}, d.error || ""),
    element("td", {},
      element("button", { type: "button", "aria-label": `Reindex ${d.filename}`,
        onclick: () => act(`/api/v1/documents/${d.id}/reindex`, "POST") }, "Reindex"),
      " ",
      element("button", { type: "button", "aria-label": `Delete ${d.filename}`,
        onclick: () => act(`/api/v1/documents/${d.id}`, "DELETE") }, "Delete")))));
  // Live status: poll while anything is still being processed.
  if (page.items.some((d) => !["indexed", "failed"].includes(d.status))) {
    pollTimer = setTimeout(loadDocuments, 1000);
  }
}

async function act(path, method) {
  try { await api(path, { method }); } catch (error) { $("#upload-error").textContent = error.message; }
  await loadDocuments();
}

async function upload(files) {
  $("#upload-error").textContent = "";
  if (!currentCollection) { $("#upload-error").textContent = "Create or choose a collection first."; return; }
  for (const file of files) {
    const form = new FormData();
    form.append("collection_id", String(currentCollection.id));
    form.append("file", file, file.name);
    try {
      await api("/api/v1/documents", { method: "POST", body: form });
    } catch (error) {
      $("#upload-error").textContent = `${file.name}: ${error.message}`;
    }
  }
  await loadDocuments();
}

function highlighted(text, query) {
  const words = query.toLowerCase().split(/\W+/).filter((w) => w.length > 2);
  const node = element("span");
  for (const part of text.split(/(\W+)/)) {
    node.append(words.some((w) => part.toLowerCase().startsWith(w)) ? element("mark", {}, part) : part);
  }
  return node;
}

async function search(event) {
  event.preventDefault();
  $("#search-error").textContent = "";
  const query = $("#query").value;
  const body = { query, mode: $("#mode").value };
  if (currentCollection) body.collection_ids = [currentCollection.id];
  if ($("#filter").value.trim()) {
    try { body.filter = JSON.parse($("#filter").value); } catch { $("#search-error").textContent = "The filter is not JSON."; return; }
  }
  try {
    const result = await api("/api/v1/search", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    $("#hits").replaceChildren(...result.hits.map((h) => element("li", { class: "hit" },
      element("strong", {}, h.filename), h.page ? ` (page ${h.page})` : "", ": ",
      highlighted(h.text, query))));
    if (!result.hits.length) $("#hits").replaceChildren(element("li", {}, "No hits."));
  } catch (error) {
    $("#search-error").textContent = error.message;
  }
}

// ------------------------------------------------------------------ chat

let currentChat = null;

async function loadChats() {
  const page = await api("/api/v1/chats?limit=100");
  $("#chats").replaceChildren(...page.items.map((c) => element("li", {},
    element("button", { type: "button", "aria-current": String(c.id === currentChat),
      onclick: () => openChat(c.id) }, c.title || `Chat ${c.id}`))));
}

async function openChat(id) {
  currentChat = id;
  const chat = await api(`/api/v1/chats/${id}`);
  $("#messages").replaceChildren(...chat.messages.items.map((m) => messageItem(m.role, m.content, m.citations || [])));
  await loadChats();
}

function messageItem(role, text, citations) {
  const item = element("li", { class: role });
  item.append(element("span", { class: "visually-hidden" }, role === "user" ? "You: " : "Answer: "));
  item.append(withCitations(text, citations));
  return item;
}

// "[2]" in an answer becomes a link that opens the cited passage.
function withCitations(text, citations) {
  const node = element("span", { class: "text" });
  for (const part of text.split(/(\[\d+\])/)) {
    const n = part.match(/^\[(\d+)\]$/)?.[1];
    const cited = n && citations.find((c) => c.n === Number(n));
    node.append(cited ? element("a", { href: "#passage", class: "citation",
      "aria-label": `source ${n}: ${cited.filename}`, onclick: (e) => { e.preventDefault(); showPassage(cited); } }, part) : part);
  }
  return node;
}

async function showPassage(citation) {
  const chunk = await api(`/api/v1/documents/${citation.document_id}/chunks?limit=100`);
  const found = chunk.items.find((c) => c.id === citation.chunk_id);
  $("#passage-title").textContent = `[${citation.n}] ${citation.filename}${citation.page ? `, page ${citation.page}` : ""}`;
  $("#passage-text").textContent = found ? found.text : "(the passage is no longer there)";
  $("#passage").hidden = false;
  $("#passage-close").focus();
}

// The answer streams as server-sent events; fetch (not EventSource) so the token goes in a header.
async function ask(event) {
  event.preventDefault();
  $("#chat-error").textContent = "";
  const question = $("#question").value;
  if (!currentChat) {
    const body = currentCollection ? { collection_ids: [currentCollection.id] } : {};
    currentChat = (await api("/api/v1/chats", { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })).id;
  }
  $("#question").value = "";
  $("#messages").append(messageItem("user", question, []));
  const answer = messageItem("assistant", "", []);
  $("#messages").append(answer);
  const response = await fetch(`/api/v1/chats/${currentChat}/messages`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify({ content: question }),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    $("#chat-error").textContent = problem.detail || `${response.status} ${response.statusText}`;
    answer.remove();
    return;
  }
  let text = "";
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const raw = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const name = raw.match(/^event: (.*)$/m)?.[1] || "message";
      const data = JSON.parse(raw.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n") || "{}");
      if (name === "delta") {
        text += data.text;
        answer.querySelector(".text").textContent = text;
      } else if (name === "done") {
        answer.querySelector(".text").replaceWith(withCitations(text, data.citations || []));
        answer.dataset.status = data.status;
      } else if (name === "error") {
        $("#chat-error").textContent = data.detail || "the answer failed";
      }
    }
  }
  await loadChats();
}

// ------------------------------------------------------------------ preferences

async function loadPreferences() {
  const [prefs, models] = await Promise.all([
    api("/api/v1/me/preferences"), api("/api/v1/models?kind=chat&limit=100"),
  ]);
  $("#pref-model").replaceChildren(element("option", { value: "" }, "postrag's default"),
    ...models.items.map((m) => element("option", { value: String(m.id) }, `${m.name} (${m.provider})`)));
  $("#pref-model").value = prefs.chat_model_id == null ? "" : String(prefs.chat_model_id);
  $("#pref-mode").value = prefs.search_mode;
  $("#pref-top-k").value = prefs.top_k;
  $("#pref-temperature").value = prefs.temperature;
  $("#pref-system").value = prefs.system_prompt;
}

async function savePreferences(event) {
  event.preventDefault();
  const body = {
    chat_model_id: $("#pref-model").value ? Number($("#pref-model").value) : null,
    search_mode: $("#pref-mode").value,
    top_k: Number($("#pref-top-k").value),
    temperature: Number($("#pref-temperature").value),
    system_prompt: $("#pref-system").value,
  };
  try {
    await api("/api/v1/me/preferences", { method: "PATCH",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    $("#preferences-status").textContent = "Saved.";
  } catch (error) {
    $("#preferences-status").textContent = error.message;
  }
}

function setUp() {
  $("#sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("#token").value.trim());
  });
  $("#sign-out").addEventListener("click", signOut);
  $("#new-collection").addEventListener("submit", async (event) => {
    event.preventDefault();
    const created = await api("/api/v1/collections", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: $("#collection-name").value }),
    });
    $("#collection-name").value = "";
    await choose(created);
  });
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    upload([...event.dataTransfer.files]);
  });
  drop.addEventListener("keydown", (event) => {  // keyboard users open the file chooser
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("#files").click(); }
  });
  $("#files").addEventListener("change", (event) => upload([...event.target.files]));
  $("#search-form").addEventListener("submit", search);
  $("#ask-form").addEventListener("submit", ask);
  $("#new-chat").addEventListener("click", () => { currentChat = null; $("#messages").replaceChildren(); $("#question").focus(); });
  $("#passage-close").addEventListener("click", () => { $("#passage").hidden = true; });
  $("#preferences-form").addEventListener("submit", savePreferences);
  if (token()) signIn(token());
}

setUp();
