"""Users: creating them (with preferences and a first token), listing, the first admin."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import pydantic

from app.db import scope
from app.errors import NotFound, ValidationFailed
from app.repositories import Conn, Row, locks
from app.repositories import users as user_repo
from app.services import tokens

log = logging.getLogger(__name__)

# What a user's name may be, for the API's request body and the service alike.
UserName = Annotated[
    str,
    pydantic.StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[\w.@-]+$"
    ),
]
_USER_NAME: pydantic.TypeAdapter[str] = pydantic.TypeAdapter(UserName)

# Serialises the first-admin check across processes starting at once.
BOOTSTRAP_LOCK_KEY = 0x706F737472616701
ADMIN_TOKEN_FILE = "admin-token"


def _create(conn: Conn, *, name: str, role: str) -> tuple[Row, str]:
    user = user_repo.insert_user(conn, name=name, role=role)
    with scope.acting_as(conn, user["id"]):  # the new user's own rows, written as that user
        user_repo.insert_default_preferences(conn, user["id"])
        _, token = tokens.issue(conn, user_id=user["id"], name="initial")
    return user, token


def create(conn: Conn, *, name: str, role: str) -> tuple[Row, str]:
    """A new user with default preferences and a first token (the secret is returned once)."""
    name = checked_name(name)
    with conn.transaction():
        return _create(conn, name=name, role=role)


def checked_name(name: str) -> str:
    """The name, without surrounding white space, if it is a valid user name; else 422."""
    try:
        return _USER_NAME.validate_python(name)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise ValidationFailed.on_field(
            "name",
            first["msg"],
            type=first["type"],
            detail=f"invalid name {name!r}: {first['msg']}",
        ) from None


def acting_principal(conn: Conn, name: str) -> tokens.Principal:
    """The named user as a principal with read and write scopes, for commands acting for them."""
    user = user_repo.get_by_name(conn, name)
    if user is None:
        raise NotFound(f"no user {name!r}")
    return tokens.Principal(user["id"], user["name"], user["role"], 0, ("read", "write"))


def list_page(conn: Conn, *, limit: int, offset: int) -> tuple[list[Row], int]:
    return user_repo.list_users(conn, limit=limit, offset=offset)


def get(conn: Conn, user_id: int) -> Row:
    row = user_repo.get_user(conn, user_id)
    if row is None:
        raise NotFound(f"no user {user_id}")
    return row


def ensure_admin(conn: Conn, data_dir: Path) -> str | None:
    """On first start (no users at all) create `admin` and write its token to the data dir.

    Returns the new token, or None when users already exist. The file is written inside the
    transaction, so a failed write leaves no admin behind and the next start tries again.
    """
    with conn.transaction():
        locks.advisory_xact_lock(conn, BOOTSTRAP_LOCK_KEY)
        if user_repo.count_users(conn) > 0:
            return None
        user, token = _create(conn, name="admin", role="admin")
        path = write_secret_file(data_dir / ADMIN_TOKEN_FILE, token)
    log.warning(
        "created the first user %r (admin); its API token is shown once, in %s",
        user["name"],
        path,
    )
    return token


def write_secret_file(path: Path, content: str) -> Path:
    """Write `content` to a file only the current user can read (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
