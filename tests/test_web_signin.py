"""The web page signs in with the OpenID provider: code flow with PKCE, sessions, CSRF, sign-out."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest

from app.settings import Settings, SettingsError
from tests.helpers import bearer

PROBLEM = "application/problem+json"


@pytest.fixture
def oidc_app(make_app, provider):
    return make_app(oidc_issuer=provider.issuer, oidc_audience="postrag")


@pytest.fixture
def browser(oidc_app):
    return oidc_app.test_client()


def _to_provider(client) -> str:
    """GET /auth/login; where the provider sends the browser back (it signs in at once)."""
    started = client.get("/auth/login")
    assert started.status_code == 303, started.json
    answer = httpx.get(started.headers["Location"], follow_redirects=False)
    assert answer.status_code == 302
    return answer.headers["Location"]


def _sign_in(client):
    """The whole round trip; the callback's response."""
    return client.get(_to_provider(client))


def _csrf(client) -> dict[str, str]:
    session = client.get("/auth/session")
    assert session.status_code == 200, session.json
    return {"X-CSRF-Token": session.json["csrf_token"]}


def _count(database_url: str, table: str) -> int:
    with psycopg.connect(database_url) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_sign_in_creates_the_user_and_a_session(browser, provider, database_url):
    provider.login_claims = {"sub": "s-web", "preferred_username": "wendy", "groups": ["ops"]}
    started = browser.get("/auth/login")
    request = parse_qs(urlsplit(started.headers["Location"]).query)
    assert started.headers["Location"].startswith(f"{provider.issuer}/protocol/openid-connect/auth")
    assert request["code_challenge_method"] == ["S256"] and len(request["code_challenge"][0]) == 43
    assert request["redirect_uri"] == ["http://localhost/auth/callback"]
    assert request["scope"] == ["openid profile email"] and request["client_id"] == ["postrag"]
    assert request["state"][0] and request["nonce"][0]

    back = browser.get(httpx.get(started.headers["Location"]).headers["Location"])
    assert back.status_code == 303 and back.headers["Location"] == "/"
    secret = browser.get_cookie("postrag_session").value
    me = browser.get("/api/v1/me")
    assert me.status_code == 200, me.json
    assert (me.json["name"], me.json["token_id"]) == ("wendy", None)
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT secret_hash, user_id FROM web_sessions").fetchall()
        member = conn.execute(
            "SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id"
            " WHERE m.user_id = %s",
            (me.json["id"],),
        ).fetchall()
    assert stored == [(hashlib.sha256(secret.encode()).digest(), me.json["id"])]
    assert member == [("ops",)]  # the groups claim is read at sign-in
    assert _count(database_url, "web_logins") == 0  # the state is used up
    assert provider.token_requests[0]["client_id"] == "postrag"  # a public client: PKCE only
    session = browser.get("/auth/session").json
    assert session["name"] == "wendy" and len(session["csrf_token"]) == 64


def test_cookies_are_httponly_lax_and_secure_but_on_loopback_http(oidc_app, provider):
    local = oidc_app.test_client()
    login_cookie = local.get("/auth/login").headers["Set-Cookie"]
    assert login_cookie.startswith("postrag_login=")
    _, *flags = _sign_in(local).headers.getlist("Set-Cookie")
    session_cookie = next(c for c in flags if c.startswith("postrag_session="))
    for cookie in (login_cookie, session_cookie):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie and "Domain" not in cookie

    remote = oidc_app.test_client()
    started = remote.get("/auth/login", base_url="https://postrag.example")
    assert started.headers["Set-Cookie"].startswith("__Host-postrag_login=")
    back = remote.get(httpx.get(started.headers["Location"]).headers["Location"])
    assert back.status_code == 303, back.json
    cookie = next(c for c in back.headers.getlist("Set-Cookie") if "postrag_session=" in c)
    assert cookie.startswith("__Host-postrag_session=") and "; Secure" in cookie
    me = remote.get("/api/v1/me", base_url="https://postrag.example")
    assert me.status_code == 200, me.json


def test_cookie_writes_need_the_csrf_token_and_bearers_win(browser, admin):
    _sign_in(browser)
    made = {"json": {"name": "notes"}}
    missing = browser.post("/api/v1/collections", **made)
    assert missing.status_code == 403 and missing.content_type == PROBLEM
    assert "X-CSRF-Token" in missing.json["detail"]
    wrong = browser.post("/api/v1/collections", headers={"X-CSRF-Token": "0" * 64}, **made)
    assert wrong.status_code == 403
    foreign = {**_csrf(browser), "Origin": "https://evil.example"}
    assert browser.post("/api/v1/collections", headers=foreign, **made).status_code == 403
    assert browser.get("/api/v1/collections").json["total"] == 0  # nothing was made
    good = browser.post("/api/v1/collections", headers=_csrf(browser), **made)
    assert good.status_code == 201, good.json
    own = {**_csrf(browser), "Origin": "http://localhost"}
    assert browser.post("/api/v1/collections", headers=own, json={"name": "b"}).status_code == 201
    # A bearer header wins over the cookie, and needs no CSRF token.
    assert browser.get("/api/v1/me", headers=admin).json["name"] == "admin"
    by_bearer = browser.post("/api/v1/collections", headers=admin, json={"name": "admin's"})
    assert by_bearer.status_code == 201
    assert browser.get("/auth/session", headers=admin).json["csrf_token"] is None


def test_a_signed_in_user_mints_api_tokens(browser):
    _sign_in(browser)
    minted = browser.post("/api/v1/tokens", headers=_csrf(browser), json={"name": "script"})
    assert minted.status_code == 201, minted.json
    me = browser.get("/api/v1/me", headers=bearer(minted.json["token"]))
    assert me.json["name"] == "webby" and me.json["token_id"] == minted.json["id"]


def test_the_state_must_be_known_unused_and_from_this_browser(oidc_app, provider, database_url):
    client = oidc_app.test_client()
    back = _to_provider(client)
    stranger = oidc_app.test_client()  # no binding cookie: another browser
    other_browser = stranger.get(back)
    assert other_browser.status_code == 400 and "another browser" in other_browser.json["detail"]
    assert client.get(back).status_code == 400  # its state was used up by that attempt

    back = _to_provider(client)
    assert client.get(back).status_code == 303
    reused = client.get(back)
    assert reused.status_code == 400 and "already used" in reused.json["detail"]
    unknown = client.get("/auth/callback?code=x&state=made-up")
    assert unknown.status_code == 400 and unknown.content_type == PROBLEM
    missing = client.get("/auth/callback?code=x")
    assert missing.status_code == 400 and "state" in missing.json["detail"]
    assert _count(database_url, "web_sessions") == 1  # the one good sign-in only


def test_an_expired_pending_sign_in_is_refused(browser, database_url):
    back = _to_provider(browser)
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE web_logins SET expires_at = now() - interval '1 second'")
    refused = browser.get(back)
    assert refused.status_code == 400 and "expired" in refused.json["detail"]


FAILURES = {
    "provider error": ({"authorize_error": "access_denied"}, 400, "access_denied"),
    "nonce mismatch": ({"id_token_claims": {"nonce": "another"}}, 401, "nonce"),
    "ID token for another client": ({"id_token_claims": {"audience": "x"}}, 401, "(aud)"),
    "ID token expired": ({"id_token_claims": {"expires_in": -300}}, 401, "expired"),
    "token endpoint fails": ({"token_status": 500}, 502, "token endpoint answered 500"),
}


@pytest.mark.parametrize("change, status, detail", FAILURES.values(), ids=FAILURES)
def test_a_failed_callback_is_a_problem_and_makes_no_session(
    browser, provider, database_url, change, status, detail
):
    for name, value in change.items():
        setattr(provider, name, value)
    refused = _sign_in(browser)
    assert refused.status_code == status, refused.json
    assert refused.content_type == PROBLEM and detail in refused.json["detail"]
    assert browser.get_cookie("postrag_session") is None
    assert _count(database_url, "web_sessions") == 0
    assert browser.get("/api/v1/me").status_code == 401


def test_an_unreachable_token_endpoint_is_503_and_makes_no_session(browser, provider, database_url):
    back = _to_provider(browser)
    provider.httpd.shutdown()  # the provider goes away between the redirect and the callback
    provider.httpd.server_close()
    refused = browser.get(back)
    assert refused.status_code == 503 and refused.content_type == PROBLEM
    assert _count(database_url, "web_sessions") == 0


@pytest.mark.parametrize("methods", [["client_secret_basic"], ["client_secret_post"]])
def test_a_confidential_client_authenticates_at_the_token_endpoint(make_app, provider, methods):
    provider.client_secret, provider.auth_methods = "s3cret:/+", methods
    app = make_app(
        oidc_issuer=provider.issuer, oidc_audience="postrag", oidc_client_secret="s3cret:/+"
    )
    client = app.test_client()
    assert _sign_in(client).status_code == 303
    sent = provider.token_requests[-1]
    assert ("client_secret" in sent) == (methods == ["client_secret_post"])
    wrong = make_app(oidc_issuer=provider.issuer, oidc_audience="postrag", oidc_client_secret="no")
    assert _sign_in(wrong.test_client()).status_code == 502


def test_an_expired_session_is_refused_and_deleted(browser, database_url):
    _sign_in(browser)
    assert browser.get("/api/v1/me").status_code == 200
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE web_sessions SET expires_at = now() - interval '1 second'")
    refused = browser.get("/api/v1/me")
    assert refused.status_code == 401 and "expired" in refused.json["detail"]
    assert _count(database_url, "web_sessions") == 0


def test_sign_out_ends_the_session_and_names_the_providers_end_session(browser, provider):
    _sign_in(browser)
    secret = browser.get_cookie("postrag_session").value
    assert browser.post("/auth/logout").status_code == 403  # no CSRF token
    out = browser.post("/auth/logout", headers=_csrf(browser))
    assert out.status_code == 200, out.json
    ending = urlsplit(out.json["end_session_url"])
    assert (
        f"{ending.scheme}://{ending.netloc}{ending.path}"
        == provider.discovery()["end_session_endpoint"]
    )
    assert parse_qs(ending.query) == {
        "client_id": ["postrag"],
        "post_logout_redirect_uri": ["http://localhost/"],
    }
    assert browser.get_cookie("postrag_session") is None  # cleared
    browser.set_cookie("postrag_session", secret)  # kept by a stolen copy: no use any more
    assert browser.get("/api/v1/me").status_code == 401


def test_a_session_never_reaches_another_users_data(oidc_app, provider):
    alice, bob = oidc_app.test_client(), oidc_app.test_client()
    provider.login_claims = {"sub": "s-alice", "preferred_username": "alice"}
    _sign_in(alice)
    provider.login_claims = {"sub": "s-bob", "preferred_username": "bob"}
    _sign_in(bob)
    made = alice.post("/api/v1/collections", headers=_csrf(alice), json={"name": "private"})
    assert made.status_code == 201
    assert bob.get("/api/v1/me").json["name"] == "bob"
    assert bob.get("/api/v1/collections").json["total"] == 0
    assert bob.get(f"/api/v1/collections/{made.json['id']}").status_code == 404
    # Alice's CSRF token is no use with Bob's cookie.
    stolen = bob.delete(f"/api/v1/collections/{made.json['id']}", headers=_csrf(alice))
    assert stolen.status_code == 403
    assert alice.get(f"/api/v1/collections/{made.json['id']}").status_code == 200


def test_the_page_learns_only_whether_sign_in_is_offered(oidc_app, client):
    assert oidc_app.test_client().get("/auth/config").json == {"oidc": True}
    assert client.get("/auth/config").json == {"oidc": False}
    assert client.get("/auth/login").status_code == 404
    assert client.get("/auth/session").status_code == 401
    assert client.post("/auth/logout").status_code == 401


def test_bearer_callers_have_no_session_to_end(browser, admin):
    refused = browser.post("/auth/logout", headers=admin)
    assert refused.status_code == 400 and "DELETE /api/v1/tokens" in refused.json["detail"]


@pytest.mark.parametrize(
    "env, message",
    [
        ({"POSTRAG_OIDC_SCOPES": "profile email"}, "must include openid"),
        ({"POSTRAG_OIDC_SCOPES": 'openid "x'}, "is not an OAuth scope"),
        ({"POSTRAG_OIDC_CLIENT_ID": "web"}, "need POSTRAG_OIDC_ISSUER"),
    ],
)
def test_sign_in_settings_are_checked(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_the_client_id_defaults_to_the_audience():
    issuer = {"POSTRAG_OIDC_ISSUER": "https://id.example/realms/x", "POSTRAG_OIDC_AUDIENCE": "api"}
    assert Settings.from_env(issuer).oidc_client == "api"
    assert Settings.from_env({**issuer, "POSTRAG_OIDC_CLIENT_ID": "web"}).oidc_client == "web"
