"""SQL for how far documents are in their processing, and which workers hold their jobs."""

from __future__ import annotations

from collections.abc import Sequence

from app.repositories import Conn, Row


def progress(conn: Conn, document_ids: Sequence[int]) -> list[Row]:
    """Each existing document's id, filename, status, error, size_bytes, chunks_total,
    chunks_embedded and `workers`: the workers running its jobs now (none while it waits)."""
    return conn.execute(
        "SELECT d.id, d.filename, d.status, d.error, d.size_bytes, d.chunks_total,"
        " d.chunks_embedded, coalesce(array_agg(DISTINCT j.lease_owner)"
        "   FILTER (WHERE j.lease_owner IS NOT NULL), '{}') AS workers"
        " FROM documents d"
        " LEFT JOIN jobs j ON j.document_id = d.id AND j.state = 'running'"
        " WHERE d.id = ANY(%(ids)s) GROUP BY d.id",
        {"ids": list(document_ids)},
    ).fetchall()
