// A conversation's messages as list items: your questions as plain text, answers as Markdown with
// their citation chips, reasoning, tool calls and error; and the buttons under them (copy an
// answer, regenerate the last one, edit and resend the last question, rate an answer).
import { api, element } from "../../api.js";
import { attempt, errorBox } from "../../ui.js";
import { chips } from "./citations.js";
import { copyText, renderMarkdown } from "./markdown.js";
import { showStoredCalls } from "./tools.js";

// The answer `text` rendered into the item's .text, its [n] markers as chips of `citations`.
export function renderAnswer(item, text, citations, context) {
  const cite = (numbers) => chips(numbers, citations, context);
  item.querySelector(".text").replaceChildren(...renderMarkdown(text, cite));
}

// The reasoning shown folded above the answer (the model's <think> text).
export function showReasoning(item, text) {
  let found = item.querySelector(".reasoning");
  if (!text) return;
  if (!found) {
    found = element("details", { class: "reasoning" }, element("summary", {}, "Reasoning"),
      element("div", { class: "reasoning-text" }));
    item.insertBefore(found, item.querySelector(".tools") ?? item.querySelector(".text"));
  }
  found.querySelector(".reasoning-text").textContent = text;
}

// An empty item for `role`; the answer's being generated until it is shown as stored.
export function newItem(role, status = "streaming") {
  return element("li", { class: `message ${role}`, "data-status": status },
    element("span", { class: "visually-hidden" }, role === "user" ? "You asked: " : "Answer: "),
    element("div", { class: "text" }));
}

// A stored message as an item.
export function messageItem(message, context) {
  const item = newItem(message.role, message.status);
  item.dataset.message = String(message.id);
  if (message.role === "user") {
    item.querySelector(".text").textContent = message.content;
    return item;
  }
  showReasoning(item, message.reasoning);
  showStoredCalls(item, message.tool_calls || []);
  renderAnswer(item, message.content, message.citations || [], context);
  if (message.finish_reason === "stopped") {
    item.append(element("p", { class: "hint" }, "Stopped."));
  }
  if (message.error) item.append(element("p", { class: "error" }, message.error));
  return item;
}

// The buttons under an item: `actions` maps a label to what it does ({label, aria, run}).
export function addActions(item, actions) {
  item.querySelector(".message-actions")?.remove();
  if (!actions.length) return;
  item.append(element("div", { class: "message-actions" }, ...actions.map(({ label, aria, run }) => {
    const button = element("button", { type: "button", class: "quiet", "aria-label": aria }, label);
    button.addEventListener("click", () => run(button));
    return button;
  })));
}

// Thumbs up and down after a complete answer's buttons, pressed as the answer is rated: pressing
// one rates it so (a candidate judgment for evaluation sets), pressing the pressed one again
// removes the rating.
const RATINGS = [["up", "\u{1F44D}", "Good answer"], ["down", "\u{1F44E}", "Bad answer"]];

export function addRating(item, chatId, message) {
  const url = `/api/v1/chats/${chatId}/messages/${message.id}/feedback`;
  item.querySelector(".rating-error")?.remove();
  const errors = errorBox(item);
  errors.node.classList.add("rating-error");
  const buttons = RATINGS.map(([rating, label, aria]) => {
    const button = element("button", { type: "button", class: "quiet rate", "aria-label": aria,
      "aria-pressed": String(message.feedback?.rating === rating) }, label);
    button.addEventListener("click", () => rate(rating));
    return button;
  });
  async function rate(rating) {
    const removing = message.feedback?.rating === rating;
    const stored = await attempt(errors, () => (removing
      ? api(url, { method: "DELETE" })
      : api(url, { method: "PUT", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ rating }) })));
    if (stored === undefined) return;  // refused: shown, the buttons stay as they were
    message.feedback = stored;
    for (const [i, [value]] of RATINGS.entries()) {
      buttons[i].setAttribute("aria-pressed", String(stored?.rating === value));
    }
  }
  item.querySelector(".message-actions").append(element("span",
    { class: "rating", role: "group", "aria-label": "Rate this answer" }, ...buttons));
}

export function copyAction(message) {
  return { label: "Copy", aria: "Copy answer", run: (button) => copyText(message.content, button) };
}

// The last question's text as an editor in its item: `send(text)` resends it, Cancel puts it back.
export function editInPlace(item, message, send) {
  const text = item.querySelector(".text");
  const editor = element("textarea", { id: "edit-question", rows: "3", maxlength: "100000" });
  editor.value = message.content;
  const cancel = () => {
    form.remove();
    text.hidden = false;
    item.querySelector(".message-actions").hidden = false;
    item.querySelector(".message-actions button[aria-label='Edit question']")?.focus();
  };
  const form = element("form", { class: "edit-question" },
    element("label", { for: "edit-question" }, "Edit your question"), editor,
    element("div", { class: "row" },
      element("button", { type: "submit", class: "primary" }, "Send edited question"),
      element("button", { type: "button", class: "quiet", onclick: cancel }, "Cancel")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (editor.value.trim()) send(editor.value);
  });
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.stopPropagation(); cancel(); }
  });
  text.hidden = true;
  item.querySelector(".message-actions").hidden = true;
  item.append(form);
  editor.focus();
}
