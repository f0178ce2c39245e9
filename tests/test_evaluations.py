"""Evaluation sets and runs: metrics checked by hand on a tiny set, comparisons, isolation."""

from __future__ import annotations

import math

import psycopg
import pytest

from app.services import evaluations
from tests.helpers import admin_token_in, bearer, create_collection, drain, upload

DOCUMENTS = {
    "lighthouse.txt": "The lighthouse keeper polished the brass lamp every evening.",
    "vineyard.txt": "Volcanic soil makes the vineyard grapes unusually sweet.",
    "orchestra.txt": "The orchestra rehearsed the symphony until midnight.",
    "harbour.txt": "A lighthouse guided the fishing boats past the volcanic reef near the old"
    " harbour wall at dawn while gulls circled above the breakwater and nets.",
}


@pytest.fixture(scope="module")
def settings(module_settings):
    return module_settings  # one database: the tests read the set and the runs made once


@pytest.fixture(scope="module")
def app(module_app):
    return module_app


@pytest.fixture(scope="module")
def tiny(app, settings):
    """Four documents, a set of five queries whose fulltext rankings are known, one run."""
    client = app.test_client()
    admin = bearer(admin_token_in(settings.data_dir))
    collection = create_collection(client, admin, "eval")
    ids = {name: upload(client, admin, collection, name, text) for name, text in DOCUMENTS.items()}
    drain(app)
    chunk = client.get(f"/api/v1/documents/{ids['orchestra.txt']}/chunks", headers=admin)
    created = client.post(
        "/api/v1/evaluation-sets", json={"collection_id": collection, "name": "tiny"}, headers=admin
    )
    assert created.status_code == 201, created.json
    set_id = created.json["id"]
    queries = [
        # only orchestra.txt has these words: rank 1
        {
            "query": "symphony orchestra",
            "relevant": [{"document_id": ids["orchestra.txt"], "grade": 1}],
        },
        # only vineyard.txt is found; the judged document never is
        {
            "query": "vineyard grapes",
            "relevant": [{"document_id": ids["lighthouse.txt"], "grade": 1}],
        },
        # vineyard.txt (shorter) before harbour.txt; orchestra.txt is not found
        {
            "query": "volcanic",
            "external_id": "q3",
            "relevant": [
                {"document_id": ids["harbour.txt"], "grade": 2},
                {"document_id": ids["orchestra.txt"], "grade": 1},
                {"document_id": ids["vineyard.txt"], "grade": 0},
            ],
        },
        # judged not relevant only: not scored
        {"query": "orchestra", "relevant": [{"document_id": ids["lighthouse.txt"], "grade": 0}]},
        # judged on a chunk: scored on chunks
        {"query": "symphony", "relevant": [{"chunk_id": chunk.json["items"][0]["id"], "grade": 1}]},
    ]
    added = client.post(
        f"/api/v1/evaluation-sets/{set_id}/queries", json={"queries": queries}, headers=admin
    )
    assert added.status_code == 201, added.json
    assert added.json == {"added": 5, "query_count": 5}
    run = start_run(client, admin, set_id, {"mode": "fulltext"})
    return {
        "client": client,
        "admin": admin,
        "collection": collection,
        "ids": ids,
        "set": set_id,
        "run": run,
        "chunk": chunk.json["items"][0]["id"],
    }


def start_run(client, headers, set_id, config):
    started = client.post(
        "/api/v1/evaluations", json={"set_id": set_id, "config": config}, headers=headers
    )
    assert started.status_code == 202, started.json
    assert started.json["state"] == "running"
    drain(client.application)
    done = client.get(f"/api/v1/evaluations/{started.json['id']}", headers=headers)
    assert done.json["state"] == "done", done.json
    return done.json


def test_a_run_stores_the_metrics_computed_by_hand(tiny):
    metrics = tiny["run"]["metrics"]
    # "volcanic": gains [0, 2] against the ideal [2, 1]
    third = (2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert metrics["queries"] == 5 and metrics["judged"] == 4 and metrics["evaluated"] == 4
    assert metrics["coverage"] is None and metrics["k"] == 100
    assert metrics["ndcg_at_10"] == pytest.approx((1 + 0 + third + 1) / 4)
    assert metrics["recall_at_k"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert metrics["mrr"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert metrics["latency_p50_ms"] > 0 and metrics["latency_p95_ms"] >= metrics["latency_p50_ms"]


def test_per_query_results_hold_the_rankings(tiny):
    client, admin, ids = tiny["client"], tiny["admin"], tiny["ids"]
    page = client.get(f"/api/v1/evaluations/{tiny['run']['id']}/results", headers=admin)
    assert page.status_code == 200, page.json
    results = {r["query"]: r for r in page.json["items"]}
    assert page.json["total"] == 4 and "orchestra" not in results
    assert results["volcanic"]["ranked"] == [ids["vineyard.txt"], ids["harbour.txt"]]
    assert results["volcanic"]["external_id"] == "q3"
    assert results["volcanic"]["reciprocal_rank"] == 0.5
    assert results["vineyard grapes"]["ranked"] == [ids["vineyard.txt"]]
    assert results["vineyard grapes"]["ndcg_at_10"] == 0
    assert results["symphony"]["level"] == "chunk"
    assert results["symphony"]["ranked"] == [tiny["chunk"]]
    assert results["symphony orchestra"]["level"] == "document"


def test_queries_are_listed_with_their_judgments(tiny):
    client, admin = tiny["client"], tiny["admin"]
    page = client.get(
        f"/api/v1/evaluation-sets/{tiny['set']}/queries?limit=2&offset=2", headers=admin
    )
    assert page.status_code == 200 and page.json["total"] == 5
    third = page.json["items"][0]
    assert third["query"] == "volcanic" and len(third["relevant"]) == 3
    assert {"document_id": tiny["ids"]["harbour.txt"], "chunk_id": None, "grade": 2} in third[
        "relevant"
    ]


def test_compare_fulltext_with_hybrid_gives_a_confidence_interval(tiny):
    client, admin = tiny["client"], tiny["admin"]
    hybrid = start_run(client, admin, tiny["set"], {"mode": "hybrid", "rrf_k": 10})
    compared = client.get(
        f"/api/v1/evaluations/compare?a={tiny['run']['id']}&b={hybrid['id']}", headers=admin
    )
    assert compared.status_code == 200, compared.json
    assert compared.json["queries"] == 4
    by_metric = {m["metric"]: m for m in compared.json["metrics"]}
    assert set(by_metric) == {"ndcg@10", "recall@k", "mrr", "latency_ms"}
    ndcg = by_metric["ndcg@10"]
    assert ndcg["mean_a"] == pytest.approx(tiny["run"]["metrics"]["ndcg_at_10"])
    assert ndcg["mean_b"] == pytest.approx(hybrid["metrics"]["ndcg_at_10"])
    assert ndcg["difference"] == pytest.approx(ndcg["mean_b"] - ndcg["mean_a"])
    assert ndcg["low"] <= ndcg["difference"] <= ndcg["high"] and ndcg["confidence"] == 0.95
    assert 0 <= ndcg["p_value"] <= 1
    listed = client.get(f"/api/v1/evaluations?set_id={tiny['set']}", headers=admin)
    assert [r["id"] for r in listed.json["items"]] == [hybrid["id"], tiny["run"]["id"]]


def test_another_users_set_and_run_are_404(tiny, new_user):
    client, other = tiny["client"], new_user()
    run, set_id = tiny["run"]["id"], tiny["set"]
    for path in (
        f"/api/v1/evaluation-sets/{set_id}",
        f"/api/v1/evaluation-sets/{set_id}/queries",
        f"/api/v1/evaluations/{run}",
        f"/api/v1/evaluations/{run}/results",
        f"/api/v1/evaluations/compare?a={run}&b={run}",
    ):
        assert client.get(path, headers=other).status_code == 404, path
    assert client.delete(f"/api/v1/evaluation-sets/{set_id}", headers=other).status_code == 404
    started = client.post("/api/v1/evaluations", json={"set_id": set_id}, headers=other)
    assert started.status_code == 404
    assert client.get("/api/v1/evaluation-sets", headers=other).json["total"] == 0


@pytest.mark.parametrize(
    "config, where",
    [
        ({"mode": "vector"}, ["body", "config", "mode"]),
        ({"rrf_k": 0}, ["body", "config", "rrf_k"]),
        ({"semantic_weight": 11}, ["body", "config", "semantic_weight"]),
        ({"top_k": 5}, ["body", "config", "top_k"]),
        ({"space_id": 999}, ["body", "config", "space_id"]),
    ],
)
def test_bad_configs_are_422(tiny, config, where):
    client, admin = tiny["client"], tiny["admin"]
    response = client.post(
        "/api/v1/evaluations", json={"set_id": tiny["set"], "config": config}, headers=admin
    )
    assert response.status_code == 422, response.json
    assert response.json["errors"][0]["loc"] == where


def test_a_judgment_outside_the_collection_is_422_naming_the_query(tiny):
    client, admin = tiny["client"], tiny["admin"]
    elsewhere = create_collection(client, admin, "elsewhere")
    other_doc = upload(client, admin, elsewhere, "x.txt", "Something else entirely.")
    queries = [
        {"query": "fine", "relevant": [{"document_id": tiny["ids"]["harbour.txt"], "grade": 1}]},
        {"query": "wrong", "relevant": [{"document_id": other_doc, "grade": 1}]},
    ]
    response = client.post(
        f"/api/v1/evaluation-sets/{tiny['set']}/queries", json={"queries": queries}, headers=admin
    )
    assert response.status_code == 422, response.json
    assert response.json["errors"][0]["loc"] == ["body", "queries", 1, "relevant", 0, "document_id"]
    assert "queries[1]" in response.json["detail"]
    got = client.get(f"/api/v1/evaluation-sets/{tiny['set']}", headers=admin)
    assert got.json["query_count"] == 5  # nothing of the batch was added
    neither = [{"query": "q", "relevant": [{"grade": 1}]}]
    response = client.post(
        f"/api/v1/evaluation-sets/{tiny['set']}/queries", json={"queries": neither}, headers=admin
    )
    assert response.status_code == 422


def test_compare_needs_runs_of_one_set(tiny):
    client, admin = tiny["client"], tiny["admin"]
    other = client.post(
        "/api/v1/evaluation-sets",
        json={"collection_id": tiny["collection"], "name": "other"},
        headers=admin,
    ).json["id"]
    client.post(
        f"/api/v1/evaluation-sets/{other}/queries",
        json={
            "queries": [
                {
                    "query": "volcanic",
                    "relevant": [{"document_id": tiny["ids"]["harbour.txt"], "grade": 1}],
                }
            ]
        },
        headers=admin,
    )
    run = start_run(client, admin, other, {"mode": "fulltext"})
    compared = client.get(
        f"/api/v1/evaluations/compare?a={tiny['run']['id']}&b={run['id']}", headers=admin
    )
    assert compared.status_code == 422
    assert "different sets" in compared.json["detail"]
    running = client.post("/api/v1/evaluations", json={"set_id": other}, headers=admin).json
    compared = client.get(
        f"/api/v1/evaluations/compare?a={run['id']}&b={running['id']}", headers=admin
    )
    assert compared.status_code == 422
    assert compared.json["detail"] == f"run {running['id']} is running, not done"
    assert client.delete(f"/api/v1/evaluation-sets/{other}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/evaluations/{run['id']}", headers=admin).status_code == 404


def test_a_run_that_cannot_search_as_configured_fails_saying_why(tiny):
    # No reranker is configured here: the search would keep the fused order with a warning,
    # and a run stored done would describe a configuration that never ran.
    client, admin = tiny["client"], tiny["admin"]
    started = client.post(
        "/api/v1/evaluations",
        json={"set_id": tiny["set"], "config": {"mode": "fulltext", "rerank": True}},
        headers=admin,
    )
    assert started.status_code == 202, started.json
    drain(client.application)
    run = client.get(f"/api/v1/evaluations/{started.json['id']}", headers=admin).json
    assert run["state"] == "failed" and run["metrics"] is None
    assert "did not run as configured" in run["error"] and "no reranker" in run["error"]


def test_a_queued_run_is_its_owners_job(tiny, settings):
    client, admin = tiny["client"], tiny["admin"]
    started = client.post(
        "/api/v1/evaluations", json={"set_id": tiny["set"], "config": {}}, headers=admin
    )
    with psycopg.connect(settings.database_url) as conn:
        owner = conn.execute(
            "SELECT j.owner_id = s.owner_id FROM jobs j"
            " JOIN evaluation_runs r ON r.id = (j.payload ->> 'run_id')::bigint"
            " JOIN evaluation_sets s ON s.id = r.set_id WHERE r.id = %s",
            (started.json["id"],),
        ).fetchone()
    assert owner == (True,)  # counted in POSTRAG_JOBS_PER_USER like the owner's uploads
    drain(client.application)


def test_a_set_holds_a_bounded_number_of_queries(tiny, monkeypatch):
    monkeypatch.setattr(evaluations, "MAX_QUERIES_PER_SET", 6)
    client, admin = tiny["client"], tiny["admin"]
    two = [{"query": f"extra {n}", "relevant": []} for n in range(2)]
    response = client.post(
        f"/api/v1/evaluation-sets/{tiny['set']}/queries", json={"queries": two}, headers=admin
    )
    assert response.status_code == 422, response.json
    assert "at most 6 queries" in response.json["detail"]
    assert (
        client.get(f"/api/v1/evaluation-sets/{tiny['set']}", headers=admin).json["query_count"] == 5
    )
