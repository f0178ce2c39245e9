"""SQL for an ingestion's staging area: its new chunks and vectors, written batch by batch into
a temporary table of the worker's session, then swapped for the document's chunks at once.

Each batch is its own short transaction, so a document of any size is embedded in bounded
memory, and the document keeps its previous complete set of chunks until the swap's single
transaction. The table belongs to the worker's database session: whatever a failed, stopped or
cancelled ingestion staged is dropped by the next one, or with the session if the worker dies.
Chunk ids are drawn from the identity sequence as batches are staged (see copy_in in
app/repositories/documents.py for why the rows take a detour through a temporary table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from app.repositories import Conn
from app.repositories import documents as document_repo
from app.strict_json import jsonb

_TABLE = "ingest_staging"
_COLUMNS = [
    ("id", "int8"),
    *document_repo.CHUNK_FIELDS,
    ("metadata", "jsonb"),
    ("embedding", "vector"),
]


def reset(conn: Conn) -> None:
    """An empty staging table for a new ingestion (the previous one's rows are dropped)."""
    definitions = ", ".join(f"{name} {kind}" for name, kind in _COLUMNS)
    conn.execute(f"DROP TABLE IF EXISTS pg_temp.{_TABLE}")
    conn.execute(f"CREATE TEMPORARY TABLE {_TABLE} ({definitions})")


def stage(conn: Conn, chunks: Sequence[Any], vectors: np.ndarray) -> None:
    """Add chunks (with ordinal, text, token_count, page, char_start, char_end, heading_path
    and ocr_confidence, kept in the metadata) and their vectors to the staging table."""
    if not chunks:
        return
    ids = document_repo.draw_chunk_ids(conn, len(chunks))
    names = ", ".join(name for name, _ in _COLUMNS)
    with conn.cursor().copy(f"COPY pg_temp.{_TABLE} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([kind for _, kind in _COLUMNS])
        for chunk_id, chunk, vector in zip(ids, chunks, vectors, strict=True):
            values = document_repo.chunk_values(chunk)
            copy.write_row((chunk_id, *values, jsonb(chunk_metadata(chunk)), vector))


def chunk_metadata(chunk: Any) -> dict[str, Any]:
    confidence = getattr(chunk, "ocr_confidence", None)
    return {} if confidence is None else {"ocr_confidence": confidence}


def swap(conn: Conn, document_id: int, space_id: int) -> int:
    """In the caller's transaction: replace the document's chunks and vectors with the staged
    ones; the number of chunks. The document's row is locked first, so that a change of its
    access set (a source's sync) waits for the new chunks, or they see the change: the trigger
    that copies the set into new chunks reads the document as its statement starts."""
    conn.execute("SELECT 1 FROM documents WHERE id = %(id)s FOR NO KEY UPDATE", {"id": document_id})
    document_repo.clear_chunks(conn, document_id)
    inserted = conn.execute(
        "INSERT INTO document_chunks (id, document_id, ordinal, text, token_count, page,"
        " char_start, char_end, heading_path, metadata) OVERRIDING SYSTEM VALUE"
        " SELECT id, %(document)s, ordinal, text, token_count, page, char_start, char_end,"
        f" heading_path, metadata FROM pg_temp.{_TABLE} ORDER BY ordinal",
        {"document": document_id},
    ).rowcount
    move_vectors(conn, space_id)
    conn.execute(f"DROP TABLE pg_temp.{_TABLE}")
    return inserted


def move_vectors(conn: Conn, space_id: int) -> None:
    """In the caller's transaction: the staged vectors into the space (after their chunks)."""
    conn.execute(
        "INSERT INTO chunk_embeddings (chunk_id, space_id, embedding)"
        f" SELECT id, %(space)s, embedding FROM pg_temp.{_TABLE}",
        {"space": space_id},
    )
