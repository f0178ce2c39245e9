"""The app's connection pool (and its twin on a read replica): autocommit, dict rows, pgvector
types, every connection acting for nobody (role postrag_app, no user: app/db/scope.py) until it
acts for someone, and checkouts that fail fast while the database is down."""

from __future__ import annotations

from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from app.db.scope import act_as_anonymous
from app.settings import Settings

# What a database that is down (or restarting) raises: the API answers 503 for these.
DATABASE_DOWN = (psycopg.OperationalError, PoolTimeout)
# How long a checkout waits once the database is known to be down, and first in any case.
FAST_CHECKOUT_S = 1.0
# A connection attempt that keeps failing gives up after this long, and the next checkout
# starts a new one at once: the pool notices a database that is back within seconds, not
# after minutes of exponential backoff.
RECONNECT_TIMEOUT_S = 10.0


class AppPool(ConnectionPool[Any]):
    """psycopg's pool, failing fast while the database is down.

    A pooled connection that fails its check, or comes back broken, says the database went
    away: from then until a checkout succeeds again, checkouts wait FAST_CHECKOUT_S instead of
    POSTRAG_POOL_TIMEOUT_S, so requests get their 503 at once instead of queueing behind a dead
    server. A pool that is merely busy still gives waiters their whole timeout.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        self.database_down = False
        # One round trip per checkout buys transparent recovery after a database restart.
        super().__init__(*args, check=self._check, **kwargs)

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            self.database_down = True
            raise

    def getconn(self, timeout: float | None = None) -> Any:
        wait = self.timeout if timeout is None else timeout
        try:
            conn = super().getconn(min(wait, FAST_CHECKOUT_S))
        except PoolTimeout:
            if self.database_down or wait <= FAST_CHECKOUT_S:
                raise
            conn = super().getconn(wait - FAST_CHECKOUT_S)  # busy, not down: wait the rest
        self.database_down = False
        return conn

    def putconn(self, conn: Any) -> None:
        if conn.broken:  # the server went away under it
            self.database_down = True
        super().putconn(conn)


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)
    # Timestamps leave the API in UTC whatever the server's or database's TimeZone is.
    conn.execute("SET TimeZone = 'UTC'")
    act_as_anonymous(conn)  # closed by default: no user-owned row until it acts for someone


def _reset(conn: psycopg.Connection) -> None:
    act_as_anonymous(conn)  # whoever it acted for, it goes back to the pool acting for nobody


def _new_pool(url: str, settings: Settings, name: str) -> AppPool:
    return AppPool(
        url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout_s,
        reconnect_timeout=RECONNECT_TIMEOUT_S,
        kwargs={"autocommit": True, "row_factory": dict_row},
        configure=_configure,
        reset=_reset,
        name=name,
        open=False,
    )


def open_pool(url: str, settings: Settings) -> AppPool:
    pool = _new_pool(url, settings, "postrag")
    pool.open(wait=True, timeout=settings.pool_timeout_s)
    return pool


def open_replica_pool(url: str, settings: Settings) -> AppPool:
    """The same pool on a hot standby (SET ROLE and set_config work there), opened without
    waiting: the app starts, reading from the primary, while the replica is down."""
    pool = _new_pool(url, settings, "postrag-replica")
    pool.open(wait=False)
    return pool
