"""Tool calling with Ollama's and OpenAI's protocols, streamed (NDJSON, SSE) and whole (JSON):
the tools offered, the calls read back, the calls and results sent in the next round."""

from __future__ import annotations

import pytest

from app.providers import llm_http, llm_tools
from app.providers.llm import (
    ChatRequest,
    ToolSpec,
    assistant_calls,
    tool_message,
)

ADD = ToolSpec(
    "tickets__add",
    "Add two whole numbers.",
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
)
LOOKUP = ToolSpec(
    "lookup", "Find a page.", {"type": "object", "properties": {"q": {"type": "string"}}}
)
CALLS = [
    {"name": "tickets__add", "arguments": {"a": 2, "b": 3}},
    {"name": "lookup", "arguments": {"q": 'holiday policy, "2026"'}},
]
PROTOCOLS = [
    pytest.param("ollama", False, id="ollama-ndjson"),
    pytest.param("ollama", True, id="ollama-json"),
    pytest.param("openai", False, id="openai-sse"),
    pytest.param("openai", True, id="openai-json"),
]


def client(provider: str, url: str):
    if provider == "ollama":
        return llm_http.OllamaClient(url, 5)
    return llm_http.OpenAIClient(url + "/v1", 5, None)


def request(messages, tools=(ADD, LOOKUP)) -> ChatRequest:
    return ChatRequest("fake-chat", messages, 0.0, 200, 4096, tools=tuple(tools))


def calls_until_a_tool_answered(messages):
    return [] if messages[-1]["role"] == "tool" else CALLS


@pytest.mark.parametrize(("provider", "whole"), PROTOCOLS)
def test_the_model_calls_tools_and_then_answers_with_their_results(llm, provider, whole):
    llm.reply, llm.whole_json = "Two and three make 5.", whole
    llm.tool_calls = calls_until_a_tool_answered
    model = client(provider, llm.url)
    question = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+3?"}]
    try:
        first = list(model.stream(request(question)))
        asked = [p for p in first if p.tool_calls]
        assert len(asked) == 1 and first[-1].done and first[-1].finish_reason == "tool_calls"
        calls = asked[0].tool_calls
        assert [(c.name, c.arguments) for c in calls] == [
            (c["name"], c["arguments"]) for c in CALLS
        ]
        assert len({c.id for c in calls}) == 2
        assert "".join(p.text for p in first) == ""
        offered = llm.chat_requests()[-1]["tools"]
        assert [t["function"]["name"] for t in offered] == ["tickets__add", "lookup"]
        assert offered[0]["function"]["parameters"] == ADD.parameters
        results = [tool_message(calls[0], "5"), tool_message(calls[1], "Holidays: 30 days.")]
        second = list(model.stream(request([*question, assistant_calls(calls), *results])))
    finally:
        model.close()
    assert "".join(p.text for p in second) == "Two and three make 5."
    assert second[-1].finish_reason == "stop" and not any(p.tool_calls for p in second)
    sent = llm.chat_requests()[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "tool"]
    if provider == "ollama":
        assert sent[2]["tool_calls"][0] == {
            "function": {"name": "tickets__add", "arguments": {"a": 2, "b": 3}}
        }
        assert sent[3] == {"role": "tool", "content": "5", "tool_name": "tickets__add"}
    else:
        assert sent[2]["tool_calls"][0]["function"] == {
            "name": "tickets__add",
            "arguments": '{"a": 2, "b": 3}',
        }
        assert sent[3] == {"role": "tool", "tool_call_id": calls[0].id, "content": "5"}


def _the_call(llm, provider: str, whole: bool, arguments: object):  # type: ignore[no-untyped-def]
    """The one tool call a reply makes when the model calls `lookup` with `arguments`."""
    llm.whole_json = whole
    llm.tool_calls = lambda messages: [{"name": "lookup", "arguments": arguments}]
    model = client(provider, llm.url)
    try:
        pieces = list(model.stream(request([{"role": "user", "content": "find it"}])))
    finally:
        model.close()
    ((call,),) = [p.tool_calls for p in pieces if p.tool_calls]
    return call


@pytest.mark.parametrize(("provider", "whole"), PROTOCOLS)
def test_arguments_that_are_not_an_object_make_a_call_marked_as_an_error(llm, provider, whole):
    call = _the_call(llm, provider, whole, "not json")
    assert (call.name, call.arguments) == ("lookup", {})
    assert call.error == "its arguments are not a JSON object"


@pytest.mark.parametrize(("provider", "whole"), PROTOCOLS)
def test_nan_in_arguments_is_no_json(llm, provider, whole):
    """A NaN in a call's arguments (OpenAI's: the model's text; Ollama's: an object in the line)
    makes the call an error the model reads, not a failed answer."""
    call = _the_call(llm, provider, whole, {"q": float("nan")})
    assert (call.arguments, call.error) == ({}, "its arguments are not a JSON object")


@pytest.mark.parametrize(("provider", "whole"), PROTOCOLS)
def test_calls_past_the_cap_are_dropped_and_ids_never_repeat(llm, provider, whole):
    llm.whole_json = whole
    llm.tool_calls = lambda messages: [{"name": "lookup", "arguments": {"q": "x"}}] * 40
    model = client(provider, llm.url)
    try:
        pieces = list(model.stream(request([{"role": "user", "content": "find it"}])))
    finally:
        model.close()
    (calls,) = [p.tool_calls for p in pieces if p.tool_calls]
    assert len(calls) == llm_tools.MAX_CALLS == len({c.id for c in calls})


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_without_tools_nothing_about_tools_is_sent_or_read(llm, provider):
    llm.tool_calls = lambda messages: CALLS  # only requests offering tools get calls
    model = client(provider, llm.url)
    try:
        pieces = list(model.stream(request([{"role": "user", "content": "hi"}], tools=())))
    finally:
        model.close()
    assert "".join(p.text for p in pieces) == "Hello there." and pieces[-1].finish_reason == "stop"
    assert "tools" not in llm.chat_requests()[-1]
