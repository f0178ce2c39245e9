"""Bearer-token authentication: every endpoint but /healthz and /readyz needs a valid token."""

import psycopg
import pytest

from tests.helpers import bearer

PROTECTED = [
    ("get", "/api/v1/me"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("get", "/api/v1/tokens/1"),
    ("delete", "/api/v1/tokens/1"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/1"),
    ("get", "/openapi.json"),
]


def _assert_401(response):
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_endpoint_but_the_probes_needs_a_token(client, method, path):
    _assert_401(getattr(client, method)(path))


@pytest.mark.parametrize(
    "header",
    [
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
        "Bearer ",
        "Token prg_abc_def",
        "Bearer not-a-postrag-token",
        "Bearer prg__nosecret",
    ],
)
def test_malformed_authorization_is_401(client, header):
    _assert_401(client.get("/api/v1/me", headers={"Authorization": header}))


def test_wrong_secret_for_a_real_prefix_is_401(client, admin_token):
    mark, prefix, secret = admin_token.split("_", 2)
    forged = f"{mark}_{prefix}_{'x' * len(secret)}"
    response = client.get("/api/v1/me", headers=bearer(forged))
    _assert_401(response)
    assert response.json["detail"] == "invalid token"


def test_revoked_token_is_401(client, admin):
    created = client.post("/api/v1/tokens", json={"name": "short-lived"}, headers=admin).json
    assert client.get("/api/v1/me", headers=bearer(created["token"])).status_code == 200
    assert client.delete(f"/api/v1/tokens/{created['id']}", headers=admin).status_code == 204
    response = client.get("/api/v1/me", headers=bearer(created["token"]))
    _assert_401(response)
    assert "revoked or expired" in response.json["detail"]


def test_expired_token_is_401(client, admin, database_url):
    created = client.post(
        "/api/v1/tokens",
        json={"name": "expiring", "expires_at": "2999-01-01T00:00:00Z"},
        headers=admin,
    ).json
    assert client.get("/api/v1/me", headers=bearer(created["token"])).status_code == 200
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = %s",
            (created["id"],),
        )
    _assert_401(client.get("/api/v1/me", headers=bearer(created["token"])))


def test_non_admin_on_admin_routes_is_403(client, new_user):
    user = new_user()
    for response in (
        client.get("/api/v1/users", headers=user),
        client.post("/api/v1/users", json={"name": "sneaky"}, headers=user),
        client.get("/api/v1/users/1", headers=user),
    ):
        assert response.status_code == 403
        assert response.mimetype == "application/problem+json"
        assert response.json["detail"] == "this endpoint is for admins only"


def test_read_only_token_cannot_write(client, admin):
    read_only = client.post(
        "/api/v1/tokens", json={"name": "ro", "scopes": ["read"]}, headers=admin
    ).json
    headers = bearer(read_only["token"])
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    response = client.post("/api/v1/tokens", json={"name": "x"}, headers=headers)
    assert response.status_code == 403
    assert "'write' scope" in response.json["detail"]


def test_last_used_at_is_recorded(client, admin):
    tokens = client.get("/api/v1/tokens", headers=admin).json["items"]
    assert tokens[0]["last_used_at"] is not None
