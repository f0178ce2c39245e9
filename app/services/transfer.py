"""Collection export and import as JSON lines: documents, chunks and vectors, streamed.

The file is a header line, then each document followed by its chunks, then an end line:

    {"kind": "postrag.collection", "format": 1, "collection": {...}, "embedding": {...}}
    {"kind": "document", "ref": 1, "filename": ..., "content_base64": ..., ...}
    {"kind": "chunk", "document": 1, "ordinal": 0, "text": ..., "embedding_base64": ...}
    {"kind": "end", "documents": 1, "chunks": 1}

Vectors are base64 of little-endian float32, exact. `embedding` names the model they came from;
an import into a postrag whose embedding model is the same (provider, name, dimension) stores
them as they are, any other queues every document to be embedded again. Both directions hold
one document at a time in memory. An import is one transaction: a bad or truncated file stores
nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pydantic

from app.db import scope
from app.errors import AppError, PayloadTooLarge, ValidationFailed
from app.providers.embeddings import Embedder
from app.repositories import Conn, Row
from app.repositories import documents as document_repo
from app.repositories import embedding_spaces as space_repo
from app.repositories import transfer as transfer_repo
from app.repositories.embedding_spaces import EmbeddingSpace
from app.services import collections, document_metadata, documents, extraction, spaces
from app.services.chunking import Chunk
from app.services.tokens import Principal
from app.settings import Settings
from app.storable import reject_unstorable_text
from app.strict_json import dumps, loads

KIND = "postrag.collection"
FORMAT = 1
CONTENT_TYPE = "application/x-ndjson"
UNIT_TOLERANCE = 1e-3  # float32 rounding is about 1e-7 per element


class _Line(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")


class CollectionFields(_Line):
    name: str = pydantic.Field(min_length=1, max_length=200)
    description: str = pydantic.Field("", max_length=5000)
    language: str = pydantic.Field("english", pattern=r"^[a-z_]{2,40}$")


class EmbeddingIdentity(_Line):
    provider: str
    model: str
    dimension: int = pydantic.Field(ge=1, le=16000)


class Header(_Line):
    kind: Literal["postrag.collection"]
    format: Literal[1]
    collection: CollectionFields
    embedding: EmbeddingIdentity | None = None


class DocumentLine(_Line):
    kind: Literal["document"]
    ref: int
    filename: str = pydantic.Field(min_length=1, max_length=1000)
    title: str = pydantic.Field("", max_length=500)
    content_type: str = pydantic.Field(min_length=1, max_length=200)
    sha256: str = pydantic.Field(pattern=r"^[0-9a-f]{64}$")
    metadata: dict[str, Any] = {}
    status: str
    content_base64: str


_INT4 = 2**31 - 1  # the chunk columns are integer; COPY would wrap larger values silently


class ChunkLine(_Line):
    kind: Literal["chunk"]
    document: int
    ordinal: int = pydantic.Field(ge=0, le=_INT4)
    text: str
    token_count: int = pydantic.Field(ge=0, le=_INT4)
    page: int | None = pydantic.Field(None, ge=1, le=_INT4)
    char_start: int = pydantic.Field(ge=0, le=_INT4)
    char_end: int = pydantic.Field(ge=0, le=_INT4)
    heading_path: list[str] = []
    embedding_base64: str | None = None

    @pydantic.model_validator(mode="after")
    def _span(self) -> ChunkLine:
        if self.char_end < self.char_start:
            raise ValueError("char_end is before char_start")
        return self


class EndLine(_Line):
    kind: Literal["end"]
    documents: int
    chunks: int


@dataclass
class ImportSummary:
    collection: Row
    documents: int
    chunks: int
    vectors_kept: bool  # False: every document was queued to be embedded again
    queued: int


# -- export ----------------------------------------------------------------------------------


def _dump(line: dict[str, Any]) -> str:
    return dumps(line, ensure_ascii=False, default=str) + "\n"


def export_collection(conn: Conn, who: Principal, collection_id: int) -> Iterator[tuple[str, str]]:
    """(kind, JSON line) pairs of an owned collection, from one consistent snapshot.

    A generator holding a read-only repeatable-read transaction on `conn` until it is exhausted
    or closed; 404 (NotFound) before the first line if the caller does not own the collection.
    """
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        collection = collections.get_owned(conn, who, collection_id)
        with scope.acting_as_owner(conn):  # which space is searched is nobody's data
            space = space_repo.current_ready(conn)
        ids = transfer_repo.document_ids(conn, collection_id)
        yield "header", _dump(_header(collection, space, len(ids)))
        chunks = 0
        for ref, document_id in enumerate(ids, start=1):
            row = transfer_repo.document(conn, document_id)
            if row is None:
                continue
            yield "document", _dump(_document(ref, row))
            for chunk in transfer_repo.chunks_with_vectors(
                conn, document_id, space.id if space else None
            ):
                chunks += 1
                yield "chunk", _dump(_chunk(ref, chunk))
        yield "end", _dump({"kind": "end", "documents": len(ids), "chunks": chunks})


def _header(collection: Row, space: EmbeddingSpace | None, documents: int) -> dict[str, Any]:
    return {
        "kind": KIND,
        "format": FORMAT,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "collection": {
            "name": collection["name"],
            "description": collection["description"],
            "language": collection["language"],
        },
        "embedding": None
        if space is None
        else {
            "provider": space.provider,
            "model": space.model,
            "dimension": space.dimension,
        },
        "documents": documents,
    }


def _document(ref: int, row: Row) -> dict[str, Any]:
    return {
        "kind": "document",
        "ref": ref,
        "filename": row["filename"],
        "title": row["title"],
        "content_type": row["content_type"],
        "sha256": row["sha256"],
        "metadata": row["metadata"],
        "status": row["status"],
        "created_at": row["created_at"].isoformat(),
        "content_base64": base64.b64encode(bytes(row["content"])).decode("ascii"),
    }


def _chunk(ref: int, row: Row) -> dict[str, Any]:
    vector = row["embedding"]
    encoded = None
    if vector is not None:
        values = vector.to_numpy() if hasattr(vector, "to_numpy") else vector  # pgvector's Vector
        encoded = base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode("ascii")
    return {
        "kind": "chunk",
        "document": ref,
        "ordinal": row["ordinal"],
        "text": row["text"],
        "token_count": row["token_count"],
        "page": row["page"],
        "char_start": row["char_start"],
        "char_end": row["char_end"],
        "heading_path": list(row["heading_path"]),
        "embedding_base64": encoded,
    }


# -- import ----------------------------------------------------------------------------------


def _bad(line_no: int, message: str) -> ValidationFailed:
    return ValidationFailed.on_field(
        "line",
        message,
        at=(line_no,),
        type="invalid_line",
        detail=f"line {line_no} of the import file: {message}",
    )


def _decode(line_no: int, raw: bytes | str) -> dict[str, Any]:
    """The line as a JSON object whose text PostgreSQL can store, or a 422 naming the line."""
    try:
        data = loads(raw)
    except (ValueError, RecursionError) as exc:
        raise _bad(line_no, f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _bad(line_no, "not a JSON object")
    try:
        reject_unstorable_text(data, "line")
    except AppError as exc:
        raise _bad(line_no, exc.detail) from None
    return data


def _parse(line_no: int, data: dict[str, Any], model: type[pydantic.BaseModel]) -> Any:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _bad(line_no, f"{where}: {first['msg']}") from None


def read_lines(stream: Any, max_line_bytes: int) -> Iterator[bytes]:
    """The lines of a binary stream (a file, or a request body: unbuffered, so buffered here),
    read in large blocks; 413 for a line over the limit, before it is all in memory."""
    reader = stream if isinstance(stream, io.BufferedIOBase) else io.BufferedReader(stream, 1 << 20)
    while line := reader.readline(max_line_bytes + 1):
        if len(line) > max_line_bytes:
            raise PayloadTooLarge(
                f"a line of the import file is longer than {max_line_bytes} bytes"
            )
        yield line


def max_line_bytes(settings: Settings) -> int:
    """The longest line an import may have: a document of the largest size, in base64, and JSON."""
    return settings.max_upload_bytes * 4 // 3 + 1024 * 1024


def import_collection(
    conn: Conn,
    who: Principal,
    lines: Iterable[bytes | str],
    *,
    settings: Settings,
    embedder: Embedder,
    name: str | None = None,
) -> ImportSummary:
    """Create a collection of `who` from an export file's lines, in one transaction."""
    numbered = ((n, raw) for n, raw in enumerate(lines, start=1) if raw.strip())
    first = next(numbered, None)
    if first is None:
        raise _bad(1, "the file is empty")
    header: Header = _parse(first[0], _decode(*first), Header)
    with scope.acting_as_owner(conn):  # the worker's space (made by the first worker if none)
        space = spaces.ensure_space(conn, embedder, max_attempts=settings.job_max_attempts)
    here = (space.provider, space.model, space.dimension)
    given = header.embedding
    keep = given is not None and (given.provider, given.model, given.dimension) == here
    with conn.transaction():
        collection = collections.create(
            conn,
            who,
            name=name or header.collection.name,
            description=header.collection.description,
            language=header.collection.language,
            is_shared=False,
        )
        importer = _Importer(conn, who, settings, collection["id"], space, keep)
        line_no = first[0]
        for line_no, raw in numbered:
            data = _decode(line_no, raw)
            kind = data.get("kind")
            if kind == "document":
                importer.document(line_no, _parse(line_no, data, DocumentLine))
            elif kind == "chunk":
                importer.chunk(line_no, _parse(line_no, data, ChunkLine))
            elif kind == "end":
                importer.end(line_no, _parse(line_no, data, EndLine))
                break
            else:
                raise _bad(line_no, "expected a document, chunk or end line")
        else:
            raise _bad(line_no, "the file ends early: it has no end line")
    return ImportSummary(collection, importer.documents, importer.chunks, keep, importer.queued)


def _unit_length(vector: np.ndarray) -> bool:
    """Stored vectors have length 1, as embedders make them, so that cosine distance (summed in
    float32 by pgvector) is never NaN: it is for zeros, NaNs (False here) and tiny values."""
    return bool(abs(np.linalg.norm(vector.astype(np.float64)) - 1.0) <= UNIT_TOLERANCE)


class _Importer:
    """Writes documents as their lines come, each with its chunks once the next one starts."""

    def __init__(
        self,
        conn: Conn,
        who: Principal,
        settings: Settings,
        collection_id: int,
        space: EmbeddingSpace,
        keep: bool,
    ) -> None:
        self.conn, self.who, self.settings = conn, who, settings
        self.collection_id, self.space, self.keep = collection_id, space, keep
        self.documents = self.chunks = self.queued = 0
        self.current: tuple[int, int, DocumentLine] | None = None  # (ref, id, line)
        self.pending: list[Chunk] = []
        self.vectors: list[np.ndarray] = []

    def document(self, line_no: int, line: DocumentLine) -> None:
        self._flush()
        try:
            content = base64.b64decode(line.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise _bad(line_no, "content_base64 is not base64") from None
        if len(content) > self.settings.max_upload_bytes:
            raise _bad(
                line_no,
                f"the document has {len(content)} bytes; the limit is"
                f" {self.settings.max_upload_bytes}",
            )
        sha256 = hashlib.sha256(content)
        if sha256.hexdigest() != line.sha256:
            raise _bad(line_no, "the content does not match its sha256")
        filename = documents.clean_filename(line.filename)
        try:  # the same formats and metadata as an upload, named the same way
            content_type = extraction.detect_format(filename, line.content_type, content)
            document_metadata.check(line.metadata)
        except AppError as exc:
            raise _bad(line_no, exc.detail) from None
        row = document_repo.insert(
            self.conn,
            collection_id=self.collection_id,
            filename=filename,
            title=line.title,
            content_type=content_type,
            sha256=sha256.digest(),
            content=content,
            metadata=line.metadata,
        )
        if row is None:
            raise _bad(line_no, "the same content appears twice in the file")
        self.documents += 1
        self.current = (line.ref, row.id, line)

    def chunk(self, line_no: int, line: ChunkLine) -> None:
        if self.current is None or line.document != self.current[0]:
            raise _bad(line_no, "a chunk must follow the document it belongs to")
        self.chunks += 1
        if not self.keep or self.current[2].status != "indexed":
            return  # the document is embedded again from its content
        if line.embedding_base64 is None:
            raise _bad(line_no, "the chunk has no vector in the file's embedding space")
        try:
            raw = base64.b64decode(line.embedding_base64, validate=True)
        except (binascii.Error, ValueError):
            raise _bad(line_no, "embedding_base64 is not base64") from None
        vector = np.frombuffer(raw, dtype="<f4") if len(raw) % 4 == 0 else np.zeros(0)
        if vector.shape[0] != self.space.dimension or not _unit_length(vector):
            raise _bad(
                line_no,
                f"the vector must be {self.space.dimension} finite float32s of length 1,"
                " as exported",
            )
        self.pending.append(
            Chunk(
                line.ordinal,
                line.text,
                line.token_count,
                line.page,
                line.char_start,
                line.char_end,
                tuple(line.heading_path),
            )
        )
        self.vectors.append(vector.astype(np.float32))

    def end(self, line_no: int, line: EndLine) -> None:
        self._flush()
        if (line.documents, line.chunks) != (self.documents, self.chunks):
            raise _bad(
                line_no,
                f"the file announces {line.documents} documents and {line.chunks} chunks but"
                f" holds {self.documents} and {self.chunks}",
            )

    def _flush(self) -> None:
        """Store the current document's chunks and vectors, or queue it to be embedded again."""
        if self.current is None:
            return
        _, document_id, line = self.current
        if self.keep and line.status == "indexed":
            ordinals = [c.ordinal for c in self.pending]
            if len(set(ordinals)) != len(ordinals):
                raise ValidationFailed(f"document {line.filename!r}: chunk ordinals repeat")
            vectors = np.vstack(self.vectors) if self.vectors else np.zeros((0, 1), np.float32)
            document_repo.replace_chunks(
                self.conn, document_id, self.space.id, self.pending, vectors
            )
            document_repo.set_status(self.conn, document_id, "indexed")
        else:
            document_repo.set_status(self.conn, document_id, "queued")
            documents.enqueue(self.conn, document_id, self.settings)
            self.queued += 1
        self.current, self.pending, self.vectors = None, [], []
