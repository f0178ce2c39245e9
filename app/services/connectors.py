"""Connector tokens: store a user's third-party OAuth tokens encrypted, refresh them, rotate keys.

No function here returns a token to a caller outside postrag: the API sees provider, scopes and
expiry only. A refresh holds a per-user advisory lock, so two requests that both find the token
expired spend a rotating refresh token once: the second waits, then finds the fresh token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from app.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from app.providers import oauth
from app.repositories import Conn, Row
from app.repositories import connectors as connector_repo
from app.repositories import mcp_servers as mcp_server_repo
from app.services.secrets import Keyring
from app.services.tokens import Principal
from app.settings import Settings, SettingsError

PROVIDER = re.compile(r"[a-z][a-z0-9_-]{0,39}")
# The OpenID provider's tokens of a user, kept from their web sign-in (app/services/web_sessions.py)
# for MCP servers that act with the user's identity; nobody stores them through the API.
IDENTITY = "oidc"
EXPIRY_SKEW = timedelta(seconds=60)  # refresh a little early: the token must last the call
REFRESH_TIMEOUT_S = 15.0


def check_provider(provider: str) -> str:
    if not PROVIDER.fullmatch(provider):
        msg = "a provider is 1-40 lowercase letters, digits, _ or -, starting with a letter"
        raise ValidationFailed.on_field("provider", msg, type="string_pattern_mismatch")
    return provider


def public(row: Row) -> dict[str, Any]:
    expires_at = row["expires_at"]
    return {
        "provider": row["provider"],
        "connected": True,
        "scopes": list(row["scopes"]),
        "expires_at": expires_at,
        "expired": expires_at is not None and expires_at <= datetime.now(UTC),
        "updated_at": row["updated_at"],
    }


def _where(owner_id: int, provider: str, field: str) -> str:
    return f"connector:{owner_id}:{provider}:{field}"


def require_keyring(keyring: Keyring | None) -> Keyring:
    if keyring is None:
        raise ServiceUnavailable("this server has no POSTRAG_SECRET_KEY to encrypt tokens with")
    return keyring


def list_own(conn: Conn, who: Principal) -> list[dict[str, Any]]:
    return [public(r) for r in connector_repo.list_owned(conn, who.user_id)]


def _store(
    conn: Conn,
    owner_id: int,
    provider: str,
    grant: dict[str, Any],
    keyring: Keyring,
    *,
    keep_refresh: bytes | None = None,
    keep_scopes: list[str] | None = None,
) -> Row:
    refresh = grant.get("refresh_token")
    expires_in = grant.get("expires_in")
    scope = grant.get("scope")
    return connector_repo.upsert(
        conn,
        owner_id,
        provider,
        access_token=keyring.encrypt(grant["access_token"], _where(owner_id, provider, "access")),
        refresh_token=keyring.encrypt(refresh, _where(owner_id, provider, "refresh"))
        if refresh
        else keep_refresh,
        key_id=keyring.current.id,
        scopes=scope.split() if isinstance(scope, str) else (keep_scopes or []),
        expires_at=datetime.now(UTC) + timedelta(seconds=int(expires_in))
        if expires_in is not None
        else None,
    )


def store(
    conn: Conn, who: Principal, provider: str, grant: dict[str, Any], keyring: Keyring | None
) -> dict[str, Any]:
    """Connect (or reconnect) `provider` with an OAuth token response."""
    if provider == IDENTITY:
        msg = f"{IDENTITY} tokens come from signing in on the web page, not from the API"
        raise ValidationFailed.on_field("provider", msg, type="reserved")
    return store_for(conn, who.user_id, provider, grant, keyring)


def store_for(
    conn: Conn, owner_id: int, provider: str, grant: dict[str, Any], keyring: Keyring | None
) -> dict[str, Any]:
    """Connect (or reconnect) `provider` for `owner_id` (acting as them) with a token response."""
    ring = require_keyring(keyring)
    with conn.transaction():
        return public(_store(conn, owner_id, check_provider(provider), grant, ring))


def delete(conn: Conn, who: Principal, provider: str) -> None:
    with conn.transaction():
        if not connector_repo.delete(conn, who.user_id, check_provider(provider)):
            raise NotFound(f"{provider} is not connected")


def _oauth_client(settings: Settings, provider: str) -> Any:
    for client in settings.oauth_clients:
        if client.provider == provider:
            return client
    raise Conflict(
        f"this server cannot refresh {provider} tokens: it has no"
        f" POSTRAG_OAUTH_TOKEN_URL__{provider.upper()}"
    )


def access_token(
    conn: Conn,
    owner_id: int,
    provider: str,
    keyring: Keyring | None,
    settings: Settings,
    *,
    force: bool = False,
    refresher: Callable[[str], dict[str, Any]] | None = None,
) -> tuple[str, Row]:
    """A valid access token for `provider` (refreshed first when it expires within a minute,
    by `refresher` or else the provider's POSTRAG_OAUTH_* client)."""
    ring = require_keyring(keyring)
    with conn.transaction():
        connector_repo.lock_owner(conn, owner_id)  # one refresh per user at a time
        row = connector_repo.get_secret(conn, owner_id, check_provider(provider))
        if row is None:
            raise NotFound(f"{provider} is not connected")
        due = row["expires_at"] is not None and row["expires_at"] - EXPIRY_SKEW <= datetime.now(UTC)
        if not (force or due):
            where = _where(owner_id, provider, "access")
            return ring.decrypt(row["access_token"], row["key_id"], where), row
        if row["refresh_token"] is None:
            again = "sign in again on the web page" if provider == IDENTITY else "connect again"
            raise Conflict(f"{provider} gave no refresh token; {again}")
        refresh = ring.decrypt(
            row["refresh_token"], row["key_id"], _where(owner_id, provider, "refresh")
        )
        if refresher is not None:
            grant = refresher(refresh)
        else:
            client = _oauth_client(settings, provider)
            grant = oauth.refresh_grant(client, refresh, REFRESH_TIMEOUT_S)
        kept = (
            row["refresh_token"]
            if row["key_id"] == ring.current.id
            else ring.encrypt(refresh, _where(owner_id, provider, "refresh"))
        )
        stored = _store(
            conn,
            owner_id,
            provider,
            grant,
            ring,
            keep_refresh=kept,
            keep_scopes=list(row["scopes"]),
        )
        return grant["access_token"], stored


def refresh(
    conn: Conn,
    who: Principal,
    provider: str,
    keyring: Keyring | None,
    settings: Settings,
    refresher: Callable[[str], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Refresh now, whatever the expiry; the public view."""
    _, row = access_token(
        conn, who.user_id, provider, keyring, settings, force=True, refresher=refresher
    )
    return public(row)


def check_keys(conn: Conn, settings: Settings) -> None:
    """At start: refuse a missing or weak key, or a missing old key, when tokens (or MCP
    servers' headers) are stored."""
    counts = connector_repo.key_ids(conn)
    for key_id, n in mcp_server_repo.key_ids(conn).items():  # MCP servers' static headers
        counts[key_id] = counts.get(key_id, 0) + n
    if not counts:
        return
    ring = Keyring.from_settings(settings)  # SettingsError when missing or weak
    unknown = sorted(k for k in counts if not ring.knows(k))
    if unknown:
        raise SettingsError(
            f"connector tokens or MCP server headers are encrypted with key(s)"
            f" {', '.join(unknown)} that neither"
            " POSTRAG_SECRET_KEY nor POSTRAG_OLD_SECRET_KEYS gives"
        )


def rotate(conn: Conn, keyring: Keyring) -> int:
    """Re-encrypt every token under the current key; how many rows changed."""
    with conn.transaction():
        rows = connector_repo.all_secret(conn, not_key=keyring.current.id)
        for row in rows:
            owner, provider = row["owner_id"], row["provider"]
            where = _where(owner, provider, "access")
            access = keyring.encrypt(
                keyring.decrypt(row["access_token"], row["key_id"], where), where
            )
            refresh = row["refresh_token"]
            if refresh is not None:
                where = _where(owner, provider, "refresh")
                refresh = keyring.encrypt(keyring.decrypt(refresh, row["key_id"], where), where)
            connector_repo.reencrypt(conn, row["id"], access, refresh, keyring.current.id)
    return len(rows)
