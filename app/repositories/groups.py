"""SQL for groups and their members (provider-made and admin-made memberships)."""

from __future__ import annotations

from collections.abc import Sequence

from app.repositories import Conn, Row, returned

_GROUP_COLUMNS = "id, name, source, created_at"


def insert_group(conn: Conn, *, name: str, source: str) -> Row:
    row = conn.execute(
        "INSERT INTO groups (name, source) VALUES (%(name)s, %(source)s)"
        f" RETURNING {_GROUP_COLUMNS}",
        {"name": name, "source": source},
    ).fetchone()
    return returned(row)


def get_group(conn: Conn, group_id: int) -> Row | None:
    return conn.execute(
        f"SELECT {_GROUP_COLUMNS} FROM groups WHERE id = %(id)s", {"id": group_id}
    ).fetchone()


def get_group_by_name(conn: Conn, name: str) -> Row | None:
    return conn.execute(
        f"SELECT {_GROUP_COLUMNS} FROM groups WHERE name = %(name)s", {"name": name}
    ).fetchone()


def delete_group(conn: Conn, group_id: int) -> bool:
    """Delete the group with its memberships and the shares naming it."""
    row = conn.execute(
        "DELETE FROM groups WHERE id = %(id)s RETURNING id", {"id": group_id}
    ).fetchone()
    return row is not None


def list_groups(conn: Conn, *, limit: int, offset: int) -> tuple[list[Row], int]:
    rows = conn.execute(
        f"SELECT {_GROUP_COLUMNS} FROM groups ORDER BY id LIMIT %(limit)s OFFSET %(offset)s",
        {"limit": limit, "offset": offset},
    ).fetchall()
    total = conn.execute("SELECT count(*) AS n FROM groups").fetchone()
    return rows, returned(total)["n"]


def list_members(conn: Conn, group_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    """A group's memberships with their users' names, one row per (user, source)."""
    rows = conn.execute(
        "SELECT m.user_id, u.name, m.source, m.created_at"
        " FROM group_members m JOIN users u ON u.id = m.user_id"
        " WHERE m.group_id = %(group_id)s ORDER BY m.user_id, m.source"
        " LIMIT %(limit)s OFFSET %(offset)s",
        {"group_id": group_id, "limit": limit, "offset": offset},
    ).fetchall()
    total = conn.execute(
        "SELECT count(*) AS n FROM group_members WHERE group_id = %(group_id)s",
        {"group_id": group_id},
    ).fetchone()
    return rows, returned(total)["n"]


def insert_member(conn: Conn, *, group_id: int, user_id: int, source: str) -> Row:
    row = conn.execute(
        "INSERT INTO group_members (group_id, user_id, source)"
        " VALUES (%(group_id)s, %(user_id)s, %(source)s)"
        " RETURNING group_id, user_id, source, created_at",
        {"group_id": group_id, "user_id": user_id, "source": source},
    ).fetchone()
    return returned(row)


def delete_member(conn: Conn, *, group_id: int, user_id: int, source: str) -> bool:
    row = conn.execute(
        "DELETE FROM group_members"
        " WHERE group_id = %(group_id)s AND user_id = %(user_id)s AND source = %(source)s"
        " RETURNING user_id",
        {"group_id": group_id, "user_id": user_id, "source": source},
    ).fetchone()
    return row is not None


def provider_group_names(conn: Conn, user_id: int) -> set[str]:
    """The names of the groups the provider made `user_id` a member of."""
    rows = conn.execute(
        "SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id"
        " WHERE m.user_id = %(user_id)s AND m.source = 'provider'",
        {"user_id": user_id},
    ).fetchall()
    return {row["name"] for row in rows}


def admin_group_names(conn: Conn, names: Sequence[str]) -> set[str]:
    """Those of `names` that are admin-defined groups (a token's claim never joins them)."""
    rows = conn.execute(
        "SELECT name FROM groups WHERE source = 'admin' AND name = ANY (%(names)s::text[])",
        {"names": list(names)},
    ).fetchall()
    return {row["name"] for row in rows}


def replace_provider_memberships(conn: Conn, user_id: int, names: Sequence[str]) -> None:
    """`user_id`'s provider memberships become exactly `names` (provider groups: missing ones
    are made); admin-made memberships stay, and admin-defined groups are never joined."""
    params = {"user_id": user_id, "names": list(names)}
    conn.execute(
        "INSERT INTO groups (name, source) SELECT n, 'provider' FROM unnest(%(names)s::text[]) n"
        " ON CONFLICT (name) DO NOTHING",
        params,
    )
    conn.execute(
        "DELETE FROM group_members m USING groups g"
        " WHERE g.id = m.group_id AND m.user_id = %(user_id)s AND m.source = 'provider'"
        " AND g.name <> ALL (%(names)s::text[])",
        params,
    )
    conn.execute(
        "INSERT INTO group_members (group_id, user_id, source)"
        " SELECT id, %(user_id)s, 'provider' FROM groups"
        " WHERE name = ANY (%(names)s::text[]) AND source = 'provider'"
        " ON CONFLICT DO NOTHING",
        params,
    )
