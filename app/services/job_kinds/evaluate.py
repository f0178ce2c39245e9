"""The `evaluate` job: search and score one evaluation run (app/services/evaluating.py).

Any worker takes it: a space being filled is searched with that space's own model, made on
demand. A run that fails says why in its `error`; a job that fails for good fails its run.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.repositories import Conn
from app.repositories.jobs import Job
from app.services import evaluating
from app.services.job_kinds import JobContext, JobKind
from app.services.job_kinds import enqueue as enqueue_job

NAME = "evaluate"


@dataclass(frozen=True)
class EvaluateRun:
    run_id: int


def enqueue(conn: Conn, run_id: int, owner_id: int, *, max_attempts: int) -> None:
    """Queue the run, as its owner's job (POSTRAG_JOBS_PER_USER counts it)."""
    enqueue_job(
        conn,
        KIND,
        EvaluateRun(run_id),
        max_attempts=max_attempts,
        dedupe_key=f"{NAME}:{run_id}",
        owner_id=owner_id,
    )


def _run(job: Job[EvaluateRun], ctx: JobContext) -> None:
    with evaluating.search_deps(ctx.conn, ctx.settings, ctx.embedder) as deps:
        evaluating.execute(ctx.conn, job.payload.run_id, deps, lambda n: ctx.renew())


def _on_final_failure(conn: Conn, job: Job[EvaluateRun], error: str) -> None:
    evaluating.fail(conn, job.payload.run_id, error)


KIND = JobKind(name=NAME, payload=EvaluateRun, run=_run, on_final_failure=_on_final_failure)
