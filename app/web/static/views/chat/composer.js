// The composer: a question box that grows with its text (Enter sends, Shift+Enter starts a new
// line), Send, or Stop while an answer is being written (the box is disabled meanwhile), the
// stream's status and the errors of sending, shown here and cleared by the next success.
import { element } from "../../api.js";
import { errorBox } from "../../ui.js";

export function composer({ send, stop }) {
  const question = element("textarea", { id: "question", rows: "1", maxlength: "100000",
    placeholder: "Ask about your documents", autocomplete: "off" });
  const sendButton = element("button", { type: "submit", class: "primary" }, "Send");
  const stopButton = element("button", { type: "button", class: "danger", hidden: "",
    onclick: stop }, "Stop");
  const status = element("p", { id: "chat-status", class: "hint", "aria-live": "polite" });
  const form = element("form", { class: "composer", "aria-label": "Ask" },
    element("label", { for: "question", class: "visually-hidden" }, "Your question"),
    element("div", { class: "composer-box" }, question,
      element("div", { class: "composer-actions" }, sendButton, stopButton)),
    status);
  const errors = errorBox(form, "chat-error");

  const grow = () => {
    question.style.height = "auto";
    question.style.height = `${question.scrollHeight + 2}px`;
  };
  const submit = () => {
    const text = question.value;
    if (text.trim() && !question.disabled) send(text);
  };
  question.addEventListener("input", grow);
  form.addEventListener("submit", (event) => { event.preventDefault(); submit(); });

  return {
    node: form,
    question,
    errors,
    status: (text) => { status.textContent = text; },
    // Enter sends; registered after the slash commands' keys (which take Enter first).
    enableEnter() {
      question.addEventListener("keydown", (event) => {
        if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
        if (event.defaultPrevented) return;
        event.preventDefault();
        submit();
      });
    },
    clear() { question.value = ""; grow(); },
    busy(yes) {
      const hadFocus = document.activeElement === stopButton || document.activeElement === question;
      question.disabled = yes;
      sendButton.hidden = yes;
      stopButton.hidden = !yes;
      if (yes && hadFocus) stopButton.focus();
      else if (!yes && (hadFocus || document.activeElement === document.body)) question.focus();
    },
  };
}
