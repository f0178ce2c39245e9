"""Runs a Flask app factory under gunicorn from inside the `postrag serve` process.

Stopping (SIGTERM, as `docker stop` sends): gunicorn closes the listening socket, lets requests
in flight (a streamed chat answer too) finish for up to `graceful_timeout_s`, then exits 0. The
app's ingestion workers are told to stop at the same moment, so a job they are running goes back
to the queue at once instead of waiting for its lease to expire.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from app.logs import gunicorn_logconfig

# What `docker stop` allows by default is 10 s; docker/docker-compose.yml gives more.
GRACEFUL_TIMEOUT_S = 30


class _Server(BaseApplication):
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


class _Worker(ThreadWorker):
    """gthread, plus: SIGTERM also stops the app's ingestion workers (they release their jobs)."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        extensions = getattr(getattr(self, "wsgi", None), "extensions", {})
        if "postrag.workers" in extensions:
            # Only an event here (a signal handler); the threads are joined at exit (atexit).
            extensions["postrag.workers"].stop_event.set()


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
    # Each worker process writes its metrics to files here; a scrape of any worker sums them all.
    own_dir, given = None, os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:  # the operator's: made if missing, and emptied (files of dead pids would count)
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
    else:
        own_dir = tempfile.mkdtemp(prefix="postrag-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": _Worker,
        "loglevel": log_level.lower(),
        # The app logs each request itself, with its request id (app/api/observability.py).
        "accesslog": None,
        "logconfig_dict": gunicorn_logconfig(log_level, log_format),
        "graceful_timeout": graceful_timeout_s,
        "timeout": 120,
        # One control socket path per user would clash between two servers on a machine.
        "control_socket_disable": True,
    }
    arbiter_pid = os.getpid()
    try:
        _Server(factory, options).run()
    finally:
        # gunicorn's forked workers leave through here too; only the arbiter removes the files.
        if own_dir is not None and os.getpid() == arbiter_pid:
            shutil.rmtree(own_dir, ignore_errors=True)
