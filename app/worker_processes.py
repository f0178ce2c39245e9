"""Ingestion worker processes for the length of one command (`postrag ingest`), then stopped.

Each is `postrag worker`, the same process `postrag serve` supervises: its own interpreter, its
own embedding model and database connections, the normal worker loop on the shared jobs table.
They join the database this process prepared (the embedded server's socket too: this process
keeps that server running while they work), and stop when it ends: SIGTERM from `stop`, which
waits for them, or from the kernel if this process dies first (serve.spawn). A worker told to
stop puts the job it is running back in the queue at its next checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import TracebackType

from app.serve import spawn, wait_or_kill

STOP_TIMEOUT_S = 30  # a job in a long extraction stops at its next checkpoint, within a second


class WorkerProcesses:
    """`count` worker processes on `database_url`, each allowed `count` of a user's jobs at once
    (POSTRAG_JOBS_PER_USER, raised to it: they all work for the one user running the command)."""

    def __init__(self, count: int, database_url: str, jobs_per_user: int) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "POSTRAG_MIGRATE_ON_START": "false",  # done by this process
            "POSTRAG_JOBS_PER_USER": str(max(jobs_per_user, count)),
        }
        self.command = [sys.executable, "-m", "app", "worker", "--supervisor-pid", str(os.getpid())]
        self.count = count
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> WorkerProcesses:
        self.processes = [spawn(self.command, self.env) for _ in range(self.count)]
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def label(self, worker_id: str) -> str:
        """ "worker N" for a worker id of one of these processes (host:pid:suffix), else the id."""
        pid = worker_id.split(":")[1] if worker_id.count(":") >= 2 else ""
        for number, process in enumerate(self.processes, 1):
            if str(process.pid) == pid:
                return f"worker {number}"
        return worker_id

    def exited(self) -> list[int]:
        """The exit statuses of the processes that have ended (all of them: nobody works)."""
        return [code for code in (p.poll() for p in self.processes) if code is not None]

    def stop(self) -> None:
        """SIGTERM each, wait for all, then SIGKILL those still running after STOP_TIMEOUT_S."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        wait_or_kill(self.processes, time.monotonic() + STOP_TIMEOUT_S)
