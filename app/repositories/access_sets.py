"""SQL for access sets: the postrag users and groups who may read a source's documents (V2_14)."""

from __future__ import annotations

from collections.abc import Sequence

from app.repositories import Conn


def find_or_make(
    conn: Conn, source_id: int, members_key: str, user_ids: Sequence[int], group_ids: Sequence[int]
) -> int:
    """The source's set with exactly these members (`members_key` names them), made if new."""
    row = conn.execute(
        "INSERT INTO access_sets (source_id, members_key) VALUES (%(source)s, %(key)s)"
        " ON CONFLICT ON CONSTRAINT access_sets_source_id_members_key_key DO NOTHING"
        " RETURNING id",
        {"source": source_id, "key": members_key},
    ).fetchone()
    if row is None:
        found = conn.execute(
            "SELECT id FROM access_sets WHERE source_id = %(source)s AND members_key = %(key)s",
            {"source": source_id, "key": members_key},
        ).fetchone()
        assert found is not None  # made by a run of the same source, never deleted alone
        return int(found["id"])
    conn.execute(
        "INSERT INTO access_set_members (set_id, user_id, group_id)"
        " SELECT %(set)s, u, NULL FROM unnest(%(users)s::bigint[]) u"
        " UNION ALL SELECT %(set)s, NULL, g FROM unnest(%(groups)s::bigint[]) g",
        {"set": row["id"], "users": list(user_ids), "groups": list(group_ids)},
    )
    return int(row["id"])


def group_ids_by_name(conn: Conn, names: Sequence[str]) -> list[int]:
    rows = conn.execute(
        "SELECT id FROM groups WHERE name = ANY(%(names)s)", {"names": list(names)}
    ).fetchall()
    return [int(r["id"]) for r in rows]


def set_document_access(conn: Conn, document_id: int, set_id: int | None) -> bool:
    """Give the document (and, by trigger, its chunks) this set; whether it changed."""
    row = conn.execute(
        "UPDATE documents SET access_set_id = %(set)s"
        " WHERE id = %(id)s AND access_set_id IS DISTINCT FROM %(set)s RETURNING id",
        {"id": document_id, "set": set_id},
    ).fetchone()
    return row is not None
