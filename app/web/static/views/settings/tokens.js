// Your API tokens (/api/v1/tokens): the list, a new one (its secret shown once, to copy), and
// revoking one after a confirmation.
import { api, element } from "../../api.js";
import { attempt, confirmAction, errorBox, formatTime } from "../../ui.js";
import { choices, field, json, submitting } from "./fields.js";
import { item, pagedList } from "./paged.js";
import { oneTimeSecret } from "./secret.js";

// The end of the chosen day, where the browser is, as the API wants it (with a time zone).
function expiry(day) {
  return day ? new Date(`${day}T23:59:59`).toISOString() : null;
}

function facts(token, me) {
  return [
    element("code", {}, `${token.prefix}…`),
    token.scopes.join(" and "),
    `created ${formatTime(token.created_at)}`,
    token.revoked_at ? `revoked ${formatTime(token.revoked_at)}`
      : token.expires_at ? `expires ${formatTime(token.expires_at)}` : "never expires",
    token.last_used_at ? `last used ${formatTime(token.last_used_at)}` : "never used",
    token.id === me.token_id ? element("strong", {}, "this session's") : "",
  ];
}

function createForm(onCreated) {
  const box = errorBox(element("div"));
  const scopes = choices("Scopes (none ticked: this session's)", "scopes",
    [["read", "Read"], ["write", "Write"]], ["read", "write"]);
  const form = element("form", { class: "settings-form", novalidate: "" },
    field("Name", element("input", { name: "name", maxlength: "100", autocomplete: "off" }),
      "Say where it is used, e.g. \"laptop script\"."),
    scopes.node,
    field("Expires on", element("input", { name: "expires_at", type: "date" }), "Empty: never."),
    element("div", { class: "actions" },
      element("button", { type: "submit", class: "primary" }, "Create token")),
    box.node);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const picked = scopes.checked();
    const body = { name: form.elements.namedItem("name").value,
      scopes: picked.length ? picked : null,
      expires_at: expiry(form.elements.namedItem("expires_at").value) };
    const created = await submitting(form, box, () => api("/api/v1/tokens", json("POST", body)));
    if (created) { form.reset(); onCreated(created); }
  });
  return form;
}

export async function mount(section, context) {
  const box = errorBox(element("div"));
  const fresh = element("div", { class: "fresh-secret" });
  let tokens = null;
  const render = (token) => item(token.name, facts(token, context.me),
    token.revoked_at ? "" : element("button", { type: "button", class: "danger",
      onclick: () => revoke(token) }, "Revoke"));
  tokens = pagedList("/api/v1/tokens", render, box, { label: "Your tokens", empty: "No tokens yet." });

  async function revoke(token) {
    const own = token.id === context.me.token_id ? " You are signed in with it: this signs you out." : "";
    if (!await confirmAction(`Revoke the token ${token.name}? Whatever uses it stops working.${own}`, "Revoke")) return;
    const done = await attempt(box, () => api(`/api/v1/tokens/${token.id}`, { method: "DELETE" }));
    if (done === undefined) return;
    if (own) document.querySelector("#sign-out").click();  // this tab's token is gone: sign out
    else await tokens.load();
  }

  const form = createForm((created) => {
    fresh.replaceChildren(oneTimeSecret(`Your new token ${created.name}`, created.token,
      () => form.elements.namedItem("name").focus()));
    tokens.load();
  });
  section.append(
    element("h3", {}, "New token"), form, fresh,
    element("h3", {}, "Your tokens"), box.node, tokens.node);
  await tokens.load();
}
