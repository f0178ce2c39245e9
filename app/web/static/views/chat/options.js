// The chat's header controls: the model that answers (registered chat models, or the default of
// your preference) and the collections the chat searches (all, or those ticked). A chat shown is
// changed at once (PATCH); a new chat keeps the choices until its first message creates it.
import { api, element } from "../../api.js";

const PAGE = 50;

// PATCH the chat `chatId` with `body`; the chat as the API says.
export function patchChat(chatId, body) {
  return api(`/api/v1/chats/${chatId}`, { method: "PATCH",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

// The model picker. `holder.chatId()` is the chat shown (null: a new one); `box` shows errors.
export function modelPicker(holder, box) {
  const select = element("select", { id: "chat-model" },
    element("option", { value: "" }, "Default (your preference)"));
  let saved = "";
  select.addEventListener("change", async () => {
    const id = holder.chatId();
    if (!id) { saved = select.value; return; }
    box.clear();
    try {
      const chat = await patchChat(id, { chat_model_id: select.value ? Number(select.value) : null });
      saved = chat.chat_model_id ? String(chat.chat_model_id) : "";
      select.value = saved;
    } catch (error) {
      box.show(error);
      select.value = saved;  // what the chat uses
    }
  });
  return {
    node: element("div", { class: "chat-option" },
      element("label", { for: "chat-model" }, "Model"), select),
    async load(chat) {
      const page = await api(`/api/v1/models?kind=chat&limit=100`);
      select.replaceChildren(select.options[0], ...page.items.map((m) =>
        element("option", { value: String(m.id) },
          m.live.state === "installed" ? m.name : `${m.name} (${m.live.state})`)));
      saved = chat?.chat_model_id ? String(chat.chat_model_id) : saved;
      select.value = saved;
    },
    creation: () => (saved ? { chat_model_id: Number(saved) } : {}),
  };
}

// The collections picker: "All collections", or the ones ticked (paged with "More").
export function collectionPicker(holder, box) {
  const summary = element("span", { class: "option-summary" }, "all");
  const all = element("input", { type: "checkbox", id: "chat-all-collections", checked: "" });
  const list = element("ul", { class: "option-list", "aria-label": "Collections" });
  const more = element("button", { type: "button", class: "quiet", hidden: "" }, "More collections");
  let saved = null;  // null: every collection you may read
  let listed = 0;
  const names = new Map();

  const boxes = () => [...list.querySelectorAll("input")];
  const show = (chosen) => {
    all.checked = chosen === null;
    for (const b of boxes()) b.checked = chosen !== null && chosen.includes(Number(b.value));
    summary.textContent = chosen === null ? "all" :
      chosen.map((id) => names.get(id) ?? `#${id}`).join(", ");
  };
  const save = async (chosen) => {
    show(chosen);
    const id = holder.chatId();
    if (!id) { saved = chosen; return; }
    box.clear();
    try {
      saved = (await patchChat(id, { collection_ids: chosen })).collection_ids;
    } catch (error) {
      box.show(error);
    }
    show(saved);
  };
  all.addEventListener("change", () => {
    if (all.checked) save(null);
    else all.checked = true;  // "all" ends by ticking a collection
  });
  const tick = () => {
    const chosen = boxes().filter((b) => b.checked).map((b) => Number(b.value));
    save(chosen.length ? chosen : null);
  };
  const page = async () => {
    const found = await api(`/api/v1/collections?limit=${PAGE}&offset=${listed}`);
    for (const c of found.items) {
      names.set(c.id, c.name);
      const id = `chat-collection-${c.id}`;
      list.append(element("li", {}, element("input", { type: "checkbox", id, value: String(c.id),
        onchange: tick }), element("label", { for: id, class: "inline" }, c.name)));
    }
    listed += found.items.length;
    more.hidden = listed >= found.total;
    if (!found.total) list.append(element("li", { class: "hint" }, "No collections yet."));
    show(saved);
  };
  more.addEventListener("click", () => page().catch((error) => box.show(error)));
  return {
    node: element("details", { class: "chat-option picker" },
      element("summary", {}, "Collections: ", summary),
      element("div", { class: "picker-body" },
        element("div", { class: "row" }, all,
          element("label", { for: "chat-all-collections", class: "inline" }, "All collections")),
        list, more)),
    async load(chat) {
      saved = chat ? chat.collection_ids : saved;
      listed = 0;
      list.replaceChildren();
      await page();
    },
    creation: () => (saved ? { collection_ids: saved } : {}),
  };
}
