"""SQL for documents, their status history, and their chunks and vectors (binary COPY)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from psycopg import sql
from psycopg.rows import class_row

from app.repositories import Conn, Row, returned
from app.repositories import collections as collection_repo
from app.strict_json import jsonb

_COLUMNS = (
    "d.id, d.collection_id, d.owner_id, d.filename, d.title, d.content_type,"
    " encode(d.sha256, 'hex') AS sha256, d.size_bytes, d.metadata, d.status, d.failed_stage,"
    " d.error, d.created_at, d.updated_at,"
    " (SELECT count(*) FROM document_chunks c WHERE c.document_id = d.id) AS chunk_count,"
    " d.chunks_total, d.chunks_embedded"
)


@dataclass(frozen=True)
class StoredDocument:
    """A document as stored (without its bytes), with its processing state and chunk count."""

    id: int
    collection_id: int
    owner_id: int
    filename: str
    title: str | None
    content_type: str
    sha256: str  # hex
    size_bytes: int
    metadata: dict[str, Any]
    status: str  # queued | extracting | chunking | embedding | indexed | failed
    failed_stage: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    chunk_count: int
    chunks_total: int | None  # of the processing under way or last done; None until chunked
    chunks_embedded: int

    @property
    def stage(self) -> str:
        """Where it is, or for a failed document the stage it failed in."""
        if self.status == "failed" and self.failed_stage:
            return self.failed_stage
        return self.status


# Readable and writable: documents in the collections the user may read, or write (V2_10).
_READABLE = f"d.collection_id IN (SELECT c.id FROM collections c WHERE {collection_repo.READABLE})"
_WRITABLE = f"d.collection_id IN (SELECT c.id FROM collections c WHERE {collection_repo.WRITABLE})"


def insert(
    conn: Conn,
    *,
    collection_id: int,
    filename: str,
    title: str,
    content_type: str,
    sha256: bytes,
    content: bytes,
    metadata: dict[str, Any],
    owner_id: int | None = None,
) -> StoredDocument | None:
    """The new document, or None when the collection already has these bytes or is gone. It is
    owned by the collection's owner whoever uploads it (an editor may), but a source's documents
    by the source's owner (`owner_id`), whose access fetched them and whom ingestion acts as."""
    row = conn.execute(
        "INSERT INTO documents AS d (collection_id, owner_id, filename, title, content_type,"
        " sha256, size_bytes, content, metadata)"
        " SELECT c.id, coalesce(%(owner_id)s::bigint, c.owner_id), %(filename)s, %(title)s,"
        " %(content_type)s, %(sha256)s, %(size)s, %(content)s, %(metadata)s"
        " FROM collections c WHERE c.id = %(collection_id)s"
        " ON CONFLICT (collection_id, sha256) DO NOTHING RETURNING d.id",
        {
            "collection_id": collection_id,
            "owner_id": owner_id,
            "filename": filename,
            "title": title,
            "content_type": content_type,
            "sha256": sha256,
            "size": len(content),
            "content": content,
            "metadata": jsonb(metadata),
        },
    ).fetchone()
    return None if row is None else get(conn, row["id"])


def replace_content(
    conn: Conn,
    document_id: int,
    *,
    title: str,
    content_type: str,
    sha256: bytes,
    content: bytes,
    metadata: dict[str, Any],
) -> None:
    """New content for a document (a source's page changed); its chunks are replaced when it is
    processed again."""
    conn.execute(
        "UPDATE documents SET title = %(title)s, content_type = %(content_type)s,"
        " sha256 = %(sha256)s, size_bytes = %(size)s, content = %(content)s,"
        " metadata = %(metadata)s WHERE id = %(id)s",
        {
            "id": document_id,
            "title": title,
            "content_type": content_type,
            "sha256": sha256,
            "size": len(content),
            "content": content,
            "metadata": jsonb(metadata),
        },
    )


def _documents(conn: Conn, where: str, params: dict[str, Any]) -> list[StoredDocument]:
    with conn.cursor(row_factory=class_row(StoredDocument)) as cur:
        return cur.execute(f"SELECT {_COLUMNS} FROM documents d WHERE {where}", params).fetchall()


def get(conn: Conn, document_id: int) -> StoredDocument | None:
    found = _documents(conn, "d.id = %(id)s", {"id": document_id})
    return found[0] if found else None


def get_readable(conn: Conn, document_id: int, user_id: int) -> StoredDocument | None:
    found = _documents(
        conn, f"d.id = %(id)s AND {_READABLE}", {"id": document_id, "user_id": user_id}
    )
    return found[0] if found else None


def get_by_sha(conn: Conn, collection_id: int, sha256: bytes) -> StoredDocument | None:
    found = _documents(
        conn,
        "d.collection_id = %(collection_id)s AND d.sha256 = %(sha)s",
        {"collection_id": collection_id, "sha": sha256},
    )
    return found[0] if found else None


def list_readable(
    conn: Conn,
    user_id: int,
    *,
    collection_id: int | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[StoredDocument], int]:
    where = _READABLE
    params: dict[str, Any] = {
        "user_id": user_id,
        "collection_id": collection_id,
        "status": status,
        "limit": limit,
        "offset": offset,
    }
    if collection_id is not None:
        where += " AND d.collection_id = %(collection_id)s"
    if status is not None:
        where += " AND d.status = %(status)s"
    rows = _documents(
        conn,
        f"{where} ORDER BY d.created_at DESC, d.id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )
    total = returned(
        conn.execute(f"SELECT count(*) AS n FROM documents d WHERE {where}", params).fetchone()
    )
    return rows, int(total["n"])


def content(conn: Conn, document_id: int) -> Row | None:
    return conn.execute(
        "SELECT filename, content_type, content, title FROM documents WHERE id = %(id)s",
        {"id": document_id},
    ).fetchone()


def _lock_collection_of(conn: Conn, document_id: int, user_id: int | None = None) -> None:
    """Share-lock the document's collection before touching chunks.

    A change of the collection's language rebuilds its full-text index under the row's update
    lock; chunk writers take this lock first so the two queue instead of deadlocking.
    """
    conn.execute(
        "SELECT 1 FROM collections c JOIN documents d ON d.collection_id = c.id"
        f" WHERE d.id = %(id)s AND (%(user_id)s::bigint IS NULL OR {_WRITABLE})"
        " FOR SHARE OF c",
        {"id": document_id, "user_id": user_id},
    )


def delete(conn: Conn, document_id: int, user_id: int | None) -> bool:
    """Delete the document if `user_id` may write its collection (its owner or an editor);
    with None, whoever may (a source's own documents, deleted as the tables' owner)."""
    _lock_collection_of(conn, document_id, user_id)  # never a collection the user cannot write
    row = conn.execute(
        "DELETE FROM documents d WHERE d.id = %(id)s"
        f" AND (%(user_id)s::bigint IS NULL OR {_WRITABLE}) RETURNING d.id",
        {"id": document_id, "user_id": user_id},
    ).fetchone()
    return row is not None


_RESTARTS = ("queued", "extracting")


def set_status(
    conn: Conn,
    document_id: int,
    status: str,
    *,
    error: str | None = None,
    failed_stage: str | None = None,
) -> None:
    """Move the document to `status` and append it to the history (one transaction, caller's).

    Queued again or extracted anew, its progress starts again: no chunks counted or embedded.
    """
    restart = ", chunks_total = NULL, chunks_embedded = 0" if status in _RESTARTS else ""
    conn.execute(
        "UPDATE documents SET status = %(status)s, error = %(error)s,"
        f" failed_stage = %(failed_stage)s{restart} WHERE id = %(id)s",
        {"id": document_id, "status": status, "error": error, "failed_stage": failed_stage},
    )
    conn.execute(
        "INSERT INTO document_status_history (document_id, status, error)"
        " VALUES (%(id)s, %(status)s, %(error)s)",
        {"id": document_id, "status": status, "error": error},
    )


def set_chunks_total(conn: Conn, document_id: int, total: int) -> None:
    """The number of chunks the processing under way makes (known once it has chunked)."""
    conn.execute(
        "UPDATE documents SET chunks_total = %(total)s WHERE id = %(id)s",
        {"id": document_id, "total": total},
    )


def add_chunks_embedded(conn: Conn, document_id: int, count: int) -> None:
    """Count `count` more chunks embedded (one UPDATE per batch)."""
    conn.execute(
        "UPDATE documents SET chunks_embedded = chunks_embedded + %(count)s WHERE id = %(id)s",
        {"id": document_id, "count": count},
    )


def history(conn: Conn, document_id: int) -> list[Row]:
    return conn.execute(
        "SELECT status, error, created_at FROM document_status_history"
        " WHERE document_id = %(id)s ORDER BY created_at, id",
        {"id": document_id},
    ).fetchall()


def chunks(conn: Conn, document_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    rows = conn.execute(
        "SELECT id, ordinal, text, token_count, page, char_start, char_end, heading_path, metadata"
        " FROM document_chunks WHERE document_id = %(id)s ORDER BY ordinal"
        " LIMIT %(limit)s OFFSET %(offset)s",
        {"id": document_id, "limit": limit, "offset": offset},
    ).fetchall()
    total = returned(
        conn.execute(
            "SELECT count(*) AS n FROM document_chunks WHERE document_id = %(id)s",
            {"id": document_id},
        ).fetchone()
    )
    return rows, int(total["n"])


def lock(conn: Conn, document_id: int) -> bool:
    """In the caller's transaction: lock the document's row against changes (False: gone)."""
    row = conn.execute(
        "SELECT 1 FROM documents WHERE id = %(id)s FOR NO KEY UPDATE", {"id": document_id}
    ).fetchone()
    return row is not None


def clear_chunks(conn: Conn, document_id: int) -> None:
    """In the caller's transaction: drop the document's chunks (vectors cascade)."""
    _lock_collection_of(conn, document_id)
    conn.execute("DELETE FROM document_chunks WHERE document_id = %(id)s", {"id": document_id})


# A chunk's own columns and their COPY types, in the order chunks are written (also staging.py).
CHUNK_FIELDS = [
    ("ordinal", "int4"),
    ("text", "text"),
    ("token_count", "int4"),
    ("page", "int4"),
    ("char_start", "int4"),
    ("char_end", "int4"),
    ("heading_path", "text[]"),
]


def chunk_values(chunk: Any) -> tuple[Any, ...]:
    """A chunk's values in the order of CHUNK_FIELDS."""
    return (
        chunk.ordinal,
        chunk.text,
        chunk.token_count,
        chunk.page,
        chunk.char_start,
        chunk.char_end,
        list(chunk.heading_path),
    )


def draw_chunk_ids(conn: Conn, count: int) -> list[int]:
    """`count` new chunk ids from the identity sequence, drawn up front for binary COPY."""
    row = conn.execute(
        "SELECT array_agg(nextval(pg_get_serial_sequence('document_chunks', 'id'))) AS ids"
        " FROM generate_series(1, %(n)s)",
        {"n": count},
    ).fetchone()
    return list(row["ids"]) if row is not None and row["ids"] else []


def replace_chunks(
    conn: Conn, document_id: int, space_id: int, chunks: Sequence[Any], vectors: np.ndarray
) -> None:
    """In the caller's transaction: drop the document's chunks (vectors cascade) and COPY new ones.

    Ids come from the identity sequence up front, so chunks and their vectors go in with two
    binary COPYs instead of one INSERT ... RETURNING per row.
    """
    clear_chunks(conn, document_id)
    if not chunks:
        return
    ids = draw_chunk_ids(conn, len(chunks))
    rows = (
        (chunk_id, document_id, *chunk_values(chunk), jsonb({}))
        for chunk_id, chunk in zip(ids, chunks, strict=True)
    )
    copy_in(
        conn,
        "document_chunks",
        [("id", "int8"), ("document_id", "int8"), *CHUNK_FIELDS, ("metadata", "jsonb")],
        rows,
    )
    copy_embeddings(conn, space_id, ids, vectors)


def copy_embeddings(
    conn: Conn, space_id: int, chunk_ids: Sequence[int], vectors: np.ndarray
) -> None:
    rows = (
        (chunk_id, space_id, vector) for chunk_id, vector in zip(chunk_ids, vectors, strict=True)
    )
    copy_in(
        conn,
        "chunk_embeddings",
        [("chunk_id", "int8"), ("space_id", "int8"), ("embedding", "vector")],
        rows,
    )


def copy_in(
    conn: Conn, table: str, columns: list[tuple[str, str]], rows: Iterable[tuple[Any, ...]]
) -> None:
    """In the caller's transaction: binary COPY into a temporary table, then INSERT from it.

    COPY FROM cannot write to tables under row-level security, but an INSERT can, with every
    policy checked; the staging table is the transaction's own and goes away at commit.
    `columns` are (name, type) pairs; the types are PostgreSQL's names for our own columns.
    """
    staging = sql.Identifier(f"{table}_staging")
    names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
    definitions = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in columns
    )
    conn.execute(
        sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(staging, definitions)
    )
    with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(staging)) as copy:
        copy.set_types([kind for _, kind in columns])
        for row in rows:
            copy.write_row(row)
    # The ids were drawn from the identity sequence up front (see replace_chunks).
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {}").format(
            sql.Identifier(table), names, names, staging
        )
    )
    conn.execute(sql.SQL("DROP TABLE {}").format(staging))


def readable_placement(conn: Conn, user_id: int, wanted: list[int]) -> list[Row]:
    """Id and collection of those of the `wanted` documents the user may read."""
    return conn.execute(
        f"SELECT d.id, d.collection_id FROM documents d WHERE d.id = ANY(%(wanted)s)"
        f" AND {_READABLE} ORDER BY d.id",
        {"user_id": user_id, "wanted": wanted},
    ).fetchall()
