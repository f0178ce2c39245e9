"""`postrag ingest`: upload files and folders through the documents service, then process them.

The same service code as the HTTP API stores each file; this process then works the queue
itself (other workers may help) until every file is indexed or failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import AppError
from app.repositories import Conn
from app.repositories import documents as document_repo
from app.services import documents
from app.services.documents import Upload
from app.services.extraction import FORMATS
from app.services.tokens import Principal
from app.services.worker import Worker
from app.settings import Settings


@dataclass
class Summary:
    indexed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def collect(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, and supported files under folders (recursively, by extension)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
            )
        else:
            found.append(path)
    return found


def ingest(
    conn: Conn,
    who: Principal,
    collection_id: int,
    files: list[Path],
    settings: Settings,
    worker: Worker,
    *,
    replace: bool = False,
    progress: Callable[[int], Any] = lambda n: None,
) -> Summary:
    summary = Summary()
    waiting: dict[int, str] = {}
    for path in files:
        try:
            item = Upload(
                filename=path.name,
                content_type=None,
                data=path.read_bytes(),
                collection_id=collection_id,
                title=path.stem,
            )
            row, queued = documents.upload(conn, who, item, settings, replace=replace)
        except (AppError, OSError) as exc:
            summary.failed.append((str(path), getattr(exc, "detail", str(exc))))
            progress(1)
            continue
        if queued:
            waiting[row["id"]] = str(path)
        else:
            summary.unchanged.append(str(path))
            progress(1)
    while waiting:
        worked = worker.run_one(conn)
        for document_id, name in list(waiting.items()):
            doc = document_repo.get(conn, document_id)
            if doc is None:
                summary.failed.append((name, "deleted while it was being processed"))
            elif doc["status"] == "indexed":
                summary.indexed.append(name)
            elif doc["status"] == "failed":
                summary.failed.append((name, doc["error"] or "failed"))
            else:
                continue
            del waiting[document_id]
            progress(1)
        if not worked and waiting:
            time.sleep(0.5)  # another worker has our job (or its retry is not due yet)
    return summary
