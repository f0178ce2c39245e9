// The MCP servers a chat uses (a compact picker under the question box: the chat shown is
// changed at once; a new chat is created with what is ticked, at first your preference's) and
// its slash commands, offered as a list while the question starts with "/".
import { $, api, element } from "./api.js";

let servers = [];  // the registered servers, enabled ones only
let chatId = null;  // the chat shown (null: a new one)
let saved = [];  // its servers as the API last said
let commands = [];
let shown = 0;  // counts the pickers asked for: a slow answer for an older one is dropped

function render(chosen) {
  $("#chat-tools").hidden = !servers.length;
  $("#chat-servers").replaceChildren(...servers.map((s) => element("label", { class: "inline" },
    element("input", { type: "checkbox", value: String(s.id), "data-server": s.name,
      onchange: save }), ` ${s.name}`)));
  tick(chosen);
}

function tick(chosen) {
  for (const box of $("#chat-servers").querySelectorAll("input")) {
    box.checked = chosen.includes(Number(box.value));
  }
  summarise();
}

function summarise() {
  const names = [...$("#chat-servers").querySelectorAll("input:checked")].map((b) => b.dataset.server);
  $("#chat-tools-summary").textContent = names.length ? names.join(", ") : "none";
}

export function chosenServers() {
  if (!servers.length) return null;  // none registered: the preference's (none) apply
  return [...$("#chat-servers").querySelectorAll("input:checked")].map((b) => Number(b.value));
}

async function save() {
  summarise();
  $("#chat-tools-error").textContent = "";
  if (!chatId) {  // sent when the chat is created
    await loadCommands().catch((error) => { $("#chat-tools-error").textContent = error.message; });
    return;
  }
  try {
    const chat = await api(`/api/v1/chats/${chatId}`, { method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ mcp_server_ids: chosenServers() }) });
    saved = chat.mcp_server_ids;
    await loadCommands();
  } catch (error) {
    $("#chat-tools-error").textContent = error.message;
    tick(saved);  // the boxes say what the chat uses
  }
}

// The picker for `chat` (null: a new chat, which starts with the preference's servers).
export async function showServers(chat) {
  chatId = chat?.id ?? null;
  const mine = ++shown;
  $("#chat-tools-error").textContent = "";
  try {
    const [page, prefs] = await Promise.all([
      api("/api/v1/mcp-servers?limit=100"),
      chat ? null : api("/api/v1/me/preferences"),
    ]);
    if (mine !== shown) return;
    servers = page.items.filter((s) => s.enabled);
    saved = chat ? chat.mcp_server_ids : prefs.mcp_server_ids;
    render(saved);
    await loadCommands();
  } catch (error) {
    $("#chat-tools-error").textContent = error.message;
  }
}

async function loadCommands() {
  commands = [];
  hideCommands();
  const ids = chosenServers() ?? [];
  if (!ids.length) return;
  commands = chatId ? (await api(`/api/v1/chats/${chatId}/commands`)).items : await commandsOf(ids);
  if (document.activeElement === $("#question")) offerCommands();  // to a "/" typed meanwhile
}

// ------------------------------------------------------------------ slash commands

// A new chat's commands, from its servers' prompts: each as /server:prompt, which always works.
async function commandsOf(ids) {
  const details = await Promise.all(ids.map((id) => api(`/api/v1/mcp-servers/${id}`)));
  return details.flatMap((server) => server.prompts.map((prompt) => ({
    command: `/${server.name}:${prompt.name}`, server: server.name, prompt: prompt.name,
    description: prompt.description, arguments: prompt.arguments })));
}

const list = () => $("#commands");

function hideCommands() {
  list().hidden = true;
  list().replaceChildren();
  $("#question").setAttribute("aria-expanded", "false");
  $("#question").removeAttribute("aria-activedescendant");
}

function offerCommands() {
  const typed = $("#question").value;
  const offered = (c) => c.command.startsWith(typed) || `/${c.prompt}`.startsWith(typed);
  const matching = /^\/\S*$/.test(typed) ? commands.filter(offered) : [];
  if (!matching.length) { hideCommands(); return; }
  list().replaceChildren(...matching.map((c, i) => {
    const args = c.arguments.map((a) => (a.required ? a.name : `[${a.name}]`)).join(" ");
    return element("li", { id: `command-${i}`, role: "option", "aria-selected": "false",
      "data-command": c.command, onmousedown: (event) => { event.preventDefault(); pick(c); } },
    element("strong", {}, c.command), args ? ` ${args}` : "",
    c.description ? element("span", { class: "hint" }, ` ${c.description}`) : "");
  }));
  list().hidden = false;
  $("#question").setAttribute("aria-expanded", "true");
  select(0);
}

function select(index) {
  const options = [...list().children];
  options.forEach((o, i) => o.setAttribute("aria-selected", String(i === index)));
  $("#question").setAttribute("aria-activedescendant", options[index].id);
}

function pick(command) {
  $("#question").value = `${command.command} `;
  hideCommands();
  $("#question").focus();
}

function onKey(event) {
  if (list().hidden) return;
  const options = [...list().children];
  const current = options.findIndex((o) => o.getAttribute("aria-selected") === "true");
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    const step = event.key === "ArrowDown" ? 1 : -1;
    select((current + step + options.length) % options.length);
  } else if (event.key === "Enter" || event.key === "Tab") {
    event.preventDefault();
    pick(commands.find((c) => c.command === options[current].dataset.command));
  } else if (event.key === "Escape") {
    event.preventDefault();
    hideCommands();
  }
}

export function setUpServers() {
  $("#question").addEventListener("input", offerCommands);
  $("#question").addEventListener("keydown", onKey);
  $("#question").addEventListener("blur", hideCommands);
}
