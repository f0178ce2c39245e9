// The collections page: the collections you can read (yours and those shared with you, newest
// first, paged), a form creating one, and for each: open it, rename it in place, delete it after
// a confirmation (owners and admins).
import { api, element } from "../../api.js";
import { attempt, confirmAction, errorBox, formatTime, heading } from "../../ui.js";
import { connectNotice } from "./atlassian.js";

const PAGE = 50;
export const ROLE_NAMES = { owner: "Yours", editor: "Shared with you: editor", reader: "Shared with you: reader" };

const json = (method, body) => ({
  method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});

export function canManage(collection, me) {
  return collection.role === "owner" || me.role === "admin";
}

export async function showCollections(container, context) {
  const name = element("input", { id: "new-collection", maxlength: "200", required: "", autocomplete: "off" });
  const form = element("form", { class: "create-collection" },
    element("label", { for: "new-collection" }, "New collection"),
    element("div", { class: "row" }, name, element("button", { type: "submit", class: "primary" }, "Create")));
  const formError = errorBox(form, "create-error");
  const list = element("ul", { class: "collections", "aria-labelledby": "collections-title" });
  const more = element("button", { type: "button", class: "quiet", hidden: "" }, "More collections");
  container.append(heading(1, "Knowledge"),
    element("p", { class: "hint" }, "Collections of documents to search and chat with."));
  const notice = connectNotice();
  if (notice) container.append(notice);
  container.append(form, element("h2", { id: "collections-title" }, "Collections"), list);
  const listError = errorBox(container, "collections-error");
  container.append(more);

  let shown = 0;
  const load = async (first) => {
    const offset = first ? 0 : shown;
    const page = await attempt(listError, () => api(`/api/v1/collections?limit=${PAGE}&offset=${offset}`));
    if (!page) return;
    if (first) { list.replaceChildren(); shown = 0; }
    list.append(...page.items.map((c) => collectionItem(c, context, () => load(true), listError)));
    shown += page.items.length;
    more.hidden = shown >= page.total;
    if (!page.total) list.append(element("li", { class: "hint" }, "No collections yet: create one above."));
  };
  more.addEventListener("click", () => load(false));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const created = await attempt(formError, () => api("/api/v1/collections", json("POST", { name: name.value })));
    if (created) context.navigate(`#/knowledge/${created.id}`);
  });
  await load(true);
  return null;
}

function collectionItem(collection, context, reload, box) {
  const link = element("a", { href: `#/knowledge/${collection.id}`, class: "collection-name" }, collection.name);
  const item = element("li", { class: "card collection", "data-collection": String(collection.id) },
    element("div", {}, link,
      element("p", { class: "hint" }, `${ROLE_NAMES[collection.role]}${collection.is_shared ? " · every user can read it" : ""}` +
        ` · created ${formatTime(collection.created_at)}`)));
  if (canManage(collection, context.me)) {
    item.append(element("div", { class: "row" },
      element("button", { type: "button", class: "quiet", "aria-label": `Rename ${collection.name}`,
        onclick: () => startRename(item, collection, reload, box) }, "Rename"),
      element("button", { type: "button", class: "danger", "aria-label": `Delete ${collection.name}`,
        onclick: () => remove(collection, reload, box) }, "Delete")));
  }
  return item;
}

function startRename(item, collection, reload, box) {
  const input = element("input", { value: collection.name, maxlength: "200", required: "",
    "aria-label": `New name of ${collection.name}` });
  const form = element("form", { class: "row" }, input,
    element("button", { type: "submit", class: "primary" }, "Save"),
    element("button", { type: "button", class: "quiet", onclick: reload }, "Cancel"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changed = await attempt(box, () =>
      api(`/api/v1/collections/${collection.id}`, json("PATCH", { name: input.value })));
    if (!changed) { input.focus(); return; }
    await reload();
    document.querySelector(`[data-collection="${collection.id}"] a`)?.focus();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.stopPropagation(); reload(); }
  });
  item.replaceChildren(form);
  input.focus();
  input.select();
}

async function remove(collection, reload, box) {
  const sure = await confirmAction(
    `Delete the collection "${collection.name}" with all its documents? This cannot be undone.`);
  if (!sure) return;
  const done = await attempt(box, async () => {
    await api(`/api/v1/collections/${collection.id}`, { method: "DELETE" });
    return true;
  });
  if (done) await reload();
}
