"""`postrag ingest`: upload files and folders through the documents service, then wait for them.

The same service code as the HTTP API stores each file (an e-mail's attachments with it); worker
processes (started by the command, others may help) process the queue meanwhile, and this
process follows each document until it is indexed or failed, showing how far each one is. Files
that are not in a format postrag reads are skipped, each with the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import AppError, PayloadTooLarge, UnsupportedMediaType
from app.repositories import Conn, Row, document_progress
from app.repositories import documents as document_repo
from app.services import collections, documents, extraction
from app.services.documents import Upload
from app.services.ingest_progress import Estimator, FileProgress, FolderProgress
from app.services.tokens import Principal
from app.services.worker import Worker
from app.settings import Settings

POLL_S = 0.5  # how often the documents' progress is read


@dataclass
class Summary:
    indexed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # not a format postrag reads
    # E-mail attachments stored with their e-mail (counted in indexed or failed too).
    attachments: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return len(self.indexed) + len(self.unchanged) + len(self.failed) + len(self.skipped)


@dataclass(frozen=True)
class Waiting:
    """A document being processed: the file's path, or for an e-mail attachment the e-mail's."""

    path: str
    attachment: bool = False

    def name(self, filename: str) -> str:
        return f"{self.path} > {filename}" if self.attachment else self.path


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
    show: Callable[[FolderProgress], Any] = lambda folder: None,
) -> Summary:
    """Store each file in `who`'s collection named `collection` (created if missing), then wait
    until each (and each e-mail attachment) is indexed or failed; `show` is given the progress
    after each file stored, then every POLL_S seconds (it may raise to stop waiting)."""
    collection_id = collections.get_or_create(conn, who.user_id, collection)["id"]
    summary = Summary()
    waiting: dict[int, Waiting] = {}
    for path in files:
        try:
            item = Upload(
                filename=path.name,
                content_type=None,
                data=_read(path, settings),
                collection_id=collection_id,
                title=path.stem,
            )
            uploaded = documents.upload(conn, who, item, settings, replace=replace)
        except UnsupportedMediaType as exc:
            summary.skipped.append((str(path), exc.detail))
        except (AppError, OSError) as exc:
            summary.failed.append((str(path), getattr(exc, "detail", str(exc))))
        else:
            if not uploaded.queued:
                summary.unchanged.append(str(path))
            else:
                waiting[uploaded.document.id] = Waiting(str(path))
                waiting |= {i: Waiting(str(path), True) for i in uploaded.attachment_ids}
        total = len(files) + sum(w.attachment for w in waiting.values())
        show(FolderProgress(total, summary.done, ()))
    wait(conn, waiting, summary, len(files), show)
    return summary


def wait(
    conn: Conn,
    waiting: dict[int, Waiting],
    summary: Summary,
    files_given: int,
    show: Callable[[FolderProgress], Any],
) -> None:
    """Until every document in `waiting` is indexed, failed or gone, each outcome in `summary`."""
    total = files_given + sum(w.attachment for w in waiting.values())
    finished: dict[int, FileProgress] = {}
    estimator = Estimator()
    while True:
        left = [i for i in waiting if i not in finished]
        rows = {row["id"]: row for row in document_progress.progress(conn, left)}
        current: list[FileProgress] = []
        for document_id in left:
            file = _file(waiting[document_id], rows.get(document_id))
            if file.done:
                finished[document_id] = file
                _record(summary, waiting[document_id], file, rows.get(document_id))
            else:
                current.append(file)
        folder = FolderProgress(total, summary.done, (*finished.values(), *current))
        show(estimator.estimate(folder, time.monotonic()))
        if not current:
            return
        time.sleep(POLL_S)


def _file(item: Waiting, row: Row | None) -> FileProgress:
    if row is None:  # deleted meanwhile
        return FileProgress(item.path, "failed", 0, None, 0)
    return FileProgress(
        item.name(row["filename"]),
        row["status"],
        row["chunks_embedded"],
        row["chunks_total"],
        row["size_bytes"],
        tuple(row["workers"]),
    )


def _record(summary: Summary, item: Waiting, file: FileProgress, row: Row | None) -> None:
    if row is None:
        summary.failed.append((file.name, "deleted while it was being processed"))
    elif file.stage == "indexed":
        summary.indexed.append(file.name)
    else:
        summary.failed.append((file.name, row["error"] or "failed"))
    if item.attachment:
        summary.attachments.append(file.name)


def work_until_done(
    conn: Conn,
    worker: Worker,
    waiting: dict[int, str],
    summary: Summary,
    progress: Callable[[int], Any],
) -> None:
    """Run jobs in this process until every document in `waiting` (id -> name) is indexed or
    failed (`postrag eval import-beir`)."""
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
