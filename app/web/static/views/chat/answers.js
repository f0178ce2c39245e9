// An answer's server-sent events, read with fetch (not EventSource: the token goes in a header),
// resumed by itself when its stream ends before `done` or `error` (a network drop, a proxy's
// cut, a restarted server): the events endpoint sends what came after the last id seen.
import { api, authHeaders } from "../../api.js";

const RETRIES = 5;  // reconnections in a row without a new event before giving up (~16 s)
const FIRST_WAIT_MS = 500;  // doubled at each retry
const LAST = ["done", "error"];

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// The events of a response body as {id, name, data}; an event cut off by the body's end is dropped.
async function* parse(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      // Line ends may be \r\n, \r or \n; a \r at the very end may be half of a \r\n.
      buffer += value;
      const safe = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
      let rest = buffer.slice(0, safe).replace(/\r\n?/g, "\n");
      buffer = buffer.slice(safe);
      let end;
      while ((end = rest.indexOf("\n\n")) >= 0) {
        const event = parsedBlock(rest.slice(0, end));
        rest = rest.slice(end + 2);
        if (event) yield event;
      }
      buffer = rest + buffer;
    }
  } finally {
    reader.cancel().catch(() => {});  // left early: the connection goes
  }
}

function parsedBlock(block) {
  let id = null;
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    const [field, ...value] = line.split(":");
    const text = value.join(":").replace(/^ /, "");
    if (field === "event") name = text;
    else if (field === "data") data.push(text);
    else if (field === "id" && /^\d+$/.test(text)) id = Number(text);
  }
  return data.length ? { id, name, data: JSON.parse(data.join("\n")) } : null;
}

// The chat's newest message: the answer being generated once the question was taken.
async function newestMessageId(chatId) {
  const chat = await api(`/api/v1/chats/${chatId}?limit=1`);
  const last = chat.messages.total - 1;
  const page = await api(`/api/v1/chats/${chatId}?limit=1&offset=${last}`);
  return page.messages.items[0].id;
}

async function reconnect(chatId, messageId, lastId) {
  const response = await fetch(`/api/v1/chats/${chatId}/messages/${messageId}/events`, {
    headers: { ...authHeaders(), Accept: "text/event-stream", "Last-Event-ID": String(lastId) },
    credentials: "same-origin",
  });
  if (response.ok) return response;
  const error = new Error(`the answer's stream: ${response.status} ${response.statusText}`);
  error.status = response.status;
  throw error;
}

// Every event of an answer once, in order, until `done` or `error`: those of `response` (null:
// none yet, follow answer `messageId` from its first event), then those after the last id seen,
// reconnecting with backoff. `onStatus` gets "reconnecting..." while it does, "" once back.
export async function* answerEvents(chatId, response, { messageId = null, onStatus }) {
  let lastId = 0;
  let failures = 0;
  let current = response;
  for (;;) {
    try {
      if (!current) {
        messageId ??= await newestMessageId(chatId);
        current = await reconnect(chatId, messageId, lastId);
        onStatus("");
      }
      for await (const event of parse(current)) {
        if (event.id !== null && event.id <= lastId) continue;  // seen already
        lastId = event.id ?? lastId;
        messageId ??= event.data.message_id ?? null;
        failures = 0;
        yield event;
        if (LAST.includes(event.name)) return;
      }
    } catch (error) {
      if (error.status < 500 && error.status !== 429) throw error;  // gone, or not allowed
    }
    current = null;  // ended early, or could not be read: go again
    if (failures === RETRIES) throw new Error("the answer was interrupted");
    onStatus("reconnecting...");
    await sleep(FIRST_WAIT_MS * 2 ** failures++);
  }
}
