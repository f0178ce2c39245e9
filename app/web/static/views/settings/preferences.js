// Your preferences (GET/PUT /api/v1/me/preferences): the chat model, search defaults, reranking,
// the wider context, the system prompt and the MCP servers new chats use.
import { api, element } from "../../api.js";
import { attempt, errorBox } from "../../ui.js";
import { choices, field, json, statusLine, submitting } from "./fields.js";

const MODES = [["hybrid", "Hybrid (words and meaning)"], ["semantic", "Semantic (meaning)"],
  ["fulltext", "Full text (words)"]];

function select(name, options, value) {
  return element("select", { name }, ...options.map(([v, text]) =>
    element("option", { value: v, ...(v === value ? { selected: "" } : {}) }, text)));
}

function number(name, value, min, max, step) {
  return element("input", { name, type: "number", min, max, step, value: String(value ?? "") });
}

function checkbox(name, checked) {
  return element("input", { name, type: "checkbox", ...(checked ? { checked: "" } : {}) });
}

function form(prefs, models, servers) {
  const modelOptions = [["", "postrag's default"],
    ...models.map((m) => [String(m.id), `${m.name} (${m.provider})`])];
  const picked = choices("MCP servers for new chats", "mcp_server_ids",
    servers.map((s) => [s.id, s.name]), prefs.mcp_server_ids);
  const node = element("form", { class: "settings-form", novalidate: "" },
    field("Chat model", select("chat_model_id", modelOptions, String(prefs.chat_model_id ?? ""))),
    field("Search mode", select("search_mode", MODES, prefs.search_mode)),
    field("Passages per answer (top k)", number("top_k", prefs.top_k, 1, 50, 1)),
    field("Minimum similarity", number("min_similarity", prefs.min_similarity, 0, 1, 0.05),
      "Semantic search leaves out passages less similar than this (0 to 1)."),
    field("Rerank passages", checkbox("rerank", prefs.rerank),
      "When the server has a reranker: it reorders the best passages found."),
    field("Passages reranked", number("rerank_candidates", prefs.rerank_candidates, 1, 200, 1),
      "Empty: the server's (50)."),
    field("Context window (tokens)", number("context_window", prefs.context_window, 0, 1000, 1),
      "Neighbouring text each passage brings (0: none; empty: the server's, none for searches)."),
    field("Temperature", number("temperature", prefs.temperature, 0, 2, 0.1),
      "0 answers the same way each time; higher varies the wording (up to 2)."),
    field("System prompt", element("textarea", { name: "system_prompt", rows: "4" }),
      "Empty: postrag's own."),
    servers.length ? picked.node : "",
    element("div", { class: "actions" }, element("button", { type: "submit", class: "primary" }, "Save")));
  node.elements.namedItem("system_prompt").value = prefs.system_prompt;
  return { node, servers: picked.checked };
}

function values(node, servers) {
  const read = (name) => node.elements.namedItem(name).value;
  const optional = (name) => (read(name) === "" ? null : Number(read(name)));
  return {
    chat_model_id: read("chat_model_id") ? Number(read("chat_model_id")) : null,
    search_mode: read("search_mode"),
    top_k: read("top_k") === "" ? null : Number(read("top_k")),
    min_similarity: read("min_similarity") === "" ? null : Number(read("min_similarity")),
    temperature: read("temperature") === "" ? null : Number(read("temperature")),
    system_prompt: read("system_prompt"),
    mcp_server_ids: servers().map(Number),
    rerank: node.elements.namedItem("rerank").checked,
    rerank_candidates: optional("rerank_candidates"),
    context_window: optional("context_window"),
  };
}

export async function mount(section) {
  const box = errorBox(section, "preferences-error");
  const status = statusLine();
  const loaded = await attempt(box, () => Promise.all([
    api("/api/v1/me/preferences"),
    api("/api/v1/models?kind=chat&limit=100"),
    api("/api/v1/mcp-servers?limit=100"),
  ]));
  if (!loaded) return undefined;
  const [prefs, models, servers] = loaded;
  const { node, servers: ticked } = form(prefs, models.items, servers.items.filter((s) => s.enabled));
  node.addEventListener("input", () => status.stop());
  node.addEventListener("submit", async (event) => {
    event.preventDefault();
    const saved = await submitting(node, box,
      () => api("/api/v1/me/preferences", json("PUT", values(node, ticked))));
    if (saved) status.say("Saved.");
  });
  section.append(node, status.node);
  section.append(box.node);  // under the form, by the Save button
  return () => status.stop();
}
