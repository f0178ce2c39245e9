"""Advisory locks that serialise one-off work across processes."""

from __future__ import annotations

from app.repositories import Conn


def advisory_xact_lock(conn: Conn, key: int) -> None:
    """Held until the caller's transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%(key)s)", {"key": key})
