"""Collections: create, list, read, change and delete. Others read those shared with everyone or
with them (app/services/shares.py); editors also change their documents."""

from __future__ import annotations

from typing import Any

from app.errors import Forbidden, NotFound, ValidationFailed
from app.repositories import Conn, Row
from app.repositories import collections as collection_repo
from app.services.tokens import Principal

NAME_MAX_LENGTH = 200  # as the collections_name_check constraint has it
# Other names for V2_25's `cjk` configuration: one tokenisation (bigrams) serves all three.
LANGUAGE_ALIASES = {"chinese": "cjk", "japanese": "cjk", "korean": "cjk"}


def _check_name(name: str) -> None:
    # The API's models check this too; the CLI's names come here unchecked.
    if not 1 <= len(name) <= NAME_MAX_LENGTH:
        msg = f"a collection name has 1 to {NAME_MAX_LENGTH} characters, not {len(name)}"
        kind = "string_too_long" if name else "string_too_short"
        raise ValidationFailed.on_field("name", msg, type=kind)


def _language(conn: Conn, language: str) -> str:
    """The text search configuration a language names (an alias resolved), if there is one."""
    config = LANGUAGE_ALIASES.get(language, language)
    if not collection_repo.language_exists(conn, config):
        raise ValidationFailed.on_field(
            "language",
            "not a text search configuration",
            type="value_error",
            detail=f"unknown text-search language {language!r}",
        )
    return config


def create(
    conn: Conn, who: Principal, *, name: str, description: str, language: str, is_shared: bool
) -> Row:
    _check_name(name)
    config = _language(conn, language)
    with conn.transaction():
        return collection_repo.insert(
            conn,
            owner_id=who.user_id,
            name=name,
            description=description,
            language=config,
            is_shared=is_shared,
        )


def get_or_create(conn: Conn, user_id: int, name: str) -> Row:
    """For the CLI: the user's collection with this name, created if missing."""
    _check_name(name)
    with conn.transaction():
        existing = collection_repo.get_by_name(conn, user_id, name)
        if existing is not None:
            return existing
        return collection_repo.insert(
            conn, owner_id=user_id, name=name, description="", language="english", is_shared=False
        )


def get_readable(conn: Conn, who: Principal, collection_id: int) -> Row:
    row = collection_repo.get_readable(conn, collection_id, who.user_id)
    if row is None:
        raise NotFound(f"no collection {collection_id}")
    return row


def get_owned(conn: Conn, who: Principal, collection_id: int) -> Row:
    row = get_readable(conn, who, collection_id)
    if row["role"] != "owner":
        raise Forbidden(f"only the owner of collection {collection_id} may do this")
    return row


def get_writable(conn: Conn, who: Principal, collection_id: int) -> Row:
    """The collection if the caller may add, reindex and delete its documents (owner, editor)."""
    row = get_readable(conn, who, collection_id)
    if row["role"] == "reader":
        raise Forbidden(f"collection {collection_id} is shared with you read-only")
    return row


def list_page(conn: Conn, who: Principal, *, limit: int, offset: int) -> tuple[list[Row], int]:
    return collection_repo.list_readable(conn, who.user_id, limit=limit, offset=offset)


def update(conn: Conn, who: Principal, collection_id: int, changes: dict[str, Any]) -> Row:
    get_owned(conn, who, collection_id)
    if "language" in changes:
        changes = {**changes, "language": _language(conn, changes["language"])}
    if not changes:
        return get_owned(conn, who, collection_id)
    with conn.transaction():
        row = collection_repo.update(conn, collection_id, who.user_id, changes)
    if row is None:
        raise NotFound(f"no collection {collection_id}")
    return row


def delete(conn: Conn, who: Principal, collection_id: int) -> None:
    get_owned(conn, who, collection_id)
    with conn.transaction():
        collection_repo.delete(conn, collection_id, who.user_id)
