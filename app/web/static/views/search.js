// The search view: a query with its mode (your default, hybrid, semantic, full text), the
// collections to search (none ticked: all you can read), a metadata filter (JSON, checked here
// first) and the number of hits; each hit shows its file, page, score, heading path and text
// with the query's words (not stop words) highlighted, and opens its passage in the side panel.
import { api, element } from "../api.js";
import { attempt, errorBox, heading, highlighted, queryTerms } from "../ui.js";

const MODES = [["", "your default"], ["hybrid", "hybrid"], ["semantic", "semantic"], ["fulltext", "full text"]];

function labelled(id, text, control, hint) {
  control.id = id;
  const nodes = [element("label", { for: id }, text), control];
  if (hint) {
    control.setAttribute("aria-describedby", `${id}-hint`);
    nodes.push(element("p", { class: "hint", id: `${id}-hint` }, hint));
  }
  return element("div", { class: "field" }, ...nodes);
}

// The filter as an object, or an Error saying what is wrong with it (null when empty).
export function parseFilter(text) {
  if (!text.trim()) return null;
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return new Error(`The metadata filter is not valid JSON: ${error.message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return new Error('The metadata filter must be a JSON object, like {"field": "team", "value": "hr"}.');
  }
  return value;
}

export async function mount(container, params, context) {
  const query = element("input", { type: "search", required: "", maxlength: "4000", autocomplete: "off" });
  const mode = element("select", {}, ...MODES.map(([value, text]) => element("option", { value }, text)));
  const topK = element("input", { type: "number", min: "1", max: "100", placeholder: "8" });
  const filter = element("textarea", { rows: "2", spellcheck: "false",
    placeholder: '{"field": "team", "op": "eq", "value": "hr"}' });
  const collections = element("div", { class: "choices" });
  const form = element("form", { class: "search-form", role: "search" },
    element("div", { class: "row search-main" }, labelled("query", "Query", query), labelled("mode", "Mode", mode),
      element("button", { type: "submit", class: "primary" }, "Search")),
    element("details", { class: "search-filters" }, element("summary", {}, "Filters"),
      element("fieldset", { class: "collections-choice" },
        element("legend", {}, "Collections (none ticked: all you can read)"), collections),
      labelled("filter", "Metadata filter (JSON, optional)", filter,
        "Conditions on the documents' metadata; ops eq, ne, in, lt, lte, gt, gte, exists; and, or, not."),
      labelled("top-k", "Hits (top k)", topK)));
  const formError = errorBox(form, "search-error");
  const summary = element("p", { class: "hint", id: "search-summary" });
  const hits = element("ol", { id: "hits", class: "hits", "aria-live": "polite" });
  container.append(heading(1, "Search"), form, summary, hits);
  const controller = new AbortController();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const parsed = parseFilter(filter.value);
    filter.toggleAttribute("aria-invalid", parsed instanceof Error);
    if (parsed instanceof Error) {
      form.querySelector("details").open = true;
      formError.show(parsed);
      filter.focus();
      return;
    }
    const body = { query: query.value };
    if (mode.value) body.mode = mode.value;
    if (topK.value !== "") body.top_k = Number(topK.value);
    if (parsed) body.filter = parsed;
    const chosen = [...collections.querySelectorAll("input:checked")].map((box) => Number(box.value));
    if (chosen.length) body.collection_ids = chosen;
    hits.setAttribute("aria-busy", "true");
    const found = await attempt(formError, () => api("/api/v1/search", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      signal: controller.signal,
    }));
    hits.removeAttribute("aria-busy");
    if (found) showHits(found, query.value, { summary, hits, context });
  });
  await attempt(formError, () => loadCollections(collections, controller.signal));
  query.focus();
  return () => controller.abort();
}

async function loadCollections(container, signal) {
  const page = await api("/api/v1/collections?limit=100", { signal });
  container.replaceChildren(...page.items.map((collection) => element("label", { class: "choice" },
    element("input", { type: "checkbox", value: String(collection.id) }), collection.name)));
  if (!page.items.length) container.append(element("p", { class: "hint" }, "No collections yet."));
}

function showHits(found, query, { summary, hits, context }) {
  const terms = queryTerms(query);
  const count = `${found.hits.length} hit${found.hits.length === 1 ? "" : "s"} (${found.mode})`;
  summary.replaceChildren(count, ...found.warnings.map((w) => element("span", { class: "warning" }, ` ${w}`)));
  hits.replaceChildren(...found.hits.map((hit) => hitItem(hit, found.documents[String(hit.document_id)], terms, context)));
}

function where(hit) {
  const parts = [];
  if (hit.page !== null) parts.push(`page ${hit.page}`);
  parts.push(`score ${hit.score.toFixed(hit.score < 1 ? 4 : 2)}`);
  return parts.join(" · ");
}

function hitItem(hit, doc, terms, context) {
  const open = element("button", { type: "button", class: "quiet hit-file",
    "aria-label": `Open the passage from ${hit.filename}`, onclick: () => openPassage(hit, doc, terms, context, open) },
  hit.filename);
  const item = element("li", { class: "hit card" },
    element("div", { class: "hit-head" }, open, element("span", { class: "hint" }, where(hit))));
  if (hit.heading_path.length) item.append(element("p", { class: "hint heading-path" }, hit.heading_path.join(" › ")));
  item.append(element("p", { class: "hit-text" }, ...highlighted(hit.text, terms)));
  return item;
}

function openPassage(hit, doc, terms, context, opener) {
  const close = element("button", { type: "button", class: "icon quiet", "aria-label": "Close the passage",
    onclick: () => { context.closePanel(); opener.focus(); } }, "✕");
  const title = element("h2", { id: "citation-title", tabindex: "-1" }, hit.filename);
  const nodes = [element("div", { class: "row panel-head" }, title, close)];
  if (doc?.title && doc.title !== hit.filename) nodes.push(element("p", { class: "hint" }, doc.title));
  nodes.push(element("p", { class: "hint" }, where(hit)));
  if (hit.heading_path.length) nodes.push(element("p", { class: "hint" }, hit.heading_path.join(" › ")));
  nodes.push(element("p", { class: "passage-text" }, ...highlighted(hit.text, terms)),
    element("a", { href: `#/knowledge/${hit.collection_id}` }, "Open its collection"));
  context.openPanel(...nodes);
  title.focus();
}
