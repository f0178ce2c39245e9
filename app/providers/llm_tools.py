"""Tool calling on the wire: the functions offered to a model, the conversation's tool calls and
results in each protocol's shape, and the calls a reply asks for, read from Ollama's
`message.tool_calls` (whole calls) or assembled from OpenAI's streamed `delta.tool_calls`
fragments (by index).

The rest of postrag writes a conversation in one neutral shape (llm.assistant_calls,
llm.tool_message); only this module knows how each provider spells it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from app import strict_json
from app.providers.llm import LLMError, ToolCall, ToolSpec
from app.storable import cleaned

MAX_CALLS = 32  # per reply: a model asking for more is cut here, not obeyed


def finish_reason(reason: str | None, calls: tuple[ToolCall, ...]) -> str:
    """A reply's finish reason as postrag names it: tool_calls, length or stop."""
    if calls:
        return "tool_calls"
    return "length" if reason == "length" else "stop"


def functions(tools: Iterable[ToolSpec]) -> list[dict[str, Any]]:
    """`tools` as both protocols' `tools` member."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]


def _calls_of(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(message.get("tool_calls") or [])


def ollama_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as Ollama's /api/chat takes it (arguments as objects, results named)."""
    wire: list[dict[str, Any]] = []
    for m in messages:
        if m.get("role") == "tool":
            wire.append({"role": "tool", "content": m["content"], "tool_name": m.get("name", "")})
        elif calls := _calls_of(m):
            function = [
                {"function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls
            ]
            wire.append(
                {"role": "assistant", "content": m.get("content") or "", "tool_calls": function}
            )
        else:
            wire.append(dict(m))
    return wire


def openai_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as /v1/chat/completions takes it (arguments as JSON text, results by
    call id)."""
    wire: list[dict[str, Any]] = []
    for m in messages:
        if m.get("role") == "tool":
            wire.append(
                {"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]}
            )
        elif calls := _calls_of(m):
            typed = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                }
                for c in calls
            ]
            wire.append(
                {"role": "assistant", "content": m.get("content") or None, "tool_calls": typed}
            )
        else:
            wire.append(dict(m))
    return wire


def _arguments(value: Any) -> dict[str, Any] | None:
    """A call's arguments: an object, or standard JSON text of one (empty: none); None if
    neither. A model may write NaN or 1e999, which no JSON column or event can hold."""
    if isinstance(value, str):
        try:
            value = strict_json.loads(value) if value.strip() else {}
        except (ValueError, RecursionError):
            return None
    if not isinstance(value, dict):
        return None
    try:
        strict_json.dumps(value)  # an object (Ollama's) read from a line: NaN or 1e999 inside?
    except (ValueError, RecursionError):
        return None
    kept: dict[str, Any] = cleaned(value)
    return kept


def _call(provider: str, call_id: Any, name: Any, arguments: Any) -> ToolCall:
    """The call read; arguments that are not an object make it an error for the model to read
    (and retry), not the end of the answer."""
    if not isinstance(name, str) or not name:
        raise LLMError(provider, "the model called a tool without naming it")
    # Made up ids are unique within the answer: Ollama sends none, and its calls come line by
    # line and round by round, so an index alone would repeat.
    given = call_id if isinstance(call_id, str) and call_id else f"call_{secrets.token_hex(6)}"
    given, name = cleaned(given), cleaned(name)  # stored with the answer: no NUL characters
    read = _arguments(arguments)
    if read is None:
        return ToolCall(given, name, {}, "its arguments are not a JSON object")
    return ToolCall(given, name, read)


def whole_calls(provider: str, message: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    """The calls of a message that holds them whole (Ollama's, a non-streamed OpenAI answer's)."""
    calls = []
    for call in _calls_of(message)[:MAX_CALLS]:
        function = call.get("function") or {}
        calls.append(
            _call(provider, call.get("id"), function.get("name"), function.get("arguments"))
        )
    return tuple(calls)


class CallFragments:
    """OpenAI's streamed `delta.tool_calls`, assembled by index: the id and name come once, the
    arguments' JSON text in pieces."""

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._parts: dict[int, dict[str, Any]] = {}

    def add(self, fragments: Iterable[Mapping[str, Any]]) -> None:
        for fragment in fragments:
            index = fragment.get("index")
            if not isinstance(index, int):
                index = len(self._parts)  # a server that sends each call whole, unnumbered
            if index not in self._parts and len(self._parts) >= MAX_CALLS:
                continue
            part = self._parts.setdefault(index, {"id": None, "name": "", "arguments": ""})
            function = fragment.get("function") or {}
            part["id"] = fragment.get("id") or part["id"]
            part["name"] = part["name"] or function.get("name") or ""
            arguments = function.get("arguments")
            if isinstance(arguments, dict):
                arguments = json.dumps(arguments)
            part["arguments"] += arguments or ""

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            _call(self._provider, p["id"], p["name"], p["arguments"])
            for _, p in sorted(self._parts.items())
        )
