"""SQL for readiness checks."""

from __future__ import annotations

from app.repositories import Conn


def pgvector_version(conn: Conn) -> str | None:
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    return None if row is None else str(row["extversion"])
