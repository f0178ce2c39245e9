"""The app's connection pool (and its twin on a read replica): autocommit, dict rows, pgvector
types, and every connection acting for nobody (role postrag_app, no user: app/db/scope.py) until
it acts for someone."""

from __future__ import annotations

import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from app.db.scope import act_as_anonymous
from app.settings import Settings


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)
    # Timestamps leave the API in UTC whatever the server's or database's TimeZone is.
    conn.execute("SET TimeZone = 'UTC'")
    act_as_anonymous(conn)  # closed by default: no user-owned row until it acts for someone


def _reset(conn: psycopg.Connection) -> None:
    act_as_anonymous(conn)  # whoever it acted for, it goes back to the pool acting for nobody


def _new_pool(url: str, settings: Settings, name: str) -> ConnectionPool:
    return ConnectionPool(
        url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout_s,
        kwargs={"autocommit": True, "row_factory": dict_row},
        configure=_configure,
        reset=_reset,
        # One round trip per checkout buys transparent recovery after a database restart.
        check=ConnectionPool.check_connection,
        name=name,
        open=False,
    )


def open_pool(url: str, settings: Settings) -> ConnectionPool:
    pool = _new_pool(url, settings, "postrag")
    pool.open(wait=True, timeout=settings.pool_timeout_s)
    return pool


def open_replica_pool(url: str, settings: Settings) -> ConnectionPool:
    """The same pool on a hot standby (SET ROLE and set_config work there), opened without
    waiting: the app starts, reading from the primary, while the replica is down."""
    pool = _new_pool(url, settings, "postrag-replica")
    pool.open(wait=False)
    return pool
