"""A big document embedded by every worker: its chunks stored once, then embedded in ranges.

An ingestion (app/services/ingestion.py) whose document makes more than POSTRAG_SPLIT_CHUNKS
chunks does not embed them itself. It stores them without vectors as the drafts of a split
(app/repositories/splits.py), a few hundred a transaction with its lease checked, then queues
an `embed_range` job for each run of that many chunks and ends, in one last transaction: it
holds no worker while they run. Any worker of
the document's embedding space takes a range; range jobs pass their owner's cap on running jobs
(POSTRAG_JOBS_PER_USER), so one user's big document uses every worker, yet each is seconds of
work and a free worker takes the jobs of users running fewer first, so another user waits one
range at most. The cap still holds the owner's other documents back while the ranges run.

A range embeds its drafts a batch at a time. Each batch's transaction checks the job's lease,
stores the vectors, and counts them embedded on the document (`chunks_embedded`) and off the
split under the split row's lock; the one transaction that leaves no chunk without a vector
replaces the document's chunks with the drafts and drops the split. Until then the document
keeps its previous complete set of chunks. A range taken over (its worker died or stopped)
embeds only what has no vector yet. A new ingestion of the document, its deletion, or a range's
last failed attempt (which fails the document with the reason) drops the split: a range whose
split is gone ends without writing. The transactions here lock the document row, then a job
row, then the split row. The one exception is a range's last failed attempt: the worker has
locked its job row before `fail` locks the document; should that meet a batch of the same
range (whose lease it took back) in a lock cycle, PostgreSQL aborts one of the two and the
job is tried again.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator

import numpy as np

from app.metrics import metrics
from app.repositories import Conn, Row, splits
from app.repositories import documents as document_repo
from app.repositories import jobs as job_repo
from app.services import ingestion
from app.services.chunking import Chunk
from app.services.job_kinds import JobContext, embed_range

log = logging.getLogger(__name__)

# Drafts stored in one transaction: a few hundred chunks take milliseconds to write.
_DRAFTS_PER_TRANSACTION = 256


def stage(ctx: JobContext, document_id: int, chunks: Iterator[Chunk], title: str) -> None:
    """Store the document's chunks as a new split, a few batches a transaction (a deletion of
    the document never waits long for it), then queue its ranges: the job is done with that
    commit. A split left by an earlier ingestion is dropped first; until the ranges are queued,
    nothing reads the new one (an attempt that fails leaves it to the next ingestion)."""
    conn = ctx.conn
    with conn.transaction():
        document_repo.lock(conn, document_id)
        ctx.commit_if_owned()
        drop(conn, document_id)
        split_id = splits.create(conn, document_id=document_id, space_id=ctx.space.id, title=title)
    total = 0
    while batch := list(itertools.islice(chunks, _DRAFTS_PER_TRANSACTION)):
        with conn.transaction():
            ctx.commit_if_owned()
            splits.add_drafts(conn, split_id, batch)
        total += len(batch)
        ctx.renew()
    size = ctx.settings.split_chunks
    with conn.transaction():
        document_repo.lock(conn, document_id)
        ctx.commit_if_owned()
        document_repo.set_status(conn, document_id, "embedding")
        for first in range(0, total, size):
            end = min(first + size, total)
            payload = embed_range.EmbedRange(document_id, split_id, first, end, ctx.space.id)
            embed_range.enqueue(conn, payload, max_attempts=ctx.settings.job_max_attempts)
        ctx.succeed()
    log.info("document %s: %d chunks queued in ranges of %d", document_id, total, size)


def drop(conn: Conn, document_id: int) -> None:
    """In the caller's transaction, which has locked the document's row: drop the document's
    split under way, if any, and its range jobs (a new ingestion replaces it)."""
    job_repo.cancel_for_document(conn, document_id=document_id, kind=embed_range.NAME)
    splits.delete(conn, document_id)


def embed(ctx: JobContext, job: embed_range.EmbedRange) -> None:
    """Embed the range's chunks that have no vector yet, a batch at a time."""
    rows = splits.unembedded(ctx.conn, job.split_id, job.first, job.end)
    batch_size = ingestion.EMBED_BATCH
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        inputs = [
            ingestion.embedding_input(r["title"], r["heading_path"], r["text"]) for r in batch
        ]
        vectors = ctx.embedder.embed(inputs)
        if _store(ctx, job, [r["ordinal"] for r in batch], vectors):
            return  # this batch was the document's last: swapped, and the job is done
        ctx.renew()
        ctx.after_batch()


def _store(
    ctx: JobContext, job: embed_range.EmbedRange, ordinals: list[int], vectors: np.ndarray
) -> bool:
    """One batch's transaction; True when it swapped the document's chunks (or the split is
    gone: nothing more to do)."""
    conn = ctx.conn
    with conn.transaction():
        document_repo.lock(conn, job.document_id)
        ctx.commit_if_owned()  # a job that lost its lease (or was deleted) writes nothing
        split = splits.lock(conn, job.split_id)
        if split is None:
            log.info("range of document %s ends: its split is gone", job.document_id)
            return True
        stored, left = splits.store_vectors(conn, job.split_id, ordinals, vectors)
        document_repo.add_chunks_embedded(conn, job.document_id, stored)
        if left > 0:
            return False
        _swap(ctx, split)
        ctx.succeed()
    return True


def _swap(ctx: JobContext, split: Row) -> None:
    document_id = split["document_id"]
    count = splits.swap(ctx.conn, split["id"], document_id, split["space_id"])
    document_repo.set_status(ctx.conn, document_id, "indexed")
    log.info("indexed document %s: %d chunks, embedded in ranges", document_id, count)
    counted = metrics()
    counted.ingested_documents.labels("indexed").inc()
    counted.ingested_chunks.inc(count)


def fail(conn: Conn, job: embed_range.EmbedRange, error: str) -> None:
    """A range's last attempt failed: if its split is still the document's, drop it (its other
    ranges end) and fail the document, which keeps its previous chunks."""
    if not document_repo.lock(conn, job.document_id) or splits.lock(conn, job.split_id) is None:
        return  # deleted, or replaced by a newer ingestion
    drop(conn, job.document_id)
    document_repo.set_status(conn, job.document_id, "failed", error=error, failed_stage="embedding")
    metrics().ingested_documents.labels("failed").inc()
