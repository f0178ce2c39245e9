// The Documents tab: upload (uploads.js), then the collection's documents, newest first and
// paged, each a row (document_row.js) polled every second while any is queued or processing,
// with a live summary of what is under way.
import { api, element } from "../../api.js";
import { errorBox } from "../../ui.js";
import { PROCESSING, documentRow } from "./document_row.js";
import { dropZone, uploader } from "./uploads.js";

const PAGE = 50;
const MAX_PAGE = 100;  // the API's largest page

export function mountDocuments(panel, collection) {
  const canWrite = collection.role !== "reader";
  const uploads = element("tbody", { class: "uploads" });
  const body = element("tbody", { class: "documents" });
  const summary = element("p", { class: "hint", id: "documents-status", "aria-live": "polite" });
  const more = element("button", { type: "button", class: "quiet", hidden: "" }, "More documents");
  const table = element("div", { class: "table-wrap" }, element("table", { class: "document-table" },
    element("caption", { class: "visually-hidden" }, `Documents in ${collection.name}`),
    element("thead", {}, element("tr", {}, ...["File", "Size", "Status", "Actions"].map((name) =>
      element("th", { scope: "col" }, name)))),
    uploads, body));
  const title = element("h2", { id: "documents-title", tabindex: "-1" }, "Documents");
  const rows = new Map();  // document id -> its row
  let wanted = PAGE;
  let timer = null;
  let stopped = false;

  const listError = errorBox(panel, "documents-error");
  const refresh = async () => {
    clearTimeout(timer);
    let items;
    let total;
    try {
      ({ items, total } = await fetchShown(collection.id, wanted));
    } catch (error) {
      listError.show(error);
      if (!stopped) timer = setTimeout(refresh, 3000);  // the server may be back soon
      return;
    }
    if (stopped) return;
    listError.clear();
    show(items);
    more.hidden = items.length >= total;
    const busy = items.filter((doc) => PROCESSING.includes(doc.status)).length;
    summary.textContent = summaryText(total, busy);
    if (busy) timer = setTimeout(refresh, 1000);
  };
  const show = (items) => {
    const ids = new Set(items.map((doc) => doc.id));
    for (const [id, row] of rows) if (!ids.has(id)) { row.node.remove(); rows.delete(id); }
    const order = items.map((doc) => {
      if (!rows.has(doc.id)) rows.set(doc.id, documentRow(doc, canWrite, refresh));
      const row = rows.get(doc.id);
      row.update(doc);
      return row.node;
    });
    // Moving a node takes the focus off it: only when the order changed.
    if (order.some((node, index) => body.children[index] !== node)) body.replaceChildren(...order);
    if (!items.length) body.replaceChildren(emptyRow());
  };
  more.addEventListener("click", () => { wanted += PAGE; refresh(); });

  panel.append(title);
  if (canWrite) panel.append(dropZone(uploader(collection, uploads, refresh)));
  panel.append(summary, table, more);
  panel.append(listError.node);
  refresh();
  return { refresh, cleanup: () => { stopped = true; clearTimeout(timer); } };
}

// The first `wanted` documents (in pages of at most the API's largest).
async function fetchShown(collectionId, wanted) {
  const items = [];
  let total = 0;
  do {
    const limit = Math.min(MAX_PAGE, wanted - items.length);
    const page = await api(`/api/v1/documents?collection_id=${collectionId}&limit=${limit}&offset=${items.length}`);
    items.push(...page.items);
    total = page.total;
    if (page.items.length < limit) break;
  } while (items.length < wanted);
  return { items, total };
}

function summaryText(total, busy) {
  if (!total) return "";
  const count = `${total} document${total === 1 ? "" : "s"}`;
  return busy ? `${count}, ${busy} being processed.` : `${count}, all processed.`;
}

function emptyRow() {
  return element("tr", {}, element("td", { colspan: "4", class: "hint" }, "No documents yet."));
}
