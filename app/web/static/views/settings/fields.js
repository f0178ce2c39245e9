// Form pieces the settings tabs share: a labelled control with its own error line, a 422's
// invalid fields shown at the fields they name, and a status line ("Saved") that clears itself.
import { element } from "../../api.js";

let made = 0;  // ids for controls made without one

// A labelled `control` (its `name` is the API's field) with an optional hint and an error line.
export function field(text, control, hint = "") {
  control.id ||= `setting-${++made}`;
  const error = element("p", { class: "error", id: `${control.id}-error`, "data-error-of": control.name });
  const parts = [element("label", { for: control.id }, text), control];
  const described = [error.id];
  if (hint) {
    parts.push(element("p", { class: "hint", id: `${control.id}-hint` }, hint));
    described.unshift(`${control.id}-hint`);
  }
  control.setAttribute("aria-describedby", described.join(" "));
  return element("div", { class: "field" }, ...parts, error);
}

// Checkboxes in a fieldset: `options` are [value, text]; checked() gives the values ticked.
export function choices(legend, name, options, ticked = []) {
  const boxes = options.map(([value, text]) => element("label", { class: "choice" },
    element("input", { type: "checkbox", name, value: String(value),
      ...(ticked.includes(value) ? { checked: "" } : {}) }), ` ${text}`));
  const set = element("fieldset", {}, element("legend", {}, legend), ...boxes,
    element("p", { class: "error", "data-error-of": name }));
  return { node: set, checked: () => [...set.querySelectorAll("input:checked")].map((b) => b.value) };
}

function clearFields(form) {
  for (const line of form.querySelectorAll("[data-error-of]")) line.textContent = "";
  for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
}

// The field a 422 names: ["body", "top_k"] from request validation, ["name"] from a service.
function fieldName(loc) {
  return ["body", "query", "path"].includes(loc[0]) ? String(loc[1]) : String(loc[0]);
}

function markFields(form, error) {
  let first = null;
  for (const { loc, msg } of error.fields || []) {
    const line = form.querySelector(`[data-error-of="${CSS.escape(fieldName(loc))}"]`);
    if (!line) continue;
    line.textContent = msg;
    const control = form.elements.namedItem(fieldName(loc));
    if (control?.setAttribute) control.setAttribute("aria-invalid", "true");
    first ||= control;
  }
  first?.focus?.();
}

// Runs `action` for `form`: errors go to their fields and to `box`; all cleared on the next try.
export async function submitting(form, box, action) {
  clearFields(form);
  box.clear();
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (error) {
    box.show(error);
    markFields(form, error);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

// A polite status line: say(text) shows it for a few seconds; stop() ends its timer.
export function statusLine() {
  const node = element("p", { class: "ok status", role: "status" });
  let timer = null;
  return {
    node,
    say(text) {
      clearTimeout(timer);
      node.textContent = text;
      timer = setTimeout(() => { node.textContent = ""; }, 4000);
    },
    stop() { clearTimeout(timer); node.textContent = ""; },
  };
}

// The JSON body of a write.
export function json(method, body) {
  return { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
}
