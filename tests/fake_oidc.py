"""An in-process OpenID provider on 127.0.0.1: discovery, a JWKS that rotates, real signed JWTs,
and the authorization code flow with PKCE.

GET <issuer>/.well-known/openid-configuration answers the discovery document (its `issuer` can
be made wrong with `discovery_issuer`); GET <issuer>/protocol/openid-connect/certs answers the
JWKS of the published keys (or fails with `jwks_status`), counting the fetches in `jwks_fetches`.
`token()` signs a JWT with one of the provider's private keys (RS256, or ES256 with an EC key).

GET .../auth signs in `login_claims` at once (no login form) and redirects to the request's
redirect_uri with a code bound to it, to the client, the code_challenge (S256 only) and the
nonce (or with `authorize_error`). POST .../token takes that code once, checks the client's
authentication (`client_secret`: Basic or in the form; None: a public client), redirect_uri and
code_verifier, and answers a signed id_token (with the nonce, `aud` the client) and an
access_token (lasting `access_expires_in`) with a refresh token, which the refresh_token grant
takes once (`refreshes` records them); `token_status` makes the endpoint fail, `id_token_claims`
changes the id_token's claims.
GET .../logout (end-session) records its parameters and redirects to post_logout_redirect_uri.
POST .../token also takes RFC 8693's token exchange: a valid access token of the provider (its
signature, issuer and `aud` checked) for one meant for the `audience` asked (with `scope`, and
`act` naming the client), unless that audience is in `exchange_refused`; `exchanges` records
the requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.fakes import LoopbackServer, QuietHandler, send_json

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"


class FakeOIDCProvider(LoopbackServer):
    """Keycloak-shaped paths under `issuer` (`<base>/realms/postrag`); `audience` is the
    default `aud` of the tokens it signs."""

    def __init__(self, audience: str = "postrag") -> None:
        self.audience = audience
        self.private_keys: dict[str, PrivateKey] = {}
        self.published: list[str] = []  # kids in the JWKS, in order
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self.discovery_issuer: str | None = None  # answered instead of the real issuer
        self.discovery_changes: dict[str, Any] = {}  # members answered instead of the real ones
        self.jwks_release = threading.Event()  # the JWKS answers once this is set
        self.jwks_release.set()
        self.jwks_status = 200  # another one answers the JWKS with an error
        # The authorization code flow: the client, who signs in, what goes wrong.
        self.client_id = audience
        self.client_secret: str | None = None
        self.login_claims: dict[str, Any] = {"sub": "web-1", "preferred_username": "webby"}
        self.authorize_error: str | None = None  # e.g. access_denied
        self.token_status = 200  # another one: the token endpoint fails so
        self.id_token_claims: dict[str, Any] = {}  # override the id_token's (nonce, aud, ...)
        self.auth_methods = ["client_secret_basic", "client_secret_post"]
        self.codes: dict[str, dict[str, Any]] = {}
        self.token_requests: list[dict[str, str]] = []
        self.logouts: list[dict[str, str]] = []  # the end-session requests' parameters
        self.exchanges: list[dict[str, str]] = []  # the token exchange requests
        self.exchange_refused: set[str] = set()  # audiences no token is exchanged for
        self.access_expires_in = 300  # the access tokens' lifetime (expires_in), seconds
        self.refresh_tokens: dict[str, dict[str, Any]] = {}  # live refresh token -> claims
        self.refreshes: list[dict[str, str]] = []  # the refresh_token grant requests
        self._lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = urlsplit(self.path).path
                if path.endswith(
                    ("/protocol/openid-connect/auth", "/protocol/openid-connect/logout")
                ):
                    self.send_response(302)
                    self.send_header("Location", server.redirect(self.path))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                send_json(self, *server.answer(self.path))

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = dict(parse_qsl(raw.decode()))
                send_json(self, *server.exchange(form, self.headers.get("Authorization")))

        self.issuer = self._listen(Handler) + "/realms/postrag"
        self.add_key("RSA")

    @property
    def kid(self) -> str:
        """The newest published key: the one tokens are signed with by default."""
        return self.published[-1]

    def add_key(self, kind: str = "RSA") -> str:
        """A new key pair, published in the JWKS; its kid."""
        key: PrivateKey
        if kind == "RSA":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
        kid = uuid.uuid4().hex
        with self._lock:
            self.private_keys[kid] = key
            self.published.append(kid)
        return kid

    def rotate(self) -> str:
        """A new RSA key replaces every published one (the old ones can still sign); its kid."""
        old = list(self.published)
        kid = self.add_key("RSA")
        with self._lock:
            self.published = [k for k in self.published if k not in old]
        return kid

    def public_jwk(self, kid: str) -> dict[str, Any]:
        key = self.private_keys[kid]
        if isinstance(key, rsa.RSAPrivateKey):
            jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            jwk["alg"] = "RS256"
        else:
            jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
            jwk["alg"] = "ES256"
        return {**jwk, "kid": kid, "use": "sig"}

    def answer(self, path: str) -> tuple[int, Any]:
        prefix = self.issuer.split("/", 3)[3]  # realms/postrag
        if path == f"/{prefix}/.well-known/openid-configuration":
            self.discovery_fetches += 1
            return 200, self.discovery()
        if path == f"/{prefix}/protocol/openid-connect/certs":
            self.jwks_release.wait(timeout=30)  # a slow provider, while a test holds it
            with self._lock:
                self.jwks_fetches += 1
                if self.jwks_status != 200:
                    return self.jwks_status, {"error": "temporarily unavailable"}
                return 200, {"keys": [self.public_jwk(kid) for kid in self.published]}
        return 404, {"error": "not found"}

    def discovery(self) -> dict[str, Any]:
        endpoints = f"{self.issuer}/protocol/openid-connect"
        return {
            "issuer": self.discovery_issuer or self.issuer,
            "jwks_uri": f"{endpoints}/certs",
            "authorization_endpoint": f"{endpoints}/auth",
            "token_endpoint": f"{endpoints}/token",
            "end_session_endpoint": f"{endpoints}/logout",
            "token_endpoint_auth_methods_supported": self.auth_methods,
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            **self.discovery_changes,
        }

    def redirect(self, path: str) -> str:
        """Where the authorization or end-session endpoint sends the browser."""
        if urlsplit(path).path.endswith("/logout"):
            self.logouts.append(dict(parse_qsl(urlsplit(path).query)))
            return self.logouts[-1]["post_logout_redirect_uri"]
        return self.authorize(path)

    def authorize(self, path: str) -> str:
        """Where the authorization endpoint sends the browser back: a code, or an error."""
        query = dict(parse_qsl(urlsplit(path).query))
        back = query["redirect_uri"]
        if self.authorize_error:
            return f"{back}?{urlencode({'error': self.authorize_error, 'state': query['state']})}"
        assert query["response_type"] == "code" and query["code_challenge_method"] == "S256"
        assert "openid" in query["scope"].split()
        code = uuid.uuid4().hex
        with self._lock:
            self.codes[code] = {**query, "claims": dict(self.login_claims), "used": False}
        return f"{back}?{urlencode({'code': code, 'state': query['state']})}"

    def exchange(self, form: dict[str, str], authorization: str | None) -> tuple[int, Any]:
        """The token endpoint: (status, body) for an authorization code grant."""
        self.token_requests.append(form)
        if self.token_status != 200:
            return self.token_status, {"error": "server_error"}
        if self._client_of(form, authorization) != self.client_id:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") == TOKEN_EXCHANGE:
            return self.token_exchange(form)
        if form.get("grant_type") == "refresh_token":
            return self.refresh(form)
        with self._lock:
            grant = self.codes.get(form.get("code", ""))
            fresh = grant is not None and not grant["used"]
            if grant is not None:
                grant["used"] = True
        verifier = form.get("code_verifier", "").encode()
        if (
            not fresh
            or form.get("grant_type") != "authorization_code"
            or grant["client_id"] != self.client_id
            or form.get("redirect_uri") != grant["redirect_uri"]
            or b64url(hashlib.sha256(verifier).digest()) != grant["code_challenge"]
        ):
            return 400, {"error": "invalid_grant"}
        claims = {"nonce": grant["nonce"], "audience": self.client_id, **grant["claims"]}
        id_token = self.token(**{**claims, **self.id_token_claims})
        return 200, {"id_token": id_token, **self._tokens(grant["claims"])}

    def _tokens(self, claims: dict[str, Any]) -> dict[str, Any]:
        """A new access token for `claims` and a refresh token for the next one."""
        refresh = uuid.uuid4().hex
        with self._lock:
            self.refresh_tokens[refresh] = claims
        access = self.token(**claims, expires_in=self.access_expires_in)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_expires_in,
            "refresh_token": refresh,
        }

    def refresh(self, form: dict[str, str]) -> tuple[int, Any]:
        """The refresh_token grant: each refresh token works once (rotated)."""
        self.refreshes.append(form)
        with self._lock:
            claims = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
        if claims is None:
            return 400, {"error": "invalid_grant"}
        return 200, self._tokens(claims)

    def token_exchange(self, form: dict[str, str]) -> tuple[int, Any]:
        """RFC 8693 for an authenticated client: (status, body)."""
        self.exchanges.append(form)
        subject = form.get("subject_token", "")
        try:
            kid = jwt.get_unverified_header(subject).get("kid", "")
            claims = jwt.decode(
                subject,
                self.private_keys[kid].public_key(),
                algorithms=["RS256", "ES256"],
                audience=self.audience,
                issuer=self.issuer,
            )
        except (jwt.PyJWTError, KeyError):
            return 400, {"error": "invalid_grant"}
        if form.get("subject_token_type") != ACCESS_TOKEN:
            return 400, {"error": "invalid_request"}
        audience = form.get("audience", "")
        if not audience or audience in self.exchange_refused:
            return 400, {"error": "invalid_target"}
        extra = {"scope": form["scope"]} if form.get("scope") else {}
        token = self.token(
            sub=claims["sub"], audience=audience, act={"sub": self.client_id}, **extra
        )
        return 200, {
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
        }

    def _client_of(self, form: dict[str, str], authorization: str | None) -> str | None:
        """The client the request authenticates as (client_secret_basic or _post), or None."""
        if self.client_secret is None:  # a public client: named, with no secret
            return form.get("client_id") if "client_secret" not in form else None
        if authorization and authorization.startswith("Basic "):
            pair = base64.b64decode(authorization.removeprefix("Basic ")).decode()
            client, _, secret = pair.partition(":")
            client, secret = unquote_plus(client), unquote_plus(secret)
        else:
            client, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client if hmac.compare_digest(secret, self.client_secret) else None

    def token(
        self,
        *,
        sub: str = "user-1",
        kid: str | None = None,
        expires_in: int = 300,
        not_before_in: int | None = None,
        audience: str | list[str] | None = None,
        issuer: str | None = None,
        omit: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        """A JWT signed with key `kid` (default: the newest), times relative to now (seconds);
        the claims in `omit` are left out."""
        kid = kid or self.kid
        key = self.private_keys[kid]
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "sub": sub,
            "aud": audience or self.audience,
            "iat": now,
            "exp": now + expires_in,
            **claims,
        }
        if not_before_in is not None:
            payload["nbf"] = now + not_before_in
        for name in omit:
            payload.pop(name, None)
        alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(provider: FakeOIDCProvider, header: dict, key: bytes | None = None) -> str:
    """A token with `header` and good claims, HMAC-signed with `key` (or with no signature)."""
    claims = {"iss": provider.issuer, "sub": "x", "aud": "postrag", "exp": int(time.time()) + 300}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return f"{signing_input}.{b64url(signature)}"


def public_pem(provider: FakeOIDCProvider) -> bytes:
    public = provider.private_keys[provider.kid].public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
