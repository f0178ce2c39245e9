"""`postrag export` and `import`: a collection to a JSON-lines file and back, with progress."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from app.cli.common import with_user

if TYPE_CHECKING:
    from app.repositories import Conn
    from app.services.tokens import Principal
    from app.services.transfer import ImportSummary
    from app.services.transfer_files import Exported
    from app.settings import Settings

_USER_OPTION = click.option(
    "--user",
    "user_name",
    default="admin",
    show_default=True,
    help="the user who owns the collection",
)


@click.command("export")
@click.argument("collection")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_USER_OPTION
def export_command(collection: str, file: Path, user_name: str) -> None:
    """Write a collection (documents, chunks, vectors) to a JSON-lines FILE, with progress.

    COLLECTION is the collection's name or id. The file appears complete or not at all.
    """
    from tqdm import tqdm

    from app.services import transfer_files

    def work(conn: Conn, settings: Settings, who: Principal) -> Exported:
        with tqdm(unit="doc", disable=None) as bar:
            return transfer_files.export_to_file(conn, who, collection, file, bar)

    done = with_user(user_name, work)
    click.echo(
        f"exported {done.documents} document(s), {done.chunks} chunk(s) to {file}"
        f" ({done.size_bytes:,} bytes)"
    )


@click.command("import")
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

    from app.services import transfer_files

    def work(conn: Conn, settings: Settings, who: Principal) -> ImportSummary:
        with tqdm(unit="B", unit_scale=True, disable=None) as bar:
            return transfer_files.import_from_file(
                conn, who, file, settings, name=name, progress=bar
            )

    summary = with_user(user_name, work, arguments={"name": f"--name {name!r}"})
    how = (
        "vectors kept (same embedding model)"
        if summary.vectors_kept
        else f"{summary.queued} document(s) queued to be embedded again"
    )
    click.echo(
        f"imported collection {summary.collection['name']!r} (id {summary.collection['id']}):"
        f" {summary.documents} document(s), {summary.chunks} chunk(s); {how}"
    )
