// A document's row in the collection's table: file, size, status with its progress (the stage,
// and chunks embedded of total once known) or its error, and its actions: download, reindex
// and delete (after a confirmation). The row is kept and updated in place while it is polled,
// so focus on its buttons survives the refreshes.
import { api, authHeaders, element } from "../../api.js";
import { attempt, confirmAction, errorBox, formatBytes } from "../../ui.js";

export const PROCESSING = ["queued", "extracting", "chunking", "embedding"];
const STAGES = {
  queued: "waiting for a worker", extracting: "reading the text", chunking: "splitting into chunks",
  embedding: "embedding the chunks",
};

export function cell(label, ...children) {
  return element("td", { "data-label": label }, ...children);
}

// What the status cell says: the state, then the progress, the chunk count or the error.
export function statusNodes(doc) {
  const nodes = [element("span", { class: `state state-${doc.status}` }, doc.status)];
  if (PROCESSING.includes(doc.status)) {
    const total = doc.chunks_total;
    if (typeof total === "number" && total > 0) {
      const done = doc.chunks_embedded ?? 0;
      nodes.push(element("progress", { max: String(total), value: String(done),
        "aria-label": `Embedding ${doc.filename}` }),
      element("span", { class: "hint progress-text" }, `${done} of ${total} chunks`));
    } else {
      nodes.push(element("span", { class: "hint" }, STAGES[doc.status]));
    }
  } else if (doc.status === "indexed") {
    nodes.push(element("span", { class: "hint" }, `${doc.chunk_count} chunk${doc.chunk_count === 1 ? "" : "s"}`));
  } else if (doc.status === "failed") {
    nodes.push(element("span", { class: "error doc-error" }, `Failed while ${doc.stage}: ${doc.error || "unknown error"}`));
  }
  return nodes;
}

// Fetch the original with the page's credentials (a bearer token is no cookie: a plain link
// would not authenticate) and save it through a Blob URL.
async function download(doc) {
  const response = await fetch(`/api/v1/documents/${doc.id}/content`, {
    headers: authHeaders(), credentials: "same-origin",
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => null);
    const error = new Error(problem?.detail || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  const url = URL.createObjectURL(await response.blob());
  const link = element("a", { href: url, download: doc.filename, hidden: "" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// The row of `doc`: {node, update(doc)}; `changed()` reloads the list after an action.
export function documentRow(initial, canWrite, changed) {
  let doc = initial;
  const status = cell("Status");
  const actions = cell("Actions");
  const box = errorBox(actions);
  const name = doc.filename;
  const reindex = element("button", { type: "button", "aria-label": `Reindex ${name}`,
    onclick: () => attempt(box, async () => {
      await api(`/api/v1/documents/${doc.id}/reindex`, { method: "POST" });
      await changed();
    }) }, "Reindex");
  const buttons = element("div", { class: "row" },
    element("button", { type: "button", "aria-label": `Download ${name}`,
      onclick: () => attempt(box, () => download(doc)) }, "Download"));
  if (canWrite) {
    buttons.append(reindex, element("button", { type: "button", class: "danger",
      "aria-label": `Delete ${name}`, onclick: () => remove(doc, box, changed) }, "Delete"));
  }
  actions.prepend(buttons);
  const node = element("tr", { "data-document": String(doc.id) },
    cell("File", element("span", { class: "filename" }, name)),
    cell("Size", formatBytes(doc.size_bytes)), status, actions);
  const update = (fresh) => {
    doc = fresh;
    node.dataset.status = doc.status;
    status.replaceChildren(...statusNodes(doc));
    reindex.disabled = PROCESSING.includes(doc.status);
  };
  update(doc);
  return { node, update };
}

async function remove(doc, box, changed) {
  if (!(await confirmAction(`Delete "${doc.filename}" with its chunks? This cannot be undone.`))) return;
  await attempt(box, async () => {
    await api(`/api/v1/documents/${doc.id}`, { method: "DELETE" });
    await changed();
    document.getElementById("documents-title")?.focus();  // the row and its button are gone
  });
}
