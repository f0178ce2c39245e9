"""Documents: upload (deduplicated by sha256 per collection), read, delete, reindex."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePath, PureWindowsPath
from typing import Any

from app.errors import Conflict, NotFound, PayloadTooLarge
from app.repositories import Conn, Row
from app.repositories import documents as document_repo
from app.repositories.documents import StoredDocument
from app.services import (
    collections,
    document_metadata,
    email_attachments,
    extraction,
    preflight,
)
from app.services.job_kinds import ingest_document
from app.services.tokens import Principal
from app.settings import Settings


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str | None
    data: bytes
    collection_id: int
    title: str = ""
    metadata: dict[str, Any] | None = None
    detect_format: bool = True


@dataclass(frozen=True)
class Uploaded:
    document: StoredDocument
    queued: bool  # False when these bytes were already in the collection
    # The e-mail's attachments stored and queued with it (those the collection had are not).
    attachment_ids: tuple[int, ...] = ()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# C1 controls, and the bidirectional marks that make "cod.exe" look like "exe.doc".
_INVISIBLE = re.compile(r"[\x80-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_filename(name: str) -> str:
    """The file's own name (no directories, drive, control characters or bidi marks, never . or
    ..), at most 200 characters."""
    base = PureWindowsPath(name).name  # splits on / and \ and drops a drive (C:)
    base = _INVISIBLE.sub("", _CONTROL.sub("", base)).strip()
    if not base.strip("."):
        base = "upload"
    if len(base) <= 200:
        return base
    suffix = PurePath(base).suffix[:20]
    return base[: 200 - len(suffix)] + suffix


def enqueue(conn: Conn, document_id: int, settings: Settings) -> None:
    """Queue the document's ingestion; Conflict while one is queued or running already."""
    if not ingest_document.enqueue(conn, document_id, max_attempts=settings.job_max_attempts):
        raise Conflict(
            f"document {document_id} is being processed; try again once it is indexed or failed"
        )


def upload(
    conn: Conn, who: Principal, item: Upload, settings: Settings, *, replace: bool = False
) -> Uploaded:
    """The document, whether it was queued, and the e-mail attachments queued with it.

    Every check (collection, size, type, a cheap look at the file) happens before anything is
    stored; the file is read in full by a worker, which fails the document if it cannot.
    """
    collections.get_writable(conn, who, item.collection_id)
    document_metadata.check(item.metadata or {})
    if len(item.data) > settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"the file has {len(item.data)} bytes; the limit is {settings.max_upload_bytes}"
        )
    filename = clean_filename(item.filename)
    title = _CONTROL.sub("", item.title)[:500]
    if item.detect_format:
        content_type = extraction.detect_format(filename, item.content_type, item.data)
    else:
        content_type = item.content_type or "text/plain"
    # Never a full parse in the request.
    preflight.check(item.data, content_type, filename, settings.ocr_max_pixels)
    metadata = item.metadata or {}
    attached: list[email_attachments.Attached] = []
    if content_type == extraction.FORMATS[".eml"]:
        metadata, attached = email_attachments.prepare(
            item.data, filename, metadata, settings.ocr_max_pixels
        )
    sha256 = hashlib.sha256(item.data).digest()
    with conn.transaction():
        row = document_repo.insert(
            conn,
            collection_id=item.collection_id,
            filename=filename,
            title=title,
            content_type=content_type,
            sha256=sha256,
            content=item.data,
            metadata=metadata,
        )
        if row is None:
            existing = document_repo.get_by_sha(conn, item.collection_id, sha256)
            if existing is None:
                raise NotFound(f"no collection {item.collection_id}")
            if not replace:
                return Uploaded(existing, queued=False)
            row = existing
        document_repo.set_status(conn, row.id, "queued")
        enqueue(conn, row.id, settings)
        stored = [_store_attachment(conn, item.collection_id, a, settings) for a in attached]
    attachment_ids = tuple(i for i in stored if i is not None)
    return Uploaded(get(conn, who, row.id), queued=True, attachment_ids=attachment_ids)


def _store_attachment(
    conn: Conn, collection_id: int, attachment: email_attachments.Attached, settings: Settings
) -> int | None:
    """Store and queue an e-mail's attachment, unless the collection has its bytes already
    (None)."""
    added = document_repo.insert(
        conn,
        collection_id=collection_id,
        filename=clean_filename(attachment.filename),
        title="",
        content_type=attachment.content_type,
        sha256=hashlib.sha256(attachment.data).digest(),
        content=attachment.data,
        metadata=attachment.metadata,
    )
    if added is None:
        return None
    document_repo.set_status(conn, added.id, "queued")
    enqueue(conn, added.id, settings)
    return added.id


def get(conn: Conn, who: Principal, document_id: int) -> StoredDocument:
    row = document_repo.get_readable(conn, document_id, who.user_id)
    if row is None:
        raise NotFound(f"no document {document_id}")
    return row


def detail(conn: Conn, who: Principal, document_id: int) -> tuple[StoredDocument, list[Row]]:
    row = get(conn, who, document_id)
    return row, document_repo.history(conn, document_id)


def list_page(
    conn: Conn,
    who: Principal,
    *,
    collection_id: int | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[StoredDocument], int]:
    return document_repo.list_readable(
        conn, who.user_id, collection_id=collection_id, status=status, limit=limit, offset=offset
    )


def chunks(
    conn: Conn, who: Principal, document_id: int, *, limit: int, offset: int
) -> tuple[list[Row], int]:
    get(conn, who, document_id)
    return document_repo.chunks(conn, document_id, limit=limit, offset=offset)


def content(conn: Conn, who: Principal, document_id: int) -> Row:
    get(conn, who, document_id)
    row = document_repo.content(conn, document_id)
    if row is None:
        raise NotFound(f"no document {document_id}")
    return row


def _get_writable(conn: Conn, who: Principal, document_id: int) -> StoredDocument:
    """The document if the caller may change it: 404 when they cannot read it, 403 when its
    collection is shared with them read-only."""
    row = get(conn, who, document_id)
    collections.get_writable(conn, who, row.collection_id)
    return row


def delete(conn: Conn, who: Principal, document_id: int) -> None:
    _get_writable(conn, who, document_id)
    with conn.transaction():
        if not document_repo.delete(conn, document_id, who.user_id):
            raise NotFound(f"no document {document_id}")


def reindex(conn: Conn, who: Principal, document_id: int, settings: Settings) -> StoredDocument:
    _get_writable(conn, who, document_id)
    with conn.transaction():
        document_repo.set_status(conn, document_id, "queued")
        enqueue(conn, document_id, settings)
    return get(conn, who, document_id)
