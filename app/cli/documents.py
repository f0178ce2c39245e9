"""`postrag ingest`: files and folders into a collection, with progress and a summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from app.cli.common import with_user

if TYPE_CHECKING:
    from app.repositories import Conn
    from app.services.bulk_ingest import Summary
    from app.services.tokens import Principal
    from app.settings import Settings


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
def ingest(paths: tuple[Path, ...], collection: str, user_name: str, replace: bool) -> None:
    """Ingest files and folders (recursively) into a collection, with progress.

    Every file is tried; the ones postrag cannot read (binary, hidden, empty) are listed.
    """
    from tqdm import tqdm

    from app.services import bulk_ingest

    collected = bulk_ingest.collect(paths)

    def work(conn: Conn, settings: Settings, who: Principal) -> Summary:
        with tqdm(total=len(collected.files), unit="file", disable=None) as bar:
            files = collected.files
            return bulk_ingest.ingest(
                conn, who, collection, files, settings, replace=replace, progress=bar.update
            )

    summary = with_user(user_name, work, arguments={"name": f"--collection {collection!r}"})
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
