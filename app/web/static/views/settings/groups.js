// Groups (admin: /api/v1/groups): define one, add and remove its members, delete it. Groups
// from the identity provider also gain members from each user's token; those stay.
import { api, element } from "../../api.js";
import { attempt, confirmAction, errorBox, formatTime } from "../../ui.js";
import { field, json, submitting } from "./fields.js";
import { item, pagedList } from "./paged.js";

const SOURCES = [["admin", "Members added here"], ["provider", "Also the provider's groups claim"]];

function createForm(onCreated) {
  const box = errorBox(element("div"));
  const form = element("form", { class: "settings-form", novalidate: "" },
    field("Group name", element("input", { name: "name", autocomplete: "off", maxlength: "200" })),
    field("Members", element("select", { name: "source" },
      ...SOURCES.map(([value, text]) => element("option", { value }, text))),
    "A provider group also holds every user whose sign-in token names it."),
    element("div", { class: "actions" }, element("button", { type: "submit", class: "primary" }, "Create group")),
    box.node);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: form.elements.namedItem("name").value, source: form.elements.namedItem("source").value };
    const created = await submitting(form, box, () => api("/api/v1/groups", json("POST", body)));
    if (created) { form.reset(); onCreated(created); }
  });
  return form;
}

// A group's members: the list (remove the ones added here) and a form to add a user.
async function members(group, users) {
  const box = errorBox(element("div"));
  const base = `/api/v1/groups/${group.id}/members`;
  const render = (member) => item(member.name, [`#${member.user_id}`,
    member.source === "provider" ? "from the provider" : "added here"],
  member.source === "admin" ? element("button", { type: "button", class: "danger",
    onclick: () => remove(member) }, "Remove") : "");
  const list = pagedList(base, render, box, { label: `Members of ${group.name}`, empty: "No members yet." });

  async function remove(member) {
    if (!await confirmAction(`Remove ${member.name} from ${group.name}?`, "Remove")) return;
    if (await attempt(box, () => api(`${base}/${member.user_id}`, { method: "DELETE" })) !== undefined) await list.load();
  }

  const form = element("form", { class: "row add-member", novalidate: "" },
    field(`Add to ${group.name}`, element("select", { name: "user_id" },
      ...users.map((u) => element("option", { value: String(u.id) }, u.name)))),
    element("button", { type: "submit" }, "Add"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { user_id: Number(form.elements.namedItem("user_id").value) };
    if (await submitting(form, box, () => api(base, json("POST", body)))) await list.load();
  });
  await list.load();
  return element("div", { class: "members" }, form, box.node, list.node);
}

export async function mount(section) {
  const box = errorBox(element("div"));
  let users = null;  // for the member pickers, loaded when first needed

  function render(group) {
    const toggle = element("button", { type: "button", "aria-expanded": "false" }, "Members");
    const card = item(group.name, [group.source === "provider" ? "provider group" : "admin group",
      `created ${formatTime(group.created_at)}`], toggle,
    element("button", { type: "button", class: "danger", onclick: () => drop(group) }, "Delete"));
    toggle.addEventListener("click", async () => {
      const open = toggle.getAttribute("aria-expanded") === "true";
      card.querySelector(".members")?.remove();
      toggle.setAttribute("aria-expanded", String(!open));
      if (open) return;
      users ||= (await attempt(box, () => api("/api/v1/users?limit=100")))?.items;
      if (users) card.append(await members(group, users));
    });
    return card;
  }

  const groups = pagedList("/api/v1/groups", render, box, { label: "Groups", empty: "No groups yet." });

  async function drop(group) {
    if (!await confirmAction(`Delete the group ${group.name}? Its memberships and the shares naming it go too.`)) return;
    if (await attempt(box, () => api(`/api/v1/groups/${group.id}`, { method: "DELETE" })) !== undefined) await groups.load();
  }

  section.append(element("h3", {}, "New group"), createForm(() => groups.load()),
    element("h3", {}, "Groups"), box.node, groups.node);
  await groups.load();
}
