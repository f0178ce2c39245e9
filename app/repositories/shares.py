"""SQL for a collection's shares with users and groups, and who can read or write it and why."""

from __future__ import annotations

from app.repositories import Conn, Row, returned

# A share with its principal's name. Users' names are readable only by admins and the users
# themselves (V2_5), so the service runs these reads as the tables' owner, once it knows the
# caller manages the collection.
_SHARE = (
    "SELECT s.id, s.collection_id, s.role, s.created_at, s.updated_at,"
    " CASE WHEN s.user_id IS NULL THEN 'group' ELSE 'user' END AS principal_type,"
    " coalesce(s.user_id, s.group_id) AS principal_id, coalesce(u.name, g.name) AS principal_name"
    " FROM collection_shares s LEFT JOIN users u ON u.id = s.user_id"
    " LEFT JOIN groups g ON g.id = s.group_id"
)


def upsert(
    conn: Conn, collection_id: int, *, user_id: int | None, group_id: int | None, role: str
) -> tuple[int, bool]:
    """(share id, created): the principal's share of the collection, made or given `role`."""
    key = "collection_shares_user_key" if user_id is not None else "collection_shares_group_key"
    row = conn.execute(
        "INSERT INTO collection_shares (collection_id, user_id, group_id, role)"
        " VALUES (%(collection_id)s, %(user_id)s, %(group_id)s, %(role)s)"
        f" ON CONFLICT ON CONSTRAINT {key} DO UPDATE SET role = EXCLUDED.role,"
        " updated_at = CASE WHEN collection_shares.role = EXCLUDED.role"
        " THEN collection_shares.updated_at ELSE now() END"
        " RETURNING id, (xmax = 0) AS created",
        {"collection_id": collection_id, "user_id": user_id, "group_id": group_id, "role": role},
    ).fetchone()
    row = returned(row)
    return int(row["id"]), bool(row["created"])


def get(conn: Conn, collection_id: int, share_id: int) -> Row | None:
    return conn.execute(
        f"{_SHARE} WHERE s.collection_id = %(collection_id)s AND s.id = %(id)s",
        {"collection_id": collection_id, "id": share_id},
    ).fetchone()


def list_page(conn: Conn, collection_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    params = {"collection_id": collection_id, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"{_SHARE} WHERE s.collection_id = %(collection_id)s ORDER BY s.id"
        " LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = conn.execute(
        "SELECT count(*) AS n FROM collection_shares WHERE collection_id = %(collection_id)s",
        params,
    ).fetchone()
    return rows, int(returned(total)["n"])


def delete(conn: Conn, collection_id: int, share_id: int) -> bool:
    row = conn.execute(
        "DELETE FROM collection_shares WHERE collection_id = %(collection_id)s AND id = %(id)s"
        " RETURNING id",
        {"collection_id": collection_id, "id": share_id},
    ).fetchone()
    return row is not None


# Every way a user reaches the collection: as its owner, by a share naming them, or (with
# %(members)s) by a share naming a group they belong to (once per share, whichever sources the
# membership has).
_GRANTS = (
    "WITH grants AS ("
    " SELECT c.owner_id AS user_id, 'owner' AS via, 'owner' AS role,"
    " NULL::bigint AS share_id, NULL::text AS group_name"
    " FROM collections c WHERE c.id = %(collection_id)s"
    " UNION ALL"
    " SELECT s.user_id, 'share', s.role, s.id, NULL FROM collection_shares s"
    " WHERE s.collection_id = %(collection_id)s AND s.user_id IS NOT NULL"
    " UNION ALL"
    " SELECT DISTINCT m.user_id, 'group', s.role, s.id, g.name FROM collection_shares s"
    " JOIN groups g ON g.id = s.group_id JOIN group_members m ON m.group_id = s.group_id"
    " WHERE s.collection_id = %(collection_id)s AND %(members)s)"
)


def access_page(
    conn: Conn, collection_id: int, *, members: bool, limit: int, offset: int
) -> tuple[list[Row], int]:
    """The users who can read the collection besides everyone (when it is shared with all),
    by name, each with whether they can write and the grants that say so; the members of the
    groups it is shared with only when `members`."""
    params = {"collection_id": collection_id, "members": members, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"{_GRANTS} SELECT u.id AS user_id, u.name,"
        " bool_or(g.role IN ('owner', 'editor')) AS can_write,"
        " jsonb_agg(jsonb_build_object('via', g.via, 'role', g.role, 'share_id', g.share_id,"
        " 'group', g.group_name) ORDER BY g.via = 'owner' DESC, g.share_id) AS because"
        " FROM grants g JOIN users u ON u.id = g.user_id"
        " GROUP BY u.id, u.name ORDER BY u.name, u.id LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = conn.execute(
        f"{_GRANTS} SELECT count(DISTINCT user_id) AS n FROM grants", params
    ).fetchone()
    return rows, int(returned(total)["n"])


def group_shares(conn: Conn, collection_id: int) -> list[Row]:
    """The collection's shares with groups: share id, group name and role, by name."""
    return conn.execute(
        "SELECT s.id AS share_id, g.name AS group_name, s.role FROM collection_shares s"
        " JOIN groups g ON g.id = s.group_id WHERE s.collection_id = %(collection_id)s"
        " ORDER BY g.name",
        {"collection_id": collection_id},
    ).fetchall()
