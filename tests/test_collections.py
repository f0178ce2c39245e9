"""Collections: CRUD, unique names per owner, languages, sharing, isolation."""


def test_create_get_update_delete(client, admin):
    created = client.post(
        "/api/v1/collections",
        headers=admin,
        json={"name": "papers", "description": "PDFs", "language": "french"},
    )
    assert created.status_code == 201
    body = created.json
    assert body["language"] == "french" and body["is_shared"] is False
    location = created.headers["Location"]
    assert location == f"/api/v1/collections/{body['id']}"
    patched = client.patch(location, headers=admin, json={"name": "articles", "is_shared": True})
    assert patched.status_code == 200
    assert patched.json["name"] == "articles" and patched.json["is_shared"] is True
    assert patched.json["description"] == "PDFs"
    assert client.delete(location, headers=admin).status_code == 204
    assert client.get(location, headers=admin).status_code == 404


def test_names_are_unique_per_owner(client, admin, new_user):
    assert client.post("/api/v1/collections", headers=admin, json={"name": "x"}).status_code == 201
    again = client.post("/api/v1/collections", headers=admin, json={"name": "x"})
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"
    other = new_user()
    assert client.post("/api/v1/collections", headers=other, json={"name": "x"}).status_code == 201


def test_bad_bodies_are_422(client, admin):
    for body in (
        {"name": ""},
        {"name": "a", "language": "klingon"},
        {"name": "a", "language": "Robert'); DROP TABLE users;--"},
        {"name": "a", "x": 1},
    ):
        response = client.post("/api/v1/collections", headers=admin, json=body)
        assert response.status_code == 422, body
    created = client.post("/api/v1/collections", headers=admin, json={"name": "ok"}).json
    nulled = client.patch(
        f"/api/v1/collections/{created['id']}", headers=admin, json={"name": None}
    )
    assert nulled.status_code == 422


def test_private_collections_are_invisible_to_others(client, admin, new_user):
    private = client.post("/api/v1/collections", headers=admin, json={"name": "p"}).json
    bob = new_user()
    path = f"/api/v1/collections/{private['id']}"
    assert client.get(path, headers=bob).status_code == 404
    assert client.patch(path, headers=bob, json={"name": "mine"}).status_code == 404
    assert client.delete(path, headers=bob).status_code == 404
    assert client.get("/api/v1/collections", headers=bob).json["total"] == 0


def test_shared_collections_are_readable_but_not_writable(client, admin, new_user):
    shared = client.post(
        "/api/v1/collections", headers=admin, json={"name": "s", "is_shared": True}
    ).json
    bob = new_user()
    path = f"/api/v1/collections/{shared['id']}"
    assert client.get(path, headers=bob).status_code == 200
    assert client.get("/api/v1/collections", headers=bob).json["total"] == 1
    assert client.patch(path, headers=bob, json={"name": "mine"}).status_code == 403
    assert client.delete(path, headers=bob).status_code == 403


def test_list_is_paginated_newest_first(client, admin):
    for name in ("a", "b", "c"):
        client.post("/api/v1/collections", headers=admin, json={"name": name})
    page = client.get("/api/v1/collections?limit=2", headers=admin).json
    assert page["total"] == 3
    assert [c["name"] for c in page["items"]] == ["c", "b"]
