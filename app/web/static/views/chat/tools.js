// An answer's MCP tool calls, shown inside its list item: each call as a collapsible item (server,
// tool, arguments, then its result or error), the server's progress under the running call, and
// its questions as small forms built from their requested schema. The same items show the calls
// of stored answers; every item is keyed by its id, so an event replayed after a reconnection (or
// a stored call then streamed again) updates the item rather than adding another.
import { api, element } from "../../api.js";

export const TOOL_EVENTS = ["tool_call", "progress", "tool_result", "question", "question_closed"];

// The item's area for tool calls, before its text.
function area(item) {
  let found = item.querySelector(".tools");
  if (!found) {
    found = element("div", { class: "tools" });
    item.insertBefore(found, item.querySelector(".text"));
  }
  return found;
}

function callItem(item, call) {
  const tools = area(item);
  const found = [...tools.querySelectorAll(".tool-call")].find((c) => c.dataset.call === call.id);
  if (found) return found;
  const name = `${call.server ?? "(unknown server)"} › ${call.tool}`;
  const node = element("details", { class: "tool-call", "data-call": call.id },
    element("summary", {}, element("span", { class: "tool-name" }, `Tool ${name}`), " ",
      element("span", { class: "tool-state" }, "running...")),
    element("p", { class: "hint" }, "Arguments"),
    element("pre", { class: "tool-arguments" }, JSON.stringify(call.arguments ?? {}, null, 2)),
    element("div", { class: "tool-progress", "aria-live": "polite" }),
    element("div", { class: "tool-questions" }));
  tools.append(node);
  return node;
}

function showResult(node, result) {
  node.querySelector(".tool-progress").replaceChildren();
  node.classList.toggle("failed", result.is_error);
  node.querySelector(".tool-state").textContent = result.is_error ? "failed" : "done";
  node.querySelector(".tool-result")?.remove();
  const label = result.is_error ? "Error" : result.truncated ? "Result (cut)" : "Result";
  node.append(element("div", { class: `tool-result${result.is_error ? " error" : ""}` },
    element("p", { class: "hint" }, label), element("pre", {}, result.text)));
}

function showProgress(node, data) {
  const parts = [];
  const name = `Progress of ${data.server} › ${data.tool}`;
  if (data.total) {
    const percent = Math.round((100 * data.progress) / data.total);
    parts.push(element("progress", { max: String(data.total), value: String(data.progress),
      "aria-label": name }), ` ${percent}%`);
  } else {
    parts.push(element("progress", { "aria-label": name }), ` ${data.progress}`);
  }
  if (data.message) parts.push(" ", element("span", { class: "hint" }, data.message));
  node.querySelector(".tool-progress").replaceChildren(...parts);
}

// The calls of a stored answer (GET /api/v1/chats/{id}), closed.
export function showStoredCalls(item, calls) {
  for (const call of calls) showResult(callItem(item, call), call);
}

// One event of an answer's stream shown in its list item.
export function showToolEvent(item, chatId, name, data) {
  if (name === "tool_call") {
    callItem(item, data).open = true;
  } else if (name === "tool_result") {
    showResult(callItem(item, data), data);
  } else if (name === "progress") {
    showProgress(callItem(item, data), data);
  } else if (name === "question") {
    showQuestion(item, chatId, data);
  } else if (name === "question_closed") {
    item.ownerDocument.querySelector(`form.question[data-question="${data.id}"]`)?.remove();
  }
}

// Where a question goes: under the running call of its tool, else at the end of the answer's calls.
function questionPlace(item, question) {
  const running = [...item.querySelectorAll(".tool-call")].reverse().find((c) =>
    !c.querySelector(".tool-result") &&
    c.querySelector(".tool-name").textContent === `Tool ${question.server} › ${question.tool}`);
  if (running) running.open = true;
  return running?.querySelector(".tool-questions") ?? area(item);
}

export function showQuestion(item, chatId, question) {
  if (question.state !== "pending") return;
  if (item.ownerDocument.querySelector(`form.question[data-question="${question.id}"]`)) return;
  questionPlace(item, question).append(questionForm(chatId, question));
}

// ------------------------------------------------------------------ a question's form

// A field is found by its place in the form: a name may hold any character, " included.
const field = (form, i) => form.querySelector(`[data-field="${i}"]`);

function input(id, i, schema, required) {
  const attributes = { id, "data-field": String(i) };
  if (required) attributes.required = "";
  if (schema.description) attributes["aria-describedby"] = `${id}-hint`;
  const choices = schema.enum ?? schema.oneOf?.map((o) => o.const);
  if (choices) {
    const names = schema.enumNames ?? schema.oneOf?.map((o) => o.title ?? o.const) ?? choices;
    return element("select", attributes,
      ...(required ? [] : [element("option", { value: "" }, "")]),
      ...choices.map((c, i) => element("option", { value: String(c) }, String(names[i] ?? c))));
  }
  if (schema.type === "boolean") return element("input", { ...attributes, type: "checkbox" });
  if (schema.type === "number" || schema.type === "integer") {
    const step = schema.type === "integer" ? "1" : "any";
    const bounds = {};
    if (schema.minimum !== undefined) bounds.min = String(schema.minimum);
    if (schema.maximum !== undefined) bounds.max = String(schema.maximum);
    return element("input", { ...attributes, ...bounds, type: "number", step });
  }
  const text = {};
  if (schema.maxLength !== undefined) text.maxlength = String(schema.maxLength);
  if (schema.minLength !== undefined) text.minlength = String(schema.minLength);
  const type = schema.format === "email" ? "email" : schema.format === "uri" ? "url" : "text";
  return element("input", { ...attributes, ...text, type });
}

function fields(question) {
  const schema = question.requested_schema ?? {};
  const required = schema.required ?? [];
  return Object.entries(schema.properties ?? {}).map(([name, property], i) => {
    const id = `q${question.id}-field-${i}`;  // a name may hold any character
    const control = input(id, i, property, required.includes(name));
    if (property.default !== undefined) {
      if (control.type === "checkbox") control.checked = Boolean(property.default);
      else control.value = String(property.default);
    }
    const label = element("label", { for: id }, property.title ?? name);
    const hint = property.description ?
      [element("span", { id: `${id}-hint`, class: "hint" }, property.description)] : [];
    return element("div", { class: "question-field" }, label, control, ...hint);
  });
}

// The form's values as the schema's types; fields left empty are left out.
function content(form, question) {
  const values = {};
  const properties = Object.entries(question.requested_schema?.properties ?? {});
  for (const [i, [name, property]] of properties.entries()) {
    const control = field(form, i);
    if (control.type === "checkbox") { values[name] = control.checked; continue; }
    if (control.value === "") continue;
    const numeric = ["number", "integer"].includes(property.type);
    values[name] = numeric ? Number(control.value) : control.value;
  }
  return values;
}

// The page a question asks you to open: a link only when it is a web address (the server chose
// it: no javascript: or data: URL becomes clickable).
function pageToOpen(url) {
  let web = false;
  try { web = ["http:", "https:"].includes(new URL(url).protocol); } catch { /* not a URL */ }
  const open = web ?
    element("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, url) :
    element("code", {}, url);
  return element("p", {}, "It asks you to open ", open, ", then to accept.");
}

function questionForm(chatId, question) {
  const error = element("p", { class: "error", role: "alert" });
  const title = element("p", { id: `q${question.id}-message` },
    element("strong", {}, `${question.server} asks: `), question.message);
  const form = element("form", { class: "question", "data-question": String(question.id),
    "aria-labelledby": title.id });
  const reply = async (action) => {
    error.textContent = "";
    if (action === "accept" && !question.url && !form.reportValidity()) return;
    const body = { action };
    if (action === "accept" && !question.url) body.content = content(form, question);
    try {
      await api(`/api/v1/chats/${chatId}/questions/${question.id}`, { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      form.closest(".tool-call")?.querySelector("summary").focus();  // not lost with the form
      form.remove();
    } catch (failure) {
      error.textContent = failure.message;
    }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); reply("accept"); });
  const until = new Date(question.expires_at).toLocaleTimeString();
  form.append(title, ...(question.url ? [pageToOpen(question.url)] : fields(question)),
    element("p", { class: "hint" }, `Waiting for your answer until ${until}.`),
    element("div", { class: "question-actions" },
      element("button", { type: "submit" }, "Accept"), " ",
      element("button", { type: "button", onclick: () => reply("decline") }, "Decline"), " ",
      element("button", { type: "button", onclick: () => reply("cancel") }, "Cancel")),
    error);
  return form;
}
