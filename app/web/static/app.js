// postrag's web page: plain modules, no build step. Every call goes to the public JSON API
// (api.js says with which credentials); chat.js holds the Chat section, sources.js the Sources one.
import { $, TOKEN_KEY, api, element, report, token, useCsrfToken } from "./api.js";
import { forgetChat, loadChats, reopenChat, setUpChat } from "./chat.js";
import { setUpSources, showSources, startSources } from "./sources.js";

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
  forgetChat();
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
  setUpChat(() => (currentCollection ? [currentCollection.id] : null));
  $("#preferences-form").addEventListener("submit", savePreferences);
  setUpSources(loadDocuments);
  if (token()) signIn(token());
  else resumeSession();
}

setUp();
