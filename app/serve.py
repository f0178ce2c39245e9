"""`postrag serve`: gunicorn for HTTP, and ingestion worker processes beside it, supervised.

With POSTRAG_WORKERS > 0 this process is a small supervisor (no threads, no requests): it runs
the HTTP server as one child (`postrag serve` again, with POSTRAG_WORKERS=0) and that many
`postrag worker` children at a lower CPU priority, the same code as a separately deployed
worker. Extraction, chunking and embedding thus never share a process (or its GIL) with the
requests being served. A worker that dies is started again (after a pause that grows while it
keeps dying); if the HTTP server dies, everything stops and this process exits with its status.
If this process is killed outright, its children stop: the kernel sends them SIGTERM (`spawn`,
Linux), and each also checks every second that its supervisor still runs (`stop_with_supervisor`).

Stopping (SIGTERM, as `docker stop` sends; SIGINT): gunicorn closes the listening socket, lets
requests in flight (a streamed chat answer too) finish for up to `graceful_timeout_s`, then exits
0; the workers are told to stop at the same moment, so a job they are running goes back to the
queue at once instead of waiting for its lease to expire.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from app.logs import gunicorn_logconfig

log = logging.getLogger(__name__)

# What `docker stop` allows by default is 10 s; docker/docker-compose.yml gives more.
GRACEFUL_TIMEOUT_S = 30
WORKER_NICENESS = 10  # ingestion yields the CPU to requests and to PostgreSQL
RESTART_DELAYS_S = (1, 2, 5, 10, 30, 60)  # while a worker keeps dying within STABLE_S
STABLE_S = 60
PARENT_CHECK_S = 1.0  # how often a supervised child checks that its supervisor still runs


# gunicorn ships no type hints, so its base class is Any to mypy: the one exception to --strict.
class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, factory: Callable[[], Flask], options: dict[str, Any]):
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Called in each worker after the fork, so each has its own connection pool.
        return self.factory()


@contextmanager
def metrics_directory(*, prepared: bool = False) -> Iterator[None]:
    """PROMETHEUS_MULTIPROC_DIR for this process and its children, where every process writes
    its metrics so that a scrape of any HTTP worker sums them all.

    The operator's directory is made if missing and emptied (files of dead pids would count);
    without one, a temporary directory is made and removed at the end. `prepared`: the
    supervisor did this already (its workers may be writing there).
    """
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if prepared and given:
        yield
        return
    own_dir = None
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
    else:
        own_dir = tempfile.mkdtemp(prefix="postrag-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    owner = os.getpid()
    try:
        yield
    finally:
        # gunicorn's forked workers leave through here too; only the owner removes the files.
        if own_dir is not None and os.getpid() == owner:
            shutil.rmtree(own_dir, ignore_errors=True)


def run_gunicorn(
    factory: Callable[[], Flask],
    *,
    host: str,
    port: int,
    workers: int,
    threads: int,
    log_level: str,
    log_format: str = "text",
    graceful_timeout_s: int = GRACEFUL_TIMEOUT_S,
) -> None:
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "loglevel": log_level.lower(),
        # The app logs each request itself, with its request id (app/api/observability.py).
        "accesslog": None,
        "logconfig_dict": gunicorn_logconfig(log_level, log_format),
        "graceful_timeout": graceful_timeout_s,
        "timeout": 120,
        # One control socket path per user would clash between two servers on a machine.
        "control_socket_disable": True,
    }
    _Server(factory, options).run()


def stop_with_supervisor(supervisor_pid: int) -> None:
    """SIGTERM this process once `supervisor_pid` is no longer its parent.

    A supervisor killed outright (kill -9, the OOM killer) cannot stop its children: they would
    keep its port, its database connections and its jobs, and the next `postrag serve` could not
    bind. Compared with the pid given rather than with 1, since the supervisor may be gone
    before this runs, and orphans go to a subreaper in containers.
    """

    def watch() -> None:
        while os.getppid() == supervisor_pid:
            time.sleep(PARENT_CHECK_S)
        log.error("the supervising process %d is gone; stopping", supervisor_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="postrag-supervisor-watch", daemon=True).start()


@dataclass
class _Child:
    """One supervised worker process, and when to start it again after it died."""

    number: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    restart_at: float = 0.0


PR_SET_PDEATHSIG = 1  # prctl(2) option, Linux


@cache
def _prctl() -> Any:
    """libc's prctl, looked up before any fork (a child only calls it)."""
    return ctypes.CDLL(None, use_errno=True).prctl


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a child that gets SIGTERM (and so stops cleanly) when this process dies, even by
    SIGKILL or the OOM killer: else the HTTP server kept the port and the workers their jobs,
    orphaned, and the next `postrag serve` could not start."""
    if not sys.platform.startswith("linux"):
        return subprocess.Popen(command, env=env)
    prctl, parent = _prctl(), os.getpid()

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before the line above
            os._exit(1)

    return subprocess.Popen(command, env=env, preexec_fn=die_with_parent)


class Supervisor:
    """The HTTP server and `count` worker processes, as children of this process."""

    def __init__(self, http: list[str], worker: list[str], count: int, env: dict[str, str]):
        self.http_command, self.worker_command, self.env = http, worker, env
        self.children = [_Child(n) for n in range(1, count + 1)]
        self.http: subprocess.Popen[bytes] | None = None
        self.signal: int | None = None

    def run(self) -> int:
        """Until a signal or the HTTP server's end; the HTTP server's exit status."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        self.http = spawn(self.http_command, self.env)
        while self.signal is None and self.http.poll() is None:
            for child in self.children:
                self._keep_alive(child)
            time.sleep(0.2)
        if self.http.returncode is not None:
            log.error("the HTTP server exited with status %s; stopping", self.http.returncode)
        return self._stop_all()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signal = signum

    def _keep_alive(self, child: _Child) -> None:
        now = time.monotonic()
        if child.process is not None and child.process.poll() is not None:
            quick = now - child.started < STABLE_S
            child.failures = child.failures + 1 if quick else 0
            delay = RESTART_DELAYS_S[min(child.failures, len(RESTART_DELAYS_S) - 1)]
            log.warning(
                "ingestion worker %d (pid %d) exited with status %s; starting it again in %d s",
                child.number,
                child.process.pid,
                child.process.returncode,
                delay,
            )
            child.process, child.restart_at = None, now + delay
        if child.process is None and now >= child.restart_at:
            child.process = spawn(self.worker_command, self.env)
            child.started = now
            log.info("ingestion worker %d started (pid %d)", child.number, child.process.pid)

    def _stop_all(self) -> int:
        """Tell every child to stop at once, wait for them (killing laggards), the HTTP status."""
        assert self.http is not None
        workers = [c.process for c in self.children if c.process is not None]
        if self.http.poll() is None:
            self.http.send_signal(self.signal or signal.SIGTERM)
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        wait_or_kill((self.http, *workers), time.monotonic() + GRACEFUL_TIMEOUT_S + 5)
        stopped = [w.returncode for w in workers if w.returncode != 0]
        if stopped:
            log.warning("ingestion workers exited with status %s", stopped)
        return self.http.returncode


def supervise(argv: list[str], workers: int, database_url: str) -> int:
    """Run `postrag serve <argv>` without workers as one child and `workers` worker children."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,  # the embedded server this process started, if any
        "POSTRAG_MIGRATE_ON_START": "false",  # done here already
        "POSTRAG_WORKERS": "0",
    }
    python = [sys.executable, "-m", "app"]
    supervised = ["--supervisor-pid", str(os.getpid())]  # the children stop when it dies
    with metrics_directory():
        env["PROMETHEUS_MULTIPROC_DIR"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        supervisor = Supervisor(
            [*python, "serve", *argv, *supervised],
            [*python, "worker", "--nice", str(WORKER_NICENESS), *supervised],
            workers,
            env,
        )
        return supervisor.run()


def wait_or_kill(processes: Iterable[subprocess.Popen[bytes]], deadline: float) -> None:
    """Wait for each process until `deadline` (time.monotonic()), then SIGKILL those left."""
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.warning("pid %d did not stop in time; killing it", process.pid)
            process.kill()
            process.wait()
