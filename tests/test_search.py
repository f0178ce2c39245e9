"""POST /api/v1/search: modes, hits, filters, thresholds, bounds, stemming, tenancy, errors."""

from __future__ import annotations

import json

import psycopg
import pytest

from app.runtime import Runtime
from tests.helpers import bearer, close_app, drain, names, search, upload

DOCS = {
    "fox.txt": (
        "The quick brown fox jumps over the lazy dog. Foxes are clever animals of the forest.",
        {"year": 2020, "team": "nature", "tags": ["animals"], "author": {"name": "Ada"}},
    ),
    "budget.txt": (
        "Quarterly budget planning for the finance department. Spending must be approved.",
        {"year": 2023, "team": "finance", "draft": None},
    ),
    "valve.txt": (
        "Install the XR-7734 valve before pressurising the pipeline system.",
        {"year": 2024, "team": "plant", "rating": 4.5},
    ),
    "notes.txt": ("Meeting notes: the finance team reviewed the pipeline budget.", {}),
}


@pytest.fixture
def corpus(app, client, admin, collection):
    ids = {name: upload(client, admin, collection, name, *doc) for name, doc in DOCS.items()}
    drain(app)
    return ids


def test_hybrid_is_the_default_and_hits_carry_both_legs(client, admin, corpus, collection):
    response = search(client, admin, query="clever forest animals", min_similarity=0)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["mode"] == "hybrid" and body["top_k"] == 8 and body["warnings"] == []
    top = body["hits"][0]
    assert top["filename"] == "fox.txt" and top["document_id"] == corpus["fox.txt"]
    assert top["collection_id"] == collection
    assert top["text"].startswith("The quick brown fox")
    assert (top["char_start"], top["char_end"]) == (0, len(DOCS["fox.txt"][0]))
    assert top["heading_path"] == [] and "metadata" not in top
    assert body["documents"][str(top["document_id"])]["metadata"] == DOCS["fox.txt"][1]
    assert top["semantic"]["rank"] == 1 and 0 < top["semantic"]["similarity"] <= 1
    assert top["fulltext"]["rank"] == 1 and top["fulltext"]["score"] > 0
    assert top["score"] == pytest.approx(2 / 61)  # RRF, k = 60, rank 1 in both legs
    scores = [hit["score"] for hit in body["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert "debug" not in body or body["debug"] is None


def test_each_mode_scores_with_its_own_leg(client, admin, corpus):
    semantic = search(client, admin, query="wild animals", mode="semantic", min_similarity=0)
    assert names(semantic)[0] == "fox.txt"
    assert all(h["fulltext"] is None for h in semantic.json["hits"])
    assert [h["score"] for h in semantic.json["hits"]] == [
        h["semantic"]["similarity"] for h in semantic.json["hits"]
    ]
    fulltext = search(client, admin, query="budget of the pipeline", mode="fulltext")
    hits = fulltext.json["hits"]
    assert {h["filename"] for h in hits} == {"budget.txt", "valve.txt", "notes.txt"}
    assert hits[0]["filename"] == "notes.txt"  # the only chunk with both words
    assert all(h["semantic"] is None for h in hits)
    assert [h["fulltext"]["rank"] for h in hits] == [1, 2, 3]


def test_fulltext_matches_any_word_of_a_long_question(client, admin, corpus):
    question = "could you please tell me what the department did about its spending plans"
    assert names(search(client, admin, query=question, mode="fulltext"))[0] == "budget.txt"


def test_quoted_phrases_and_prefixes_must_match(client, admin, corpus):
    assert names(search(client, admin, query='"lazy dog"', mode="fulltext")) == ["fox.txt"]
    assert names(search(client, admin, query='"dog lazy"', mode="fulltext")) == []
    both = search(client, admin, query='budget "finance team"', mode="fulltext")
    assert names(both) == ["notes.txt"]
    # A prefix matches, and scores as the words it stands for (pressur* -> pressurising).
    prefixed = search(client, admin, query="pressur*", mode="fulltext")
    assert names(prefixed) == ["valve.txt"]
    assert prefixed.json["hits"][0]["fulltext"]["score"] > 0
    plain = search(client, admin, query="pressurising", mode="fulltext").json["hits"][0]
    assert prefixed.json["hits"][0]["fulltext"]["score"] == pytest.approx(plain["score"])


def test_phrases_or_prefixes_that_reduce_to_nothing_do_not_empty_the_leg(client, admin, corpus):
    expected = {"budget.txt", "notes.txt"}
    for query in ('budget "the"', "budget _*", "budget a*", 'budget "!!!"', "budget 12*"):
        assert set(names(search(client, admin, query=query, mode="fulltext"))) == expected, query


def test_top_k_bounds_and_min_similarity(client, admin, corpus):
    assert (
        len(
            names(
                search(client, admin, query="finance", mode="semantic", top_k=2, min_similarity=0)
            )
        )
        == 2
    )
    everything = search(
        client, admin, query="finance", mode="semantic", top_k=100, min_similarity=0
    )
    assert len(names(everything)) == 4
    similarities = [h["semantic"]["similarity"] for h in everything.json["hits"]]
    cut = sorted(similarities)[1]
    kept = search(client, admin, query="finance", mode="semantic", top_k=100, min_similarity=cut)
    assert [h["semantic"]["similarity"] for h in kept.json["hits"]] == [
        s for s in similarities if s >= cut
    ]
    assert names(search(client, admin, query="finance", mode="semantic", min_similarity=1)) == []
    for bad in (0, 101, -1, "many"):
        assert search(client, admin, query="x", top_k=bad).status_code == 422


def test_defaults_come_from_the_users_preferences(client, admin, corpus, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE user_preferences SET top_k = 2, search_mode = 'fulltext',"
            " similarity_threshold = 0.9"
            " WHERE user_id = (SELECT id FROM users WHERE name = 'admin')"
        )
    body = search(client, admin, query="the finance budget pipeline").json
    assert (body["mode"], body["top_k"], body["min_similarity"]) == ("fulltext", 2, 0.9)
    assert len(body["hits"]) == 2


FILTER_CASES = [
    ({"field": "team", "op": "eq", "value": "finance"}, {"budget.txt"}),
    ({"field": "team", "value": "finance"}, {"budget.txt"}),  # op defaults to eq
    ({"field": "year", "op": "eq", "value": 2024.0}, {"valve.txt"}),
    ({"field": "team", "op": "ne", "value": "finance"}, {"fox.txt", "valve.txt", "notes.txt"}),
    ({"field": "team", "op": "in", "value": ["plant", "nature"]}, {"fox.txt", "valve.txt"}),
    ({"field": "year", "op": "lt", "value": 2023}, {"fox.txt"}),
    ({"field": "year", "op": "lte", "value": 2023}, {"fox.txt", "budget.txt"}),
    ({"field": "year", "op": "gt", "value": 2023}, {"valve.txt"}),
    ({"field": "year", "op": "gte", "value": 2023}, {"budget.txt", "valve.txt"}),
    ({"field": "team", "op": "gte", "value": "nature"}, {"fox.txt", "valve.txt"}),
    ({"field": "rating", "op": "gt", "value": 4}, {"valve.txt"}),
    ({"field": "draft", "op": "exists"}, {"budget.txt"}),  # a JSON null still exists
    ({"field": "year", "op": "exists", "value": False}, {"notes.txt"}),
    ({"field": "author.name", "op": "eq", "value": "Ada"}, {"fox.txt"}),
    ({"field": "tags", "op": "eq", "value": ["animals"]}, {"fox.txt"}),
    (
        {
            "and": [
                {"field": "year", "op": "gte", "value": 2020},
                {"field": "year", "op": "lt", "value": 2024},
            ]
        },
        {"fox.txt", "budget.txt"},
    ),
    (
        {"or": [{"field": "team", "value": "plant"}, {"not": {"field": "year", "op": "exists"}}]},
        {"valve.txt", "notes.txt"},
    ),
    (
        {"not": {"field": "team", "op": "in", "value": ["finance", "plant"]}},
        {"fox.txt", "notes.txt"},
    ),
    ({"field": "year", "op": "lt", "value": "2030"}, set()),  # strings never compare to numbers
]


@pytest.mark.parametrize("mode", ["semantic", "fulltext", "hybrid"])
def test_every_filter_operator_selects_the_right_documents(client, admin, corpus, mode):
    # "the" is a stop word: the full-text leg uses the other words; every chunk has one of them.
    query = "fox budget valve notes"
    for spec, expected in FILTER_CASES:
        response = search(client, admin, query=query, mode=mode, filter=spec, min_similarity=0)
        assert set(names(response)) == expected, spec


@pytest.mark.parametrize(
    "spec",
    [
        {"field": "year", "op": "like", "value": 1},
        {"field": "", "value": 1},
        {"field": "a..b", "value": 1},
        {"field": "year", "op": "lt", "value": True},
        {"field": "year", "op": "lt", "value": [1]},
        {"field": "year", "op": "in", "value": []},
        {"field": "year", "op": "in", "value": 3},
        {"field": "year", "op": "eq"},
        {"field": "year", "op": "exists", "value": "yes"},
        {"field": "year", "value": 1, "extra": 2},
        {"and": []},
        {"and": {"field": "year", "value": 1}},
        {"and": [{"field": "x", "value": 1}], "or": []},
        {"not": [1]},
        "year = 1; DROP TABLE users",
        {"field": "x", "op": "in", "value": list(range(101))},
    ],
)
def test_invalid_filters_are_422_naming_the_place(client, admin, corpus, spec):
    response = search(client, admin, query="fox", filter=spec)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"][0]["loc"][:2] == ["body", "filter"]


def test_filters_are_bounded_in_depth_and_size(client, admin, corpus):
    deep = {"field": "year", "value": 1}
    for _ in range(9):
        deep = {"not": deep}
    assert search(client, admin, query="fox", filter=deep).status_code == 422
    for _ in range(600):  # deeper than the JSON checks can walk recursively
        deep = {"not": deep}
    assert search(client, admin, query="fox", filter=deep).status_code == 400
    wide = {"or": [{"field": f"k{i}", "value": i} for i in range(65)]}
    assert search(client, admin, query="fox", filter=wide).status_code == 422
    sql_chars = {"field": "team'); DROP TABLE users; --", "op": "eq", "value": "x' OR '1'='1"}
    assert names(search(client, admin, query="fox", filter=sql_chars)) == []
    assert search(client, admin, query="fox", mode="fulltext").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": ""},
        {"query": "   "},
        {"query": "x" * 4001},
        {"query": "x", "mode": "fuzzy"},
        {"query": "x", "min_similarity": 1.5},
        {"query": "x", "collection_ids": []},
        {"query": "x", "collection_ids": [2**63]},
        {"query": "x", "document_ids": ["a"]},
        {"query": "x", "rrf_k": 0},
        {"query": "x", "semantic_weight": -1},
        {"query": "x", "unknown": 1},
        {"query": "x\u0000"},
    ],
)
def test_bad_parameters_are_422(client, admin, body):
    response = search(client, admin, **body)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"


def test_sql_metacharacters_in_the_query_are_just_text(client, admin, corpus):
    for query in ("'; DROP TABLE users; --", "fox & | ! <-> :* \\", '"', 'valve* "'):
        assert search(client, admin, query=query).status_code == 200, query
    assert names(search(client, admin, query="valve' OR 1=1 --", mode="fulltext")) == ["valve.txt"]


def test_language_specific_stemming(app, client, admin):
    german = client.post(
        "/api/v1/collections", json={"name": "de", "language": "german"}, headers=admin
    ).json["id"]
    english = client.post("/api/v1/collections", json={"name": "en"}, headers=admin).json["id"]
    text = "Die alten Häuser stehen am Marktplatz der Stadt."
    upload(client, admin, german, "de.txt", text)
    upload(client, admin, english, "en.txt", text)
    drain(app)
    # German stemming maps Häuser to haus; the English configuration does not.
    assert names(search(client, admin, query="Haus", mode="fulltext")) == ["de.txt"]
    # A collection's new language re-tokenises its chunks at once.
    patched = client.patch(
        f"/api/v1/collections/{english}", json={"language": "german"}, headers=admin
    )
    assert patched.status_code == 200, patched.json
    assert set(names(search(client, admin, query="Haus", mode="fulltext"))) == {
        "de.txt",
        "en.txt",
    }


def test_explicit_scope_limits_the_search(app, client, admin, corpus, collection):
    other = client.post("/api/v1/collections", json={"name": "other"}, headers=admin).json["id"]
    upload(client, admin, other, "other.txt", "Another fox lives in this other collection.")
    drain(app)
    both = set(names(search(client, admin, query="fox", mode="fulltext")))
    assert both == {"fox.txt", "other.txt"}
    only = search(client, admin, query="fox", mode="fulltext", collection_ids=[other])
    assert names(only) == ["other.txt"]
    by_document = search(
        client,
        admin,
        query="fox budget",
        mode="hybrid",
        document_ids=[corpus["budget.txt"]],
        min_similarity=0,
    )
    assert names(by_document) == ["budget.txt"]


def test_other_users_private_collections_are_invisible(
    app, client, admin, new_user, corpus, collection
):
    bob = new_user()
    bob_collection = client.post("/api/v1/collections", json={"name": "bob"}, headers=bob).json
    upload(client, bob, bob_collection["id"], "bob.txt", "Bob's private fox diary.")
    drain(app)
    for mode in ("hybrid", "semantic", "fulltext"):
        hits = names(search(client, bob, query="fox budget valve", mode=mode, min_similarity=0))
        assert hits == ["bob.txt"], mode
        mine = names(search(client, admin, query="fox diary", mode=mode, min_similarity=0))
        assert "bob.txt" not in mine
    guessed = search(client, bob, query="fox", collection_ids=[collection])
    assert guessed.status_code == 404 and guessed.mimetype == "application/problem+json"
    guessed_doc = search(client, bob, query="fox", document_ids=[corpus["fox.txt"]])
    assert guessed_doc.status_code == 404
    # Once shared, the collection is searchable by everyone, and still only readable.
    client.patch(f"/api/v1/collections/{collection}", json={"is_shared": True}, headers=admin)
    shared = search(client, bob, query="fox", mode="fulltext", collection_ids=[collection])
    assert names(shared) == ["fox.txt"]


def test_a_read_only_token_may_search(client, admin, corpus):
    token = client.post(
        "/api/v1/tokens", json={"name": "ro", "scopes": ["read"]}, headers=admin
    ).json["token"]
    assert names(search(client, bearer(token), query="fox", mode="fulltext")) == ["fox.txt"]
    assert client.post("/api/v1/search", json={"query": "fox"}).status_code == 401


def test_a_user_without_collections_gets_no_hits(client, new_user, corpus):
    body = search(client, new_user(), query="fox").json
    assert body["hits"] == []


def test_debug_reports_the_plan_and_timings(client, admin, corpus):
    body = search(client, admin, query="fox", debug=True).json
    debug = body["debug"]
    assert debug["semantic_scan"] == "exact"  # four chunks: an exact scan beats the index
    assert debug["ef_search"] >= 2 * debug["candidates_per_leg"]
    assert debug["candidates_per_leg"] == 4 * body["top_k"]
    assert any("chunk_lexemes_pkey" in line for line in debug["plan"])
    assert set(debug["timings_ms"]) == {"embed_ms", "search_ms"}


def test_a_requested_candidate_depth_replaces_the_computed_one(app, admin_token, corpus):
    from app.services import search as search_service
    from app.services.tokens import authenticate
    from app.services.worker import connect

    runtime = Runtime.of(app)
    deps = search_service.SearchDeps(runtime.settings, runtime.query_embedders, True)

    def debug_of(**fields) -> dict:
        request = search_service.SearchRequest(query="fox budget", top_k=3, debug=True, **fields)
        with connect(runtime.settings.database_url) as conn:
            who = authenticate(conn, f"Bearer {admin_token}")
            result = search_service.search(search_service.holding(conn), who, request, deps)
        assert [h.filename for h in result.hits][:1] in (["fox.txt"], ["budget.txt"])
        return result.debug

    assert debug_of()["candidates_per_leg"] == 20  # hybrid: max(4 * top_k, 20, top_k)
    deep = debug_of(candidates=300)
    assert deep["candidates_per_leg"] == 300
    assert deep["ef_search"] == 600  # the HNSW scan is widened to match
    assert debug_of(candidates=1)["candidates_per_leg"] == 3  # never fewer than top_k
    assert debug_of(mode="fulltext", candidates=50)["candidates_per_leg"] == 50


def test_built_in_defaults_are_the_preference_columns_defaults(app, database_url):
    from app.repositories import preferences
    from app.services import search as search_service
    from app.services.worker import connect

    with connect(database_url) as conn:
        defaults = preferences.column_defaults(conn)
    assert int(defaults["top_k"]) == search_service.DEFAULT_TOP_K
    assert float(defaults["similarity_threshold"]) == search_service.DEFAULT_MIN_SIMILARITY
    assert defaults["search_mode"] == f"'{search_service.DEFAULT_MODE}'::text"


def test_queries_are_embedded_with_the_searched_spaces_model(
    app, client, admin, collection, database_url
):
    from dataclasses import replace

    from app import create_app
    from app.providers.embeddings import make_embedder
    from app.services.worker import Worker
    from tests.fakes import FakeEmbeddingServer

    upload(client, admin, collection, "owls.txt", "Owls hunt small mice at night.")
    upload(client, admin, collection, "bees.txt", "Bees collect nectar from flowers.")
    drain(app)
    with FakeEmbeddingServer(dimension=16) as server:
        ollama = replace(
            Runtime.of(app).settings,
            embedder="ollama",
            ollama_url=server.url,
            embedding_model="fake-embed",
        )
        drain(app, worker=Worker(database_url, ollama, make_embedder(ollama)))  # new space
        # A server still configured for the local model searches the ready (Ollama) space.
        local = create_app(replace(ollama, embedder="local", embedding_model=""))
        other = local.test_client()
        server.requests.clear()
        body = {"query": "owls hunt mice", "mode": "semantic", "min_similarity": 0}
        assert names(other.post("/api/v1/search", json=body, headers=admin))[0] == "owls.txt"
        assert server.requests == [{"model": "fake-embed", "input": ["owls hunt mice"]}]

        server.dimension = 12  # the model changed under us: 503, or full text only for hybrid
        wrong = other.post("/api/v1/search", json=body, headers=admin)
        assert wrong.status_code == 503 and "12 dimensions" in wrong.json["detail"]
        hybrid = other.post("/api/v1/search", json={"query": "owls"}, headers=admin)
        assert names(hybrid) == ["owls.txt"]
        assert hybrid.json["hits"][0]["semantic"] is None
        assert "semantic leg skipped" in hybrid.json["warnings"][0]
        close_app(local)


def strict_json(response) -> dict:
    """The body as standard JSON: a NaN or an infinity (not JSON) fails the test."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in a JSON body")

    return json.loads(response.get_data(as_text=True), parse_constant=refuse)


def test_a_stored_vector_without_direction_never_makes_a_nan(
    client, admin, new_user, corpus, collection, database_url
):
    """A zero vector stored before vectors were checked: no similarity, never NaN in any answer."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE chunk_embeddings SET embedding = array_fill(0, ARRAY[vector_dims(embedding)])"
            "::real[]::vector WHERE chunk_id IN"
            " (SELECT id FROM document_chunks WHERE document_id = %s)",
            (corpus["valve.txt"],),
        )
    client.patch(f"/api/v1/collections/{collection}", json={"is_shared": True}, headers=admin)
    bob = new_user()
    for mode in ("semantic", "hybrid"):
        response = search(client, bob, query="valve", mode=mode, min_similarity=0)
        assert response.status_code == 200, response.get_data(as_text=True)
        hits = strict_json(response)["hits"]
        assert "valve.txt" not in [h["filename"] for h in hits if h["semantic"]], mode
        assert all(0 <= h["semantic"]["similarity"] <= 1 for h in hits if h["semantic"])
    # A semantic-mode chat stores its sources as citations (JSON in the database).
    client.patch("/api/v1/me/preferences", json={"search_mode": "semantic"}, headers=bob)
    chat = client.post("/api/v1/chats", json={}, headers=bob).json["id"]
    asked = client.post(
        f"/api/v1/chats/{chat}/messages", json={"content": "XR-7734 valve"}, headers=bob
    )
    assert asked.status_code == 201, asked.get_data(as_text=True)
    assert "valve.txt" not in [c["filename"] for c in strict_json(asked)["citations"]]
