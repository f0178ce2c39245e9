// postrag's web app: plain modules, no build step, every call to the public JSON API (api.js says
// with which credentials). This module signs in and routes: `#/chat[/<id>]`, `#/knowledge[/<id>]`,
// `#/search`, `#/settings[/<tab>]`, each a view module under views/ loaded when first opened,
// mounted into #view. The sidebar (sidebar.js) lists the conversations.
import { $, TOKEN_KEY, api, token, useCsrfToken } from "./api.js";
import { loadChats, markCurrent, setUpSidebar } from "./sidebar.js";

const VIEWS = { chat: "chat", knowledge: "knowledge", search: "search", settings: "settings" };
let me = null;
let cleanup = null;
let routing = 0;  // the latest navigation: an older one that finishes late does not mount

async function signIn(candidate) {
  sessionStorage.setItem(TOKEN_KEY, candidate);
  try {
    me = await api("/api/v1/me");
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("#sign-in-error").textContent = error.status === 401 ? "That token is not valid." : error.message;
    $("#token").focus();
    return;
  }
  showApp();
}

// Signed in with the identity provider already (the cookie)? Else offer that sign-in if any.
async function resumeSession() {
  try {
    const session = await api("/auth/session");
    useCsrfToken(session.csrf_token);
    me = session;
    showApp();
    return;
  } catch (error) {
    if (error.status !== 401) $("#sign-in-error").textContent = error.message;
  }
  $("#sign-in").hidden = false;
  const config = await api("/auth/config").catch(() => ({ oidc: false }));
  $("#oidc-sign-in").hidden = !config.oidc;
  $("#oidc-or").hidden = !config.oidc;
}

function showApp() {
  $("#who").textContent = `Signed in as ${me.name}`;
  $("#sign-in").hidden = true;
  $("#app").hidden = false;
  document.body.classList.toggle("admin", me.role === "admin");
  loadChats();
  route();
}

async function signOut() {
  const signedInWithToken = Boolean(token());
  sessionStorage.clear();
  if (signedInWithToken) {
    location.reload();
    return;
  }
  try {
    const out = await api("/auth/logout", { method: "POST" });
    useCsrfToken(null);
    if (out.end_session_url) location.assign(out.end_session_url);  // the provider's sign-out
    else location.assign("/");
  } catch {
    location.assign("/");
  }
}

// The citation panel beside the conversation (a sheet at the bottom of a phone's screen).
export function openPanel(...nodes) {
  const panel = $("#citation-panel");
  panel.replaceChildren(...nodes);
  panel.hidden = false;
  $("#app").classList.add("with-panel");
}

export function closePanel() {
  const panel = $("#citation-panel");
  panel.hidden = true;
  panel.replaceChildren();
  $("#app").classList.remove("with-panel");
}

function parse(hash) {
  // Back from Atlassian's consent (`/?connected=atlassian`): the knowledge view says how it went.
  if (!hash && /[?&](connected|connect_error)=/.test(location.search)) return { name: "knowledge", params: [] };
  const [name = "chat", ...rest] = hash.replace(/^#\/?/, "").split("/");
  return VIEWS[name] ? { name, params: rest.map(decoded) } : { name: "chat", params: [] };
}

function decoded(part) {
  try { return decodeURIComponent(part); } catch { return part; }
}

// An address of the app's (`#/...`, or none); `#view` and the like are places in the page.
const isRoute = (hash) => !hash || hash.startsWith("#/");

async function route() {
  const turn = ++routing;
  const { name, params } = parse(isRoute(location.hash) ? location.hash : "");
  closeSidebar();
  if (cleanup) {
    try { cleanup(); } catch (error) { console.error(error); }
    cleanup = null;
  }
  closePanel();
  for (const link of document.querySelectorAll(".places a")) {
    if (link.dataset.place === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  markCurrent(name === "chat" ? Number(params[0]) || null : null);
  const view = $("#view");
  view.replaceChildren();
  const module = await import(`./views/${VIEWS[name]}.js`);
  if (turn !== routing) return;
  const context = { me, openPanel, closePanel, refreshChats: loadChats, navigate };
  cleanup = (await module.mount(view, params, context)) || null;
  if (turn !== routing && cleanup) cleanup();
  // Focus left in the sidebar (a link followed, a closed menu) or nowhere goes to the new view.
  const active = document.activeElement;
  if (turn === routing && (!active || active === document.body || $("#sidebar").contains(active))) {
    (view.querySelector("h1") || view).focus();
  }
}

// A request refused for its credentials once signed in: the session ended or the token was
// revoked. Back to the sign-in screen, saying so.
function signedOut() {
  if (!me) return;
  me = null;
  sessionStorage.clear();
  useCsrfToken(null);
  if (cleanup) {
    try { cleanup(); } catch (error) { console.error(error); }
    cleanup = null;
  }
  $("#app").hidden = true;
  $("#view").replaceChildren();
  $("#sign-in").hidden = false;
  resumeSession().then(() => {
    $("#sign-in-error").textContent = "Your session has ended: sign in again.";
  });
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function closeSidebar() {
  $("#sidebar").classList.remove("open");
  $("#menu").setAttribute("aria-expanded", "false");
}

function setUp() {
  $("#sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("#token").value.trim());
  });
  $("#sign-out").addEventListener("click", signOut);
  $("#menu").addEventListener("click", () => {
    const open = $("#sidebar").classList.toggle("open");
    $("#menu").setAttribute("aria-expanded", String(open));
    if (open) $("#new-chat").focus();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if ($("#sidebar").classList.contains("open")) { closeSidebar(); $("#menu").focus(); }
    else if (!$("#citation-panel").hidden) closePanel();
  });
  setUpSidebar(navigate);
  window.addEventListener("hashchange", () => { if (me && isRoute(location.hash)) route(); });
  window.addEventListener("postrag:unauthorized", signedOut);
  document.querySelector(".skip-link").addEventListener("click", (event) => {
    event.preventDefault();  // not an address: the view stays
    ($("#view h1") || $("#view")).focus();
  });
  if (token()) signIn(token());
  else resumeSession();
}

setUp();
