"""An embedding space being filled, evaluated against the ready one on the queries it covers."""

from __future__ import annotations

import numpy as np

from app.providers.http_embedders import OllamaEmbedder
from app.repositories import documents as document_repo
from app.services import spaces
from app.services.worker import connect
from tests.fakes import FakeEmbeddingServer
from tests.helpers import drain, upload

TEXTS = [
    "Owls hunt mice at night.",
    "Bees dance to show where flowers are.",
    "Whales sing across the ocean.",
    "Ants carry leaves to their nest.",
]


def _fill_part(database_url: str, embedder: OllamaEmbedder, document_ids: list[int]) -> int:
    """A new model's space with vectors for these documents' chunks only (a fill under way)."""
    with connect(database_url) as conn:
        space = spaces.ensure_space(conn, embedder, max_attempts=1)
        assert space.state == "building"
        rows = conn.execute(
            "SELECT id, text FROM document_chunks WHERE document_id = ANY(%s) ORDER BY id",
            [document_ids],
        ).fetchall()
        vectors = np.asarray(embedder.embed([r["text"] for r in rows]), dtype=np.float32)
        with conn.transaction():
            document_repo.copy_embeddings(conn, space.id, [r["id"] for r in rows], vectors)
    return space.id


def _run(client, headers, set_id, config):
    """A run started through the API and worked by a worker in this thread; as it ended."""
    started = client.post(
        "/api/v1/evaluations", json={"set_id": set_id, "config": config}, headers=headers
    )
    assert started.status_code == 202, started.json
    drain(client.application)
    return client.get(f"/api/v1/evaluations/{started.json['id']}", headers=headers).json


def test_a_space_being_filled_is_evaluated_on_the_queries_it_covers(
    make_app, client, admin, collection, database_url
):
    ids = [upload(client, admin, collection, f"d{i}.txt", t) for i, t in enumerate(TEXTS)]
    drain(client.application)
    set_id = client.post(
        "/api/v1/evaluation-sets", json={"collection_id": collection, "name": "s"}, headers=admin
    ).json["id"]
    queries = [
        {"query": text, "relevant": [{"document_id": d, "grade": 1}]}
        for d, text in zip(ids, TEXTS, strict=True)
    ]
    client.post(
        f"/api/v1/evaluation-sets/{set_id}/queries", json={"queries": queries}, headers=admin
    )
    with FakeEmbeddingServer() as server:
        space_id = _fill_part(database_url, OllamaEmbedder(server.url, "fake-embed"), ids[:2])
        other = make_app(ollama_url=server.url).test_client()  # its workers reach the new model
        semantic = {"mode": "semantic", "min_similarity": 0}
        current = _run(other, admin, set_id, semantic)
        building = _run(other, admin, set_id, {**semantic, "space_id": space_id})
        inputs = [r["input"] for r in server.requests]
    asked = {text for i in inputs for text in (i if isinstance(i, list) else [i])}
    assert current["state"] == building["state"] == "done", (current, building)
    assert current["metrics"]["evaluated"] == 4 and current["metrics"]["coverage"] is None
    assert building["metrics"]["coverage"] == 0.5 and building["metrics"]["evaluated"] == 2
    assert TEXTS[0] in asked, "the queries were embedded with the new space's model"
    results = other.get(f"/api/v1/evaluations/{building['id']}/results", headers=admin).json
    assert {r["query"] for r in results["items"]} == set(TEXTS[:2])
    # only the covered documents can be found in the space being filled
    assert {d for r in results["items"] for d in r["ranked"]} <= set(ids[:2])
    compared = other.get(
        f"/api/v1/evaluations/compare?a={current['id']}&b={building['id']}", headers=admin
    ).json
    assert (compared["queries"], compared["queries_a"], compared["queries_b"]) == (2, 4, 2)
    # The new model's server is gone: the run fails and says why.
    failed = _run(other, admin, set_id, {**semantic, "space_id": space_id})
    assert failed["state"] == "failed" and failed["metrics"] is None
    assert failed["error"].startswith("cannot embed the query: "), failed["error"]
