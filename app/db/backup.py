"""Backup and restore of the whole database with pg_dump / pg_restore (custom format).

The tools come from the embedded install or the system, whichever is newer (pg_dump refuses a
server newer than itself). Both run with --verbose; each table they reach is reported to
`progress`, so the CLI can draw a bar. A restore replaces the database's contents in one
transaction (--clean --if-exists --single-transaction): a server running against the database
sees the old data until the restore commits, then the new.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from app.db import embedded, server

_TABLE_LINE = re.compile(r'(?:dumping contents of|processing data for) table "([^"]+)"')


class BackupError(RuntimeError):
    """pg_dump or pg_restore failed; the message carries their last lines."""


@dataclass(frozen=True)
class Summary:
    path: Path
    tables: int
    size_bytes: int
    seconds: float


def client_version(executable: str) -> int:
    """The major version a client tool reports (`pg_dump (PostgreSQL) 18.4` -> 18), or 0."""
    try:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=10)
    except OSError:
        return 0
    digits = out.stdout.split()[-1].split(".")[0] if out.stdout.split() else ""
    return int(digits) if digits.isdigit() else 0


def client_tool(tool: str) -> str:
    """The newer of the bundled and the system's `tool`."""
    candidates = [str(embedded.bin_dir() / tool)]
    if shutil.which(tool):
        candidates.append(str(shutil.which(tool)))
    return max(candidates, key=client_version)


def table_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relkind IN ('r', 'p')"
            " AND relnamespace = current_schema()::regnamespace"
        ).fetchone()
    return int(row[0]) if row else 0


def _listing(path: Path, *, without_extensions: bool = False) -> list[str]:
    """The archive's table of contents (pg_restore --list), optionally without extensions and
    schemas: a restore keeps both as they are (see `restore`)."""
    listed = subprocess.run(
        [client_tool("pg_restore"), "--list", str(path)], capture_output=True, text=True
    )
    if listed.returncode != 0:
        raise BackupError(f"{path} is not a pg_dump archive: {listed.stderr.strip()}")
    lines = listed.stdout.splitlines()
    if without_extensions:
        lines = [line for line in lines if " EXTENSION " not in line and " SCHEMA - " not in line]
    return lines


def archive_tables(path: Path) -> int:
    """How many tables' data the archive holds."""
    return sum(1 for line in _listing(path) if " TABLE DATA " in line)


def backup(url: str, path: Path, progress: Callable[[str], None]) -> Summary:
    """Dump the database at `url` to `path` (custom format).

    The dump is written beside `path`, readable by its owner only (it holds every user's data),
    and renamed into place when complete: `path` is a whole dump or untouched.
    """
    started = time.monotonic()
    conninfo, password = server.split_password(url)
    partial = path.with_name(f".{path.name}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    partial.chmod(0o600)  # also when it was there already
    command = [client_tool("pg_dump"), "--format=custom", "--verbose", f"--file={partial}"]
    try:
        tables = _run([*command, "--dbname", conninfo], password, progress)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return Summary(path, tables, path.stat().st_size, time.monotonic() - started)


def restore(
    url: str, path: Path, progress: Callable[[str], None], *, index_build_memory: str = "1GB"
) -> Summary:
    """Replace the contents of the database at `url` with the archive at `path`, atomically.

    Extensions are left in place (created when missing), not dropped and restored: a server
    running against the database keeps pgvector's type ids, which its connections cached.
    Schemas are left in place too: the least-privileged Docker role owns its schema but may not
    create one (docker/init_schema.sh), so the restore empties and refills it instead.
    """
    started = time.monotonic()
    conninfo, password = server.split_password(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    # The archive's table of contents minus the extensions, beside it or, if read-only, in /tmp.
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as listing:
        entries = Path(listing.name)
    entries.write_text("\n".join(_listing(path, without_extensions=True)) + "\n")
    command = [
        client_tool("pg_restore"),
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--exit-on-error",
        "--no-owner",
        "--verbose",
        f"--use-list={entries}",
        "--dbname",
        conninfo,
        str(path),
    ]
    # HNSW indexes are rebuilt after the data is loaded; a graph that fits in memory builds
    # several times faster (see the README's Backups section for how much it takes).
    options = f"-c maintenance_work_mem={index_build_memory}"
    try:
        tables = _run(command, password, progress, options)
    finally:
        entries.unlink(missing_ok=True)
    return Summary(path, tables, path.stat().st_size, time.monotonic() - started)


def _run(
    command: list[str], password: str | None, progress: Callable[[str], None], options: str = ""
) -> int:
    """Run `command`, reporting each table it reaches; the number of tables, or BackupError."""
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = password
    if options:
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} {options}".strip()
    tables, tail = 0, list[str]()
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            found = _TABLE_LINE.search(line)
            if found:
                tables += 1
                progress(found.group(1))
            tail = [*tail[-9:], line.rstrip()]
    if proc.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed:\n" + "\n".join(tail))
    return tables
