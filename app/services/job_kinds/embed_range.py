"""The `embed_range` job: embed one range of a big document's chunks (ingestion_split.py).

Queued by the document's ingestion, one per range, and run as the document's owner. Only a
worker of the split's embedding space takes it (its payload's `space_id`), and it passes the
owner's cap on running jobs (`uncapped`): it is a slice of an ingestion that had its turn. A
failed attempt is retried (the range goes on from the chunks it has not embedded); its last
failed attempt fails the document. A range whose split is gone (its document was deleted or is
being ingested anew) ends without writing.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

from app.db import scope
from app.repositories import Conn
from app.repositories import documents as document_repo
from app.repositories.jobs import Job
from app.services import ingestion_split
from app.services.job_kinds import JobContext, JobKind
from app.services.job_kinds import enqueue as enqueue_job

NAME = "embed_range"


@dataclass(frozen=True)
class EmbedRange:
    document_id: int
    split_id: int
    first: int  # the first chunk's ordinal
    end: int  # after the last chunk's ordinal
    space_id: int  # the split's embedding space: only its workers take the job


def enqueue(conn: Conn, payload: EmbedRange, *, max_attempts: int) -> None:
    """Queue a range (in the transaction that stores its split)."""
    enqueue_job(conn, KIND, payload, max_attempts=max_attempts, document_id=payload.document_id)


def _run(job: Job[EmbedRange], ctx: JobContext) -> None:
    document = document_repo.get(ctx.conn, job.payload.document_id)
    owner = nullcontext() if document is None else scope.acting_as(ctx.conn, document.owner_id)
    with owner:
        ingestion_split.embed(ctx, job.payload)


def _on_final_failure(conn: Conn, job: Job[EmbedRange], error: str) -> None:
    ingestion_split.fail(conn, job.payload, error)


KIND = JobKind(
    name=NAME,
    payload=EmbedRange,
    run=_run,
    on_final_failure=_on_final_failure,
    uncapped=True,
)
