"""SQL behind collection export: a collection's documents one at a time, and their chunks."""

from __future__ import annotations

from app.repositories import Conn, Row


def document_ids(conn: Conn, collection_id: int) -> list[int]:
    rows = conn.execute(
        "SELECT id FROM documents WHERE collection_id = %(id)s ORDER BY id", {"id": collection_id}
    ).fetchall()
    return [r["id"] for r in rows]


def document(conn: Conn, document_id: int) -> Row | None:
    """One document with its original bytes (exports read them one document at a time)."""
    return conn.execute(
        "SELECT id, filename, title, content_type, encode(sha256, 'hex') AS sha256, content,"
        " metadata, status, created_at FROM documents WHERE id = %(id)s",
        {"id": document_id},
    ).fetchone()


def chunks_with_vectors(conn: Conn, document_id: int, space_id: int | None) -> list[Row]:
    """The document's chunks in order, each with its vector in `space_id` (None if it has none)."""
    return conn.execute(
        "SELECT c.ordinal, c.text, c.token_count, c.page, c.char_start, c.char_end,"
        " c.heading_path, e.embedding FROM document_chunks c"
        " LEFT JOIN chunk_embeddings e ON e.chunk_id = c.id AND e.space_id = %(space_id)s"
        " WHERE c.document_id = %(id)s ORDER BY c.ordinal",
        {"id": document_id, "space_id": space_id},
    ).fetchall()
