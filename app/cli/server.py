"""`postrag serve` (HTTP and supervised workers) and `postrag worker` (background jobs)."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

import click

from app.cli.common import exit_like, fail, load_settings
from app.settings import Settings

if TYPE_CHECKING:
    from app.db.watchdog import Watchdog

# Given by `serve`'s supervisor to its children (app/serve.py): they stop when it is gone.
_SUPERVISOR_PID = click.option("--supervisor-pid", type=int, hidden=True)
HTTP_PROCESSES = 2  # gunicorn's, unless --workers says otherwise


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=HTTP_PROCESSES,
    show_default=True,
    type=click.IntRange(1, 64),
    help="gunicorn (HTTP) worker processes",
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="threads per worker",
)
@_SUPERVISOR_PID
def serve(host: str, port: int, workers: int, threads: int, supervisor_pid: int | None) -> None:
    """Run the HTTP server (gunicorn) and POSTRAG_WORKERS ingestion worker processes."""
    from app import create_app
    from app.db.watchdog import EXIT_CODE
    from app.serve import metrics_directory, run_gunicorn, stop_with_supervisor, supervise

    if supervisor_pid is not None:
        stop_with_supervisor(supervisor_pid)
    # Once here, before forking: the embedded server starts, migrations run and the first
    # admin is created in this process; workers join the same database without redoing it.
    settings, watchdog = _prepare_and_watch(load_settings(), http_processes=workers)
    assert settings.database_url is not None
    try:
        if settings.workers > 0:  # this process supervises gunicorn and the worker processes
            http = ["--host", host, "--port", str(port), "--workers", str(workers)]
            http += ["--threads", str(threads)]
            code = supervise(http, settings.workers, settings.database_url)
            if watchdog is None or not watchdog.failed:
                exit_like(code)
        else:
            http_settings = replace(settings, migrate_on_start=False)
            with metrics_directory(prepared=supervisor_pid is not None):
                run_gunicorn(
                    lambda: create_app(http_settings),
                    host=host,
                    port=port,
                    workers=workers,
                    threads=threads,
                    log_level=settings.log_level,
                    log_format=settings.log_format,
                )
    finally:
        if watchdog is not None and watchdog.failed:
            sys.exit(EXIT_CODE)


def _prepare_and_watch(
    settings: Settings, http_processes: int | None = None
) -> tuple[Settings, Watchdog | None]:
    """prepare_database, and on the embedded server a watchdog that starts it again when it dies;
    when it cannot, SIGTERM stops this process, which then exits with watchdog.EXIT_CODE.
    `http_processes` (serve's): the embedded server's connections are sized for them too."""
    import signal

    from app import prepare_database
    from app.db import server
    from app.db.watchdog import Watchdog

    try:
        resolved = server.resolve(settings, http_processes)
        settings = prepare_database(settings.with_database_url(resolved.url))
    except Exception as exc:  # noqa: BLE001 - shown to the operator as a clean error
        fail(exc)
    if resolved.embedded is None:
        return settings, None
    pid = os.getpid()
    return settings, Watchdog(resolved.embedded, lambda: os.kill(pid, signal.SIGTERM)).start()


@click.command()
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="worker threads in this process",
)
@click.option(
    "--nice",
    default=0,
    show_default=True,
    type=click.IntRange(0, 19),
    help="lower this process's CPU priority by this much (as nice(1) does)",
)
@_SUPERVISOR_PID
def worker(threads: int, nice: int, supervisor_pid: int | None) -> None:
    """Process background jobs (ingestion) until stopped; run any number of these anywhere."""
    import signal
    import time

    from app.db.watchdog import EXIT_CODE
    from app.providers.embeddings import make_embedder
    from app.serve import stop_with_supervisor
    from app.services.worker import WorkerPool

    if supervisor_pid is not None:
        stop_with_supervisor(supervisor_pid)
    os.nice(nice)
    settings, watchdog = _prepare_and_watch(load_settings())
    try:
        embedder = make_embedder(settings)
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    url = settings.database_url or ""
    pool = WorkerPool(url, settings, embedder, threads)
    # The handler sets the pool's event: a running job is released at its next checkpoint. This
    # thread polls rather than waits on the event, whose lock the handler could find held.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: pool.stop_event.set())
    pool.start()
    logging.getLogger(__name__).info("%d worker thread(s) running; Ctrl-C stops", threads)
    while not pool.stop_event.is_set():
        time.sleep(0.2)
    pool.stop()
    if watchdog is not None and watchdog.failed:
        sys.exit(EXIT_CODE)
