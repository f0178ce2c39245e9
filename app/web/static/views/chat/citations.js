// Citations: an answer's [n] markers as numbered chips, and the passage a chip opens in the
// citation panel (its file, page, the chunk's text with the cited span marked, and the document:
// its source's page when it came from a source, else a download).
import { api, authHeaders, element } from "../../api.js";
import { errorBox } from "../../ui.js";

// The chips of a marker like [1] or [1, 3]; null (left as text) when a number is not a source.
export function chips(numbers, citations, context) {
  const cited = numbers.map((n) => citations.find((c) => c.n === n));
  if (!cited.length || cited.some((c) => !c)) return null;
  return [element("span", { class: "cites" }, ...cited.map((c) => {
    const chip = element("button", { type: "button", class: "cite",
      "aria-label": `Source ${c.n}: ${c.filename}${c.page ? `, page ${c.page}` : ""}` }, String(c.n));
    chip.addEventListener("click", () => openPassage(c, chip, context));
    return chip;
  }))];
}

// The chunk's text with the citation's span (document offsets) marked, as nodes.
function marked(chunk, citation) {
  const text = chunk.text;
  const start = Math.max(0, Math.min(text.length, citation.char_start - chunk.char_start));
  const end = Math.max(start, Math.min(text.length, citation.char_end - chunk.char_start));
  if (end === start) return [text];
  return [text.slice(0, start), element("mark", {}, text.slice(start, end)), text.slice(end)];
}

function webAddress(value) {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol) ? value : null;
  } catch {
    return null;
  }
}

// The original file, fetched with the page's credentials (a plain link would carry no token).
async function download(documentId, filename, box) {
  box.clear();
  try {
    const response = await fetch(`/api/v1/documents/${documentId}/content`,
      { headers: authHeaders(), credentials: "same-origin" });
    if (!response.ok) throw new Error(`the download failed: ${response.status} ${response.statusText}`);
    const url = URL.createObjectURL(await response.blob());
    const save = element("a", { href: url, download: filename });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    box.show(error);
  }
}

function documentLink(citation, metadata, box) {
  const url = webAddress(metadata?.url);
  if (url) {
    return element("a", { href: url, target: "_blank", rel: "noopener noreferrer",
      class: "button" }, "Open the source");
  }
  return element("button", { type: "button",
    onclick: () => download(citation.document_id, citation.filename, box) },
  `Download ${citation.filename}`);
}

async function passage(citation) {
  const [chunk, documentRow] = await Promise.all([
    api(`/api/v1/chunks/${citation.chunk_id}`),
    api(`/api/v1/documents/${citation.document_id}`).catch(() => null),
  ]);
  return { chunk, metadata: documentRow?.metadata ?? chunk.metadata };
}

// Open the passage of `citation` in the panel; Close (or Escape) gives the focus back to `chip`.
export async function openPassage(citation, chip, context) {
  const close = () => { context.closePanel(); chip.focus(); };
  const title = element("h2", { id: "citation-title", tabindex: "-1" },
    `[${citation.n}] ${citation.filename}`);
  const where = element("p", { class: "hint" }, citation.page ? `Page ${citation.page}` : "");
  const text = element("blockquote", { class: "passage", "aria-live": "polite" }, "Loading...");
  const actions = element("div", { class: "row passage-actions" });
  const holder = element("div");
  const box = errorBox(holder);
  const shut = element("button", { type: "button", class: "quiet close-panel", onclick: close },
    "Close");
  const header = element("div", { class: "panel-header" }, title, shut);
  context.openPanel(header, where, text, actions, holder);
  const panel = document.getElementById("citation-panel");
  panel.onkeydown = (event) => {
    if (event.key !== "Escape") return;
    event.stopPropagation();  // the shell would close it without giving the focus back
    close();
  };
  title.focus();
  try {
    const { chunk, metadata } = await passage(citation);
    if (!title.isConnected) return;  // closed, or another opened meanwhile
    if (chunk.heading_path.length) where.append(where.textContent ? " · " : "", chunk.heading_path.join(" › "));
    text.replaceChildren(...marked(chunk, citation));
    actions.append(documentLink(citation, metadata, box));
  } catch (error) {
    text.textContent = "";
    box.show(error);
  }
}
