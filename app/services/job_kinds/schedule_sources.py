"""The `schedule_sources` job: queue a run of every source whose schedule is due, then come back
in TICK_S while any source is on a schedule. The queue is the clock: no other timer runs.

It is queued when a source gets a schedule (app/services/sources.py) and queues itself again
when it ends, also after its last attempt failed (a database that blinked must not end every
schedule); at most one is queued at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.repositories import Conn
from app.repositories import jobs as job_repo
from app.repositories import sources as source_repo
from app.repositories.jobs import Job
from app.services.job_kinds import JobContext, JobKind, sync_source
from app.services.job_kinds import enqueue as enqueue_job

NAME = "schedule_sources"
TICK_S = 60.0
DUE_PER_TICK = 100  # the rest are due at the next tick


@dataclass(frozen=True)
class ScheduleSources:
    pass


def ensure(conn: Conn, *, delay_s: float = 0.0) -> None:
    """A tick queued (in `delay_s`), unless one is queued already."""
    if not job_repo.has_queued(conn, NAME):
        enqueue_job(conn, KIND, ScheduleSources(), max_attempts=3, delay_s=delay_s)


def _run(job: Job[ScheduleSources], ctx: JobContext) -> None:
    with ctx.conn.transaction():
        for source in source_repo.due_sources(ctx.conn, DUE_PER_TICK):
            run = source_repo.insert_run(ctx.conn, source["id"], "schedule")
            if run is not None:  # else its last run is still going
                sync_source.enqueue(ctx.conn, run["id"], max_attempts=ctx.settings.job_max_attempts)
        if source_repo.any_scheduled(ctx.conn):
            ensure(ctx.conn, delay_s=TICK_S)


def _failed(conn: Conn, job: Job[ScheduleSources], error: str) -> None:
    if source_repo.any_scheduled(conn):
        ensure(conn, delay_s=TICK_S)


KIND = JobKind(name=NAME, payload=ScheduleSources, run=_run, on_final_failure=_failed)
