"""The web page's sign-in at the OpenID provider: the authorization request (code flow with PKCE
S256, state, nonce), the code exchange at the token endpoint, the ID token's checks, end-session;
the refresh of the user's access token; and OAuth 2.0 Token Exchange (RFC 8693): a user's token
for another audience (an MCP server).

The ID token is verified by the provider's OIDCVerifier (same keys, issuer, algorithms), for the
client id as audience, and must carry the nonce of its sign-in. Failures are AppErrors: the
provider refusing the code is 400, an answer postrag cannot use 502, an unreachable provider 503;
no message or log record holds a code, token or secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

import httpx

from app.errors import BadGateway, BadRequest, Conflict, Forbidden, Unauthorized
from app.providers.oidc import IdentityProviderUnavailable, InvalidToken, OIDCVerifier

log = logging.getLogger(__name__)

_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # an OAuth error code, safe to repeat
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@dataclass(frozen=True)
class SignIn:
    """What a sign-in's code gave: the ID token's verified claims, and the user's tokens at the
    provider (access, refresh, expiry: what token exchange needs later), if it gave them."""

    claims: Any
    grant: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what its return must match (kept server-side)."""

    url: str
    state: str
    nonce: str
    code_verifier: str


class OIDCLogin:
    """postrag as an OpenID client of the verifier's provider (one per process)."""

    def __init__(
        self,
        verifier: OIDCVerifier,
        client_id: str,
        client_secret: str | None,
        scopes: tuple[str, ...],
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self.verifier, self.client_id = verifier, client_id
        self._secret, self._scopes = client_secret, scopes
        self._http = httpx.Client(timeout=timeout_s, headers={"Accept": "application/json"})

    def close(self) -> None:
        self._http.close()

    def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        """A new authorization request returning to `redirect_uri`."""
        endpoint = self.verifier.discovery().authorization_endpoint
        if not endpoint:
            raise IdentityProviderUnavailable(
                "the OpenID provider offers no authorization endpoint"
            )
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self._scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return AuthorizationRequest(with_query(endpoint, params), state, nonce, verifier)

    def identity(self, code: str, code_verifier: str, redirect_uri: str, nonce: str) -> SignIn:
        """The verified claims of the ID token the provider gives for `code`, and the user's
        access (and refresh) token when it gives one."""
        body = self._exchange(code, code_verifier, redirect_uri)
        id_token = body["id_token"]
        try:
            claims = self.verifier.verify(id_token, audience=self.client_id)
        except InvalidToken as exc:
            raise _refused(exc.reason) from None
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise _refused("its nonce is not this sign-in's")
        azp = claims.get("azp")
        if azp is not None and azp != self.client_id:  # OpenID Connect Core 3.1.3.7
            raise _refused("it was issued to another client (azp)")
        return SignIn(claims, _grant(body))

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """A new access token for the user of `refresh_token` (a sign-in's): the token response.
        409 when the provider no longer takes it (sign in again), 502/503 as for a sign-in."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        response = self._post_token(form, "token refresh")
        body = _json_object(response)
        if response.status_code in (400, 401) and body.get("error") == "invalid_grant":
            raise Conflict("the OpenID provider ended your sign-in: sign in again on the web page")
        grant = _grant(body) if response.status_code == 200 else None
        if grant is None:
            log.warning("the OpenID provider's token refresh answered %s", response.status_code)
            raise BadGateway(
                f"the OpenID provider's token refresh answered {response.status_code}"
                " without an access token"
            )
        return grant

    def end_session_url(self, post_logout_redirect_uri: str) -> str | None:
        """The provider's end-session URL (RP-Initiated Logout) returning to postrag, if any."""
        try:
            endpoint = self.verifier.discovery().end_session_endpoint
        except IdentityProviderUnavailable:
            return None  # postrag's own session is ended all the same
        if not endpoint:
            return None
        # No id_token_hint: postrag keeps no ID token (it is a bearer credential); client_id
        # says who asks instead, and the provider may ask the user to confirm.
        params = {"client_id": self.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        return with_query(endpoint, params)

    def _post_token(self, form: dict[str, str], what: str) -> httpx.Response:
        """POST `form` to the token endpoint as this client (503 when it cannot be reached)."""
        endpoint = self.verifier.discovery().token_endpoint
        if not endpoint:
            raise IdentityProviderUnavailable("the OpenID provider offers no token endpoint")
        headers = self._client_authentication(form)
        try:
            return self._http.post(endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("the OpenID provider's %s failed: %s", what, type(exc).__name__)
            raise IdentityProviderUnavailable("the OpenID provider cannot be reached") from None

    def _exchange(self, code: str, code_verifier: str, redirect_uri: str) -> dict[str, Any]:
        """The token endpoint's answer to the authorization code (holding an ID token)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        response = self._post_token(form, "token endpoint")
        body = _json_object(response)
        if response.status_code == 400 and "error" in body:
            refused = error_code(body["error"])
            raise BadRequest(f"the OpenID provider refused the sign-in ({refused}): sign in again")
        id_token = body.get("id_token") if response.status_code == 200 else None
        if not isinstance(id_token, str) or not id_token:
            log.warning("the OpenID provider's token endpoint answered %s", response.status_code)
            raise BadGateway(
                f"the OpenID provider's token endpoint answered {response.status_code}"
                " without an ID token"
            )
        return body

    def exchange(self, subject_token: str, audience: str, scope: str | None = None) -> str:
        """The provider's access token for `audience` (and `scope`) standing for the user of
        `subject_token` (RFC 8693). 403 when the provider refuses the exchange (the user or
        postrag may not have such a token), 502 for an answer without a token, 503 when the
        provider cannot be reached."""
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "requested_token_type": ACCESS_TOKEN_TYPE,
            "audience": audience,
            **({"scope": scope} if scope else {}),
        }
        response = self._post_token(form, "token exchange")
        body = _json_object(response)
        if response.status_code in (400, 401, 403) and "error" in body:
            refused = error_code(body["error"])
            raise Forbidden(
                f"the OpenID provider refused to exchange your token for {audience} ({refused})"
            )
        token = body.get("access_token") if response.status_code == 200 else None
        if not isinstance(token, str) or not token:
            log.warning("the OpenID provider's token exchange answered %s", response.status_code)
            raise BadGateway(
                f"the OpenID provider's token exchange answered {response.status_code}"
                " without an access token"
            )
        return token

    def _client_authentication(self, form: dict[str, str]) -> dict[str, str]:
        """Adds the client's credentials: in the form for public clients and where the provider
        takes only client_secret_post, else HTTP Basic (RFC 6749 2.3.1); the headers to send."""
        if self._secret is None:
            form["client_id"] = self.client_id
            return {}
        methods = self.verifier.discovery().token_endpoint_auth_methods_supported
        if methods and "client_secret_basic" not in methods and "client_secret_post" in methods:
            form.update(client_id=self.client_id, client_secret=self._secret)
            return {}
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self._secret)}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def _grant(body: dict[str, Any]) -> dict[str, Any] | None:
    """The user's tokens of a token response (what the vault stores), or None without any."""
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        return None
    kept: dict[str, Any] = {"access_token": access}
    for name in ("refresh_token", "scope"):
        if isinstance(body.get(name), str) and body[name]:
            kept[name] = body[name]
    expires_in = body.get("expires_in")
    if isinstance(expires_in, int) and not isinstance(expires_in, bool) and expires_in > 0:
        kept["expires_in"] = expires_in
    return kept


def _refused(reason: str) -> Unauthorized:
    return Unauthorized(f"the provider's ID token is not valid: {reason}")


def error_code(value: object, otherwise: str = "error") -> str:
    """An OAuth error code fit to repeat in a message (anything else is just `otherwise`)."""
    return value if isinstance(value, str) and _ERROR_CODE.fullmatch(value) else otherwise


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)  # 43 to 128 unreserved characters
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def with_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` added to the query it may already have."""
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params.items()])
    return urlunsplit(parts._replace(query=query))


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
