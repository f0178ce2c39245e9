"""Limits and accounting: requests per user and minute, LLM tokens per user and day, usage log.

Counters are windows in PostgreSQL (one upsert per request), so every app process shares them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
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
HELD_RETRY_S = 5  # when the budget is held by answers still running: they end soon
# The longest a hold counts: a process that died mid-answer never gives its hold back.
HOLD_LAPSE_S = 900


def _window(size: timedelta, now: datetime | None = None) -> tuple[datetime, float]:
    """The current window's start and the seconds until the next one."""
    now = now or datetime.now(UTC)
    seconds = size.total_seconds()
    start = datetime.fromtimestamp(math.floor(now.timestamp() / seconds) * seconds, UTC)
    return start, (start + size - now).total_seconds()


def count_request(conn: Conn, who: Principal, limit: int) -> dict[str, str]:
    """Count this request against its user's minute (whichever token it came with: any token can
    make more); the RateLimit-* headers, or a 429."""
    if limit <= 0:
        return {}
    start, left = _window(MINUTE)
    used = usage_repo.count_request(conn, who.user_id, start)
    reset = str(max(1, math.ceil(left)))
    headers = {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, limit - used)),
        "RateLimit-Reset": reset,
        "RateLimit-Policy": f"{limit};w=60",
    }
    if used > limit:
        raise TooManyRequests(
            f"you made more than {limit} requests this minute; retry in {reset} s",
            headers={**headers, "Retry-After": reset},
        )
    return headers


@dataclass
class LLMTokenHold:
    """Tokens of a user's daily budget held for one answer until `settle_llm_tokens`."""

    user_id: int
    window_start: datetime
    tokens: int  # 0 without a budget: then only the use is counted
    settled: bool = False


def hold_llm_tokens(conn: Conn, user_id: int, budget: int, tokens: int) -> LLMTokenHold:
    """Hold the most an answer may take (its prompt and longest reply) before it is generated,
    while some of today's budget (POSTRAG_LLM_TOKENS_PER_DAY) is neither used nor held; else 429.

    So answers in parallel pass the budget by at most one answer's most, as a lone one may.
    """
    start, left = _window(DAY)
    if budget <= 0:
        return LLMTokenHold(user_id, start, 0)
    if usage_repo.hold_llm_tokens(conn, user_id, start, tokens, budget, HOLD_LAPSE_S):
        return LLMTokenHold(user_id, start, tokens)
    used, held = usage_repo.llm_tokens(conn, user_id, start)
    if used >= budget:
        retry = str(max(1, math.ceil(left)))
        detail = f"you used {used} of your {budget} LLM tokens today (UTC); retry in {retry} s"
    else:
        retry = str(HELD_RETRY_S)
        detail = (
            f"you used {used} of your {budget} LLM tokens today (UTC) and your answers in"
            f" progress hold {held} more; retry when they end"
        )
    raise TooManyRequests(detail, headers={"Retry-After": retry})


def extend_llm_tokens(
    pool: ConnectionPool[Any], hold: LLMTokenHold, budget: int, most: int
) -> bool:
    """Hold up to `most` tokens for an answer that goes on (another round after tool calls):
    what it needs beyond its hold, while some of today's budget is neither used nor held, and
    the hold counts HOLD_LAPSE_S from now; False when the budget is used up.

    So an answer of many rounds passes the budget by at most one round's most, as a lone one may.
    """
    if budget <= 0 or hold.settled:
        return True
    more = max(0, most - hold.tokens)
    with scope.user_connection(pool, hold.user_id) as conn, conn.transaction():
        held = usage_repo.hold_llm_tokens(
            conn, hold.user_id, hold.window_start, more, budget, HOLD_LAPSE_S
        )
    if held:
        hold.tokens += more
    return held


def settle_llm_tokens(pool: ConnectionPool[Any], hold: LLMTokenHold, used: int) -> None:
    """Count the tokens the answer `used` and release its hold, at once and only once."""
    if hold.settled:
        return
    with scope.user_connection(pool, hold.user_id) as conn, conn.transaction():
        if hold.tokens:
            usage_repo.release_llm_tokens(conn, hold.user_id, hold.window_start, hold.tokens)
        if used > 0:
            usage_repo.add_llm_tokens(conn, hold.user_id, _window(DAY)[0], used)
    hold.settled = True


def release_llm_tokens(pool: ConnectionPool[Any], hold: LLMTokenHold | None, used: int = 0) -> None:
    """Release a hold whose answer failed or was never counted, counting the tokens it `used`
    all the same (a follow-up's rewrite); a failure is logged (the hold then lapses after
    HOLD_LAPSE_S), never raised over the error being reported."""
    if hold is None:
        return
    try:
        settle_llm_tokens(pool, hold, used)
    except Exception:
        log.exception("could not release the LLM tokens held for user %s", hold.user_id)


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
    return usage_repo.llm_tokens(conn, user_id, _window(DAY)[0])[0]
