"""The app's one connection pool: autocommit, dict rows, pgvector types on every connection."""

from __future__ import annotations

import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from app.db.scope import act_as_nobody
from app.settings import Settings


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)
    # Timestamps leave the API in UTC whatever the server's or database's TimeZone is.
    conn.execute("SET TimeZone = 'UTC'")


def _reset(conn: psycopg.Connection) -> None:
    act_as_nobody(conn)  # a connection goes back to the pool as nobody (app/db/scope.py)


def open_pool(url: str, settings: Settings) -> ConnectionPool:
    pool: ConnectionPool = ConnectionPool(
        url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout_s,
        kwargs={"autocommit": True, "row_factory": dict_row},
        configure=_configure,
        reset=_reset,
        # One round trip per checkout buys transparent recovery after a database restart.
        check=ConnectionPool.check_connection,
        name="postrag",
        open=False,
    )
    pool.open(wait=True, timeout=settings.pool_timeout_s)
    return pool
