"""API tokens: issuing, authenticating, listing and revoking them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from app.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from app.repositories import Conn, Row
from app.repositories import tokens as token_repo

TOKEN_MARK = "prg"
SCOPES = ("read", "write")
# Far enough for "never" in practice, near enough that every time zone stays a valid timestamp.
LATEST_EXPIRY = datetime(9000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user behind a valid token, and what that token may do."""

    user_id: int
    name: str
    role: str
    token_id: int | None  # None for a provider's JWT
    scopes: tuple[str, ...]
    token_expires_at: datetime | None = None
    session_id: int | None = None  # a web session's (app/services/web_sessions.py)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _hash(token: str) -> bytes:
    # The secret has 256 bits of entropy, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(token.encode()).digest()


def issue(
    conn: Conn,
    *,
    user_id: int,
    name: str,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
    parent_id: int | None = None,
) -> tuple[Row, str]:
    """Store a new token for the user (inside the caller's transaction); return it and its secret.

    `parent_id` is the token that made it: revoking that one revokes this one too.

    The token reads `prg_<prefix>_<secret>`: the prefix is stored in clear for lookup and shown
    in listings, so a leaked token can be recognised; only a hash of the whole token is stored.
    """
    prefix = secrets.token_hex(6)
    token = f"{TOKEN_MARK}_{prefix}_{secrets.token_urlsafe(32)}"
    row = token_repo.insert_token(
        conn,
        user_id=user_id,
        name=name,
        prefix=prefix,
        secret_hash=_hash(token),
        scopes=sorted(set(scopes or SCOPES)),
        expires_at=expires_at,
        parent_id=parent_id,
    )
    return row, token


def authenticate(conn: Conn, authorization: str | None) -> Principal:
    """The principal behind an `Authorization: Bearer` header with an API token, or Unauthorized."""
    return authenticate_token(conn, bearer_of(authorization))


def bearer_of(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or Unauthorized."""
    if not authorization:
        raise Unauthorized("missing Authorization header: send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    return token


def authenticate_token(conn: Conn, token: str) -> Principal:
    """The principal behind an API token, or Unauthorized."""
    mark, _, rest = token.partition("_")
    prefix, _, secret = rest.partition("_")
    if mark != TOKEN_MARK or not prefix or not secret:
        raise Unauthorized("malformed token: postrag tokens look like prg_<prefix>_<secret>")
    row = token_repo.find_by_prefix(conn, prefix)
    if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), _hash(token)):
        raise Unauthorized("invalid token")
    if not row["active"]:
        raise Unauthorized("token is revoked or expired")
    if token_repo.stale_last_used(row["last_used_at"]):  # else no write, no round trip
        with conn.transaction():
            token_repo.touch_last_used(conn, row["id"])
    return Principal(
        user_id=row["user_id"],
        name=row["user_name"],
        role=row["user_role"],
        token_id=row["id"],
        scopes=tuple(row["scopes"]),
        token_expires_at=row["expires_at"],
    )


def create(
    conn: Conn,
    principal: Principal,
    *,
    name: str,
    scopes: list[str] | None,
    expires_at: datetime | None,
) -> tuple[Row, str]:
    """A new token for the caller, never with more scopes or a later expiry than the caller's,
    and revoked with it."""
    wanted = list(scopes) if scopes else list(principal.scopes)
    extra = sorted(set(wanted) - set(principal.scopes))
    if extra:
        raise Forbidden(f"this token cannot grant scopes it does not have: {', '.join(extra)}")
    expires_at = _checked_expiry(expires_at, principal.token_expires_at)
    with conn.transaction():
        # A provider's JWT is no row to revoke with: its tokens live until revoked themselves.
        made_by = principal.token_id
        if made_by is not None and not token_repo.lock_active(conn, made_by):
            raise Unauthorized("token is revoked or expired")  # by a request meanwhile
        return issue(
            conn,
            user_id=principal.user_id,
            name=name,
            scopes=wanted,
            expires_at=expires_at,
            parent_id=made_by,
        )


def list_own(conn: Conn, principal: Principal, *, limit: int, offset: int) -> tuple[list[Row], int]:
    return token_repo.list_tokens(conn, principal.user_id, limit=limit, offset=offset)


def get_own(conn: Conn, principal: Principal, token_id: int) -> Row:
    row = token_repo.get_token(conn, principal.user_id, token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    return row


def revoke_own(conn: Conn, principal: Principal, token_id: int) -> None:
    """Revoke one of the caller's tokens and every token made with it, generation by generation.

    Each generation's statement sees the tokens that the previous one's lock waited for (a token
    is made while its maker is locked FOR SHARE), so none escapes.
    """
    with conn.transaction():
        if token_repo.revoke_token(conn, principal.user_id, token_id) is None:
            raise NotFound(f"no token {token_id}")
        while token_repo.revoke_children_of_revoked(conn, principal.user_id):
            pass


def _checked_expiry(wanted: datetime | None, caller_expiry: datetime | None) -> datetime | None:
    def invalid(msg: str) -> ValidationFailed:
        return ValidationFailed.on_field(
            "expires_at", msg, type="value_error", detail=f"expires_at {msg}"
        )

    if wanted is None:
        return caller_expiry  # a token never outlives the token that made it
    if wanted <= datetime.now(UTC):
        raise invalid("must be in the future")
    if wanted >= LATEST_EXPIRY:
        raise invalid(f"must be before {LATEST_EXPIRY.date().isoformat()}")
    if caller_expiry is not None and wanted > caller_expiry:
        raise invalid(
            f"must not be later than this token's own expiry ({caller_expiry.isoformat()})"
        )
    return wanted
