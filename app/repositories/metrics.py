"""SQL behind the metrics read from the database at scrape time (app/metrics.py)."""

from __future__ import annotations

from app.repositories import Conn, Row


def job_queue(conn: Conn) -> list[Row]:
    """Queued and running jobs by kind and state."""
    return conn.execute(
        "SELECT kind, state, count(*)::bigint AS jobs FROM jobs"
        " WHERE state IN ('queued', 'running') GROUP BY kind, state ORDER BY kind, state"
    ).fetchall()


def oldest_due_age_s(conn: Conn) -> float:
    """Seconds the longest-waiting due queued job has waited; 0 when none waits."""
    row = conn.execute(
        "SELECT coalesce(extract(epoch FROM now() - min(run_after)), 0)::float8 AS age"
        " FROM jobs WHERE state = 'queued' AND run_after <= now()"
    ).fetchone()
    return float(row["age"]) if row else 0.0


def documents_by_status(conn: Conn) -> list[Row]:
    return conn.execute(
        "SELECT status, count(*)::bigint AS documents FROM documents"
        " GROUP BY status ORDER BY status"
    ).fetchall()
