"""Applies sql/migrations with yoyo under an advisory lock, and refuses edited applied files.

Several processes may start at once: a session-level advisory lock serialises the whole run
(yoyo's own bookkeeping tables included), so each migration is applied exactly once. Like
Flyway's validate, a sha256 of every applied file is recorded; a later edit stops the start.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from yoyo import get_backend, read_migrations

log = logging.getLogger(__name__)

# pg_advisory_lock key shared by every postrag process ("postrag" in ASCII).
MIGRATION_LOCK_KEY = 0x706F737472616700
CHECKSUM_TABLE = "postrag_migration_checksums"
BASE = "base"


class MigrationError(RuntimeError):
    """Migrations cannot be applied or rolled back; the message names the file."""


@dataclass(frozen=True)
class MigrationStatus:
    id: str
    path: Path
    sha256: str
    applied: bool
    applied_sha256: str | None
    applied_at: datetime | None

    @property
    def edited(self) -> bool:
        return self.applied_sha256 is not None and self.applied_sha256 != self.sha256


def yoyo_url(database_url: str) -> str:
    """yoyo picks its driver from the scheme: postgresql+psycopg means psycopg 3."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise MigrationError("DATABASE_URL must start with postgresql:// or postgres://")
    return f"postgresql+psycopg://{rest}"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_VERSION = re.compile(r"V([0-9]+)_([0-9]+)__")


def order_key(name: str) -> tuple[bool, int, int, str]:
    """A migration's place by its version's numbers (V2_10 after V2_9, not after V2_1, as its
    name would sort); files without a version last, by name."""
    found = _VERSION.match(name)
    return (False, int(found[1]), int(found[2]), name) if found else (True, 0, 0, name)


def _forward_files(migrations_dir: Path) -> list[Path]:
    forward = (p for p in migrations_dir.glob("*.sql") if not p.name.endswith(".rollback.sql"))
    return sorted(forward, key=lambda path: order_key(path.name))


@contextmanager
def _locked(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%(key)s)", {"key": MIGRATION_LOCK_KEY})
        try:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {CHECKSUM_TABLE} ("
                " migration_id text PRIMARY KEY,"
                " sha256 text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            yield conn
        finally:
            conn.execute("SELECT pg_advisory_unlock(%(key)s)", {"key": MIGRATION_LOCK_KEY})


@contextmanager
def _backend(database_url: str) -> Iterator[Any]:
    backend = get_backend(yoyo_url(database_url))
    try:
        yield backend
    finally:
        backend.connection.close()


def _read(conn: psycopg.Connection[Any], query: str) -> list[Any]:
    """Rows of a bookkeeping table, or none when it does not exist yet (a fresh database).

    In a transaction of the caller's (readiness checks), a savepoint keeps it usable."""
    try:
        with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
            return cur.execute(query).fetchall()
    except psycopg.errors.UndefinedTable:
        return []


def _status(conn: psycopg.Connection[Any], migrations_dir: Path) -> list[MigrationStatus]:
    applied = {
        migration_id: at.replace(tzinfo=UTC)  # yoyo stores naive UTC timestamps
        for migration_id, at in _read(
            conn, "SELECT migration_id, applied_at_utc FROM _yoyo_migration"
        )
    }
    recorded = dict(_read(conn, f"SELECT migration_id, sha256 FROM {CHECKSUM_TABLE}"))
    result = []
    for path in _forward_files(migrations_dir):
        migration_id = path.name.removesuffix(".sql")
        result.append(
            MigrationStatus(
                id=migration_id,
                path=path,
                sha256=file_sha256(path),
                applied=migration_id in applied,
                applied_sha256=recorded.get(migration_id),
                applied_at=applied.get(migration_id),
            )
        )
    return result


def _validate(statuses: list[MigrationStatus]) -> None:
    for status in statuses:
        if status.applied and status.edited:
            raise MigrationError(
                f"migration {status.path.name} was edited after it was applied"
                f" (applied sha256 {status.applied_sha256}, file now {status.sha256});"
                " never edit an applied migration: restore the file and add a new migration"
            )


def _record(conn: psycopg.Connection[Any], statuses: list[MigrationStatus]) -> None:
    for status in statuses:
        conn.execute(
            f"INSERT INTO {CHECKSUM_TABLE} (migration_id, sha256) VALUES (%(id)s, %(sha)s)"
            " ON CONFLICT (migration_id) DO NOTHING",
            {"id": status.id, "sha": status.sha256},
        )


def migrate(database_url: str, migrations_dir: Path) -> list[str]:
    """Apply every pending migration; return the ids applied."""
    with _locked(database_url) as conn, _backend(database_url) as backend:
        statuses = _status(conn, migrations_dir)
        _validate(statuses)
        # Applied earlier without a recorded checksum (e.g. by the yoyo CLI): trust, then record.
        _record(conn, [s for s in statuses if s.applied and s.applied_sha256 is None])
        by_id = {s.id: s for s in statuses}
        migrations = read_migrations(str(migrations_dir))
        applied: list[str] = []
        for migration in backend.to_apply(migrations):
            log.info("applying migration %s", migration.id)
            backend.apply_migrations(migrations.__class__([migration]))
            _record(conn, [by_id[migration.id]])
            applied.append(migration.id)
        return applied


def status(database_url: str, migrations_dir: Path) -> list[MigrationStatus]:
    """Every migration file with whether it is applied and the checksums (read-only, no lock)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return _status(conn, migrations_dir)


def validate(database_url: str, migrations_dir: Path) -> None:
    """Raise MigrationError, naming the file, when an applied migration was edited."""
    _validate(status(database_url, migrations_dir))


def is_at_head(conn: psycopg.Connection[Any], migrations_dir: Path) -> bool:
    """True when every migration file is recorded as applied (used by /readyz)."""
    statuses = _status(conn, migrations_dir)
    return all(s.applied for s in statuses)


def rollback(database_url: str, migrations_dir: Path, to: str) -> list[str]:
    """Roll back every applied migration after `to` (`base`: all of them); return the ids."""
    with _locked(database_url) as conn, _backend(database_url) as backend:
        statuses = _status(conn, migrations_dir)
        ids = [s.id for s in statuses]
        if to != BASE and to not in ids:
            known = ", ".join(ids)
            raise MigrationError(f"no migration {to!r} in {migrations_dir} (known: {known})")
        _validate(statuses)
        migrations = read_migrations(str(migrations_dir))
        keep = set() if to == BASE else set(ids[: ids.index(to) + 1])
        rolled_back: list[str] = []
        for migration in backend.to_rollback(migrations):
            if migration.id in keep:
                continue
            log.info("rolling back migration %s", migration.id)
            backend.rollback_migrations(migrations.__class__([migration]))
            conn.execute(
                f"DELETE FROM {CHECKSUM_TABLE} WHERE migration_id = %(id)s", {"id": migration.id}
            )
            rolled_back.append(migration.id)
        return rolled_back
