"""The accounts postrag users have at a source, so that a source's permissions that name
accounts (Atlassian account ids) reach postrag users: linked by the Atlassian consent (the
token says whose account it is) or by an admin (V2_15)."""

from __future__ import annotations

from collections.abc import Sequence

from app.db import scope
from app.errors import NotFound
from app.repositories import Conn, Row
from app.repositories import user_accounts as account_repo
from app.services import users

PROVIDERS = ("atlassian",)


def _provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise NotFound(f"postrag links no {provider!r} accounts (it links: {', '.join(PROVIDERS)})")
    return provider


def link(conn: Conn, user_id: int, provider: str, account_id: str, *, by: str) -> Row:
    """Link the account to the user (replacing the user's other account there, and the
    account's link to anyone else). Callers check who may: the consent's verified token, or
    an admin."""
    _provider(provider)
    with scope.acting_as_owner(conn), conn.transaction():
        return account_repo.link(conn, user_id, provider, account_id, by)


def link_by_admin(conn: Conn, user_id: int, provider: str, account_id: str) -> Row:
    _provider(provider)
    users.get(conn, user_id)  # 404 for no such user
    return link(conn, user_id, provider, account_id, by="admin")


def unlink_by_admin(conn: Conn, user_id: int, provider: str) -> None:
    _provider(provider)
    users.get(conn, user_id)
    with scope.acting_as_owner(conn), conn.transaction():
        if not account_repo.unlink(conn, user_id, provider):
            raise NotFound(f"user {user_id} has no linked {provider} account")


def of_user(conn: Conn, user_id: int) -> list[Row]:
    """The user's links, as the caller may see them (their own; an admin's: anyone's)."""
    users.get(conn, user_id)
    return account_repo.of_user(conn, user_id)


def user_ids(conn: Conn, provider: str, account_ids: Sequence[str]) -> list[int]:
    """The postrag users linked to any of these accounts."""
    if not account_ids:
        return []
    with scope.acting_as_owner(conn):  # other users' links are not the caller's to read
        return account_repo.user_ids(conn, provider, account_ids)
