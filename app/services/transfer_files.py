"""`postrag export` and `import`: a user's collection to a file and back, with progress."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.db import scope
from app.errors import NotFound
from app.providers.embeddings import make_embedder
from app.repositories import Conn, Row
from app.repositories import collections as collection_repo
from app.repositories import transfer as transfer_repo
from app.services import transfer
from app.services.tokens import Principal
from app.settings import Settings


class Progress(Protocol):
    """Where a long transfer reports how far it is (a tqdm bar is one): the total once known,
    then the units done."""

    def reset(self, total: float | None = None) -> None: ...

    def update(self, n: float | None = 1) -> bool | None: ...


@dataclass(frozen=True)
class Exported:
    documents: int
    chunks: int
    size_bytes: int


def find_owned(conn: Conn, who: Principal, collection: str) -> Row:
    """The collection `who` owns with this name, or else with this id; NotFound otherwise."""
    row = collection_repo.get_by_name(conn, who.user_id, collection)
    if row is None and collection.isdigit():
        row = collection_repo.get_readable(conn, int(collection), who.user_id)
    if row is None or row["owner_id"] != who.user_id:
        raise NotFound(f"{who.name} owns no collection {collection!r}")
    return row


def export_to_file(
    conn: Conn, who: Principal, collection: str, file: Path, progress: Progress
) -> Exported:
    """Write `who`'s collection (name or id) to `file`, which appears complete or not at all;
    `progress` counts documents."""
    counts = {"document": 0, "chunk": 0}
    with scope.acting_as(conn, who.user_id):
        row = find_owned(conn, who, collection)
        progress.reset(total=len(transfer_repo.document_ids(conn, row["id"])))
        partial = file.with_name(file.name + ".partial")
        try:
            # Owner-only, like a backup: it holds the collection's documents in full.
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "w", encoding="utf-8") as out:
                for kind, line in transfer.export_collection(conn, who, row["id"]):
                    out.write(line)
                    if kind in counts:
                        counts[kind] += 1
                        progress.update(kind == "document")
            partial.replace(file)
        finally:
            partial.unlink(missing_ok=True)
    return Exported(counts["document"], counts["chunk"], file.stat().st_size)


def import_from_file(
    conn: Conn,
    who: Principal,
    file: Path,
    settings: Settings,
    *,
    name: str | None,
    progress: Progress,
) -> transfer.ImportSummary:
    """Create a collection of `who` from an export file, in one transaction (see
    transfer.import_collection); `progress` counts bytes read."""
    progress.reset(total=file.stat().st_size)
    with scope.acting_as(conn, who.user_id), file.open("rb") as source:

        def lines() -> Iterator[bytes]:
            for line in transfer.read_lines(source, transfer.max_line_bytes(settings)):
                progress.update(len(line))
                yield line

        return transfer.import_collection(
            conn, who, lines(), settings=settings, embedder=make_embedder(settings), name=name
        )
