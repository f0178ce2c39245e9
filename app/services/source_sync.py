"""One sync run of a source: list everything, fetch what is new or changed, remove what is gone.

The run walks the reader's listing page by page. After each page, in one transaction, it records
the page's counts and moves the run's checkpoint past it, so a run that crashed resumes at the
page it was on. An item is fetched only when its version differs from the one stored, so a
resumed run does not fetch again what it already brought in; a changed item's document gets the
new content and is processed again (its old chunks stay searchable until the new ones replace
them). Only a complete listing removes anything: the items it did not name lose their documents.
Every listed item's readers are read again at every run (app/services/source_access.py), so a
changed permission takes effect at the next sync without a fetch or an embedding.

A reader's SourceFailed (the source refused, failed, or answered garbage) fails the run with
that message; what earlier pages brought in stays, each document whole. An item that vanished
between listing and fetch (ItemGone) is not seen, so the end of the run removes it.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg

from app.db import scope
from app.errors import AppError
from app.providers.source_items import Item, ItemGone, Listed, SourceFailed, SourceReader
from app.repositories import Conn, Row
from app.repositories import access_sets as access_repo
from app.repositories import collections as collection_repo
from app.repositories import documents as document_repo
from app.repositories import sources as source_repo
from app.services import document_metadata, source_access
from app.services.job_kinds import ingest_document
from app.settings import Settings

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/markdown"  # readers hand over clean text with Markdown headings


def run(
    conn: Conn,
    source: Row,
    run_id: int,
    reader: SourceReader,
    settings: Settings,
    renew: Callable[[], None],
) -> None:
    """Carry run `run_id` of `source` to its end (from its checkpoint), acting as the caller
    set up (the source's owner)."""
    collection = collection_repo.get_readable(conn, source["collection_id"], source["owner_id"])
    if collection is None or collection["role"] == "reader":
        raise SourceFailed(
            f"the source's owner can no longer write collection {source['collection_id']}"
            " (its owner may share it with them as editor again)"
        )
    record = source_repo.get_run(conn, run_id)
    cursor = None if record is None else record["checkpoint"]
    with conn.transaction():
        source_repo.start_run(conn, run_id)
    resumed = cursor
    while True:
        renew()
        try:
            listing = reader.list_items(cursor)
        except SourceFailed:
            if cursor is None or cursor != resumed:
                raise
            # A stored cursor the source no longer takes (Jira keeps one for 7 days): list
            # again from the start; what this run brought in is unchanged by now.
            log.warning("source %s: its stored cursor was refused; listing again", source["id"])
            cursor = resumed = None
            continue
        counts, errors = _sync_page(conn, source, run_id, reader, listing.items, settings, renew)
        with conn.transaction():
            source_repo.record_progress(
                conn, run_id, checkpoint=listing.cursor, counts=counts, errors=errors
            )
        if listing.cursor is None:
            break
        cursor = listing.cursor
    with conn.transaction():
        gone = source_repo.take_unseen(conn, source["id"], run_id)
        deleted = delete_documents(conn, gone)
        source_repo.record_progress(
            conn, run_id, checkpoint=None, counts={"deleted": deleted}, errors=[]
        )
        source_repo.finish_run(conn, run_id, "succeeded")


def delete_documents(conn: Conn, document_ids: list[int]) -> int:
    """Delete documents a source brought in, in the caller's transaction; how many. As the
    tables' owner: they go with their source (or its item) even where the source's owner may no
    longer write the collection, or read a document the source restricts to others."""
    with scope.acting_as_owner(conn):
        return sum(document_repo.delete(conn, document_id, None) for document_id in document_ids)


def _sync_page(
    conn: Conn,
    source: Row,
    run_id: int,
    reader: SourceReader,
    items: tuple[Listed, ...],
    settings: Settings,
    renew: Callable[[], None],
) -> tuple[Counter[str], list[str]]:
    counts: Counter[str] = Counter()
    errors: list[str] = []
    known = source_repo.known_items(conn, source["id"], [listed.key for listed in items])
    unchanged = []
    for listed in items:
        renew()
        stored = known.get(listed.key)
        if stored is not None and stored["version"] == listed.version and stored["document_id"]:
            unchanged.append(listed.key)
            readers = source_access.access_set(conn, source, reader.access(listed.key))
            with conn.transaction():  # a changed permission needs no fetch and no embedding
                access_repo.set_document_access(conn, stored["document_id"], readers)
            continue
        try:
            item = reader.fetch(listed.key)
        except ItemGone:
            continue
        access = reader.access(listed.key)
        try:
            with conn.transaction():
                document_id = _write(conn, source, item, None if stored is None else stored)
                access_repo.set_document_access(
                    conn, document_id, source_access.access_set(conn, source, access)
                )
                source_repo.save_item(
                    conn,
                    source["id"],
                    item.key,
                    version=item.version,
                    document_id=document_id,
                    run_id=run_id,
                )
                ingest_document.enqueue(conn, document_id, max_attempts=settings.job_max_attempts)
        except AppError as exc:
            counts["failed"] += 1
            errors.append(f"{listed.key}: {exc.detail}")
            continue
        counts["updated" if stored is not None and stored["document_id"] else "added"] += 1
    with conn.transaction():
        source_repo.mark_seen(conn, source["id"], unchanged, run_id)
    counts["unchanged"] += len(unchanged)
    return counts, errors


def _write(conn: Conn, source: Row, item: Item, stored: Row | None) -> int:
    """The document holding `item`: its stored one with the new content, or a new one."""
    content = item.text.encode()
    sha256 = hashlib.sha256(content).digest()
    metadata = _metadata(source, item)
    title = item.title[:500]
    if stored is not None and stored["document_id"] is not None:
        document_id = int(stored["document_id"])
        try:
            document_repo.replace_content(
                conn,
                document_id,
                title=title,
                content_type=CONTENT_TYPE,
                sha256=sha256,
                content=content,
                metadata=metadata,
            )
        except psycopg.errors.UniqueViolation:  # the item's transaction is rolled back
            raise _Duplicate("the collection has a document with the same text already") from None
    else:
        row = document_repo.insert(
            conn,
            collection_id=source["collection_id"],
            filename=_filename(item),
            title=title,
            content_type=CONTENT_TYPE,
            sha256=sha256,
            content=content,
            metadata=metadata,
            owner_id=source["owner_id"],
        )
        if row is None:
            raise _Duplicate("the collection has a document with the same text already")
        document_id = row.id
    document_repo.set_status(conn, document_id, "queued")
    return document_id


class _Duplicate(AppError):
    status, title = 409, "Conflict"


def _metadata(source: Row, item: Item) -> dict[str, Any]:
    """The item's metadata with where it came from; trimmed to the documents' limit."""
    base = {"source_id": source["id"], "source_key": item.key, "url": item.url}
    metadata = {**base, **dict(item.metadata)}
    try:
        document_metadata.check(metadata)
    except AppError:
        log.warning(
            "source %s: %s's metadata is over the limit; kept its origin", source["id"], item.key
        )
        return base
    return metadata


def _filename(item: Item) -> str:
    safe = "".join(ch if ch.isalnum() or ch in " -_." else "_" for ch in item.title).strip()
    return (safe[:190] or item.key.replace(":", "-")[:190]) + ".md"
