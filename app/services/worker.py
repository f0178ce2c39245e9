"""Background workers: claim jobs from PostgreSQL, run them, sleep on LISTEN until there is work.

Workers run in `postrag worker` processes (which `postrag serve` starts and supervises, see
app/serve.py), never in the processes that serve HTTP; any number of them on any number of
machines share the jobs table. Claims use FOR UPDATE SKIP LOCKED and a lease that a heartbeat
thread renews while the job runs; a job whose worker died is claimed again once its lease has
expired. Idle workers wait for a NOTIFY (sent when a job is queued) or until the next retry or
lease expiry is due: no busy polling. A worker told to stop puts the job it is running back in
the queue at its next checkpoint (between embedding batches, or within a second during
extraction), unleased and due at once, so another worker takes it over without waiting for the
lease to expire. A running job that is deleted (a document's job goes with its document) stops
at its next checkpoint: the heartbeat hears of it at once (LISTEN).

What a job does, and what follows when it is queued again or fails for good, is its kind's
business (app/services/job_kinds): the worker looks each job's kind up in its registry.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row

from app.errors import AppError
from app.providers.embeddings import Embedder, EmbeddingError
from app.repositories import jobs as job_repo
from app.repositories.embedding_spaces import EmbeddingSpace
from app.repositories.jobs import Job, StoredJob
from app.services import process_memory, spaces
from app.services.heartbeat import Heartbeat
from app.services.job_kinds import (
    InvalidPayload,
    JobContext,
    JobKind,
    JobRegistry,
    LeaseLost,
    UnknownKind,
    builtin,
)
from app.settings import Settings

log = logging.getLogger(__name__)

MAX_IDLE_WAIT_S = 60.0
RECONNECT_PAUSE_S = 5  # between attempts to reach a database that went away
# Failures logged without a traceback: expected ones, whose message says it all.
_EXPECTED = (AppError, EmbeddingError, UnknownKind, InvalidPayload)


class Stopping(Exception):
    """The worker is stopping: the job in hand goes back to the queue, not counted as a failure."""


def connect(url: str) -> psycopg.Connection[Any]:
    """A connection set up like the pool's: autocommit, dict rows, pgvector types, UTC."""
    conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
    register_vector(conn)
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def wake_workers(url: str) -> None:
    """Wake every idle worker (used to stop them promptly)."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        job_repo.wake_workers(conn)


class Worker:
    """One worker: one database connection for jobs, one for LISTEN; it runs the job kinds of
    `kinds` (the built-in ones by default)."""

    def __init__(
        self,
        url: str,
        settings: Settings,
        embedder: Embedder,
        name: str = "",
        kinds: JobRegistry | None = None,
    ) -> None:
        self.url = url
        self.settings = settings
        self.embedder = embedder
        self.worker_id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.kinds = builtin.registry() if kinds is None else kinds
        self._space: EmbeddingSpace | None = None
        # Tests inject failures here: called after every embedded batch of an ingestion.
        self.after_batch: Callable[[], None] | None = None
        # Once set, the running job is released at its next checkpoint (see run()).
        self.stop_event = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set; reconnect (with a pause) when the database goes away."""
        self.stop_event = stop
        while not stop.is_set():
            try:
                self._loop(stop)
            except psycopg.OperationalError as exc:
                # Expected while the database restarts: one line every few seconds, no traceback.
                log.error(
                    "worker %s lost its database connection; retrying in %d s: %s",
                    self.worker_id,
                    RECONNECT_PAUSE_S,
                    str(exc).partition("\n")[0],  # psycopg adds a hint line
                )
                stop.wait(RECONNECT_PAUSE_S)

    def _loop(self, stop: threading.Event) -> None:
        with connect(self.url) as conn, connect(self.url) as listener:
            job_repo.listen(listener)
            while not stop.is_set():
                try:
                    while not stop.is_set() and self.run_one(conn):
                        pass
                    wait = job_repo.seconds_until_next(
                        conn,
                        per_user=self.settings.jobs_per_user,
                        uncapped=self.kinds.uncapped(),
                        space_id=self._space.id if self._space else None,
                    )
                except psycopg.OperationalError:
                    raise
                except Exception:  # noqa: BLE001 - e.g. the embedding server is down at start
                    log.exception("worker %s cannot work yet; trying again soon", self.worker_id)
                    stop.wait(10)
                    continue
                timeout = MAX_IDLE_WAIT_S if wait is None else min(max(wait, 0.05), MAX_IDLE_WAIT_S)
                if not stop.is_set():
                    for _ in listener.notifies(timeout=timeout, stop_after=1):
                        pass

    def run_one(self, conn: psycopg.Connection[Any]) -> bool:
        """Claim and run one job; False when none is due or this worker is stopping."""
        if self.stop_event.is_set():
            return False
        stored = self._claim(conn)
        if stored is None:
            return False
        try:
            kind, job = self.kinds.parse(stored)
        except (UnknownKind, InvalidPayload) as exc:
            self._failed(conn, stored, None, exc)
            return True
        try:
            with Heartbeat(self.url, job.id, self.worker_id, self.settings.job_lease_s) as beat:
                kind.run(job, self._context(conn, job.id, beat))
                with conn.transaction():  # unless the job did so with its last write
                    job_repo.succeed(conn, job_id=job.id, worker_id=self.worker_id)
        except LeaseLost as exc:
            log.warning("%s", exc)
        except Stopping:
            self._release(conn, kind, job)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
            self._failed(conn, job, kind, exc)
        finally:
            process_memory.give_back()  # else a worker stays at its biggest job's peak
        return True

    def _claim(self, conn: psycopg.Connection[Any]) -> StoredJob | None:
        """After dealing with dead workers' jobs, take a due one (None: none is due)."""
        if self._space is None:
            # Before any claim: a new embedding model's space (and its fill job) exists at once.
            self._space = spaces.ensure_space(
                conn, self.embedder, max_attempts=self.settings.job_max_attempts
            )
        with conn.transaction():
            for expired in job_repo.requeue_expired(conn):
                self._after_expiry(conn, expired)
            return job_repo.claim(
                conn,
                worker_id=self.worker_id,
                lease_s=self.settings.job_lease_s,
                space_id=self._space.id,
                per_user=self.settings.jobs_per_user,
                uncapped=self.kinds.uncapped(),
            )

    def _after_expiry(self, conn: psycopg.Connection[Any], stored: StoredJob) -> None:
        """A dead worker's job was queued again, or failed if that was its last attempt."""
        try:
            kind, job = self.kinds.parse(stored)
        except (UnknownKind, InvalidPayload):
            return  # no kind to tell (claimed, such a job fails with the reason)
        if job.state == "failed":
            kind.on_final_failure(conn, job, job.last_error or "")
        else:
            kind.on_requeue(conn, job, job.last_error)

    def _release(self, conn: psycopg.Connection[Any], kind: JobKind[Any], job: Job[Any]) -> None:
        """Give a job back unfinished: queued, unleased, due now, this attempt not counted.

        As the tables' owner (the job's acting-as has ended): nobody's bookkeeping.
        """
        with conn.transaction():
            if not job_repo.release(conn, job_id=job.id, worker_id=self.worker_id):
                return  # the lease expired meanwhile: whoever holds the job now finishes it
            kind.on_requeue(conn, job, None)
        log.info("worker %s stopping: job %s is queued again", self.worker_id, job.id)

    def _checkpoint(self, beat: Heartbeat) -> None:
        """Between steps of a job: raise if the lease was lost or the worker must stop."""
        beat.check()
        if self.stop_event.is_set():
            raise Stopping(f"worker {self.worker_id} is stopping")

    def _context(self, conn: psycopg.Connection[Any], job_id: int, beat: Heartbeat) -> JobContext:
        assert self._space is not None

        def checkpoint() -> None:
            self._checkpoint(beat)

        def after_batch() -> None:
            if self.after_batch is not None:
                self.after_batch()
            self._checkpoint(beat)

        return JobContext(
            conn,
            job_id,
            self.worker_id,
            self.settings,
            self.embedder,
            self._space,
            checkpoint,
            after_batch,
        )

    def _failed(
        self,
        conn: psycopg.Connection[Any],
        job: Job[Any],
        kind: JobKind[Any] | None,
        exc: Exception,
    ) -> None:
        """Retry the job after its backoff or fail it for good; its kind (if any) follows."""
        error = str(exc) or type(exc).__name__
        # Unreadable files and payloads do not get better with retries; an unknown kind may be
        # known to a newer worker (during an upgrade), so it is retried.
        permanent = isinstance(exc, AppError | InvalidPayload)
        delay = self.settings.job_retry_base_s * 2 ** (job.attempts - 1)
        log.warning(
            "job %s (%s) attempt %s failed: %s",
            job.id,
            job.kind,
            job.attempts,
            error,
            exc_info=not isinstance(exc, _EXPECTED),
        )
        with conn.transaction():
            updated = job_repo.fail_or_retry(
                conn,
                job_id=job.id,
                worker_id=self.worker_id,
                error=error,
                retry_in_s=delay,
                permanent=permanent,
            )
            if updated is None or kind is None:
                return
            if updated.state == "failed":
                kind.on_final_failure(conn, job, error)
            else:
                kind.on_requeue(conn, job, f"attempt {job.attempts} failed: {error}")


class WorkerPool:
    """N worker threads in this process, stopped together.

    Setting `stop_event` (safe from a signal handler) makes every worker release the job it is
    running at its next checkpoint; `stop` also wakes the idle ones and waits for all of them.
    """

    def __init__(self, url: str, settings: Settings, embedder: Embedder, count: int) -> None:
        self.url = url
        self.stop_event = threading.Event()
        self.workers = [Worker(url, settings, embedder) for _ in range(count)]
        self.threads = [
            threading.Thread(
                target=w.run, args=(self.stop_event,), name=f"postrag-ingest-{i}", daemon=True
            )
            for i, w in enumerate(self.workers)
        ]

    def start(self) -> WorkerPool:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every worker within `timeout` seconds in all; their jobs go back to the queue."""
        self.stop_event.set()
        if any(t.is_alive() for t in self.threads):
            wake_workers(self.url)
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        stuck = [t.name for t in self.threads if t.is_alive()]
        if stuck:
            # A job in a long extraction: its lease expires and another worker takes it over.
            log.warning("workers still busy after %.0f s: %s", timeout, ", ".join(stuck))
