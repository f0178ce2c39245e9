"""Users: creating them (with preferences and a first token), listing, the first admin."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import psycopg
import pydantic

from app.db import scope
from app.errors import Conflict, NotFound, ValidationFailed
from app.providers.oidc import InvalidToken, claim, claim_strings
from app.repositories import Conn, Row, locks, returned
from app.repositories import users as user_repo
from app.services import groups, tokens
from app.settings import Settings

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


def from_identity(conn: Conn, issuer: str, claims: Mapping[str, Any], settings: Settings) -> Row:
    """The user a provider's verified token names (`iss`, `sub`): created at first sight, given
    the token's name, email, groups and (when POSTRAG_OIDC_ADMIN_CLAIM is set) role at every
    later one.

    A name another user has gets a suffix from the identity (`alice-3f9c1a`). Concurrent first
    requests make one user: the identity is the upsert's conflict target, and when a name is
    found taken the identity is looked up again first (it may be this user's, just committed).
    """
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 1 <= len(subject) <= 255 or "\x00" in subject:
        raise InvalidToken("its subject (sub) is not usable")
    wanted = _name_from(claims, settings.oidc_username_claims, subject)
    names = (wanted, _suffixed(wanted, issuer, subject))
    email = _email_from(claims)
    role = _role_from(claims, settings.oidc_admin_claim, settings.oidc_admin_value)
    with conn.transaction():
        user = _provision(conn, names, issuer=issuer, subject=subject, email=email, role=role)
        if user.get("inserted"):
            with scope.acting_as(conn, user["id"]):
                user_repo.insert_default_preferences(conn, user["id"])
        groups.sync_from_claim(conn, user["id"], claims, settings.oidc_groups_claim)
    return user


def _provision(conn: Conn, names: tuple[str, str], **identity: Any) -> Row:
    """The upsert of from_identity with the first of `names` that is free (or already its own)."""
    tried: set[str] = set()
    for _ in range(len(names) + 1):
        current = user_repo.get_by_identity(conn, identity["issuer"], identity["subject"])
        name = current["name"] if current and current["name"] in names else None
        if current and name and _unchanged(current, identity):
            return current  # most requests: no write, no row lock
        name = name or next((n for n in names if n not in tried), None)
        if name is None:
            break
        tried.add(name)
        try:
            with conn.transaction():  # a savepoint: a taken name leaves the rest usable
                user = user_repo.upsert_identity(conn, name=name, **identity)
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name != "users_name_key":
                raise
            continue
        if user is None:  # nothing changed
            return returned(
                user_repo.get_by_identity(conn, identity["issuer"], identity["subject"])
            )
        return user
    raise Conflict(f"the user names {' and '.join(map(repr, names))} are taken")


def _unchanged(current: Row, identity: Mapping[str, Any]) -> bool:
    return current["email"] == identity["email"] and identity["role"] in (None, current["role"])


def _name_from(claims: Mapping[str, Any], paths: tuple[str, ...], subject: str) -> str:
    """The first claim at `paths` that is a non-empty string (else the subject), made a valid
    user name: characters a name may not hold become `_`, at most 100 of them."""
    found = (claim(claims, path) for path in paths)
    text = next((v.strip() for v in found if isinstance(v, str) and v.strip()), subject)
    return re.sub(r"[^\w.@-]", "_", text)[:100]


def _suffixed(name: str, issuer: str, subject: str) -> str:
    """`name` with a suffix only this identity has, for a name another user has already."""
    digest = hashlib.sha256(f"{issuer}\x00{subject}".encode()).hexdigest()[:6]
    return f"{name[:93]}-{digest}"


def _email_from(claims: Mapping[str, Any]) -> str | None:
    email = claims.get("email")
    if isinstance(email, str) and 1 <= len(email) <= 320 and "\x00" not in email:
        return email
    return None


def _role_from(claims: Mapping[str, Any], path: str, admin_value: str) -> str | None:
    """admin or user as the token's roles say, or None (keep the role) when no claim is set."""
    if not path:
        return None
    return "admin" if admin_value in claim_strings(claims, path) else "user"


def checked_name(name: str) -> str:
    """The name, without surrounding white space, if it is a valid user name; else 422."""
    try:
        return _USER_NAME.validate_python(name)
    except pydantic.ValidationError as exc:
        raise ValidationFailed.first_of(exc, "name", f"invalid name {name!r}") from None


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
