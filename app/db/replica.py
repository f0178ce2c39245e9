"""Reads from a streaming replica (DATABASE_REPLICA_URL) while it is up and at most
POSTRAG_REPLICA_MAX_LAG_S behind the primary; otherwise from the primary. Writes never come here.

Lag is measured against the primary, not from the replica's clock: every check samples the
primary's WAL position (pg_current_wal_lsn) with the time it was taken, and the replica holds all
the primary had at the newest sampled time whose position it has replayed
(pg_last_wal_replay_lsn). So an idle primary means no lag, and a replica whose WAL receiver has
silently stopped shows a growing one (the replica-only `now() - pg_last_xact_replay_timestamp()`
gets both wrong: it grows while nothing is written, and a receiver that stopped looks caught up).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

FRESH = "fresh"  # reads go to the replica
LAGGING = "lagging"  # more than max_lag_s behind: reads go to the primary
DOWN = "down"  # unreachable, or no free connection in time: reads go to the primary
NOT_STANDBY = "not a standby"  # not in recovery (promoted, or a primary's URL): the primary
UNKNOWN = "unknown"  # not checked yet

_PRIMARY_LSN = "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"
# NULL unless in recovery (a promoted standby keeps answering its last replayed position).
_REPLAYED_LSN = (
    "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() - '0/0'::pg_lsn END"
)
_CONFIRM_PAUSE_S = 0.05  # before calling it lagging: the WAL sampled just now may be in flight


@dataclass(frozen=True)
class ReplicaStatus:
    state: str
    lag_s: float | None = None  # at least this far behind (None: not measured)
    lag_bytes: int | None = None  # WAL the replica has yet to replay, as last sampled
    reason: str | None = None  # why it is down or not a standby


class Replica:
    """Hands out replica connections while the replica is fresh; decides at most once per
    `recheck_s` (the verdict in between is cached) and retries a down replica after
    `retry_after_s`, so a healthy replica costs no extra round trip on most requests."""

    def __init__(
        self,
        pool: ConnectionPool[Any],
        max_lag_s: float,
        *,
        recheck_s: float = 1.0,
        retry_after_s: float = 5.0,
        checkout_timeout_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.pool = pool
        self.max_lag_s = max_lag_s
        self.recheck_s = recheck_s
        self.retry_after_s = retry_after_s
        self.checkout_timeout_s = checkout_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._status = ReplicaStatus(UNKNOWN)
        self._next_check = 0.0
        self._samples: deque[tuple[float, int]] = deque()  # (time, primary WAL position)

    def status(self) -> ReplicaStatus:
        return self._status

    def getconn(self, primary: psycopg.Connection[Any]) -> psycopg.Connection[Any] | None:
        """A replica connection when reads may go there, else None (read from `primary`).

        `primary` is the caller's primary connection, used to sample its WAL position."""
        now = self._clock()
        with self._lock:
            due = now >= self._next_check
            if due:  # the others keep the last verdict while this one checks
                self._next_check = now + self.recheck_s
            elif self._status.state != FRESH:
                return None
        primary_lsn = self._sample(primary) if due else 0
        try:
            conn = self.pool.getconn(timeout=self.checkout_timeout_s)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            self._set(ReplicaStatus(DOWN, reason=type(exc).__name__), self.retry_after_s)
            return None
        if not due:
            return cast(psycopg.Connection[Any], conn)
        try:
            status = self._measure(conn, primary_lsn)
        except psycopg.Error as exc:
            self.pool.putconn(conn)
            self._set(ReplicaStatus(DOWN, reason=type(exc).__name__), self.retry_after_s)
            return None
        self._set(status, self.recheck_s if status.state != NOT_STANDBY else self.retry_after_s)
        if status.state == FRESH:
            return cast(psycopg.Connection[Any], conn)
        self.pool.putconn(conn)
        return None

    def putconn(self, conn: psycopg.Connection[Any]) -> None:
        self.pool.putconn(conn)

    def mark_down(self, exc: BaseException) -> None:
        """A replica connection failed in use: read from the primary for `retry_after_s`."""
        self._set(ReplicaStatus(DOWN, reason=type(exc).__name__), self.retry_after_s)

    def close(self) -> None:
        self.pool.close()

    def _sample(self, primary: psycopg.Connection[Any]) -> int:
        now = self._clock()  # before asking: the position is then at least as new as `now`
        row = primary.cursor(row_factory=tuple_row).execute(_PRIMARY_LSN).fetchone()
        lsn = int(row[0]) if row is not None else 0
        with self._lock:
            self._samples.append((now, lsn))
            # Older samples only ever prove a lag beyond the bound; keep a bounded history.
            keep_after = now - (self.max_lag_s + 2 * self.recheck_s + 1)
            while len(self._samples) > 1 and self._samples[0][0] < keep_after:
                self._samples.popleft()
        return lsn

    def _replayed(self, conn: psycopg.Connection[Any]) -> int | None:
        row = conn.cursor(row_factory=tuple_row).execute(_REPLAYED_LSN).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _measure(self, conn: psycopg.Connection[Any], primary_lsn: int) -> ReplicaStatus:
        replayed = self._replayed(conn)
        if replayed is None:
            return ReplicaStatus(NOT_STANDBY, reason="pg_is_in_recovery() is false")
        lag_s = self._lag_s(replayed)
        if (lag_s is None or lag_s > self.max_lag_s) and self._status.state != LAGGING:
            # The primary may have written just before it was sampled: give that WAL a moment
            # to arrive rather than report a lag that was never there.
            time.sleep(_CONFIRM_PAUSE_S)
            replayed = self._replayed(conn) or replayed
            lag_s = self._lag_s(replayed)
        state = FRESH if lag_s is not None and lag_s <= self.max_lag_s else LAGGING
        lag = None if lag_s is None else round(lag_s, 3)
        return ReplicaStatus(state, lag, max(0, primary_lsn - replayed))

    def _lag_s(self, replayed: int) -> float | None:
        """How long ago the primary was at a position the replica has replayed: its data is at
        most that old (0 when it has replayed the latest sample). None when it is behind every
        sample kept: of unknown age (after a start or a quiet spell the samples are recent, and
        a replica that stopped replaying long ago must not pass for a fresh one)."""
        now = self._clock()
        with self._lock:
            samples = list(self._samples)
        if samples and replayed >= samples[-1][1]:
            return 0.0
        caught_up = [t for t, lsn in samples if lsn <= replayed]
        return now - max(caught_up) if caught_up else None

    def _set(self, status: ReplicaStatus, recheck_in_s: float) -> None:
        with self._lock:
            before, self._status = self._status.state, status
            self._next_check = self._clock() + recheck_in_s
        if status.state == before:
            return
        if status.state == FRESH:
            log.info("reads go to the replica (%.3f s behind the primary)", status.lag_s or 0.0)
        elif status.state == LAGGING:
            behind = "an unknown time" if status.lag_s is None else f"{status.lag_s:.1f} s"
            log.warning(
                "the replica is %s behind the primary (bound %.1f s): reads go to the primary",
                behind,
                self.max_lag_s,
            )
        else:
            log.warning(
                "the replica is %s (%s): reads go to the primary, retrying in %.0f s",
                status.state,
                status.reason,
                recheck_in_s,
            )
