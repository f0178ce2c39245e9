// The settings view: `#/settings/<tab>`, a nav of its tabs (the admin's ones only for admins)
// over the tab's own module under views/settings/, loaded when first opened.
import { element } from "../api.js";
import { heading } from "../ui.js";

const TABS = [
  { id: "preferences", label: "Preferences" },
  { id: "tokens", label: "API tokens" },
  { id: "connections", label: "Connections" },
  { id: "users", label: "Users", admin: true },
  { id: "groups", label: "Groups", admin: true },
  { id: "models", label: "Models", admin: true },
  { id: "mcp", label: "MCP servers", admin: true },
];

function nav(tabs, current) {
  return element("nav", { class: "settings-tabs", "aria-label": "Settings" },
    element("ul", {}, ...tabs.map((tab) => element("li", {}, element("a", {
      href: `#/settings/${tab.id}`, "data-tab": tab.id,
      ...(tab === current ? { "aria-current": "page" } : {}) }, tab.label)))));
}

export async function mount(container, params, context) {
  const admin = context.me.role === "admin";
  const tabs = TABS.filter((tab) => admin || !tab.admin);
  const asked = params[0] || tabs[0].id;
  const current = tabs.find((tab) => tab.id === asked);
  container.append(heading(1, "Settings"), nav(tabs, current));
  const section = element("section", { class: "settings-tab", "aria-labelledby": "settings-tab-title" });
  container.append(section);
  if (!current) {
    const known = TABS.some((tab) => tab.id === asked);
    section.append(heading(2, known ? "For admins only" : "No such settings", { id: "settings-tab-title" }),
      element("p", { class: "hint" }, known ? "Only an admin can change these." : "Pick one of the settings above."));
    return undefined;
  }
  section.append(heading(2, current.label, { id: "settings-tab-title" }));
  if (params[0] && document.activeElement === document.body) {
    container.querySelector(`[data-tab="${current.id}"]`).focus();  // a tab was picked: stay there
  }
  const module = await import(`./settings/${current.id}.js`);
  return module.mount(section, context);
}
