// The Sources tab: the collection's sources (a Confluence space, a Jira query or a website kept
// in sync; among your first 100) with their last runs, watched while a run is under way; sync
// now, pause or resume, recent runs, delete after a confirmation; and the form adding one.
import { api, element } from "../../api.js";
import { attempt, confirmAction, errorBox, formatTime } from "../../ui.js";
import { sourceForm } from "./source_form.js";

const ACTIVE = ["queued", "running"];
const COUNTS = ["added", "updated", "deleted", "unchanged", "failed"];
const KIND_NAMES = { confluence: "Confluence", jira: "Jira", web: "Website" };

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
  const node = element("span", {}, element("span", { class: `state state-${run.state}` }, run.state),
    `: ${COUNTS.map((c) => `${run[c]} ${c}`).join(", ")}`);
  if (run.error) node.append(element("span", { class: "error" }, ` ${run.error}`));
  return node;
}

export function mountSources(panel, collection, documentsChanged) {
  const list = element("ul", { id: "sources", class: "sources", "aria-labelledby": "sources-title" });
  // Said when a run starts or ends (the list itself is rebuilt every second meanwhile).
  const status = element("p", { class: "hint", id: "sources-status", "aria-live": "polite" });
  const box = errorBox(element("div"), "sources-error");
  const openRuns = new Set();  // sources whose recent runs are shown, kept open across refreshes
  let timer = null;
  let stopped = false;
  let failed = false;

  const load = async () => {
    clearTimeout(timer);
    let rows;
    try {
      const page = await api("/api/v1/sources?limit=100");
      const here = page.items.filter((s) => s.collection_id === collection.id);
      rows = await Promise.all(here.map(async (s) => [s, (await api(`/api/v1/sources/${s.id}/runs?limit=1`)).items[0]]));
    } catch (error) {
      box.show(error);
      failed = true;
      if (!stopped) timer = setTimeout(load, 3000);  // keep watching: the server may be back soon
      return;
    }
    if (stopped) return;
    if (failed) box.clear();  // that failure no longer applies
    failed = false;
    list.replaceChildren(...rows.map(([source, run]) => sourceItem(source, run, { act, remove, openRuns, box })));
    if (!rows.length) list.append(element("li", { class: "hint" }, "No sources yet."));
    // While a run is under way: watch it, and the documents it brings in.
    const running = rows.some(([, run]) => run && ACTIVE.includes(run.state));
    const said = running ? "A sync is under way." : "";
    if (status.textContent !== said) status.textContent = said;
    if (running) {
      timer = setTimeout(async () => { await load(); await documentsChanged(); }, 1000);
    }
  };
  const act = async (path, options) => {
    await attempt(box, () => api(path, options));
    await load();
    await documentsChanged();  // a run may have finished already, or a deletion removed some
  };
  const remove = async (source) => {
    if (!(await confirmAction(`Delete the source ${source.name} and the documents it brought in?`))) return;
    await act(`/api/v1/sources/${source.id}`, { method: "DELETE" });
    document.getElementById("sources-title")?.focus();
  };

  panel.append(element("h2", { id: "sources-title", tabindex: "-1" }, "Sources"),
    element("p", { class: "hint" }, "Confluence spaces, Jira issues and websites kept in sync with this collection."),
    status, list, box.node,
    ...sourceForm(collection, async () => { await load(); await documentsChanged(); }));
  load();
  return () => { stopped = true; clearTimeout(timer); };
}

function sourceItem(source, run, { act, remove, openRuns, box }) {
  const name = source.name;
  const paused = source.paused;
  return element("li", { class: "card source", "data-source": String(source.id) },
    element("div", {}, element("strong", {}, name), " ", element("span", { class: "hint" }, KIND_NAMES[source.kind])),
    element("p", { class: "points-at" }, pointsAt(source)),
    element("p", { class: "hint schedule" }, schedule(source)),
    element("p", { class: "last-run" }, run ? runSummary(run) : "no run yet"),
    element("div", { class: "row" },
      element("button", { type: "button", "aria-label": `Sync ${name} now`,
        onclick: () => act(`/api/v1/sources/${source.id}/sync`, { method: "POST" }) }, "Sync now"),
      element("button", { type: "button", "aria-label": `${paused ? "Resume" : "Pause"} ${name}`,
        onclick: () => act(`/api/v1/sources/${source.id}`, { method: "PATCH",
          headers: { "Content-Type": "application/json" }, body: JSON.stringify({ paused: !paused }) }) },
      paused ? "Resume" : "Pause"),
      element("button", { type: "button", class: "danger", "aria-label": `Delete source ${name}`,
        onclick: () => remove(source) }, "Delete")),
    recentRuns(source, openRuns, box));
}

function recentRuns(source, openRuns, box) {
  const list = element("ol", { class: "runs" });
  const details = element("details", {
    ontoggle: () => {
      if (!details.open) { openRuns.delete(source.id); return; }
      openRuns.add(source.id);
      loadRuns(source, list, box);
    },
  }, element("summary", {}, "Recent runs"), list);
  if (openRuns.has(source.id)) details.open = true;
  return details;
}

async function loadRuns(source, list, box) {
  const page = await attempt(box, () => api(`/api/v1/sources/${source.id}/runs?limit=10`));
  if (!page) return;
  list.replaceChildren(...page.items.map((run) => element("li", {},
    `${formatTime(run.created_at)} (${run.trigger}) `, runSummary(run),
    ...run.errors.map((e) => element("span", { class: "error item-error" }, e)))));
  if (!page.items.length) list.replaceChildren(element("li", {}, "No runs yet."));
}
