// A list that grows a page at a time (the API's limit and offset) with a "More" button; each
// item is a card of its own (name, facts, actions), which stacks on a phone.
import { api, element } from "../../api.js";

// `path` is the API's list; `render(item)` makes its <li>. load() (re)starts from the first page.
export function pagedList(path, render, box, { label, empty = "None yet.", limit = 20 } = {}) {
  const list = element("ul", { class: "items", "aria-label": label });
  const none = element("p", { class: "hint" }, empty);
  const more = element("button", { type: "button", class: "quiet", onclick: () => next() }, "More");
  let offset = 0;

  async function next() {
    const first = offset;
    const page = await load(offset);
    if (page?.items.length) list.children[first].focus();  // to the first of the new items
  }

  async function load(from) {
    const joiner = path.includes("?") ? "&" : "?";
    box.clear();
    try {
      const page = await api(`${path}${joiner}limit=${limit}&offset=${from}`);
      if (from === 0) list.replaceChildren();
      list.append(...page.items.map(render));
      offset = from + page.items.length;
      more.hidden = offset >= page.total;
      none.hidden = page.total > 0;
      return page;
    } catch (error) {
      box.show(error);
      return null;
    }
  }

  return { node: element("div", { class: "paged" }, list, none, more), load: () => load(0) };
}

// One card: a title, facts under it (strings or nodes), then its buttons.
export function item(title, facts, ...buttons) {
  return element("li", { class: "item", tabindex: "-1" },
    element("div", { class: "item-main" }, element("strong", { class: "item-title" }, title),
      element("p", { class: "hint item-facts" }, ...facts.filter(Boolean).flatMap((f, i) => (i ? [" · ", f] : [f])))),
    element("div", { class: "item-actions" }, ...buttons));
}
