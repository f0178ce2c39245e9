"""Users of the team's OpenID provider: a bearer JWT authenticates, provisions, updates them."""

from __future__ import annotations

import logging
import threading
import time

import psycopg
import pytest

from tests.fake_oidc import FakeOIDCProvider, public_pem, unsigned_token
from tests.helpers import bearer, create_collection

ROLES = "realm_access.roles"


@pytest.fixture
def oidc_app(make_app, provider):
    return make_app(oidc_issuer=provider.issuer, oidc_audience="postrag", oidc_admin_claim=ROLES)


@pytest.fixture
def oidc(oidc_app):
    return oidc_app.test_client()


def _identity_rows(database_url: str, subject: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT name, email, role, issuer FROM users WHERE subject = %s", (subject,)
        ).fetchall()


def test_a_jwt_provisions_its_user_at_first_sight_and_updates_it_later(
    oidc, provider, database_url
):
    first = provider.token(sub="s-alice", preferred_username="alice", email="a@example.org")
    me = oidc.get("/api/v1/me", headers=bearer(first))
    assert me.status_code == 200, me.json
    assert (me.json["name"], me.json["role"], me.json["token_id"]) == ("alice", "user", None)
    assert me.json["scopes"] == ["read", "write"]
    later = provider.token(
        sub="s-alice",
        preferred_username="alice.b",
        email="b@example.org",
        realm_access={"roles": ["postrag-admin", "other"]},
    )
    again = oidc.get("/api/v1/me", headers=bearer(later))
    assert (again.json["id"], again.json["name"], again.json["role"]) == (
        me.json["id"],
        "alice.b",
        "admin",
    )
    assert _identity_rows(database_url, "s-alice") == [
        ("alice.b", "b@example.org", "admin", provider.issuer)
    ]
    oidc.get("/api/v1/me", headers=bearer(first))  # the role claim is gone: no admin any more
    assert _identity_rows(database_url, "s-alice")[0][2] == "user"


def test_the_name_falls_back_to_email_then_subject_and_is_made_valid(oidc, provider):
    by_email = provider.token(sub="s-1", email="carol@example.org")
    assert oidc.get("/api/v1/me", headers=bearer(by_email)).json["name"] == "carol@example.org"
    odd = provider.token(sub="s-2", preferred_username="Dan Smith/ops")
    assert oidc.get("/api/v1/me", headers=bearer(odd)).json["name"] == "Dan_Smith_ops"
    bare = provider.token(sub="s-3")
    assert oidc.get("/api/v1/me", headers=bearer(bare)).json["name"] == "s-3"


def test_a_name_a_local_user_has_gets_the_identitys_suffix(oidc, provider, new_user):
    local = new_user("bob")
    token = provider.token(sub="s-bob", preferred_username="bob")
    me = oidc.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json["name"].startswith("bob-") and len(me.json["name"]) == len("bob-") + 6
    assert oidc.get("/api/v1/me", headers=bearer(token)).json["name"] == me.json["name"]
    assert oidc.get("/api/v1/me", headers=local).json["name"] == "bob"
    other = provider.token(sub="s-other-bob", preferred_username="bob")
    named = oidc.get("/api/v1/me", headers=bearer(other)).json["name"]
    assert named.startswith("bob-") and named != me.json["name"]


def test_concurrent_first_requests_make_one_user(oidc_app, provider, database_url):
    token = provider.token(sub="s-many", preferred_username="many")
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def call() -> None:
        client = oidc_app.test_client()
        barrier.wait()
        statuses.append(client.get("/api/v1/me", headers=bearer(token)).status_code)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4
    assert [row[0] for row in _identity_rows(database_url, "s-many")] == ["many"]


def _unknown_kid(p: FakeOIDCProvider) -> str:
    kid = p.add_key("RSA")
    p.published.remove(kid)
    return p.token(kid=kid)


BAD_TOKENS = {
    "expired": lambda p: p.token(expires_in=-120),
    "not yet valid": lambda p: p.token(not_before_in=120),
    "wrong audience": lambda p: p.token(audience="someone-else"),
    "wrong issuer": lambda p: p.token(issuer="https://evil.example/realms/postrag"),
    "alg none": lambda p: unsigned_token(p, {"alg": "none", "kid": p.kid}),
    "HS256 with the public key": lambda p: unsigned_token(
        p, {"alg": "HS256", "kid": p.kid, "typ": "JWT"}, public_pem(p)
    ),
    "unknown kid": _unknown_kid,
    "malformed": lambda p: "eyJhbGciOi.not-json.c2ln",
    "unusable subject": lambda p: p.token(sub="x" * 256),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_bad_jwt_is_a_401_problem_and_logs_no_token(oidc, provider, case, caplog):
    token = BAD_TOKENS[case](provider)
    with caplog.at_level(logging.DEBUG):
        response = oidc.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.json["detail"].startswith("the bearer token is not valid")
    assert token not in caplog.text
    assert token.split(".")[1] not in caplog.text  # nor its claims


def test_a_jwt_without_a_configured_provider_is_an_unknown_token(client, provider):
    response = client.get("/api/v1/me", headers=bearer(provider.token()))
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_provider_down_is_503_for_jwts_while_api_tokens_work(oidc, provider, admin):
    provider.jwks_status = 500
    response = oidc.get("/api/v1/me", headers=bearer(provider.token()))
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "30"
    assert oidc.get("/api/v1/me", headers=admin).status_code == 200


def test_a_slow_provider_holds_no_database_connection(make_app, provider, admin):
    # One pooled connection, given up after a second: a JWT request waiting for the provider's
    # keys must not hold it, or every API-token request would time out meanwhile.
    app = make_app(
        oidc_issuer=provider.issuer,
        oidc_audience="postrag",
        pool_min_size=1,
        pool_max_size=1,
        pool_timeout_s=1.0,
    )
    provider.jwks_release.clear()
    answers: list[int] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            app.test_client().get("/api/v1/me", headers=bearer(provider.token())).status_code
        )
    )
    waiting.start()
    try:
        time.sleep(0.5)  # the JWT request is now waiting for the provider's keys
        assert waiting.is_alive()
        for _ in range(3):
            assert app.test_client().get("/api/v1/me", headers=admin).status_code == 200
    finally:
        provider.jwks_release.set()
        waiting.join(timeout=30)
    assert answers == [200]


def test_provider_users_see_only_their_own_collections(oidc, provider):
    alice = bearer(provider.token(sub="s-a", preferred_username="alice"))
    bob = bearer(provider.token(sub="s-b", preferred_username="bob"))
    mine = create_collection(oidc, alice, "alice-notes")
    assert oidc.get(f"/api/v1/collections/{mine}", headers=alice).status_code == 200
    assert oidc.get(f"/api/v1/collections/{mine}", headers=bob).status_code == 404
    listed = oidc.get("/api/v1/collections", headers=bob).json
    assert mine not in [c["id"] for c in listed["items"]]


def test_a_provider_user_mints_an_api_token_and_uses_it(oidc, provider):
    jwt_headers = bearer(provider.token(sub="s-script", preferred_username="scripter"))
    me = oidc.get("/api/v1/me", headers=jwt_headers).json
    assert oidc.get("/api/v1/me/preferences", headers=jwt_headers).status_code == 200
    made = oidc.post("/api/v1/tokens", json={"name": "ci"}, headers=jwt_headers)
    assert made.status_code == 201, made.json
    via_token = oidc.get("/api/v1/me", headers=bearer(made.json["token"]))
    assert via_token.status_code == 200
    assert via_token.json["id"] == me["id"] and via_token.json["token_id"] == made.json["id"]


def test_a_provider_admin_reaches_admin_endpoints_and_a_user_does_not(oidc, provider):
    admin = provider.token(sub="s-adm", realm_access={"roles": ["postrag-admin"]})
    user = provider.token(sub="s-usr", realm_access={"roles": ["postrag-user"]})
    assert oidc.get("/api/v1/users", headers=bearer(admin)).status_code == 200
    assert oidc.get("/api/v1/users", headers=bearer(user)).status_code == 403


def test_provider_users_are_rate_limited_and_accounted_per_user(make_app, provider, database_url):
    api = make_app(
        oidc_issuer=provider.issuer, oidc_audience="postrag", rate_limit_per_minute=2
    ).test_client()
    statuses = [
        api.get("/api/v1/me", headers=bearer(provider.token(sub="s-rl"))).status_code
        for _ in range(3)  # a new JWT each time: the limit is the user's, not the token's
    ]
    assert statuses == [200, 200, 429]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT a.token_id, a.status FROM api_usage a JOIN users u ON u.id = a.user_id"
            " WHERE u.subject = 's-rl' ORDER BY a.id"
        ).fetchall()
    assert rows == [(None, 200), (None, 200), (None, 429)]
