"""Readiness: is the database answering, at the latest migration, with pgvector installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from app.db import migrations
from app.repositories import Conn
from app.repositories import health as health_repo

# A database that takes longer than this to answer the checks is not ready (a probe's own
# timeout is typically a few seconds).
CHECK_TIMEOUT_MS = 2000


def readiness(conn: Conn, migrations_dir: Path) -> tuple[bool, dict[str, Any]]:
    """(ready, details) where details names each check and its result."""
    try:
        with conn.transaction():
            health_repo.limit_statement_time(conn, CHECK_TIMEOUT_MS)
            pgvector = health_repo.pgvector_version(conn)
            at_head = migrations.is_at_head(conn, migrations_dir)
    except psycopg.Error as exc:
        return False, {"database": f"error: {type(exc).__name__}"}
    details = {
        "database": "ok",
        "migrations": "at head" if at_head else "pending",
        "pgvector": pgvector,
    }
    return at_head and pgvector is not None, details
