"""The `embed_space` job: give every chunk a vector in a new embedding space, then make it the
ready one (app/services/spaces.py queues it when the configured model changes).

Only a worker whose embedder is that space's model takes it (app/repositories/jobs.py `claim`).
A failed fill leaves the space `building`; a worker queues it again when it starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from app.repositories import Conn
from app.repositories import documents as document_repo
from app.repositories import embedding_spaces as space_repo
from app.repositories.jobs import Job
from app.services.ingestion import EMBED_BATCH, embedding_input
from app.services.job_kinds import JobContext, JobKind
from app.services.job_kinds import enqueue as enqueue_job

log = logging.getLogger(__name__)

NAME = "embed_space"
# Chunks read from the database at a time (each embedded EMBED_BATCH at a time).
READ_BATCH = 256


@dataclass(frozen=True)
class EmbedSpace:
    space_id: int


def enqueue(conn: Conn, space_id: int, *, max_attempts: int) -> None:
    """Queue the space's fill; a no-op while one is queued or running."""
    enqueue_job(
        conn,
        KIND,
        EmbedSpace(space_id),
        max_attempts=max_attempts,
        dedupe_key=f"{NAME}:{space_id}",
    )


def _embed_in_batches(ctx: JobContext, texts: list[str]) -> np.ndarray:
    parts = []
    for start in range(0, len(texts), EMBED_BATCH):
        parts.append(ctx.embedder.embed(texts[start : start + EMBED_BATCH]))
        ctx.renew()
    dimension = ctx.space.dimension
    return np.vstack(parts) if parts else np.zeros((0, dimension), dtype=np.float32)


def _run(job: Job[EmbedSpace], ctx: JobContext) -> None:
    space_id = job.payload.space_id
    if space_repo.get(ctx.conn, space_id) is None:
        return  # the worker ends the job
    while True:
        rows = space_repo.chunks_missing_from(ctx.conn, space_id, limit=READ_BATCH)
        if not rows:
            break
        inputs = [embedding_input(r["title"], r["heading_path"], r["text"]) for r in rows]
        vectors = _embed_in_batches(ctx, inputs)
        with ctx.conn.transaction():
            ctx.commit_if_owned()
            document_repo.copy_embeddings(ctx.conn, space_id, [r["id"] for r in rows], vectors)
    with ctx.conn.transaction():
        ctx.commit_if_owned()
        # Built once over the filled space: far faster than growing the graph row by row.
        space_repo.create_index(ctx.conn, space_id, build_memory=ctx.settings.index_build_memory)
        space_repo.mark_ready(ctx.conn, space_id)
        ctx.succeed()
    log.info("embedding space %s is ready", space_id)


KIND = JobKind(name=NAME, payload=EmbedSpace, run=_run)
