"""Which database postrag uses, and whether that server is good enough (PostgreSQL, pgvector)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from app.db import embedded
from app.settings import Settings

log = logging.getLogger(__name__)

MIN_SERVER_VERSION = 150000
MIN_PGVECTOR = (0, 7, 0)
# Connections an ingestion worker holds while it runs a job: its jobs, its LISTEN, its heartbeat.
CONNECTIONS_PER_WORKER = 3
# Beyond the processes `serve` starts: CLI commands (ingest, backup), psql, a `postrag worker`.
SPARE_CONNECTIONS = 20
POSTGRES_DEFAULT_CONNECTIONS = 100  # never fewer than PostgreSQL's own default


class DatabaseUnsupportedError(RuntimeError):
    """The configured server cannot run postrag; the message says why and what to do."""


@dataclass(frozen=True)
class ResolvedDatabase:
    url: str
    embedded: embedded.EmbeddedServer | None


def resolve(settings: Settings, http_processes: int | None = None) -> ResolvedDatabase:
    """Use DATABASE_URL when set, else start (or join) the embedded server in the data dir;
    `postrag serve` gives its HTTP processes, to size the embedded server's connections."""
    if settings.database_url:
        log.info("using PostgreSQL at %s", redact(settings.database_url))
        return ResolvedDatabase(url=settings.database_url, embedded=None)
    limit = None if http_processes is None else max_connections(settings, http_processes)
    server = embedded.start(settings.data_dir, limit)
    return ResolvedDatabase(url=server.url, embedded=server)


def max_connections(settings: Settings, http_processes: int) -> int:
    """What `postrag serve` may hold at once: its ingestion workers, each HTTP process's pool
    and LISTEN connection, and spare ones for commands; at least PostgreSQL's default."""
    workers = settings.workers * CONNECTIONS_PER_WORKER
    http = http_processes * (settings.pool_max_size + 1)
    return max(workers + http + SPARE_CONNECTIONS, POSTGRES_DEFAULT_CONNECTIONS)


def redact(url: str) -> str:
    """The URL (or key=value conninfo) with its password masked, for logs and messages."""
    if "://" not in url:
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            return "<unparseable DATABASE_URL>"
        if "password" in params:
            params["password"] = "***"
        return make_conninfo("", **params)
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[1]}"
    query = [
        (key, "***" if key == "password" else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="/*")))


def split_password(url: str) -> tuple[str, str | None]:
    """(conninfo without the password, the password): the password can then go in PGPASSWORD
    instead of a command line that every local user can read with ps."""
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    return make_conninfo("", **params), None if password is None else str(password)


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def check_server(url: str) -> str:
    """Fail with a clear message unless PostgreSQL >= 15 with pgvector >= 0.7 is available.

    Returns the pgvector version that is (or will be) installed.
    """
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        shown = conn.execute("SHOW server_version_num").fetchone()
        version_num = int(shown[0]) if shown else 0
        if version_num < MIN_SERVER_VERSION:
            raise DatabaseUnsupportedError(
                f"PostgreSQL {version_num // 10000} is too old: postrag needs PostgreSQL >= 15"
            )
        row = conn.execute(
            "SELECT e.extversion, a.default_version"
            " FROM pg_available_extensions a"
            " LEFT JOIN pg_extension e ON e.extname = a.name"
            " WHERE a.name = 'vector'"
        ).fetchone()
    installed, available = row if row is not None else (None, None)
    problem = pgvector_problem(installed, available)
    if problem:
        raise DatabaseUnsupportedError(problem)
    return str(installed or available)


def pgvector_problem(installed: str | None, available: str | None) -> str | None:
    """Why this pgvector (installed in the database, or available to install) cannot be used."""
    version = installed or available
    if version is None:
        return (
            "the pgvector extension is not available on this PostgreSQL server: install pgvector"
            " >= 0.7 (https://github.com/pgvector/pgvector) or unset DATABASE_URL to use the"
            " embedded server"
        )
    if parse_version(version) < MIN_PGVECTOR:
        hint = " (run ALTER EXTENSION vector UPDATE)" if installed else ""
        return f"pgvector {version} is too old: postrag needs pgvector >= 0.7{hint}"
    return None
