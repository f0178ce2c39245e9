"""Background ingestion: leases, retries, exactly-once processing, atomic replacement, wake-ups."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

import numpy as np
import psycopg
import pytest

from app.providers.embeddings import EmbeddingError
from app.repositories import jobs as job_repo
from app.runtime import Runtime
from app.services.worker import Worker, connect
from tests.helpers import document_status, drain, pdf_pages, running_workers, upload, wait_for


def _long_text(words: int) -> str:
    return " ".join(f"Sentence {i} is about subject {i % 13}." for i in range(words // 5))


class BrokenEmbedder:
    """Wraps a real embedder and fails every call (or every call after the first `ok` calls)."""

    def __init__(self, inner, ok: int = 0, error: Exception | None = None):
        self.inner, self.ok = inner, ok
        self.error = error or EmbeddingError("fake: http://127.0.0.1:9/api/embed answered 503")
        self.provider, self.model, self.max_tokens = inner.provider, inner.model, inner.max_tokens

    def dimension(self):
        return self.inner.dimension()

    def token_spans(self, text):
        return self.inner.token_spans(text)

    def embed(self, texts):
        if self.ok <= 0:
            raise self.error
        self.ok -= 1
        return self.inner.embed(texts)


def _chunk_rows(database_url, document_id):
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT c.id, c.text, e.space_id FROM document_chunks c"
            " JOIN chunk_embeddings e ON e.chunk_id = c.id WHERE c.document_id = %s ORDER BY c.id",
            (document_id,),
        ).fetchall()


def test_failed_replacement_keeps_the_previous_chunks(app, client, admin, collection, database_url):
    settings = Runtime.of(app).settings
    doc = upload(client, admin, collection, "long.txt", _long_text(1500))
    drain(app)
    before = _chunk_rows(database_url, doc)
    assert len(before) > 5
    client.post(f"/api/v1/documents/{doc}/reindex", headers=admin)
    worker = Worker(
        settings.database_url,
        replace(settings, job_retry_base_s=0),
        Runtime.of(app).embedder,
    )

    def crash_after_first_batch():
        raise RuntimeError("injected failure mid-embedding")

    worker.after_batch = crash_after_first_batch
    drain(app, worker=worker)
    detail = client.get(f"/api/v1/documents/{doc}", headers=admin).json
    assert detail["status"] == "failed"
    assert detail["stage"] == "embedding"
    assert "injected failure" in detail["error"]
    assert _chunk_rows(database_url, doc) == before


def test_a_failure_inside_the_write_keeps_the_previous_chunks(
    app, client, admin, collection, database_url, monkeypatch
):
    from app.repositories import staging

    doc = upload(client, admin, collection, "long.txt", _long_text(1500))
    drain(app)
    before = _chunk_rows(database_url, doc)
    client.post(f"/api/v1/documents/{doc}/reindex", headers=admin)

    def broken_move(*args, **kwargs):  # after the DELETE and the chunks' INSERT
        raise psycopg.errors.DiskFull("injected: could not extend file")

    monkeypatch.setattr(staging, "move_vectors", broken_move)
    settings = replace(Runtime.of(app).settings, job_retry_base_s=0)
    drain(app, worker=Worker(settings.database_url, settings, Runtime.of(app).embedder))
    assert client.get(f"/api/v1/documents/{doc}", headers=admin).json["status"] == "failed"
    assert _chunk_rows(database_url, doc) == before


def test_a_dead_workers_last_attempt_fails_its_document(app, client, admin, collection):
    settings = Runtime.of(app).settings
    doc = upload(client, admin, collection, "x.txt", "Dies every time.")
    with connect(settings.database_url) as conn:
        conn.execute("UPDATE jobs SET max_attempts = 1")
        space = conn.execute("SELECT id FROM embedding_spaces").fetchone()
        assert (
            job_repo.claim(conn, worker_id="dead", lease_s=1, space_id=space["id"] if space else 0)
            is not None
        )
    time.sleep(1.2)
    assert drain(app) == 0
    detail = client.get(f"/api/v1/documents/{doc}", headers=admin).json
    assert detail["status"] == "failed"
    assert "lease of dead expired" in detail["error"]


def test_retries_with_backoff_then_failed_with_the_error(app, client, admin, collection):
    settings = replace(Runtime.of(app).settings, job_retry_base_s=0)
    attempts = settings.job_max_attempts  # fixed on the job when it is queued
    doc = upload(client, admin, collection, "x.txt", "Some text to embed.")
    worker = Worker(settings.database_url, settings, BrokenEmbedder(Runtime.of(app).embedder))
    assert drain(app, worker=worker) == attempts
    detail = client.get(f"/api/v1/documents/{doc}", headers=admin).json
    assert detail["status"] == "failed" and detail["stage"] == "embedding"
    assert "answered 503" in detail["error"]
    statuses = [h["status"] for h in detail["history"]]
    assert statuses.count("queued") == attempts  # the upload, then one per retry
    assert statuses[-1] == "failed"
    retry_errors = [h["error"] for h in detail["history"] if h["status"] == "queued" and h["error"]]
    assert retry_errors and "attempt 1 failed" in retry_errors[0]


def test_retry_waits_for_its_backoff(app, client, admin, collection):
    settings = replace(Runtime.of(app).settings, job_retry_base_s=30)
    upload(client, admin, collection, "x.txt", "Text.")
    worker = Worker(settings.database_url, settings, BrokenEmbedder(Runtime.of(app).embedder))
    assert drain(app, worker=worker) == 1  # the retry is not due for 30 s
    with connect(settings.database_url) as conn:
        wait = job_repo.seconds_until_next(conn)
    assert wait is not None and 25 < wait <= 30


def test_a_dead_workers_job_is_taken_over_after_its_lease(app, client, admin, collection):
    settings = Runtime.of(app).settings
    doc = upload(client, admin, collection, "x.txt", "Survives a crash.")
    with connect(settings.database_url) as conn:
        job = job_repo.claim(conn, worker_id="dead-worker", lease_s=1, space_id=0)
        assert job is not None
        assert drain(app) == 0  # leased: nobody else may take it
        time.sleep(1.2)
        assert drain(app) == 1
        assert not job_repo.lock_if_owned(conn, job_id=job.id, worker_id="dead-worker")
        row = conn.execute(
            "SELECT state, attempts, last_error FROM jobs WHERE id = %s", (job.id,)
        ).fetchone()
    assert row["state"] == "succeeded" and row["attempts"] == 2
    assert "dead-worker expired" in row["last_error"]
    detail = client.get(f"/api/v1/documents/{doc}", headers=admin).json
    assert detail["status"] == "indexed"
    assert [h["status"] for h in detail["history"]].count("indexed") == 1


def test_a_worker_that_lost_its_lease_writes_nothing(app, client, admin, collection, database_url):
    settings = replace(Runtime.of(app).settings, job_lease_s=5)
    doc = upload(client, admin, collection, "x.txt", _long_text(600))
    slow = Worker(settings.database_url, settings, Runtime.of(app).embedder, "slow")

    def lose_lease():
        with psycopg.connect(database_url, autocommit=True) as other:
            other.execute("UPDATE jobs SET lease_owner = 'thief' WHERE lease_owner = 'slow'")

    slow.after_batch = lose_lease
    drain(app, worker=slow)
    assert _chunk_rows(database_url, doc) == []
    with psycopg.connect(database_url) as conn:
        state = conn.execute("SELECT state, lease_owner FROM jobs").fetchone()
    assert state == ("running", "thief")


def test_two_workers_process_twenty_documents_exactly_once(app, client, admin, database_url):
    with running_workers(app, 2):
        coll = client.post("/api/v1/collections", json={"name": "many"}, headers=admin).json["id"]
        ids = [
            upload(client, admin, coll, f"d{i}.txt", f"Document number {i} text.")
            for i in range(20)
        ]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            listed = client.get(
                f"/api/v1/documents?collection_id={coll}&status=indexed", headers=admin
            ).json
            if listed["total"] == 20:
                break
            time.sleep(0.3)
        assert listed["total"] == 20
    with psycopg.connect(database_url) as conn:
        jobs = conn.execute("SELECT state, attempts, count(*) FROM jobs GROUP BY 1, 2").fetchall()
        per_doc = conn.execute(
            "SELECT document_id, count(*) FILTER (WHERE status = 'extracting'),"
            " count(*) FILTER (WHERE status = 'indexed') FROM document_status_history"
            " GROUP BY document_id"
        ).fetchall()
        owners = conn.execute("SELECT count(DISTINCT lease_owner) FROM jobs").fetchone()
    assert jobs == [("succeeded", 1, 20)]
    assert sorted(per_doc) == sorted((i, 1, 1) for i in ids)
    assert owners == (0,)  # leases are cleared on success


def test_an_idle_worker_is_woken_by_notify(app, client, admin):
    with running_workers(app):
        coll = client.post("/api/v1/collections", json={"name": "w"}, headers=admin).json["id"]
        time.sleep(1.0)  # the worker is now idle, waiting up to 60 s for a notification
        doc = upload(client, admin, coll, "wake.txt", "Wake up.")
        wait_for(
            lambda: (
                client.get(f"/api/v1/documents/{doc}", headers=admin).json["status"] == "indexed"
            ),
            "the worker was not woken",
            timeout=20,
        )


def test_a_worker_without_its_database_logs_one_line_per_attempt(app, tmp_path, caplog):
    settings = Runtime.of(app).settings
    gone = f"postgresql:///postrag?host={tmp_path}"  # no server listens there
    worker = Worker(gone, settings, Runtime.of(app).embedder, "w-down")
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    with caplog.at_level(logging.ERROR, logger="app.services.worker"):
        thread.start()
        wait_for(lambda: caplog.records, "the worker logged nothing", timeout=30)
        stop.set()
        thread.join(timeout=30)
    record = caplog.records[0]
    assert record.exc_info is None  # a database restart is expected: no traceback every 5 s
    assert "w-down lost its database connection; retrying in 5 s" in record.getMessage()


def test_an_unreadable_file_fails_without_retries(app, client, admin, collection, database_url):
    doc = upload(client, admin, collection, "ok.txt", "Readable now.")
    with psycopg.connect(database_url, autocommit=True) as conn:  # damaged after the upload
        conn.execute("ALTER TABLE documents DROP CONSTRAINT documents_size_bytes_check")
        conn.execute("UPDATE documents SET content = '' WHERE id = %s", (doc,))
    assert drain(app) == 1
    detail = client.get(f"/api/v1/documents/{doc}", headers=admin).json
    assert detail["status"] == "failed" and detail["stage"] == "extracting"
    assert "empty" in detail["error"]


def test_local_embeddings_are_normalised_and_meaningful(app):
    embedder = Runtime.of(app).embedder
    vectors = embedder.embed(
        [
            "A cat sits on the mat.",
            "A kitten rests on a rug.",
            "Interest rates rose by half a point.",
        ]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


@pytest.mark.parametrize("words", [10, 3000])
def test_long_inputs_are_truncated_not_rejected(app, words):
    vector = Runtime.of(app).embedder.embed([" ".join(["word"] * words)])
    assert vector.shape == (1, 384)


def test_chunks_overlap_by_whole_sentences_across_long_paragraphs(app):
    from app.services.chunking import chunk_document
    from app.services.extraction import extract

    paragraphs = "\n\n".join(
        " ".join(f"Paragraph {p} sentence {i} carries a few words." for i in range(12))
        for p in range(6)
    )
    doc = extract(paragraphs.encode(), "text/plain")
    chunks = list(chunk_document(doc, Runtime.of(app).embedder.token_spans, 200, 30))
    assert len(chunks) >= 3
    for previous, current in zip(chunks, chunks[1:], strict=False):
        assert current.char_start < previous.char_end  # they overlap
        shared = doc.text[current.char_start : previous.char_end]
        assert shared.endswith(".") and shared[0].isupper()  # whole sentences
        assert current.token_count <= 200


def test_chunks_are_bounded_in_characters_and_charge_long_words_by_length(app):
    """A 24 MB text without spaces was one 25 MB chunk with token_count 1 (issue 16)."""
    from app.services.chunking import chunk_document
    from app.services.extraction import extract

    run = "abcdefghij" * 2_000
    text = (
        f"Before the run. {run} After the run.\n\n"
        f"Spaces{' ' * 5_000}between two words.\n\nControl{chr(1) * 5_000}characters."
    )
    doc = extract(text.encode(), "text/plain")
    chunks = list(chunk_document(doc, Runtime.of(app).embedder.token_spans, 200, 30))
    assert all(len(c.text) <= 200 * 8 and c.token_count <= 200 for c in chunks)
    assert all(c.text == doc.text[c.char_start : c.char_end] for c in chunks)
    start = doc.text.index(run)
    covered = [c for c in chunks if c.char_start < start + len(run) and c.char_end > start]
    assert covered[0].char_start <= start and covered[-1].char_end >= start + len(run)
    assert sum(c.token_count for c in covered) >= len(run) // 4  # 4 characters a token
    assert any(c.text.endswith("between two words.") for c in chunks)
    assert chunks[-1].text.endswith("characters.")


def test_the_tokenizer_only_ever_sees_a_bounded_slice(app):
    from app.services.chunking import chunk_document
    from app.services.extraction import extract

    token_spans = Runtime.of(app).embedder.token_spans
    seen: list[int] = []

    def spy(text):
        seen.append(len(text))
        return token_spans(text)

    doc = extract((_long_text(400) + " " + "y" * 50_000).encode(), "text/plain")
    assert list(chunk_document(doc, spy, 200, 30))
    assert max(seen) <= 200 * 8


def test_tokenizing_a_long_text_lets_other_threads_run(app):
    """The tokenizer held the GIL through a whole document: the lease's heartbeat could not run,
    and a job's lease expired while it was running (issue 16)."""
    import threading

    beats: list[float] = []
    done = threading.Event()

    def heartbeat():
        while not done.is_set():
            beats.append(time.monotonic())
            time.sleep(0.01)

    beating = threading.Thread(target=heartbeat)
    beating.start()
    try:
        started = time.monotonic()
        Runtime.of(app).embedder.token_spans("z" * 600_000)
        ended = time.monotonic()
    finally:
        done.set()
        beating.join()
    assert len([b for b in beats if started < b < ended]) >= 5


def test_a_user_with_a_running_job_waits_behind_another_users_first_job(
    app, client, admin, collection, new_user, database_url
):
    """One user's 20 uploads kept another user's waiting for minutes (issue 16)."""
    ids = [upload(client, admin, collection, f"a{i}.txt", f"Text {i}.") for i in range(20)]
    bob = new_user("bob")
    bobs = client.post("/api/v1/collections", json={"name": "b"}, headers=bob).json["id"]
    bobs_doc = upload(client, bob, bobs, "b.txt", "Bob's text.")
    with connect(database_url) as conn:
        first = job_repo.claim(conn, worker_id="w1", lease_s=60, space_id=0, per_user=2)
        second = job_repo.claim(conn, worker_id="w2", lease_s=60, space_id=0, per_user=2)
        third = job_repo.claim(conn, worker_id="w3", lease_s=60, space_id=0, per_user=2)
    assert first is not None and first.payload["document_id"] == ids[0]
    assert second is not None and second.payload["document_id"] == bobs_doc
    assert third is not None and third.payload["document_id"] == ids[1]


def test_one_users_uploads_never_hold_every_worker(
    app, client, admin, collection, new_user, database_url
):
    """Two big uploads of one user took both workers, and another user's small files waited
    until one of them ended, 12 minutes (review of issue 16)."""
    per_user = Runtime.of(app).settings.jobs_per_user
    assert per_user == 1  # the default
    ids = [upload(client, admin, collection, f"a{i}.txt", f"Text {i}.") for i in range(2)]
    with connect(database_url) as conn:
        first = job_repo.claim(conn, worker_id="w1", lease_s=60, space_id=0, per_user=per_user)
        second = job_repo.claim(conn, worker_id="w2", lease_s=60, space_id=0, per_user=per_user)
        # Idle workers sleep until a lease expires, not poll the capped job (due, but not theirs).
        wait = job_repo.seconds_until_next(conn, per_user=per_user)
    assert first is not None and first.payload["document_id"] == ids[0]
    assert second is None
    assert wait is not None and wait > 30
    bob = new_user("bob")
    bobs = client.post("/api/v1/collections", json={"name": "b"}, headers=bob).json["id"]
    bobs_doc = upload(client, bob, bobs, "b.txt", "Bob's text.")
    with connect(database_url) as conn:
        second = job_repo.claim(conn, worker_id="w2", lease_s=60, space_id=0, per_user=per_user)
    assert second is not None and second.payload["document_id"] == bobs_doc


class SlowEmbedder(BrokenEmbedder):
    """The real embedder, a second per call (a big batch on a busy CPU), counting its calls."""

    def __init__(self, inner):
        super().__init__(inner)
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        time.sleep(1.0)
        return self.inner.embed(texts)


def _job_count(database_url) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM jobs").fetchone()
    assert row is not None
    return int(row[0])


def test_deleting_a_document_stops_its_job_at_the_next_batch(
    app, client, admin, collection, database_url
):
    """A deleted document's job went on embedding for 7 more minutes (issue 16)."""
    settings = Runtime.of(app).settings
    doc = upload(client, admin, collection, "long.txt", _long_text(6000))  # 3 batches and more
    embedder = SlowEmbedder(Runtime.of(app).embedder)
    worker = Worker(settings.database_url, settings, embedder)
    worker.after_batch = lambda: client.delete(f"/api/v1/documents/{doc}", headers=admin)
    assert drain(app, worker=worker) == 1
    assert embedder.calls <= 2  # at most the batch in flight when the document went (of 4+)
    assert _job_count(database_url) == 0  # gone with its document
    assert _chunk_rows(database_url, doc) == []


def test_deleting_a_document_stops_its_extraction(app, client, admin, collection, database_url):
    import threading

    pages = upload(client, admin, collection, "pages.pdf", pdf_pages(1500))
    working = threading.Thread(target=drain, args=(app,))
    working.start()
    wait_for(
        lambda: document_status(database_url, pages) == "extracting",
        "the worker never started",
        timeout=60,
    )
    assert client.delete(f"/api/v1/documents/{pages}", headers=admin).status_code == 204
    working.join(30)  # reading 1,500 pages, then embedding them, takes minutes
    assert not working.is_alive(), "the job went on after its document was deleted"
    assert _job_count(database_url) == 0


def test_a_lease_is_renewed_while_a_long_extraction_runs(app, client, admin, collection):
    import threading

    settings = replace(Runtime.of(app).settings, job_lease_s=1)
    doc = upload(client, admin, collection, "pages.pdf", pdf_pages(300))
    owner = Worker(settings.database_url, settings, Runtime.of(app).embedder, "owner")
    working = threading.Thread(target=drain, args=(app,), kwargs={"worker": owner})
    working.start()
    thief = Worker(settings.database_url, settings, Runtime.of(app).embedder, "thief")
    while working.is_alive():  # takes the job over as soon as its lease expires
        drain(app, worker=thief)
        time.sleep(0.1)
    with connect(settings.database_url) as conn:
        job = conn.execute("SELECT state, attempts, last_error FROM jobs").fetchone()
    assert job == {"state": "succeeded", "attempts": 1, "last_error": None}
    assert client.get(f"/api/v1/documents/{doc}", headers=admin).json["status"] == "indexed"


def test_a_file_that_needs_too_much_memory_to_read_fails_with_the_reason(
    app, client, admin, collection
):
    settings = replace(Runtime.of(app).settings, extraction_memory_mb=128)
    # 1.8 MB of HTML: the parser's tree of it takes ~150 MB more than the process's own ~60.
    html = "".join(f"<p>Paragraph {i} with <b>some</b> words.</p>" for i in range(40_000))
    doc = upload(client, admin, collection, "big.html", html.encode())
    worker = Worker(settings.database_url, settings, Runtime.of(app).embedder)
    assert drain(app, worker=worker) == 1  # not retried: it would not fit the next time either
    detail = client.get(f"/api/v1/documents/{doc}", headers=admin).json
    assert (detail["status"], detail["stage"]) == ("failed", "extracting")
    assert "needs more than 128 MB of memory" in detail["error"]


def test_http_apps_run_no_ingestion(make_app):
    """Ingestion threads in the HTTP processes made requests wait 26-38 s (issue 16)."""
    before = set(threading.enumerate())
    make_app(workers=2)  # the worker processes of `postrag serve`: not the app's business
    started = [t.name for t in set(threading.enumerate()) - before]
    # (Worker threads are named postrag-ingest-N; the pool's own are postrag-worker-N.)
    assert not [name for name in started if name.startswith("postrag-ingest")]


def test_two_workers_claiming_together_take_turns_so_the_cap_holds(
    app, client, admin, collection, database_url
):
    """Two workers woken by the same NOTIFY both saw no running job of the user and took two of
    their jobs (review of issue 16)."""
    import threading

    for i in range(2):
        upload(client, admin, collection, f"a{i}.txt", f"Text {i}.")
    taken: list = []
    with connect(database_url) as first, connect(database_url) as second:
        pid = second.info.backend_pid

        def claim_second() -> None:
            with second.transaction():
                taken.append(
                    job_repo.claim(second, worker_id="w2", lease_s=60, space_id=0, per_user=1)
                )

        with first.transaction():
            assert job_repo.claim(first, worker_id="w1", lease_s=60, space_id=0, per_user=1)
            racing = threading.Thread(target=claim_second)
            racing.start()
            deadline = time.monotonic() + 30
            while (
                racing.is_alive()
                and not first.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
                    (pid,),
                ).fetchone()
            ):
                assert time.monotonic() < deadline, "the second claim neither ended nor waited"
                time.sleep(0.02)
        racing.join(30)
    assert taken == [None]
