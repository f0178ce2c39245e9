// Your connections to other services (/api/v1/connectors): which provider, until when; a
// disconnect deletes its stored tokens after a confirmation.
import { api, element } from "../../api.js";
import { attempt, confirmAction, errorBox, formatTime } from "../../ui.js";
import { item } from "./paged.js";

function facts(connector) {
  return [
    connector.connected ? "connected" : "not connected",
    connector.expired ? element("strong", {}, "expired")
      : connector.expires_at ? `expires ${formatTime(connector.expires_at)}` : "",
    connector.scopes.length ? `scopes: ${connector.scopes.join(" ")}` : "",
    `updated ${formatTime(connector.updated_at)}`,
  ];
}

export async function mount(section) {
  const box = errorBox(element("div"));
  const list = element("ul", { class: "items", "aria-label": "Your connections" });
  const none = element("p", { class: "hint" }, "No connections. Sources that need one (Atlassian) offer to connect in Knowledge.");

  async function load() {
    const found = await attempt(box, () => api("/api/v1/connectors"));
    if (!found) return;
    list.replaceChildren(...found.items.map((c) => item(c.provider, facts(c),
      element("button", { type: "button", class: "danger", onclick: () => disconnect(c) }, "Disconnect"))));
    none.hidden = found.items.length > 0;
  }

  async function disconnect(connector) {
    const text = `Disconnect ${connector.provider}? Its stored tokens are deleted; sources that use it stop syncing for you.`;
    if (!await confirmAction(text, "Disconnect")) return;
    const done = await attempt(box, () => api(`/api/v1/connectors/${encodeURIComponent(connector.provider)}`, { method: "DELETE" }));
    if (done !== undefined) await load();
  }

  section.append(element("p", { class: "hint" }, "Services postrag reaches on your behalf. Their tokens are stored encrypted and never shown."),
    box.node, list, none);
  await load();
}
