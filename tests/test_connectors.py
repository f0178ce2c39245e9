"""Connector tokens: encrypted at rest, never returned, refreshed once under races, rotated keys."""

from __future__ import annotations

import dataclasses
import os
import threading

import psycopg
import pytest

from app import prepare_database
from app.runtime import Runtime
from app.services import connectors
from app.services.secrets import Keyring, SecretError
from app.services.worker import connect
from app.settings import OAuthClient, SettingsError
from tests.fake_oauth import FakeOAuthServer
from tests.helpers import closed_port_url, run

KEY = "k1-" + "abcdefghijklmnopqrstuvwxyz0123456789"
NEW_KEY = "k2-" + "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210"
GRANT = {
    "access_token": "at-secret-0",
    "refresh_token": "rt-0",
    "expires_in": 3600,
    "scope": "read:jira-work",
    "token_type": "Bearer",
    "id_token": "ignored",
}


@pytest.fixture
def oauth():
    with FakeOAuthServer() as server:
        server.valid.add("rt-0")
        yield server


@pytest.fixture
def keyed_app(make_app, oauth):
    return make_app(
        secret_key=KEY, oauth_clients=(OAuthClient("jira", oauth.url, "postrag", "s3cret"),)
    )


@pytest.fixture
def api(keyed_app):
    return keyed_app.test_client()


def user_id(api, headers):
    return api.get("/api/v1/me", headers=headers).json["id"]


def stored_row(database_url):
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT owner_id, access_token, refresh_token, key_id FROM connector_tokens"
        ).fetchone()


def test_tokens_are_stored_encrypted_and_never_returned(api, admin, database_url, keyed_app):
    response = api.put("/api/v1/connectors/jira", json=GRANT, headers=admin)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["provider"] == "jira" and body["connected"] is True
    assert body["scopes"] == ["read:jira-work"] and body["expired"] is False
    listed = api.get("/api/v1/connectors", headers=admin)
    assert listed.json["items"] == [body]
    for text in (response.get_data(as_text=True), listed.get_data(as_text=True)):
        assert "at-secret-0" not in text and "rt-0" not in text
    owner, access, refresh, key_id = stored_row(database_url)
    assert b"at-secret-0" not in bytes(access) and b"rt-0" not in bytes(refresh)
    assert key_id == Keyring(KEY).current.id
    settings = Runtime.of(keyed_app).settings
    with connect(database_url) as conn:
        token, _ = connectors.access_token(conn, owner, "jira", Keyring(KEY), settings)
    assert token == "at-secret-0"


def test_each_user_sees_and_removes_only_their_own(api, admin, new_user):
    other = new_user()
    assert api.put("/api/v1/connectors/jira", json=GRANT, headers=admin).status_code == 200
    assert api.get("/api/v1/connectors", headers=other).json["items"] == []
    assert api.delete("/api/v1/connectors/jira", headers=other).status_code == 404
    assert api.post("/api/v1/connectors/jira/refresh", headers=other).status_code == 404
    assert api.delete("/api/v1/connectors/jira", headers=admin).status_code == 204
    assert api.get("/api/v1/connectors", headers=admin).json["items"] == []


def test_bad_input_and_a_server_without_a_key(api, client, admin):
    bad = api.put("/api/v1/connectors/Jira!", json=GRANT, headers=admin)
    assert bad.status_code == 422 and bad.json["errors"][0]["loc"] == ["path", "provider"]
    missing = api.put("/api/v1/connectors/jira", json={"refresh_token": "x"}, headers=admin)
    assert missing.status_code == 422
    assert missing.json["errors"][0]["loc"] == ["body", "access_token"]
    keyless = client.put("/api/v1/connectors/jira", json=GRANT, headers=admin)  # no secret key
    assert keyless.status_code == 503 and "POSTRAG_SECRET_KEY" in keyless.json["detail"]


def test_concurrent_refreshes_spend_a_rotating_refresh_token_once(
    api, admin, oauth, keyed_app, database_url
):
    expiring = {**GRANT, "expires_in": 30}  # inside the refresh skew: due now
    assert api.put("/api/v1/connectors/jira", json=expiring, headers=admin).status_code == 200
    owner = user_id(api, admin)
    settings = Runtime.of(keyed_app).settings
    oauth.delay_s = 0.3
    tokens: list[str] = []

    def refresh() -> None:
        with connect(database_url) as conn:
            tokens.append(connectors.access_token(conn, owner, "jira", Keyring(KEY), settings)[0])

    threads = [threading.Thread(target=refresh) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert tokens == ["at-1", "at-1", "at-1"]
    assert (oauth.grants, oauth.rejected) == (1, 0)
    # The fake is strict: spending the first refresh token again is refused.
    assert (
        oauth.answer(
            {
                "client_id": "postrag",
                "client_secret": "s3cret",
                "grant_type": "refresh_token",
                "refresh_token": "rt-0",
            }
        )[0]
        == 400
    )
    forced = api.post("/api/v1/connectors/jira/refresh", headers=admin)
    assert forced.status_code == 200 and forced.json["scopes"] == [
        "read:jira-work",
        "offline_access",
    ]
    assert "at-2" not in forced.get_data(as_text=True) and oauth.grants == 2


def test_refresh_failures_are_clear(api, admin, oauth, make_app):
    api.put("/api/v1/connectors/jira", json=GRANT, headers=admin)
    oauth.valid.clear()  # the provider revoked it
    revoked = api.post("/api/v1/connectors/jira/refresh", headers=admin)
    assert revoked.status_code == 409 and "connect again" in revoked.json["detail"]
    api.put("/api/v1/connectors/github", json=GRANT, headers=admin)
    unconfigured = api.post("/api/v1/connectors/github/refresh", headers=admin)
    assert (
        unconfigured.status_code == 409
        and "POSTRAG_OAUTH_TOKEN_URL__GITHUB" in (unconfigured.json["detail"])
    )
    api.put("/api/v1/connectors/jira", json={"access_token": "only"}, headers=admin)
    assert api.post("/api/v1/connectors/jira/refresh", headers=admin).status_code == 409
    down = make_app(
        secret_key=KEY, oauth_clients=(OAuthClient("jira", closed_port_url(), "postrag", "s3cret"),)
    )
    down_api = down.test_client()
    down_api.put("/api/v1/connectors/jira", json=GRANT, headers=admin)
    assert down_api.post("/api/v1/connectors/jira/refresh", headers=admin).status_code == 503


@pytest.mark.parametrize("status", [200, 400])
def test_a_token_endpoint_answering_a_json_list_is_502(api, admin, oauth, status):
    api.put("/api/v1/connectors/jira", json=GRANT, headers=admin)
    oauth.override = (status, ["not", "an", "object"])
    refreshed = api.post("/api/v1/connectors/jira/refresh", headers=admin)
    assert refreshed.status_code == 502, refreshed.json
    assert "without a JSON object" in refreshed.json["detail"]


@pytest.mark.parametrize(
    "grant",
    [
        {"access_token": "at-x", "expires_in": "an hour"},
        {"access_token": "at-x", "expires_in": 1e300},
        {"access_token": "at-x", "expires_in": -5},
        {"access_token": "at-x", "refresh_token": 42},
        {"access_token": "at-x", "refresh_token": ""},
        {"access_token": ""},
    ],
)
def test_a_token_response_of_the_wrong_shape_is_502_and_keeps_the_connection(
    api, admin, oauth, grant
):
    api.put("/api/v1/connectors/jira", json=GRANT, headers=admin)
    before = api.get("/api/v1/connectors", headers=admin).json
    oauth.override = (200, grant)
    refreshed = api.post("/api/v1/connectors/jira/refresh", headers=admin)
    assert refreshed.status_code == 502, refreshed.json
    assert "jira token endpoint" in refreshed.json["detail"]
    assert api.get("/api/v1/connectors", headers=admin).json == before


def test_a_ciphertext_moved_to_another_row_does_not_decrypt(api, admin, new_user, database_url):
    other = new_user()
    api.put("/api/v1/connectors/jira", json=GRANT, headers=admin)
    api.put("/api/v1/connectors/jira", json={**GRANT, "access_token": "theirs"}, headers=other)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE connector_tokens SET access_token = (SELECT access_token FROM connector_tokens"
            " WHERE owner_id = %s) WHERE owner_id = %s",
            (user_id(api, admin), user_id(api, other)),
        )
    with connect(database_url) as conn, pytest.raises(SecretError, match="does not decrypt"):
        row = conn.execute(
            "SELECT * FROM connector_tokens WHERE owner_id = %s", (user_id(api, other),)
        ).fetchone()
        Keyring(KEY).decrypt(
            row["access_token"], row["key_id"], f"connector:{row['owner_id']}:jira:access"
        )


def test_start_refuses_bad_keys_and_rotation_re_encrypts(
    api, admin, settings, database_url, tmp_path
):
    api.put("/api/v1/connectors/jira", json=GRANT, headers=admin)
    for secret, message in (
        (None, "not set"),
        ("short", "shorter"),
        ("a" * 40, "too few"),
        (NEW_KEY, Keyring(KEY).current.id),
    ):
        with pytest.raises(SettingsError, match=message):
            prepare_database(dataclasses.replace(settings, secret_key=secret))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "POSTRAG_DATA_DIR": str(tmp_path / "cli"),
        "POSTRAG_SECRET_KEY": NEW_KEY,
    }
    refused = run("keys", "rotate", env=env)
    assert refused.returncode != 0 and Keyring(KEY).current.id in refused.stderr
    rotated = run("keys", "rotate", env={**env, "POSTRAG_OLD_SECRET_KEYS": KEY})
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 1 connector token row(s) and 0 MCP server header(s)" in rotated.stderr
    prepare_database(dataclasses.replace(settings, secret_key=NEW_KEY))  # starts without the old
    owner, access, _, key_id = stored_row(database_url)
    assert key_id == Keyring(NEW_KEY).current.id
    assert (
        Keyring(NEW_KEY).decrypt(bytes(access), key_id, f"connector:{owner}:jira:access")
        == "at-secret-0"
    )
    generated = run("keys", "generate", env=env)
    assert generated.returncode == 0 and len(generated.stdout.strip()) >= 43
    assert Keyring.from_settings(dataclasses.replace(settings, secret_key=generated.stdout.strip()))
