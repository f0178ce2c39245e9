"""SQL for passages one at a time: a chunk a user may read, the chunks that make up a
document's text, and the chunks around search hits."""

from __future__ import annotations

from app.repositories import Conn, Row
from app.repositories import collections as collection_repo

_READABLE = f"k.collection_id IN (SELECT c.id FROM collections c WHERE {collection_repo.READABLE})"


def get_readable(conn: Conn, chunk_id: int, user_id: int) -> Row | None:
    """The chunk with its document's name and title, when the user may read its collection."""
    row: Row | None = conn.execute(
        "SELECT k.id, k.document_id, k.collection_id, d.filename, d.title, k.ordinal, k.text,"
        " k.page, k.char_start, k.char_end, k.heading_path, k.metadata"
        " FROM document_chunks k JOIN documents d ON d.id = k.document_id"
        f" WHERE k.id = %(id)s AND {_READABLE}",
        {"id": chunk_id, "user_id": user_id},
    ).fetchone()
    return row


def spans_before(conn: Conn, document_id: int, max_chars: int) -> list[Row]:
    """The document's chunks (text and span) in order, those starting before `max_chars`."""
    return conn.execute(
        "SELECT k.text, k.char_start, k.char_end FROM document_chunks k"
        " WHERE k.document_id = %(id)s AND k.char_start < %(max_chars)s ORDER BY k.ordinal",
        {"id": document_id, "max_chars": max_chars},
    ).fetchall()


def neighbours(conn: Conn, hits: list[tuple[int, int, int]], radius: int) -> list[Row]:
    """The chunks within `radius` places of each (collection id, document id, ordinal), in order.

    Only the hits' own documents, in their own collections: what row-level security lets the
    connection's user read of them.
    """
    if not hits:
        return []
    collection_ids, document_ids, ordinals = (list(column) for column in zip(*hits, strict=True))
    return conn.execute(
        "SELECT DISTINCT k.document_id, k.ordinal, k.text, k.char_start, k.char_end,"
        " k.heading_path"
        " FROM document_chunks k"
        " JOIN unnest(%(collection_ids)s::bigint[], %(document_ids)s::bigint[],"
        " %(ordinals)s::integer[]) AS h(collection_id, document_id, ordinal)"
        " ON k.collection_id = h.collection_id AND k.document_id = h.document_id"
        " AND k.ordinal BETWEEN h.ordinal - %(radius)s AND h.ordinal + %(radius)s"
        " ORDER BY k.document_id, k.ordinal",
        {
            "collection_ids": collection_ids,
            "document_ids": document_ids,
            "ordinals": ordinals,
            "radius": radius,
        },
    ).fetchall()
