"""Connecting Atlassian (OAuth 2.0 three-legged, PKCE): the consent's `state`, signed, expiring,
single-use and bound to its user; the code exchanged into the connector vault; the sites the
stored token reaches.

The state is `<payload>.<signature>`: the payload names the user, the provider, a random nonce
and the expiry; the signature is an HMAC under a key derived from POSTRAG_SECRET_KEY. Only a
hash of the nonce is stored (connector_consents), with the PKCE verifier and redirect URI; the
callback deletes it, so a state completes once. The callback may come without any credential
(a browser redirect after an API client asked for the URL): the signature is what names the
user, and the callback then acts as that user. A caller who is signed in as someone else is
refused. The new token's Atlassian account (its user identity, `read:me`) is linked to the user
(app/services/user_accounts.py), so that sources' permissions naming it reach them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.db import scope
from app.errors import AppError, BadRequest, Forbidden, ServiceUnavailable
from app.providers import atlassian, oauth
from app.providers.oidc_login import error_code
from app.providers.source_http import SourceHttp
from app.repositories import Conn
from app.repositories import connector_consents as consent_repo
from app.services import connectors, user_accounts
from app.services.secrets import Keyring
from app.services.tokens import Principal
from app.settings import OAuthClient, Settings

log = logging.getLogger(__name__)

PROVIDER = "atlassian"
CONSENT_LIFETIME = timedelta(minutes=10)
TIMEOUT_S = 15.0
_PURPOSE = "connector consent state"
_MAX_STATE = 1000


@dataclass(frozen=True)
class ConsentState:
    user_id: int
    nonce: str
    expires: int  # Unix seconds


@dataclass(frozen=True)
class ConsentReturn:
    """What came back to the callback: its query parameters and the browser's consent cookie."""

    state: str | None
    code: str | None
    error: str | None
    browser_secret: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signature(ring: Keyring, payload: str) -> str:
    return _b64(ring.sign(_PURPOSE, f"{PROVIDER}:{payload}".encode()))


def sign_state(ring: Keyring, state: ConsentState) -> str:
    body = json.dumps([state.user_id, state.nonce, state.expires], separators=(",", ":"))
    payload = _b64(body.encode())
    return f"{payload}.{_signature(ring, payload)}"


def read_state(ring: Keyring, text: str) -> ConsentState:
    """The state postrag signed, or 400 (tampered, another key, expired)."""
    payload, _, signature = text.partition(".")
    if len(text) > _MAX_STATE or not hmac.compare_digest(
        signature.encode(), _signature(ring, payload).encode()
    ):
        raise BadRequest("the consent's state is not one postrag signed: connect again")
    user_id, nonce, expires = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    if expires <= time.time():
        raise BadRequest("this consent has expired (it lasts 10 minutes): connect again")
    return ConsentState(int(user_id), str(nonce), int(expires))


def _client(settings: Settings) -> OAuthClient:
    for client in settings.oauth_clients:
        if client.provider == PROVIDER:
            return client
    raise ServiceUnavailable(
        "this server is not set up to connect Atlassian: set POSTRAG_OAUTH_CLIENT_ID__ATLASSIAN"
        " and POSTRAG_OAUTH_CLIENT_SECRET__ATLASSIAN"
    )


def _digest(nonce: str) -> bytes:
    return hashlib.sha256(nonce.encode()).digest()  # 256 random bits: a fast hash is enough


def begin(
    conn: Conn, who: Principal, settings: Settings, keyring: Keyring | None, redirect_uri: str
) -> tuple[str, str]:
    """(the URL where `who` consents, the secret the browser's cookie must bring back to the
    callback); the consent is stored for CONSENT_LIFETIME. The cookie binds the consent to the
    browser that started it: a link to it opened by someone else cannot store their Atlassian
    account for `who`."""
    client, ring = _client(settings), connectors.require_keyring(keyring)
    if "write" not in who.scopes:
        raise Forbidden("connecting Atlassian stores a token: this token lacks the 'write' scope")
    nonce, browser = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = int(time.time() + CONSENT_LIFETIME.total_seconds())
    state = sign_state(ring, ConsentState(who.user_id, nonce, expires))
    url, verifier = atlassian.consent_url(
        settings.atlassian_authorize_url,
        client.client_id,
        settings.atlassian_scopes,
        redirect_uri,
        state,
    )
    with conn.transaction():
        consent_repo.delete_expired(conn, who.user_id)
        consent_repo.insert(
            conn,
            nonce_hash=_digest(nonce),
            browser_hash=_digest(browser),
            user_id=who.user_id,
            provider=PROVIDER,
            code_verifier=verifier,
            redirect_uri=redirect_uri,
            lifetime=CONSENT_LIFETIME,
        )
    return url, browser


def complete(
    conn: Conn,
    caller: Principal | None,
    settings: Settings,
    keyring: Keyring | None,
    back: ConsentReturn,
) -> dict[str, Any]:
    """Exchanges the code for tokens, stored for the state's user; the connector's public view.
    The state is used up whatever happens next; any failure stores nothing."""
    client, ring = _client(settings), connectors.require_keyring(keyring)
    if not back.state:
        raise BadRequest("the consent came back without its state: connect again")
    state = read_state(ring, back.state)
    if caller is not None and caller.user_id != state.user_id:
        raise Forbidden("this consent was started by another user")
    with scope.acting_as(conn, state.user_id):  # the signature vouches for the user
        with conn.transaction():
            pending = consent_repo.take(conn, _digest(state.nonce), state.user_id, PROVIDER)
        if pending is None or not pending["live"]:
            raise BadRequest("this consent is unknown, already used or expired: connect again")
        browser = _digest(back.browser_secret or "")
        if not back.browser_secret or not hmac.compare_digest(
            bytes(pending["browser_hash"]), browser
        ):
            raise BadRequest("this consent was started in another browser: connect again")
        if back.error is not None:
            raise BadRequest(f"Atlassian did not grant access ({error_code(back.error)})")
        if not back.code:
            raise BadRequest("Atlassian's answer holds no code: connect again")
        grant = oauth.code_grant(
            client, back.code, pending["code_verifier"], pending["redirect_uri"], TIMEOUT_S
        )
        stored = connectors.store_for(conn, state.user_id, PROVIDER, grant, ring)
    account = _link_account(conn, state.user_id, str(grant.get("access_token", "")), settings)
    return {**stored, "account_id": account}


def _link_account(conn: Conn, user_id: int, token: str, settings: Settings) -> str | None:
    """Link the token's Atlassian account to the user, so that the sources' permissions naming
    it reach them; None (logged) when Atlassian does not say whose it is (no `read:me` scope):
    the connection stands, and an admin may link the account."""
    http = SourceHttp("Atlassian", lambda _force: token, timeout_s=TIMEOUT_S, attempts=1)
    try:
        account = atlassian.me(http, settings.atlassian_me_url).account_id
    except AppError as exc:
        log.warning("user %d connected Atlassian, but its account is unknown: %s", user_id, exc)
        return None
    finally:
        http.close()
    user_accounts.link(conn, user_id, PROVIDER, account, by="consent")
    return account


def sites(
    conn: Conn, who: Principal, settings: Settings, keyring: Keyring | None
) -> list[dict[str, Any]]:
    """The sites `who`'s Atlassian token reaches (refreshed first when it expires, and once
    more when Atlassian answers 401)."""

    def token(force: bool) -> str:
        value, _ = connectors.access_token(
            conn, who.user_id, PROVIDER, keyring, settings, force=force
        )
        return value

    http = SourceHttp("Atlassian", token, timeout_s=TIMEOUT_S, max_wait_s=5.0, attempts=2)
    try:
        found = atlassian.accessible_resources(http, settings.atlassian_resources_url)
    finally:
        http.close()
    return [site.model_dump() for site in found]
