"""Resumable answer streams: numbered events stored as they come, followed from any app process
(LISTEN/NOTIFY), answers that finish without a listener, tenancy, and pruning."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from app.runtime import Runtime
from tests.helpers import (
    SSE,
    ask,
    bearer,
    live_server,
    messages,
    new_chat,
    parse_sse_ids,
    stream_until,
    wait_for,
)

Events = list[tuple[int, str, dict]]


def _read(lines: Iterator[str], count: int) -> Events:
    """The first `count` events of a stream being read line by line."""
    found: Events = []
    block: dict[str, str] = {}
    for line in lines:
        if line:
            key, _, value = line.partition(": ")
            block[key] = value
            continue
        if "event" in block:
            found.append((int(block["id"]), block["event"], json.loads(block["data"])))
        block = {}
        if len(found) == count:
            break
    return found


def _text(events: Events) -> str:
    return "".join(data["text"] for _, kind, data in events if kind == "delta")


@pytest.fixture
def two_instances(ollama_app, make_app, llm, admin):  # type: ignore[no-untyped-def]
    """Two app instances (each its own pool and listener) on one database, served on loopback,
    and an HTTP client as the admin; yields (client, base URL of A, base URL of B)."""
    other = make_app(llm="ollama", ollama_url=llm.url, chat_model="fake-chat", llm_timeout_s=3)
    with (
        live_server(ollama_app) as a,
        live_server(other) as b,
        httpx.Client(headers=admin, timeout=30) as http,
    ):
        yield http, a, b


def _start(http: httpx.Client, base: str, count: int) -> tuple[int, Events]:
    """A new chat's question posted as SSE to `base`, its stream cut after `count` events."""
    chat = http.post(f"{base}/api/v1/chats", json={}).json()["id"]
    url = f"{base}/api/v1/chats/{chat}/messages"
    with http.stream("POST", url, json={"content": "Talk"}, headers=SSE) as response:
        assert response.status_code == 200
        return chat, _read(response.iter_lines(), count)


def _stored(http: httpx.Client, base: str, chat: int) -> dict:
    return http.get(f"{base}/api/v1/chats/{chat}").json()["messages"]["items"][-1]


def test_a_cut_stream_resumes_on_another_instance_with_every_event_once(two_instances, llm):
    http, a, b = two_instances
    llm.reply, llm.delay_s = " ".join(f"word{i}" for i in range(60)), 0.04
    chat, first = _start(http, a, 3)
    message = _stored(http, b, chat)
    assert message["status"] == "streaming"  # resumed mid-answer: the rest comes live to B
    resumed = http.get(
        f"{b}/api/v1/chats/{chat}/messages/{message['id']}/events",
        headers={**SSE, "Last-Event-ID": str(first[-1][0])},
    )
    assert resumed.status_code == 200 and resumed.headers["content-type"].startswith(
        "text/event-stream"
    )
    events = first + parse_sse_ids(resumed.content)
    assert [n for n, _, _ in events] == list(range(1, len(events) + 1))  # each once, in order
    assert events[0][1] == "retrieval" and events[-1][1] == "done"
    assert events[-1][2]["message_id"] == message["id"]
    stored = _stored(http, a, chat)
    assert stored["status"] == "complete" and stored["content"] == _text(events) == llm.reply
    # B was woken by A's NOTIFYs: it never waited long enough to send a heartbeat.
    assert b": keep-alive" not in resumed.content


def test_an_answer_completes_without_a_listener_and_then_replays_and_ends(two_instances, llm):
    http, a, b = two_instances
    llm.reply, llm.delay_s = " ".join(f"word{i}" for i in range(40)), 0.02
    chat, first = _start(http, a, 1)  # the client leaves after the retrieval event
    stored = wait_for(lambda: (m := _stored(http, a, chat))["status"] != "streaming" and m)
    assert (stored["status"], stored["content"]) == ("complete", llm.reply)
    url = f"{b}/api/v1/chats/{chat}/messages/{stored['id']}/events"
    replayed = parse_sse_ids(http.get(url, headers=SSE).content)
    assert replayed[0] == first[0] and replayed[-1][1] == "done"
    assert [n for n, _, _ in replayed] == list(range(1, len(replayed) + 1))
    assert _text(replayed) == stored["content"]
    # Past the end of a finished answer: nothing, and the stream ends.
    last = replayed[-1][0]
    assert http.get(url, params={"after": last}).content == b""
    assert http.get(url, params={"after": 10**6}).content == b""
    just_the_end = http.get(url, headers={"Last-Event-ID": str(last - 1)}).content
    assert parse_sse_ids(just_the_end) == replayed[-1:]


def test_after_beyond_the_end_waits_for_the_events_to_come(two_instances, llm):
    http, a, b = two_instances
    llm.reply, llm.delay_s = " ".join(f"word{i}" for i in range(60)), 0.04
    chat, first = _start(http, a, 1)
    message = _stored(http, b, chat)
    after = first[-1][0] + 3  # not stored yet (each event holds about two words)
    url = f"{b}/api/v1/chats/{chat}/messages/{message['id']}/events"
    events = parse_sse_ids(http.get(url, params={"after": after}).content)
    assert [n for n, _, _ in events] == list(range(after + 1, after + 1 + len(events)))
    assert events[-1][1] == "done" and llm.reply.endswith(_text(events))


def test_resuming_someone_elses_or_an_unknown_stream_is_404(ollama_app, admin, new_user, llm):
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    answer = ask(client, admin, chat, "Hello?").json
    question = messages(client, admin, chat)[0]["id"]
    url = f"/api/v1/chats/{chat}/messages/{answer['id']}/events"
    mine = client.get(url, headers=admin)
    assert mine.status_code == 200 and parse_sse_ids(mine.data)[-1][1] == "done"
    other = new_user()
    assert client.get(url, headers=other).status_code == 404
    other_chat = new_chat(client, other)  # their own chat, with the admin's message id
    theirs = f"/api/v1/chats/{other_chat}/messages/{answer['id']}/events"
    assert client.get(theirs, headers=other).status_code == 404
    for missing in (answer["id"] + 100, question):  # unknown, or not an answer
        path = f"/api/v1/chats/{chat}/messages/{missing}/events"
        assert client.get(path, headers=admin).status_code == 404
    bad = client.get(url, headers={**admin, "Last-Event-ID": "seven"})
    assert bad.status_code == 422 and bad.json["errors"][0]["loc"] == ["header", "last_event_id"]
    assert client.get(url + "?after=-1", headers=admin).status_code == 422


def _end_stored(database_url: str, message_id: int) -> bool:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM chat_message_events WHERE message_id = %s AND kind = 'done'",
            (message_id,),
        ).fetchone()
    return bool(row and row[0])


def test_pruning_removes_the_events_of_old_answers_only(
    ollama_app, make_app, admin, llm, database_url
):
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    old, recent = (ask(client, admin, chat, q).json["id"] for q in ("First?", "Second?"))
    # A JSON answer returns once its end is produced; its events are stored just after.
    wait_for(lambda: _end_stored(database_url, old) and _end_stored(database_url, recent))
    with psycopg.connect(database_url, autocommit=True) as conn:  # the first ended 25 hours ago
        conn.execute("SET session_replication_role = replica")  # no updated_at trigger
        conn.execute(
            "UPDATE chat_messages SET updated_at = now() - interval '25 hours' WHERE id = %s",
            (old,),
        )
        conn.execute(
            "UPDATE chat_message_events SET created_at = now() - interval '25 hours'"
            " WHERE message_id = %s",
            (old,),
        )
        for expired in ("25 hours", "23 hours"):  # a tool's question, and a later one
            conn.execute(
                "INSERT INTO chat_questions (chat_id, message_id, server, tool, question,"
                " state, expires_at) VALUES (%s, %s, 'tickets', 'ask', %s, 'expired',"
                " now() - %s::interval)",
                (chat, old, expired, expired),
            )
    fresh = make_app(llm="ollama", ollama_url=llm.url, chat_model="fake-chat")
    latest = ask(fresh.test_client(), admin, chat, "Third?").json["id"]  # its end prunes

    def counts() -> dict[int, int]:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT message_id, count(*) FROM chat_message_events GROUP BY message_id"
            ).fetchall()
        return dict(rows)

    wait_for(lambda: _end_stored(database_url, latest))
    left = wait_for(lambda: (c := counts()).get(old) is None and c)
    assert left.keys() == {recent, latest}
    with psycopg.connect(database_url) as conn:
        kept = conn.execute("SELECT question FROM chat_questions").fetchall()
    assert kept == [("23 hours",)]
    assert messages(client, admin, chat)[1]["content"] == llm.reply  # the text stays


def test_answers_still_running_when_the_process_stops_end_with_their_text(
    make_app, admin, llm, database_url
):
    llm.reply, llm.delay_s = " ".join(f"word{i}" for i in range(200)), 0.02
    app = make_app(llm="ollama", ollama_url=llm.url, chat_model="fake-chat")
    client = app.test_client()
    chat = new_chat(client, admin)
    response = ask(client, admin, chat, "Talk", extra=SSE, buffered=False)
    stream_until(response, "event: delta")
    response.close()  # nobody listens any more; the answer goes on until the process ends
    Runtime.of(app).answers.close()  # as at the process's end, after gunicorn's graceful wait
    stored = messages(client, admin, chat)[-1]
    assert (stored["status"], stored["finish_reason"]) == ("incomplete", "error")
    assert stored["error"] == "the server stopped"
    assert stored["content"].startswith("word0") and len(stored["content"]) < len(llm.reply)
    with psycopg.connect(database_url) as conn:
        last = conn.execute(
            "SELECT kind, data FROM chat_message_events WHERE message_id = %s"
            " ORDER BY seq DESC LIMIT 1",
            (stored["id"],),
        ).fetchone()
    assert last is not None and last[0] == "done" and last[1]["status"] == "incomplete"


def test_a_user_with_as_many_answers_under_way_as_they_may_gets_429(make_app, llm, admin):
    app = make_app(
        llm="ollama", ollama_url=llm.url, chat_model="fake-chat", chat_answers_per_user=1
    )
    llm.reply, llm.delay_s = " ".join(f"word{i}" for i in range(40)), 0.05
    with live_server(app) as base, httpx.Client(headers=admin, timeout=30) as http:
        chat, _ = _start(http, base, 2)  # its client leaves; the answer goes on
        other = http.post(f"{base}/api/v1/chats", json={}).json()["id"]
        refused = http.post(f"{base}/api/v1/chats/{other}/messages", json={"content": "Hi"})
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "5"
        assert "answers under way" in refused.json()["detail"]
        assert http.get(f"{base}/api/v1/chats/{other}").json()["messages"]["items"] == []
        llm.delay_s = 0
        made = http.post(f"{base}/api/v1/users", json={"name": "bob", "role": "user"})
        bob = bearer(made.json()["token"])  # another user is not held back
        theirs = http.post(f"{base}/api/v1/chats", json={}, headers=bob).json()["id"]
        url = f"{base}/api/v1/chats/{theirs}/messages"
        assert http.post(url, json={"content": "Hi"}, headers=bob).status_code == 201
        wait_for(lambda: _stored(http, base, chat)["status"] == "complete", "the first answer")
        again = http.post(f"{base}/api/v1/chats/{other}/messages", json={"content": "Hi"})
        assert again.status_code == 201, again.json()


def test_a_process_generating_as_many_answers_as_it_may_refuses_more_with_503(make_app, llm, admin):
    # Answers go on after their clients leave, so the requests' threads no longer bound how
    # many a process generates: POSTRAG_CHAT_ANSWERS_PER_PROCESS does.
    app = make_app(
        llm="ollama", ollama_url=llm.url, chat_model="fake-chat", chat_answers_per_process=1
    )
    llm.reply, llm.delay_s = " ".join(f"word{i}" for i in range(40)), 0.05
    with live_server(app) as base, httpx.Client(headers=admin, timeout=30) as http:
        chat, _ = _start(http, base, 2)  # its client leaves; the answer goes on
        other = http.post(f"{base}/api/v1/chats", json={}).json()["id"]
        refused = http.post(f"{base}/api/v1/chats/{other}/messages", json={"content": "Hi"})
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        assert "answers already" in refused.json()["detail"]
        assert http.get(f"{base}/api/v1/chats/{other}").json()["messages"]["items"] == []
        wait_for(lambda: _stored(http, base, chat)["status"] == "complete", "the first answer")
        llm.delay_s = 0
        again = http.post(f"{base}/api/v1/chats/{other}/messages", json={"content": "Hi"})
        assert again.status_code == 201, again.json()


def test_a_user_follows_at_most_their_streams_at_once_per_process(make_app, llm, admin):
    """Each open stream holds a request thread: one user may not hold them all."""
    app = make_app(
        llm="ollama", ollama_url=llm.url, chat_model="fake-chat", chat_streams_per_user=2
    )
    llm.reply, llm.delay_s = " ".join(f"word{i}" for i in range(60)), 0.04
    with live_server(app) as base, httpx.Client(headers=admin, timeout=30) as http:
        chat, _ = _start(http, base, 1)
        message = _stored(http, base, chat)
        url = f"{base}/api/v1/chats/{chat}/messages/{message['id']}/events"
        with (
            http.stream("GET", url, headers=SSE) as one,
            http.stream("GET", url, headers=SSE) as two,
        ):
            assert one.status_code == two.status_code == 200
            third = http.get(url, headers=SSE)
            assert third.status_code == 429 and third.headers["Retry-After"] == "5"
            assert third.headers["content-type"] == "application/problem+json"
            for stream in (one, two):  # each to its end: the answer's done
                events = _read(stream.iter_lines(), 10**6)
                assert events[-1][1] == "done"
        # Streams that ended give their room back: the answer replays to anyone of theirs.
        replayed = wait_for(lambda: (r := http.get(url, headers=SSE)).status_code == 200 and r)
        assert parse_sse_ids(replayed.content)[-1][1] == "done"
