"""`postrag ingest`: upload files and folders through the documents service, then process them.

The same service code as the HTTP API stores each file; this process then works the queue
itself (other workers may help) until every file is indexed or failed. Files that are not in
a format postrag reads are skipped, each with the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import AppError, PayloadTooLarge, UnsupportedMediaType
from app.providers.embeddings import make_embedder
from app.repositories import Conn
from app.repositories import documents as document_repo
from app.services import collections, documents, extraction
from app.services.documents import Upload
from app.services.tokens import Principal
from app.services.worker import Worker
from app.settings import Settings


@dataclass
class Summary:
    indexed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # not a format postrag reads


@dataclass
class Collected:
    files: list[Path]
    skipped: list[tuple[str, str]]  # (path, why): hidden, empty, not a regular file


def collect(paths: Iterable[Path]) -> Collected:
    """Files named directly, and every file under folders (recursively), except hidden files
    and folders (.git is one line, not its thousands of files) and empty files."""
    found = Collected([], [])
    for path in paths:
        if not path.is_dir():
            found.files.append(path)
            continue
        for folder, folders, names in os.walk(path):  # symbolic links to folders not followed
            for name in sorted(folders):
                if name.startswith("."):
                    found.skipped.append((os.path.join(folder, name) + os.sep, "hidden folder"))
            folders[:] = sorted(name for name in folders if not name.startswith("."))
            for name in sorted(names):
                file = Path(folder, name)
                why = _not_collected(file)
                if why:
                    found.skipped.append((str(file), why))
                else:
                    found.files.append(file)
    return found


def _not_collected(file: Path) -> str:
    if file.name.startswith("."):
        return "hidden file"
    if not file.is_file():
        return "not a regular file"
    return "empty file" if file.stat().st_size == 0 else ""


def _read(path: Path, settings: Settings) -> bytes:
    """The file's bytes; a binary or oversized file is refused after reading its start only."""
    with path.open("rb") as file:
        start = file.read(extraction.SNIFF_BYTES)
        extraction.detect_format(path.name, None, start)
        size = os.fstat(file.fileno()).st_size
        if size > settings.max_upload_bytes:
            raise PayloadTooLarge(
                f"the file has {size} bytes; the limit is {settings.max_upload_bytes}"
            )
        return start + file.read()


def ingest(
    conn: Conn,
    who: Principal,
    collection: str,
    files: list[Path],
    settings: Settings,
    *,
    replace: bool = False,
    progress: Callable[[int], Any] = lambda n: None,
) -> Summary:
    """Store each file in `who`'s collection named `collection` (created if missing), then work
    the queue in this process until each is indexed or failed; `progress` counts files done."""
    collection_id = collections.get_or_create(conn, who.user_id, collection)["id"]
    assert settings.database_url is not None
    worker = Worker(settings.database_url, settings, make_embedder(settings))
    summary = Summary()
    waiting: dict[int, str] = {}
    for path in files:
        try:
            item = Upload(
                filename=path.name,
                content_type=None,
                data=_read(path, settings),
                collection_id=collection_id,
                title=path.stem,
            )
            row, queued = documents.upload(conn, who, item, settings, replace=replace)
        except UnsupportedMediaType as exc:
            summary.skipped.append((str(path), exc.detail))
            progress(1)
            continue
        except (AppError, OSError) as exc:
            summary.failed.append((str(path), getattr(exc, "detail", str(exc))))
            progress(1)
            continue
        if queued:
            waiting[row.id] = str(path)
        else:
            summary.unchanged.append(str(path))
            progress(1)
    work_until_done(conn, worker, waiting, summary, progress)
    return summary


def work_until_done(
    conn: Conn,
    worker: Worker,
    waiting: dict[int, str],
    summary: Summary,
    progress: Callable[[int], Any],
) -> None:
    """Run jobs until every document in `waiting` (id -> path) is indexed or failed."""
    while waiting:
        worked = worker.run_one(conn)
        for document_id, name in list(waiting.items()):
            doc = document_repo.get(conn, document_id)
            if doc is None:
                summary.failed.append((name, "deleted while it was being processed"))
            elif doc.status == "indexed":
                summary.indexed.append(name)
            elif doc.status == "failed":
                summary.failed.append((name, doc.error or "failed"))
            else:
                continue
            del waiting[document_id]
            progress(1)
        if not worked and waiting:
            time.sleep(0.5)  # another worker has our job (or its retry is not due yet)
