"""The ingestion pipeline a worker runs for one job: extract, chunk, embed, replace atomically.

Status moves queued -> extracting -> chunking -> embedding -> indexed, each step in the history.
Extraction runs in a child process (app/services/extraction_process.py); chunks then stream
through embedding a batch at a time into the worker's staging table (app/repositories/staging.py),
so memory stays bounded whatever the document's size, and the job checks between batches that it
is still ours, not cancelled and not told to stop. A first pass over the chunks only counts them
(the tokenizer is fast next to the embedder), so the document shows how many chunks of how many
are embedded (`chunks_total`, `chunks_embedded`, raised once per batch) while memory stays bounded.
The document's chunks and vectors are replaced
from the staging table in one transaction that also checks the job's lease: after any failure
the document keeps its previous complete set (or none), and a job whose lease moved to another
worker can never write twice. A document of more than POSTRAG_SPLIT_CHUNKS chunks is embedded in
ranges by every worker instead, with the same guarantees (app/services/ingestion_split.py).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator

from app.metrics import metrics
from app.repositories import documents as document_repo
from app.repositories import staging
from app.services import extraction_process, ingestion_split
from app.services.chunking import Chunk, chunk_document
from app.services.extraction import Extracted
from app.services.extraction_ocr import OcrLimits
from app.services.job_kinds import JobContext

log = logging.getLogger(__name__)

# Small batches: the lease is renewed between them (16 chunks take ~3 s on one CPU thread).
EMBED_BATCH = 16
# What the embedder reads of one chunk at most: chunks are far shorter, but a space being filled
# may hold chunks stored before chunks had a character cap.
EMBED_INPUT_CHARS = 8192


def embedding_input(title: str, heading_path: tuple[str, ...] | list[str], text: str) -> str:
    """What the embedder reads for a chunk: title and heading path give it context."""
    context = " > ".join([part for part in (title, *heading_path) if part])
    return (f"{context}\n\n{text}" if context else text)[:EMBED_INPUT_CHARS]


def _step(ctx: JobContext, document_id: int, status: str) -> None:
    with ctx.conn.transaction():
        ctx.commit_if_owned()  # not for a job deleted with its document meanwhile
        document_repo.set_status(ctx.conn, document_id, status)


def ingest_document(ctx: JobContext, document_id: int) -> None:
    row = document_repo.content(ctx.conn, document_id)
    if row is None:
        log.info("document %s was deleted before it was processed", document_id)
        return  # the worker ends the job
    started = time.monotonic()
    _step(ctx, document_id, "extracting")
    extracted = extraction_process.extract(
        bytes(row["content"]),
        row["content_type"],
        row["filename"],
        checkpoint=ctx.renew,
        memory_mb=ctx.settings.extraction_memory_mb,
        timeout_s=ctx.settings.extraction_timeout_s,
        ocr=OcrLimits(ctx.settings.ocr_max_pages, ctx.settings.ocr_max_pixels),
    )
    title = row["title"] or row["filename"]
    del row  # the file's bytes: only the extracted text is needed from here on
    _step(ctx, document_id, "chunking")
    if not _stage_chunks(ctx, document_id, extracted, title):
        return  # every worker embeds its ranges (app/services/ingestion_split.py)
    with ctx.conn.transaction():
        ctx.commit_if_owned()
        count = staging.swap(ctx.conn, document_id, ctx.space.id)
        ingestion_split.drop(ctx.conn, document_id)  # a bigger version's, still under way
        document_repo.set_status(ctx.conn, document_id, "indexed")
        ctx.succeed()
    log.info("indexed document %s: %d chunks", document_id, count)
    counted = metrics()
    counted.ingested_documents.labels("indexed").inc()
    counted.ingested_chunks.inc(count)
    counted.ingestion_seconds.observe(time.monotonic() - started)


def _stage_chunks(ctx: JobContext, document_id: int, extracted: Extracted, title: str) -> bool:
    """Count the chunks, then chunk, embed and stage the document a batch at a time, counting
    them embedded and checking the job between batches. False when the document has more than
    POSTRAG_SPLIT_CHUNKS chunks: they are stored for every worker to embed in ranges instead."""

    def chunks() -> Iterator[Chunk]:
        tokens, overlap = ctx.settings.chunk_tokens, ctx.settings.chunk_overlap_tokens
        return chunk_document(extracted, ctx.embedder.token_spans, tokens, overlap)

    total = _count(ctx, chunks())
    with ctx.conn.transaction():
        ctx.commit_if_owned()
        document_repo.set_chunks_total(ctx.conn, document_id, total)
    if total > ctx.settings.split_chunks:
        ingestion_split.stage(ctx, document_id, chunks(), title)
        return False
    staging.reset(ctx.conn)
    for number, batch in enumerate(_batches(chunks()), start=1):
        if number == 1:
            _step(ctx, document_id, "embedding")
        inputs = [embedding_input(title, c.heading_path, c.text) for c in batch]
        vectors = ctx.embedder.embed(inputs)
        with ctx.conn.transaction():
            ctx.commit_if_owned()  # a job that lost its lease counts nothing
            staging.stage(ctx.conn, batch, vectors)
            document_repo.add_chunks_embedded(ctx.conn, document_id, len(batch))
        ctx.renew()
        ctx.after_batch()
    return True


def _count(ctx: JobContext, chunks: Iterator[Chunk]) -> int:
    total = 0
    for _ in chunks:
        total += 1
        if total % EMBED_BATCH == 0:
            ctx.renew()  # a long document: a cancellation is heard while counting too
    return total


def _batches(chunks: Iterator[Chunk]) -> Iterator[list[Chunk]]:
    while batch := list(itertools.islice(chunks, EMBED_BATCH)):
        yield batch
