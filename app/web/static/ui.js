// Small pieces every view uses: errors shown where they happened (and cleared when the next try
// works), a confirmation before anything is deleted, and formatting. No HTML strings: every node
// is built with the DOM (element() in api.js), so nothing from the API is ever parsed as markup.
import { $, element } from "./api.js";

// An error region inside `container` (role=alert): show(error) names it, clear() empties it.
export function errorBox(container, id) {
  const box = element("p", { class: "error", role: "alert", ...(id ? { id } : {}) });
  container.append(box);
  return {
    node: box,
    show(error) { box.textContent = error?.message || String(error); },
    clear() { box.textContent = ""; },
  };
}

// Run `action` with its errors shown in `box` (cleared first); its result, or undefined.
export async function attempt(box, action) {
  box.clear();
  try {
    return await action();
  } catch (error) {
    box.show(error);
    return undefined;
  }
}

// Ask before a destructive action: resolves true when the user confirms.
export function confirmAction(text, label = "Delete") {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = label;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

export function heading(level, text, attributes = {}) {
  return element(`h${level}`, { tabindex: "-1", ...attributes }, text);
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

// Words a search highlights: the query's, without stop words and one-letter words.
const STOP_WORDS = new Set((
  "a an and are as at be but by for from has have he her his i if in into is it its me my no " +
  "not of on or our she so than that the their them then there these they this to up was we " +
  "were what when where which who why will with you your do does did how can could should would"
).split(" "));

export function queryTerms(query) {
  const words = query.toLowerCase().match(/[\p{L}\p{N}]+/gu) || [];
  return [...new Set(words.filter((w) => w.length > 1 && !STOP_WORDS.has(w)))];
}

// `text` as nodes with the `terms` (whole words, any case) in <mark>.
export function highlighted(text, terms) {
  if (!terms.length) return [document.createTextNode(text)];
  const escaped = terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}])(${escaped.join("|")})(?![\\p{L}\\p{N}])`, "giu");
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    nodes.push(document.createTextNode(text.slice(last, match.index)));
    nodes.push(element("mark", {}, match[0]));
    last = match.index + match[0].length;
  }
  nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

// Copy `text`, saying so on `button` for a moment. Without the clipboard API (plain http on a
// team server, a refused permission) the browser's copy command is used on a hidden text box.
export function copyText(text, button) {
  const label = button.textContent;
  const say = (word) => {
    button.textContent = word;
    setTimeout(() => { button.textContent = label; }, 1500);
  };
  const byHand = () => {
    const box = element("textarea", { readonly: "", "aria-hidden": "true", class: "visually-hidden" });
    box.value = text;
    document.body.append(box);
    box.select();
    let copied = false;
    try { copied = document.execCommand("copy"); } catch { copied = false; }
    box.remove();
    button.focus();
    say(copied ? "Copied" : "Copy failed");
  };
  if (!navigator.clipboard?.writeText) { byHand(); return; }
  navigator.clipboard.writeText(text).then(() => say("Copied"), byHand);
}
