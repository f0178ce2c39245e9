// Uploading files into a collection: dropped on the page or chosen with the file picker, sent
// a few at a time (multipart POST /api/v1/documents), each with its own row: waiting, then
// uploading; once the server has it, the document's own row takes over (queued, processing,
// indexed or failed). A refused file (too large, unsupported, ...) keeps its row with the error.
import { api, element } from "../../api.js";
import { formatBytes } from "../../ui.js";
import { cell } from "./document_row.js";

const AT_ONCE = 3;  // parallel uploads: enough to keep the server busy, not to flood it

// Files go in `body` (a tbody) as rows; `uploaded(document)` is called as each one arrives.
export function uploader(collection, body, uploaded) {
  const waiting = [];
  let running = 0;
  const pump = () => {
    while (running < AT_ONCE && waiting.length) {
      running += 1;
      send(waiting.shift()).finally(() => { running -= 1; pump(); });
    }
  };
  const send = async ({ file, row }) => {
    row.show("uploading", element("progress", { "aria-label": `Uploading ${file.name}` }));
    const form = new FormData();
    form.append("collection_id", String(collection.id));
    form.append("file", file, file.name);
    let doc;
    try {
      doc = await api("/api/v1/documents", { method: "POST", body: form });
    } catch (error) {
      row.fail(error);
      return;
    }
    row.node.remove();  // the document's own row takes over
    await uploaded(doc);
  };
  return (files) => {
    for (const file of files) {
      const row = uploadRow(file);
      body.append(row.node);
      waiting.push({ file, row });
    }
    pump();
  };
}

function uploadRow(file) {
  const status = cell("Status");
  const actions = cell("Actions");
  const node = element("tr", { class: "upload", "data-upload": file.name },
    cell("File", element("span", { class: "filename" }, file.name)),
    cell("Size", formatBytes(file.size)), status, actions);
  const show = (state, ...more) => {
    node.dataset.status = state;
    status.replaceChildren(element("span", { class: `state state-${state}` }, state), ...more);
  };
  show("waiting");
  return {
    node,
    show,
    fail(error) {
      show("refused", element("span", { class: "error", role: "alert" }, error.message));
      const dismiss = element("button", { type: "button", class: "quiet",
        "aria-label": `Dismiss ${file.name}`, onclick: () => node.remove() }, "Dismiss");
      actions.replaceChildren(dismiss);
    },
  };
}

// The drop zone with its file picker (the keyboard's way): `add(files)` receives what comes.
export function dropZone(add) {
  const input = element("input", { type: "file", multiple: "", class: "visually-hidden",
    tabindex: "-1", "aria-label": "Files to upload",
    onchange: () => { add([...input.files]); input.value = ""; } });
  const zone = element("div", { id: "drop", class: "drop-zone" },
    element("p", {}, "Drop files here, or "),
    element("button", { type: "button", onclick: () => input.click() }, "Choose files"),
    input,
    element("p", { class: "hint" }, "PDF, Word, HTML, Markdown, text and more; several at once."));
  const over = (event) => { event.preventDefault(); zone.classList.add("dragging"); };
  zone.addEventListener("dragenter", over);
  zone.addEventListener("dragover", over);
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    if (event.dataTransfer?.files.length) add([...event.dataTransfer.files]);
  });
  // Files dropped beside the zone would make the browser open them in place of the app (and
  // lose the uploads under way): refused while the zone is on the page.
  const guard = (event) => {
    if (!zone.isConnected) {
      document.removeEventListener("dragover", guard);
      document.removeEventListener("drop", guard);
    } else if (event.dataTransfer?.types?.includes("Files")) {
      event.preventDefault();
    }
  };
  document.addEventListener("dragover", guard);
  document.addEventListener("drop", guard);
  return zone;
}
