"""The web page's sign-in with the OpenID provider: pending sign-ins bound to the browser that
started them, sessions behind a cookie (only a hash of its secret is stored), their CSRF tokens,
and sign-out.

Sign-in and session lookup run before anyone is known, as the tables' owner (the caller sets
that up, as for API tokens); sign-out runs as the session's user. A sign-in keeps the user's
tokens at the provider in the vault (connector `oidc`), so that MCP servers acting with the
user's identity (token exchange) work from the web page too; signing out of the last session
deletes them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from app.errors import BadRequest, Forbidden, Unauthorized
from app.providers.oidc_login import OIDCLogin, error_code
from app.repositories import Conn, Row
from app.repositories import connectors as connector_repo
from app.repositories import web_sessions as session_repo
from app.services import connectors, tokens, users
from app.services.secrets import Keyring
from app.settings import Settings

log = logging.getLogger(__name__)

LOGIN_LIFETIME = timedelta(minutes=10)  # from the redirect to the provider to its return
_CSRF = b"postrag csrf v1"


@dataclass(frozen=True)
class Started:
    """A sign-in under way: where to send the browser, and the secret its cookie must hold."""

    url: str
    browser_secret: str


@dataclass(frozen=True)
class Callback:
    """What came back to /auth/callback: query parameters and the browser's binding cookie."""

    state: str | None
    code: str | None
    error: str | None
    browser_secret: str | None


def _digest(secret: str) -> bytes:
    # 256 random bits: a fast hash is as safe as a slow one (as for API tokens).
    return hashlib.sha256(secret.encode()).digest()


def begin(conn: Conn, login: OIDCLogin, redirect_uri: str) -> Started:
    """A new pending sign-in returning to `redirect_uri`, stored for LOGIN_LIFETIME."""
    request = login.authorization_request(redirect_uri)
    browser = secrets.token_urlsafe(32)
    with conn.transaction():
        session_repo.delete_expired(conn)
        session_repo.insert_login(
            conn,
            state_hash=_digest(request.state),
            browser_hash=_digest(browser),
            nonce=request.nonce,
            code_verifier=request.code_verifier,
            redirect_uri=redirect_uri,
            lifetime=LOGIN_LIFETIME,
        )
    return Started(request.url, browser)


def complete(
    conn: Conn, login: OIDCLogin, settings: Settings, back: Callback, keyring: Keyring | None
) -> tuple[Row, str]:
    """The user the provider vouches for (provisioned as a JWT bearer's is) and the secret of
    their new session. The state is used up whatever happens next; any failure makes no
    session. The user's tokens at the provider are kept in the vault (with `keyring`), for MCP
    servers that act with their identity (token exchange), until their last session ends."""
    if not back.state:
        raise BadRequest("the sign-in came back without its state: sign in again")
    with conn.transaction():
        pending = session_repo.take_login(conn, _digest(back.state))
    if pending is None or not pending["live"]:
        raise BadRequest("this sign-in is unknown, already used or expired: sign in again")
    browser = _digest(back.browser_secret or "")
    if not back.browser_secret or not hmac.compare_digest(bytes(pending["browser_hash"]), browser):
        raise BadRequest("this sign-in was started in another browser: sign in again")
    if back.error is not None:
        raise BadRequest(f"the OpenID provider did not sign you in ({error_code(back.error)})")
    if not back.code:
        raise BadRequest("the OpenID provider's answer holds no code: sign in again")
    signed_in = login.identity(
        back.code, pending["code_verifier"], pending["redirect_uri"], pending["nonce"]
    )
    user = users.from_identity(conn, login.verifier.issuer, signed_in.claims, settings)
    secret = secrets.token_urlsafe(32)
    with conn.transaction():
        session = session_repo.insert_session(
            conn,
            secret_hash=_digest(secret),
            user_id=user["id"],
            lifetime=timedelta(hours=settings.session_hours),
        )
        if signed_in.grant is not None and keyring is not None:
            connectors.store_for(conn, user["id"], connectors.IDENTITY, signed_in.grant, keyring)
    log.info("user %s signed in on the web page (session %s)", user["id"], session["id"])
    return user, secret


def authenticate(conn: Conn, secret: str) -> tokens.Principal:
    """The principal of a session cookie's secret, or Unauthorized (an expired one is deleted)."""
    row = session_repo.find_session(conn, _digest(secret))
    if row is None:
        raise Unauthorized("the web session is unknown or ended: sign in again")
    with conn.transaction():
        if row["live"]:
            session_repo.touch_session(conn, row["id"])
        else:
            session_repo.delete_session(conn, row["id"])
    if not row["live"]:
        raise Unauthorized("the web session has expired: sign in again")
    user = (row["user_id"], row["user_name"], row["user_role"])
    return tokens.Principal(*user, None, tokens.SCOPES, session_id=row["id"])


def csrf_token(secret: str) -> str:
    """The CSRF token of a session: derived from its secret, so stored nowhere, and telling
    nothing of the secret (nor computable from the stored hash)."""
    return hmac.new(secret.encode(), _CSRF, hashlib.sha256).hexdigest()


def check_csrf(secret: str, sent: str | None) -> None:
    """403 unless `sent` (the X-CSRF-Token header) is the session's CSRF token."""
    if not sent or not hmac.compare_digest(sent.encode(), csrf_token(secret).encode()):
        raise Forbidden(
            "a write with the session cookie needs the session's X-CSRF-Token header"
            " (GET /auth/session gives it)"
        )


def end(conn: Conn, principal: tokens.Principal) -> None:
    """Ends the caller's web session (acting as its user: only their own can go)."""
    if principal.session_id is None:
        raise BadRequest(
            "this request is not signed in with a web session; API tokens are revoked with"
            " DELETE /api/v1/tokens/{id}"
        )
    with conn.transaction():
        session_repo.delete_session(conn, principal.session_id)
        if not session_repo.has_live_session(conn, principal.user_id):  # signed out everywhere
            connector_repo.delete(conn, principal.user_id, connectors.IDENTITY)
