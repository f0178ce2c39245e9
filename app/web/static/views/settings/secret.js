// A secret the API shows only once (a new API token): the value, a Copy button and a warning.
import { element } from "../../api.js";

// A card showing `value` labelled `label`; "Done" removes it (and the secret with it), then
// calls `done` (to put the focus back somewhere sensible).
export function oneTimeSecret(label, value, done = () => {}) {
  const input = element("input", { id: "new-secret", type: "text", readonly: "", value,
    spellcheck: "false", class: "secret", "aria-describedby": "new-secret-warning" });
  const status = element("p", { class: "ok", role: "status" });
  const copy = element("button", { type: "button", class: "primary", onclick: async () => {
    try {
      await navigator.clipboard.writeText(value);
      status.textContent = "Copied.";
    } catch {
      input.select();  // no clipboard (an insecure origin, a refused permission): copy by hand
      status.textContent = "Selected: copy it with Ctrl+C or ⌘C.";
    }
  } }, "Copy");
  const card = element("div", { class: "card secret-card" },
    element("label", { for: "new-secret" }, label),
    element("p", { id: "new-secret-warning", class: "warning" },
      "Copy it now: it is not shown again."),
    element("div", { class: "row" }, input, copy),
    status,
    element("div", { class: "actions" },
      element("button", { type: "button", class: "quiet", onclick: () => { card.remove(); done(); } },
        "Done")));
  queueMicrotask(() => copy.focus());
  return card;
}
