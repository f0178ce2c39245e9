"""Who is calling: an API token, a JWT of the team's OpenID provider mapped to its user, or the
web page's session cookie."""

from __future__ import annotations

import re
from typing import Any

from app.providers.oidc import OIDCVerifier
from app.repositories import Conn
from app.services import tokens, users, web_sessions
from app.settings import Settings

# Three base64url parts (the signature may be empty: `alg: none`, refused by the verifier).
# API tokens (prg_<prefix>_<secret>) hold no dots.
_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def jwt_claims(authorization: str | None, verifier: OIDCVerifier | None) -> dict[str, Any] | None:
    """The verified claims of a bearer JWT of the provider, or None for any other credential;
    Unauthorized (a bad JWT) or IdentityProviderUnavailable. It needs no database: a request
    calls it before it takes a connection, so a slow provider holds none of the pool."""
    if verifier is None or not authorization:
        return None
    token = tokens.bearer_of(authorization)
    return verifier.verify(token) if _JWT.fullmatch(token) else None


def authenticate(
    conn: Conn,
    authorization: str | None,
    verifier: OIDCVerifier | None,
    settings: Settings,
    session: str | None = None,
    claims: dict[str, Any] | None = None,
) -> tokens.Principal:
    """The principal behind an `Authorization: Bearer` header (with `claims`, the JWT's that
    jwt_claims verified), else behind the web session cookie's `session` secret; or
    Unauthorized (a bad token or session), or IdentityProviderUnavailable (a JWT while its
    provider cannot be reached).

    A provider's user gets what a user's first API token gives: read and write. Runs as the
    tables' owner (before anyone is known), so that a first request can create its user.
    """
    if not authorization and session:
        return web_sessions.authenticate(conn, session)
    if claims is None:
        claims = jwt_claims(authorization, verifier)
    if claims is None or verifier is None:
        # An API token (a JWT-shaped one without a configured provider is malformed, as one).
        return tokens.authenticate_token(conn, tokens.bearer_of(authorization))
    user = users.from_identity(conn, verifier.issuer, claims, settings)
    return tokens.Principal(user["id"], user["name"], user["role"], None, tokens.SCOPES)
