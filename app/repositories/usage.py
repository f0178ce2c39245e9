"""SQL for request counters, LLM token counters and the usage log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.repositories import Conn, Row, returned


def count_request(conn: Conn, user_id: int, window_start: datetime) -> int:
    """Add one request to the user's window (dropping their older windows); the new count."""
    row = conn.execute(
        "WITH gone AS (DELETE FROM request_counters"
        "  WHERE user_id = %(user_id)s AND window_start < %(window)s)"
        " INSERT INTO request_counters (user_id, window_start, requests)"
        " VALUES (%(user_id)s, %(window)s, 1)"
        " ON CONFLICT ON CONSTRAINT request_counters_pkey"
        " DO UPDATE SET requests = request_counters.requests + 1 RETURNING requests",
        {"user_id": user_id, "window": window_start},
    ).fetchone()
    return int(returned(row)["requests"])


# Held tokens count while the window's last hold has not lapsed (a dead process never releases).
_HELD = "CASE WHEN c.reserved_until > now() THEN c.reserved ELSE 0 END"


def llm_tokens(conn: Conn, user_id: int, window_start: datetime) -> tuple[int, int]:
    """The user's LLM tokens counted in the window, and those held by answers in progress."""
    row = conn.execute(
        f"SELECT c.tokens, {_HELD} AS reserved FROM llm_token_counters c"
        " WHERE c.user_id = %(user_id)s AND c.window_start = %(window)s",
        {"user_id": user_id, "window": window_start},
    ).fetchone()
    return (int(row["tokens"]), int(row["reserved"])) if row else (0, 0)


def hold_llm_tokens(
    conn: Conn, user_id: int, window_start: datetime, tokens: int, budget: int, ttl_s: float
) -> bool:
    """Hold `tokens` in the user's window for at most `ttl_s` if some of `budget` is neither
    used nor held yet.

    One upsert: concurrent holds of one user queue on the window's row, each seeing the last.
    """
    row = conn.execute(
        "WITH gone AS (DELETE FROM llm_token_counters"
        "  WHERE user_id = %(user_id)s AND window_start < %(window)s)"
        " INSERT INTO llm_token_counters AS c (user_id, window_start, tokens, reserved,"
        "  reserved_until)"
        " VALUES (%(user_id)s, %(window)s, 0, %(held)s,"
        "  now() + make_interval(secs => %(ttl)s))"
        " ON CONFLICT ON CONSTRAINT llm_token_counters_pkey"
        f" DO UPDATE SET reserved = {_HELD} + EXCLUDED.reserved,"
        "  reserved_until = greatest(c.reserved_until, EXCLUDED.reserved_until)"
        f" WHERE c.tokens + {_HELD} < %(budget)s"
        " RETURNING c.reserved",
        {
            "user_id": user_id,
            "window": window_start,
            "held": tokens,
            "budget": budget,
            "ttl": ttl_s,
        },
    ).fetchone()
    return row is not None


def release_llm_tokens(conn: Conn, user_id: int, window_start: datetime, tokens: int) -> None:
    """Give back tokens held in a window (gone when a later day's first request dropped it)."""
    conn.execute(
        "UPDATE llm_token_counters SET reserved = greatest(reserved - %(held)s, 0)"
        " WHERE user_id = %(user_id)s AND window_start = %(window)s",
        {"user_id": user_id, "window": window_start, "held": tokens},
    )


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
