// The Sources section: the chosen collection's sources (a Confluence space, a Jira query or a
// website kept in sync) with their last runs, a form to add one, and the Atlassian connection
// whose sites fill a Confluence or Jira source's base URL. Same JSON API as everything else.
import { $, api, element, report } from "./api.js";

const ACTIVE = ["queued", "running"];
const COUNTS = ["added", "updated", "deleted", "unchanged", "failed"];
const KIND_NAMES = { confluence: "Confluence", jira: "Jira", web: "Website" };
let collection = null;
let pollTimer = null;
let loadFailed = false;
let documentsChanged = async () => {};
let connectResult = null;  // what the Atlassian callback sent the browser back with, once
const openRuns = new Set();  // sources whose recent runs are shown

export function showSources(chosen) {
  collection = chosen;
  $("#sources-collection").textContent = chosen ? `in ${chosen.name}` : "";
  $("#sources-error").textContent = "";
  $("#source-form-error").textContent = "";
  return loadSources();
}

async function loadSources() {
  clearTimeout(pollTimer);
  const body = $("#sources tbody");
  if (!collection) { body.replaceChildren(); return; }
  const shown = collection.id;
  let rows;
  try {
    const page = await api("/api/v1/sources?limit=100");
    const here = page.items.filter((s) => s.collection_id === shown);
    rows = await Promise.all(here.map(async (s) =>
      [s, (await api(`/api/v1/sources/${s.id}/runs?limit=1`)).items[0]]));
  } catch (error) {
    report(error, "#sources-error");
    loadFailed = true;
    pollTimer = setTimeout(loadSources, 3000);  // keep watching: the server may be back soon
    return;
  }
  if (loadFailed) $("#sources-error").textContent = "";  // the failure no longer applies
  loadFailed = false;
  if (collection?.id !== shown) return;  // another collection was chosen meanwhile
  body.replaceChildren(...rows.map(([source, run]) => sourceRow(source, run)));
  // While a run is under way: watch it, and the documents it brings in.
  if (rows.some(([, run]) => run && ACTIVE.includes(run.state))) {
    pollTimer = setTimeout(async () => { await loadSources(); await documentsChanged(); }, 1000);
  }
}

function pointsAt(source) {
  const config = source.config;
  if (source.kind === "confluence") return `${config.base_url}, spaces ${config.spaces.join(", ")}`;
  if (source.kind === "jira") return `${config.base_url}: ${config.jql}`;
  return config.urls.join(" ");
}

function schedule(source) {
  const when = source.schedule_minutes ? `every ${source.schedule_minutes} min` : "on demand";
  return source.paused ? `paused (${when})` : when;
}

function runSummary(run) {
  const counts = COUNTS.map((c) => `${run[c]} ${c}`).join(", ");
  const node = element("span", {}, element("span", { class: `status-${run.state}` }, run.state),
    `: ${counts}`);
  if (run.error) node.append(element("span", { class: "error" }, ` ${run.error}`));
  return node;
}

function sourceRow(source, run) {
  const name = source.name;
  return element("tr", { "data-source": source.id },
    element("td", {}, name, " ", element("span", { class: "hint" }, KIND_NAMES[source.kind])),
    element("td", { class: "points-at" }, pointsAt(source)),
    element("td", {}, schedule(source)),
    element("td", { class: "last-run" }, run ? runSummary(run) : "no run yet"),
    element("td", {},
      element("button", { type: "button", "aria-label": `Sync ${name} now`,
        onclick: () => act(`/api/v1/sources/${source.id}/sync`, { method: "POST" }) }, "Sync now"),
      " ",
      element("button", { type: "button", "aria-label": `${source.paused ? "Resume" : "Pause"} ${name}`,
        onclick: () => act(`/api/v1/sources/${source.id}`, { method: "PATCH",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ paused: !source.paused }) }) }, source.paused ? "Resume" : "Pause"),
      " ",
      element("button", { type: "button", "aria-label": `Delete source ${name}`,
        onclick: () => removeSource(source) }, "Delete"),
      recentRuns(source)));
}

function recentRuns(source) {
  const list = element("ol", { class: "runs" });
  const details = element("details", {
    ontoggle: () => {
      if (!details.open) { openRuns.delete(source.id); return; }
      openRuns.add(source.id);
      loadRuns(source, list);
    },
  }, element("summary", { "aria-label": `Recent runs of ${source.name}` }, "Recent runs"), list);
  if (openRuns.has(source.id)) details.open = true;  // kept open across refreshes
  return details;
}

async function loadRuns(source, list) {
  let page;
  try {
    page = await api(`/api/v1/sources/${source.id}/runs?limit=10`);
  } catch (error) {
    report(error, "#sources-error");
    return;
  }
  list.replaceChildren(...page.items.map((run) => element("li", {},
    `${new Date(run.created_at).toLocaleString()} (${run.trigger}) `, runSummary(run),
    ...run.errors.map((e) => element("span", { class: "error item-error" }, e)))));
  if (!page.items.length) list.replaceChildren(element("li", {}, "No runs yet."));
}

async function act(path, options) {
  $("#sources-error").textContent = "";
  try {
    await api(path, options);
  } catch (error) {
    report(error, "#sources-error");
  }
  await loadSources();
  await documentsChanged();  // a run may have finished already, or a deletion removed some
}

async function removeSource(source) {
  if (!confirm(`Delete the source ${source.name} and the documents it brought in?`)) return;
  await act(`/api/v1/sources/${source.id}`, { method: "DELETE" });
}

// ------------------------------------------------------------------ adding a source

// Only the chosen kind's fields are shown, and only they are checked (a disabled fieldset's
// required fields do not block the form).
function showKindFields() {
  const kind = $("#source-kind").value;
  for (const fieldset of document.querySelectorAll("#source-form fieldset[data-kinds]")) {
    const shown = fieldset.dataset.kinds.split(" ").includes(kind);
    fieldset.hidden = !shown;
    fieldset.disabled = !shown;
  }
}

const lines = (text) => text.split("\n").map((line) => line.trim()).filter(Boolean);

function sourceConfig(kind) {
  if (kind === "confluence") {
    const spaces = $("#source-spaces").value.split(",").map((key) => key.trim()).filter(Boolean);
    return { base_url: $("#source-base-url").value.trim(), spaces };
  }
  if (kind === "jira") return { base_url: $("#source-base-url").value.trim(), jql: $("#source-jql").value };
  const config = { urls: lines($("#source-urls").value) };
  const prefixes = lines($("#source-prefixes").value);
  if (prefixes.length) config.allowed_prefixes = prefixes;
  // Empty number fields keep the API's defaults.
  for (const [field, input] of [["max_depth", "#source-max-depth"], ["max_pages", "#source-max-pages"],
    ["delay_s", "#source-delay"]]) {
    if ($(input).value !== "") config[field] = Number($(input).value);
  }
  return config;
}

async function addSource(event) {
  event.preventDefault();
  $("#source-form-error").textContent = "";
  if (!collection) { $("#source-form-error").textContent = "Create or choose a collection first."; return; }
  const kind = $("#source-kind").value;
  const body = { kind, collection_id: collection.id, name: $("#source-name").value,
    config: sourceConfig(kind) };
  if (kind !== "web") body.connector = "atlassian";
  if ($("#source-schedule").value !== "") body.schedule_minutes = Number($("#source-schedule").value);
  try {
    await api("/api/v1/sources", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
  } catch (error) {
    report(error, "#source-form-error");
    return;
  }
  $("#source-form").reset();
  $("#source-kind").value = kind;
  showKindFields();
  await loadSources();
  await documentsChanged();
}

// ------------------------------------------------------------------ connecting Atlassian

async function connectAtlassian() {
  $("#connect-status").textContent = "";
  $("#atlassian-error").textContent = "";
  try {
    // Sets the cookie that binds the consent to this browser, then off to Atlassian.
    const started = await api("/api/v1/connectors/atlassian/authorize");
    location.assign(started.authorize_url);
  } catch (error) {
    report(error, "#atlassian-error");
  }
}

function useSite(site, kind) {
  $("#source-kind").value = kind;
  showKindFields();
  $("#source-base-url").value = `https://api.atlassian.com/ex/${kind}/${site.id}`;
  $(kind === "jira" ? "#source-jql" : "#source-spaces").focus();
}

async function loadSites() {
  let page;
  try {
    page = await api("/api/v1/connectors/atlassian/resources");
  } catch (error) {
    $("#atlassian-sites").replaceChildren();
    // Not connected (404), not set up here (503), or to be connected again (409): a hint.
    if ([404, 409, 503].includes(error.status)) $("#atlassian-hint").textContent = error.message;
    else report(error, "#atlassian-error");
    return;
  }
  $("#atlassian-hint").textContent = page.items.length
    ? "Connected. Start a source from one of its sites:" : "Connected, but to no site.";
  $("#atlassian-sites").replaceChildren(...page.items.map((site) => element("li", {},
    `${site.name} (${site.url}) `,
    ...["confluence", "jira"].map((kind) => element("button", { type: "button",
      "aria-label": `${KIND_NAMES[kind]} source from ${site.name}`,
      onclick: () => useSite(site, kind) }, `${KIND_NAMES[kind]} source`)))));
}

// Once signed in: how a consent just ended (said once), and the sites the connection reaches.
export async function startSources() {
  if (connectResult?.error) report(new Error(`Connecting Atlassian failed: ${connectResult.error}`), "#atlassian-error");
  else if (connectResult) $("#connect-status").textContent = "Atlassian is connected.";
  connectResult = null;
  await loadSites();
}

export function setUpSources(onDocumentsChanged) {
  documentsChanged = onDocumentsChanged;
  const params = new URLSearchParams(location.search);
  if (params.has("connected") || params.has("connect_error")) {
    connectResult = { error: params.get("connect_error") };
    params.delete("connected");
    params.delete("connect_error");
    const query = params.toString();
    history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
  }
  $("#source-kind").addEventListener("change", showKindFields);
  $("#source-form").addEventListener("submit", addSource);
  $("#connect-atlassian").addEventListener("click", connectAtlassian);
  showKindFields();
}
