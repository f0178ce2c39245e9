"""Reranking after fusion with a rerank server: each API's wire shape, depth, failures, debug."""

from __future__ import annotations

import pytest

from app.providers.rerank import HttpReranker, RerankError
from app.runtime import Runtime
from app.settings import Settings, SettingsError
from tests.fake_rerank import PATHS, FakeRerankServer
from tests.helpers import (
    ask,
    connections_held_at,
    drain,
    live_server,
    names,
    new_chat,
    search,
    upload,
)
from tests.mcp_calls import call, over_http, structured

# Equal lengths, "pipeline" 5..1 times: BM25 ranks them p5, p4, p3, p2, p1.
DOCS = {
    f"p{n}.txt": " ".join(["pipeline"] * n + ["filler"] * (6 - n)) + "." for n in range(5, 0, -1)
}
FUSED = list(DOCS)
QUERY = {"query": "pipeline", "mode": "fulltext", "top_k": 5}


@pytest.fixture
def corpus(app, client, admin, collection):  # type: ignore[no-untyped-def]
    for name, text in DOCS.items():
        upload(client, admin, collection, name, text)
    drain(app)


@pytest.fixture
def rerank_app(make_app, corpus):  # type: ignore[no-untyped-def]
    """An app reranking with a fake server of the given kind: (client, fake)."""
    started = []

    def make(kind: str, **changes):  # type: ignore[no-untyped-def]
        fake = FakeRerankServer(kind).__enter__()
        started.append(fake)
        app = make_app(rerank=kind, rerank_url=fake.url, rerank_model="rr-model", **changes)
        return app.test_client(), fake

    yield make
    for fake in started:
        fake.__exit__()


@pytest.mark.parametrize("kind", sorted(PATHS))
def test_each_api_kind_reorders_the_fused_hits(rerank_app, admin, kind):  # type: ignore[no-untyped-def]
    client, fake = rerank_app(kind)
    response = search(client, admin, **QUERY)
    assert names(response) == FUSED[::-1]  # the fake scores the last passage best
    assert [h["rerank_score"] for h in response.json["hits"]] == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert response.json["warnings"] == []
    ((path, body),) = fake.requests
    assert path == PATHS[kind][0]
    passages = body["texts"] if kind == "tei" else body["documents"]
    assert [p.split(".")[0].count("pipeline") for p in passages] == [5, 4, 3, 2, 1]
    assert body["query"] == "pipeline"
    if kind != "tei":
        assert (body["model"], body["top_n"]) == ("rr-model", 5)
    assert body.get("return_documents") is (False if kind == "jina" else None)  # not needed


def test_a_reranker_that_reorders_by_content(make_app, corpus, admin):  # type: ignore[no-untyped-def]
    def middle_first(query: str, texts: list[str]) -> list[float]:
        return [10.0 if t.count("pipeline") == 3 else 0.0 for t in texts]

    with FakeRerankServer("cohere", middle_first) as fake:
        client = make_app(rerank="cohere", rerank_url=fake.url).test_client()
        # Equal scores keep their fused order.
        assert names(search(client, admin, **QUERY)) == [
            "p3.txt",
            "p5.txt",
            "p4.txt",
            "p2.txt",
            "p1.txt",
        ]


def test_rerank_false_keeps_the_fused_order_without_asking(rerank_app, admin):  # type: ignore[no-untyped-def]
    client, fake = rerank_app("jina")
    response = search(client, admin, **QUERY, rerank=False)
    assert names(response) == FUSED
    assert response.json["hits"][0]["rerank_score"] is None
    assert fake.requests == []


def test_only_the_candidate_depth_is_reranked(rerank_app, admin):  # type: ignore[no-untyped-def]
    client, fake = rerank_app("tei")
    assert names(search(client, admin, **QUERY, rerank_candidates=2)) == [
        "p4.txt",
        "p5.txt",
        "p3.txt",
        "p2.txt",
        "p1.txt",
    ]
    assert len(fake.requests[0][1]["texts"]) == 2


def test_the_depth_setting_reaches_past_top_k(rerank_app, admin):  # type: ignore[no-untyped-def]
    client, fake = rerank_app("infinity", rerank_candidates=4)
    # Four fused hits reranked, then cut to top_k: the fourth comes first.
    assert names(search(client, admin, **{**QUERY, "top_k": 2})) == ["p2.txt", "p3.txt"]
    assert len(fake.requests[0][1]["documents"]) == 4


def test_a_failing_reranker_keeps_the_fused_order_with_a_warning(rerank_app, admin, caplog):  # type: ignore[no-untyped-def]
    client, fake = rerank_app("cohere")
    fake.fail_status = 503
    response = search(client, admin, **QUERY)
    assert names(response) == FUSED
    # The server's URL and error body are for the log only.
    assert response.json["warnings"] == [
        "the reranker (cohere) failed: HTTP 503; the fused order is kept"
    ]
    (logged,) = [r.getMessage() for r in caplog.records if "reranking failed" in r.getMessage()]
    assert fake.url in logged and "the model is not loaded" in logged


def test_a_slow_reranker_keeps_the_fused_order_with_a_warning(rerank_app, admin):  # type: ignore[no-untyped-def]
    client, fake = rerank_app("llamacpp", rerank_timeout_s=0.2)
    fake.delay_s = 1.0
    response = search(client, admin, **QUERY)
    assert names(response) == FUSED
    assert response.json["warnings"] == [
        "the reranker (llamacpp) failed: no answer in time; the fused order is kept"
    ]


def test_debug_reports_the_rerank_time(rerank_app, admin):  # type: ignore[no-untyped-def]
    client, _ = rerank_app("jina")
    timings = search(client, admin, **QUERY, debug=True).json["debug"]["timings_ms"]
    assert set(timings) == {"search_ms", "rerank_ms"}
    assert timings["rerank_ms"] >= 0


def test_asking_for_reranking_without_a_reranker_warns(client, admin, corpus):  # type: ignore[no-untyped-def]
    response = search(client, admin, **QUERY, rerank=True)
    assert names(response) == FUSED
    assert response.json["warnings"] == [
        "reranking skipped: no reranker is configured (POSTRAG_RERANK)"
    ]


@pytest.mark.parametrize(
    "answer",
    [
        {"results": [{"index": 0, "relevance_score": 1.0}]},  # one of two scored
        {"results": [{"index": 0, "relevance_score": 1}, {"index": 0, "relevance_score": 2}]},
        {"results": [{"index": 0, "relevance_score": 1}, {"index": 2, "relevance_score": 2}]},
        {"results": [{"index": 0, "relevance_score": "high"}, {"index": 1, "relevance_score": 1}]},
        [{"index": 0, "score": 1}, {"index": 1, "score": 2}],  # TEI's shape from a Jina URL
    ],
)
def test_answers_of_the_wrong_shape_are_rerank_errors(answer):  # type: ignore[no-untyped-def]
    with FakeRerankServer("jina") as fake:
        fake.answer = lambda body: answer  # type: ignore[method-assign]
        reranker = HttpReranker("jina", fake.url, "", None, 2.0)
        with pytest.raises(RerankError, match="jina reranker"):
            reranker.scores("q", ["a", "b"])
        reranker.close()


def test_an_api_key_is_sent_as_a_bearer_token():  # type: ignore[no-untyped-def]
    with FakeRerankServer("cohere") as fake:
        for key in ("sk-secret", None):
            reranker = HttpReranker("cohere", fake.url, "m", key, 2.0)
            assert reranker.scores("q", ["a", "b"]) == [0.0, 1.0]
            reranker.close()
        assert fake.authorizations == ["Bearer sk-secret", None]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"POSTRAG_RERANK": "jina"}, "POSTRAG_RERANK=jina needs an http"),
        ({"POSTRAG_RERANK": "tei", "POSTRAG_RERANK_URL": "ftp://x"}, "needs an http"),
        ({"POSTRAG_RERANK": "onnx", "POSTRAG_RERANK_ONNX_PATH": "/m.onnx"}, "SHA256"),
        ({"POSTRAG_RERANK": "cohere-ish"}, "POSTRAG_RERANK"),
        ({"POSTRAG_RERANK_CANDIDATES": "201"}, "POSTRAG_RERANK_CANDIDATES"),
    ],
)
def test_bad_rerank_settings_fail_at_start(env, message, settings: Settings):  # type: ignore[no-untyped-def]
    base = {"DATABASE_URL": "postgresql://x/y", "POSTRAG_DATA_DIR": str(settings.data_dir)}
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({**base, **env})


def test_a_rerank_server_is_a_valid_setting(settings: Settings):  # type: ignore[no-untyped-def]
    env = {
        "DATABASE_URL": "postgresql://x/y",
        "POSTRAG_DATA_DIR": str(settings.data_dir),
        "POSTRAG_RERANK": "tei",
        "POSTRAG_RERANK_URL": "http://tei:8080",
    }
    loaded = Settings.from_env(env)
    assert (loaded.rerank, loaded.rerank_url, loaded.rerank_candidates) == (
        "tei",
        "http://tei:8080",
        50,
    )


def test_preferences_turn_reranking_off_and_set_its_depth(rerank_app, admin):  # type: ignore[no-untyped-def]
    client, fake = rerank_app("jina")
    response = client.patch("/api/v1/me/preferences", json={"rerank": False}, headers=admin)
    assert response.status_code == 200
    assert (response.json["rerank"], response.json["rerank_candidates"]) == (False, None)
    assert names(search(client, admin, **QUERY)) == FUSED
    assert fake.requests == []
    assert names(search(client, admin, **QUERY, rerank=True)) == FUSED[::-1]  # the request wins
    patch = {"rerank": True, "rerank_candidates": 3}
    assert client.patch("/api/v1/me/preferences", json=patch, headers=admin).status_code == 200
    assert names(search(client, admin, **QUERY)) == [
        "p3.txt",
        "p4.txt",
        "p5.txt",
        "p2.txt",
        "p1.txt",
    ]
    assert len(fake.requests[-1][1]["documents"]) == 3
    bad = client.patch("/api/v1/me/preferences", json={"rerank_candidates": 201}, headers=admin)
    assert bad.status_code == 422
    back = client.put("/api/v1/me/preferences", json={}, headers=admin).json
    assert (back["rerank"], back["rerank_candidates"]) == (True, None)


def test_chat_answers_use_the_reranked_passages(rerank_app, admin):  # type: ignore[no-untyped-def]
    client, fake = rerank_app("tei")
    patch = {"search_mode": "fulltext", "top_k": 5}
    assert client.patch("/api/v1/me/preferences", json=patch, headers=admin).status_code == 200
    chat = new_chat(client, admin)
    answer = ask(client, admin, chat, "pipeline")
    assert answer.status_code == 201, answer.json
    assert answer.json["citations"][0]["filename"] == "p1.txt"
    assert fake.requests[0][1]["query"] == "pipeline"


def test_a_chat_message_turns_reranking_on_or_off_for_its_answer(rerank_app, admin):  # type: ignore[no-untyped-def]
    client, fake = rerank_app("tei")
    patch = {"search_mode": "fulltext", "top_k": 5, "rerank": False}
    assert client.patch("/api/v1/me/preferences", json=patch, headers=admin).status_code == 200
    chat, path = new_chat(client, admin), "/api/v1/chats/{}/messages"
    on = client.post(path.format(chat), json={"content": "pipeline", "rerank": True}, headers=admin)
    assert on.status_code == 201, on.json
    assert on.json["citations"][0]["filename"] == "p1.txt"  # the message wins
    assert len(fake.requests) == 1
    patch = {"rerank": True}
    assert client.patch("/api/v1/me/preferences", json=patch, headers=admin).status_code == 200
    off = client.post(
        path.format(new_chat(client, admin)),
        json={"content": "pipeline", "rerank": False},
        headers=admin,
    )
    assert off.status_code == 201, off.json
    assert off.json["citations"][0]["filename"] == "p5.txt"
    assert len(fake.requests) == 1
    bad = client.post(path.format(chat), json={"content": "x", "rerank": "maybe"}, headers=admin)
    assert bad.status_code == 422


def test_a_reranked_hit_brings_its_documents_title(make_app, app, admin, collection):  # type: ignore[no-untyped-def]
    # a.txt in two chunks; the reranker puts the second first and the cut to one keeps only it,
    # while the SQL gave the document's title and metadata to the first (its best fused hit).
    def second_first(query: str, texts: list[str]) -> list[float]:
        return [10.0 if "second" in t else 0.0 for t in texts]

    first = "The pipeline pipeline pipeline valve opens at dawn with a long slow turn."
    second = "The second part says a pipeline closes at night for the keepers to rest."
    with FakeRerankServer("cohere", second_first) as fake:
        small = make_app(
            rerank="cohere", rerank_url=fake.url, chunk_tokens=16, chunk_overlap_tokens=0
        )
        client = small.test_client()
        text = f"{first}\n\n{second}\n"
        document_id = upload(client, admin, collection, "a.txt", text, {"team": "ops"})
        drain(small)
        response = search(client, admin, query="pipeline", mode="fulltext", top_k=1)
    assert response.status_code == 200, response.json
    (hit,) = response.json["hits"]
    assert "second" in hit["text"] and hit["rerank_score"] == 10.0
    document = {"title": "", "metadata": {"team": "ops"}}
    assert response.json["documents"] == {str(document_id): document}


def test_tei_gets_the_passages_in_batches_it_accepts():  # type: ignore[no-untyped-def]
    # 70 candidates: TEI answers 413 past 32 texts a request (tests/fake_rerank.py does too),
    # so they go as 32, 32 and 6, each batch's indexes counted from its own start.
    def by_number(query: str, texts: list[str]) -> list[float]:
        return [float(t) for t in texts]

    with FakeRerankServer("tei", by_number) as fake:
        reranker = HttpReranker("tei", fake.url, "", None, 2.0)
        assert reranker.scores("q", [str(n) for n in range(70)]) == [float(n) for n in range(70)]
        reranker.close()
    assert [len(body["texts"]) for _, body in fake.requests] == [32, 32, 6]


def test_no_connection_is_held_while_the_reranker_scores(rerank_app, admin, collection, llm):  # type: ignore[no-untyped-def]
    # A hung reranker may take POSTRAG_RERANK_TIMEOUT_S: searches, chats, /v1, MCP and Dify
    # give their connection back meanwhile, and take one again for the wider context.
    client, fake = rerank_app("cohere", llm="ollama", ollama_url=llm.url, chat_model="fake-chat")
    patch = {"search_mode": "fulltext", "top_k": 5}
    assert client.patch("/api/v1/me/preferences", json=patch, headers=admin).status_code == 200
    chat = new_chat(client, admin)
    completion = {
        "model": "fake-chat",
        "messages": [{"role": "user", "content": "pipeline"}],
        "rag": {"mode": "fulltext"},
    }
    dify = {
        "knowledge_id": str(collection),
        "query": "pipeline",
        "retrieval_setting": {"top_k": 5, "score_threshold": 0.0},
    }
    pool = Runtime.of(client.application).pool
    with live_server(client.application) as url, connections_held_at(fake, pool) as held:
        widened = search(client, admin, **QUERY, context_window=100)
        answer = ask(client, admin, chat, "pipeline")
        v1 = client.post("/v1/chat/completions", json=completion, headers=admin)
        (found,) = call(over_http(url, admin["Authorization"].split()[1]), ("search", QUERY))
        records = client.post("/api/v1/dify/retrieval", json=dify, headers=admin)
    assert names(widened) == FUSED[::-1]
    assert widened.json["hits"][0]["context"]["text"].startswith("pipeline filler")
    assert answer.status_code == 201 and answer.json["citations"][0]["filename"] == "p1.txt"
    assert v1.status_code == 200, v1.json
    assert [r["filename"] for r in structured(found)["results"]] == FUSED[::-1]
    assert records.status_code == 200 and len(records.json["records"]) == 5, records.json
    assert held == [0, 0, 0, 0, 0], held
