"""Limits and accounting: per-token request windows, daily LLM token budgets, the usage log."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from tests.helpers import SSE, bearer, live_server, parse_sse


def away_from_the_minute_edge() -> None:
    """Wait out the last seconds of a minute, so a test's requests share one window."""
    second = datetime.now(UTC).second
    if second >= 50:
        time.sleep(61 - second)


def rows_for(client, headers, route):
    items = client.get("/api/v1/me/usage", headers=headers).json["items"]
    return [r for r in items if r["route"] == route]


def test_requests_over_the_user_limit_are_429_whichever_token(
    make_app, admin, new_user, database_url
):
    api = make_app(rate_limit_per_minute=3).test_client()
    bob = new_user()
    away_from_the_minute_edge()
    second = api.post("/api/v1/tokens", json={"name": "second"}, headers=admin)
    assert second.status_code == 201
    remaining = [
        api.get("/api/v1/me", headers=admin).headers["RateLimit-Remaining"] for _ in range(2)
    ]
    assert remaining == ["1", "0"]  # the POST above was the first of three
    limited = api.get("/api/v1/me", headers=admin)
    assert limited.status_code == 429 and limited.mimetype == "application/problem+json"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Limit"] == "3"
    assert limited.headers["RateLimit-Remaining"] == "0"
    minted = api.get("/api/v1/me", headers=bearer(second.json["token"]))
    assert minted.status_code == 429  # a token made by the limited one shares its user's window
    assert api.get("/api/v1/me", headers=bob).status_code == 200  # each user has their own
    with psycopg.connect(database_url) as conn:
        windows = conn.execute(
            "SELECT count(*), max(requests) FROM request_counters r"
            " JOIN users u ON u.id = r.user_id WHERE u.name = 'admin'"
        ).fetchone()
    assert tuple(windows) == (1, 5)  # one counter row, not a log of requests


def test_usage_is_logged_per_request_and_shown_to_its_owner(client, admin, new_user):
    other = new_user()
    client.get("/api/v1/me", headers=admin)
    client.get("/api/v1/me", headers=admin)
    client.get("/api/v1/collections/999999", headers=admin)
    client.get("/api/v1/me", headers=other)
    mine = rows_for(client, admin, "/api/v1/me")
    assert mine[0]["requests"] >= 2 and mine[0]["status"] == 200 and mine[0]["method"] == "GET"
    missing = rows_for(client, admin, "/api/v1/collections/<int:collection_id>")
    assert missing[0]["status"] == 404
    theirs = client.get("/api/v1/me/usage", headers=other).json["items"]
    assert {r["user_name"] for r in theirs} == {theirs[0]["user_name"]} != {"admin"}
    assert client.get("/api/v1/usage", headers=other).status_code == 403
    everyone = client.get("/api/v1/usage", headers=admin).json["items"]
    assert {"admin", theirs[0]["user_name"]} <= {r["user_name"] for r in everyone}
    only = client.get(f"/api/v1/usage?user_id={theirs[0]['user_id']}", headers=admin).json
    assert {r["user_id"] for r in only["items"]} == {theirs[0]["user_id"]}


def test_llm_tokens_are_logged_for_json_streams_and_v1(ollama_app, admin, llm):
    api = ollama_app.test_client()
    chat = api.post("/api/v1/chats", json={}, headers=admin).json["id"]
    route = "/api/v1/chats/<int:chat_id>/messages"
    assert (
        api.post(
            f"/api/v1/chats/{chat}/messages", json={"content": "Hi"}, headers=admin
        ).status_code
        == 201
    )
    streamed = api.post(
        f"/api/v1/chats/{chat}/messages", json={"content": "Again"}, headers={**admin, **SSE}
    )
    events = parse_sse(streamed.data)
    streamed.close()  # as a server does when the stream ends: the row is written then
    assert events[-1][0] == "done"
    logged = rows_for(api, admin, route)
    assert sum(r["requests"] for r in logged) == 2
    # two answers, and the model's rewrite of the second (a follow-up) into a standalone query
    assert sum(r["prompt_tokens"] for r in logged) == 3 * llm.usage[0]
    assert sum(r["completion_tokens"] for r in logged) == 3 * llm.usage[1]
    api.post(
        "/v1/chat/completions",
        headers=admin,
        json={"model": "fake-chat", "messages": [{"role": "user", "content": "x"}]},
    )
    v1 = rows_for(api, admin, "/v1/chat/completions")
    assert (v1[0]["prompt_tokens"], v1[0]["completion_tokens"]) == llm.usage
    usage = api.get("/api/v1/me/usage", headers=admin).json
    assert usage["llm_tokens_today"] == 4 * sum(llm.usage)


def test_the_daily_llm_token_budget_is_enforced(make_app, admin, llm):
    api = make_app(
        llm="ollama", ollama_url=llm.url, chat_model="fake-chat", llm_tokens_per_day=30
    ).test_client()
    chat = api.post("/api/v1/chats", json={}, headers=admin).json["id"]
    for _ in range(2):  # 18 tokens, then 36 (a rewrite, the answer): the second starts under
        assert (
            api.post(
                f"/api/v1/chats/{chat}/messages", json={"content": "Hi"}, headers=admin
            ).status_code
            == 201
        )
    over = api.post(f"/api/v1/chats/{chat}/messages", json={"content": "Hi"}, headers=admin)
    assert over.status_code == 429 and "30 LLM tokens" in over.json["detail"]
    assert int(over.headers["Retry-After"]) >= 1
    v1 = api.post(
        "/v1/chat/completions",
        headers=admin,
        json={"model": "fake-chat", "messages": [{"role": "user", "content": "x"}]},
    )
    assert v1.status_code == 429
    extractive = api.post(
        "/v1/chat/completions",
        headers=admin,
        json={"model": "extractive", "messages": [{"role": "user", "content": "x"}]},
    )
    assert extractive.status_code == 200  # no language model, no budget
    usage = api.get("/api/v1/me/usage", headers=admin).json
    assert (usage["llm_tokens_today"], usage["llm_tokens_per_day"]) == (54, 30)
    assert len(api.get(f"/api/v1/chats/{chat}", headers=admin).json["messages"]["items"]) == 4


@pytest.mark.parametrize("days", [0, 367])
def test_usage_days_are_bounded(client, admin, days):
    assert client.get(f"/api/v1/me/usage?days={days}", headers=admin).status_code == 422


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/api/v1/chats"])
def test_parallel_answers_pass_the_daily_budget_by_one_answer_at_most(
    make_app, admin, llm, database_url, route
):
    budget, answer = 100, sum(llm.usage)  # each answer takes 18 tokens
    llm.reply, llm.delay_s = "one two three four", 0.05
    app = make_app(
        llm="ollama", ollama_url=llm.url, chat_model="fake-chat", llm_tokens_per_day=budget
    )
    with live_server(app) as base, httpx.Client(base_url=base, headers=admin, timeout=30) as http:
        if route == "/v1/chat/completions":
            body = {"model": "fake-chat", "messages": [{"role": "user", "content": "Count"}]}
            requests = [(route, body)] * 20
        else:
            chats = [http.post(route, json={}).json()["id"] for _ in range(20)]
            requests = [(f"{route}/{chat}/messages", {"content": "Count"}) for chat in chats]
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(lambda r: http.post(r[0], json=r[1]).status_code, requests))
    answered = sum(status in (200, 201) for status in statuses)
    assert answered + statuses.count(429) == 20 and answered >= 1
    assert answered * answer <= budget + answer
    with psycopg.connect(database_url) as conn:
        counted = conn.execute("SELECT tokens, reserved FROM llm_token_counters").fetchall()
    assert counted == [(answered * answer, 0)]  # every hold was settled or released


def test_failed_answers_give_their_held_tokens_back(make_app, admin, llm, database_url):
    api = make_app(
        llm="ollama", ollama_url=llm.url, chat_model="fake-chat", llm_tokens_per_day=100
    ).test_client()
    llm.fail_status = 500
    chat = api.post("/api/v1/chats", json={}, headers=admin).json["id"]
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "x"}]}
    assert (
        api.post(
            f"/api/v1/chats/{chat}/messages", json={"content": "Hi"}, headers=admin
        ).status_code
        == 502
    )
    assert api.post("/v1/chat/completions", json=body, headers=admin).status_code == 502
    streamed = api.post("/v1/chat/completions", json={**body, "stream": True}, headers=admin)
    assert b'"error"' in streamed.data
    with psycopg.connect(database_url) as conn:
        counted = conn.execute("SELECT tokens, reserved FROM llm_token_counters").fetchall()
    assert counted == [(0, 0)]
    llm.fail_status = None
    assert api.post("/v1/chat/completions", json=body, headers=admin).status_code == 200


def test_a_v1_stream_the_client_leaves_still_counts_its_tokens(make_app, admin, llm, database_url):
    """Leaving before the last chunk must not make the words read so far free."""
    llm.reply, llm.delay_s = " ".join(f"word{i}" for i in range(300)), 0.02
    app = make_app(
        llm="ollama", ollama_url=llm.url, chat_model="fake-chat", llm_tokens_per_day=100_000
    )
    body = {"model": "fake-chat", "stream": True, "messages": [{"role": "user", "content": "Go"}]}
    with live_server(app) as base, httpx.Client(base_url=base, headers=admin) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            read = 0
            for line in response.iter_lines():
                read += '"content": "' in line and "word" in line
                if read == 5:
                    break
        deadline = time.monotonic() + 15
        while True:
            with psycopg.connect(database_url) as conn:
                counted = conn.execute("SELECT tokens, reserved FROM llm_token_counters").fetchone()
            if counted[1] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert counted[1] == 0  # the hold was given back
    assert counted[0] >= 5  # the words generated were counted, not forgotten
    assert llm.aborted.is_set()  # the answer was cut short, not read to its end


def test_a_hold_left_by_a_dead_process_lapses(make_app, admin, llm, database_url):
    """A process that died mid-answer never releases its hold: it stops counting once lapsed."""
    api = make_app(
        llm="ollama", ollama_url=llm.url, chat_model="fake-chat", llm_tokens_per_day=100
    ).test_client()
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "x"}]}
    assert api.post("/v1/chat/completions", json=body, headers=admin).status_code == 200
    with psycopg.connect(database_url, autocommit=True) as conn:  # as a crashed answer leaves it
        conn.execute("UPDATE llm_token_counters SET reserved = 5000")
        assert api.post("/v1/chat/completions", json=body, headers=admin).status_code == 429
        conn.execute("UPDATE llm_token_counters SET reserved_until = now() - interval '1 second'")
    assert api.post("/v1/chat/completions", json=body, headers=admin).status_code == 200
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT reserved FROM llm_token_counters").fetchone() == (0,)
