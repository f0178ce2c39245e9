// The sidebar's conversations: newest first, paged ("Older conversations"), searched by title,
// renamed in place and deleted after a confirmation. The current one is marked.
import { $, api, element } from "./api.js";
import { confirmAction } from "./ui.js";

const PAGE = 30;
let shown = 0;
let query = "";
let current = null;
let navigateTo = (hash) => { location.hash = hash; };
let loading = 0;

function showError(error) { $("#chat-list-error").textContent = error ? error.message : ""; }

// The first page again (after a search, a new chat, a rename or a deletion).
export async function loadChats() {
  shown = 0;
  $("#chat-list").replaceChildren();
  await more();
}

async function more() {
  const turn = ++loading;
  const params = new URLSearchParams({ limit: String(PAGE), offset: String(shown) });
  if (query) params.set("q", query);
  let page;
  try {
    page = await api(`/api/v1/chats?${params}`);
  } catch (error) {
    showError(error);
    return;
  }
  if (turn !== loading) return;  // a newer search answered first
  showError(null);
  if (shown === 0) $("#chat-list").replaceChildren();
  for (const chat of page.items) $("#chat-list").append(chatItem(chat));
  shown += page.items.length;
  $("#more-chats").hidden = shown >= page.total;
  if (!page.total) {
    $("#chat-list").append(element("li", { class: "hint" }, query ? "No conversation matches." : "No conversations yet."));
  }
  markCurrent(current);
}

function chatTitle(chat) { return chat.title || "New chat"; }

function chatItem(chat) {
  const link = element("a", { href: `#/chat/${chat.id}`, "data-chat": String(chat.id) }, chatTitle(chat));
  const rename = element("button", {
    type: "button", class: "icon quiet", "aria-label": `Rename ${chatTitle(chat)}`, title: "Rename",
    onclick: () => startRename(item, chat),
  }, "✎");
  const remove = element("button", {
    type: "button", class: "icon quiet", "aria-label": `Delete ${chatTitle(chat)}`, title: "Delete",
    onclick: () => removeChat(chat),
  }, "✕");
  const item = element("li", {}, link, rename, remove);
  return item;
}

function startRename(item, chat) {
  const input = element("input", {
    value: chatTitle(chat), maxlength: "300", "aria-label": "New title", required: "",
  });
  let done = false;  // Enter, Escape or leaving the box ends the rename once
  const save = async () => {
    if (done) return;
    done = true;
    const title = input.value.trim();
    if (!title || title === chat.title) { item.replaceWith(chatItem(chat)); return; }
    try {
      const changed = await api(`/api/v1/chats/${chat.id}`, {
        method: "PATCH", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ title }),
      });
      showError(null);
      window.dispatchEvent(new CustomEvent("postrag:chat-renamed", { detail: changed }));
      const fresh = chatItem(changed);
      item.replaceWith(fresh);
      fresh.querySelector("a").focus();
      markCurrent(current);
    } catch (error) {
      showError(error);
      done = false;  // the box stays for another try
      input.focus();
    }
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); save(); }
    if (event.key === "Escape") {
      event.stopPropagation();
      done = true;
      const kept = chatItem(chat);
      item.replaceWith(kept);
      kept.querySelector("a").focus();
    }
  });
  input.addEventListener("blur", save);
  item.replaceChildren(input);
  input.focus();
  input.select();
}

async function removeChat(chat) {
  if (!(await confirmAction(`Delete the conversation "${chatTitle(chat)}"? This cannot be undone.`))) return;
  try {
    await api(`/api/v1/chats/${chat.id}`, { method: "DELETE" });
    showError(null);
  } catch (error) {
    showError(error);
    return;
  }
  if (current === chat.id) navigateTo("#/chat");
  await loadChats();
}

// Mark the conversation open in the main pane (null: none).
export function markCurrent(chatId) {
  current = chatId;
  for (const link of document.querySelectorAll("#chat-list a[data-chat]")) {
    if (Number(link.dataset.chat) === chatId) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

export function setUpSidebar(navigate) {
  navigateTo = navigate;
  $("#new-chat").addEventListener("click", () => navigate("#/chat"));
  $("#more-chats").addEventListener("click", more);
  let timer = null;
  $("#chat-search").addEventListener("input", (event) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      query = event.target.value.trim();
      loadChats();
    }, 250);
  });
}
