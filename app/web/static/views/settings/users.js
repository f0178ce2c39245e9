// Users (admin: /api/v1/users): who has an account, and a new user with their first API token
// (shown once, to hand over). The API has no role change or removal of users.
import { api, element } from "../../api.js";
import { errorBox, formatTime } from "../../ui.js";
import { field, json, submitting } from "./fields.js";
import { item, pagedList } from "./paged.js";
import { oneTimeSecret } from "./secret.js";

const ROLES = [["user", "User"], ["admin", "Admin"]];

function createForm(onCreated) {
  const box = errorBox(element("div"));
  const form = element("form", { class: "settings-form", novalidate: "" },
    field("Name", element("input", { name: "name", autocomplete: "off", maxlength: "200" })),
    field("Role", element("select", { name: "role" },
      ...ROLES.map(([value, text]) => element("option", { value }, text)))),
    element("div", { class: "actions" }, element("button", { type: "submit", class: "primary" }, "Create user")),
    box.node);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: form.elements.namedItem("name").value, role: form.elements.namedItem("role").value };
    const created = await submitting(form, box, () => api("/api/v1/users", json("POST", body)));
    if (created) { form.reset(); onCreated(created); }
  });
  return form;
}

export async function mount(section, context) {
  const box = errorBox(element("div"));
  const fresh = element("div");
  const render = (user) => item(user.name, [
    user.role === "admin" ? element("strong", {}, "admin") : "user",
    `#${user.id}`, `since ${formatTime(user.created_at)}`,
    user.id === context.me.id ? "you" : ""]);
  const users = pagedList("/api/v1/users", render, box, { label: "Users" });
  const form = createForm((created) => {
    fresh.replaceChildren(oneTimeSecret(`${created.name}'s first API token (give it to them)`,
      created.token, () => form.elements.namedItem("name").focus()));
    users.load();
  });
  section.append(element("h3", {}, "New user"), form, fresh,
    element("h3", {}, "Users"), box.node, users.node);
  await users.load();
}
