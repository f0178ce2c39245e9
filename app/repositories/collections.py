"""SQL for collections: a user's own, plus those shared with everyone, with the user or with one
of their groups (V2_10), for reading."""

from __future__ import annotations

from typing import Any

from app.repositories import Conn, Row, returned

_COLUMNS = (
    "c.id, c.owner_id, c.name, c.description, c.language::text AS language, c.is_shared,"
    " c.created_at, c.updated_at"
)


def _shared_with(role: str | None = None) -> str:
    """Ids of the collections a share gives %(user_id)s, directly or through a group; only
    those where it makes them an editor with role="editor"."""
    only = " AND s.role = 'editor'" if role == "editor" else ""
    return (
        "SELECT s.collection_id FROM collection_shares s WHERE (s.user_id = %(user_id)s"
        " OR s.group_id IN (SELECT m.group_id FROM group_members m WHERE m.user_id = %(user_id)s))"
        + only
    )


# The application's own filters, under the row-level security that says the same (V2_10).
READABLE = f"(c.owner_id = %(user_id)s OR c.is_shared OR c.id IN ({_shared_with()}))"
WRITABLE = f"(c.owner_id = %(user_id)s OR c.id IN ({_shared_with('editor')}))"
# What the user is to the collection: owner, editor (a share says so) or reader.
_ROLE = (
    "CASE WHEN c.owner_id = %(user_id)s THEN 'owner'"
    f" WHEN c.id IN ({_shared_with('editor')}) THEN 'editor' ELSE 'reader' END AS role"
)


def insert(
    conn: Conn, *, owner_id: int, name: str, description: str, language: str, is_shared: bool
) -> Row:
    return returned(
        conn.execute(
            "INSERT INTO collections AS c (owner_id, name, description, language, is_shared)"
            " VALUES (%(owner_id)s, %(name)s, %(description)s, %(language)s::regconfig,"
            " %(is_shared)s)"
            f" RETURNING {_COLUMNS}, 'owner' AS role",
            {
                "owner_id": owner_id,
                "name": name,
                "description": description,
                "language": language,
                "is_shared": is_shared,
            },
        ).fetchone()
    )


def get_readable(conn: Conn, collection_id: int, user_id: int) -> Row | None:
    """The collection, with the user's role, if the user may read it."""
    return conn.execute(
        f"SELECT {_COLUMNS}, {_ROLE} FROM collections c WHERE c.id = %(id)s AND {READABLE}",
        {"id": collection_id, "user_id": user_id},
    ).fetchone()


def get(conn: Conn, collection_id: int) -> Row | None:
    """The collection whoever owns it (for an admin's work on it, run as the tables' owner)."""
    return conn.execute(
        f"SELECT {_COLUMNS}, 'reader' AS role FROM collections c WHERE c.id = %(id)s",
        {"id": collection_id},
    ).fetchone()


def get_by_name(conn: Conn, owner_id: int, name: str) -> Row | None:
    return conn.execute(
        f"SELECT {_COLUMNS}, 'owner' AS role FROM collections c"
        " WHERE c.owner_id = %(owner_id)s AND c.name = %(name)s",
        {"owner_id": owner_id, "name": name},
    ).fetchone()


def list_readable(conn: Conn, user_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    params = {"user_id": user_id, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"SELECT {_COLUMNS}, {_ROLE} FROM collections c WHERE {READABLE}"
        " ORDER BY c.created_at DESC, c.id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = returned(
        conn.execute(f"SELECT count(*) AS n FROM collections c WHERE {READABLE}", params).fetchone()
    )
    return rows, int(total["n"])


def update(conn: Conn, collection_id: int, owner_id: int, changes: dict[str, Any]) -> Row | None:
    """Apply `changes` (column -> value, columns from a fixed list) to an owned collection."""
    allowed = {
        "name": "%(name)s",
        "description": "%(description)s",
        "language": "%(language)s::regconfig",
        "is_shared": "%(is_shared)s",
    }
    sets = ", ".join(f"{column} = {allowed[column]}" for column in changes)
    return conn.execute(
        f"UPDATE collections c SET {sets} WHERE c.id = %(id)s AND c.owner_id = %(owner_id)s"
        f" RETURNING {_COLUMNS}, 'owner' AS role",
        {**changes, "id": collection_id, "owner_id": owner_id},
    ).fetchone()


def delete(conn: Conn, collection_id: int, owner_id: int) -> bool:
    row = conn.execute(
        "DELETE FROM collections WHERE id = %(id)s AND owner_id = %(owner_id)s RETURNING id",
        {"id": collection_id, "owner_id": owner_id},
    ).fetchone()
    return row is not None


def language_exists(conn: Conn, language: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_ts_config WHERE cfgname = %(name)s", {"name": language}
    ).fetchone()
    return row is not None


def readable_ids(conn: Conn, user_id: int, wanted: list[int] | None) -> list[int]:
    """Ids of the collections the user may read, among `wanted` (every one when None)."""
    rows = conn.execute(
        f"SELECT c.id FROM collections c WHERE {READABLE}"
        " AND (%(wanted)s::bigint[] IS NULL OR c.id = ANY(%(wanted)s)) ORDER BY c.id",
        {"user_id": user_id, "wanted": wanted},
    ).fetchall()
    return [r["id"] for r in rows]
