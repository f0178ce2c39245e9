// The model registry (admin: /api/v1/models): each model's live state, registering one, pulling
// an Ollama model with its progress, choosing the default of a kind, removing one.
import { api, element } from "../../api.js";
import { attempt, confirmAction, errorBox } from "../../ui.js";
import { field, json, submitting } from "./fields.js";
import { item, pagedList } from "./paged.js";
import { pullModel } from "./pull.js";

const option = ([value, text]) => element("option", { value }, text);

function registerForm(onRegistered) {
  const box = errorBox(element("div"));
  const form = element("form", { class: "settings-form", novalidate: "" },
    field("Provider", element("select", { name: "provider" },
      ...[["ollama", "Ollama"], ["openai", "OpenAI-compatible"], ["local", "Local"]].map(option))),
    field("Model name", element("input", { name: "name", autocomplete: "off", maxlength: "200",
      spellcheck: "false" }), "As the provider names it, e.g. llama3.1:8b."),
    field("Kind", element("select", { name: "kind" }, ...[["chat", "Chat"], ["embedding", "Embedding"]].map(option))),
    element("label", { class: "choice" }, element("input", { type: "checkbox", name: "is_default" }),
      " Make it the default of its kind"),
    element("div", { class: "actions" }, element("button", { type: "submit", class: "primary" }, "Register model")),
    box.node);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const read = (name) => form.elements.namedItem(name);
    const body = { provider: read("provider").value, name: read("name").value,
      kind: read("kind").value, is_default: read("is_default").checked };
    const made = await submitting(form, box, () => api("/api/v1/models", json("POST", body)));
    if (made) { form.reset(); onRegistered(made); }
  });
  return form;
}

function facts(model) {
  const live = model.live;
  return [model.provider, model.kind, model.is_default ? element("strong", {}, "default") : "",
    element("span", { class: `state state-${live.state}` }, live.state),
    live.context_length ? `${live.context_length} tokens of context` : "",
    live.dimension ? `${live.dimension} dimensions` : "", live.detail || ""];
}

export async function mount(section) {
  const box = errorBox(element("div"));
  const pulls = new AbortController();  // the pulls under way stop following when the view goes
  let models = null;

  // Follows a pull in the model's card: a <progress>, its status line, then the model again.
  async function pull(model, card) {
    const bar = element("progress", { max: "100", "aria-label": `Pulling ${model.name}` });
    const said = element("p", { class: "hint", role: "status" }, "Starting the pull…");
    const pullBox = errorBox(element("div"));
    card.append(element("div", { class: "pull" }, bar, said, pullBox.node));
    for (const button of card.querySelectorAll("button")) button.disabled = true;
    const done = await attempt(pullBox, () => pullModel(model.id, (step) => {
      if (step.percent !== null && step.percent !== undefined) bar.value = step.percent;
      said.textContent = step.percent !== null && step.percent !== undefined ? `${step.status}: ${step.percent}%` : step.status;
    }, pulls.signal));
    if (done) await models.load();
    else for (const button of card.querySelectorAll("button")) button.disabled = false;
  }

  async function makeDefault(model) {
    const done = await attempt(box, () => api(`/api/v1/models/${model.id}`, json("PATCH", { is_default: true })));
    if (done) await models.load();
  }

  async function remove(model) {
    if (!await confirmAction(`Remove the model ${model.name} from the registry? (Its files stay with the provider.)`, "Remove")) return;
    if (await attempt(box, () => api(`/api/v1/models/${model.id}`, { method: "DELETE" })) !== undefined) await models.load();
  }

  function render(model) {
    const card = item(model.name, facts(model),
      model.provider === "ollama" ? element("button", { type: "button",
        onclick: () => pull(model, card) }, model.live.state === "installed" ? "Pull again" : "Pull") : "",
      model.is_default ? "" : element("button", { type: "button", onclick: () => makeDefault(model) }, "Make default"),
      element("button", { type: "button", class: "danger", onclick: () => remove(model) }, "Remove"));
    card.dataset.model = model.name;
    return card;
  }

  models = pagedList("/api/v1/models", render, box, { label: "Models", empty: "No models registered." });
  section.append(element("h3", {}, "Register a model"), registerForm(() => models.load()),
    element("h3", {}, "Registered models"), box.node, models.node);
  await models.load();
  return () => pulls.abort();
}
