"""A big document embedded in ranges by every worker (V2_26, app/services/ingestion_split.py)."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import psycopg
import pytest

from app.db import scope
from app.providers.embeddings import EmbeddingError
from app.repositories import jobs as job_repo
from app.runtime import Runtime
from app.services import ingestion
from app.services.worker import Worker, WorkerPool, connect
from tests.helpers import create_collection, drain, upload, wait_for

SPLIT = 4  # chunks per range in these tests (POSTRAG_SPLIT_CHUNKS)


def _text(sentences: int) -> str:
    return " ".join(f"Sentence {i} is about subject {i % 13}." for i in range(sentences))


def _settings(app, **changes):  # type: ignore[no-untyped-def]
    return replace(Runtime.of(app).settings, split_chunks=SPLIT, **changes)


def _worker(app, embedder=None, name: str = "", **changes) -> Worker:  # type: ignore[no-untyped-def]
    settings = _settings(app, **changes)
    return Worker(settings.database_url, settings, embedder or Runtime.of(app).embedder, name)


class Wrapped:
    """The real embedder behind a hook run before each call."""

    def __init__(self, inner, before) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.before = inner, before
        self.provider, self.model, self.max_tokens = inner.provider, inner.model, inner.max_tokens
        self.calls = 0

    def dimension(self) -> int:
        return int(self.inner.dimension())

    def token_spans(self, text):  # type: ignore[no-untyped-def]
        return self.inner.token_spans(text)

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.calls += 1
        self.before()
        return self.inner.embed(texts)


def _chunks(database_url: str, document_id: int) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT ordinal, text, token_count, page, char_start, char_end, heading_path"
            " FROM document_chunks WHERE document_id = %s ORDER BY ordinal",
            (document_id,),
        ).fetchall()


def _vectors(database_url: str, document_id: int) -> np.ndarray:
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT e.embedding FROM document_chunks c JOIN chunk_embeddings e"
            " ON e.chunk_id = c.id WHERE c.document_id = %s ORDER BY c.ordinal",
            (document_id,),
        ).fetchall()
    return np.array([r["embedding"].to_numpy() for r in rows])


def _one(database_url: str, sql: str, *params: object) -> tuple:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return tuple(row)


def _progress(database_url: str, document_id: int) -> tuple:
    return _one(
        database_url,
        "SELECT status, chunks_total, chunks_embedded FROM documents WHERE id = %s",
        document_id,
    )


def _jobs(database_url: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT kind, state, count(*) FROM jobs GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()


def _splits(database_url: str) -> int:
    return int(_one(database_url, "SELECT count(*) FROM document_splits")[0])


def test_a_big_document_is_embedded_in_ranges_by_two_workers(
    app, client, admin, collection, database_url
):
    """One user's big document on two workers, though a user runs one job at a time (the
    default POSTRAG_JOBS_PER_USER): its ranges pass the cap, the ingestion holds no slot."""
    assert Runtime.of(app).settings.jobs_per_user == 1
    text = _text(300)
    plain = upload(client, admin, create_collection(client, admin, "plain"), "long.txt", text)
    assert drain(app) == 1  # small enough for one job with the default split (64 chunks)
    doc = upload(client, admin, collection, "long.txt", text)
    both = threading.Barrier(2, timeout=60)
    threads: set[str] = set()

    def first_call_meets_the_other_worker() -> None:
        name = threading.current_thread().name
        if name not in threads:
            threads.add(name)
            both.wait()  # passes only when the two workers embed ranges at once

    settings = _settings(app)
    embedder = Wrapped(Runtime.of(app).embedder, first_call_meets_the_other_worker)
    pool = WorkerPool(settings.database_url, settings, embedder, 2)
    seen: list[tuple] = []
    for worker in pool.workers:
        worker.after_batch = lambda: seen.append(_progress(database_url, doc))
    pool.start()
    try:
        wait_for(lambda: _progress(database_url, doc)[0] in ("indexed", "failed"), timeout=120)
    finally:
        pool.stop()
    expected = _chunks(database_url, plain)
    total = len(expected)
    assert total > 2 * SPLIT
    assert len(threads) == 2 and not both.broken
    assert _progress(database_url, doc) == ("indexed", total, total)
    assert _chunks(database_url, doc) == expected  # order, texts and spans as in one job
    cosines = np.sum(_vectors(database_url, doc) * _vectors(database_url, plain), axis=1)
    assert len(cosines) == total and cosines.min() > 0.999
    ranges = -(-total // SPLIT)
    assert _jobs(database_url) == [
        ("embed_range", "succeeded", ranges),
        ("ingest_document", "succeeded", 2),
    ]
    assert _splits(database_url) == 0
    # After each batch but the last: counted as stored (another worker may have swapped since).
    assert seen and all(t == total for _, t, _ in seen)
    assert all(0 < e < total for s, _, e in seen if s == "embedding")
    assert {s for s, _, _ in seen} <= {"embedding", "indexed"}


def test_a_failing_range_fails_the_document_which_keeps_its_previous_chunks(
    app, client, admin, collection, database_url
):
    doc = upload(client, admin, collection, "long.txt", _text(300))
    drain(app)
    before = _chunks(database_url, doc)
    assert client.post(f"/api/v1/documents/{doc}/reindex", headers=admin).status_code == 202

    def unavailable() -> None:
        raise EmbeddingError("fake: http://127.0.0.1:9/api/embed answered 503")

    broken = Wrapped(Runtime.of(app).embedder, unavailable)
    drain(app, worker=_worker(app, broken, job_retry_base_s=0))
    detail = client.get(f"/api/v1/documents/{doc}", headers=admin).json
    assert (detail["status"], detail["stage"]) == ("failed", "embedding")
    assert "answered 503" in detail["error"]
    assert _chunks(database_url, doc) == before
    assert _splits(database_url) == 0
    states = {state for _, state, _ in _jobs(database_url)}
    assert states <= {"succeeded", "failed"}  # the other ranges were dropped with the split


def test_deleting_the_document_stops_its_ranges(app, client, admin, collection, database_url):
    doc = upload(client, admin, collection, "long.txt", _text(300))
    embedder = Wrapped(Runtime.of(app).embedder, lambda: None)
    worker = _worker(app, embedder)
    worker.after_batch = lambda: client.delete(f"/api/v1/documents/{doc}", headers=admin)
    drain(app, worker=worker)
    assert embedder.calls <= 2  # at most the batch in flight when the document went
    assert _jobs(database_url) == []  # gone with the document, ranges too
    assert _splits(database_url) == 0
    assert _chunks(database_url, doc) == []


def test_a_range_that_lost_its_lease_writes_nothing_more(
    app, client, admin, collection, database_url, monkeypatch
):
    monkeypatch.setattr(ingestion, "EMBED_BATCH", 2)
    doc = upload(client, admin, collection, "long.txt", _text(300))
    slow = _worker(app, name="slow")

    def lose_lease() -> None:
        with psycopg.connect(database_url, autocommit=True) as other:
            other.execute("UPDATE jobs SET lease_owner = 'thief' WHERE lease_owner = 'slow'")

    slow.after_batch = lose_lease
    drain(app, worker=slow)
    status, total, embedded = _progress(database_url, doc)
    assert status == "embedding" and total > 2 * SPLIT
    assert _chunks(database_url, doc) == []  # never swapped
    with psycopg.connect(database_url) as conn:
        per_range = conn.execute(
            "SELECT (s.ordinal / %s), count(*) FROM split_chunks s"
            " WHERE s.embedding IS NOT NULL GROUP BY 1 ORDER BY 1",
            (SPLIT,),
        ).fetchall()
        left = conn.execute("SELECT chunks_left FROM document_splits").fetchone()
    # Each range stored its first batch, lost its lease in after_batch, and stored no other.
    sizes = [min(SPLIT, total - first) for first in range(0, total, SPLIT)]
    assert [n for _, n in per_range] == [min(2, size) for size in sizes]
    assert embedded == sum(n for _, n in per_range) and left == (total - embedded,)
    assert ("embed_range", "running", len(per_range)) in _jobs(database_url)


def test_exactly_one_range_swaps_when_the_last_two_end_together(
    app, client, admin, collection, database_url
):
    doc = upload(client, admin, collection, "long.txt", _text(120))
    together = threading.Barrier(2, timeout=60)
    settings = _settings(app)
    embedder = Wrapped(Runtime.of(app).embedder, together.wait)  # each range is one batch
    pool = WorkerPool(settings.database_url, settings, embedder, 2).start()
    try:
        wait_for(lambda: _progress(database_url, doc)[0] in ("indexed", "failed"), timeout=120)
    finally:
        pool.stop()
    status, total, embedded = _progress(database_url, doc)
    assert (status, embedded, embedder.calls) == ("indexed", total, 2)
    assert SPLIT < total <= 2 * SPLIT  # two ranges, stored at once
    assert [c[0] for c in _chunks(database_url, doc)] == list(range(total))
    assert len(_vectors(database_url, doc)) == total
    history = client.get(f"/api/v1/documents/{doc}", headers=admin).json["history"]
    assert [h["status"] for h in history].count("indexed") == 1
    assert _jobs(database_url) == [
        ("embed_range", "succeeded", 2),
        ("ingest_document", "succeeded", 1),
    ]


def test_a_reindex_while_ranges_run_replaces_them(app, client, admin, collection, database_url):
    doc = upload(client, admin, collection, "long.txt", _text(300))
    worker = _worker(app)
    reindexed: list[int] = []

    def reindex_once() -> None:
        if not reindexed:
            response = client.post(f"/api/v1/documents/{doc}/reindex", headers=admin)
            reindexed.append(response.status_code)

    worker.after_batch = reindex_once
    drain(app, worker=worker)
    assert reindexed == [202]  # accepted: the first ingestion's own job had ended
    status, total, embedded = _progress(database_url, doc)
    assert (status, embedded) == ("indexed", total)
    assert [c[0] for c in _chunks(database_url, doc)] == list(range(total))
    history = client.get(f"/api/v1/documents/{doc}", headers=admin).json["history"]
    assert [h["status"] for h in history][-2:] == ["embedding", "indexed"]
    assert [h["status"] for h in history].count("indexed") == 1
    assert _splits(database_url) == 0
    assert {state for _, state, _ in _jobs(database_url)} == {"succeeded"}


@pytest.mark.parametrize("uncapped", [["embed_range"], []])
def test_ranges_pass_their_owners_cap_after_other_users_jobs(
    app, client, admin, collection, new_user, database_url, uncapped
):
    doc = upload(client, admin, collection, "a.txt", "Admin's text.")
    bob = new_user("bob")
    bobs_doc = upload(client, bob, create_collection(client, bob, "b"), "b.txt", "Bob's text.")
    with connect(database_url) as conn:
        space = 7
        running = job_repo.claim(conn, worker_id="w1", lease_s=60, space_id=space, per_user=1)
        assert running is not None and running.payload["document_id"] == doc
        payload = {"document_id": doc, "split_id": 1, "first": 0, "end": 4, "space_id": space}
        job_repo.enqueue(
            conn,
            kind="embed_range",
            payload=payload,
            dedupe_key=None,
            max_attempts=1,
            document_id=doc,
        )
        taken = [
            job_repo.claim(
                conn, worker_id=f"w{n}", lease_s=60, space_id=space, per_user=1, uncapped=uncapped
            )
            for n in (2, 3)
        ]
    assert taken[0] is not None and taken[0].payload["document_id"] == bobs_doc
    if uncapped:
        assert taken[1] is not None and taken[1].kind == "embed_range"
    else:
        assert taken[1] is None


def test_a_range_is_only_for_workers_of_its_embedding_space(app, client, admin, collection):
    doc = upload(client, admin, collection, "a.txt", "Admin's text.")
    with connect(Runtime.of(app).settings.database_url) as conn:
        conn.execute("DELETE FROM jobs")
        payload = {"document_id": doc, "split_id": 1, "first": 0, "end": 4, "space_id": 7}
        job_repo.enqueue(
            conn,
            kind="embed_range",
            payload=payload,
            dedupe_key=None,
            max_attempts=1,
            document_id=doc,
        )
        other = job_repo.claim(
            conn, worker_id="w1", lease_s=60, space_id=8, uncapped=["embed_range"]
        )
        own = job_repo.claim(conn, worker_id="w2", lease_s=60, space_id=7, uncapped=["embed_range"])
    assert other is None and own is not None and own.kind == "embed_range"


def test_a_split_is_its_documents_owners_under_rls(app, client, admin, collection, new_user):
    doc = upload(client, admin, collection, "long.txt", _text(300))
    bob = new_user("bob")
    ids = {
        name: client.get("/api/v1/me", headers=headers).json["id"]
        for name, headers in (("admin", admin), ("bob", bob))
    }
    with connect(Runtime.of(app).settings.database_url) as conn:
        assert _worker(app).run_one(conn)  # the ingestion: it stores the split, queues ranges
        seen = {}
        for name, user_id in ids.items():
            scope.act_as(conn, user_id)
            seen[name] = conn.execute(
                "SELECT (SELECT count(*) FROM document_splits) AS splits,"
                " (SELECT count(*) FROM split_chunks) AS drafts"
            ).fetchone()
        scope.act_as_owner(conn)
    assert seen["bob"] == {"splits": 0, "drafts": 0}
    assert seen["admin"]["splits"] == 1 and seen["admin"]["drafts"] > SPLIT
    assert _progress(Runtime.of(app).settings.database_url, doc)[0] == "embedding"
