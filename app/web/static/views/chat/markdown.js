// A small, safe Markdown renderer for answers: headings, paragraphs, emphasis, inline code,
// fenced code blocks (with a Copy button), lists, block quotes, tables, rules and links. It builds
// DOM nodes with textContent only: HTML in a model's output (or a document's) shows as text, and
// a link is made only for http, https and mailto addresses. Text cut off mid-stream renders too
// (an unclosed fence is a code block to the end), so an answer can be rendered as it grows.
import { element } from "../../api.js";
import { copyText } from "../../ui.js";

const SAFE_PROTOCOLS = ["http:", "https:", "mailto:"];
const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}> ?/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])\s+/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;
// Inline pieces, earliest first: code, links, citation markers, strong, emphasis.
const INLINE = new RegExp([
  /`([^`\n]+)`/.source,
  /\[([^\]\n]+)\]\(([^()\s]*(?:\([^()\s]*\))?[^()\s]*)\)/.source,
  /\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/.source,
  /\*\*(?=\S)([^*]*?\S)\*\*|__(?=\S)([^_]*?\S)__/.source,
  /\*(?=[^\s*])([^*]*?[^\s*])\*|(?<![\p{L}\p{N}])_(?=[^\s_])([^_]*?[^\s_])_(?![\p{L}\p{N}])/.source,
].join("|"), "gu");

// `text` as block nodes. `cite(numbers)` turns a [n] marker into nodes (null: left as text).
export function renderMarkdown(text, cite = () => null) {
  try {
    return blocks(text.replace(/\r\n?/g, "\n").split("\n"), cite);
  } catch (error) {  // never an answer the page cannot show: then it is plain text
    console.error(error);
    return [element("p", { class: "plain" }, text)];
  }
}

const MAX_DEPTH = 16;  // quotes and lists nested deeper are shown as text
let depth = 0;

function blocks(lines, cite) {
  if (depth >= MAX_DEPTH) return [element("p", { class: "plain" }, lines.join("\n"))];
  depth += 1;
  try {
    return blockNodes(lines, cite);
  } finally {
    depth -= 1;
  }
}

function blockNodes(lines, cite) {
  const nodes = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i += 1; continue; }
    const read = fence(lines, i) ?? heading(lines, i, cite) ?? rule(lines, i) ??
      quote(lines, i, cite) ?? list(lines, i, cite) ?? table(lines, i, cite) ??
      paragraph(lines, i, cite);
    nodes.push(read.node);
    i = read.next;
  }
  return nodes;
}

function fence(lines, i) {
  const open = FENCE.exec(lines[i]);
  if (!open) return null;
  const [, marker, language] = open;
  let end = i + 1;
  while (end < lines.length && !lines[end].trim().startsWith(marker)) end += 1;
  return { node: codeBlock(lines.slice(i + 1, end).join("\n"), language), next: end + 1 };
}

function codeBlock(code, language) {
  const copy = element("button", { type: "button", class: "quiet copy-code",
    "aria-label": language ? `Copy ${language} code` : "Copy code" }, "Copy");
  copy.addEventListener("click", () => copyText(code, copy));
  const attributes = language ? { "data-language": language } : {};
  return element("div", { class: "code-block" }, copy,
    element("pre", { tabindex: "0" }, element("code", attributes, code)));  // scrolls by keyboard
}

export { copyText };

function heading(lines, i, cite) {
  const found = HEADING.exec(lines[i]);
  if (!found) return null;
  const level = Math.min(found[1].length + 2, 6);  // the view has h1 and h2 already
  return { node: element(`h${level}`, {}, ...inline(found[2], cite)), next: i + 1 };
}

function rule(lines, i) {
  return RULE.test(lines[i]) ? { node: element("hr"), next: i + 1 } : null;
}

function quote(lines, i, cite) {
  if (!QUOTE.test(lines[i])) return null;
  let end = i;
  while (end < lines.length && QUOTE.test(lines[end])) end += 1;
  const inner = lines.slice(i, end).map((l) => l.replace(QUOTE, ""));
  return { node: element("blockquote", {}, ...blocks(inner, cite)), next: end };
}

// A list: its items' first lines and every line indented under them (nested lists included).
function list(lines, i, cite) {
  const first = ITEM.exec(lines[i]);
  if (!first) return null;
  const ordered = /\d/.test(first[2]);
  const node = element(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) node.setAttribute("start", String(parseInt(first[2], 10)));
  let at = i;
  while (at < lines.length) {
    const item = ITEM.exec(lines[at]);
    if (!item || /\d/.test(item[2]) !== ordered) break;
    const body = [lines[at].slice(item[0].length)];
    at += 1;
    while (at < lines.length && continues(lines, at)) {
      body.push(lines[at].replace(/^\s{1,4}/, ""));
      at += 1;
    }
    const content = blocks(body, cite);
    const tight = content.length === 1 && content[0].tagName === "P";
    node.append(element("li", {}, ...(tight ? [...content[0].childNodes] : content)));
    while (at < lines.length && !lines[at].trim() && ITEM.test(lines[at + 1] ?? "")) at += 1;
  }
  return { node, next: at };
}

// Whether line `at` belongs to the list item above: indented under it, a blank line before
// more indented lines, or a plain line carrying on the item's text.
function continues(lines, at) {
  const line = lines[at];
  if (!line.trim()) return /^\s+\S/.test(lines[at + 1] ?? "");
  if (/^\s{2,}\S/.test(line)) return true;
  return !ITEM.test(line) && !blockStart(line) && Boolean(lines[at - 1].trim());
}

function blockStart(line) {
  return FENCE.test(line) || HEADING.test(line) || QUOTE.test(line) || RULE.test(line);
}

function cells(line) {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
}

function table(lines, i, cite) {
  if (!lines[i].includes("|") || !TABLE_RULE.test(lines[i + 1] ?? "") ||
    !lines[i + 1].includes("-")) return null;
  const head = element("tr", {}, ...cells(lines[i]).map((c) => element("th", {}, ...inline(c, cite))));
  const body = element("tbody");
  let end = i + 2;
  while (end < lines.length && lines[end].includes("|") && lines[end].trim()) {
    body.append(element("tr", {}, ...cells(lines[end]).map((c) => element("td", {}, ...inline(c, cite)))));
    end += 1;
  }
  const wrap = element("div", { class: "table-wrap", tabindex: "0" },
    element("table", {}, element("thead", {}, head), body));
  return { node: wrap, next: end };
}

function paragraph(lines, i, cite) {
  let end = i + 1;
  while (end < lines.length && lines[end].trim() && !blockStart(lines[end]) && !ITEM.test(lines[end])) {
    end += 1;
  }
  const text = lines.slice(i, end).map((l) => l.trim()).join("\n");
  return { node: element("p", {}, ...inline(text, cite)), next: end };
}

// ------------------------------------------------------------------ inline

function safeUrl(href) {
  try {
    const url = new URL(href);
    return SAFE_PROTOCOLS.includes(url.protocol) ? url.href : null;
  } catch {
    return null;  // relative or not a URL: not followed
  }
}

function link(label, href, whole, cite) {
  const url = safeUrl(href);
  if (!url) return [document.createTextNode(whole)];
  return [element("a", { href: url, target: "_blank", rel: "noopener noreferrer" },
    ...inline(label, cite))];
}

function inline(text, cite) {
  const nodes = [];
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) nodes.push(document.createTextNode(text.slice(last, m.index)));
    last = m.index + m[0].length;
    const [whole, code, label, href, numbers, strong1, strong2, em1, em2] = m;
    if (code !== undefined) nodes.push(element("code", {}, code));
    else if (label !== undefined) nodes.push(...link(label, href, whole, cite));
    else if (numbers !== undefined) {
      nodes.push(...(cite(numbers.split(",").map(Number)) ?? [document.createTextNode(whole)]));
    } else if (strong1 !== undefined || strong2 !== undefined) {
      nodes.push(element("strong", {}, ...inline(strong1 ?? strong2, cite)));
    } else nodes.push(element("em", {}, ...inline(em1 ?? em2, cite)));
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return withBreaks(nodes);
}

// A newline inside a paragraph is a line break, as chat models mean it.
function withBreaks(nodes) {
  return nodes.flatMap((node) => {
    if (node.nodeType !== Node.TEXT_NODE || !node.data.includes("\n")) return [node];
    return node.data.split("\n").flatMap((part, i) => (i ? [element("br"), part] : [part]))
      .map((part) => (typeof part === "string" ? document.createTextNode(part) : part));
  });
}
