"""A document's progress while it is processed: chunks counted, then embedded batch by batch."""

from __future__ import annotations

import psycopg

from app.db import migrations
from app.runtime import Runtime
from app.services import ingestion
from app.services.worker import Worker
from tests.helpers import MIGRATIONS_DIR, drain, upload


def _text(sentences: int) -> str:
    return " ".join(f"Sentence {i} is about subject {i % 13}." for i in range(sentences))


def _progress(client, admin, doc: int) -> tuple:  # type: ignore[no-untyped-def]
    body = client.get(f"/api/v1/documents/{doc}", headers=admin).json
    return body["status"], body["chunks_total"], body["chunks_embedded"], body["chunk_count"]


def test_chunks_are_counted_then_embedded_a_batch_at_a_time(
    app, client, admin, collection, monkeypatch
):
    monkeypatch.setattr(ingestion, "EMBED_BATCH", 2)
    doc = upload(client, admin, collection, "long.txt", _text(300))
    assert _progress(client, admin, doc) == ("queued", None, 0, 0)
    settings = Runtime.of(app).settings
    worker = Worker(settings.database_url, settings, Runtime.of(app).embedder)
    seen: list[tuple] = []
    worker.after_batch = lambda: seen.append(_progress(client, admin, doc))
    assert drain(app, worker=worker) == 1
    status, total, embedded, count = _progress(client, admin, doc)
    assert status == "indexed" and count > 4
    assert total == embedded == count
    assert seen == [
        ("embedding", count, min(n, count), 0) for n in range(2, count + 2, 2)
    ]  # each batch counted as it was stored; the chunks appear at the end, all at once
    listed = client.get(f"/api/v1/documents?collection_id={collection}", headers=admin).json
    assert (listed["items"][0]["chunks_total"], listed["items"][0]["chunks_embedded"]) == (
        count,
        count,
    )


def test_a_reindex_starts_the_progress_again(app, client, admin, collection):
    doc = upload(client, admin, collection, "long.txt", _text(200))
    drain(app)
    status, total, embedded, count = _progress(client, admin, doc)
    assert status == "indexed" and total == embedded == count > 1
    assert client.post(f"/api/v1/documents/{doc}/reindex", headers=admin).status_code == 202
    assert _progress(client, admin, doc) == ("queued", None, 0, count)  # old chunks until done
    drain(app)
    assert _progress(client, admin, doc) == ("indexed", count, count, count)


def test_documents_indexed_before_the_migration_show_their_chunks(
    app, client, admin, collection, database_url
):
    doc = upload(client, admin, collection, "long.txt", _text(200))
    drain(app)
    count = _progress(client, admin, doc)[3]
    # Back to before V2_19 (and whatever came after it), then forward again: the backfill runs.
    undone = migrations.rollback(database_url, MIGRATIONS_DIR, "V2_18__chat_tools")
    assert undone[-1] == "V2_19__web_app"
    assert migrations.migrate(database_url, MIGRATIONS_DIR) == undone[::-1]
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT chunks_total, chunks_embedded FROM documents WHERE id = %s", (doc,)
        ).fetchone()
    assert row == (count, count)
