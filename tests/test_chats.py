"""Chats: CRUD and tenancy, RAG answers as JSON and SSE, citations, history, providers, failures."""

from __future__ import annotations

import json
import time

import httpx
import psycopg
import pytest

from app.runtime import Runtime
from app.services import prompting
from tests.helpers import (
    FOX,
    SSE,
    VALVE,
    ask,
    closed_port_url,
    drain,
    live_server,
    messages,
    new_chat,
    parse_sse,
    parse_sse_ids,
    stream_until,
    upload,
)


@pytest.fixture
def docs(app, client, admin, collection):
    ids = {
        "fox.txt": upload(client, admin, collection, "fox.txt", FOX),
        "valve.txt": upload(client, admin, collection, "valve.txt", VALVE),
    }
    drain(app)
    return ids


def test_json_answer_is_stored_with_citations_naming_files(ollama_app, admin, docs, llm):
    llm.reply = "Foxes are clever animals [1]."
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    response = ask(client, admin, chat, "Are foxes clever?")
    assert response.status_code == 201, response.json
    body = response.json
    assert body["role"] == "assistant" and body["status"] == "complete"
    assert body["content"] == "Foxes are clever animals [1]."
    assert body["model"] == "fake-chat"
    assert (body["prompt_tokens"], body["completion_tokens"]) == llm.usage
    assert body["latency_ms"] >= 0
    first = body["citations"][0]
    assert first["n"] == 1 and first["cited"] is True and first["filename"] == "fox.txt"
    assert first["document_id"] == docs["fox.txt"]
    assert first["char_end"] > first["char_start"]
    stored = messages(client, admin, chat)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["citations"] == body["citations"]
    sent = llm.chat_requests()[-1]
    assert sent["options"]["num_ctx"] == 4096  # the model's context, from /api/show
    system, user = sent["messages"][0]["content"], sent["messages"][-1]["content"]
    assert prompting.RAG_INSTRUCTIONS in system
    assert "[1] fox.txt" in user and user.endswith("Question: Are foxes clever?")


def test_stream_sends_retrieval_deltas_in_order_then_done(ollama_app, admin, docs, llm):
    llm.reply = "The valve XR-7734 goes in first [1], then you pressurise."
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    response = ask(client, admin, chat, "When is the XR-7734 valve installed?", extra=SSE)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    numbered = parse_sse_ids(response.data)
    assert [n for n, _, _ in numbered] == list(range(1, len(numbered) + 1))  # ids to resume from
    events = [(kind, data) for _, kind, data in numbered]
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "retrieval" and kinds[-1] == "done"
    assert set(kinds[1:-1]) == {"delta"}  # pieces that come within ~80 ms are sent as one
    assert "".join(data["text"] for kind, data in events if kind == "delta") == llm.reply
    sources = events[0][1]["sources"]
    assert sources[0]["filename"] == "valve.txt" and "XR-7734" in sources[0]["text"]
    done = events[-1][1]
    assert events[0][1]["message_id"] == done["message_id"]  # named first: a cut stream resumes
    assert done["status"] == "complete" and done["usage"]["completion_tokens"] == llm.usage[1]
    assert {"retrieval_ms", "first_token_ms", "generation_ms", "total_ms"} <= set(
        done["timings_ms"]
    )
    stored = messages(client, admin, chat)[-1]
    assert stored["id"] == done["message_id"] and stored["content"] == llm.reply
    # ?stream=true asks for the same without an Accept header.
    again = client.post(
        f"/api/v1/chats/{chat}/messages?stream=true", json={"content": "Again?"}, headers=admin
    )
    assert parse_sse(again.data)[-1][0] == "done"


def test_without_matching_sources_the_model_answers_normally(ollama_app, client, admin, llm):
    empty = client.post("/api/v1/collections", json={"name": "empty"}, headers=admin).json["id"]
    llm.reply = "Paris is the capital of France."
    chat_client = ollama_app.test_client()
    chat = new_chat(chat_client, admin, collection_ids=[empty])
    events = parse_sse(
        ask(chat_client, admin, chat, "What is the capital of France?", extra=SSE).data
    )
    assert events[0][0] == "retrieval" and events[0][1]["sources"] == []
    sent = llm.chat_requests()[-1]["messages"]
    assert prompting.RAG_INSTRUCTIONS not in sent[0]["content"]
    assert sent[-1]["content"] == "What is the capital of France?"
    assert messages(chat_client, admin, chat)[-1]["citations"] == []


def test_answer_markers_map_to_the_stored_citations(ollama_app, admin, docs, llm):
    llm.reply = "Valves first [2], and see also [9] and [1, 2]."
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    body = ask(client, admin, chat, "fox valve pipeline forest").json
    cited = {c["n"]: c["cited"] for c in body["citations"]}
    assert cited == {1: True, 2: True}
    llm.reply = "Only the second source helps [2]."
    body = ask(client, admin, chat, "fox valve pipeline forest").json
    assert {c["n"]: c["cited"] for c in body["citations"]} == {1: False, 2: True}


def test_scope_limits_the_sources_to_the_chat_collections(ollama_app, app, client, admin, docs):
    other = client.post("/api/v1/collections", json={"name": "other"}, headers=admin).json["id"]
    upload(client, admin, other, "fox2.txt", "Foxes hunt at night in the forest.")
    drain(app)
    chat_client = ollama_app.test_client()
    chat = new_chat(chat_client, admin, collection_ids=[other])
    sources = parse_sse(ask(chat_client, admin, chat, "foxes forest", extra=SSE).data)[0][1]
    assert {s["filename"] for s in sources["sources"]} == {"fox2.txt"}
    assert (
        chat_client.patch(
            f"/api/v1/chats/{chat}", json={"collection_ids": None}, headers=admin
        ).json["collection_ids"]
        is None
    )
    sources = parse_sse(ask(chat_client, admin, chat, "foxes forest", extra=SSE).data)[0][1]
    assert {"fox.txt", "fox2.txt"} <= {s["filename"] for s in sources["sources"]}


def test_reasoning_is_stored_apart_and_never_sent_back(ollama_app, admin, llm):
    llm.reply = "<think>The user greets me, secret plan.</think>Hello! How can I help?"
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    events = parse_sse(ask(client, admin, chat, "Hi", extra=SSE).data)
    assert "".join(d["text"] for k, d in events if k == "delta") == "Hello! How can I help?"
    assert "secret plan" in "".join(d["text"] for k, d in events if k == "reasoning")
    stored = messages(client, admin, chat)[-1]
    assert stored["content"] == "Hello! How can I help?"
    assert stored["reasoning"] == "The user greets me, secret plan."
    llm.reply = "Fine."
    ask(client, admin, chat, "And now?")
    history = llm.chat_requests()[-1]["messages"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
    assert history[2]["content"] == "Hello! How can I help?"
    assert "secret" not in json.dumps(history)


def test_history_goes_in_newest_first_within_the_token_budget(make_app, admin, llm):
    chat_app = make_app(
        llm="ollama",
        ollama_url=llm.url,
        chat_model="fake-chat",
        chat_context_tokens=1024,
        chat_answer_tokens=256,
    )
    client = chat_app.test_client()
    chat = new_chat(client, admin)
    llm.reply = "Noted."
    for i in range(8):
        response = ask(client, admin, chat, f"message {i}: " + "lorem ipsum dolor " * 40)
        assert response.status_code == 201, response.json
    sent = llm.chat_requests()[-1]["messages"]
    users = [m["content"] for m in sent if m["role"] == "user"]
    assert users[-1].startswith("message 7")
    kept = [int(u.split(":")[0].split()[1]) for u in users[:-1]]
    assert kept and kept == list(range(7 - len(kept), 7))  # the newest, contiguous
    assert len(kept) < 7  # the oldest did not fit
    budget = (1024 - 256) * prompting.SAFETY_MARGIN
    assert sum(prompting.count_tokens(m["content"]) + 4 for m in sent) <= budget + 8
    assert sent[1]["role"] == "user"


def test_upstream_error_is_a_502_naming_the_provider_and_stores_nothing(ollama_app, admin, llm):
    llm.fail_status = 500
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    response = ask(client, admin, chat, "Hello?")
    assert response.status_code == 502
    assert response.mimetype == "application/problem+json"
    assert response.json["provider"] == "ollama" and "500" in response.json["detail"]
    events = parse_sse(ask(client, admin, chat, "Hello?", extra=SSE).data)
    assert events[-1][0] == "error" and events[-1][1]["status"] == 502
    assert messages(client, admin, chat) == []  # the message can simply be sent again


def test_an_error_event_carries_the_problem_the_json_answer_has(ollama_app, admin, llm):
    """One renderer: the same failure streamed is the same problem object as answered in JSON."""
    llm.fail_status = 500
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    answered = ask(client, admin, chat, "Hello?")
    assert answered.status_code == 502
    kind, streamed = parse_sse(ask(client, admin, chat, "Hello?", extra=SSE).data)[-1]
    assert kind == "error"
    assert streamed.keys() == answered.json.keys()
    assert {"instance", "request_id", "provider"} <= streamed.keys()
    differing = {key for key, value in answered.json.items() if streamed[key] != value}
    assert differing == {"request_id"}  # each request has its own


def test_unreachable_provider_is_503_and_a_timeout_504(make_app, admin, llm):
    down = make_app(llm="ollama", ollama_url=closed_port_url(), chat_model="fake-chat")
    client = down.test_client()
    response = ask(client, admin, new_chat(client, admin), "Hello?")
    assert response.status_code == 503 and response.json["provider"] == "ollama"
    slow = make_app(llm="ollama", ollama_url=llm.url, chat_model="fake-chat", llm_timeout_s=0.3)
    llm.delay_s = 1.0
    client = slow.test_client()
    response = ask(client, admin, new_chat(client, admin), "Hello?")
    assert response.status_code == 504 and "did not answer in time" in response.json["detail"]


def test_a_server_dying_mid_stream_ends_with_error_and_keeps_the_partial_answer(
    ollama_app, admin, llm
):
    llm.reply = "one two three four five six"
    llm.die_after = 3
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    events = parse_sse(ask(client, admin, chat, "Count", extra=SSE).data)
    assert [k for k, _ in events][0 :: len(events) - 1] == ["retrieval", "error"]
    assert "".join(d["text"] for k, d in events[1:-1] if k == "delta") == "one two three"
    error = events[-1][1]
    assert error["status"] == 502 and error["provider"] == "ollama"
    stored = messages(client, admin, chat)[-1]
    assert stored["id"] == error["message_id"]
    assert (stored["status"], stored["finish_reason"]) == ("incomplete", "error")
    assert stored["content"] == "one two three"
    llm.die_after = None
    llm.error_after = 2  # an error object inside the stream
    events = parse_sse(ask(client, admin, chat, "Count again", extra=SSE).data)
    assert events[-1][0] == "error" and "crashed" in events[-1][1]["detail"]


def test_stop_ends_the_answer_and_keeps_what_was_generated(ollama_app, admin, llm):
    llm.reply = " ".join(f"word{i}" for i in range(200))
    llm.delay_s = 0.02
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    assert client.post(f"/api/v1/chats/{chat}/stop", headers=admin).status_code == 409
    response = ask(client, admin, chat, "Talk", extra=SSE, buffered=False)
    seen, stream = stream_until(response, "event: delta")
    busy = ask(client, admin, chat, "Me too")
    assert busy.status_code == 409
    stopping = client.post(f"/api/v1/chats/{chat}/stop", headers=admin)
    assert stopping.status_code == 202
    rest = b"".join(stream).decode()
    response.close()
    events = parse_sse(seen + rest)
    done = events[-1]
    assert done[0] == "done" and done[1]["message_id"] == stopping.json["message_id"]
    assert (done[1]["status"], done[1]["finish_reason"]) == ("incomplete", "stopped")
    text = "".join(d["text"] for k, d in events if k == "delta")
    assert 0 < len(text) < len(llm.reply)
    stored = messages(client, admin, chat)
    assert [m["role"] for m in stored] == ["user", "assistant"]  # the 409'd message left nothing
    assert stored[-1]["content"] == text
    assert llm.aborted.wait(5)  # the upstream connection was closed, not read to its end


def test_a_failed_final_write_leaves_the_answer_incomplete_and_the_chat_usable(
    ollama_app, admin, llm, database_url
):
    with psycopg.connect(database_url, autocommit=True) as conn:  # the disk fills up, say
        conn.execute(
            "CREATE FUNCTION refuse_completion() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN IF NEW.status = 'complete' THEN RAISE EXCEPTION 'disk full'; END IF;"
            " RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_completion BEFORE UPDATE ON chat_messages"
            " FOR EACH ROW EXECUTE FUNCTION refuse_completion()"
        )
    llm.reply = "one two three"
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    events = parse_sse(ask(client, admin, chat, "Count", extra=SSE).data)
    assert events[-1][0] == "error" and events[-1][1]["status"] == 500
    stored = messages(client, admin, chat)[-1]
    assert (stored["status"], stored["finish_reason"]) == ("incomplete", "error")
    assert stored["content"] == "one two three" and events[-1][1]["message_id"] == stored["id"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER refuse_completion ON chat_messages")
    assert ask(client, admin, chat, "Count again").status_code == 201  # not 409


def test_stop_ends_at_once_an_answer_whose_process_died(ollama_app, admin, database_url):
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    with psycopg.connect(database_url, autocommit=True) as conn:  # left by a crashed process
        conn.execute(
            "INSERT INTO chat_messages (chat_id, role, content, status) VALUES"
            " (%(chat)s, 'user', 'Count', 'complete'),"
            " (%(chat)s, 'assistant', 'one two', 'streaming')",
            {"chat": chat},
        )
    assert ask(client, admin, chat, "Hello?").status_code == 409
    stopping = client.post(f"/api/v1/chats/{chat}/stop", headers=admin)
    assert stopping.status_code == 202
    stored = messages(client, admin, chat)[-1]
    assert stored["id"] == stopping.json["message_id"] and stored["content"] == "one two"
    assert (stored["status"], stored["finish_reason"]) == ("incomplete", "stopped")
    assert ask(client, admin, chat, "Hello?").status_code == 201
    assert client.post(f"/api/v1/chats/{chat}/stop", headers=admin).status_code == 409


def test_a_client_that_disconnects_leaves_the_answer_to_finish(ollama_app, admin, llm):
    """Since resumable streams (issue 20) the answer is generated apart from the request: a client
    that leaves no longer cuts it short (it was stored `incomplete` / `disconnected` before)."""
    llm.reply = " ".join(f"word{i}" for i in range(60))
    llm.delay_s = 0.02
    with live_server(ollama_app) as base, httpx.Client(base_url=base, headers=admin) as http:
        chat = http.post("/api/v1/chats", json={}).json()["id"]
        with http.stream(
            "POST", f"/api/v1/chats/{chat}/messages", json={"content": "Go"}, headers=SSE
        ) as response:
            for line in response.iter_lines():
                if line == "event: delta":
                    break
        deadline = time.monotonic() + 15
        while True:
            stored = http.get(f"/api/v1/chats/{chat}").json()["messages"]["items"][-1]
            if stored["status"] != "streaming" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert (stored["status"], stored["finish_reason"]) == ("complete", "stop")
    assert stored["content"] == llm.reply


def test_extractive_answers_without_a_language_model(app, client, admin, docs):
    assert Runtime.of(app).llm.provider == "none"
    chat = new_chat(client, admin)
    response = ask(client, admin, chat, "XR-7734 valve")
    assert response.status_code == 201, response.json
    body = response.json
    assert body["model"] == "extractive"
    assert "not a generated answer" in body["content"]
    assert VALVE in body["content"] and "[1]" in body["content"]
    assert body["citations"][0]["filename"] == "valve.txt" and body["citations"][0]["cited"]
    events = parse_sse(ask(client, admin, chat, "XR-7734 valve", extra=SSE).data)
    assert [k for k, _ in events][0] == "retrieval" and events[-1][0] == "done"


def test_openai_compatible_provider_streams_over_sse(make_app, admin, docs, llm):
    llm.reply = "Foxes are clever [1]."
    chat_app = make_app(llm="openai", openai_base_url=llm.url + "/v1", chat_model="fake-chat")
    client = chat_app.test_client()
    chat = new_chat(client, admin)
    body = ask(client, admin, chat, "Are foxes clever?").json
    assert body["content"] == llm.reply and body["completion_tokens"] == llm.usage[1]
    sent = llm.chat_requests()[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_chat_crud_pagination_and_titles(client, admin, collection):
    first = new_chat(client, admin, title="First")
    second = new_chat(client, admin, collection_ids=[collection, collection])
    listed = client.get("/api/v1/chats?limit=1", headers=admin).json
    assert listed["total"] == 2 and [c["id"] for c in listed["items"]] == [second]
    assert client.get(f"/api/v1/chats/{second}", headers=admin).json["collection_ids"] == [
        collection
    ]
    renamed = client.patch(f"/api/v1/chats/{first}", json={"title": "Renamed"}, headers=admin)
    assert renamed.status_code == 200 and renamed.json["title"] == "Renamed"
    assert client.get("/api/v1/chats", headers=admin).json["items"][0]["id"] == first
    ask(client, admin, second, "What about the quarterly budget?")
    assert client.get(f"/api/v1/chats/{second}", headers=admin).json["title"] == (
        "What about the quarterly budget?"
    )
    page = client.get(f"/api/v1/chats/{second}?limit=1&offset=1", headers=admin).json
    assert page["messages"]["total"] == 2 and page["messages"]["items"][0]["role"] == "assistant"
    assert (
        client.post("/api/v1/chats", json={"collection_ids": [999999]}, headers=admin).status_code
        == 404
    )
    bad = client.patch(f"/api/v1/chats/{first}", json={"title": None}, headers=admin)
    assert bad.status_code == 422
    empty = client.post(f"/api/v1/chats/{first}/messages", json={"content": "  "}, headers=admin)
    assert empty.status_code == 422 and empty.json["errors"][0]["loc"] == ["body", "content"]
    assert client.delete(f"/api/v1/chats/{first}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/chats/{first}", headers=admin).status_code == 404


def test_another_users_chat_is_404_for_every_verb(client, admin, new_user, collection):
    chat = new_chat(client, admin)
    other = new_user()
    assert client.get(f"/api/v1/chats/{chat}", headers=other).status_code == 404
    assert (
        client.patch(f"/api/v1/chats/{chat}", json={"title": "x"}, headers=other).status_code == 404
    )
    assert ask(client, other, chat, "hello").status_code == 404
    assert client.post(f"/api/v1/chats/{chat}/stop", headers=other).status_code == 404
    assert client.delete(f"/api/v1/chats/{chat}", headers=other).status_code == 404
    assert client.get("/api/v1/chats", headers=other).json["total"] == 0
    # Nor can a chat be scoped to a private collection of someone else.
    scoped = client.post("/api/v1/chats", json={"collection_ids": [collection]}, headers=other)
    assert scoped.status_code == 404
    assert client.get(f"/api/v1/chats/{chat}", headers=admin).json["messages"]["total"] == 0


def test_a_question_stopped_before_any_answer_text_leaves_history_alternating(
    ollama_app, admin, llm
):
    llm.reply = "<think>" + " ".join(f"hmm{i}" for i in range(200)) + "</think>Done."
    llm.delay_s = 0.02
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    response = ask(client, admin, chat, "First?", extra=SSE, buffered=False)
    stream = iter(response.response)
    seen = ""
    while "event: reasoning" not in seen:
        seen += next(stream).decode()
    assert client.post(f"/api/v1/chats/{chat}/stop", headers=admin).status_code == 202
    rest = b"".join(stream).decode()
    response.close()
    assert parse_sse(seen + rest)[-1][1]["finish_reason"] == "stopped"
    stopped = messages(client, admin, chat)[-1]
    assert stopped["content"] == "" and stopped["reasoning"].startswith("hmm0")
    llm.delay_s, llm.reply = 0.0, "Second answer."
    assert ask(client, admin, chat, "Second?").status_code == 201
    assert ask(client, admin, chat, "Third?").status_code == 201
    roles = [m["role"] for m in llm.chat_requests()[-1]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]  # "First?" had no answer: left out


def test_reasoning_opened_by_the_template_is_kept_apart(ollama_app, admin, llm):
    llm.reply = "The user asks [3] things.</think>Here you go."
    client = ollama_app.test_client()
    body = ask(client, admin, new_chat(client, admin), "Hi").json
    assert (body["content"], body["reasoning"]) == ("Here you go.", "The user asks [3] things.")


def test_a_collection_unshared_after_scoping_is_skipped_with_a_warning(
    ollama_app, client, admin, new_user, app
):
    shared = client.post(
        "/api/v1/collections", json={"name": "team", "is_shared": True}, headers=admin
    ).json["id"]
    upload(client, admin, shared, "fox.txt", FOX)
    drain(app)
    other = new_user()
    chat_client = ollama_app.test_client()
    chat = new_chat(chat_client, other, collection_ids=[shared])
    first = parse_sse(ask(chat_client, other, chat, "clever foxes", extra=SSE).data)[0][1]
    assert [s["filename"] for s in first["sources"]][:1] == ["fox.txt"]
    client.patch(f"/api/v1/collections/{shared}", json={"is_shared": False}, headers=admin)
    later = parse_sse(ask(chat_client, other, chat, "clever foxes", extra=SSE).data)[0][1]
    assert later["sources"] == [] and "no longer exist" in later["warnings"][0]


@pytest.mark.parametrize("reported", [("lots", 7), (-1000, 7), (11, 1e300)])
def test_token_counts_a_model_gets_wrong_are_estimated_not_trusted(
    make_app, admin, llm, database_url, reported
):
    """Counts that are no token counts neither lock the chat nor credit the daily budget."""
    llm.reply, llm.usage = "one two three", reported
    app = make_app(
        llm="ollama", ollama_url=llm.url, chat_model="fake-chat", llm_tokens_per_day=10_000
    )
    client = app.test_client()
    chat = new_chat(client, admin)
    answered = ask(client, admin, chat, "Count")
    assert answered.status_code == 201, answered.json
    assert answered.json["status"] == "complete"
    assert 0 < answered.json["prompt_tokens"] < 1000
    assert 0 < answered.json["completion_tokens"] < 100
    assert ask(client, admin, chat, "Again").status_code == 201  # the chat is not locked
    with psycopg.connect(database_url) as conn:
        counted = conn.execute("SELECT tokens, reserved FROM llm_token_counters").fetchone()
    assert 0 < counted[0] < 2000 and counted[1] == 0
