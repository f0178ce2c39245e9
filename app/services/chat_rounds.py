"""The model's replies to a chat's prompt, in rounds while it calls MCP tools: each reply is
streamed (its text saved, a stop seen at the next save); one that asks for tool calls has them
made (app/services/chat_tools.py) and the calls and their results added to the conversation for
the next one. Bounded: POSTRAG_CHAT_TOOL_ROUNDS rounds (the last offers no tools, so the model
answers with what it has), no call after POSTRAG_CHAT_TOOL_TIME_S, and the results the model
reads fit its context with the tools' descriptions (what does not fit is cut, and then no more
tools are offered; tools whose descriptions do not fit are not offered at all). Each round
after the first holds more of the user's daily LLM tokens; when none are left, the answer ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.providers import mcp_content
from app.providers.llm import ToolCall, ToolSpec, assistant_calls, tool_message
from app.services import answering, chat_tools, prompting, usage
from app.services.chat_exchange import Answer, Deps, Event, Exchange, answer_tokens

CALL_TOKENS = 20  # a tool call's and its result's wrapping in the conversation
MIN_RESULT_TOKENS = 50  # a result cut shorter than this is left out
OUT_OF_TOKENS = "your LLM tokens for today are used up: the answer ends after its tool calls"


def answered(ex: Exchange, deps: Deps, answer: Answer, prompt: prompting.Prompt) -> Iterator[Event]:
    """The model's replies, in rounds while it calls tools, until it answers or is stopped."""
    t1 = time.monotonic()
    conversation: list[dict[str, Any]] = list(prompt.messages)
    rounds, deadline = deps.settings.chat_tool_rounds, ex.started + deps.settings.chat_tool_time_s
    longest = answer_tokens(deps, ex.target)
    room = int((ex.target.context_length - longest) * prompting.SAFETY_MARGIN)
    room -= prompt.estimated_tokens  # what tool calls and results may still take of the context
    if ex.toolbox:  # the functions' descriptions go with every request that offers them
        room -= prompting.count_tokens(json.dumps([vars(t) for t in ex.toolbox.specs]))
    for number in range(rounds + 1):
        if number and not _budget_left(ex, deps, answer):
            row = answer.finish("incomplete", "length", OUT_OF_TOKENS)
            yield answer.done_event(row, "incomplete", "length")
            return
        # The last round offers no tools: the model answers with what it has.
        more = number < rounds and time.monotonic() < deadline and room > 0
        offered = ex.toolbox.specs if more else ()
        reply = _Round()
        yield from _reply(ex, deps, answer, (prompt, conversation, offered), t1, reply)
        if reply.finished:
            return
        if not reply.calls:
            break
        conversation.append(assistant_calls(reply.calls, reply.text))
        yield from chat_tools.calls(ex, deps, answer, reply.calls, deadline)
        results = answer.tool_calls[-len(reply.calls) :]
        for call, result in zip(reply.calls, results, strict=True):
            text, room = _fitted(call, result["text"], room)
            conversation.append(tool_message(call, text))
        if answer.save() or deps.stopping.is_set():
            break
    answer.timings["generation_ms"] = round((time.monotonic() - t1) * 1000, 1)
    reason, why = "stopped", "stopped by the user"
    if deps.stopping.is_set():
        reason, why = "error", "the server stopped"
    row = answer.finish("incomplete", reason, why)
    yield answer.done_event(row, "incomplete", reason)


def _budget_left(ex: Exchange, deps: Deps, answer: Answer) -> bool:
    """Hold what the next round may take on top of what the rounds before took (the answer's
    hold covers one round: POSTRAG_LLM_TOKENS_PER_DAY); False when today's budget is used up."""
    if ex.hold is None:
        return True
    if answer.prompt_tokens is None:  # a model that does not count: its rounds took their most
        spent = ex.hold.tokens
    else:
        spent = answer.prompt_tokens + (answer.completion_tokens or 0)
    most = spent + ex.target.context_length
    return usage.extend_llm_tokens(deps.pool, ex.hold, deps.settings.llm_tokens_per_day, most)


def _fitted(call: ToolCall, text: str, room: int) -> tuple[str, int]:
    """A tool's result as much of it as the context still takes, and the room left (tokens):
    the rest is cut (and says so); no room at all leaves it out."""
    room -= prompting.count_tokens(json.dumps(call.arguments)) + CALL_TOKENS
    tokens = prompting.count_tokens(text)
    if tokens <= room:
        return text, room - tokens
    if room < MIN_RESULT_TOKENS:
        return "[the result was left out: the conversation is too long for the model]", 0
    return mcp_content.capped(text, room)[0], 0  # a token is at least one character


@dataclass
class _Round:
    """How one reply of the model ended: the answer finished, it asked for tool calls (after
    `text`), or neither (it was stopped)."""

    finished: bool = False
    calls: tuple[ToolCall, ...] = ()
    text: str = ""


Asked = tuple[prompting.Prompt, list[dict[str, Any]], tuple[ToolSpec, ...]]


def _reply(
    ex: Exchange, deps: Deps, answer: Answer, asked: Asked, t1: float, reply: _Round
) -> Iterator[Event]:
    """One reply of the model to `asked` (the prompt, the conversation so far, the tools)."""
    prompt, conversation, offered = asked
    before = len(answer.text)
    pieces = answering.generate(
        deps.llm,
        ex.target,
        prompt,
        temperature=ex.prefs.temperature,
        max_tokens=answer_tokens(deps, ex.target),
        conversation=conversation,
        tools=offered,
    )
    try:
        for piece in pieces:
            reply.calls = piece.tool_calls or reply.calls
            if piece.done:
                answer.count(piece)
                if reply.calls and offered:
                    reply.text = answer.text[before:]
                    return
                reply.calls, reply.finished = (), True
                answer.timings["generation_ms"] = round((time.monotonic() - t1) * 1000, 1)
                reason = "length" if piece.finish_reason == "length" else "stop"
                row = answer.finish("complete", reason)
                yield answer.done_event(row, "complete", reason)
                return
            if "first_token_ms" not in answer.timings and not piece.tool_calls:
                answer.timings["first_token_ms"] = round((time.monotonic() - t1) * 1000, 1)
            yield from answer.take(piece.text, piece.reasoning)
            if answer.save_due() or deps.stopping.is_set():
                break
    finally:
        pieces.close()  # closes the upstream connection when we stop early
    reply.calls = ()
