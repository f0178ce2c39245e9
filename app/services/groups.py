"""Groups: the provider's groups claim kept in step at every token, admin-defined groups and
memberships."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import pydantic

from app.errors import NotFound, ValidationFailed
from app.providers.oidc import claim_strings
from app.repositories import Conn, Row
from app.repositories import groups as group_repo
from app.repositories import users as user_repo

# What an admin may call a group (provider groups are taken as the provider names them, within
# the column's limits: Keycloak's are paths such as `/team/sub`).
GroupName = Annotated[
    str,
    pydantic.StringConstraints(
        strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
_GROUP_NAME: pydantic.TypeAdapter[str] = pydantic.TypeAdapter(GroupName)
MAX_PROVIDER_GROUPS = 1000  # a token naming more is cut here, not a reason to refuse it


def sync_from_claim(conn: Conn, user_id: int, claims: Mapping[str, Any], path: str) -> None:
    """Make `user_id`'s provider memberships the groups at claim `path` (a string or a list);
    nothing is written when they are already, nor with no `path` (groups not read). Runs inside
    the caller's transaction."""
    if not path:
        return
    wanted = sorted({name for name in claim_strings(claims, path) if _usable(name)})
    wanted = wanted[:MAX_PROVIDER_GROUPS]
    current = group_repo.provider_group_names(conn, user_id)
    if set(wanted) == current:
        return
    # A claim naming an admin-defined group does not make its holder a member: an admin's
    # hand-made group is not the provider's to fill.
    admins = group_repo.admin_group_names(conn, wanted)
    wanted = [name for name in wanted if name not in admins]
    if set(wanted) != current:
        group_repo.replace_provider_memberships(conn, user_id, wanted)


def _usable(name: str) -> bool:
    return 1 <= len(name) <= 255 and "\x00" not in name


def create(conn: Conn, name: str, source: str = "admin") -> Row:
    """A group an admin defines (409 when the name is taken, by any group). An `admin` group's
    members are the ones admins add; a `provider` group is also filled by the tokens whose
    groups claim names it (made ahead, so that collections can be shared with it before its
    first member signs in)."""
    name = checked_name(name)
    with conn.transaction():
        return group_repo.insert_group(conn, name=name, source=source)


def checked_name(name: str) -> str:
    """The name, without surrounding white space, if it is a valid group name; else 422."""
    try:
        return _GROUP_NAME.validate_python(name)
    except pydantic.ValidationError as exc:
        raise ValidationFailed.first_of(exc, "name", f"invalid group name {name!r}") from None


def list_page(conn: Conn, *, limit: int, offset: int) -> tuple[list[Row], int]:
    return group_repo.list_groups(conn, limit=limit, offset=offset)


def get(conn: Conn, group_id: int) -> Row:
    row = group_repo.get_group(conn, group_id)
    if row is None:
        raise NotFound(f"no group {group_id}")
    return row


def delete(conn: Conn, group_id: int) -> None:
    """An admin deletes a group, its memberships and the shares naming it. A provider's group
    comes back, empty of shares, with the next token that names it."""
    with conn.transaction():
        if not group_repo.delete_group(conn, group_id):
            raise NotFound(f"no group {group_id}")


def members_page(conn: Conn, group_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    get(conn, group_id)
    return group_repo.list_members(conn, group_id, limit=limit, offset=offset)


def add_member(conn: Conn, group_id: int, user_id: int) -> Row:
    """An admin-made membership (409 when the user has one already)."""
    with conn.transaction():
        get(conn, group_id)
        user = user_repo.get_user(conn, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        member = group_repo.insert_member(conn, group_id=group_id, user_id=user_id, source="admin")
    return {**member, "name": user["name"]}


def remove_member(conn: Conn, group_id: int, user_id: int) -> None:
    """Ends the admin-made membership; the provider's come and go with the user's tokens."""
    with conn.transaction():
        get(conn, group_id)
        if not group_repo.delete_member(conn, group_id=group_id, user_id=user_id, source="admin"):
            raise NotFound(f"user {user_id} has no admin-made membership of group {group_id}")
