// postrag's web page: plain modules, no build step. Every call goes to the public JSON API
// (api.js says with which credentials); sources.js holds the Sources section.
import { $, TOKEN_KEY, api, authHeaders, element, report, token, useCsrfToken } from "./api.js";
import { answerEvents } from "./answers.js";
import { chosenServers, setUpServers, showServers } from "./servers.js";
import { setUpSources, showSources, startSources } from "./sources.js";
import { TOOL_EVENTS, showQuestion, showStoredCalls, showToolEvent } from "./tools.js";

let currentCollection = null;
let pollTimer = null;

async function signIn(candidate) {
  sessionStorage.setItem(TOKEN_KEY, candidate);
  let me;
  try {
    me = await api("/api/v1/me");
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("#sign-in-error").textContent = error.status === 401 ? "That token is not valid." : error.message;
    return;
  }
  showApp(me);
}

// Signed in with the identity provider already (the cookie)? Else offer that sign-in if any.
async function resumeSession() {
  try {
    const session = await api("/auth/session");
    useCsrfToken(session.csrf_token);
    showApp(session);
    return;
  } catch (error) {
    if (error.status !== 401) $("#sign-in-error").textContent = error.message;
  }
  const config = await api("/auth/config").catch(() => ({ oidc: false }));
  $("#oidc-sign-in").hidden = !config.oidc;
}

function showApp(me) {
  $("#who").textContent = `Signed in as ${me.name}`;
  $("#sign-in").hidden = true;
  $("#app").hidden = false;
  $("#sign-out").hidden = false;
  $("#who").focus();
  for (const load of [loadCollections, loadChats, reopenChat, loadPreferences, startSources]) {
    load().catch((error) => report(error));
  }
}

async function signOut() {
  sessionStorage.removeItem(CHAT_KEY);
  if (token()) {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
    return;
  }
  try {
    const out = await api("/auth/logout", { method: "POST" });
    useCsrfToken(null);
    if (out.end_session_url) location.assign(out.end_session_url);  // the provider's sign-out
    else location.reload();
  } catch (error) {
    report(error);
  }
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
  await showSources(collection);
}

async function removeCollection(collection) {
  if (!confirm(`Delete ${collection.name} with all its documents?`)) return;
  try {
    await api(`/api/v1/collections/${collection.id}`, { method: "DELETE" });
    if (currentCollection?.id === collection.id) currentCollection = null;
    await loadCollections();
    await loadDocuments();
    if (!currentCollection) await showSources(null);
  } catch (error) {
    report(error);
  }
}

async function loadDocuments() {
  clearTimeout(pollTimer);
  const body = $("#documents tbody");
  if (!currentCollection) { body.replaceChildren(); return; }
  const shown = currentCollection.id;
  let page;
  try {
    page = await api(`/api/v1/documents?collection_id=${shown}&limit=100`);
  } catch (error) {
    report(error);
    pollTimer = setTimeout(loadDocuments, 3000);  // keep watching: the server may be back soon
    return;
  }
  if (currentCollection?.id !== shown) return;  // another collection was chosen meanwhile
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
  const failed = [];
  for (const file of files) {
    const form = new FormData();
    form.append("collection_id", String(currentCollection.id));
    form.append("file", file, file.name);
    try {
      await api("/api/v1/documents", { method: "POST", body: form });
    } catch (error) {
      failed.push(`${file.name}: ${error.message}`);
    }
  }
  $("#upload-error").textContent = failed.join("\n");
  await loadDocuments();
}

function highlighted(text, query) {
  const words = query.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 2);
  const node = element("span");
  for (const part of text.split(/([^\p{L}\p{N}]+)/u)) {
    node.append(words.some((w) => part.toLowerCase().startsWith(w)) ? element("mark", {}, part) : part);
  }
  return node;
}

async function search(event) {
  event.preventDefault();
  $("#search-error").textContent = "";
  const query = $("#query").value;
  const body = { query };
  if ($("#mode").value) body.mode = $("#mode").value;  // empty: the user's saved default
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
    if (result.warnings?.length) $("#search-error").textContent = result.warnings.join(" ");
  } catch (error) {
    $("#search-error").textContent = error.message;
  }
}

// ------------------------------------------------------------------ chat

const CHAT_KEY = "postrag.chat";
let currentChat = null;
let view = 0;  // changes whenever another chat (or none) is shown: streams of the last one stop
const passages = new Map();  // chunk id -> text, from the retrieval events of live answers

async function loadChats() {
  const page = await api("/api/v1/chats?limit=100");
  $("#chats").replaceChildren(...page.items.map((c) => element("li", {},
    element("button", { type: "button", "aria-current": String(c.id === currentChat),
      onclick: () => openChat(c.id).catch((error) => report(error, "#chat-error")) },
      c.title || `Chat ${c.id}`))));
}

// The chat shown, remembered for this tab: a reload opens it again.
function showChat(id) {
  currentChat = id;
  view += 1;
  if (id) sessionStorage.setItem(CHAT_KEY, String(id));
  else sessionStorage.removeItem(CHAT_KEY);
  busy(false);
}

function busy(yes) {
  $("#ask-form button").disabled = yes;
  $("#messages").setAttribute("aria-busy", String(yes));
}

// No chat shown: the next question starts one.
async function newChat() {
  showChat(null);
  $("#messages").replaceChildren();
  await showServers(null);
}

async function reopenChat() {
  const id = Number(sessionStorage.getItem(CHAT_KEY));
  if (id) await openChat(id).catch(newChat);  // deleted meanwhile
  else await newChat();
}

// An answer still being generated (the page was reloaded, or the chat opened meanwhile) is
// followed from its first event, unless `follow` is false (it was just followed).
async function openChat(id, follow = true) {
  showChat(id);
  let chat = await api(`/api/v1/chats/${id}?limit=100`);
  if (chat.messages.total > chat.messages.items.length) {  // the newest 100
    chat = await api(`/api/v1/chats/${id}?limit=100&offset=${chat.messages.total - 100}`);
  }
  $("#messages").replaceChildren(...chat.messages.items.map((m) => {
    const item = messageItem(m.role, m.content, m.citations || []);
    item.dataset.message = String(m.id);
    showStoredCalls(item, m.tool_calls || []);
    if (m.error) item.append(element("p", { class: "error" }, m.error));
    return item;
  }));
  for (const question of chat.questions || []) {  // waiting for you: under their answer
    const item = $(`#messages li[data-message="${question.message_id}"]`);
    if (item) showQuestion(item, id, question);
  }
  await Promise.all([loadChats(), showServers(chat)]);
  const last = chat.messages.items.at(-1);
  if (follow && last?.role === "assistant" && last.status === "streaming") {
    showAnswer($("#messages li.assistant:last-child"), id, null, last.id)
      .catch((error) => report(error, "#chat-error"));
  }
}

function messageItem(role, text, citations) {
  const item = element("li", { class: role });
  item.append(element("span", { class: "visually-hidden" }, role === "user" ? "You: " : "Answer: "));
  item.append(withCitations(text, citations));
  return item;
}

// "[2]" and "[1, 3]" in an answer: each number becomes a link that opens the cited passage.
function withCitations(text, citations) {
  const node = element("span", { class: "text" });
  for (const part of text.split(/(\[\d{1,3}(?:\s*,\s*\d{1,3})*\])/)) {
    const numbers = /^\[[\d,\s]+\]$/.test(part) ? part.slice(1, -1).split(",").map(Number) : [];
    const cited = numbers.map((n) => citations.find((c) => c.n === n));
    if (!numbers.length || cited.some((c) => !c)) { node.append(part); continue; }
    node.append("[");
    cited.forEach((c, i) => {
      if (i) node.append(", ");
      node.append(element("a", { href: "#passage", class: "citation",
        "aria-label": `[${c.n}] source: ${c.filename}`,
        onclick: (event) => { event.preventDefault(); showPassage(c, event.target); } }, String(c.n)));
    });
    node.append("]");
  }
  return node;
}

async function chunkText(citation) {
  if (passages.has(citation.chunk_id)) return passages.get(citation.chunk_id);
  for (let offset = 0; ; offset += 100) {
    const page = await api(`/api/v1/documents/${citation.document_id}/chunks?limit=100&offset=${offset}`);
    const found = page.items.find((c) => c.id === citation.chunk_id);
    if (found) return found.text;
    if (offset + 100 >= page.total) return null;
  }
}

let openedFrom = null;

async function showPassage(citation, link) {
  openedFrom = link;
  let text;
  try { text = await chunkText(citation); } catch (error) { report(error, "#chat-error"); return; }
  $("#passage-title").textContent = `[${citation.n}] ${citation.filename}${citation.page ? `, page ${citation.page}` : ""}`;
  $("#passage-text").textContent = text ?? "(the passage is no longer there)";
  $("#passage").hidden = false;
  $("#passage-close").focus();
}

// An answer's events shown in its list item as they come; its final status, or null when
// another chat was shown meanwhile (the answer goes on without the page).
async function streamInto(item, chatId, response, messageId, shown) {
  const onStatus = (text) => { $("#chat-status").textContent = text; };
  let text = "";
  try {
    for await (const { name, data } of answerEvents(chatId, response, { messageId, onStatus })) {
      if (view !== shown) return null;
      if (name === "retrieval") {
        for (const source of data.sources || []) passages.set(source.chunk_id, source.text);
      } else if (name === "delta") {
        text += data.text;
        item.querySelector(".text").textContent = text;
      } else if (TOOL_EVENTS.includes(name)) {
        showToolEvent(item, chatId, name, data);
      } else if (name === "done") {
        return data.status;
      } else if (name === "error") {
        report(new Error(data.detail || "the answer failed"), "#chat-error");
      }
    }
    return null;
  } catch (error) {
    report(error, "#chat-error");
    return null;
  } finally {
    onStatus("");
  }
}

// The answer of `chatId` in its list item until it ends, then as stored (the server may have
// held back or set apart a last piece of the text).
async function showAnswer(item, chatId, response, messageId = null) {
  const shown = view;
  busy(true);
  const status = await streamInto(item, chatId, response, messageId, shown);
  if (view !== shown) return;
  busy(false);
  await openChat(chatId, false);
  if (status) $("#messages li.assistant:last-child").dataset.status = status;
}

async function ask(event) {
  event.preventDefault();
  $("#chat-error").textContent = "";
  const question = $("#question").value;
  busy(true);
  try {
    if (!currentChat) {
      const body = currentCollection ? { collection_ids: [currentCollection.id] } : {};
      if (chosenServers()) body.mcp_server_ids = chosenServers();
      showChat((await api("/api/v1/chats", { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })).id);
      busy(true);
    }
    const response = await fetch(`/api/v1/chats/${currentChat}/messages`, {
      method: "POST",
      headers: { ...authHeaders("POST"), "Content-Type": "application/json", Accept: "text/event-stream" },
      credentials: "same-origin",
      body: JSON.stringify({ content: question }),
    });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new Error(problem.detail || `${response.status} ${response.statusText}`);
    }
    $("#question").value = "";
    $("#messages").append(messageItem("user", question, []));
    const answer = messageItem("assistant", "", []);
    $("#messages").append(answer);
    await showAnswer(answer, currentChat, response);
  } catch (error) {
    report(error, "#chat-error");
    busy(false);
  }
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
    system_prompt: $("#pref-system").value,
  };
  // Empty number fields are left as they are rather than sent as 0.
  if ($("#pref-top-k").value !== "") body.top_k = Number($("#pref-top-k").value);
  if ($("#pref-temperature").value !== "") body.temperature = Number($("#pref-temperature").value);
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
    $("#app-error").textContent = "";
    try {
      const created = await api("/api/v1/collections", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: $("#collection-name").value }),
      });
      $("#collection-name").value = "";
      await choose(created);
    } catch (error) {
      report(error);
    }
  });
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    upload([...event.dataTransfer.files]);
  });
  $("#files").addEventListener("change", (event) => upload([...event.target.files]));
  $("#search-form").addEventListener("submit", search);
  $("#ask-form").addEventListener("submit", ask);
  $("#new-chat").addEventListener("click", () => {
    newChat().catch((error) => report(error, "#chat-error"));
    $("#question").focus();
  });
  $("#passage-close").addEventListener("click", () => {
    $("#passage").hidden = true;
    openedFrom?.focus();  // back to the citation that opened it
  });
  $("#preferences-form").addEventListener("submit", savePreferences);
  setUpSources(loadDocuments);
  setUpServers();
  if (token()) signIn(token());
  else resumeSession();
}

setUp();
