"""OpenID Connect bearer tokens: discovery, the provider's keys (cached) and JWT verification.

Only asymmetric algorithms are accepted, each with the key type it needs, so neither `none` nor
an HMAC signed with a public key's bytes can pass. A token whose `kid` is unknown refetches the
JWKS (the provider rotated its keys), at most once per `refetch_interval_s`, so a flood of made-up
kids cannot hammer the provider; keys older than `max_age_s` are fetched again too, so a key the
provider withdrew stops working (while the provider is down, the last keys are kept). An
unreachable provider is IdentityProviderUnavailable (503), a bad token InvalidToken (401);
neither message, nor any log record, holds the token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from app.errors import ServiceUnavailable, Unauthorized

log = logging.getLogger(__name__)

# Algorithm -> (the JWK's kty, its crv): the token's alg must fit the key it names.
ALGORITHMS: dict[str, tuple[str, str | None]] = {
    **{f"{family}{bits}": ("RSA", None) for family in ("RS", "PS") for bits in (256, 384, 512)},
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
}
LEEWAY_S = 30  # clocks of the provider and of postrag may differ this much
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp"]

# What a client is told of each rejection (PyJWT's own messages stay out of responses).
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "it has expired"),
    (jwt.ImmatureSignatureError, "it is not valid yet"),
    (jwt.InvalidAudienceError, "it is not meant for this service (aud)"),
    (jwt.InvalidIssuerError, "it comes from another issuer (iss)"),
    (jwt.MissingRequiredClaimError, "it lacks a required claim"),
    (jwt.InvalidSignatureError, "its signature does not verify"),
    (jwt.DecodeError, "it is malformed"),
)


class InvalidToken(Unauthorized):
    """The bearer JWT is refused; the detail says why, never what it holds."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the bearer token is not valid: {reason}")
        self.reason = reason


class IdentityProviderUnavailable(ServiceUnavailable):
    """The OpenID provider's discovery document or keys cannot be had right now."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "30"})


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Discovery(BaseModel):
    """The members of an OpenID provider's configuration postrag reads (others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    issuer: str = Field(min_length=1, max_length=2000)
    jwks_uri: str = Field(max_length=2000)
    authorization_endpoint: str | None = Field(None, max_length=2000)
    token_endpoint: str | None = Field(None, max_length=2000)
    end_session_endpoint: str | None = Field(None, max_length=2000)
    token_endpoint_auth_methods_supported: list[str] | None = Field(None, max_length=100)

    @pydantic.field_validator(
        "jwks_uri", "authorization_endpoint", "token_endpoint", "end_session_endpoint"
    )
    @classmethod
    def _secure(cls, url: str | None) -> str | None:
        # Keys and codes over plain http could be swapped by anyone on the way: as for the
        # issuer, http only on loopback.
        if url is None:
            return url
        parts = urlsplit(url)
        if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
            return url
        raise ValueError("must be an https URL (http only on loopback)")


class OIDCVerifier:
    """Verifies bearer JWTs of one issuer for one audience; thread-safe, one per process."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        timeout_s: float = 5.0,
        refetch_interval_s: float = 30.0,
        max_age_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer, self.audience = issuer, audience
        self.refetch_interval_s, self.max_age_s = refetch_interval_s, max_age_s
        self._clock = clock
        self._http = httpx.Client(timeout=timeout_s, headers={"Accept": "application/json"})
        self._lock = threading.Lock()
        self._discovery: Discovery | None = None
        self._keys: dict[str, dict[str, Any]] | None = None  # kid -> JWK
        self._keys_at = 0.0  # when they were fetched
        self._fetched_at: float | None = None  # the last attempt, failed ones included

    def close(self) -> None:
        self._http.close()

    def discovery(self) -> Discovery:
        """The provider's configuration, fetched once (its issuer must be the configured one)."""
        if self._discovery is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            found = _discovery(self._get_json(url, "discovery document"))
            if found.issuer != self.issuer:
                raise IdentityProviderUnavailable(
                    f"the OpenID provider's discovery document names the issuer {found.issuer!r},"
                    f" not the configured {self.issuer!r}"
                )
            self._discovery = found
        return self._discovery

    def verify(self, token: str, audience: str | None = None) -> dict[str, Any]:
        """The claims of `token` once its signature, issuer, audience (`audience`, else the
        configured one) and times hold."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("it is malformed") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise InvalidToken("its algorithm is not accepted (asymmetric ones only)")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("it names no key (kid)")
        try:
            key = jwt.PyJWK(self._key(kid, alg), algorithm=alg)
        except jwt.PyJWTError:  # PyJWT's own wrap of a malformed JWK (a number as `n`) too
            raise InvalidToken("the provider's key it names cannot be used") from None
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audience or self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(_reason(exc)) from None

    def _key(self, kid: str, alg: str) -> dict[str, Any]:
        """The JWK named `kid`, fit for `alg`."""
        with self._lock:
            jwk = self._keys_for(kid).get(kid)
        if jwk is None:
            raise InvalidToken("it is signed with a key the provider does not publish (kid)")
        kty, crv = ALGORITHMS[alg]
        if jwk.get("kty") != kty or jwk.get("crv") != crv or jwk.get("alg", alg) != alg:
            raise InvalidToken("its algorithm does not fit the key it names")
        return jwk

    def _keys_for(self, kid: str) -> dict[str, dict[str, Any]]:
        """The JWKS, fetched again when `kid` is unknown or the keys are older than `max_age_s`,
        unless a fetch was tried less than `refetch_interval_s` ago."""
        now, keys = self._clock(), self._keys
        if keys is not None and kid in keys and now - self._keys_at < self.max_age_s:
            return keys
        if self._fetched_at is not None and now - self._fetched_at < self.refetch_interval_s:
            if keys is None:  # the last attempt failed, and it was just now
                raise IdentityProviderUnavailable("the OpenID provider cannot be reached")
            return keys
        self._fetched_at = now
        try:
            fetched = _signing_keys(self._get_json(self.discovery().jwks_uri, "JWKS"))
        except IdentityProviderUnavailable:
            if keys is not None and kid in keys:
                # Keys that were good when last fetched beat refusing everyone while it is down.
                log.warning("the OpenID provider's keys were not refreshed; using the last ones")
                return keys
            raise
        log.info("fetched the OpenID provider's keys: %d usable", len(fetched))
        self._keys, self._keys_at = fetched, now
        return fetched

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self._http.get(url)
        except httpx.HTTPError as exc:
            log.warning("the OpenID provider's %s at %s failed: %s", what, url, type(exc).__name__)
            raise IdentityProviderUnavailable("the OpenID provider cannot be reached") from None
        try:
            body = response.json() if response.status_code == 200 else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            log.warning(
                "the OpenID provider's %s at %s answered %s", what, url, response.status_code
            )
            raise IdentityProviderUnavailable(
                f"the OpenID provider's {what} answered {response.status_code} without JSON"
            )
        return body


def _discovery(body: dict[str, Any]) -> Discovery:
    try:
        return Discovery.model_validate(body)
    except pydantic.ValidationError as exc:
        field = ".".join(map(str, exc.errors()[0]["loc"]))
        raise IdentityProviderUnavailable(
            f"the OpenID provider's discovery document has a wrong {field}"
        ) from None


def _signing_keys(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """kid -> JWK for the JWKS's keys that may verify signatures (not those for encryption)."""
    keys = body.get("keys")
    if not isinstance(keys, list):
        raise IdentityProviderUnavailable("the OpenID provider's JWKS has no keys list")
    return {
        key["kid"]: key
        for key in keys
        if isinstance(key, dict)
        and isinstance(key.get("kid"), str)
        and key.get("use", "sig") == "sig"
    }


def _reason(exc: jwt.PyJWTError) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "it does not verify"


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at a dotted `path` (`realm_access.roles`), or None where any step is missing."""
    value: Any = claims
    for step in path.split("."):
        if not isinstance(value, Mapping) or step not in value:
            return None
        value = value[step]
    return value


def claim_strings(claims: Mapping[str, Any], path: str) -> tuple[str, ...]:
    """The strings at `path`: one string, or a list's string items (others are skipped)."""
    value = claim(claims, path)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()
