"""Passages a user may read: one chunk by id, and a document's text pieced from its chunks."""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import NotFound
from app.repositories import Conn, Row
from app.repositories import chunks as chunk_repo
from app.repositories.documents import StoredDocument
from app.services import documents
from app.services.tokens import Principal


@dataclass(frozen=True)
class DocumentText:
    document: StoredDocument
    text: str
    truncated: bool  # the text goes on beyond `max_chars`


def chunk(conn: Conn, who: Principal, chunk_id: int) -> Row:
    """The chunk, or NotFound (also when it is in a collection the user may not read)."""
    row = chunk_repo.get_readable(conn, chunk_id, who.user_id)
    if row is None:
        raise NotFound(f"no chunk {chunk_id}")
    return row


def document_text(conn: Conn, who: Principal, document_id: int, max_chars: int) -> DocumentText:
    """The document's extracted text, at most `max_chars` of it, rebuilt from its chunks.

    Chunks overlap (a few sentences carried into the next one): each span is taken once.
    """
    document = documents.get(conn, who, document_id)
    rows = chunk_repo.spans_before(conn, document_id, max_chars)
    text, covered = "", 0
    for row in rows:
        start, piece = row["char_start"], row["text"]
        if start < covered and len(piece) == row["char_end"] - start:  # the span's own text
            piece = piece[covered - start :]
        elif text and start > covered:  # what lay between (blank lines) was not kept
            piece = "\n\n" + piece
        text += piece
        covered = max(covered, row["char_end"])
    truncated = len(text) > max_chars or len(rows) < document.chunk_count
    return DocumentText(document, text[:max_chars], truncated)
