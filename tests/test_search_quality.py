"""Retrieval quality on a labelled set that ships in tests/data: hybrid beats each single leg."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.helpers import admin_token_in, bearer, create_collection, drain, search, upload

LABELLED = json.loads((Path(__file__).parent / "data" / "search_labelled.json").read_text())


@pytest.fixture(scope="module")
def settings(module_settings):
    return module_settings  # one database for the module: its tests only search the labelled set


@pytest.fixture(scope="module")
def app(module_app):
    return module_app


@pytest.fixture(scope="module")
def labelled(app, settings):
    """The labelled documents, indexed once for the module."""
    client = app.test_client()
    admin = bearer(admin_token_in(settings.data_dir))
    collection = create_collection(client, admin)
    for name, text in LABELLED["documents"].items():
        upload(client, admin, collection, name, text)
    drain(app)


def ranked_documents(client, headers, query, mode):
    response = search(client, headers, query=query, mode=mode, top_k=10)
    assert response.status_code == 200, response.json
    seen: list[str] = []
    for hit in response.json["hits"]:
        if hit["filename"] not in seen:
            seen.append(hit["filename"])
    return seen


def ndcg_at_10(ranking, relevant):
    dcg = sum(1 / math.log2(i + 2) for i, name in enumerate(ranking[:10]) if name in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return dcg / ideal


def test_hybrid_ndcg_is_at_least_that_of_each_leg(labelled, client, admin):
    means = {}
    for mode in ("semantic", "fulltext", "hybrid"):
        scores = [
            ndcg_at_10(ranked_documents(client, admin, q["query"], mode), set(q["relevant"]))
            for q in LABELLED["queries"]
        ]
        means[mode] = sum(scores) / len(scores)
    assert means["hybrid"] >= means["semantic"], means
    assert means["hybrid"] >= means["fulltext"], means
    assert means["hybrid"] > 0.8, means


def test_fulltext_finds_a_rare_exact_term_that_semantic_misses(labelled, client, admin):
    assert ranked_documents(client, admin, "E-4471", "fulltext")[0] == "printer-e4471.txt"
    # A bare code means little to the embedding model: nothing reaches the default threshold.
    assert ranked_documents(client, admin, "E-4471", "semantic") == []
    assert ranked_documents(client, admin, "E-4471", "hybrid")[0] == "printer-e4471.txt"


def test_semantic_finds_a_paraphrase_that_fulltext_misses(labelled, client, admin):
    query = "How do I get my money back for something I bought?"
    assert "refunds.txt" not in ranked_documents(client, admin, query, "fulltext")
    assert ranked_documents(client, admin, query, "semantic")[0] == "refunds.txt"
    assert "refunds.txt" in ranked_documents(client, admin, query, "hybrid")[:3]
