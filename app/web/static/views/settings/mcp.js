// MCP servers for chats (admin: /api/v1/mcp-servers): register, discover their tools and
// prompts (what was skipped and why, or why discovery failed), enable or disable, delete.
import { api, element } from "../../api.js";
import { attempt, confirmAction, errorBox, formatTime } from "../../ui.js";
import { json } from "./fields.js";
import { registerForm } from "./mcp_form.js";
import { item, pagedList } from "./paged.js";

const AUTH_NAMES = { none: "no auth", static_header: "header", atlassian: "Atlassian connection",
  token_exchange: "token exchange" };

function facts(server) {
  return [
    element("code", {}, server.url),
    server.auth === "static_header" ? `header ${server.header_name}${server.header_set ? " (set)" : " (not set)"}`
      : AUTH_NAMES[server.auth] || server.auth,
    server.exchange_audience ? `audience ${server.exchange_audience}` : "",
    server.enabled ? "enabled" : element("strong", {}, "disabled"),
    `${server.tool_count} tools, ${server.prompt_count} prompts`,
    server.discovered_at ? `discovered ${formatTime(server.discovered_at)}` : "never discovered",
  ];
}

// What a discovery found: tools and prompts with their descriptions, and what it left out.
function catalog(found) {
  const entry = (thing) => element("li", {}, element("code", {}, thing.name),
    thing.description ? ` ${thing.description}` : "");
  const part = (title, things, empty) => [element("h4", {}, title), things.length
    ? element("ul", {}, ...things.map(entry)) : element("p", { class: "hint" }, empty)];
  return element("div", { class: "catalog" },
    ...part("Tools", found.tools, "No tools."), ...part("Prompts", found.prompts, "No prompts."),
    ...(found.skipped?.length ? [element("h4", {}, "Left out"),
      element("ul", {}, ...found.skipped.map((why) => element("li", {}, why)))] : []));
}

export async function mount(section) {
  const box = errorBox(element("div"));
  let servers = null;

  function render(server) {
    const card = item(server.name, facts(server),
      element("button", { type: "button", onclick: () => refresh(server, card) }, "Refresh"),
      element("button", { type: "button", "aria-expanded": "false", onclick: (e) => toggleTools(server, card, e.currentTarget) }, "Tools"),
      element("button", { type: "button", onclick: () => enable(server, card) }, server.enabled ? "Disable" : "Enable"),
      element("button", { type: "button", class: "danger", onclick: () => remove(server) }, "Delete"));
    if (server.discovery_error) {
      card.append(element("p", { class: "error discovery-error" }, `Discovery failed: ${server.discovery_error}`));
    }
    card.dataset.server = server.name;
    return card;
  }

  // Puts `server` (changed) in place of `card`, with `extra` nodes under it; the focus follows.
  function replace(card, server, ...extra) {
    const fresh = render(server);
    fresh.append(...extra);
    card.replaceWith(fresh);
    fresh.focus();
    return fresh;
  }

  async function refresh(server, card) {
    const cardBox = errorBox(element("div"));
    card.querySelector(".catalog")?.remove();
    card.append(element("p", { class: "hint", role: "status" }, "Discovering…"));
    const found = await attempt(cardBox, () => api(`/api/v1/mcp-servers/${server.id}/refresh`, { method: "POST" }));
    if (found) { replace(card, found, catalog(found)); return; }
    const now = await attempt(box, () => api(`/api/v1/mcp-servers/${server.id}`));  // its discovery_error
    replace(card, now || server, cardBox.node);
  }

  async function toggleTools(server, card, button) {
    const open = button.getAttribute("aria-expanded") === "true";
    card.querySelector(".catalog")?.remove();
    button.setAttribute("aria-expanded", String(!open));
    if (open) return;
    const found = await attempt(box, () => api(`/api/v1/mcp-servers/${server.id}`));
    if (found) card.append(catalog(found));
  }

  async function enable(server, card) {
    const changed = await attempt(box, () => api(`/api/v1/mcp-servers/${server.id}`, json("PATCH", { enabled: !server.enabled })));
    if (changed) replace(card, changed);
  }

  async function remove(server) {
    if (!await confirmAction(`Delete the MCP server ${server.name}? Chats stop using its tools.`)) return;
    if (await attempt(box, () => api(`/api/v1/mcp-servers/${server.id}`, { method: "DELETE" })) !== undefined) await servers.load();
  }

  servers = pagedList("/api/v1/mcp-servers", render, box, { label: "MCP servers", empty: "No MCP servers registered." });
  section.append(element("h3", {}, "Register a server"), registerForm(() => servers.load()),
    element("h3", {}, "Servers"), box.node, servers.node);
  await servers.load();
}
