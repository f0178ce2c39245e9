// The MCP servers (tools) a chat uses, ticked in the chat's header (a new chat starts with your
// preference's), and their slash commands, offered under the composer while the question starts
// with "/" (arrows choose, Enter or Tab takes one, Escape closes the list).
import { api, element } from "../../api.js";
import { patchChat } from "./options.js";

export function serverPicker(holder, box, question) {
  const summary = element("span", { class: "option-summary", id: "chat-tools-summary" }, "none");
  const list = element("ul", { class: "option-list", "aria-label": "MCP servers" });
  const node = element("details", { class: "chat-option picker", id: "chat-tools", hidden: "" },
    element("summary", {}, "Tools: ", summary), element("div", { class: "picker-body" }, list));
  const commands = slashCommands(question);
  let saved = [];

  const boxes = () => [...list.querySelectorAll("input")];
  const chosen = () => boxes().filter((b) => b.checked).map((b) => Number(b.value));
  const show = (ids) => {
    for (const b of boxes()) b.checked = ids.includes(Number(b.value));
    const names = boxes().filter((b) => b.checked).map((b) => b.dataset.server);
    summary.textContent = names.length ? names.join(", ") : "none";
  };
  const loadCommands = async () => {
    const id = holder.chatId();
    const ids = chosen();
    if (!ids.length) { commands.offer([]); return; }
    commands.offer(id ? (await api(`/api/v1/chats/${id}/commands`)).items : await commandsOf(ids));
  };
  const save = async () => {
    const ids = chosen();
    show(ids);
    box.clear();
    try {
      const id = holder.chatId();
      if (id) saved = (await patchChat(id, { mcp_server_ids: ids })).mcp_server_ids;
      else saved = ids;
      await loadCommands();
    } catch (error) {
      box.show(error);
      show(saved);  // the boxes say what the chat uses
    }
  };
  return {
    node,
    // The picker for `chat` (null: a new chat, with the preference's servers).
    async load(chat) {
      const [page, prefs] = await Promise.all([api("/api/v1/mcp-servers?limit=100"),
        chat ? null : api("/api/v1/me/preferences")]);
      const servers = page.items.filter((s) => s.enabled);
      node.hidden = !servers.length;
      list.replaceChildren(...servers.map((s) => {
        const id = `chat-server-${s.id}`;
        return element("li", {}, element("input", { type: "checkbox", id, value: String(s.id),
          "data-server": s.name, onchange: save }),
        element("label", { for: id, class: "inline" }, s.name));
      }));
      saved = chat ? chat.mcp_server_ids : prefs.mcp_server_ids;
      show(saved);
      await loadCommands();
    },
    creation: () => (boxes().length ? { mcp_server_ids: chosen() } : {}),
  };
}

// A new chat's commands, from its servers' prompts: each as /server:prompt, which always works.
async function commandsOf(ids) {
  const details = await Promise.all(ids.map((id) => api(`/api/v1/mcp-servers/${id}`)));
  return details.flatMap((server) => server.prompts.map((prompt) => ({
    command: `/${server.name}:${prompt.name}`, server: server.name, prompt: prompt.name,
    description: prompt.description, arguments: prompt.arguments })));
}

// The slash-command list under `question` (a textarea); offer(commands) sets what it offers.
function slashCommands(question) {
  const list = element("ul", { id: "commands", class: "commands", role: "listbox",
    "aria-label": "Slash commands", hidden: "" });
  question.setAttribute("aria-controls", "commands");
  question.after(list);
  let commands = [];

  const hide = () => {
    list.hidden = true;
    list.replaceChildren();
    question.removeAttribute("aria-activedescendant");
  };
  const select = (index) => {
    const options = [...list.children];
    options.forEach((o, i) => o.setAttribute("aria-selected", String(i === index)));
    question.setAttribute("aria-activedescendant", options[index].id);
  };
  const pick = (command) => {
    question.value = `${command.command} `;
    hide();
    question.focus();
  };
  const offer = () => {
    const typed = question.value;
    const offered = (c) => c.command.startsWith(typed) || `/${c.prompt}`.startsWith(typed);
    const matching = /^\/\S*$/.test(typed) ? commands.filter(offered) : [];
    if (!matching.length) { hide(); return; }
    list.replaceChildren(...matching.map((c, i) => {
      const args = c.arguments.map((a) => (a.required ? a.name : `[${a.name}]`)).join(" ");
      return element("li", { id: `command-${i}`, role: "option", "aria-selected": "false",
        "data-command": c.command, onmousedown: (event) => { event.preventDefault(); pick(c); } },
      element("strong", {}, c.command), args ? ` ${args}` : "",
      c.description ? element("span", { class: "hint" }, ` ${c.description}`) : "");
    }));
    list.hidden = false;
    select(0);
  };
  question.addEventListener("input", offer);
  question.addEventListener("blur", hide);
  question.addEventListener("keydown", (event) => {
    if (list.hidden) return;
    const options = [...list.children];
    const current = options.findIndex((o) => o.getAttribute("aria-selected") === "true");
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : -1;
      select((current + step + options.length) % options.length);
    } else if (event.key === "Enter" || event.key === "Tab") {
      pick(commands.find((c) => c.command === options[current].dataset.command));
    } else if (event.key === "Escape") {
      hide();
    } else {
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();  // not also a send (Enter) or the panel's Escape
  });
  return {
    offer(found) {
      commands = found;
      if (document.activeElement === question) offer();  // to a "/" typed meanwhile
      else hide();
    },
  };
}
