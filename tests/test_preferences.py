"""Preferences: defaults without a row, PUT replaces, PATCH changes, validation, isolation."""

from __future__ import annotations

import psycopg
import pytest

from app.services import preferences
from tests.helpers import bearer

PATH = "/api/v1/me/preferences"
DEFAULTS = {
    "chat_model_id": None,
    "chat_model": None,
    "search_mode": "hybrid",
    "top_k": 8,
    "min_similarity": 0.3,
    "temperature": 0.2,
    "system_prompt": "",
    "mcp_server_ids": [],
    "rerank": True,
    "rerank_candidates": None,
    "context_window": None,
}


def insert_model(database_url: str, name: str, kind: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO llm_models (provider, name, kind, dimension) VALUES ('openai', %s, %s, %s)"
            " RETURNING id",
            (name, kind, 4 if kind == "embedding" else None),
        ).fetchone()
    assert row is not None
    return int(row[0])


def without(body: dict, *keys: str) -> dict:
    return {k: v for k, v in body.items() if k not in keys}


def test_defaults_work_without_a_stored_row(client, new_user, database_url):
    bob = new_user()
    stored = client.get(PATH, headers=bob)  # a new user's row holds the column defaults
    assert stored.status_code == 200
    assert without(stored.json, "updated_at") == DEFAULTS
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM user_preferences")
    response = client.get(PATH, headers=bob)
    assert response.status_code == 200
    assert response.json == {**DEFAULTS, "updated_at": None}


def test_the_defaults_are_the_column_defaults(client, admin, database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM user_preferences")
        row = conn.execute(
            "INSERT INTO user_preferences (user_id) SELECT min(id) FROM users"
            " RETURNING chat_model_id, search_mode, top_k, similarity_threshold::float8,"
            " temperature::float8, system_prompt"
        ).fetchone()
    assert row is not None
    expected = preferences.DEFAULTS
    assert row[0] is expected["chat_model_id"] and row[1:3] == (
        expected["search_mode"],
        expected["top_k"],
    )
    assert row[3] == pytest.approx(expected["min_similarity"])
    assert row[4] == pytest.approx(expected["temperature"])
    assert row[5] == expected["system_prompt"]


def test_put_replaces_everything_and_patch_changes_only_what_is_given(
    client, new_user, database_url
):
    chat = insert_model(database_url, "qwen", "chat")
    bob = new_user()
    put = client.put(
        PATH,
        headers=bob,
        json={"chat_model_id": chat, "top_k": 12, "temperature": 0.7, "system_prompt": "Be brief."},
    )
    assert put.status_code == 200
    assert without(put.json, "updated_at") == {
        **DEFAULTS,
        "chat_model_id": chat,
        "chat_model": "qwen",
        "top_k": 12,
        "temperature": 0.7,
        "system_prompt": "Be brief.",
    }
    patched = client.patch(
        PATH, headers=bob, json={"search_mode": "semantic", "min_similarity": 0.5}
    )
    assert patched.status_code == 200
    assert (patched.json["search_mode"], patched.json["min_similarity"]) == ("semantic", 0.5)
    assert (patched.json["top_k"], patched.json["chat_model"]) == (12, "qwen")  # kept
    assert client.get(PATH, headers=bob).json == patched.json
    unchanged = client.patch(PATH, headers=bob, json={})
    assert unchanged.status_code == 200 and unchanged.json == patched.json
    cleared = client.patch(PATH, headers=bob, json={"chat_model_id": None})
    assert cleared.json["chat_model_id"] is None and cleared.json["chat_model"] is None
    reset = client.put(PATH, headers=bob, json={"top_k": 3})
    assert without(reset.json, "updated_at") == {**DEFAULTS, "top_k": 3}


def test_put_and_patch_upsert_a_missing_row(client, new_user, database_url):
    bob = new_user()
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM user_preferences")
    patched = client.patch(PATH, headers=bob, json={"top_k": 20})
    assert patched.status_code == 200
    assert without(patched.json, "updated_at") == {**DEFAULTS, "top_k": 20}
    assert patched.json["updated_at"] is not None
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM user_preferences")
    put = client.put(PATH, headers=bob, json={"search_mode": "fulltext"})
    assert put.status_code == 200 and put.json["search_mode"] == "fulltext"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"top_k": 0}, "top_k"),
        ({"top_k": 51}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"min_similarity": 1.5}, "min_similarity"),
        ({"min_similarity": -0.1}, "min_similarity"),
        ({"temperature": 3}, "temperature"),
        ({"temperature": -1}, "temperature"),
        ({"search_mode": "vector"}, "search_mode"),
        ({"system_prompt": "x" * 20001}, "system_prompt"),
        ({"chat_model_id": 0}, "chat_model_id"),
        ({"chat_model_id": "gpt"}, "chat_model_id"),
        ({"colour": "blue"}, "colour"),
        ({"context_window": -1}, "context_window"),
        ({"context_window": 1001}, "context_window"),
    ],
)
@pytest.mark.parametrize("method", ["put", "patch"])
def test_invalid_values_are_422_naming_the_field(client, new_user, method, body, field):
    bob = new_user()
    response = getattr(client, method)(PATH, headers=bob, json=body)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert ["body", field] in [e["loc"] for e in response.json["errors"]]
    assert client.get(PATH, headers=bob).json["top_k"] == DEFAULTS["top_k"]  # nothing changed


@pytest.mark.parametrize("field", ["top_k", "search_mode", "min_similarity", "system_prompt"])
def test_patch_refuses_null_except_for_the_chat_model(client, new_user, field):
    response = client.patch(PATH, headers=new_user(), json={field: None})
    assert response.status_code == 422
    assert response.json["errors"][0]["loc"] == ["body", field]


def test_chat_model_must_be_a_registered_chat_model(client, new_user, database_url):
    embedding = insert_model(database_url, "embedder", "embedding")
    bob = new_user()
    for model_id, words in ((embedding, "not a chat model"), (999999, "no model 999999")):
        for method in ("put", "patch"):
            response = getattr(client, method)(PATH, headers=bob, json={"chat_model_id": model_id})
            assert response.status_code == 422
            assert response.json["errors"] == [
                {
                    "loc": ["body", "chat_model_id"],
                    "msg": response.json["detail"],
                    "type": "value_error",
                }
            ]
            assert words in response.json["detail"]
    assert client.get(PATH, headers=bob).json["chat_model_id"] is None


def test_users_preferences_are_independent(client, admin, new_user):
    alice, bob = new_user(), new_user()
    assert (
        client.put(PATH, headers=alice, json={"top_k": 5, "system_prompt": "A"}).status_code == 200
    )
    assert client.patch(PATH, headers=bob, json={"top_k": 40}).status_code == 200
    assert (
        client.get(PATH, headers=alice).json["top_k"],
        client.get(PATH, headers=bob).json["top_k"],
    ) == (5, 40)
    assert client.get(PATH, headers=bob).json["system_prompt"] == ""
    assert client.get(PATH, headers=admin).json["top_k"] == DEFAULTS["top_k"]


def test_a_read_only_token_can_read_but_not_change(client, new_user):
    bob = new_user()
    made = client.post("/api/v1/tokens", headers=bob, json={"name": "ro", "scopes": ["read"]})
    assert made.status_code == 201
    read_only = bearer(made.json["token"])
    assert client.get(PATH, headers=read_only).status_code == 200
    assert client.put(PATH, headers=read_only, json={"top_k": 3}).status_code == 403
    assert client.patch(PATH, headers=read_only, json={"top_k": 3}).status_code == 403
    assert client.get(PATH, headers=bob).json["top_k"] == DEFAULTS["top_k"]
    assert client.get(PATH).status_code == 401


def test_search_uses_the_preferences_set_here(client, admin, collection):
    assert (
        client.patch(PATH, headers=admin, json={"top_k": 3, "search_mode": "fulltext"}).status_code
        == 200
    )
    response = client.post("/api/v1/search", headers=admin, json={"query": "anything"})
    assert response.status_code == 200, response.json
    assert (response.json["mode"], response.json["top_k"]) == ("fulltext", 3)


def test_tiny_numbers_are_stored_not_a_500(client, admin):
    response = client.put(
        "/api/v1/me/preferences",
        json={"top_k": 11.0, "temperature": 7.585454639154082e-50, "min_similarity": 1e-45},
        headers=admin,
    )
    assert response.status_code == 200, response.json
    assert (response.json["temperature"], response.json["min_similarity"]) == (0.0, 0.0)
