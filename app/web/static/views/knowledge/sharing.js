// The Sharing tab (owners and admins): every user may read it, or particular people and groups
// as readers (search, chat, read) or editors (also upload, reindex, delete documents). Shares
// are listed (paged) with their role, changed in place, and ended after a confirmation.
import { api, element } from "../../api.js";
import { attempt, confirmAction, errorBox } from "../../ui.js";

const PAGE = 50;
const ROLES = [["reader", "Reader: search, chat, read"], ["editor", "Editor: also add and delete documents"]];

const json = (method, body) => ({
  method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});

function roleSelect(attributes, value) {
  const select = element("select", attributes,
    ...ROLES.map(([role, text]) => element("option", { value: role }, text)));
  select.value = value;
  return select;
}

export function mountSharing(panel, collection) {
  const base = `/api/v1/collections/${collection.id}`;
  const everyone = element("input", { type: "checkbox", id: "share-everyone" });
  everyone.checked = collection.is_shared;
  const everyoneError = errorBox(element("div"));
  everyone.addEventListener("change", async () => {
    const changed = await attempt(everyoneError, () => api(base, json("PATCH", { is_shared: everyone.checked })));
    if (changed) collection.is_shared = changed.is_shared;
    else everyone.checked = collection.is_shared;
  });

  const type = element("select", { id: "share-type" },
    element("option", { value: "user" }, "Person"), element("option", { value: "group" }, "Group"));
  const name = element("input", { id: "share-name", required: "", maxlength: "255", autocomplete: "off",
    spellcheck: "false" });
  const role = roleSelect({ id: "share-role" }, "reader");
  const form = element("form", { class: "share-form" },
    element("div", { class: "fields" },
      element("div", {}, element("label", { for: "share-type" }, "Share with"), type),
      element("div", {}, element("label", { for: "share-name" }, "Name"), name),
      element("div", {}, element("label", { for: "share-role" }, "Role"), role)),
    element("button", { type: "submit", class: "primary" }, "Share"));
  const formError = errorBox(form, "share-error");

  const list = element("ul", { class: "shares", "aria-labelledby": "shares-title" });
  const listError = errorBox(element("div"), "shares-error");
  const more = element("button", { type: "button", class: "quiet", hidden: "" }, "More shares");
  let shown = 0;
  const load = async (first) => {
    const page = await attempt(listError, () => api(`${base}/shares?limit=${PAGE}&offset=${first ? 0 : shown}`));
    if (!page) return;
    if (first) { list.replaceChildren(); shown = 0; }
    list.append(...page.items.map((share) => shareItem(base, share, listError, () => load(true))));
    shown += page.items.length;
    more.hidden = shown >= page.total;
    if (!page.total) list.append(element("li", { class: "hint" }, "Not shared with anyone in particular."));
  };
  more.addEventListener("click", () => load(false));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const principal = { type: type.value, name: name.value };
    const share = await attempt(formError, () => api(`${base}/shares`, json("POST", { principal, role: role.value })));
    if (!share) return;
    name.value = "";
    await load(true);
    list.querySelector(`[data-share="${share.id}"] select`)?.focus();
  });

  panel.append(element("h2", {}, "Sharing"),
    element("div", { class: "row" }, everyone, element("label", { for: "share-everyone" }, "Every user can read it")),
    everyoneError.node, form, element("h3", { id: "shares-title" }, "Shared with"), list, listError.node, more);
  load(true);
  return null;
}

function shareItem(base, share, box, reload) {
  const who = share.principal;
  const label = `${who.type === "group" ? "Group" : "Person"} ${who.name}`;
  const role = roleSelect({ "aria-label": `Role of ${label}` }, share.role);
  role.addEventListener("change", async () => {
    const changed = await attempt(box, () => api(`${base}/shares`,
      json("POST", { principal: { type: who.type, name: who.name }, role: role.value })));
    role.value = changed ? changed.role : share.role;
    share.role = role.value;
  });
  const remove = element("button", { type: "button", class: "danger", "aria-label": `Stop sharing with ${label}`,
    onclick: async () => {
      if (!(await confirmAction(`Stop sharing with ${label}? They lose access at once.`, "Stop sharing"))) return;
      const done = await attempt(box, async () => { await api(`${base}/shares/${share.id}`, { method: "DELETE" }); return true; });
      if (done) await reload();
    } }, "Remove");
  return element("li", { class: "share row", "data-share": String(share.id) },
    element("span", { class: "who" }, element("span", { class: "hint" }, who.type === "group" ? "group " : ""), who.name),
    role, remove);
}
