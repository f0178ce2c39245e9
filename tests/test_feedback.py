"""Thumbs up or down on answers (V2_23) and the candidate judgments they make for evaluation
sets: the question searched, the cited passages of one collection, graded by the rating."""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers import FOX, VALVE, ask, create_collection, drain, messages, new_chat, upload

GARDEN = "Water the tomato plants every morning in the summer garden."


@pytest.fixture
def docs(app, client, admin, collection):
    """fox.txt and valve.txt in `collection`, garden.txt in another one."""
    garden = create_collection(client, admin, "garden")
    ids = {
        "fox.txt": upload(client, admin, collection, "fox.txt", FOX),
        "valve.txt": upload(client, admin, collection, "valve.txt", VALVE),
        "garden.txt": upload(client, admin, garden, "garden.txt", GARDEN),
        "docs": collection,
        "garden": garden,
    }
    drain(app)
    return ids


@pytest.fixture
def chat_client(ollama_app):
    return ollama_app.test_client()


def _answer(client, headers, chat, question) -> dict:
    response = ask(client, headers, chat, question)
    assert response.status_code == 201, response.json
    return dict(response.json)


def _feedback_url(chat, message) -> str:
    return f"/api/v1/chats/{chat}/messages/{message}/feedback"


def _rate(client, headers, chat, message, rating, comment=None):  # type: ignore[no-untyped-def]
    body = {"rating": rating} if comment is None else {"rating": rating, "comment": comment}
    return client.put(_feedback_url(chat, message), json=body, headers=headers)


def _judgments(client, headers, **query) -> dict:
    response = client.get("/api/v1/judgments", query_string=query, headers=headers)
    assert response.status_code == 200, response.json
    return dict(response.json)


def test_rate_up_replace_with_down_and_remove(chat_client, admin, docs, llm):
    llm.reply = "Foxes are clever animals [1]."
    chat = new_chat(chat_client, admin)
    answer = _answer(chat_client, admin, chat, "Are foxes clever?")
    assert answer["feedback"] is None
    up = _rate(chat_client, admin, chat, answer["id"], "up")
    assert up.status_code == 200, up.json
    assert up.json["rating"] == "up" and up.json["comment"] is None
    down = _rate(chat_client, admin, chat, answer["id"], "down", " cites the wrong fox ")
    assert down.status_code == 200, down.json
    assert (down.json["rating"], down.json["comment"]) == ("down", "cites the wrong fox")
    assert down.json["created_at"] == up.json["created_at"]  # replaced, not a second rating
    question, shown = messages(chat_client, admin, chat)
    assert question["feedback"] is None
    assert shown["feedback"] == {
        "rating": "down",
        "comment": "cites the wrong fox",
        "updated_at": down.json["updated_at"],
    }
    removed = chat_client.delete(_feedback_url(chat, answer["id"]), headers=admin)
    assert removed.status_code == 204
    assert messages(chat_client, admin, chat)[1]["feedback"] is None
    again = chat_client.delete(_feedback_url(chat, answer["id"]), headers=admin)
    assert again.status_code == 204  # nothing to remove is fine


def test_only_complete_answers_are_rated(chat_client, admin, docs, llm, database_url):
    chat = new_chat(chat_client, admin)
    answer = _answer(chat_client, admin, chat, "Are foxes clever?")
    question = messages(chat_client, admin, chat)[0]
    refused = _rate(chat_client, admin, chat, question["id"], "up")
    assert refused.status_code == 422, refused.json
    assert "not an answer" in refused.json["detail"]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE chat_messages SET status = 'incomplete' WHERE id = %s", (answer["id"],)
        )
    cut = _rate(chat_client, admin, chat, answer["id"], "up")
    assert cut.status_code == 422 and "incomplete" in cut.json["detail"]
    for body in ({"rating": "meh"}, {}, {"rating": "up", "comment": "x" * 2001}):
        bad = chat_client.put(_feedback_url(chat, answer["id"]), json=body, headers=admin)
        assert bad.status_code == 422, body
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM answer_feedback").fetchone() == (0,)


def test_another_users_answer_is_404_and_their_ratings_never_show(
    chat_client, admin, new_user, docs, llm
):
    llm.reply = "Foxes are clever animals [1]."
    bob = new_user("bob")
    chat = new_chat(chat_client, admin)
    answer = _answer(chat_client, admin, chat, "Are foxes clever?")
    assert _rate(chat_client, admin, chat, answer["id"], "up").status_code == 200
    assert _rate(chat_client, bob, chat, answer["id"], "down").status_code == 404
    assert chat_client.delete(_feedback_url(chat, answer["id"]), headers=bob).status_code == 404
    bobs_chat = new_chat(chat_client, bob)
    # a message of another chat, through bob's own chat: not there either
    assert _rate(chat_client, bob, bobs_chat, answer["id"], "down").status_code == 404
    assert messages(chat_client, admin, chat)[1]["feedback"]["rating"] == "up"  # untouched
    private = {"collection_id": docs["garden"]}
    assert (
        chat_client.get("/api/v1/judgments", query_string=private, headers=bob).status_code == 404
    )
    shared = chat_client.patch(
        f"/api/v1/collections/{docs['docs']}", json={"is_shared": True}, headers=admin
    )
    assert shared.status_code == 200, shared.json
    mine = _judgments(chat_client, admin, collection_id=docs["docs"])
    assert [j["message_id"] for j in mine["items"]] == [answer["id"]]
    assert _judgments(chat_client, bob, collection_id=docs["docs"])["total"] == 0


def test_judgments_grade_the_cited_passages_of_the_collection(chat_client, admin, docs, llm):
    chat = new_chat(chat_client, admin, collection_ids=[docs["docs"], docs["garden"]])
    llm.reply = "Foxes are clever [1]."
    fox = _answer(chat_client, admin, chat, "Are foxes clever?")
    cited = [c for c in fox["citations"] if c["cited"]]
    assert [c["filename"] for c in cited] == ["fox.txt"]
    llm.reply = "Water them in the morning [1]."
    garden = _answer(chat_client, admin, chat, "When do I water the tomato plants?")
    assert [c["filename"] for c in garden["citations"] if c["cited"]] == ["garden.txt"]
    assert _rate(chat_client, admin, chat, fox["id"], "up", "spot on").status_code == 200
    assert _rate(chat_client, admin, chat, garden["id"], "down").status_code == 200
    listed = _judgments(chat_client, admin, collection_id=docs["docs"])
    assert listed["total"] == 1  # the garden answer cites nothing of this collection
    (item,) = listed["items"]
    assert set(item) == {
        "message_id", "chat_id", "rating", "comment", "rated_at", "query", "relevant"
    }  # fmt: skip
    assert item["message_id"] == fox["id"] and item["chat_id"] == chat
    assert (item["rating"], item["comment"]) == ("up", "spot on")
    assert item["query"] == fox["search_query"] == "Are foxes clever?"
    assert item["relevant"] == [
        {"document_id": docs["fox.txt"], "chunk_id": cited[0]["chunk_id"], "grade": 1}
    ]
    (bad,) = _judgments(chat_client, admin, collection_id=docs["garden"])["items"]
    assert bad["message_id"] == garden["id"] and bad["rating"] == "down"
    assert [(p["document_id"], p["grade"]) for p in bad["relevant"]] == [(docs["garden.txt"], 0)]
    only_up = _judgments(chat_client, admin, collection_id=docs["garden"], rating="up")
    assert only_up["total"] == 0 and only_up["items"] == []


def test_a_follow_up_is_judged_with_its_standalone_query(
    chat_client, admin, docs, llm, database_url
):
    chat = new_chat(chat_client, admin, collection_ids=[docs["docs"]])
    llm.reply = "The XR-7734 valve [1]."
    first = _answer(chat_client, admin, chat, "Which valve do I install?")
    llm.rewrite = "When is the XR-7734 valve installed?"
    follow_up = _answer(chat_client, admin, chat, "And when?")
    assert follow_up["search_query"] == "When is the XR-7734 valve installed?"
    for answer in (first, follow_up):
        assert _rate(chat_client, admin, chat, answer["id"], "up").status_code == 200
    with psycopg.connect(database_url) as conn:  # an answer from before search_query was kept
        conn.execute("UPDATE chat_messages SET search_query = NULL WHERE id = %s", (first["id"],))
    items = _judgments(chat_client, admin, collection_id=docs["docs"])["items"]
    assert [(j["message_id"], j["query"]) for j in items] == [
        (follow_up["id"], "When is the XR-7734 valve installed?"),
        (first["id"], "Which valve do I install?"),  # the user's question before it
    ]


def test_judgments_are_paged_the_last_rated_first(chat_client, admin, docs, llm):
    llm.reply = "Foxes are clever animals [1]."
    chat = new_chat(chat_client, admin, collection_ids=[docs["docs"]])
    answers = [_answer(chat_client, admin, chat, f"Are foxes clever? ({n})")["id"] for n in "123"]
    for answer in answers:
        assert _rate(chat_client, admin, chat, answer, "up").status_code == 200
    assert _rate(chat_client, admin, chat, answers[0], "down").status_code == 200  # rated last
    expected = [answers[0], answers[2], answers[1]]
    seen = []
    for offset in (0, 2):
        page = _judgments(chat_client, admin, collection_id=docs["docs"], limit=2, offset=offset)
        assert page["total"] == 3 and (page["limit"], page["offset"]) == (2, offset)
        seen += [j["message_id"] for j in page["items"]]
    assert seen == expected


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"collection_id": "abc"},
        {"collection_id": 0},
        {"collection_id": 1, "rating": "meh"},
        {"collection_id": 1, "limit": 0},
        {"collection_id": 1, "offset": -1},
    ],
)
def test_judgments_refuse_bad_parameters(client, admin, query):
    response = client.get("/api/v1/judgments", query_string=query, headers=admin)
    assert response.status_code == 422, response.json


def test_an_unknown_collection_is_404(client, admin):
    response = client.get("/api/v1/judgments?collection_id=999999", headers=admin)
    assert response.status_code == 404


def test_deleting_the_chat_or_its_answer_removes_the_ratings(
    chat_client, admin, docs, llm, database_url
):
    llm.reply = "Foxes are clever animals [1]."
    chats = [new_chat(chat_client, admin) for _ in range(2)]
    answers = [_answer(chat_client, admin, chat, "Are foxes clever?")["id"] for chat in chats]
    for chat, answer in zip(chats, answers, strict=True):
        assert _rate(chat_client, admin, chat, answer, "up").status_code == 200
    assert chat_client.delete(f"/api/v1/chats/{chats[0]}", headers=admin).status_code == 204
    truncated = chat_client.delete(f"/api/v1/chats/{chats[1]}/messages/{answers[1]}", headers=admin)
    assert truncated.status_code == 204
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM answer_feedback").fetchone() == (0,)
    assert _judgments(chat_client, admin, collection_id=docs["docs"])["total"] == 0
