// Adding a source to a collection: the kind (Confluence spaces, a Jira query, a website) shows
// its own fields; the Atlassian connection's sites fill a Confluence or Jira base URL.
import { api, element } from "../../api.js";
import { attempt, errorBox } from "../../ui.js";
import { connectAtlassian, connectNotice, loadSites } from "./atlassian.js";

const lines = (text) => text.split("\n").map((line) => line.trim()).filter(Boolean);

function field(id, text, control, hint) {
  control.id = id;
  const nodes = [element("label", { for: id }, text), control];
  if (hint) {
    control.setAttribute("aria-describedby", `${id}-hint`);
    nodes.push(element("p", { class: "hint", id: `${id}-hint` }, hint));
  }
  return nodes;
}

const input = (attributes = {}) => element("input", { spellcheck: "false", ...attributes });

// The form's fields by id, and the fieldsets that only some kinds show.
function fields() {
  const f = {
    kind: element("select", {}, element("option", { value: "confluence" }, "Confluence spaces"),
      element("option", { value: "jira" }, "Jira issues (JQL)"), element("option", { value: "web" }, "Website")),
    name: input({ required: "", maxlength: "200" }),
    baseUrl: input({ required: "", maxlength: "2000", placeholder: "https://acme.atlassian.net" }),
    spaces: input({ required: "", placeholder: "ENG, HR" }),
    jql: input({ required: "", maxlength: "2000", placeholder: "project = ENG" }),
    urls: element("textarea", { rows: "2", required: "", spellcheck: "false" }),
    prefixes: element("textarea", { rows: "2", spellcheck: "false" }),
    maxDepth: input({ type: "number", min: "0", max: "10", placeholder: "2" }),
    maxPages: input({ type: "number", min: "1", max: "10000", placeholder: "200" }),
    delay: input({ type: "number", min: "0", max: "60", step: "0.1", placeholder: "1" }),
    schedule: input({ type: "number", min: "15", max: "525600" }),
  };
  const set = (kinds, legend, ...nodes) => element("fieldset", { "data-kinds": kinds }, element("legend", {}, legend), ...nodes);
  f.sets = [
    set("confluence jira", "Atlassian site (read with your Atlassian connection)",
      ...field("source-base-url", "Base URL", f.baseUrl, "Pick a site under \"Atlassian connection\", or your site's address.")),
    set("confluence", "Confluence", ...field("source-spaces", "Space keys (comma-separated)", f.spaces)),
    set("jira", "Jira", ...field("source-jql", "JQL", f.jql)),
    set("web", "Website",
      ...field("source-urls", "Start URLs or sitemaps (one per line)", f.urls),
      ...field("source-prefixes", "Allowed prefixes (one per line; empty: the start pages' folders)", f.prefixes),
      ...field("source-max-depth", "Max depth (links from a start page, default 2)", f.maxDepth),
      ...field("source-max-pages", "Max pages (default 200)", f.maxPages),
      ...field("source-delay", "Delay between requests to a host (seconds, default 1)", f.delay)),
  ];
  return f;
}

function config(f) {
  const kind = f.kind.value;
  if (kind === "confluence") {
    return { base_url: f.baseUrl.value.trim(), spaces: f.spaces.value.split(",").map((k) => k.trim()).filter(Boolean) };
  }
  if (kind === "jira") return { base_url: f.baseUrl.value.trim(), jql: f.jql.value };
  const web = { urls: lines(f.urls.value) };
  const prefixes = lines(f.prefixes.value);
  if (prefixes.length) web.allowed_prefixes = prefixes;
  // Empty number fields keep the API's defaults.
  for (const [key, control] of [["max_depth", f.maxDepth], ["max_pages", f.maxPages], ["delay_s", f.delay]]) {
    if (control.value !== "") web[key] = Number(control.value);
  }
  return web;
}

// The Atlassian section and the form; `added()` is called once a source is created.
export function sourceForm(collection, added) {
  const f = fields();
  // Only the chosen kind's fields show, and only they are checked (a disabled fieldset's
  // required fields do not block the form).
  const showKind = () => {
    for (const set of f.sets) {
      const shown = set.dataset.kinds.split(" ").includes(f.kind.value);
      set.hidden = !shown;
      set.disabled = !shown;
    }
  };
  f.kind.addEventListener("change", showKind);
  const form = element("form", { id: "source-form", "aria-labelledby": "source-form-title" },
    ...field("source-kind", "Kind", f.kind), ...field("source-name", "Source name", f.name), ...f.sets,
    ...field("source-schedule", "Sync every (minutes, 15 or more; empty: only when asked)", f.schedule),
    element("button", { type: "submit", class: "primary" }, "Add source"));
  const formError = errorBox(form, "source-form-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const kind = f.kind.value;
    const body = { kind, collection_id: collection.id, name: f.name.value, config: config(f) };
    if (kind !== "web") body.connector = "atlassian";
    if (f.schedule.value !== "") body.schedule_minutes = Number(f.schedule.value);
    const created = await attempt(formError, () => api("/api/v1/sources", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }));
    if (!created) return;
    form.reset();
    f.kind.value = kind;
    showKind();
    await added();
  });
  showKind();
  const useSite = (site, kind) => {
    f.kind.value = kind;
    showKind();
    f.baseUrl.value = `https://api.atlassian.com/ex/${kind}/${site.id}`;
    (kind === "jira" ? f.jql : f.spaces).focus();
  };
  return [atlassianSection(useSite), element("h3", { id: "source-form-title" }, "Add a source"), form];
}

function atlassianSection(useSite) {
  const hint = element("p", { class: "hint", id: "atlassian-hint" });
  const sites = element("ul", { id: "atlassian-sites" });
  const section = element("div", { id: "atlassian", role: "group", "aria-labelledby": "atlassian-title" },
    element("h3", { id: "atlassian-title" }, "Atlassian connection"));
  const notice = connectNotice();
  if (notice) section.append(notice);
  const box = errorBox(section);
  section.append(element("button", { type: "button", onclick: () => connectAtlassian(box) }, "Connect Atlassian"),
    hint, sites);
  loadSites(hint, sites, useSite, box);
  return section;
}
