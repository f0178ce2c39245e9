"""Users: the first admin, admin-only user management, /me."""

import stat

from app import create_app
from tests.helpers import bearer, close_app


def test_first_start_creates_an_admin_and_a_0600_token_file(settings, client):
    path = settings.data_dir / "admin-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    me = client.get("/api/v1/me", headers=bearer(path.read_text().strip()))
    assert me.status_code == 200
    assert me.json["name"] == "admin"
    assert me.json["role"] == "admin"


def test_a_second_start_creates_no_second_admin(settings, app, admin):
    token_before = (settings.data_dir / "admin-token").read_text()
    second = create_app(settings)
    try:
        users = second.test_client().get("/api/v1/users", headers=admin).json
    finally:
        close_app(second)
    assert users["total"] == 1
    assert (settings.data_dir / "admin-token").read_text() == token_before


def test_admin_creates_a_user_whose_token_works(client, admin):
    response = client.post("/api/v1/users", json={"name": "alice"}, headers=admin)
    assert response.status_code == 201
    body = response.json
    assert body["name"] == "alice" and body["role"] == "user"
    assert response.headers["Location"] == f"/api/v1/users/{body['id']}"
    assert client.get(response.headers["Location"], headers=admin).json["name"] == "alice"
    me = client.get("/api/v1/me", headers=bearer(body["token"])).json
    assert me["id"] == body["id"] and me["role"] == "user"


def test_new_users_get_default_preferences(client, admin, database_url):
    import psycopg

    user_id = client.post("/api/v1/users", json={"name": "bob"}, headers=admin).json["id"]
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT top_k, search_mode FROM user_preferences WHERE user_id = %s", (user_id,)
        ).fetchone()
    assert row == (8, "hybrid")


def test_duplicate_user_name_is_409_and_stores_nothing(client, admin):
    assert client.post("/api/v1/users", json={"name": "carol"}, headers=admin).status_code == 201
    again = client.post("/api/v1/users", json={"name": "carol"}, headers=admin)
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"
    assert client.get("/api/v1/users", headers=admin).json["total"] == 2


def test_bad_user_bodies_are_422(client, admin):
    for body in ({"name": "a b"}, {"name": "x", "role": "root"}, {}, {"name": "x" * 101}):
        response = client.post("/api/v1/users", json=body, headers=admin)
        assert response.status_code == 422, body


def test_user_list_is_paginated(client, admin, new_user):
    for _ in range(3):
        new_user()
    page = client.get("/api/v1/users?limit=2&offset=1", headers=admin).json
    assert page["total"] == 4
    assert page["limit"] == 2 and page["offset"] == 1
    assert len(page["items"]) == 2


def test_unknown_user_is_404(client, admin):
    assert client.get("/api/v1/users/424242", headers=admin).status_code == 404
