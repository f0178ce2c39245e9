"""Wider context: a hit brings its document's neighbouring chunks within a token budget, in
search results and in the prompt; never another document's text, never another user's."""

from __future__ import annotations

import dataclasses

import pytest

from app.db import scope
from app.providers.local_embedder import count_tokens
from app.repositories import chunks as chunk_repo
from app.runtime import Runtime
from app.services.wider_context import GAP
from tests.helpers import ask, create_collection, drain, new_chat, search, upload

PARAGRAPHS = [
    "Alpha paragraph opens the story of the harbour and its old lighthouse keepers.",
    "Bravo paragraph describes the storm that flooded the harbour one winter night.",
    "Charlie paragraph names the zebrafish quarantine rule for every arriving vessel.",
    "Delta paragraph explains how the lighthouse lamp was rebuilt after the storm.",
    "Echo paragraph closes with the keepers leaving the island for good in spring.",
]
HARBOUR = GAP.join(PARAGRAPHS) + "\n"
OTHER = GAP.join(p.replace("paragraph", "note") for p in PARAGRAPHS) + "\n"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    """Chunks of one paragraph each, so that a hit has neighbours in a small document."""
    return dataclasses.replace(settings, chunk_tokens=20, chunk_overlap_tokens=0)


@pytest.fixture
def docs(app, client, admin, collection):  # type: ignore[no-untyped-def]
    ids = {
        "harbour": upload(client, admin, collection, "harbour.txt", HARBOUR),
        "other": upload(client, admin, collection, "other.txt", OTHER),
    }
    drain(app)
    return ids


def _hit(client, headers, window):  # type: ignore[no-untyped-def]
    response = search(
        client,
        headers,
        query="zebrafish quarantine paragraph",
        mode="fulltext",
        top_k=1,
        context_window=window,
    )
    assert response.status_code == 200, response.json
    (hit,) = response.json["hits"]
    assert hit["text"] == PARAGRAPHS[2]
    return hit


def test_without_a_window_a_hit_has_no_context(client, admin, docs):
    assert _hit(client, admin, 0)["context"] is None


def test_a_hit_brings_its_neighbours_within_the_budget(client, admin, docs):
    budget = count_tokens(PARAGRAPHS[1] + GAP) + count_tokens(GAP + PARAGRAPHS[3])
    context = _hit(client, admin, budget)["context"]
    assert context["text"] == GAP.join(PARAGRAPHS[1:4])
    assert HARBOUR[context["char_start"] : context["char_end"]] == context["text"]
    smaller = _hit(client, admin, budget - 1)["context"]["text"]
    assert smaller == GAP.join(PARAGRAPHS[1:3])  # the next one no longer fits: that side stops


def test_a_large_budget_stays_in_the_hit_document(client, admin, docs):
    context = _hit(client, admin, 1000)["context"]
    assert context["text"] == HARBOUR.strip()
    assert (context["char_start"], context["char_end"]) == (0, len(HARBOUR.strip()))
    assert "note" not in context["text"]  # the other document's chunks sit at the same places


def test_neighbours_of_another_users_document_are_not_read(app, client, admin, docs, new_user):
    rt = Runtime.of(app)
    bob = new_user()
    bob_id = client.get("/api/v1/me", headers=bob).json["id"]
    mine = search(client, admin, query="zebrafish quarantine", mode="fulltext").json["hits"][0]
    place = (mine["collection_id"], mine["document_id"], 2)
    admin_id = client.get("/api/v1/me", headers=admin).json["id"]
    with scope.user_connection(rt.pool, admin_id) as conn:
        assert len(chunk_repo.neighbours(conn, [place], 4)) == len(PARAGRAPHS)
    with scope.user_connection(rt.pool, bob_id) as conn:
        assert chunk_repo.neighbours(conn, [place], 4) == []
    bobs = create_collection(client, bob, "bobs")
    upload(client, bob, bobs, "bob.txt", "Zebrafish quarantine notes of Bob.\n")
    drain(app)
    hit = _hit(client, admin, 1000)
    assert "Bob" not in hit["context"]["text"]


def test_the_prompt_carries_the_wider_context(make_app, admin, docs, llm):
    llm.reply = "The rule is zebrafish quarantine [1]."
    chat_app = make_app(
        llm="ollama",
        ollama_url=llm.url,
        chat_model="fake-chat",
        llm_timeout_s=3,
        chat_context_window=1000,
    )
    client = chat_app.test_client()
    assert ask(client, admin, new_chat(client, admin), "zebrafish quarantine").status_code == 201
    user = llm.chat_requests()[-1]["messages"][-1]["content"]
    assert HARBOUR.strip() in user
    asked = {"model": "fake-chat", "messages": [{"role": "user", "content": "zebrafish paragraph"}]}
    for window, whole in ((0, False), (1000, True)):
        rag = {"top_k": 1, "mode": "fulltext", "context_window": window}
        response = client.post("/v1/chat/completions", json={**asked, "rag": rag}, headers=admin)
        assert response.status_code == 200, response.json
        user = llm.chat_requests()[-1]["messages"][-1]["content"]
        assert PARAGRAPHS[2] in user and (PARAGRAPHS[0] in user) is whole


def test_the_preference_widens_searches_unless_the_request_says_otherwise(client, admin, docs):
    patch = client.patch("/api/v1/me/preferences", json={"context_window": 1000}, headers=admin)
    assert patch.status_code == 200 and patch.json["context_window"] == 1000
    assert _hit(client, admin, None)["context"]["text"] == HARBOUR.strip()
    assert _hit(client, admin, 0)["context"] is None  # the request wins
    back = client.patch("/api/v1/me/preferences", json={"context_window": None}, headers=admin)
    assert back.json["context_window"] is None
    assert _hit(client, admin, None)["context"] is None  # searches have no server default


def test_a_chat_message_then_the_preference_then_the_server_choose_the_context(
    make_app, admin, docs, llm
):
    llm.reply = "The rule is zebrafish quarantine [1]."
    chat_app = make_app(
        llm="ollama", ollama_url=llm.url, chat_model="fake-chat", chat_context_window=1000
    )
    client = chat_app.test_client()
    prefs = {"search_mode": "fulltext", "top_k": 1}
    assert client.patch("/api/v1/me/preferences", json=prefs, headers=admin).status_code == 200

    def widened(preference: int | None, message: dict) -> bool:
        patch = {"context_window": preference}
        assert client.patch("/api/v1/me/preferences", json=patch, headers=admin).status_code == 200
        body = {"content": "zebrafish quarantine", **message}
        chat = new_chat(client, admin)
        answer = client.post(f"/api/v1/chats/{chat}/messages", json=body, headers=admin)
        assert answer.status_code == 201, answer.json
        user = llm.chat_requests()[-1]["messages"][-1]["content"]
        assert PARAGRAPHS[2] in user
        return HARBOUR.strip() in user

    assert widened(None, {}) is True  # the server's POSTRAG_CHAT_CONTEXT_WINDOW
    assert widened(0, {}) is False  # the preference comes before it
    assert widened(0, {"context_window": 1000}) is True  # the message before both
    assert widened(None, {"context_window": 0}) is False
    too_wide = {"content": "x", "context_window": 1001}
    chat = new_chat(client, admin)
    response = client.post(f"/api/v1/chats/{chat}/messages", json=too_wide, headers=admin)
    assert response.status_code == 422
    assert response.json["errors"][0]["loc"] == ["body", "context_window"]


def test_the_context_stays_in_the_hit_heading_section(app, client, admin, docs):
    # Two sections: the hit's neighbours stop at the next heading whatever the budget.
    text = "# Harbour\n\n" + GAP.join(PARAGRAPHS[:3]) + "\n\n# Lamp\n\n" + GAP.join(PARAGRAPHS[3:])
    sections = create_collection(client, admin, "sections")
    upload(client, admin, sections, "sections.md", text + "\n")
    drain(app)
    for query, hit_text, section, other in (
        ("zebrafish quarantine", PARAGRAPHS[2], PARAGRAPHS[:3], PARAGRAPHS[3:]),
        ("lamp rebuilt", PARAGRAPHS[3], PARAGRAPHS[3:], PARAGRAPHS[:3]),
    ):
        body = {"query": query, "mode": "fulltext", "top_k": 1, "context_window": 1000}
        response = search(client, admin, **body, collection_ids=[sections])
        assert response.status_code == 200, response.json
        (hit,) = response.json["hits"]
        assert hit["text"].endswith(hit_text)
        context = hit["context"]["text"]
        assert all(p in context for p in section)
        assert not any(p in context for p in other)
