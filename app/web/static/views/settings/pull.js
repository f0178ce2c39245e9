// Pulling an Ollama model (POST /api/v1/models/{id}/pull as server-sent events): its progress
// events as they come, then the model when done, or the error the stream ends with.
import { authHeaders } from "../../api.js";

function parseEvent(block) {
  let kind = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) kind = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  return { kind, data: data.length ? JSON.parse(data.join("\n")) : null };
}

function failure(response, body) {
  const error = new Error(body?.detail || `${response.status} ${response.statusText}`);
  error.status = response.status;
  return error;
}

// Calls onProgress({status, total, completed, percent}) per event; resolves to the pulled model.
export async function pullModel(modelId, onProgress, signal) {
  const response = await fetch(`/api/v1/models/${modelId}/pull`, {
    method: "POST", signal, credentials: "same-origin",
    headers: { ...authHeaders("POST"), Accept: "text/event-stream" },
  });
  if (!response.ok) {
    const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
    throw failure(response, body);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("The pull's stream ended early: look at the model's state.");
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event.kind === "progress") onProgress(event.data);
      else if (event.kind === "done") return event.data.model;
      else if (event.kind === "error") throw failure(response, event.data);
    }
  }
}
