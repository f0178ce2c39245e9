"""`postrag backup` and `restore`: the whole database to a pg_dump archive and back."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from app.cli.common import fail, load_settings


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def backup_command(file: Path) -> None:
    """Back up the whole database to FILE (pg_dump custom format)."""
    from app.db import backup, server

    url = server.resolve(load_settings()).url
    with click.progressbar(length=backup.table_count(url), label="backing up") as bar:
        try:
            done = backup.backup(url, file, lambda _: bar.update(1))
        except (backup.BackupError, OSError) as exc:  # OSError: e.g. FILE's folder is missing
            fail(exc)
    click.echo(
        f"backed up {done.tables} tables to {done.path} ({done.size_bytes / 1e6:.1f} MB)"
        f" in {done.seconds:.1f} s"
    )


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="do not ask before replacing the database's contents")
def restore_command(file: Path, yes: bool) -> None:
    """Replace the database's contents with the backup in FILE, in one transaction."""
    from app.db import backup, migrations, server

    settings = load_settings()
    url = server.resolve(settings).url
    if not yes:
        if not sys.stdin.isatty():
            fail(RuntimeError("restore replaces the database's contents: confirm with --yes"))
        click.confirm(f"Replace everything in {server.redact(url)} with {file}?", abort=True)
    try:
        tables = backup.archive_tables(file)
        with click.progressbar(length=tables, label="restoring") as bar:
            done = backup.restore(
                url,
                file,
                lambda _: bar.update(1),
                index_build_memory=settings.index_build_memory,
            )
    except backup.BackupError as exc:
        fail(exc)
    pending = [m for m in migrations.status(url, settings.migrations_dir) if not m.applied]
    click.echo(f"restored {done.tables} tables from {done.path} in {done.seconds:.1f} s")
    if pending:
        click.echo(f"{len(pending)} migration(s) newer than the backup apply at the next start")
