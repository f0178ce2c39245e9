"""SQL for sources, their sync runs (history and checkpoint) and the items each brought in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.repositories import Conn, Row, returned
from app.strict_json import jsonb

_SOURCE = (
    "id, owner_id, collection_id, kind, connector, name, config, schedule_minutes, paused,"
    " next_run_at, created_at, updated_at"
)
_RUN = (
    "id, source_id, state, trigger, checkpoint, added, updated, deleted, unchanged, failed,"
    " errors, error, created_at, started_at, finished_at"
)
_COUNTS = ("added", "updated", "deleted", "unchanged", "failed")
MAX_RUN_ERRORS = 50  # a run keeps its first errors; the count says how many there were


def insert_source(conn: Conn, **fields: Any) -> Row:
    row = conn.execute(
        "INSERT INTO sources (owner_id, collection_id, kind, connector, name, config,"
        " schedule_minutes, next_run_at) VALUES (%(owner_id)s, %(collection_id)s, %(kind)s,"
        " %(connector)s, %(name)s, %(config)s, %(schedule_minutes)s,"
        " now() + make_interval(mins => %(schedule_minutes)s))"
        f" RETURNING {_SOURCE}",
        {**fields, "config": jsonb(fields["config"])},
    ).fetchone()
    return returned(row)


def get_source(conn: Conn, source_id: int, owner_id: int, *, lock: bool = False) -> Row | None:
    return conn.execute(
        f"SELECT {_SOURCE} FROM sources WHERE id = %(id)s AND owner_id = %(owner_id)s"
        + (" FOR UPDATE" if lock else ""),
        {"id": source_id, "owner_id": owner_id},
    ).fetchone()


def owner_of(conn: Conn, source_id: int) -> int | None:
    """The source's owner (for a worker, before it acts as them)."""
    row = conn.execute(
        "SELECT owner_id FROM sources WHERE id = %(id)s", {"id": source_id}
    ).fetchone()
    return None if row is None else int(row["owner_id"])


def list_sources(conn: Conn, owner_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    params = {"owner_id": owner_id, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"SELECT {_SOURCE} FROM sources WHERE owner_id = %(owner_id)s"
        " ORDER BY id LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = conn.execute(
        "SELECT count(*) AS n FROM sources WHERE owner_id = %(owner_id)s", params
    ).fetchone()
    return rows, int(returned(total)["n"])


def update_source(conn: Conn, source_id: int, changes: dict[str, Any]) -> Row:
    """Apply `changes` (columns from a fixed list); a new schedule counts from now."""
    allowed = {
        "name": "%(name)s",
        "config": "%(config)s",
        "schedule_minutes": "%(schedule_minutes)s",
        "paused": "%(paused)s",
    }
    sets = [f"{column} = {allowed[column]}" for column in changes]
    if "schedule_minutes" in changes:
        sets.append("next_run_at = now() + make_interval(mins => %(schedule_minutes)s)")
    params = {**changes, "id": source_id}
    if "config" in params:
        params["config"] = jsonb(params["config"])
    row = conn.execute(
        f"UPDATE sources SET {', '.join(sets)}, updated_at = now() WHERE id = %(id)s"
        f" RETURNING {_SOURCE}",
        params,
    ).fetchone()
    return returned(row)


def delete_source(conn: Conn, source_id: int) -> None:
    conn.execute("DELETE FROM sources WHERE id = %(id)s", {"id": source_id})


def document_ids(conn: Conn, source_id: int) -> list[int]:
    rows = conn.execute(
        "SELECT document_id FROM source_items WHERE source_id = %(id)s AND document_id IS NOT NULL",
        {"id": source_id},
    ).fetchall()
    return [int(r["document_id"]) for r in rows]


def insert_run(conn: Conn, source_id: int, trigger: str) -> Row | None:
    """A queued run, or None while the source has one queued or running."""
    return conn.execute(
        "INSERT INTO source_runs (source_id, trigger) VALUES (%(id)s, %(trigger)s)"
        " ON CONFLICT (source_id) WHERE state IN ('queued', 'running') DO NOTHING"
        f" RETURNING {_RUN}",
        {"id": source_id, "trigger": trigger},
    ).fetchone()


def get_run(conn: Conn, run_id: int) -> Row | None:
    return conn.execute(
        f"SELECT {_RUN} FROM source_runs WHERE id = %(id)s", {"id": run_id}
    ).fetchone()


def list_runs(conn: Conn, source_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    params = {"id": source_id, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"SELECT {_RUN} FROM source_runs WHERE source_id = %(id)s"
        " ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = conn.execute(
        "SELECT count(*) AS n FROM source_runs WHERE source_id = %(id)s", params
    ).fetchone()
    return rows, int(returned(total)["n"])


def start_run(conn: Conn, run_id: int) -> None:
    conn.execute(
        "UPDATE source_runs SET state = 'running', started_at = coalesce(started_at, now())"
        " WHERE id = %(id)s",
        {"id": run_id},
    )


def record_progress(
    conn: Conn, run_id: int, *, checkpoint: str | None, counts: dict[str, int], errors: list[str]
) -> None:
    """Add a listing page's counts and errors, and move the checkpoint past it."""
    sets = ", ".join(f"{c} = {c} + %({c})s" for c in _COUNTS)
    conn.execute(
        f"UPDATE source_runs SET {sets}, checkpoint = %(checkpoint)s,"
        " errors = (SELECT coalesce(jsonb_agg(e), '[]') FROM (SELECT e FROM"
        " jsonb_array_elements(errors || %(errors)s) e LIMIT %(max)s) kept)"
        " WHERE id = %(id)s",
        {
            **{c: counts.get(c, 0) for c in _COUNTS},
            "checkpoint": checkpoint,
            "errors": jsonb(errors),
            "max": MAX_RUN_ERRORS,
            "id": run_id,
        },
    )


def finish_run(conn: Conn, run_id: int, state: str, error: str | None = None) -> None:
    conn.execute(
        "UPDATE source_runs SET state = %(state)s, error = %(error)s, finished_at = now()"
        " WHERE id = %(id)s",
        {"id": run_id, "state": state, "error": error},
    )
    conn.execute(
        "UPDATE sources s SET next_run_at = now() + make_interval(mins => s.schedule_minutes)"
        " FROM source_runs r WHERE r.id = %(id)s AND s.id = r.source_id",
        {"id": run_id},
    )


def known_items(conn: Conn, source_id: int, keys: Sequence[str]) -> dict[str, Row]:
    rows = conn.execute(
        "SELECT key, version, document_id, seen_run_id FROM source_items"
        " WHERE source_id = %(id)s AND key = ANY(%(keys)s)",
        {"id": source_id, "keys": list(keys)},
    ).fetchall()
    return {r["key"]: r for r in rows}


def save_item(
    conn: Conn, source_id: int, key: str, *, version: str, document_id: int | None, run_id: int
) -> None:
    conn.execute(
        "INSERT INTO source_items (source_id, key, version, document_id, seen_run_id)"
        " VALUES (%(id)s, %(key)s, %(version)s, %(document_id)s, %(run)s)"
        " ON CONFLICT ON CONSTRAINT source_items_pkey DO UPDATE SET version = EXCLUDED.version,"
        " document_id = EXCLUDED.document_id, seen_run_id = EXCLUDED.seen_run_id,"
        " updated_at = now()",
        {
            "id": source_id,
            "key": key,
            "version": version,
            "document_id": document_id,
            "run": run_id,
        },
    )


def mark_seen(conn: Conn, source_id: int, keys: Sequence[str], run_id: int) -> None:
    conn.execute(
        "UPDATE source_items SET seen_run_id = %(run)s"
        " WHERE source_id = %(id)s AND key = ANY(%(keys)s)",
        {"id": source_id, "keys": list(keys), "run": run_id},
    )


def take_unseen(conn: Conn, source_id: int, run_id: int) -> list[int]:
    """Forget the items a complete listing of run `run_id` did not name; their documents."""
    rows = conn.execute(
        "DELETE FROM source_items WHERE source_id = %(id)s AND seen_run_id <> %(run)s"
        " RETURNING document_id",
        {"id": source_id, "run": run_id},
    ).fetchall()
    return [int(r["document_id"]) for r in rows if r["document_id"] is not None]


def due_sources(conn: Conn, limit: int) -> list[Row]:
    """Sources whose schedule says a run is due, not paused, most overdue first."""
    return conn.execute(
        f"SELECT {_SOURCE} FROM sources WHERE NOT paused AND next_run_at <= now()"
        " ORDER BY next_run_at LIMIT %(limit)s",
        {"limit": limit},
    ).fetchall()


def any_scheduled(conn: Conn) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sources WHERE NOT paused AND schedule_minutes IS NOT NULL LIMIT 1"
    ).fetchone()
    return row is not None
