"""A running job's heartbeat: renews its lease, and hears at once when the job is cancelled.

A thread with its own connection, so that neither a long extraction nor a slow embedding call
outlives the lease (the CPU-heavy work releases the GIL or runs in a child process, see
app/services/extraction_process.py and app/providers/local_embedder.py). It LISTENs for the
deletion of running jobs (their document was deleted, migration V2_7); the job itself asks
`check()` between its steps and stops when the job is no longer its own.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from psycopg.rows import dict_row

from app.repositories import jobs as job_repo
from app.services.job_kinds import LeaseLost

log = logging.getLogger(__name__)

# How often the heartbeat looks up from its LISTEN: a job's end waits for it to stop (at 0.25 s
# that was 125 ms a job on average, a tenth of a small document's embedding).
POLL_S = 0.05


class Heartbeat:
    """Renews a running job's lease every third of the lease, on its own connection, so a long
    extraction or a slow embedding call never outlives the lease, and listens for the job's
    cancellation (its deletion) meanwhile; `check` raises once the job is no longer ours."""

    def __init__(self, url: str, job_id: int, worker_id: str, lease_s: int) -> None:
        self.url, self.job_id, self.worker_id, self.lease_s = url, job_id, worker_id, lease_s
        self._done = threading.Event()
        self._lost: str | None = None
        self._thread = threading.Thread(target=self._beat, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def check(self) -> None:
        if self._lost is not None:
            raise LeaseLost(self._lost)

    def _beat(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
                job_repo.listen_for_cancellations(conn)
                renew_at = time.monotonic() + self.lease_s / 3
                cancelled = False
                while not self._done.is_set():
                    for notice in conn.notifies(timeout=POLL_S, stop_after=1):
                        cancelled = cancelled or notice.payload == str(self.job_id)
                    if self._done.is_set() or (time.monotonic() < renew_at and not cancelled):
                        continue
                    if not job_repo.renew_lease(
                        conn, job_id=self.job_id, worker_id=self.worker_id, lease_s=self.lease_s
                    ):
                        self._lost = (
                            f"job {self.job_id} was cancelled (its document was deleted)"
                            if cancelled
                            else f"job {self.job_id} is no longer leased to {self.worker_id}"
                        )
                        return
                    renew_at, cancelled = time.monotonic() + self.lease_s / 3, False
        except psycopg.Error:
            log.exception("cannot renew the lease of job %s", self.job_id)
            self._lost = f"job {self.job_id} lost its lease: its heartbeat failed"
