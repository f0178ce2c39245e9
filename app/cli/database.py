"""`postrag migrate` (status, rollback); psql, pg_dump, pg_restore on the configured database."""

from __future__ import annotations

import os
import subprocess

import click

from app.cli.common import exit_like, fail, load_settings

_PASS_THROUGH = {
    "ignore_unknown_options": True,
    "allow_extra_args": True,
    "help_option_names": ["--postrag-help"],
}


def _run_client(tool: str, args: tuple[str, ...]) -> None:
    """Run a PostgreSQL client tool on the configured database and exit with its code.

    Of the bundled tool and the system's, the newer one runs: pg_dump refuses servers newer than
    itself, and a newer psql knows every older server's catalogs.
    """
    from app.db import backup, server

    executable = backup.client_tool(tool)
    if args[:1] in (("--help",), ("-?",), ("--version",), ("-V",)):
        # The tools look for these as their first argument only; no database is needed.
        exit_like(subprocess.call([executable, *args]))
    resolved = server.resolve(load_settings())
    conninfo, password = server.split_password(resolved.url)
    env = dict(os.environ, PGPASSWORD=password) if password else None
    # After the user's arguments: first, it would hide a --help or --version given later.
    exit_like(subprocess.call([executable, *args, "--dbname", conninfo], env=env))


@click.command(context_settings=_PASS_THROUGH)
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def psql(psql_args: tuple[str, ...]) -> None:
    """Open psql on the configured database; arguments go to psql (e.g. -c '\\dt')."""
    _run_client("psql", psql_args)


@click.command("pg-dump", context_settings=_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def pg_dump(args: tuple[str, ...]) -> None:
    """Back up the configured database with pg_dump (e.g. --format=custom --file=postrag.dump)."""
    _run_client("pg_dump", args)


@click.command("pg-restore", context_settings=_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def pg_restore(args: tuple[str, ...]) -> None:
    """Restore a pg_dump archive into the configured database (e.g. --no-owner postrag.dump)."""
    _run_client("pg_restore", args)


@click.group(invoke_without_command=True)
@click.pass_context
@click.option(
    "--no-admin",
    is_flag=True,
    help="do not create the first admin (before loading a data-only dump, say)",
)
def migrate(ctx: click.Context, no_admin: bool) -> None:
    """Apply pending migrations (see also: status, rollback)."""
    if ctx.invoked_subcommand is not None:
        return
    from app import bootstrap_admin
    from app.db import migrations, server

    settings = load_settings()
    try:
        url = server.resolve(settings).url
        server.check_server(url)
        applied = migrations.migrate(url, settings.migrations_dir)
        if not no_admin:
            bootstrap_admin(url, settings)
    except Exception as exc:  # noqa: BLE001 - shown to the operator as a clean error
        fail(exc)
    click.echo(f"applied {len(applied)} migration(s)" + "".join(f"\n  {m}" for m in applied))


@migrate.command("status")
def migrate_status() -> None:
    """List every migration: applied or pending, with checksums."""
    from app.db import migrations, server

    settings = load_settings()
    try:
        statuses = migrations.status(server.resolve(settings).url, settings.migrations_dir)
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    for s in statuses:
        state = "EDITED" if s.edited else ("applied" if s.applied else "pending")
        when = s.applied_at.isoformat(timespec="seconds") if s.applied_at else "-"
        click.echo(f"{state:8} {s.id:40} sha256:{s.sha256[:16]}  {when}")
    edited = [s for s in statuses if s.edited]
    if edited:
        raise click.ClickException(f"{len(edited)} applied migration(s) were edited")


@migrate.command("rollback")
@click.option(
    "--to",
    "to",
    required=True,
    help="roll back every migration after this id (keep it); 'base' rolls back all",
)
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def migrate_rollback(to: str, yes: bool) -> None:
    """Roll back applied migrations after --to (their tables and data are dropped)."""
    from app.db import migrations, server

    settings = load_settings()
    if not yes:
        click.confirm(f"Roll back every migration after {to}? Their data is lost.", abort=True)
    try:
        done = migrations.rollback(server.resolve(settings).url, settings.migrations_dir, to)
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    click.echo(f"rolled back {len(done)} migration(s)" + "".join(f"\n  {m}" for m in done))
