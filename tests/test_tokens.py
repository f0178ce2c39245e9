"""The caller's own API tokens: create (shown once), list, get, revoke."""

import re

import psycopg

from tests.helpers import admin_token_in, bearer, close_app


def test_create_token_answers_201_with_location_and_secret_once(client, admin):
    response = client.post("/api/v1/tokens", json={"name": "laptop"}, headers=admin)
    assert response.status_code == 201
    body = response.json
    assert re.fullmatch(r"prg_[0-9a-f]{12}_[\w-]{43}", body["token"])
    assert body["prefix"] == body["token"][: len("prg_") + 12]
    assert body["scopes"] == ["read", "write"]
    assert response.headers["Location"] == f"/api/v1/tokens/{body['id']}"
    fetched = client.get(response.headers["Location"], headers=admin)
    assert fetched.status_code == 200
    assert "token" not in fetched.json
    assert fetched.json["prefix"] == body["prefix"]
    assert client.get("/api/v1/me", headers=bearer(body["token"])).json["name"] == "admin"


def test_only_a_hash_of_the_secret_is_stored(client, admin, database_url):
    token = client.post("/api/v1/tokens", json={"name": "x"}, headers=admin).json["token"]
    secret = token.split("_", 2)[2]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT row_to_json(t)::text FROM api_tokens t").fetchall()
    assert rows
    assert all(secret not in row[0] and token not in row[0] for row in rows)


def test_listing_is_paginated_and_never_shows_secrets(client, admin):
    for i in range(3):
        client.post("/api/v1/tokens", json={"name": f"t{i}"}, headers=admin)
    page = client.get("/api/v1/tokens?limit=2&offset=0", headers=admin).json
    assert page["total"] == 4  # the bootstrap token and three new ones
    assert [t["name"] for t in page["items"]] == ["t2", "t1"]
    assert all("token" not in t for t in page["items"])
    rest = client.get("/api/v1/tokens?limit=2&offset=2", headers=admin).json
    assert [t["name"] for t in rest["items"]] == ["t0", "initial"]


def test_another_users_token_is_404_for_every_verb(client, admin, new_user):
    alice = new_user()
    theirs = client.post("/api/v1/tokens", json={"name": "mine"}, headers=alice).json
    assert client.get(f"/api/v1/tokens/{theirs['id']}", headers=admin).status_code == 404
    assert client.delete(f"/api/v1/tokens/{theirs['id']}", headers=admin).status_code == 404
    listed = client.get("/api/v1/tokens", headers=admin).json["items"]
    assert theirs["id"] not in {t["id"] for t in listed}
    assert client.get("/api/v1/me", headers=bearer(theirs["token"])).status_code == 200


def test_revoke_is_idempotent_and_visible(client, admin):
    created = client.post("/api/v1/tokens", json={"name": "old"}, headers=admin).json
    assert client.delete(f"/api/v1/tokens/{created['id']}", headers=admin).status_code == 204
    first = client.get(f"/api/v1/tokens/{created['id']}", headers=admin).json["revoked_at"]
    assert client.delete(f"/api/v1/tokens/{created['id']}", headers=admin).status_code == 204
    again = client.get(f"/api/v1/tokens/{created['id']}", headers=admin).json["revoked_at"]
    assert first is not None and first == again


def test_revoking_a_token_revokes_the_tokens_made_with_it(client, admin):
    def made_by(headers, name):
        response = client.post("/api/v1/tokens", json={"name": name}, headers=headers)
        assert response.status_code == 201, response.json
        return response.json

    parent = made_by(admin, "parent")
    child = made_by(bearer(parent["token"]), "child")
    grandchild = made_by(bearer(child["token"]), "grandchild")
    sibling = made_by(admin, "sibling")
    assert client.delete(f"/api/v1/tokens/{parent['id']}", headers=admin).status_code == 204
    for gone in (parent, child, grandchild):
        assert client.get("/api/v1/me", headers=bearer(gone["token"])).status_code == 401
        shown = client.get(f"/api/v1/tokens/{gone['id']}", headers=admin).json
        assert shown["revoked_at"] is not None, gone["id"]
    assert client.get("/api/v1/me", headers=bearer(sibling["token"])).status_code == 200
    assert client.get("/api/v1/me", headers=admin).status_code == 200  # its maker stays valid


def test_a_token_cannot_grant_more_scopes_than_it_has(client, admin):
    write_only = client.post(
        "/api/v1/tokens", json={"name": "wo", "scopes": ["write"]}, headers=admin
    ).json
    assert write_only["scopes"] == ["write"]
    response = client.post(
        "/api/v1/tokens",
        json={"name": "x", "scopes": ["read", "write"]},
        headers=bearer(write_only["token"]),
    )
    assert response.status_code == 403
    assert response.json["detail"] == "this token cannot grant scopes it does not have: read"
    same = client.post("/api/v1/tokens", json={"name": "y"}, headers=bearer(write_only["token"]))
    assert same.status_code == 201
    assert same.json["scopes"] == ["write"]


def test_unknown_scope_is_422(client, admin):
    response = client.post(
        "/api/v1/tokens", json={"name": "x", "scopes": ["read", "admin"]}, headers=admin
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["loc"][:2] == ["body", "scopes"]


def test_expiry_must_be_in_the_future_and_have_a_time_zone(client, admin):
    past = client.post(
        "/api/v1/tokens", json={"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, headers=admin
    )
    assert past.status_code == 422
    assert past.json["errors"][0]["loc"] == ["body", "expires_at"]
    naive = client.post(
        "/api/v1/tokens", json={"name": "x", "expires_at": "2999-01-01T00:00:00"}, headers=admin
    )
    assert naive.status_code == 422
    future = client.post(
        "/api/v1/tokens",
        json={"name": "x", "expires_at": "2999-01-01T00:00:00+02:00"},
        headers=admin,
    )
    assert future.status_code == 201
    assert future.json["expires_at"] == "2998-12-31T22:00:00Z"


def test_unknown_token_id_is_404(client, admin):
    assert client.get("/api/v1/tokens/999999", headers=admin).status_code == 404
    assert client.delete("/api/v1/tokens/999999", headers=admin).status_code == 404


def test_far_future_expiry_is_422_not_500(client, admin):
    response = client.post(
        "/api/v1/tokens",
        json={"name": "x", "expires_at": "9999-12-31T23:59:59-10:00"},
        headers=admin,
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["loc"] == ["body", "expires_at"]


def test_a_token_never_outlives_the_token_that_made_it(client, admin):
    parent = client.post(
        "/api/v1/tokens", json={"name": "p", "expires_at": "2990-01-01T00:00:00Z"}, headers=admin
    ).json
    child = client.post("/api/v1/tokens", json={"name": "c"}, headers=bearer(parent["token"]))
    assert child.status_code == 201
    assert child.json["expires_at"] == "2990-01-01T00:00:00Z"
    later = client.post(
        "/api/v1/tokens",
        json={"name": "c2", "expires_at": "2995-01-01T00:00:00Z"},
        headers=bearer(parent["token"]),
    )
    assert later.status_code == 422
    assert "own expiry" in later.json["detail"]


def test_timestamps_are_utc_whatever_the_database_time_zone(make_database, tmp_path):
    from app import create_app
    from app.settings import Settings
    from tests.helpers import MIGRATIONS_DIR

    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        dbname = conn.info.dbname
        conn.execute(f"ALTER DATABASE \"{dbname}\" SET TimeZone = 'America/New_York'")
    settings = Settings(
        database_url=url,
        data_dir=tmp_path,
        migrations_dir=MIGRATIONS_DIR,
        workers=0,
        llm="none",
        rate_limit_per_minute=0,
    )
    app = create_app(settings)
    try:
        token = admin_token_in(tmp_path)
        client = app.test_client()
        me = client.get("/api/v1/me", headers=bearer(token)).json
        assert me["created_at"].endswith("Z")
        created = client.post(
            "/api/v1/tokens",
            json={"name": "tz", "expires_at": "2999-06-01T12:00:00+02:00"},
            headers=bearer(token),
        ).json
        assert created["expires_at"] == "2999-06-01T10:00:00Z"
    finally:
        close_app(app)
