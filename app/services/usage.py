"""Limits and accounting: requests per token and minute, LLM tokens per user and day, usage log.

Counters are windows in PostgreSQL (one upsert per request), so every app process shares them.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import pq
from psycopg_pool import ConnectionPool

from app.db import scope
from app.errors import TooManyRequests
from app.repositories import Conn, Row
from app.repositories import usage as usage_repo
from app.services.tokens import Principal

log = logging.getLogger(__name__)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def _window(size: timedelta, now: datetime | None = None) -> tuple[datetime, float]:
    """The current window's start and the seconds until the next one."""
    now = now or datetime.now(UTC)
    seconds = size.total_seconds()
    start = datetime.fromtimestamp(math.floor(now.timestamp() / seconds) * seconds, UTC)
    return start, (start + size - now).total_seconds()


def count_request(conn: Conn, who: Principal, limit: int) -> dict[str, str]:
    """Count this request against its token's minute; the RateLimit-* headers, or a 429."""
    if limit <= 0:
        return {}
    start, left = _window(MINUTE)
    used = usage_repo.count_request(conn, who.token_id, start)
    reset = str(max(1, math.ceil(left)))
    headers = {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, limit - used)),
        "RateLimit-Reset": reset,
        "RateLimit-Policy": f"{limit};w=60",
    }
    if used > limit:
        raise TooManyRequests(
            f"this token made more than {limit} requests this minute; retry in {reset} s",
            headers={**headers, "Retry-After": reset},
        )
    return headers


def check_llm_budget(conn: Conn, user_id: int, budget: int) -> None:
    """429 when the user has spent today's LLM tokens (POSTRAG_LLM_TOKENS_PER_DAY)."""
    if budget <= 0:
        return
    start, left = _window(DAY)
    used = usage_repo.llm_tokens(conn, user_id, start)
    if used >= budget:
        retry = str(max(1, math.ceil(left)))
        raise TooManyRequests(
            f"you used {used} of your {budget} LLM tokens today (UTC); retry in {retry} s",
            headers={"Retry-After": retry},
        )


def add_llm_tokens(pool: ConnectionPool[Any], user_id: int, tokens: int) -> None:
    if tokens <= 0:
        return
    with scope.user_connection(pool, user_id) as conn:
        usage_repo.add_llm_tokens(conn, user_id, _window(DAY)[0], tokens)


def record(pool: ConnectionPool[Any], values: dict[str, Any], conn: Any = None) -> None:
    """Log one request, on `conn` (acting as the user) when it is idle, else on a pooled one;
    a failure is logged, never raised (the answer has been sent)."""
    try:
        if conn is not None and conn.info.transaction_status == pq.TransactionStatus.IDLE:
            usage_repo.record(conn, values)
            return
        with scope.user_connection(pool, values["user_id"]) as pooled:
            usage_repo.record(pooled, values)
    except Exception:
        log.exception("could not record the usage of %s %s", values["method"], values["route"])


def summary(conn: Conn, user_id: int | None, days: int) -> list[Row]:
    return usage_repo.summary(conn, user_id, datetime.now(UTC) - timedelta(days=days))


def llm_tokens_today(conn: Conn, user_id: int) -> int:
    return usage_repo.llm_tokens(conn, user_id, _window(DAY)[0])
