"""What the chat app does with conversations: a chat's own model, title search, truncating."""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers import ask, messages, new_chat


def register(client, admin, name: str, kind: str = "chat") -> int:  # type: ignore[no-untyped-def]
    response = client.post(
        "/api/v1/models", headers=admin, json={"provider": "ollama", "name": name, "kind": kind}
    )
    assert response.status_code == 201, response.json
    return int(response.json["id"])


def served(client, admin, llm, name: str) -> int:  # type: ignore[no-untyped-def]
    """Another chat model, served by the fake server and registered."""
    llm.models[name] = {"capabilities": ["completion"], "context_length": 4096}
    return register(client, admin, name)


@pytest.fixture
def other_model(ollama_app, admin, llm) -> int:  # type: ignore[no-untyped-def]
    """A chat model besides fake-chat, the registry's default (POSTRAG_CHAT_MODEL)."""
    return served(ollama_app.test_client(), admin, llm, "fake-chat-2")


def test_a_chats_own_model_answers_before_the_preferred_one(ollama_app, admin, llm, other_model):
    client = ollama_app.test_client()
    preferred = served(client, admin, llm, "fake-chat-3")
    assert (
        client.patch("/api/v1/me/preferences", headers=admin, json={"chat_model_id": preferred})
    ).status_code == 200
    created = client.post("/api/v1/chats", headers=admin, json={"chat_model_id": other_model})
    assert created.status_code == 201
    assert (created.json["chat_model_id"], created.json["chat_model"]) == (
        other_model,
        "fake-chat-2",
    )
    chat = created.json["id"]
    answer = ask(client, admin, chat, "Which model?")
    assert answer.status_code == 201 and answer.json["model"] == "fake-chat-2"
    assert llm.chat_requests()[-1]["model"] == "fake-chat-2"
    cleared = client.patch(f"/api/v1/chats/{chat}", headers=admin, json={"chat_model_id": None})
    assert cleared.status_code == 200 and cleared.json["chat_model"] is None
    assert ask(client, admin, chat, "And now?").json["model"] == "fake-chat-3"  # the preference
    assert llm.chat_requests()[-1]["model"] == "fake-chat-3"
    chosen = client.patch(
        f"/api/v1/chats/{chat}", headers=admin, json={"chat_model_id": other_model}
    )
    assert chosen.json["chat_model"] == "fake-chat-2"
    assert client.get(f"/api/v1/chats/{chat}", headers=admin).json["chat_model_id"] == other_model
    listed = client.get("/api/v1/chats", headers=admin).json["items"]
    assert listed[0]["chat_model"] == "fake-chat-2"


def test_a_chats_model_must_be_a_registered_chat_model(ollama_app, admin, new_user):
    client = ollama_app.test_client()
    embedding = register(client, admin, "fake-embed", kind="embedding")
    chat = new_chat(client, admin)
    for model_id, words in ((embedding, "not a chat model"), (999999, "no model 999999")):
        for response in (
            client.post("/api/v1/chats", headers=admin, json={"chat_model_id": model_id}),
            client.patch(f"/api/v1/chats/{chat}", headers=admin, json={"chat_model_id": model_id}),
        ):
            assert response.status_code == 422
            assert response.mimetype == "application/problem+json"
            assert [e["loc"] for e in response.json["errors"]] == [["body", "chat_model_id"]]
            assert words in response.json["detail"]
    assert client.get("/api/v1/chats", headers=admin).json["total"] == 1  # nothing was created
    assert client.get(f"/api/v1/chats/{chat}", headers=admin).json["chat_model_id"] is None
    other = client.patch(f"/api/v1/chats/{chat}", headers=new_user(), json={"chat_model_id": None})
    assert other.status_code == 404


def test_removing_a_chats_model_sets_it_back_to_none(ollama_app, admin, new_user, other_model):
    client = ollama_app.test_client()
    bob = new_user()
    chat = client.post("/api/v1/chats", headers=bob, json={"chat_model_id": other_model}).json
    assert chat["chat_model"] == "fake-chat-2"
    assert client.delete(f"/api/v1/models/{other_model}", headers=admin).status_code == 204
    after = client.get(f"/api/v1/chats/{chat['id']}", headers=bob).json
    assert (after["chat_model_id"], after["chat_model"]) == (None, None)
    assert ask(client, bob, chat["id"], "Still there?").json["model"] == "fake-chat"  # the default


def test_search_finds_titles_case_insensitively_with_wildcards_taken_literally(
    client, admin, new_user
):
    titles = ["Budget 2024", "the budget review", "100% done", "1000 done", "snake_case", "snakes"]
    ids = {title: new_chat(client, admin, title=title) for title in titles}
    new_chat(client, new_user(), title="Budget of someone else")

    def found(q: str, **params: int) -> dict:
        response = client.get("/api/v1/chats", headers=admin, query_string={"q": q, **params})
        assert response.status_code == 200, response.json
        return dict(response.json)

    budget = found("BUDGET")
    assert budget["total"] == 2
    assert [c["id"] for c in budget["items"]] == [ids["the budget review"], ids["Budget 2024"]]
    assert [c["title"] for c in found("%")["items"]] == ["100% done"]
    assert [c["title"] for c in found("_")["items"]] == ["snake_case"]
    assert found("\\")["total"] == 0
    # The last used comes first: renaming (or a new message) bumps a chat.
    client.patch(f"/api/v1/chats/{ids['Budget 2024']}", headers=admin, json={"title": "Budget 25"})
    page = found("budget", limit=1)
    assert page["total"] == 2 and [c["title"] for c in page["items"]] == ["Budget 25"]
    assert [c["title"] for c in found("budget", limit=1, offset=1)["items"]] == [
        "the budget review"
    ]
    for bad in ("", "x" * 201):
        response = client.get("/api/v1/chats", headers=admin, query_string={"q": bad})
        assert response.status_code == 422
        assert response.json["errors"][0]["loc"] == ["query", "q"]


def _event_counts(database_url: str, message_ids: list[int]) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM chat_message_events WHERE message_id = ANY(%s)", (message_ids,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_regenerate_deletes_the_question_and_what_follows_then_asks_again(
    ollama_app, admin, new_user, llm, database_url
):
    client = ollama_app.test_client()
    chat, other = new_chat(client, admin), new_chat(client, admin)
    llm.reply = "First answer."
    ask(client, admin, chat, "First?")
    ask(client, admin, other, "Elsewhere?")
    llm.reply = "A poor answer."
    ask(client, admin, chat, "Second?")
    before, kept = messages(client, admin, chat), messages(client, admin, other)
    gone = [m["id"] for m in before[2:]]
    assert _event_counts(database_url, gone) > 0
    path = f"/api/v1/chats/{chat}/messages/{before[2]['id']}"
    assert client.delete(path, headers=new_user()).status_code == 404
    assert (
        client.delete(
            f"/api/v1/chats/{other}/messages/{before[2]['id']}", headers=admin
        ).status_code
        == 404
    )
    assert client.delete(f"/api/v1/chats/{chat}/messages/999999", headers=admin).status_code == 404
    response = client.delete(path, headers=admin)
    assert response.status_code == 204 and response.get_data() == b""
    assert messages(client, admin, chat) == before[:2]
    assert _event_counts(database_url, gone) == 0  # the answer's stored events went with it
    assert messages(client, admin, other) == kept
    assert client.delete(path, headers=admin).status_code == 404
    llm.reply = "A better answer."
    again = ask(client, admin, chat, "Second, said better?")
    assert again.status_code == 201 and again.json["content"] == "A better answer."
    after = messages(client, admin, chat)
    assert [m["content"] for m in after] == [
        "First?",
        "First answer.",
        "Second, said better?",
        "A better answer.",
    ]
    sent = [m["content"] for m in llm.chat_requests()[-1]["messages"][1:-1]]
    assert sent == ["First?", "First answer."]  # the deleted exchange is no longer history


def test_truncating_waits_for_the_answer_being_generated(ollama_app, admin, database_url):
    client = ollama_app.test_client()
    chat = new_chat(client, admin)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO chat_messages (chat_id, role, content, status) VALUES"
            " (%(chat)s, 'user', 'Count', 'complete'),"
            " (%(chat)s, 'assistant', 'one two', 'streaming')",
            {"chat": chat},
        )
    question = messages(client, admin, chat)[0]["id"]
    path = f"/api/v1/chats/{chat}/messages/{question}"
    refused = client.delete(path, headers=admin)
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    assert len(messages(client, admin, chat)) == 2
    assert client.post(f"/api/v1/chats/{chat}/stop", headers=admin).status_code == 202
    assert client.delete(path, headers=admin).status_code == 204
    assert messages(client, admin, chat) == []
