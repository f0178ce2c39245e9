"""Tool calls as the fake language-model server answers them (tests/fake_llm.py): Ollama's
whole calls in one NDJSON chunk, OpenAI's streamed `delta.tool_calls` fragments (an id and name
first, then the arguments' JSON text in pieces, by index), and both protocols' whole answers."""

from __future__ import annotations

import json
from typing import Any

Call = dict[str, Any]  # {"name", "arguments"}


def _openai_chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def call_chunks(openai: bool, model: str, calls: list[Call]) -> list[dict[str, Any]]:
    """The stream's chunks that carry `calls`."""
    if not calls:
        return []
    if not openai:  # one line a call, as Ollama may send them
        return [
            {
                "model": model,
                "message": {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": c["name"], "arguments": c["arguments"]}}],
                },
                "done": False,
            }
            for c in calls
        ]
    chunks = []
    for index, call in enumerate(calls):
        first = {"index": index, "id": f"call_{index}_fake", "type": "function"}
        first["function"] = {"name": call["name"], "arguments": ""}
        chunks.append(_openai_chunk(model, {"role": "assistant", "tool_calls": [first]}))
        text = json.dumps(call["arguments"])
        cut = [
            text[: len(text) // 3],
            text[len(text) // 3 : 2 * len(text) // 3],
            text[2 * len(text) // 3 :],
        ]
        for piece in cut:
            fragment = {"index": index, "function": {"arguments": piece}}
            chunks.append(_openai_chunk(model, {"tool_calls": [fragment]}))
    return chunks


def whole(
    openai: bool, model: str, reply: str, calls: list[Call], usage: tuple[int, int]
) -> dict[str, Any]:
    """A non-streamed answer: `reply`, or `calls` when there are any."""
    prompt, completion = usage
    if not openai:
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        if calls:
            message["tool_calls"] = [
                {"function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls
            ]
        return {
            "model": model,
            "message": message,
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": prompt,
            "eval_count": completion,
        }
    message = {"role": "assistant", "content": reply or None}
    if calls:
        message["tool_calls"] = [
            {
                "id": f"call_{i}_fake",
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
            }
            for i, c in enumerate(calls)
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
