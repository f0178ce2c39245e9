"""The `sync_source` job: one run of a source (app/services/source_sync.py), as its owner.

The run is the unit: a job retried after a crash resumes the same run from its checkpoint. A
source that refuses or fails (SourceFailed), or an owner without a connector token, fails the
run at once with that message; any other error is retried as jobs are, and the last failed
attempt fails the run. The next schedule (or a manual sync) starts a new run.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.db import scope
from app.errors import NotFound, ServiceUnavailable
from app.providers.source_items import SourceFailed
from app.repositories import Conn
from app.repositories import sources as source_repo
from app.repositories.jobs import Job
from app.services import source_readers, source_sync
from app.services.job_kinds import JobContext, JobKind
from app.services.job_kinds import enqueue as enqueue_job

NAME = "sync_source"


@dataclass(frozen=True)
class SyncSource:
    run_id: int


def enqueue(conn: Conn, run_id: int, *, max_attempts: int) -> None:
    enqueue_job(
        conn, KIND, SyncSource(run_id), max_attempts=max_attempts, dedupe_key=f"{NAME}:{run_id}"
    )


def _run(job: Job[SyncSource], ctx: JobContext) -> None:
    run = source_repo.get_run(ctx.conn, job.payload.run_id)
    if run is None or run["state"] not in ("queued", "running"):
        return  # deleted with its source, or cancelled
    owner_id = source_repo.owner_of(ctx.conn, run["source_id"])
    if owner_id is None:
        return
    with scope.acting_as(ctx.conn, owner_id):
        source = source_repo.get_source(ctx.conn, run["source_id"], owner_id)
        if source is None:
            return
        reader, http = source_readers.open_reader(ctx.conn, source, ctx.settings)
        try:
            source_sync.run(ctx.conn, source, run["id"], reader, ctx.settings, ctx.renew)
        except (SourceFailed, ServiceUnavailable, NotFound) as exc:
            # The source refused or failed, or the owner's token is gone: trying again at once
            # would not help; the run says why and the next one starts afresh.
            with ctx.conn.transaction():
                source_repo.finish_run(ctx.conn, run["id"], "failed", exc.detail)
        finally:
            http.close()


def _on_final_failure(conn: Conn, job: Job[SyncSource], error: str) -> None:
    if source_repo.get_run(conn, job.payload.run_id) is not None:
        source_repo.finish_run(conn, job.payload.run_id, "failed", error)


KIND = JobKind(name=NAME, payload=SyncSource, run=_run, on_final_failure=_on_final_failure)
