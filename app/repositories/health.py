"""SQL for readiness checks."""

from __future__ import annotations

from app.repositories import Conn


def limit_statement_time(conn: Conn, milliseconds: int) -> None:
    """Cancel any statement of the current transaction that runs longer than this."""
    conn.execute(
        "SELECT set_config('statement_timeout', %(ms)s, true)", {"ms": str(int(milliseconds))}
    )


def pgvector_version(conn: Conn) -> str | None:
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    return None if row is None else str(row["extversion"])
