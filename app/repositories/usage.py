"""SQL for request counters, LLM token counters and the usage log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.repositories import Conn, Row, returned


def count_request(conn: Conn, token_id: int, window_start: datetime) -> int:
    """Add one request to the token's window (dropping its older windows); the new count."""
    row = conn.execute(
        "WITH gone AS (DELETE FROM request_counters"
        "  WHERE token_id = %(token_id)s AND window_start < %(window)s)"
        " INSERT INTO request_counters (token_id, window_start, requests)"
        " VALUES (%(token_id)s, %(window)s, 1)"
        " ON CONFLICT ON CONSTRAINT request_counters_pkey"
        " DO UPDATE SET requests = request_counters.requests + 1 RETURNING requests",
        {"token_id": token_id, "window": window_start},
    ).fetchone()
    return int(returned(row)["requests"])


def llm_tokens(conn: Conn, user_id: int, window_start: datetime) -> int:
    row = conn.execute(
        "SELECT tokens FROM llm_token_counters"
        " WHERE user_id = %(user_id)s AND window_start = %(window)s",
        {"user_id": user_id, "window": window_start},
    ).fetchone()
    return int(row["tokens"]) if row else 0


def add_llm_tokens(conn: Conn, user_id: int, window_start: datetime, tokens: int) -> None:
    conn.execute(
        "WITH gone AS (DELETE FROM llm_token_counters"
        "  WHERE user_id = %(user_id)s AND window_start < %(window)s)"
        " INSERT INTO llm_token_counters (user_id, window_start, tokens)"
        " VALUES (%(user_id)s, %(window)s, %(tokens)s)"
        " ON CONFLICT ON CONSTRAINT llm_token_counters_pkey"
        " DO UPDATE SET tokens = llm_token_counters.tokens + EXCLUDED.tokens",
        {"user_id": user_id, "window": window_start, "tokens": tokens},
    )


def record(conn: Conn, values: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO api_usage (user_id, token_id, method, route, status, latency_ms,"
        " prompt_tokens, completion_tokens) VALUES (%(user_id)s, %(token_id)s, %(method)s,"
        " %(route)s, %(status)s, %(latency_ms)s, %(prompt_tokens)s, %(completion_tokens)s)",
        values,
    )


def summary(conn: Conn, user_id: int | None, since: datetime) -> list[Row]:
    """Per user, route, method and status since `since`: requests, latency, LLM tokens."""
    return conn.execute(
        "SELECT u.user_id, users.name AS user_name, u.method, u.route, u.status,"
        " count(*) AS requests, round(avg(u.latency_ms))::int AS avg_latency_ms,"
        " max(u.latency_ms) AS max_latency_ms,"
        " coalesce(sum(u.prompt_tokens), 0)::bigint AS prompt_tokens,"
        " coalesce(sum(u.completion_tokens), 0)::bigint AS completion_tokens"
        " FROM api_usage u JOIN users ON users.id = u.user_id"
        " WHERE u.created_at >= %(since)s"
        " AND (%(user_id)s::bigint IS NULL OR u.user_id = %(user_id)s)"
        " GROUP BY u.user_id, users.name, u.method, u.route, u.status"
        " ORDER BY u.user_id, requests DESC, u.route, u.method, u.status",
        {"user_id": user_id, "since": since},
    ).fetchall()
