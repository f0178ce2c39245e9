// The Chat section: the user's chats, a conversation whose answers stream in (with their
// citations, and their MCP tool calls and questions: tools.js) and resume after a drop
// (answers.js), and the servers and slash commands of the chat (servers.js).
import { $, api, authHeaders, element, report } from "./api.js";
import { answerEvents } from "./answers.js";
import { chosenServers, setUpServers, showServers } from "./servers.js";
import { TOOL_EVENTS, showQuestion, showStoredCalls, showToolEvent } from "./tools.js";

const CHAT_KEY = "postrag.chat";
let currentChat = null;
let view = 0;  // changes whenever another chat (or none) is shown: streams of the last one stop
const passages = new Map();  // chunk id -> text, from the retrieval events of live answers
let collectionIds = () => null;

export async function loadChats() {
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

export async function reopenChat() {
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
    const item = $(`#messages li[data-message="${question.message_id}"]`) ??
      $("#messages li.assistant:last-child");  // its answer is older than the page shown
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
        try {
          showToolEvent(item, chatId, name, data);
        } catch (error) {  // what a server sent cannot end the answer shown: it goes on
          console.error(`could not show a ${name} event`, error);
        }
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
      const body = collectionIds() ? { collection_ids: collectionIds() } : {};
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

// The chat's controls; `scope` gives the collection ids a new chat searches (null: all).
export function setUpChat(scope) {
  collectionIds = scope;
  $("#ask-form").addEventListener("submit", ask);
  $("#new-chat").addEventListener("click", () => {
    newChat().catch((error) => report(error, "#chat-error"));
    $("#question").focus();
  });
  $("#passage-close").addEventListener("click", () => {
    $("#passage").hidden = true;
    openedFrom?.focus();  // back to the citation that opened it
  });
  setUpServers();
}

// Signing out: the next sign-in in this tab opens no chat.
export function forgetChat() { sessionStorage.removeItem(CHAT_KEY); }
