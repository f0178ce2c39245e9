"""SQL for collections: a user's own, plus those others shared, for reading."""

from __future__ import annotations

from typing import Any

from app.repositories import Conn, Row, returned

_COLUMNS = (
    "id, owner_id, name, description, language::text AS language, is_shared, created_at, updated_at"
)


def insert(
    conn: Conn, *, owner_id: int, name: str, description: str, language: str, is_shared: bool
) -> Row:
    return returned(
        conn.execute(
            "INSERT INTO collections (owner_id, name, description, language, is_shared)"
            " VALUES (%(owner_id)s, %(name)s, %(description)s, %(language)s::regconfig,"
            " %(is_shared)s)"
            f" RETURNING {_COLUMNS}",
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
    """The collection if the user owns it or it is shared."""
    return conn.execute(
        f"SELECT {_COLUMNS} FROM collections WHERE id = %(id)s"
        " AND (owner_id = %(user_id)s OR is_shared)",
        {"id": collection_id, "user_id": user_id},
    ).fetchone()


def get_by_name(conn: Conn, owner_id: int, name: str) -> Row | None:
    return conn.execute(
        f"SELECT {_COLUMNS} FROM collections WHERE owner_id = %(owner_id)s AND name = %(name)s",
        {"owner_id": owner_id, "name": name},
    ).fetchone()


def list_readable(conn: Conn, user_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    where = "owner_id = %(user_id)s OR is_shared"
    params = {"user_id": user_id, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM collections WHERE {where}"
        " ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = returned(
        conn.execute(f"SELECT count(*) AS n FROM collections WHERE {where}", params).fetchone()
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
        f"UPDATE collections SET {sets} WHERE id = %(id)s AND owner_id = %(owner_id)s"
        f" RETURNING {_COLUMNS}",
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
        "SELECT id FROM collections WHERE (owner_id = %(user_id)s OR is_shared)"
        " AND (%(wanted)s::bigint[] IS NULL OR id = ANY(%(wanted)s)) ORDER BY id",
        {"user_id": user_id, "wanted": wanted},
    ).fetchall()
    return [r["id"] for r in rows]
