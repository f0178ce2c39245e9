"""Sharing a collection with users and groups (V2_10): readers and editors end to end, the
row-level security under it, revocation, who has access and why, and bad requests."""

from __future__ import annotations

import psycopg
import pytest

from app.db import scope
from tests.helpers import (
    FOX,
    VALVE,
    ask,
    bearer,
    create_collection,
    drain,
    messages,
    new_chat,
    post_document,
    search,
    upload,
)


@pytest.fixture
def team(app, client, admin, new_user):
    """The admin's private collection `handbook` with fox.txt indexed, and bob and carol (users
    with API tokens) who cannot see it yet."""
    handbook = create_collection(client, admin, "handbook")
    fox = upload(client, admin, handbook, "fox.txt", FOX)
    assert drain(app) == 1
    return {
        "handbook": handbook,
        "fox": fox,
        "bob": new_user("bob"),
        "carol": new_user("carol"),
    }


def _share(client, headers, collection: int, type_: str, name: str, role: str = "reader"):
    return client.post(
        f"/api/v1/collections/{collection}/shares",
        json={"principal": {"type": type_, "name": name}, "role": role},
        headers=headers,
    )


def _shared(client, headers, collection: int, type_: str, name: str, role: str = "reader") -> int:
    response = _share(client, headers, collection, type_, name, role)
    assert response.status_code == 201, response.json
    return int(response.json["id"])


def _can_read(client, headers, collection: int, document: int) -> bool:
    status = client.get(f"/api/v1/collections/{collection}", headers=headers).status_code
    document_status = client.get(f"/api/v1/documents/{document}", headers=headers).status_code
    assert status == document_status, (status, document_status)
    return status == 200


def _hits(client, headers, query: str) -> list[str]:
    response = search(client, headers, query=query)
    assert response.status_code == 200, response.json
    return [hit["filename"] for hit in response.json["hits"]]


def _reads_everything(client, headers, handbook: int, fox: int) -> None:
    """`headers` reach fox.txt in the handbook by every read: listing, the document, its file and
    chunks, search, a chat's citations and /v1 with `rag`."""
    listed = client.get("/api/v1/collections", headers=headers).json["items"]
    assert handbook in [c["id"] for c in listed]
    assert _can_read(client, headers, handbook, fox)
    assert client.get(f"/api/v1/documents/{fox}/content", headers=headers).status_code == 200
    assert client.get(f"/api/v1/documents/{fox}/chunks", headers=headers).json["total"] >= 1
    assert _hits(client, headers, "clever foxes")[0] == "fox.txt"
    chat = new_chat(client, headers, collection_ids=[handbook])
    assert ask(client, headers, chat, "Are foxes clever?").status_code == 201
    assert messages(client, headers, chat)[-1]["citations"][0]["filename"] == "fox.txt"
    completion = client.post(
        "/v1/chat/completions",
        json={
            "model": "extractive",
            "messages": [{"role": "user", "content": "clever foxes"}],
            "rag": {"collection_ids": [handbook]},
        },
        headers=headers,
    )
    assert completion.status_code == 200, completion.json
    assert completion.json["citations"][0]["filename"] == "fox.txt"


@pytest.mark.parametrize("through", ["user", "group"])
def test_a_reader_searches_chats_and_reads_but_changes_nothing(app, client, admin, team, through):
    bob = team["bob"]
    handbook, fox = team["handbook"], team["fox"]
    assert not _can_read(client, bob, handbook, fox)
    assert "fox.txt" not in _hits(client, bob, "clever foxes")
    if through == "group":
        group = client.post("/api/v1/groups", json={"name": "readers"}, headers=admin).json["id"]
        bob_id = client.get("/api/v1/me", headers=bob).json["id"]
        client.post(f"/api/v1/groups/{group}/members", json={"user_id": bob_id}, headers=admin)
        _shared(client, admin, handbook, "group", "readers")
    else:
        _shared(client, admin, handbook, "user", "bob")

    listed = client.get("/api/v1/collections", headers=bob).json["items"]
    assert [(c["id"], c["role"]) for c in listed] == [(handbook, "reader")]
    _reads_everything(client, bob, handbook, fox)

    # Reading is all: no upload, delete, reindex, change of the collection or of its shares.
    uploaded = post_document(client, bob, handbook, "mine.txt", b"Bob was here.")
    assert uploaded.status_code == 403 and "read-only" in uploaded.json["detail"]
    assert client.delete(f"/api/v1/documents/{fox}", headers=bob).status_code == 403
    assert client.post(f"/api/v1/documents/{fox}/reindex", headers=bob).status_code == 403
    patched = client.patch(f"/api/v1/collections/{handbook}", json={"name": "x"}, headers=bob)
    assert patched.status_code == 403
    assert client.delete(f"/api/v1/collections/{handbook}", headers=bob).status_code == 403
    assert _share(client, bob, handbook, "user", "carol").status_code == 403
    assert client.get(f"/api/v1/collections/{handbook}/shares", headers=bob).status_code == 403
    assert client.get(f"/api/v1/documents/{fox}", headers=admin).status_code == 200


def test_an_editor_uploads_reindexes_and_deletes_for_the_owner(app, client, admin, team):
    carol, handbook, fox = team["carol"], team["handbook"], team["fox"]
    _shared(client, admin, handbook, "user", "carol", role="editor")
    listed = client.get("/api/v1/collections", headers=carol).json["items"]
    assert [(c["id"], c["role"]) for c in listed] == [(handbook, "editor")]
    valve = upload(client, carol, handbook, "valve.txt", VALVE)
    assert drain(app) == 1
    document = client.get(f"/api/v1/documents/{valve}", headers=admin).json
    assert document["status"] == "indexed"
    admin_id = client.get("/api/v1/me", headers=admin).json["id"]
    assert document["owner_id"] == admin_id  # the collection's owner owns what editors add
    assert _hits(client, admin, "XR-7734 valve")[0] == "valve.txt"
    assert client.post(f"/api/v1/documents/{fox}/reindex", headers=carol).status_code == 202
    assert drain(app) == 1
    assert client.delete(f"/api/v1/documents/{fox}", headers=carol).status_code == 204
    assert client.get(f"/api/v1/documents/{fox}", headers=admin).status_code == 404
    assert "fox.txt" not in _hits(client, admin, "clever foxes")
    # The collection itself and its shares stay the owner's.
    patched = client.patch(f"/api/v1/collections/{handbook}", json={"name": "x"}, headers=carol)
    assert patched.status_code == 403
    assert _share(client, carol, handbook, "user", "bob").status_code == 403


def test_revoking_a_share_takes_access_away_at_once(app, client, admin, team):
    bob, handbook, fox = team["bob"], team["handbook"], team["fox"]
    share = _shared(client, admin, handbook, "user", "bob", role="editor")
    assert _can_read(client, bob, handbook, fox)
    chat = new_chat(client, bob, collection_ids=[handbook])
    assert (
        client.delete(f"/api/v1/collections/{handbook}/shares/{share}", headers=admin).status_code
        == 204
    )
    assert not _can_read(client, bob, handbook, fox)
    assert "fox.txt" not in _hits(client, bob, "clever foxes")
    assert ask(client, bob, chat, "Are foxes clever?").status_code == 201
    assert messages(client, bob, chat)[-1]["citations"] == []  # the chat's scope is gone
    assert post_document(client, bob, handbook, "x.txt", b"late").status_code == 404
    assert client.delete(f"/api/v1/documents/{fox}", headers=bob).status_code == 404
    again = client.delete(f"/api/v1/collections/{handbook}/shares/{share}", headers=admin)
    assert again.status_code == 404 and again.mimetype == "application/problem+json"


@pytest.fixture
def oidc(make_app, provider):
    app = make_app(oidc_issuer=provider.issuer, oidc_audience="postrag")
    return app.test_client()


def test_a_group_share_follows_the_groups_of_each_token(app, oidc, provider, admin, team):
    handbook, fox = team["handbook"], team["fox"]

    def dana(*groups: str) -> dict[str, str]:
        return bearer(provider.token(sub="s-dana", preferred_username="dana", groups=list(groups)))

    assert not _can_read(oidc, dana("/support"), handbook, fox)  # the group exists from here on
    _shared(oidc, admin, handbook, "group", "/support", role="editor")
    in_group = dana("/support", "/other")
    _reads_everything(oidc, in_group, handbook, fox)
    assert upload(oidc, in_group, handbook, "valve.txt", VALVE)
    # Left the group in the provider: the next token no longer reaches the collection.
    left = dana("/other")
    assert not _can_read(oidc, left, handbook, fox)
    assert "fox.txt" not in _hits(oidc, left, "clever foxes")
    assert post_document(oidc, left, handbook, "x.txt", b"late").status_code == 404


def test_an_admin_made_membership_shares_and_its_removal_unshares(app, client, admin, team):
    bob, handbook, fox = team["bob"], team["handbook"], team["fox"]
    group = client.post("/api/v1/groups", json={"name": "readers"}, headers=admin).json["id"]
    _shared(client, admin, handbook, "group", "readers")
    assert not _can_read(client, bob, handbook, fox)
    bob_id = client.get("/api/v1/me", headers=bob).json["id"]
    added = client.post(f"/api/v1/groups/{group}/members", json={"user_id": bob_id}, headers=admin)
    assert added.status_code == 201
    assert _can_read(client, bob, handbook, fox)
    removed = client.delete(f"/api/v1/groups/{group}/members/{bob_id}", headers=admin)
    assert removed.status_code == 204
    assert not _can_read(client, bob, handbook, fox)
    # Deleting a group deletes the shares naming it.
    client.post(f"/api/v1/groups/{group}/members", json={"user_id": bob_id}, headers=admin)
    assert client.delete(f"/api/v1/groups/{group}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/collections/{handbook}/shares", headers=admin).json["total"] == 0
    assert not _can_read(client, bob, handbook, fox)


def _ids(conn, sql: str) -> set[int]:
    return {row[0] for row in conn.execute(sql)}


def test_rls_applies_shares_to_queries_without_the_applications_filter(
    app, client, admin, team, database_url
):
    handbook, fox = team["handbook"], team["fox"]
    bob_id = client.get("/api/v1/me", headers=team["bob"]).json["id"]
    carol_id = client.get("/api/v1/me", headers=team["carol"]).json["id"]
    _shared(client, admin, handbook, "user", "bob")
    group = client.post("/api/v1/groups", json={"name": "eds"}, headers=admin).json["id"]
    client.post(f"/api/v1/groups/{group}/members", json={"user_id": carol_id}, headers=admin)
    _shared(client, admin, handbook, "group", "eds", role="editor")
    with psycopg.connect(database_url, autocommit=True) as conn:
        chunks = _ids(conn, f"SELECT id FROM document_chunks WHERE document_id = {fox}")
        assert chunks
        for user in (bob_id, carol_id):
            with scope.acting_as(conn, user):
                assert _ids(conn, "SELECT id FROM collections") == {handbook}
                assert _ids(conn, "SELECT id FROM documents") == {fox}
                assert _ids(conn, "SELECT id FROM document_chunks") == chunks
                assert _ids(conn, "SELECT chunk_id FROM chunk_embeddings") == chunks
        with scope.acting_as(conn, bob_id):  # a reader writes nothing, whatever the SQL says
            assert conn.execute("DELETE FROM documents").rowcount == 0
            assert conn.execute("UPDATE collections SET name = 'x'").rowcount == 0
            assert conn.execute("DELETE FROM collection_shares").rowcount == 0
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(
                    "INSERT INTO collection_shares (collection_id, user_id, role)"
                    " VALUES (%s, %s, 'editor')",
                    (handbook, bob_id),
                )
        with scope.acting_as(conn, carol_id):  # an editor writes documents, not the collection
            assert conn.execute("UPDATE collections SET name = 'x'").rowcount == 0
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("UPDATE documents SET owner_id = %s", (bob_id,))  # nor gives them
            assert conn.execute("DELETE FROM documents").rowcount == 1
        with scope.acting_as(conn, bob_id):
            assert _ids(conn, "SELECT id FROM document_chunks") == set()  # gone by cascade
        conn.execute("DELETE FROM collection_shares")
        for user in (bob_id, carol_id):
            with scope.acting_as(conn, user):
                assert _ids(conn, "SELECT id FROM collections") == set()
        # Only the tables' owner could do that: the bookkeeping stayed consistent.
        stats = conn.execute(
            "SELECT count(*) FROM chunk_lexemes WHERE collection_id = %s", (handbook,)
        ).fetchone()
        assert stats == (0,)


def test_access_says_who_and_why(app, client, admin, team):
    handbook = team["handbook"]
    carol_id = client.get("/api/v1/me", headers=team["carol"]).json["id"]
    bob_share = _shared(client, admin, handbook, "user", "bob")
    group = client.post("/api/v1/groups", json={"name": "eds"}, headers=admin).json["id"]
    client.post(f"/api/v1/groups/{group}/members", json={"user_id": carol_id}, headers=admin)
    group_share = _shared(client, admin, handbook, "group", "eds", role="editor")
    # Carol also has a direct reader share; the group makes her an editor.
    _shared(client, admin, handbook, "user", "carol")
    access = client.get(f"/api/v1/collections/{handbook}/access", headers=admin)
    assert access.status_code == 200, access.json
    body = access.json
    assert body["everyone"] is None and body["total"] == 3
    by_name = {user["name"]: user for user in body["items"]}
    admin_name = client.get("/api/v1/me", headers=admin).json["name"]
    assert by_name[admin_name]["because"] == [
        {"via": "owner", "role": "owner", "share_id": None, "group": None}
    ]
    assert by_name["bob"]["can_write"] is False
    assert by_name["bob"]["because"] == [
        {"via": "share", "role": "reader", "share_id": bob_share, "group": None}
    ]
    assert by_name["carol"]["can_write"] is True
    assert {"via": "group", "role": "editor", "share_id": group_share, "group": "eds"} in by_name[
        "carol"
    ]["because"]
    client.patch(f"/api/v1/collections/{handbook}", json={"is_shared": True}, headers=admin)
    paged = client.get(f"/api/v1/collections/{handbook}/access?limit=1&offset=1", headers=admin)
    assert paged.json["everyone"] == "reader"
    assert len(paged.json["items"]) == 1 and paged.json["total"] == 3
    assert (
        client.get(f"/api/v1/collections/{handbook}/access", headers=team["bob"]).status_code == 403
    )


def test_an_owner_sees_a_group_share_as_the_group_not_its_members(app, client, admin, team):
    bob, carol = team["bob"], team["carol"]
    carol_id = client.get("/api/v1/me", headers=carol).json["id"]
    group = client.post("/api/v1/groups", json={"name": "finance"}, headers=admin).json["id"]
    client.post(f"/api/v1/groups/{group}/members", json={"user_id": carol_id}, headers=admin)
    bobs = create_collection(client, bob, "bobs")
    share = _shared(client, bob, bobs, "group", "finance")
    access = client.get(f"/api/v1/collections/{bobs}/access", headers=bob).json
    assert [user["name"] for user in access["items"]] == ["bob"]  # no member of finance
    assert access["groups"] == [{"share_id": share, "group": "finance", "role": "reader"}]
    as_admin = client.get(f"/api/v1/collections/{bobs}/access", headers=admin).json
    assert {user["name"] for user in as_admin["items"]} == {"bob", "carol"}


def test_owner_and_admin_manage_shares_and_bad_requests_are_problems(
    app, client, admin, team, new_user
):
    handbook = team["handbook"]
    erin = new_user("erin")
    erins = create_collection(client, erin, "erins")
    # An admin manages the shares of a collection they cannot read themselves.
    assert client.get(f"/api/v1/collections/{erins}", headers=admin).status_code == 404
    share = _share(client, admin, erins, "user", "bob")
    assert share.status_code == 201 and share.headers["Location"].endswith(
        f"/collections/{erins}/shares/{share.json['id']}"
    )
    assert share.json["principal"]["type"] == "user" and share.json["principal"]["name"] == "bob"
    # The same principal again: its role changes, no second share.
    again = _share(client, erin, erins, "user", "bob", role="editor")
    assert again.status_code == 200 and again.json["id"] == share.json["id"]
    assert again.json["role"] == "editor"
    listed = client.get(f"/api/v1/collections/{erins}/shares", headers=erin).json
    assert listed["total"] == 1 and listed["items"][0]["role"] == "editor"
    got = client.get(f"/api/v1/collections/{erins}/shares/{share.json['id']}", headers=erin)
    assert got.status_code == 200 and got.json == listed["items"][0]
    # Another collection's share id is not this collection's.
    assert (
        client.get(
            f"/api/v1/collections/{handbook}/shares/{share.json['id']}", headers=admin
        ).status_code
        == 404
    )

    # Someone who cannot see the collection learns nothing about it.
    for response in (
        _share(client, team["carol"], erins, "user", "carol"),
        client.get(f"/api/v1/collections/{erins}/shares", headers=team["carol"]),
        client.get(f"/api/v1/collections/{erins}/access", headers=team["carol"]),
        _share(client, admin, 999999, "user", "bob"),
    ):
        assert response.status_code == 404, response.json
        assert response.mimetype == "application/problem+json"

    for body, field in (
        ({"principal": {"type": "user", "name": "nobody"}, "role": "reader"}, "name"),
        ({"principal": {"type": "group", "name": "no-such-group"}, "role": "reader"}, "name"),
        ({"principal": {"type": "user", "name": "erin"}, "role": "reader"}, "name"),  # the owner
        ({"principal": {"type": "robot", "name": "bob"}, "role": "reader"}, "type"),
        ({"principal": {"type": "user", "name": "bob"}, "role": "owner"}, "role"),
        ({"principal": {"type": "user", "name": ""}, "role": "reader"}, "name"),
        ({"principal": {"type": "user", "name": "bob"}}, "role"),
        ({"principal": "bob", "role": "reader"}, "principal"),
        ({"principal": {"type": "user", "name": "bob"}, "role": "reader", "x": 1}, "x"),
    ):
        response = client.post(f"/api/v1/collections/{erins}/shares", json=body, headers=erin)
        assert response.status_code == 422, (body, response.json)
        assert response.mimetype == "application/problem+json"
        assert field in response.json["errors"][0]["loc"], (body, response.json)
    assert client.get(f"/api/v1/collections/{erins}/shares", headers=erin).json["total"] == 1
