// One collection's page: its name and your role, then tabs: Documents (upload, progress,
// reindex, download, delete), Sharing (owners and admins) and Sources (those who may write).
// The tab shown is in the address (`#/knowledge/<id>/<tab>`); each is built when first opened
// and kept (uploads go on while another tab is shown).
import { api, element } from "../../api.js";
import { errorBox, heading } from "../../ui.js";
import { ROLE_NAMES, canManage } from "./collections.js";
import { mountDocuments } from "./documents.js";
import { mountSharing } from "./sharing.js";
import { mountSources } from "./sources.js";

export async function showCollection(container, id, tabName, context) {
  const back = element("a", { href: "#/knowledge", class: "back" }, "← All collections");
  container.append(back);
  let collection;
  try {
    collection = await api(`/api/v1/collections/${id}`);
  } catch (error) {
    container.append(heading(1, "Collection"));
    errorBox(container).show(error);
    return null;
  }
  container.append(heading(1, collection.name),
    element("p", { class: "hint" }, ROLE_NAMES[collection.role] +
      (collection.is_shared ? " · every user can read it" : "")));
  const cleanups = [];
  const shared = { refreshDocuments: async () => {} };
  const tabs = [["documents", "Documents", (panel) => {
    const documents = mountDocuments(panel, collection);
    shared.refreshDocuments = documents.refresh;
    return documents.cleanup;
  }]];
  if (canManage(collection, context.me)) tabs.push(["sharing", "Sharing", (panel) => mountSharing(panel, collection)]);
  if (collection.role !== "reader") {
    tabs.push(["sources", "Sources", (panel) => mountSources(panel, collection, () => shared.refreshDocuments())]);
  }
  const chosen = tabs.find(([name]) => name === tabName) ? tabName : "documents";
  container.append(...tabList(tabs, chosen, id, cleanups));
  return () => { for (const cleanup of cleanups) cleanup?.(); };
}

// An ARIA tab list: arrows move between tabs, each panel built once when first shown.
function tabList(tabs, chosen, id, cleanups) {
  const list = element("div", { role: "tablist", class: "tabs", "aria-label": "Collection" });
  const panels = [];
  const built = new Set();
  const select = (name, focus) => {
    for (const [tabName, , build] of tabs) {
      const tab = list.querySelector(`#tab-${tabName}`);
      const panel = panels.find((p) => p.id === `panel-${tabName}`);
      const on = tabName === name;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      panel.hidden = !on;
      if (on && !built.has(tabName)) { built.add(tabName); cleanups.push(build(panel)); }
      if (on && focus) tab.focus();
    }
    history.replaceState(null, "", `#/knowledge/${id}${name === "documents" ? "" : `/${name}`}`);
  };
  tabs.forEach(([name, label], index) => {
    list.append(element("button", {
      type: "button", role: "tab", id: `tab-${name}`, "aria-controls": `panel-${name}`,
      onclick: () => select(name, false),
      onkeydown: (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (step) select(tabs[(index + step + tabs.length) % tabs.length][0], true);
      },
    }, label));
    panels.push(element("section", { role: "tabpanel", id: `panel-${name}`, "aria-labelledby": `tab-${name}`, hidden: "" }));
  });
  select(chosen, false);
  return [list, ...panels];
}
