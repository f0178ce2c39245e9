"""Connecting Atlassian: consent (3LO with PKCE) with a signed, expiring, single-use state bound
to its user; the code exchanged into the encrypted vault; the sites listed with a fresh token."""

from __future__ import annotations

import hashlib
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest

from app.db import scope
from app.services import atlassian
from app.services.secrets import Keyring
from app.settings import OAuthClient, Settings, SettingsError
from tests.fake_atlassian import SITES, FakeAtlassian
from tests.helpers import closed_port_url

KEY = "k1-" + "abcdefghijklmnopqrstuvwxyz0123456789"
CALLBACK = "/api/v1/connectors/atlassian/callback"


@pytest.fixture
def fake():
    with FakeAtlassian() as server:
        yield server


def atlassian_app(make_app, fake, **changes):
    client = OAuthClient("atlassian", fake.token_url, fake.client_id, fake.client_secret)
    settings = {
        "secret_key": KEY,
        "oauth_clients": (client,),
        "atlassian_authorize_url": fake.authorize_url,
        "atlassian_resources_url": fake.resources_url,
        "atlassian_me_url": fake.me_url,
    }
    return make_app(**{**settings, **changes})


@pytest.fixture
def api(make_app, fake):
    return atlassian_app(make_app, fake).test_client()


def authorize_url(api, headers) -> str:
    response = api.get("/api/v1/connectors/atlassian/authorize", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["authorize_url"]


def consent(url: str) -> str:
    """The browser at Atlassian: where the fake sends it back (the callback's path and query)."""
    back = httpx.get(url, follow_redirects=False)
    assert back.status_code == 302, back.text
    parts = urlsplit(back.headers["Location"])
    assert parts.path == CALLBACK
    return f"{parts.path}?{parts.query}"


def state_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]


def stored(database_url):
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT owner_id, provider, access_token, refresh_token FROM connector_tokens"
        ).fetchall()


def consents(database_url) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM connector_consents").fetchone()[0]


def test_consent_round_trip_stores_tokens_encrypted_and_lists_the_sites(
    api, admin, fake, database_url
):
    url = authorize_url(api, admin)
    assert url.startswith(fake.authorize_url + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["audience"] == "api.atlassian.com" and query["client_id"] == "atl-client"
    assert query["response_type"] == "code" and query["prompt"] == "consent"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert "offline_access" in query["scope"].split()
    assert query["redirect_uri"] == "http://localhost" + CALLBACK
    assert consents(database_url) == 1
    back = api.get(consent(url))  # a browser without postrag's cookie: the state names the user
    assert back.status_code == 200, back.json
    assert back.json["provider"] == "atlassian" and back.json["connected"] is True
    assert back.json["scopes"] == fake.scope.split()
    assert "at-1" not in back.get_data(as_text=True) and "rt-1" not in back.get_data(as_text=True)
    ((owner, provider, access, refresh),) = stored(database_url)
    assert owner == api.get("/api/v1/me", headers=admin).json["id"] and provider == "atlassian"
    assert b"at-1" not in bytes(access) and b"rt-1" not in bytes(refresh)
    assert consents(database_url) == 0
    listed = api.get("/api/v1/connectors", headers=admin).json["items"]
    assert [c["provider"] for c in listed] == ["atlassian"]
    sites = api.get("/api/v1/connectors/atlassian/resources", headers=admin)
    assert sites.status_code == 200, sites.json
    assert sites.json["items"] == [{k: SITES[0][k] for k in ("id", "name", "url", "scopes")}]


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_browser_reaching_the_callback_is_sent_back_to_the_web_page(
    api, admin, fake, database_url
):
    back = api.get(consent(authorize_url(api, admin)), headers=BROWSER)
    assert back.status_code == 303, back.get_data(as_text=True)
    assert back.headers["Location"] == "/?connected=atlassian"
    assert [provider for _, provider, _, _ in stored(database_url)] == ["atlassian"]
    fake.deny = True  # a refused consent: the page is told why, and nothing more is stored
    refused = api.get(consent(authorize_url(api, admin)), headers=BROWSER)
    assert refused.status_code == 303, refused.get_data(as_text=True)
    location = urlsplit(refused.headers["Location"])
    assert location.path == "/"
    assert "(access_denied)" in parse_qs(location.query)["connect_error"][0]
    assert len(stored(database_url)) == 1 and consents(database_url) == 0
    # An API client asking for JSON keeps the JSON answers, the problem included.
    as_json = api.get(consent(authorize_url(api, admin)), headers={"Accept": "application/json"})
    assert as_json.status_code == 400 and "(access_denied)" in as_json.json["detail"]
    assert as_json.headers["Content-Type"] == "application/problem+json"
    fake.deny = False
    connected = api.get(consent(authorize_url(api, admin)), headers={"Accept": "*/*"})
    assert connected.status_code == 200 and connected.json["connected"] is True
    # A browser whose web session has expired meanwhile is anonymous here, not refused.
    api.set_cookie("postrag_session", "expired-or-signed-out")
    stale = api.get(consent(authorize_url(api, admin)), headers=BROWSER)
    assert stale.status_code == 303 and stale.headers["Location"] == "/?connected=atlassian"
    assert api.get("/readyz", headers=BROWSER).status_code == 200  # the other optional endpoint


def test_a_consent_link_opened_in_another_browser_stores_nothing(
    make_app, fake, api, admin, database_url
):
    # An attacker starts a consent as themselves and sends the link to a victim, whose browser
    # has no consent cookie: the victim's Atlassian account must not be stored for them.
    callback = consent(authorize_url(api, admin))
    victim = atlassian_app(make_app, fake).test_client()
    refused = victim.get(callback)
    assert refused.status_code == 400 and "another browser" in refused.json["detail"]
    assert stored(database_url) == [] and consents(database_url) == 0  # and used up
    # From the browser that started it, a consent completes (its cookie is HttpOnly, Lax).
    assert (
        "HttpOnly"
        in api.get("/api/v1/connectors/atlassian/authorize", headers=admin).headers["Set-Cookie"]
    )


def test_a_replayed_state_is_refused(api, admin, database_url):
    callback = consent(authorize_url(api, admin))
    assert api.get(callback).status_code == 200
    again = api.get(callback)
    assert again.status_code == 400 and "already used" in again.json["detail"]
    assert again.headers["Content-Type"] == "application/problem+json"


def test_tampered_or_missing_states_are_refused(api, admin, new_user, database_url):
    bob = new_user("bob")
    bob_id = api.get("/api/v1/me", headers=bob).json["id"]
    callback = consent(authorize_url(api, admin))
    state = parse_qs(urlsplit(callback).query)["state"][0]
    payload, signature = state.split(".")
    forged_payload = atlassian.sign_state(
        Keyring("another-secret-" + "0123456789abcdefghijklmnop"),
        atlassian.ConsentState(bob_id, "n", int(time.time()) + 60),
    ).split(".")[0]
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    for bad in (
        f"{forged_payload}.{signature}",
        f"{payload}.{flipped}",
        f"{payload}.",
        "garbage",
        "é." * 10,
        "x" * 1500,
    ):
        response = api.get(CALLBACK, query_string={"code": "code-1", "state": bad})
        assert response.status_code == 400, (bad, response.json)
        assert "not one postrag signed" in response.json["detail"]
    missing = api.get(CALLBACK, query_string={"code": "code-1"})
    assert missing.status_code == 400 and "without its state" in missing.json["detail"]
    assert stored(database_url) == []
    assert api.get(callback).status_code == 200  # the genuine state was not used up


def test_an_expired_state_is_refused(api, admin, database_url):
    admin_id = api.get("/api/v1/me", headers=admin).json["id"]
    old = atlassian.sign_state(
        Keyring(KEY), atlassian.ConsentState(admin_id, "n", int(time.time()) - 1)
    )
    response = api.get(CALLBACK, query_string={"code": "code-1", "state": old})
    assert response.status_code == 400 and "expired" in response.json["detail"]
    # Signed as live, but the stored consent has expired.
    callback = consent(authorize_url(api, admin))
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE connector_consents SET expires_at = now() - interval '1 second'")
    response = api.get(callback)
    assert response.status_code == 400 and "expired" in response.json["detail"]
    assert stored(database_url) == []


def test_a_state_of_another_user_is_refused(api, admin, new_user, database_url):
    bob = new_user("bob")
    callback = consent(authorize_url(api, admin))
    response = api.get(callback, headers=bob)
    assert response.status_code == 403 and "another user" in response.json["detail"]
    # Bob's browser, signed in on the web page, is refused the same way.
    secret = secrets.token_urlsafe(32)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO web_sessions (secret_hash, user_id, expires_at)"
            " SELECT %s, id, now() + interval '1 hour' FROM users WHERE name = 'bob'",
            (hashlib.sha256(secret.encode()).digest(),),
        )
    api.set_cookie("postrag_session", secret)
    response = api.get(callback)
    assert response.status_code == 403, response.json
    api.delete_cookie("postrag_session")
    assert stored(database_url) == []
    assert api.get(callback, headers=admin).status_code == 200  # its own user completes it


def test_a_code_given_for_another_users_consent_is_refused(api, admin, new_user, database_url):
    bob = new_user("bob")
    admins_code = parse_qs(urlsplit(consent(authorize_url(api, admin))).query)["code"][0]
    bobs_state = state_of(authorize_url(api, bob))
    response = api.get(CALLBACK, query_string={"code": admins_code, "state": bobs_state})
    assert response.status_code == 400, response.json  # PKCE: not the verifier of that code
    assert "refused the authorization code (invalid_grant)" in response.json["detail"]
    assert stored(database_url) == []


def test_a_refused_consent_is_400_and_uses_the_state(api, admin, fake, database_url):
    fake.deny = True
    callback = consent(authorize_url(api, admin))
    assert "error=access_denied" in callback
    response = api.get(callback)
    assert response.status_code == 400 and "(access_denied)" in response.json["detail"]
    assert consents(database_url) == 0 and stored(database_url) == []


@pytest.mark.parametrize(
    ("answer", "status", "says"),
    [
        ((500, {"error": "server_error"}), 502, "answered 500 (server_error)"),
        ((503, ["not", "an object"]), 502, "without a JSON object"),
        ((200, {"access_token": ""}), 502, "access_token is wrong"),
        ((200, {"token_type": "Bearer"}), 502, "answered 200 (no token)"),
        ((401, {"error": "invalid_client"}), 502, "answered 401 (invalid_client)"),
        ((403, {"error": "invalid_grant"}), 400, "connect again"),
    ],
)
def test_token_endpoint_failures_store_nothing(
    api, admin, fake, database_url, answer, status, says
):
    callback = consent(authorize_url(api, admin))
    fake.override = answer
    response = api.get(callback)
    assert response.status_code == status, response.json
    assert says in response.json["detail"]
    assert response.headers["Content-Type"] == "application/problem+json"
    assert stored(database_url) == []


def test_an_unreachable_token_endpoint_is_503(make_app, fake, admin, database_url):
    client = OAuthClient("atlassian", closed_port_url() + "/oauth/token", "atl-client", None)
    api = make_app(
        secret_key=KEY, oauth_clients=(client,), atlassian_authorize_url=fake.authorize_url
    ).test_client()
    response = api.get(consent(authorize_url(api, admin)))
    assert response.status_code == 503 and "cannot be reached" in response.json["detail"]
    assert stored(database_url) == []


def test_without_configuration_the_consent_is_503_naming_the_setting(make_app, fake, admin):
    unconfigured = make_app(secret_key=KEY).test_client()
    response = unconfigured.get("/api/v1/connectors/atlassian/authorize", headers=admin)
    assert response.status_code == 503
    assert "POSTRAG_OAUTH_CLIENT_ID__ATLASSIAN" in response.json["detail"]
    keyless = atlassian_app(make_app, fake, secret_key=None).test_client()
    response = keyless.get("/api/v1/connectors/atlassian/authorize", headers=admin)
    assert response.status_code == 503 and "POSTRAG_SECRET_KEY" in response.json["detail"]


def test_a_read_only_token_cannot_start_a_consent(api, admin):
    token = api.post("/api/v1/tokens", json={"name": "ro", "scopes": ["read"]}, headers=admin)
    assert token.status_code == 201, token.json
    reader = {"Authorization": f"Bearer {token.json['token']}"}
    response = api.get("/api/v1/connectors/atlassian/authorize", headers=reader)
    assert response.status_code == 403 and "'write' scope" in response.json["detail"]


def test_an_expiring_token_is_refreshed_to_list_the_sites(api, admin, fake):
    fake.expires_in = 30  # within the vault's minute of skew: refreshed before use
    assert api.get(consent(authorize_url(api, admin))).status_code == 200
    sites = api.get("/api/v1/connectors/atlassian/resources", headers=admin)
    assert sites.status_code == 200, sites.json
    assert fake.grants == 2 and [s["id"] for s in sites.json["items"]] == [SITES[0]["id"]]


def test_a_revoked_access_token_is_refreshed_once_after_a_401(api, admin, fake):
    assert api.get(consent(authorize_url(api, admin))).status_code == 200
    fake.access.clear()  # Atlassian no longer takes at-1; the vault still thinks it valid
    sites = api.get("/api/v1/connectors/atlassian/resources", headers=admin)
    assert sites.status_code == 200, sites.json
    assert fake.grants == 2
    fake.access.clear()
    fake.override = (500, {"error": "server_error"})  # and now the refresh fails too
    failed = api.get("/api/v1/connectors/atlassian/resources", headers=admin)
    assert failed.status_code == 502, failed.json


def test_sites_need_a_connection_and_a_well_formed_answer(api, admin, fake):
    response = api.get("/api/v1/connectors/atlassian/resources", headers=admin)
    assert response.status_code == 404 and "not connected" in response.json["detail"]
    assert api.get(consent(authorize_url(api, admin))).status_code == 200
    fake.sites = {"not": "a list"}
    response = api.get("/api/v1/connectors/atlassian/resources", headers=admin)
    assert response.status_code == 502 and "accessible resources" in response.json["detail"]
    assert "at-1" not in response.get_data(as_text=True)


def test_consents_under_way_are_their_users_only(api, admin, new_user, database_url):
    bob = new_user("bob")
    authorize_url(api, admin)
    authorize_url(api, bob)
    bob_id = api.get("/api/v1/me", headers=bob).json["id"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        with scope.acting_as(conn, bob_id):
            seen = conn.execute("SELECT user_id FROM connector_consents").fetchall()
            assert seen == [(bob_id,)]
            assert conn.execute("DELETE FROM connector_consents").rowcount == 1
        assert conn.execute("SELECT count(*) FROM connector_consents").fetchone()[0] == 1


def test_atlassian_settings_default_to_atlassian_cloud():
    settings = Settings.from_env({"POSTRAG_OAUTH_CLIENT_ID__ATLASSIAN": "abc"})
    (client,) = settings.oauth_clients
    assert (client.provider, client.token_url) == (
        "atlassian",
        "https://auth.atlassian.com/oauth/token",
    )
    assert settings.atlassian_authorize_url == "https://auth.atlassian.com/authorize"
    assert "offline_access" in settings.atlassian_scopes
    for env, named in (
        ({"POSTRAG_ATLASSIAN_SCOPES": "read:jira-work"}, "must include offline_access"),
        ({"POSTRAG_ATLASSIAN_AUTHORIZE_URL": "ftp://x"}, "POSTRAG_ATLASSIAN_AUTHORIZE_URL"),
        ({"POSTRAG_ATLASSIAN_RESOURCES_URL": "x"}, "POSTRAG_ATLASSIAN_RESOURCES_URL"),
    ):
        with pytest.raises(SettingsError, match=named):
            Settings.from_env(env)


def accounts(api, headers, user_id: int) -> list[dict]:
    response = api.get(f"/api/v1/users/{user_id}/accounts", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["items"]


def test_a_consent_links_its_atlassian_account_to_the_user(api, admin, new_user, fake, caplog):
    back = api.get(consent(authorize_url(api, admin)))
    assert back.status_code == 200 and back.json["account_id"] == fake.me["account_id"]
    admin_id = api.get("/api/v1/me", headers=admin).json["id"]
    [link] = accounts(api, admin, admin_id)
    assert (link["provider"], link["account_id"], link["linked_by"]) == (
        "atlassian",
        fake.me["account_id"],
        "consent",
    )
    # The same Atlassian account consented by another user now maps to that user only.
    bob = new_user("bob")
    bob_id = api.get("/api/v1/me", headers=bob).json["id"]
    assert api.get(consent(authorize_url(api, bob))).json["account_id"] == fake.me["account_id"]
    assert accounts(api, admin, admin_id) == []
    assert [a["account_id"] for a in accounts(api, bob, bob_id)] == [fake.me["account_id"]]
    assert api.get(f"/api/v1/users/{admin_id}/accounts", headers=bob).status_code == 404
    # Without the read:me scope the connection stands; no account is linked.
    fake.me = None
    with caplog.at_level("WARNING"):
        back = api.get(consent(authorize_url(api, admin)))
    assert back.status_code == 200 and back.json["account_id"] is None
    assert "its account is unknown" in caplog.text
    assert accounts(api, admin, admin_id) == []


def test_admins_link_and_unlink_accounts_with_problems_for_bad_input(api, admin, new_user):
    bob = new_user("bob")
    bob_id = api.get("/api/v1/me", headers=bob).json["id"]
    url = f"/api/v1/users/{bob_id}/accounts/atlassian"
    linked = api.put(url, json={"account_id": "5b10a2844c20165700ede21g"}, headers=admin)
    assert linked.status_code == 200 and linked.json["linked_by"] == "admin", linked.json
    assert [a["account_id"] for a in accounts(api, bob, bob_id)] == ["5b10a2844c20165700ede21g"]
    refused = {
        (url, "bob's own"): (bob, {"account_id": "x"}, 403),
        (url, "bad id"): (admin, {"account_id": "<script>"}, 422),
        (url, "extra"): (admin, {"account_id": "x", "user": 1}, 422),
        (f"/api/v1/users/{bob_id}/accounts/github", "provider"): (admin, {"account_id": "x"}, 404),
        ("/api/v1/users/999999/accounts/atlassian", "user"): (admin, {"account_id": "x"}, 404),
    }
    for (where, why), (headers, body, status) in refused.items():
        response = api.put(where, json=body, headers=headers)
        assert response.status_code == status, (why, response.json)
        assert response.content_type == "application/problem+json", why
    assert api.delete(url, headers=bob).status_code == 403
    assert api.delete(url, headers=admin).status_code == 204
    assert api.delete(url, headers=admin).status_code == 404
    assert accounts(api, bob, bob_id) == []
