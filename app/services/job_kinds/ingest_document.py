"""The `ingest_document` job: read, chunk and embed one document (app/services/ingestion.py).

The job runs as the document's owner, so that row-level security shows it that user's rows only.
Its document follows the job: `queued` again when the job is, `failed` (with the error and the
stage it failed in) when its last attempt fails. A document deleted meanwhile has nothing to
follow: its job is deleted with it, or finds it gone and ends.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

from app.db import scope
from app.metrics import metrics
from app.repositories import Conn
from app.repositories import documents as document_repo
from app.repositories.jobs import Job
from app.services import ingestion, ingestion_split
from app.services.job_kinds import JobContext, JobKind
from app.services.job_kinds import enqueue as enqueue_job

NAME = "ingest_document"
# The statuses of a document on its way to `indexed`: the stage a failure happened in.
_STAGES = {"queued", "extracting", "chunking", "embedding"}


@dataclass(frozen=True)
class IngestDocument:
    document_id: int


def enqueue(conn: Conn, document_id: int, *, max_attempts: int) -> bool:
    """Queue the document's ingestion; False while one is queued or running already.

    In the caller's transaction, which has locked the document's row (its status changed): the
    new ingestion replaces the document's chunks embedded in ranges, if any are (they stop).
    """
    queued = enqueue_job(
        conn,
        KIND,
        IngestDocument(document_id),
        max_attempts=max_attempts,
        dedupe_key=f"{NAME}:{document_id}",
        document_id=document_id,
    )
    if queued is not None:
        ingestion_split.drop(conn, document_id)
    return queued is not None


def _run(job: Job[IngestDocument], ctx: JobContext) -> None:
    document_id = job.payload.document_id
    document = document_repo.get(ctx.conn, document_id)
    owner = nullcontext() if document is None else scope.acting_as(ctx.conn, document.owner_id)
    with owner:
        ingestion.ingest_document(ctx, document_id)


def _on_requeue(conn: Conn, job: Job[IngestDocument], error: str | None) -> None:
    document_id = job.payload.document_id
    if document_repo.get(conn, document_id) is not None:
        document_repo.set_status(conn, document_id, "queued", error=error)


def _on_final_failure(conn: Conn, job: Job[IngestDocument], error: str) -> None:
    document_id = job.payload.document_id
    document = document_repo.get(conn, document_id)
    if document is None:
        return
    stage = document.status if document.status in _STAGES else None
    document_repo.set_status(conn, document_id, "failed", error=error, failed_stage=stage)
    ingestion_split.drop(conn, document_id)  # the drafts of a big document, if it got so far
    metrics().ingested_documents.labels("failed").inc()


KIND = JobKind(
    name=NAME,
    payload=IngestDocument,
    run=_run,
    on_requeue=_on_requeue,
    on_final_failure=_on_final_failure,
)
