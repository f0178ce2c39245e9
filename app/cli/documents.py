"""`postrag ingest`: files and folders into a collection, on worker processes, with progress."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from app.cli.common import with_user
from app.settings_vars import available_cores

if TYPE_CHECKING:
    from app.repositories import Conn
    from app.services.bulk_ingest import Summary
    from app.services.ingest_progress import FolderProgress
    from app.services.tokens import Principal
    from app.settings import Settings
    from app.worker_processes import WorkerProcesses


@click.command()
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
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    help="worker processes that read and embed the files  [default: the cores available]",
)
def ingest(
    paths: tuple[Path, ...], collection: str, user_name: str, replace: bool, processes: int | None
) -> None:
    """Ingest files and folders (recursively) into a collection, with progress.

    Every file is tried; the ones postrag cannot read (binary, hidden, empty) are listed.
    An e-mail's attachments are ingested (and counted) too.
    """
    from app.cli import ingest_view
    from app.services import bulk_ingest
    from app.worker_processes import WorkerProcesses

    collected = bulk_ingest.collect(paths)
    count = processes or available_cores()
    # SIGTERM as Ctrl-C: the worker processes are stopped and their jobs queued again. Ctrl-C
    # itself is set too: a command started in the background of a script inherits SIGINT
    # ignored, and Python then leaves it so.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)

    def work(conn: Conn, settings: Settings, who: Principal) -> Summary:
        assert settings.database_url is not None
        with WorkerProcesses(count, settings.database_url, settings.jobs_per_user) as workers:
            view = (
                ingest_view.BarView(workers.label, count)
                if ingest_view.use_bars()
                else ingest_view.PlainView(workers.label)
            )

            def show(folder: FolderProgress) -> None:
                view(folder)
                _check(workers)

            try:
                files = collected.files
                return bulk_ingest.ingest(
                    conn, who, collection, files, settings, replace=replace, show=show
                )
            finally:
                view.close()

    summary = with_user(user_name, work, arguments={"name": f"--collection {collection!r}"})
    _report(summary, collected.skipped + summary.skipped)


def _interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def _check(workers: WorkerProcesses) -> None:
    """Stop waiting when no worker process is left to do the work."""
    exited = workers.exited()
    if len(exited) == workers.count:
        raise click.ClickException(
            f"the worker processes exited (status {', '.join(map(str, exited))}); the files"
            " left are queued for the next `postrag ingest` or `postrag serve`"
        )


def _report(summary: Summary, skipped: list[tuple[str, str]]) -> None:
    """Today's counts, the e-mail attachments among them, each failure and each skip."""
    click.echo(
        f"indexed {len(summary.indexed)}, unchanged {len(summary.unchanged)},"
        f" failed {len(summary.failed)}, skipped {len(skipped)}"
    )
    if summary.attachments:
        indexed = len(set(summary.attachments) & set(summary.indexed))
        click.echo(
            f"e-mail attachments: {len(summary.attachments)} (indexed {indexed},"
            f" failed {len(summary.attachments) - indexed})"
        )
    for path, reason in summary.failed:
        click.echo(f"  failed: {path}: {reason}")
    for path, reason in skipped:
        click.echo(f"  skipped: {path}: {reason}")
    if summary.failed:
        sys.exit(1)
