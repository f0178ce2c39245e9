"""Sharing a collection with users and groups as reader or editor, and who has access and why.

Only the collection's owner, or an admin, manages its shares. The row-level security of V2_10
enforces what a share grants; these use cases check the caller first so that a refusal is a
clear 403 or 404. Names of other users are not readable under RLS (users see themselves), so the
reads that show them run as the tables' owner once the caller is known to manage the collection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.db import scope
from app.errors import Forbidden, NotFound, ValidationFailed
from app.repositories import Conn, Row
from app.repositories import collections as collection_repo
from app.repositories import groups as group_repo
from app.repositories import shares as share_repo
from app.repositories import users as user_repo
from app.services.tokens import Principal

PrincipalType = Literal["user", "group"]
Role = Literal["reader", "editor"]


@dataclass(frozen=True)
class Grantee:
    type: PrincipalType
    name: str


def managed(conn: Conn, who: Principal, collection_id: int) -> Row:
    """The collection if `who` manages its shares: its owner or an admin (404 when they cannot
    see it at all, 403 when they only read or edit it)."""
    row = collection_repo.get_readable(conn, collection_id, who.user_id)
    if row is not None and row["role"] == "owner":
        return row
    if who.is_admin:
        with scope.acting_as_owner(conn):
            found = collection_repo.get(conn, collection_id)
        if found is not None:
            return found
    if row is None:
        raise NotFound(f"no collection {collection_id}")
    raise Forbidden(f"only the owner of collection {collection_id} or an admin manages its shares")


def _principal_ids(conn: Conn, collection: Row, grantee: Grantee) -> tuple[int | None, int | None]:
    """(user id, group id) of the named user or group; 422 on the name when there is none."""
    if grantee.type == "group":
        group = group_repo.get_group_by_name(conn, grantee.name)
        if group is None:
            raise _unknown(grantee, "no group has this name (an admin can define it)")
        return None, int(group["id"])
    with scope.acting_as_owner(conn):
        user = user_repo.get_by_name(conn, grantee.name)
    if user is None:
        raise _unknown(grantee, "no user has this name")
    if user["id"] == collection["owner_id"]:
        raise _unknown(grantee, "the collection's owner has every right already")
    return int(user["id"]), None


def _unknown(grantee: Grantee, msg: str) -> ValidationFailed:
    return ValidationFailed.on_field(
        "principal",
        msg,
        type="value_error",
        at=("name",),
        detail=f"cannot share with {grantee.type} {grantee.name!r}: {msg}",
    )


def share(
    conn: Conn, who: Principal, collection_id: int, grantee: Grantee, role: Role
) -> tuple[Row, bool]:
    """(share, created): shares the collection, or gives an existing share the new role."""
    with conn.transaction():
        collection = managed(conn, who, collection_id)
        user_id, group_id = _principal_ids(conn, collection, grantee)
        share_id, created = share_repo.upsert(
            conn, collection_id, user_id=user_id, group_id=group_id, role=role
        )
    return get(conn, who, collection_id, share_id), created


def get(conn: Conn, who: Principal, collection_id: int, share_id: int) -> Row:
    managed(conn, who, collection_id)
    with scope.acting_as_owner(conn):
        row = share_repo.get(conn, collection_id, share_id)
    if row is None:
        raise NotFound(f"collection {collection_id} has no share {share_id}")
    return row


def list_page(
    conn: Conn, who: Principal, collection_id: int, *, limit: int, offset: int
) -> tuple[list[Row], int]:
    managed(conn, who, collection_id)
    with scope.acting_as_owner(conn):
        return share_repo.list_page(conn, collection_id, limit=limit, offset=offset)


def revoke(conn: Conn, who: Principal, collection_id: int, share_id: int) -> None:
    """Ends a share: its user, or its group's members, lose access at their next request."""
    with conn.transaction():
        managed(conn, who, collection_id)
        if not share_repo.delete(conn, collection_id, share_id):
            raise NotFound(f"collection {collection_id} has no share {share_id}")


def access(
    conn: Conn, who: Principal, collection_id: int, *, limit: int, offset: int
) -> tuple[Row, list[Row], int, list[Row]]:
    """(collection, users who can read it with why, their total, its group shares). A group's
    members are listed to admins only: an owner may share with any group, and would otherwise
    learn who is in it; to them a group share shows as the group."""
    collection = managed(conn, who, collection_id)
    with scope.acting_as_owner(conn):
        rows, total = share_repo.access_page(
            conn, collection_id, members=who.is_admin, limit=limit, offset=offset
        )
        groups = share_repo.group_shares(conn, collection_id)
    return collection, rows, total, groups
