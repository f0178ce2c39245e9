"""Liveness and readiness, and answers while the database is down (503s, never 500s)."""

import json
import time
from dataclasses import replace

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from app import create_app
from app.db import migrations
from app.services import health
from tests.helpers import MIGRATIONS_DIR, close_app, parse_sse, stream_until


def test_healthz_answers_without_auth(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_answers_without_a_token_but_shows_details_only_with_one(client, admin):
    anonymous = client.get("/readyz")
    assert anonymous.status_code == 200
    assert anonymous.json == {"status": "ready"}
    assert client.get("/readyz", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert set(client.get("/readyz", headers=admin).json) > {"status", "database"}


def test_readyz_reports_database_migrations_and_pgvector(client, admin):
    response = client.get("/readyz", headers=admin)
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ready"
    assert body["database"] == "ok"
    assert body["migrations"] == "at head"
    major, minor = (int(x) for x in body["pgvector"].split(".")[:2])
    assert (major, minor) >= (0, 7)


def test_readyz_is_503_when_a_migration_is_pending(client, admin, database_url):
    migrations.rollback(database_url, MIGRATIONS_DIR, "V1_7__chat_messages")
    response = client.get("/readyz", headers=admin)
    assert response.status_code == 503
    assert response.json["status"] == "not ready"
    assert response.json["migrations"] == "pending"
    assert client.get("/readyz").json == {"status": "not ready"}


def test_readiness_of_a_database_never_migrated_says_pending(make_database):
    with psycopg.connect(make_database(), autocommit=True, row_factory=dict_row) as conn:
        ready, details = health.readiness(conn, MIGRATIONS_DIR)
    assert not ready
    assert details == {"database": "ok", "migrations": "pending", "pgvector": None}


def _drop_database(database_url: str, server_url: str) -> None:
    """Make the app's database unreachable: its connections end, new ones are refused."""
    dbname = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))


def _answer_under_way(app, admin, llm):  # type: ignore[no-untyped-def]
    """A chat whose long streamed answer has sent its first words: (client, chat id, response,
    what it sent so far, the rest of it)."""
    llm.reply, llm.delay_s = " ".join(f"word{i}" for i in range(300)), 0.02
    client = app.test_client()
    chat = client.post("/api/v1/chats", json={}, headers=admin).json["id"]
    response = client.post(
        f"/api/v1/chats/{chat}/messages",
        json={"content": "Talk"},
        headers={**admin, "Accept": "text/event-stream"},
        buffered=False,
    )
    seen, rest = stream_until(response, "event: delta")
    return client, chat, response, seen, rest


def test_a_database_lost_mid_answer_ends_the_stream_with_a_503_event(
    ollama_app, admin, llm, settings, server_url
):
    *_, response, seen, rest = _answer_under_way(ollama_app, admin, llm)
    _drop_database(settings.database_url, server_url)
    events = parse_sse(seen + b"".join(rest).decode())
    response.close()
    kind, problem = events[-1]
    assert kind == "error", events[-1]
    assert problem["status"] == 503 and problem["title"] == "Service unavailable"
    assert problem["detail"] == "the database is unavailable; retry later"


def test_an_answer_cut_by_a_database_outage_is_closed_once_the_database_is_back(
    ollama_app, admin, llm, settings, server_url
):
    """The end of the answer cannot be stored while the database is down: it is stored once it
    is back, so the chat takes the next message without a stop request."""
    client, chat, response, seen, rest = _answer_under_way(ollama_app, admin, llm)
    dbname = psycopg.conninfo.conninfo_to_dict(settings.database_url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as admin_conn:
        admin_conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(dbname))
        )
        admin_conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [dbname]
        )
        events = parse_sse(seen + b"".join(rest).decode())
        response.close()
        assert events[-1][0] == "error" and events[-1][1]["status"] == 503
        admin_conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(dbname))
        )
    with psycopg.connect(settings.database_url) as conn:
        for _ in range(100):  # the background retry runs every 2 s
            status = conn.execute(
                "SELECT status FROM chat_messages WHERE chat_id = %s AND role = 'assistant'",
                [chat],
            ).fetchone()
            conn.rollback()
            if status != ("streaming",):
                break
            time.sleep(0.2)
    assert status == ("incomplete",)
    llm.delay_s = 0
    again = client.post(f"/api/v1/chats/{chat}/messages", json={"content": "Hi"}, headers=admin)
    assert again.status_code == 201, again.json


def test_a_database_lost_mid_completion_ends_the_v1_stream_with_a_503_error(
    ollama_app, admin, llm, settings, server_url
):
    llm.reply, llm.delay_s = " ".join(f"word{i}" for i in range(50)), 0.02
    talk = {"model": "fake-chat", "messages": [{"role": "user", "content": "Talk"}], "stream": True}
    response = ollama_app.test_client().post(
        "/v1/chat/completions",
        json=talk,
        headers=admin,
        buffered=False,
    )
    seen, rest = stream_until(response, '"content": "word0')
    _drop_database(settings.database_url, server_url)
    chunks = [
        json.loads(line.removeprefix("data: "))
        for line in (seen + b"".join(rest).decode()).splitlines()
        if line.startswith("data: {")
    ]
    response.close()
    assert chunks[-1]["error"]["code"] == 503, chunks[-1]
    assert chunks[-1]["error"]["message"] == "the database is unavailable; retry later"


def test_an_unreachable_database_is_503_not_500(settings, server_url, admin_token):
    app = create_app(replace(settings, pool_timeout_s=2))
    try:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {admin_token}"}
        assert client.get("/readyz", headers=headers).status_code == 200
        _drop_database(settings.database_url, server_url)
        for path, auth in (("/readyz", headers), ("/readyz", {}), ("/api/v1/me", headers)):
            response = client.get(path, headers=auth)
            assert response.status_code == 503, path
            assert response.mimetype == "application/problem+json"
            assert response.json["detail"] == "the database is unavailable; retry later"
            assert response.headers["Retry-After"] == "5"
        assert client.get("/healthz").status_code == 200  # liveness: the process answers
    finally:
        close_app(app)
