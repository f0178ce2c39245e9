"""Bearer JWTs of an OpenID provider: verified against its discovered, cached, rotating keys."""

import logging
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.providers.oidc import (
    IdentityProviderUnavailable,
    InvalidToken,
    OIDCVerifier,
    claim,
    claim_strings,
)
from tests.fake_oidc import FakeOIDCProvider, b64url, public_pem, unsigned_token

INTERVAL_S = 30.0
MAX_AGE_S = 3600.0


class Clock:
    """A monotonic clock the test moves, so the refetch interval passes without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def verifier(provider, clock):
    made = OIDCVerifier(
        provider.issuer,
        "postrag",
        refetch_interval_s=INTERVAL_S,
        max_age_s=MAX_AGE_S,
        clock=clock,
        timeout_s=2.0,
    )
    yield made
    made.close()


def _foreign_signature(provider) -> str:
    """Good claims naming the provider's key, signed by another key."""
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"iss": provider.issuer, "sub": "x", "aud": "postrag", "exp": int(time.time()) + 60}
    return jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": provider.kid})


BAD_TOKENS = {
    "expired": (lambda p: p.token(expires_in=-120), "expired"),
    "not yet valid": (lambda p: p.token(not_before_in=120), "not valid yet"),
    "wrong audience": (lambda p: p.token(audience="another-app"), "not meant for this service"),
    "wrong issuer": (lambda p: p.token(issuer="https://evil.example/realms/postrag"), "issuer"),
    "no expiry": (lambda p: p.token(omit=("exp",)), "claim"),
    "bad signature": (_foreign_signature, "signature"),
    "alg none": (lambda p: unsigned_token(p, {"alg": "none", "kid": p.kid}), "algorithm"),
    "HS256 with the public key": (
        lambda p: unsigned_token(p, {"alg": "HS256", "kid": p.kid, "typ": "JWT"}, public_pem(p)),
        "algorithm",
    ),
    "no kid": (lambda p: unsigned_token(p, {"alg": "RS256"}), "kid"),
    "malformed": (lambda p: "not-a-jwt", "malformed"),
    "three bad parts": (lambda p: "eyJhbGciOi.bad.parts", "malformed"),
    "header not json": (lambda p: f"{b64url(b'[1, 2')}.e30.c2ln", "malformed"),
}


def test_a_good_token_verifies_and_its_claims_are_read_by_path(provider, verifier):
    token = provider.token(
        sub="alice-id",
        preferred_username="alice",
        realm_access={"roles": ["postrag-admin", "offline_access"]},
        groups=["/team-a", 7, "/team-b"],
    )
    claims = verifier.verify(token)
    assert (claims["sub"], claims["iss"]) == ("alice-id", provider.issuer)
    assert claim(claims, "realm_access.roles") == ["postrag-admin", "offline_access"]
    assert claim(claims, "realm_access.missing.deeper") is None
    assert claim(claims, "preferred_username.first") is None  # a string has no members
    assert claim_strings(claims, "groups") == ("/team-a", "/team-b")
    assert claim_strings(claims, "preferred_username") == ("alice",)
    assert claim_strings(claims, "nothing") == ()
    verifier.verify(provider.token(sub="bob-id"))
    assert (provider.discovery_fetches, provider.jwks_fetches) == (1, 1)  # cached
    assert verifier.discovery().end_session_endpoint.endswith("/protocol/openid-connect/logout")


def test_an_audience_list_holding_ours_and_an_ec_key_verify(provider, verifier):
    ec_kid = provider.add_key("EC")
    assert verifier.verify(provider.token(audience=["account", "postrag"]))["sub"] == "user-1"
    assert verifier.verify(provider.token(kid=ec_kid, sub="ec-user"))["sub"] == "ec-user"


def test_clocks_may_differ_by_the_leeway(provider, verifier):
    assert verifier.verify(provider.token(expires_in=-10, not_before_in=10))["sub"] == "user-1"


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_a_bad_token_is_refused_saying_why_and_logging_no_token(case, provider, verifier, caplog):
    make, reason = BAD_TOKENS[case]
    token = make(provider)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InvalidToken, match=reason) as refused:
        verifier.verify(token)
    assert refused.value.status == 401
    assert token not in refused.value.detail
    logged = [r.getMessage() for r in caplog.records]
    assert not [line for line in logged if token in line or token.split(".")[-1] in line]


def test_an_es256_token_naming_an_rsa_key_is_refused(provider, verifier):
    rsa_kid = provider.kid
    ec_kid = provider.add_key("EC")
    forged = jwt.encode(
        {"iss": provider.issuer, "sub": "x", "aud": "postrag", "exp": int(time.time()) + 60},
        provider.private_keys[ec_kid],
        algorithm="ES256",
        headers={"kid": rsa_kid},
    )
    with pytest.raises(InvalidToken, match="does not fit the key"):
        verifier.verify(forged)


def test_an_unknown_kid_refetches_the_keys_once_per_interval(provider, verifier, clock):
    verifier.verify(provider.token())
    assert provider.jwks_fetches == 1
    unpublished = provider.add_key("RSA")
    provider.published.remove(unpublished)
    clock.now += INTERVAL_S
    with pytest.raises(InvalidToken, match="does not publish"):
        verifier.verify(provider.token(kid=unpublished))
    assert provider.jwks_fetches == 2  # one refetch, then refused
    for _ in range(5):  # a flood of unknown kids within the interval
        with pytest.raises(InvalidToken, match="does not publish"):
            verifier.verify(provider.token(kid=unpublished))
    assert provider.jwks_fetches == 2


def test_a_rotated_key_is_picked_up_and_the_retired_one_refused(provider, verifier, clock):
    old_kid = provider.kid
    verifier.verify(provider.token())
    new_kid = provider.rotate()
    clock.now += INTERVAL_S
    assert verifier.verify(provider.token(kid=new_kid, sub="after"))["sub"] == "after"
    assert provider.jwks_fetches == 2
    with pytest.raises(InvalidToken, match="does not publish"):
        verifier.verify(provider.token(kid=old_kid))
    assert provider.jwks_fetches == 2


def test_a_withdrawn_key_stops_working_once_the_keys_are_old(provider, verifier, clock):
    token = provider.token()
    verifier.verify(token)
    provider.rotate()
    clock.now += MAX_AGE_S - 1
    assert verifier.verify(token)["sub"] == "user-1"  # still within the keys' age
    clock.now += 1
    with pytest.raises(InvalidToken, match="does not publish"):
        verifier.verify(token)
    assert provider.jwks_fetches == 2


def test_old_keys_are_kept_while_the_provider_fails(provider, verifier, clock, caplog):
    token = provider.token()
    verifier.verify(token)
    unpublished = provider.add_key("RSA")
    provider.published.remove(unpublished)
    provider.jwks_status = 503
    clock.now += MAX_AGE_S
    assert verifier.verify(token)["sub"] == "user-1"
    assert provider.jwks_fetches == 2
    assert [r for r in caplog.records if "using the last ones" in r.getMessage()]
    clock.now += INTERVAL_S
    with pytest.raises(IdentityProviderUnavailable):  # an unknown kid cannot be checked now
        verifier.verify(provider.token(kid=unpublished))


def test_an_unreachable_provider_is_unavailable_not_an_invalid_token(clock, caplog):
    with FakeOIDCProvider() as gone:
        token = gone.token()
    verifier = OIDCVerifier(gone.issuer, "postrag", clock=clock, timeout_s=2.0)
    caplog.set_level(logging.DEBUG)
    for _ in range(2):  # the second one within the interval does not try again
        with pytest.raises(IdentityProviderUnavailable) as unavailable:
            verifier.verify(token)
        assert unavailable.value.status == 503 and not isinstance(unavailable.value, InvalidToken)
    assert [r for r in caplog.records if "OpenID provider" in r.getMessage()]
    assert not [r for r in caplog.records if token in r.getMessage()]
    verifier.close()


def test_a_provider_recovering_is_used_after_the_interval(provider, clock):
    verifier = OIDCVerifier(provider.issuer, "postrag", clock=clock, timeout_s=2.0)
    kid = provider.kid
    provider.published.clear()  # a JWKS without keys: a provider half up
    with pytest.raises(InvalidToken, match="does not publish"):
        verifier.verify(provider.token(kid=kid))
    provider.published.append(kid)
    clock.now += INTERVAL_S
    assert verifier.verify(provider.token(kid=kid))["sub"] == "user-1"
    verifier.close()


def test_a_discovery_document_of_another_issuer_is_refused(provider, verifier):
    provider.discovery_issuer = "https://evil.example/realms/postrag"
    with pytest.raises(IdentityProviderUnavailable, match="names the issuer"):
        verifier.verify(provider.token())
    assert provider.jwks_fetches == 0


@pytest.mark.parametrize("member", ["jwks_uri", "token_endpoint", "authorization_endpoint"])
def test_a_discovery_document_naming_plain_http_elsewhere_is_refused(provider, verifier, member):
    # An https issuer whose keys (or codes) would travel over plain http could be fooled.
    provider.discovery_changes = {member: "http://keys.example/certs"}
    with pytest.raises(IdentityProviderUnavailable, match=member):
        verifier.verify(provider.token())
    assert provider.jwks_fetches == 0


def test_a_malformed_published_key_refuses_the_token_rather_than_failing(provider, verifier):
    kid = provider.kid
    published = provider.public_jwk

    def broken(key_id: str) -> dict:
        jwk = published(key_id)
        return {**jwk, "n": 12345} if key_id == kid else jwk

    provider.public_jwk = broken  # type: ignore[method-assign]
    with pytest.raises(InvalidToken, match="cannot be used"):
        verifier.verify(provider.token())
