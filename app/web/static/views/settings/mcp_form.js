// The form registering an MCP server: its name, address and how postrag authenticates to it
// (each kind of auth asks for its own fields; a header's value goes in and is never shown again).
import { api, element } from "../../api.js";
import { errorBox } from "../../ui.js";
import { field, json, submitting } from "./fields.js";

const AUTHS = [
  ["none", "None"],
  ["static_header", "A header with a secret (stored encrypted)"],
  ["atlassian", "The user's Atlassian connection"],
  ["token_exchange", "The user's sign-in token, exchanged (RFC 8693)"],
];
const FIELDS_OF = { static_header: ["header_name", "header_value"],
  token_exchange: ["exchange_audience", "exchange_scope"] };

const text = (name, attributes = {}) =>
  element("input", { name, autocomplete: "off", spellcheck: "false", ...attributes });

function authFields() {
  return {
    static_header: element("div", { class: "auth-fields" },
      field("Header name", text("header_name", { maxlength: "100", placeholder: "X-Api-Key" })),
      field("Header value", text("header_value", { type: "password", autocomplete: "new-password" }),
        "Stored encrypted; nobody sees it again.")),
    token_exchange: element("div", { class: "auth-fields" },
      field("Audience", text("exchange_audience", { maxlength: "500" })),
      field("Scopes", text("exchange_scope", { maxlength: "1000" }), "Space-separated; may be empty.")),
  };
}

function body(form) {
  const read = (name) => form.elements.namedItem(name).value.trim();
  const auth = read("auth");
  const fields = { name: read("name"), url: read("url"), auth, enabled: form.elements.namedItem("enabled").checked };
  for (const name of FIELDS_OF[auth] || []) {
    if (read(name) || name !== "exchange_scope") fields[name] = read(name) || null;
  }
  return fields;
}

export function registerForm(onRegistered) {
  const box = errorBox(element("div"));
  const extra = authFields();
  const auth = element("select", { name: "auth" },
    ...AUTHS.map(([value, label]) => element("option", { value }, label)));
  const show = () => {
    for (const [kind, node] of Object.entries(extra)) node.hidden = auth.value !== kind;
  };
  auth.addEventListener("change", show);
  const form = element("form", { class: "settings-form", novalidate: "" },
    field("Name", text("name", { maxlength: "32" }),
      "Lower case letters, digits, - and _; it prefixes the server's tools and commands."),
    field("Address", text("url", { type: "url", maxlength: "2000", placeholder: "https://tools.example.com/mcp" }),
      "Its streamable HTTP endpoint."),
    field("Authentication", auth), extra.static_header, extra.token_exchange,
    element("label", { class: "choice" }, element("input", { type: "checkbox", name: "enabled", checked: "" }),
      " Enabled (chats may use it)"),
    element("div", { class: "actions" }, element("button", { type: "submit", class: "primary" }, "Register server")),
    box.node);
  show();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const made = await submitting(form, box, () => api("/api/v1/mcp-servers", json("POST", body(form))));
    if (made) { form.reset(); show(); onRegistered(made); }
  });
  return form;
}
