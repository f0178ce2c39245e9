"""Readiness: is the database reachable, at the latest migration, with pgvector installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from app.db import migrations
from app.repositories import Conn
from app.repositories import health as health_repo


def readiness(conn: Conn, migrations_dir: Path) -> tuple[bool, dict[str, Any]]:
    """(ready, details) where details names each check and its result."""
    details: dict[str, Any] = {"database": "ok"}
    try:
        details["pgvector"] = health_repo.pgvector_version(conn)
        at_head = migrations.is_at_head(conn, migrations_dir)
    except psycopg.Error as exc:
        return False, {"database": f"error: {type(exc).__name__}"}
    details["migrations"] = "at head" if at_head else "pending"
    ready = at_head and details["pgvector"] is not None
    return ready, details
