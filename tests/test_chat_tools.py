"""MCP tools inside chats: the model calls a registered server's tools as the user (over Ollama's
and OpenAI's protocols), results stored with the answer and streamed (resumable); failures,
limits, progress, a server's questions answered through the API, slash commands."""

from __future__ import annotations

import re
import threading

import httpx
import jwt
import psycopg
import pytest
from psycopg.types.json import Jsonb

from app.db import scope
from app.providers import llm_tools, mcp_client, mcp_content
from app.providers.mcp_content import Question
from app.repositories import mcp_servers as server_repo
from app.runtime import Runtime
from app.services import chat_tools
from app.services.chat_toolbox import model_name
from tests.helpers import (
    SSE,
    ask,
    bearer,
    closed_port_url,
    connections_held_at,
    messages,
    new_chat,
    parse_sse_ids,
    wait_for,
)

# A question nobody answers waits 20 s at most (a test that forgets one still ends).
FAST = {
    "llm_timeout_s": 3,
    "mcp_hosts": ("127.0.0.1",),
    "mcp_timeout_s": 10,
    "chat_question_timeout_s": 20,
}


def _app(make_app, llm, provider: str = "ollama", **settings):
    where = (
        {"ollama_url": llm.url} if provider == "ollama" else {"openai_base_url": llm.url + "/v1"}
    )
    return make_app(llm=provider, chat_model="fake-chat", **where, **{**FAST, **settings})


@pytest.fixture(params=["ollama", "openai", "openai-whole-json"])
def chat_app(request, make_app, llm):
    """Ollama's NDJSON stream, OpenAI's SSE, and an OpenAI server that answers whole JSON."""
    llm.whole_json = request.param.endswith("whole-json")
    return _app(make_app, llm, request.param.split("-")[0])


@pytest.fixture
def tools_app(make_app, llm):
    return _app(make_app, llm)


def _server(client, admin, url: str, name: str = "tickets") -> int:
    created = client.post("/api/v1/mcp-servers", json={"name": name, "url": url}, headers=admin)
    assert created.status_code == 201, created.json
    return int(created.json["id"])


def _discovered(client, admin, url: str) -> int:
    server = _server(client, admin, url)
    refreshed = client.post(f"/api/v1/mcp-servers/{server}/refresh", headers=admin)
    assert refreshed.status_code == 200, refreshed.json
    return server


def _calls(*calls: dict):
    """The model asks for `calls` until it has read a tool's result, then answers."""
    return lambda sent: [] if any(m["role"] == "tool" for m in sent) else list(calls)


def _results(sent: list[dict]) -> str:
    return " | ".join(m["content"] for m in sent if m["role"] == "tool")


def _events(client, admin, chat: int, content: str):
    response = ask(client, admin, chat, content, extra=SSE)
    assert response.status_code == 200, response.data
    return parse_sse_ids(response.data)


def _kinds(events) -> list[str]:
    return [kind for _, kind, _ in events if kind not in ("delta", "reasoning")]


def test_a_chat_calls_a_tool_and_answers_with_its_result(chat_app, admin, llm, fake_mcp):
    client = chat_app.test_client()
    server = _discovered(client, admin, fake_mcp.url)
    chat = new_chat(client, admin, mcp_server_ids=[server])
    llm.tool_calls = _calls({"name": "tickets__add", "arguments": {"a": 2, "b": 3}})
    llm.reply = lambda sent: f"The sum is {_results(sent)}."
    events = _events(client, admin, chat, "What is 2 + 3?")
    assert _kinds(events) == ["retrieval", "tool_call", "tool_result", "done"]
    assert [n for n, _, _ in events] == list(range(1, len(events) + 1))
    call, result = (data for _, kind, data in events if kind.startswith("tool_"))
    assert call == {
        "id": call["id"],
        "server": "tickets",
        "tool": "add",
        "arguments": {"a": 2, "b": 3},
    }
    assert result == {
        "id": call["id"],
        "server": "tickets",
        "tool": "add",
        "text": "5",
        "is_error": False,
        "truncated": False,
    }
    done = events[-1][2]
    assert done["usage"] == {"prompt_tokens": 22, "completion_tokens": 14}  # both rounds
    stored = messages(client, admin, chat)[-1]
    assert (stored["status"], stored["content"]) == ("complete", "The sum is 5.")
    assert (stored["prompt_tokens"], stored["completion_tokens"]) == (22, 14)
    assert stored["tool_calls"] == [{**call, "text": "5", "is_error": False, "truncated": False}]
    first, second = llm.chat_requests()[-2:]
    offered = {t["function"]["name"] for t in first["tools"]}
    assert {"tickets__add", "tickets__fail", "tickets__ask", "tickets__count"} <= offered
    assert second["messages"][-1]["role"] == "tool" and second["messages"][-1]["content"] == "5"
    assert second["messages"][-2]["role"] == "assistant" and second["messages"][-2]["tool_calls"]
    # The stream is stored: resuming from the start replays every event, tool calls included.
    url = f"/api/v1/chats/{chat}/messages/{stored['id']}/events"
    assert parse_sse_ids(client.get(url, headers=admin).data) == events


def test_a_failing_tool_and_a_server_that_is_down_are_results_in_the_answer(
    chat_app, admin, llm, fake_mcp
):
    client = chat_app.test_client()
    tickets = _discovered(client, admin, fake_mcp.url)
    down = _server(client, admin, closed_port_url() + "/mcp", name="down")
    rt = Runtime.of(chat_app)
    with rt.pool.connection() as conn, scope.acting_as_owner(conn), conn.transaction():
        tool = {"name": "add", "title": None, "description": "Add.", "input_schema": {}}
        server_repo.replace_catalog(conn, down, [tool], [])
    chat = new_chat(client, admin, mcp_server_ids=[tickets, down])
    llm.tool_calls = _calls(
        {"name": "tickets__fail", "arguments": {}},
        {"name": "down__add", "arguments": {"a": 1, "b": 1}},
        {"name": "nowhere__add", "arguments": {}},
    )
    llm.reply = "Both failed."
    events = _events(client, admin, chat, "Try them")
    assert _kinds(events) == ["retrieval"] + ["tool_call", "tool_result"] * 3 + ["done"]
    results = [data for _, kind, data in events if kind == "tool_result"]
    assert all(r["is_error"] for r in results)
    assert "the ticket system is down" in results[0]["text"]
    assert results[1]["text"] == "the tool could not be called: MCP server down: cannot be reached"
    assert results[2]["server"] is None and "no tool named 'nowhere__add'" in results[2]["text"]
    stored = messages(client, admin, chat)[-1]
    assert (stored["status"], stored["content"]) == ("complete", "Both failed.")
    assert [c["is_error"] for c in stored["tool_calls"]] == [True, True, True]


def test_unreadable_arguments_are_an_error_result_the_model_reads(tools_app, admin, llm, fake_mcp):
    client = tools_app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    llm.tool_calls = _calls({"name": "tickets__add", "arguments": "{not json"})
    llm.reply = "I could not add them."
    events = _events(client, admin, chat, "Add 2 and 3")
    assert _kinds(events) == ["retrieval", "tool_call", "tool_result", "done"]
    (result,) = [data for _, kind, data in events if kind == "tool_result"]
    assert result["is_error"] and "not a JSON object" in result["text"]
    assert "not a JSON object" in _results(llm.chat_requests()[-1]["messages"])
    stored = messages(client, admin, chat)[-1]
    assert (stored["status"], stored["content"]) == ("complete", "I could not add them.")


@pytest.mark.parametrize("number", ["NaN", "-Infinity", "1e999"])
def test_arguments_with_numbers_json_has_not_are_an_error_result(
    tools_app, admin, llm, fake_mcp, number
):
    client = tools_app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    llm.tool_calls = _calls({"name": "tickets__add", "arguments": f'{{"a": {number}, "b": 3}}'})
    llm.reply = "I could not add them."
    events = _events(client, admin, chat, "Add 2 and 3")
    assert _kinds(events) == ["retrieval", "tool_call", "tool_result", "done"]
    (result,) = [data for _, kind, data in events if kind == "tool_result"]
    assert result["is_error"] and "not a JSON object" in result["text"]
    stored = messages(client, admin, chat)[-1]
    assert (stored["status"], stored["content"]) == ("complete", "I could not add them.")


def test_nul_characters_in_arguments_are_replaced(tools_app, admin, llm, fake_mcp):
    client = tools_app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    arguments = {"reason": "down\x00now", "note\x00": 1}
    llm.tool_calls = _calls({"name": "tickets__fail", "arguments": arguments})
    llm.reply = "It failed."
    events = _events(client, admin, chat, "Try it")
    assert _kinds(events) == ["retrieval", "tool_call", "tool_result", "done"]
    call, result = (data for _, kind, data in events if kind.startswith("tool_"))
    assert call["arguments"] == {"reason": "down\ufffdnow", "note\ufffd": 1}
    assert result["is_error"] and "down\ufffdnow" in result["text"]
    stored = messages(client, admin, chat)[-1]
    assert (stored["status"], stored["tool_calls"][0]["arguments"]) == (
        "complete",
        call["arguments"],
    )


def test_an_answer_whose_tool_calls_cannot_be_stored_ends_without_them(
    tools_app, admin, llm, fake_mcp, monkeypatch
):
    """Were arguments no longer cleaned (a bug), the answer would still end, not stay open."""
    monkeypatch.setattr(llm_tools, "cleaned", lambda data: data)
    client = tools_app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    llm.tool_calls = _calls({"name": "tickets__fail", "arguments": {"reason": "down\x00now"}})
    llm.reply = "It failed."
    events = _events(client, admin, chat, "Try it")
    assert _kinds(events)[-1] == "error"
    stored = messages(client, admin, chat)[-1]
    assert (stored["status"], stored["content"], stored["tool_calls"]) == (
        "incomplete",
        "It failed.",
        [],
    )
    llm.tool_calls = None
    assert ask(client, admin, chat, "Again").status_code == 201


def _counted(app, admin, llm, fake_mcp, steps: int):  # type: ignore[no-untyped-def]
    """A chat whose model calls the server's `count` tool to `steps`: (client, chat, events)."""
    client = app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    llm.tool_calls = _calls({"name": "tickets__count", "arguments": {"steps": steps}})
    llm.reply = "Counted."
    return client, chat, _events(client, admin, chat, f"Count to {steps}")


def test_progress_notifications_become_progress_events(chat_app, admin, llm, fake_mcp):
    client, chat, events = _counted(chat_app, admin, llm, fake_mcp, 3)
    kinds = _kinds(events)
    assert kinds[:2] == ["retrieval", "tool_call"] and kinds[-2:] == ["tool_result", "done"]
    progress = [(d["progress"], d["total"], d["message"]) for _, k, d in events if k == "progress"]
    # Notifications that come faster than the answer passes them on collapse into the latest.
    steps = [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
    assert progress and progress[-1] == steps[-1] and set(progress) <= set(steps)
    assert [s for s in steps if s in progress] == progress  # in order
    assert kinds.count("progress") == len(progress)


def test_progress_without_finite_numbers_does_not_break_the_stream(tools_app, admin, llm, fake_mcp):
    fake_mcp.rewrite = {b'"progress":2,': b'"progress":NaN,', b'"total":3,': b'"total":Infinity,'}
    client, chat, events = _counted(tools_app, admin, llm, fake_mcp, 3)
    assert _kinds(events)[-2:] == ["tool_result", "done"]
    progress = [(d["progress"], d["total"]) for _, k, d in events if k == "progress"]
    assert progress and set(progress) <= {(1, None), (3, None)}
    assert messages(client, admin, chat)[-1]["status"] == "complete"


def test_a_flood_of_progress_is_collapsed_capped_and_cut(tools_app, admin, llm, fake_mcp):
    client, chat, events = _counted(tools_app, admin, llm, fake_mcp, 300)
    progress = [d for _, k, d in events if k == "progress"]
    assert 1 <= len(progress) <= chat_tools.MAX_PROGRESS == 50
    assert all(len(p["message"]) == chat_tools.PROGRESS_MESSAGE_CHARS == 500 for p in progress)
    assert [p["progress"] for p in progress] == sorted({p["progress"] for p in progress})


def test_the_rounds_limit_makes_the_model_answer_without_tools(make_app, admin, llm, fake_mcp):
    app = _app(make_app, llm, chat_tool_rounds=2)
    client = app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    llm.tool_calls = lambda sent: [{"name": "tickets__add", "arguments": {"a": 1, "b": 2}}]
    llm.reply = "Enough tools."
    events = _events(client, admin, chat, "Add forever")
    assert _kinds(events) == ["retrieval"] + ["tool_call", "tool_result"] * 2 + ["done"]
    sent = llm.chat_requests()[-3:]
    assert [bool(r.get("tools")) for r in sent] == [True, True, False]
    stored = messages(client, admin, chat)[-1]
    assert (stored["status"], stored["content"]) == ("complete", "Enough tools.")
    assert len(stored["tool_calls"]) == 2


def test_without_enabled_servers_no_tool_is_offered(tools_app, admin, llm, fake_mcp):
    client = tools_app.test_client()
    server = _discovered(client, admin, fake_mcp.url)
    chat = new_chat(client, admin, mcp_server_ids=[server])
    plain = new_chat(client, admin)
    patched = client.patch(f"/api/v1/mcp-servers/{server}", json={"enabled": False}, headers=admin)
    assert patched.status_code == 200
    llm.tool_calls = _calls({"name": "tickets__add", "arguments": {"a": 1, "b": 1}})
    for each in (chat, plain):
        assert ask(client, admin, each, "Hello").status_code == 201
        assert "tools" not in llm.chat_requests()[-1]
        assert messages(client, admin, each)[-1]["tool_calls"] == []
    refused = client.post("/api/v1/chats", json={"mcp_server_ids": [server]}, headers=admin)
    assert refused.status_code == 422
    assert refused.json["errors"][0]["loc"] == ["body", "mcp_server_ids"]
    unknown = client.patch(f"/api/v1/chats/{plain}", json={"mcp_server_ids": [999]}, headers=admin)
    assert unknown.status_code == 422 and "999" in unknown.json["detail"]


# Questions (elicitation)


def _asking(app, admin, llm, fake_mcp) -> tuple[object, int, threading.Thread, list]:
    """A chat whose model calls the `ask` tool, its answer posted in a thread; the client, the
    chat, the thread and where the answer's response goes."""
    client = app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    llm.tool_calls = _calls({"name": "tickets__ask", "arguments": {}})
    llm.reply = lambda sent: f"Done: {_results(sent)}"
    answered: list = []
    thread = threading.Thread(
        target=lambda: answered.append(ask(app.test_client(), admin, chat, "Make a ticket"))
    )
    thread.start()
    return client, chat, thread, answered


def _answer(thread: threading.Thread, answered: list) -> dict:
    """The stored answer the posting thread got (201)."""
    thread.join(60)
    assert not thread.is_alive(), "the answer did not end"
    assert answered[0].status_code == 201, answered[0].json
    return answered[0].json


def _pending(client, admin, chat: int) -> dict:
    found = wait_for(
        lambda: client.get(f"/api/v1/chats/{chat}", headers=admin).json["questions"],
        "the server's question",
        timeout=30,
    )
    return found[0]


def test_a_question_answered_through_the_api_reaches_the_tool(tools_app, admin, llm, fake_mcp):
    client, chat, thread, answered = _asking(tools_app, admin, llm, fake_mcp)
    question = _pending(client, admin, chat)
    assert question["message"] == "Which colour should the ticket be?"
    assert question["state"] == "pending" and question["server"] == "tickets"
    assert set(question["requested_schema"]["properties"]) == {"colour"}
    url = f"/api/v1/chats/{chat}/questions/{question['id']}"
    wrong = client.post(url, json={"action": "accept", "content": {"colour": 7}}, headers=admin)
    assert wrong.status_code == 422 and wrong.json["errors"][0]["loc"][:2] == ["body", "content"]
    reply = client.post(url, json={"action": "accept", "content": {"colour": "red"}}, headers=admin)
    assert reply.status_code == 200, reply.json
    assert reply.json["state"] == "answered"
    assert reply.json["answer"] == {"action": "accept", "content": {"colour": "red"}}
    assert _answer(thread, answered)["content"] == "Done: the colour is red"
    again = client.post(url, json={"action": "decline"}, headers=admin)
    assert again.status_code == 409
    assert client.get(f"/api/v1/chats/{chat}", headers=admin).json["questions"] == []
    stored = answered[0].json
    url = f"/api/v1/chats/{chat}/messages/{stored['id']}/events"
    events = parse_sse_ids(client.get(url, headers=admin).data)
    kinds = _kinds(events)
    assert kinds == ["retrieval", "tool_call", "question", "question_closed", "tool_result", "done"]
    assert events[3][2] == {"id": question["id"], "state": "answered"}


def test_a_declined_question_is_told_to_the_tool(tools_app, admin, llm, fake_mcp):
    client, chat, thread, answered = _asking(tools_app, admin, llm, fake_mcp)
    question = _pending(client, admin, chat)
    url = f"/api/v1/chats/{chat}/questions/{question['id']}"
    reply = client.post(url, json={"action": "decline"}, headers=admin)
    assert reply.status_code == 200 and reply.json["state"] == "declined"
    assert _answer(thread, answered)["content"] == "Done: the user chose to decline"


def test_a_question_nobody_answers_expires_and_the_tool_is_cancelled(
    make_app, admin, llm, fake_mcp
):
    app = _app(make_app, llm, chat_question_timeout_s=1)
    client, chat, thread, answered = _asking(app, admin, llm, fake_mcp)
    stored = _answer(thread, answered)
    assert stored["content"] == "Done: the user chose to cancel"
    message = stored["tool_calls"][0]
    assert (message["tool"], message["is_error"]) == ("ask", False)
    url = f"/api/v1/chats/{chat}/messages/{stored['id']}/events"
    events = parse_sse_ids(client.get(url, headers=admin).data)
    kinds = _kinds(events)
    assert kinds == ["retrieval", "tool_call", "question", "question_closed", "tool_result", "done"]
    question, closed = events[2][2], events[3][2]
    assert closed == {"id": question["id"], "state": "expired"}
    late = client.post(
        f"/api/v1/chats/{chat}/questions/{question['id']}",
        json={"action": "accept", "content": {"colour": "red"}},
        headers=admin,
    )
    assert late.status_code == 409 and "expired" in late.json["detail"]


def test_a_server_asking_on_and_on_gets_its_later_questions_cancelled_unasked(
    make_app, admin, llm, fake_mcp
):
    app = _app(make_app, llm, chat_question_timeout_s=1)
    client = app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    llm.tool_calls = _calls({"name": "tickets__nag", "arguments": {}})
    llm.reply = lambda sent: f"Done: {_results(sent)}"
    events = _events(client, admin, chat, "Make a ticket")
    (result,) = [data for _, kind, data in events if kind == "tool_result"]
    assert _kinds(events).count("question") == mcp_client.MAX_QUESTIONS == 3, result
    (result,) = [data for _, kind, data in events if kind == "tool_result"]
    assert result["text"] == ",".join(["cancel"] * 4)


COLOUR = b'"colour":{"title":"Colour","type":"string"'


@pytest.mark.parametrize(
    ("tool", "rewrite"),
    [
        pytest.param("odd", {}, id="pattern"),
        # What the SDK would not write, or a form the page could not build: edited on the wire.
        pytest.param("ask", {COLOUR: COLOUR + b',"maxLength":NaN'}, id="nan"),
        pytest.param("ask", {COLOUR: COLOUR + b',"enum":"red"'}, id="enum-not-a-list"),
        pytest.param("ask", {COLOUR: COLOUR + b',"enum":["r"],"enumNames":"R"'}, id="names"),
    ],
)
def test_a_question_outside_mcps_flat_forms_is_cancelled_unasked(
    tools_app, admin, llm, fake_mcp, tool, rewrite
):
    client = tools_app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    fake_mcp.rewrite = rewrite
    llm.tool_calls = _calls({"name": f"tickets__{tool}", "arguments": {}})
    llm.reply = lambda sent: f"Done: {_results(sent)}"
    events = _events(client, admin, chat, "Make a code")
    assert "question" not in _kinds(events)
    (result,) = [data for _, kind, data in events if kind == "tool_result"]
    assert result["text"] == "the user chose to cancel"
    rt = Runtime.of(tools_app)
    with rt.pool.connection() as conn, scope.acting_as_owner(conn):
        assert conn.execute("SELECT count(*) AS n FROM chat_questions").fetchone()["n"] == 0


@pytest.mark.parametrize(
    "change",
    [
        {"required": True},
        {"required": [1]},
        {"properties": {"colour": {"type": "string", "enum": [{"r": 1}]}}},
        {"properties": {"colour": {"type": "string", "enum": ["r"], "enumNames": [1]}}},
    ],
)
def test_forms_with_members_of_the_wrong_type_are_unreadable(change):
    """The page builds its form from these members (tools.js): they must be lists, of names
    or of plain values."""
    form = {"type": "object", "properties": {"colour": {"type": "string", "enum": ["r", 1]}}}
    assert mcp_content.unreadable(Question("Which?", {**form, "required": ["colour"]})) is None
    assert mcp_content.unreadable(Question("Which?", {**form, **change})) is not None


def test_another_users_question_is_not_found(tools_app, admin, new_user, llm, fake_mcp):
    client, chat, thread, answered = _asking(tools_app, admin, llm, fake_mcp)
    question = _pending(client, admin, chat)
    bob = new_user("bob")
    bobs_chat = new_chat(client, bob)
    reply = {"action": "accept", "content": {"colour": "blue"}}
    for where in (chat, bobs_chat):
        url = f"/api/v1/chats/{where}/questions/{question['id']}"
        assert client.post(url, json=reply, headers=bob).status_code == 404
    assert client.get(f"/api/v1/chats/{chat}", headers=bob).status_code == 404
    url = f"/api/v1/chats/{chat}/questions/{question['id']}"
    assert client.post(url, json={"action": "cancel"}, headers=admin).status_code == 200
    assert _answer(thread, answered)["content"] == "Done: the user chose to cancel"


def test_a_stored_form_postrag_cannot_read_takes_the_reply_unchecked(
    tools_app, admin, llm, fake_mcp
):
    client, chat, thread, answered = _asking(tools_app, admin, llm, fake_mcp)
    question = _pending(client, admin, chat)
    odd = {"type": "object", "properties": {"colour": {"$ref": "#/$defs/nowhere"}}}
    rt = Runtime.of(tools_app)
    with rt.pool.connection() as conn, scope.acting_as_owner(conn):  # stored by an older postrag
        conn.execute(
            "UPDATE chat_questions SET requested_schema = %s WHERE id = %s",
            (Jsonb(odd), question["id"]),
        )
    url = f"/api/v1/chats/{chat}/questions/{question['id']}"
    reply = {"action": "accept", "content": {"colour": "red"}}
    assert client.post(url, json=reply, headers=admin).status_code == 200
    assert _answer(thread, answered)["content"] == "Done: the colour is red"


# Slash commands


def test_a_slash_command_sends_the_servers_prompt(tools_app, admin, llm, fake_mcp):
    client = tools_app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    listed = client.get(f"/api/v1/chats/{chat}/commands", headers=admin)
    assert listed.status_code == 200
    assert [(c["command"], [a["name"] for a in c["arguments"]]) for c in listed.json["items"]] == [
        ("/tickets:summarise", ["topic"])
    ]
    llm.reply = "Here is a summary."
    for command in ("/tickets:summarise the invoices of May", "/summarise topic=invoices"):
        answered = ask(client, admin, chat, command)
        assert answered.status_code == 201, answered.json
        sent = llm.chat_requests()[-1]["messages"][-1]["content"]
        assert "Please summarise what we know about" in sent
    stored = [m["content"] for m in messages(client, admin, chat) if m["role"] == "user"]
    assert stored == [
        "Please summarise what we know about the invoices of May.",
        "Please summarise what we know about invoices.",
    ]
    unknown = ask(client, admin, chat, "/nope now")
    assert unknown.status_code == 422 and "/tickets:summarise" in unknown.json["detail"]
    missing = ask(client, admin, chat, "/summarise")
    assert missing.status_code == 422 and "needs topic" in missing.json["detail"]
    # A path is a message, and so is anything in a chat without MCP servers.
    assert ask(client, admin, chat, "/etc/hosts holds what?").status_code == 201
    plain = new_chat(client, admin)
    assert ask(client, admin, plain, "/nope now").status_code == 201
    assert client.get(f"/api/v1/chats/{plain}/commands", headers=admin).json["items"] == []
    # `//word` escapes a message that would be a command: sent with one `/` less.
    escaped = ask(client, admin, chat, "//nope is a word I mean")
    assert escaped.status_code == 201, escaped.json
    assert llm.chat_requests()[-1]["messages"][-1]["content"].endswith("/nope is a word I mean")
    assert messages(client, admin, chat)[-2]["content"] == "/nope is a word I mean"


def test_a_slash_command_holds_no_connection_while_the_server_answers(
    tools_app, admin, llm, fake_mcp
):
    client = tools_app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    pool = Runtime.of(tools_app).pool
    with connections_held_at(fake_mcp, pool) as held:
        answered = ask(client, admin, chat, "/tickets:summarise May")
    assert answered.status_code == 201, answered.json
    assert held and max(held) == 0, held


def test_a_stop_while_a_question_waits_ends_the_answer(tools_app, admin, llm, fake_mcp):
    client, chat, thread, answered = _asking(tools_app, admin, llm, fake_mcp)
    question = _pending(client, admin, chat)
    assert client.post(f"/api/v1/chats/{chat}/stop", headers=admin).status_code == 202
    thread.join(60)
    assert not thread.is_alive(), "the answer did not end"
    stored = messages(client, admin, chat)[-1]
    assert (stored["status"], stored["finish_reason"]) == ("incomplete", "stopped")
    assert stored["tool_calls"][0]["text"] == "stopped before the tool answered"
    expired = wait_for(
        lambda: (
            client.post(
                f"/api/v1/chats/{chat}/questions/{question['id']}",
                json={"action": "decline"},
                headers=admin,
            ).status_code
            == 409
        ),
        "the question expired",
        timeout=30,
    )
    assert expired
    llm.tool_calls = None
    assert ask(client, admin, chat, "Next").status_code == 201  # the chat takes a new message


# Acting as the user: RFC 8693 token exchange with the JWT the question was posted with

KEY = "k1-" + "abcdefghijklmnopqrstuvwxyz0123456789"


def test_tools_are_called_with_the_users_exchanged_token(make_app, admin, llm, provider, fake_mcp):
    provider.client_secret = "client-s3cret"
    app = _app(
        make_app,
        llm,
        secret_key=KEY,
        oidc_issuer=provider.issuer,
        oidc_audience="postrag",
        oidc_client_secret="client-s3cret",
    )
    client = app.test_client()
    fields = {"name": "tickets", "url": fake_mcp.url, "auth": "token_exchange"}
    created = client.post(
        "/api/v1/mcp-servers", json={**fields, "exchange_audience": "tickets-mcp"}, headers=admin
    )
    assert created.status_code == 201, created.json
    server = created.json["id"]
    rt = Runtime.of(app)
    with rt.pool.connection() as conn, scope.acting_as_owner(conn), conn.transaction():
        schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
        tool = {"name": "add", "title": None, "description": "Add.", "input_schema": schema}
        server_repo.replace_catalog(conn, server, [tool], [])
    alice = bearer(provider.token(sub="alice-1", preferred_username="alice"))
    chat = new_chat(client, alice, mcp_server_ids=[server])
    llm.tool_calls = _calls({"name": "tickets__add", "arguments": {"a": 4, "b": 5}})
    llm.reply = lambda sent: f"It is {_results(sent)}."
    answered = ask(client, alice, chat, "4 + 5?")
    assert answered.status_code == 201, answered.json
    assert answered.json["content"] == "It is 9."
    sent = fake_mcp.seen("authorization")[-1].removeprefix("Bearer ")
    claims = jwt.decode(sent, options={"verify_signature": False})
    assert (claims["aud"], claims["sub"]) == ("tickets-mcp", "alice-1")
    # The same user with an API token has nothing to exchange: the result says so.
    minted = client.post("/api/v1/tokens", json={"name": "cli"}, headers=alice)
    assert minted.status_code == 201, minted.json
    answered = ask(client, bearer(minted.json["token"]), chat, "And now?")
    call = answered.json["tool_calls"][0]
    assert call["is_error"] and "call with the provider's bearer JWT" in call["text"]


def _web_sign_in(client, provider) -> dict[str, str]:
    """Sign in on the web page (the provider signs in at once); the CSRF header to send."""
    started = client.get("/auth/login")
    back = httpx.get(started.headers["Location"], follow_redirects=False).headers["Location"]
    assert client.get(back).status_code == 303
    return {"X-CSRF-Token": client.get("/auth/session").json["csrf_token"]}


def test_a_web_session_exchanges_the_token_kept_from_its_sign_in(
    make_app, admin, llm, provider, fake_mcp, database_url
):
    provider.client_secret = "client-s3cret"
    provider.login_claims = {"sub": "wendy-1", "preferred_username": "wendy"}
    provider.access_expires_in = 30  # due for a refresh at once (refreshed a minute early)
    settings = {"oidc_issuer": provider.issuer, "oidc_audience": "postrag"}
    app = _app(make_app, llm, secret_key=KEY, oidc_client_secret="client-s3cret", **settings)
    created = app.test_client().post(
        "/api/v1/mcp-servers",
        json={"name": "tickets", "url": fake_mcp.url, "auth": "token_exchange"}
        | {"exchange_audience": "tickets-mcp"},
        headers=admin,
    )
    assert created.status_code == 201, created.json
    server = created.json["id"]
    with Runtime.of(app).pool.connection() as conn, scope.acting_as_owner(conn):
        schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
        tool = {"name": "add", "title": None, "description": "Add.", "input_schema": schema}
        server_repo.replace_catalog(conn, server, [tool], [])
    browser = app.test_client()
    csrf = _web_sign_in(browser, provider)
    with psycopg.connect(database_url) as conn:  # kept encrypted, never in the clear
        kept = conn.execute("SELECT access_token FROM connector_tokens WHERE provider = 'oidc'")
        stored = bytes(kept.fetchone()[0])
    assert b"eyJ" not in stored and len(stored) > 100
    listed = browser.get("/api/v1/connectors").json["items"]
    assert [c["provider"] for c in listed] == ["oidc"] and "access_token" not in listed[0]

    chat = new_chat(browser, csrf, mcp_server_ids=[server])
    llm.tool_calls = _calls({"name": "tickets__add", "arguments": {"a": 4, "b": 5}})
    llm.reply = lambda sent: f"It is {_results(sent)}."
    answered = ask(browser, csrf, chat, "4 + 5?")
    assert answered.status_code == 201, answered.json
    assert answered.json["content"] == "It is 9."
    assert len(provider.refreshes) == 1  # the kept token was due: refreshed, then exchanged
    exchanged = provider.exchanges[-1]["subject_token"]
    assert jwt.decode(exchanged, options={"verify_signature": False})["sub"] == "wendy-1"
    sent = fake_mcp.seen("authorization")[-1].removeprefix("Bearer ")
    claims = jwt.decode(sent, options={"verify_signature": False})
    assert (claims["aud"], claims["sub"]) == ("tickets-mcp", "wendy-1")

    # Nobody stores such a token through the API; signing out of the last session deletes it.
    put = browser.put("/api/v1/connectors/oidc", json={"access_token": "forged"}, headers=csrf)
    assert put.status_code == 422 and put.json["errors"][0]["loc"] == ["path", "provider"]
    assert browser.post("/auth/logout", headers=csrf).status_code == 200
    with psycopg.connect(database_url) as conn:
        left = conn.execute("SELECT count(*) FROM connector_tokens WHERE provider = 'oidc'")
        assert left.fetchone()[0] == 0
    csrf = _web_sign_in(browser, provider)  # signed in again, the provider's refresh is refused
    provider.refresh_tokens.clear()
    answered = ask(browser, csrf, chat, "Again?")
    call = answered.json["tool_calls"][0]
    assert call["is_error"] and "sign in again on the web page" in call["text"]


def test_each_round_of_tool_calls_holds_more_of_the_daily_budget(
    make_app, admin, llm, fake_mcp, database_url
):
    """The answer's hold covers one round: the next is held before it runs, and an answer whose
    budget is used up ends after its calls instead of passing the budget round by round."""
    budgets = {"chat_context_tokens": 2000, "chat_tool_rounds": 5}
    tight = _app(make_app, llm, llm_tokens_per_day=2000, **budgets).test_client()  # one round
    chat = new_chat(tight, admin, mcp_server_ids=[_discovered(tight, admin, fake_mcp.url)])
    llm.tool_calls = lambda sent: [{"name": "tickets__add", "arguments": {"a": 1, "b": 2}}]
    llm.reply = "Never reached."
    before = len(llm.chat_requests())
    events = _events(tight, admin, chat, "Add forever")
    assert _kinds(events) == ["retrieval", "tool_call", "tool_result", "done"]
    assert len(llm.chat_requests()) == before + 1  # no second round was asked of the model
    done = events[-1][2]
    assert (done["status"], done["finish_reason"]) == ("incomplete", "length")
    stored = messages(tight, admin, chat)[-1]
    assert stored["status"] == "incomplete" and "tokens for today are used up" in stored["error"]
    assert len(stored["tool_calls"]) == 1
    with psycopg.connect(database_url) as conn:
        used, held = conn.execute("SELECT tokens, reserved FROM llm_token_counters").fetchone()
    assert 0 < used < 2000 and held == 0  # what the round took is counted, the hold given back

    roomy = _app(make_app, llm, llm_tokens_per_day=10**6, **budgets).test_client()
    events = _events(roomy, admin, chat, "Add forever")  # every round is held: 5, then the answer
    assert _kinds(events) == ["retrieval"] + ["tool_call", "tool_result"] * 5 + ["done"]
    assert events[-1][2]["status"] == "complete"
    with psycopg.connect(database_url) as conn:
        used_after, held = conn.execute(
            "SELECT tokens, reserved FROM llm_token_counters"
        ).fetchone()
    assert used_after > used and held == 0


def test_results_the_context_cannot_hold_are_cut_and_end_the_tool_rounds(
    make_app, admin, llm, fake_mcp
):
    app = _app(make_app, llm, chat_context_tokens=1100, chat_answer_tokens=256)
    client = app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    llm.tool_calls = lambda sent: [{"name": "tickets__big", "arguments": {"size": 3000}}]
    llm.reply = "Too long to read."
    events = _events(client, admin, chat, "Read it all")
    assert _kinds(events) == ["retrieval", "tool_call", "tool_result", "done"]
    result = next(data for _, kind, data in events if kind == "tool_result")
    assert len(result["text"]) == 3000  # stored whole (within POSTRAG_MCP_RESULT_CHARS)
    first, second = llm.chat_requests()[-2:]
    assert first.get("tools") and not second.get("tools")
    read = second["messages"][-1]["content"]
    assert 50 < len(read) < 1000 and read.endswith("[... the rest of the result was cut]")


def test_tool_names_are_what_the_protocols_accept_and_unique():
    allowed = re.compile(r"[A-Za-z0-9_-]{1,64}")
    assert model_name("tickets", "create issue/v2", set()) == "tickets__create_issue_v2"
    long = model_name("tickets", "x" * 100, set())
    clash = model_name("tickets", "a.b", {"tickets__a_b"})
    assert allowed.fullmatch(long) and allowed.fullmatch(clash)
    assert clash != "tickets__a_b" and clash.startswith("tickets__a_b_")
    assert long != model_name("tickets", "x" * 101, set())  # cut alike, told apart by the hash


def test_a_tool_too_slow_is_an_error_result_and_the_answer_goes_on(make_app, admin, llm, fake_mcp):
    app = _app(make_app, llm, mcp_timeout_s=1)
    client = app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    llm.tool_calls = _calls({"name": "tickets__wait", "arguments": {"seconds": 3}})
    llm.reply = "It took too long."
    answered = ask(client, admin, chat, "Wait for it")
    assert answered.status_code == 201, answered.json
    assert answered.json["content"] == "It took too long."
    call = answered.json["tool_calls"][0]
    assert call["is_error"] and call["text"].endswith("MCP server tickets: did not answer in time")


def test_a_call_running_past_the_answers_time_for_tools_is_left(make_app, admin, llm, fake_mcp):
    app = _app(make_app, llm, chat_tool_time_s=2, chat_answers_per_user=1)
    client = app.test_client()
    chat = new_chat(client, admin, mcp_server_ids=[_discovered(client, admin, fake_mcp.url)])
    llm.tool_calls = _calls({"name": "tickets__wait", "arguments": {"seconds": 6}})
    llm.reply = "Out of time."
    answered = ask(client, admin, chat, "Wait for it")
    assert answered.status_code == 201, answered.json
    call = answered.json["tool_calls"][0]
    assert call["is_error"]
    assert call["text"] == "the answer's time for tools ran out while the tool ran"
    # The call left running holds the user's room for answers until it ends: answers that
    # leave slow calls behind cannot pile them up.
    llm.tool_calls = lambda sent: []
    held = ask(client, admin, chat, "Next?")
    assert held.status_code == 429, held.json
    assert wait_for(lambda: ask(client, admin, chat, "Next?").status_code == 201, timeout=30)


def test_a_preference_names_the_servers_new_chats_use(tools_app, admin, llm, fake_mcp):
    client = tools_app.test_client()
    server = _discovered(client, admin, fake_mcp.url)
    path = "/api/v1/me/preferences"
    wrong = client.patch(path, json={"mcp_server_ids": [server, 999]}, headers=admin)
    assert wrong.status_code == 422 and wrong.json["errors"][0]["loc"] == ["body", "mcp_server_ids"]
    changed = client.patch(path, json={"mcp_server_ids": [server]}, headers=admin)
    assert changed.status_code == 200 and changed.json["mcp_server_ids"] == [server]
    chat = client.post("/api/v1/chats", json={}, headers=admin).json
    assert chat["mcp_server_ids"] == [server]
    chosen = client.post("/api/v1/chats", json={"mcp_server_ids": []}, headers=admin).json
    assert chosen["mcp_server_ids"] == []  # a chat that says otherwise wins
    llm.tool_calls = _calls({"name": "tickets__add", "arguments": {"a": 1, "b": 1}})
    llm.reply = lambda sent: f"Two: {_results(sent)}"
    assert ask(client, admin, chat["id"], "1 + 1?").json["content"] == "Two: 2"
