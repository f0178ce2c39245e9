"""SQL for a big document embedded in ranges by every worker (V2_26): its chunks without vectors
until each range fills them, then swapped for the document's chunks in one transaction.

A split's drafts (`split_chunks`) are shared by the workers that take its ranges, unlike the
staging table of one worker's session (app/repositories/staging.py). Each batch of vectors is
counted off the split's `chunks_left` under the split row's lock, so exactly one transaction
sees it reach 0: the one that swaps. Deleting the split row drops its drafts (cascade).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from app.repositories import Conn, Row
from app.repositories import documents as document_repo
from app.repositories.staging import chunk_metadata
from app.strict_json import jsonb

_DRAFT_COLUMNS = [
    ("split_id", "int8"),
    *document_repo.CHUNK_FIELDS,
    ("metadata", "jsonb"),
]


def create(conn: Conn, *, document_id: int, space_id: int, title: str) -> int:
    """In the caller's transaction: a new split of the document, with no drafts yet; its id.
    The document must have none (see `delete`)."""
    row = conn.execute(
        "INSERT INTO document_splits (document_id, space_id, title, chunks_left)"
        " VALUES (%(document)s, %(space)s, %(title)s, 0) RETURNING id",
        {"document": document_id, "space": space_id, "title": title},
    ).fetchone()
    assert row is not None
    return int(row["id"])


def add_drafts(conn: Conn, split_id: int, chunks: Sequence[Any]) -> None:
    """In the caller's transaction: add chunks (without vectors) to the split, by binary COPY,
    and count them in its `chunks_left`."""
    rows = (
        (split_id, *document_repo.chunk_values(chunk), jsonb(chunk_metadata(chunk)))
        for chunk in chunks
    )
    document_repo.copy_in(conn, "split_chunks", _DRAFT_COLUMNS, rows)
    conn.execute(
        "UPDATE document_splits SET chunks_left = chunks_left + %(count)s WHERE id = %(id)s",
        {"id": split_id, "count": len(chunks)},
    )


def delete(conn: Conn, document_id: int) -> bool:
    """In the caller's transaction: drop the document's split, if any, with its drafts."""
    row = conn.execute(
        "DELETE FROM document_splits WHERE document_id = %(id)s RETURNING id", {"id": document_id}
    ).fetchone()
    return row is not None


def lock(conn: Conn, split_id: int) -> Row | None:
    """In the caller's transaction: lock the split row (None: it is gone, its work with it)."""
    return conn.execute(
        "SELECT id, document_id, space_id, title, chunks_left FROM document_splits"
        " WHERE id = %(id)s FOR UPDATE",
        {"id": split_id},
    ).fetchone()


def unembedded(conn: Conn, split_id: int, first: int, end: int) -> list[Row]:
    """The drafts of ordinals [first, end) still without a vector, in order."""
    return conn.execute(
        "SELECT s.ordinal, s.text, s.heading_path, d.title FROM split_chunks s"
        " JOIN document_splits d ON d.id = s.split_id"
        " WHERE s.split_id = %(id)s AND s.ordinal >= %(first)s AND s.ordinal < %(end)s"
        " AND s.embedding IS NULL ORDER BY s.ordinal",
        {"id": split_id, "first": first, "end": end},
    ).fetchall()


def store_vectors(
    conn: Conn, split_id: int, ordinals: Sequence[int], vectors: np.ndarray
) -> tuple[int, int]:
    """In the caller's transaction, after `lock`: give the drafts their vectors (those that
    have none yet: a range taken over stores each chunk once) and count them off the split;
    (how many were stored, how many chunks are left without a vector)."""
    conn.execute(
        "CREATE TEMPORARY TABLE split_vectors (ordinal int4, embedding vector) ON COMMIT DROP"
    )
    with conn.cursor().copy("COPY split_vectors FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "vector"])
        for ordinal, vector in zip(ordinals, vectors, strict=True):
            copy.write_row((ordinal, vector))
    stored = conn.execute(
        "UPDATE split_chunks s SET embedding = v.embedding FROM split_vectors v"
        " WHERE s.split_id = %(id)s AND s.ordinal = v.ordinal AND s.embedding IS NULL",
        {"id": split_id},
    ).rowcount
    conn.execute("DROP TABLE split_vectors")
    row = conn.execute(
        "UPDATE document_splits SET chunks_left = chunks_left - %(stored)s WHERE id = %(id)s"
        " RETURNING chunks_left",
        {"id": split_id, "stored": stored},
    ).fetchone()
    assert row is not None  # locked by the caller
    return stored, int(row["chunks_left"])


def swap(conn: Conn, split_id: int, document_id: int, space_id: int) -> int:
    """In the caller's transaction, once every draft has its vector: replace the document's
    chunks and vectors with the drafts and drop the split; the number of chunks. The document
    row is locked first, as in staging.swap (its access set is copied into new chunks)."""
    document_repo.lock(conn, document_id)
    document_repo.clear_chunks(conn, document_id)
    inserted = conn.execute(
        "INSERT INTO document_chunks (document_id, ordinal, text, token_count, page, char_start,"
        " char_end, heading_path, metadata) SELECT %(document)s, ordinal, text, token_count,"
        " page, char_start, char_end, heading_path, metadata FROM split_chunks"
        " WHERE split_id = %(split)s ORDER BY ordinal",
        {"document": document_id, "split": split_id},
    ).rowcount
    conn.execute(
        "INSERT INTO chunk_embeddings (chunk_id, space_id, embedding)"
        " SELECT c.id, %(space)s, s.embedding FROM document_chunks c"
        " JOIN split_chunks s ON s.split_id = %(split)s AND s.ordinal = c.ordinal"
        " WHERE c.document_id = %(document)s",
        {"document": document_id, "split": split_id, "space": space_id},
    )
    conn.execute("DELETE FROM document_splits WHERE id = %(id)s", {"id": split_id})
    return inserted
