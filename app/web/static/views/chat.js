// The conversation view: `#/chat` (a new chat, created by its first message) and `#/chat/<id>`.
// Its header holds the title, the model, the collections and the tools the chat uses
// (chat/options.js, chat/servers.js); answers stream in (chat/answers.js resumes a cut stream)
// and render as Markdown with citation chips (chat/messages.js); the composer sends, or stops the
// answer being written. A page opened mid-answer follows the answer to its end.
import { api, element } from "../api.js";
import { markCurrent } from "../sidebar.js";
import { errorBox, heading } from "../ui.js";
import { composer } from "./chat/composer.js";
import {
  addActions, addRating, copyAction, editInPlace, messageItem, newItem,
} from "./chat/messages.js";
import { collectionPicker, modelPicker } from "./chat/options.js";
import { serverPicker } from "./chat/servers.js";
import { ask, followStream, showQuestions } from "./chat/stream.js";

const SHOWN = 100;  // the newest messages shown

export async function mount(container, params, context) {
  const state = { chatId: Number(params[0]) || null, alive: true, messages: [] };
  const holder = { chatId: () => state.chatId };
  const title = heading(1, "New chat", { id: "chat-title" });
  const renamed = (event) => {  // renamed in the sidebar
    if (!state.alive) window.removeEventListener("postrag:chat-renamed", renamed);
    else if (event.detail.id === state.chatId) title.textContent = event.detail.title || "New chat";
  };
  window.addEventListener("postrag:chat-renamed", renamed);
  const optionsRow = element("div", { class: "chat-options" });
  const optionErrors = errorBox(element("div"), "chat-options-error");
  const list = element("ol", { id: "messages", class: "messages", "aria-label": "Conversation" });
  const empty = element("p", { class: "hint chat-empty" },
    "Ask a question about your documents. Answers cite their sources.");
  const write = composer({ send: (text) => send(text), stop: () => stop() });
  const tools = serverPicker(holder, optionErrors, write.question);
  const model = modelPicker(holder, optionErrors);
  const scope = collectionPicker(holder, optionErrors);
  optionsRow.append(model.node, scope.node, tools.node);
  container.append(element("section", { class: "chat" },
    element("header", { class: "chat-header" }, title, optionsRow, optionErrors.node),
    element("div", { class: "chat-scroll" }, empty, list), write.node));
  write.enableEnter();  // after the slash commands' keys, which come first

  const busy = (yes) => {
    write.busy(yes);
    list.setAttribute("aria-busy", String(yes));
  };

  // The chat as stored: its newest messages, the buttons of the last ones, its options.
  async function load(follow = true) {
    let chat = await api(`/api/v1/chats/${state.chatId}?limit=${SHOWN}`);
    if (chat.messages.total > chat.messages.items.length) {
      const offset = chat.messages.total - SHOWN;
      chat = await api(`/api/v1/chats/${state.chatId}?limit=${SHOWN}&offset=${offset}`);
    }
    if (!state.alive) return;
    title.textContent = chat.title || "New chat";
    state.messages = chat.messages.items;
    list.replaceChildren(...state.messages.map((m) => messageItem(m, context)));
    empty.hidden = state.messages.length > 0;
    showActions();
    showQuestions(list, state.chatId, chat.questions || []);
    const last = state.messages.at(-1);
    if (follow && last?.role === "assistant" && last.status === "streaming") {
      followAnswer(list.lastElementChild, null, last.id);
    }
    return chat;
  }

  function showActions() {
    const lastUser = state.messages.findLast((m) => m.role === "user");
    const streaming = state.messages.at(-1)?.status === "streaming";  // no resend meanwhile
    for (const [i, message] of state.messages.entries()) {
      const item = list.children[i];
      const actions = [];
      if (message.role === "assistant") {
        actions.push(copyAction(message));
        if (i === state.messages.length - 1 && lastUser && !streaming) {
          actions.push({ label: "Regenerate", aria: "Regenerate answer",
            run: () => resend(lastUser, lastUser.content) });
        }
      } else if (message === lastUser && !streaming) {
        actions.push({ label: "Edit", aria: "Edit question",
          run: () => editInPlace(item, message, (text) => resend(message, text)) });
      }
      addActions(item, actions);
      if (message.role === "assistant" && message.status === "complete") {
        addRating(item, state.chatId, message);
      }
    }
  }

  // The answer in `item` until it ends (`response`: the POST's stream; null: follow answer
  // `messageId`), then the chat as stored.
  async function followAnswer(item, response, messageId = null) {
    busy(true);
    await followStream(item, state.chatId, response, messageId, {
      context, alive: () => state.alive, status: write.status, error: (e) => write.errors.show(e),
    });
    if (!state.alive) return;
    busy(false);
    await load(false).catch((error) => write.errors.show(error));
  }

  // A new chat is created with what its header says, then shown at its address (no reload).
  async function create() {
    const body = { ...model.creation(), ...scope.creation(), ...tools.creation() };
    const chat = await api("/api/v1/chats", { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    state.chatId = chat.id;
    history.replaceState(null, "", `#/chat/${chat.id}`);
    markCurrent(chat.id);
  }

  async function send(text) {
    write.errors.clear();
    busy(true);
    try {
      const created = !state.chatId;
      if (created) await create();
      const response = await ask(state.chatId, text);
      write.clear();
      empty.hidden = true;
      const asked = newItem("user", "complete");
      asked.querySelector(".text").textContent = text;
      const answer = newItem("assistant");
      list.append(asked, answer);
      if (created) context.refreshChats();
      await followAnswer(answer, response);
    } catch (error) {
      // A regenerate or an edit removed the old exchange first: its text comes back to the box.
      if (!write.question.value.trim()) write.question.value = text;
      write.errors.show(error);
      busy(false);
    }
  }

  // Regenerate (the same text) or edit and resend: the question and what followed go first.
  async function resend(question, text) {
    write.errors.clear();
    try {
      await api(`/api/v1/chats/${state.chatId}/messages/${question.id}`, { method: "DELETE" });
    } catch (error) {
      write.errors.show(error);
      return;
    }
    const at = state.messages.indexOf(question);
    state.messages = state.messages.slice(0, at);
    while (list.children.length > at) list.lastElementChild.remove();
    await send(text);
  }

  async function stop() {
    write.errors.clear();
    try {
      await api(`/api/v1/chats/${state.chatId}/stop`, { method: "POST" });
    } catch (error) {
      write.errors.show(error);
    }
  }

  let chat = null;
  if (state.chatId) chat = await load().catch((error) => { write.errors.show(error); });
  if (state.chatId && !chat) return () => { state.alive = false; };
  Promise.all([model.load(chat), scope.load(chat), tools.load(chat)])
    .catch((error) => optionErrors.show(error));
  if (!state.chatId) write.question.focus();
  return () => { state.alive = false; };
}
