// Asking (POST a message, its answer as server-sent events) and showing an answer as it streams:
// text re-rendered as Markdown at most once per animation frame, its sources as citation chips,
// its reasoning, tool calls, progress and questions (tools.js); a cut stream resumes (answers.js).
import { authHeaders } from "../../api.js";
import { answerEvents } from "./answers.js";
import { renderAnswer, showReasoning } from "./messages.js";
import { TOOL_EVENTS, showQuestion, showToolEvent } from "./tools.js";

// Post `text` to the chat: the response whose body is the answer's event stream.
export async function ask(chatId, text) {
  const response = await fetch(`/api/v1/chats/${chatId}/messages`, {
    method: "POST",
    headers: { ...authHeaders("POST"), "Content-Type": "application/json",
      Accept: "text/event-stream" },
    credentials: "same-origin",
    body: JSON.stringify({ content: text }),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    const error = new Error(problem.detail || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return response;
}

// Questions waiting for you, each under its answer (or the last one, when older than the page).
export function showQuestions(list, chatId, questions) {
  for (const question of questions) {
    const item = list.querySelector(`li[data-message="${question.message_id}"]`) ??
      list.querySelector("li.assistant:last-child");
    if (item) showQuestion(item, chatId, question);
  }
}

// Renders the answer's text in `item` once per frame however fast its pieces come.
function painter(item, context) {
  const answer = { text: "", reasoning: "", citations: [] };
  let frame = 0;
  const paint = () => {
    frame = 0;
    showReasoning(item, answer.reasoning);
    renderAnswer(item, answer.text, answer.citations, context);
  };
  return {
    answer,
    later() { frame ||= requestAnimationFrame(paint); },
    now() { if (frame) { cancelAnimationFrame(frame); paint(); } },
  };
}

function shown(item, chatId, event, paint, options) {
  const { name, data } = event;
  if (name === "retrieval") {
    paint.answer.citations = data.sources || [];
  } else if (name === "delta" || name === "reasoning") {
    paint.answer[name === "delta" ? "text" : "reasoning"] += data.text;
    paint.later();
  } else if (TOOL_EVENTS.includes(name)) {
    try {
      showToolEvent(item, chatId, name, data);
    } catch (error) {  // what a server sent cannot end the answer shown: it goes on
      console.error(`could not show a ${name} event`, error);
    }
  } else if (name === "error") {
    options.error(new Error(data.detail || "the answer failed"));
  }
}

// The answer of `chatId` in `item` until `done` or `error` (`response`: the POST's stream; null:
// follow answer `messageId` from its start). options: context, alive() (false: the view is gone,
// stop following), status(text) (reconnecting...), error(error).
export async function followStream(item, chatId, response, messageId, options) {
  const paint = painter(item, options.context);
  try {
    const events = answerEvents(chatId, response, { messageId, onStatus: options.status });
    for await (const event of events) {
      if (!options.alive()) return;
      shown(item, chatId, event, paint, options);
    }
    paint.now();
  } catch (error) {
    options.error(error);
  } finally {
    options.status("");
  }
}
