"""Documents: upload (202 + Location), list, read with history, chunks, original content,
delete and reindex. All scoped to the caller (and collections shared with everyone)."""

from __future__ import annotations

import unicodedata
from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from flask import Blueprint, Response, json, request, url_for
from pydantic import BaseModel, ConfigDict, Field

from app.api.endpoint import (
    db,
    endpoint,
    parse_json,
    principal,
    read_db,
    validate,
)
from app.api.schemas import Page, PageQuery
from app.errors import FieldError, UnsupportedMediaType, ValidationFailed
from app.repositories.documents import StoredDocument
from app.runtime import runtime
from app.services import documents
from app.services.documents import Upload
from app.storable import reject_unstorable_text

bp = Blueprint("documents", __name__, url_prefix="/api/v1")

Status = Literal["queued", "extracting", "chunking", "embedding", "indexed", "failed"]


class Document(BaseModel):
    id: int
    collection_id: int
    owner_id: int
    filename: str
    title: str
    content_type: str
    sha256: str
    size_bytes: int
    metadata: dict[str, Any]
    status: Status
    stage: str = Field(description="the step the pipeline is at, or failed in")
    error: str | None
    chunk_count: int
    chunks_total: int | None = Field(
        description="the chunks its processing makes (the one under way, else the last);"
        " null until it is chunked"
    )
    chunks_embedded: int = Field(description="of those, embedded so far")
    created_at: datetime
    updated_at: datetime


class StatusChange(BaseModel):
    status: Status
    error: str | None
    created_at: datetime


class DocumentDetail(Document):
    history: list[StatusChange]


class Chunk(BaseModel):
    id: int
    ordinal: int
    text: str
    token_count: int
    page: int | None
    char_start: int
    char_end: int
    heading_path: list[str]
    metadata: dict[str, Any]


class TextDocument(BaseModel):
    """A document sent as JSON text (stored and processed as plain text)."""

    model_config = ConfigDict(extra="forbid")

    collection_id: int = Field(ge=1, le=2**62)
    text: str = Field(min_length=1)
    title: str = Field("", max_length=500)
    metadata: dict[str, Any] = Field(default_factory=dict)


class FileUpload(BaseModel):
    """multipart/form-data fields of an upload."""

    model_config = ConfigDict(extra="forbid")

    file: bytes = Field(json_schema_extra={"format": "binary"})
    collection_id: int = Field(ge=1, le=2**62)
    metadata: str | None = Field(None, description="a JSON object")
    title: str = Field("", max_length=500)


class UploadQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replace: bool = Field(False, description="re-ingest even if these bytes are already there")


class DocumentQuery(PageQuery):
    collection_id: int | None = Field(None, ge=1, le=2**62)
    status: Status | None = None


def _document(row: StoredDocument) -> dict[str, Any]:
    return {**asdict(row), "stage": row.stage}


def _upload_from_form() -> Upload:
    file = request.files.get("file")
    fields = {key: value for key, value in request.form.items()}
    if file is None:
        missing = FieldError(("file",), "field required", "missing", source="body")
        raise ValidationFailed("the upload has no file", [missing])
    form = validate(FileUpload, {**fields, "file": b"-"}, "body")
    try:
        metadata = json.loads(form.metadata) if form.metadata else {}
    except (ValueError, RecursionError):
        metadata = None
    if not isinstance(metadata, dict):
        not_object = FieldError(("metadata",), "not a JSON object", "dict_type", source="body")
        raise ValidationFailed("metadata must be a JSON object", [not_object])
    reject_unstorable_text(metadata, "metadata", source="body")
    return Upload(
        filename=file.filename or "upload",
        content_type=file.mimetype,
        data=file.read(),
        collection_id=form.collection_id,
        title=form.title,
        metadata=metadata,
    )


def _upload_from_json() -> Upload:
    body = parse_json(TextDocument)
    assert isinstance(body, TextDocument)
    title = body.title or "untitled"
    return Upload(
        filename=title if title.lower().endswith(".txt") else f"{title}.txt",
        content_type="text/plain",
        data=body.text.encode(),
        collection_id=body.collection_id,
        title=body.title,
        metadata=body.metadata,
        detect_format=False,  # JSON text is plain text, whatever its title looks like
    )


@bp.post("/documents")
@endpoint(
    summary="Upload a document (file or JSON text); it is processed in the background",
    tag="documents",
    status=202,
    body=TextDocument,
    multipart=FileUpload,
    query=UploadQuery,
    response=Document,
    also=(200,),  # the same bytes are already in the collection
    errors=(403, 404, 409, 413, 415, 422),
)
def upload_document(query: UploadQuery) -> tuple[Document, dict[str, str], int]:
    if request.mimetype == "multipart/form-data":
        item = _upload_from_form()
    elif request.is_json:
        item = _upload_from_json()
    else:
        raise UnsupportedMediaType("send multipart/form-data with a file, or application/json")
    settings = runtime().settings
    uploaded = documents.upload(db(), principal(), item, settings, replace=query.replace)
    location = url_for("documents.get_document", document_id=uploaded.document.id)
    status = 202 if uploaded.queued else 200
    return Document(**_document(uploaded.document)), {"Location": location}, status


@bp.get("/documents")
@endpoint(
    summary="Documents you can read, newest first",
    tag="documents",
    query=DocumentQuery,
    response=Page[Document],
)
def list_documents(query: DocumentQuery) -> Page[Document]:
    rows, total = documents.list_page(
        read_db(),
        principal(),
        collection_id=query.collection_id,
        status=query.status,
        limit=query.limit,
        offset=query.offset,
    )
    return Page[Document](
        items=[Document(**_document(r)) for r in rows],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


@bp.get("/documents/<int:document_id>")
@endpoint(
    summary="One document: status, stage, error, chunk count and status history",
    tag="documents",
    response=DocumentDetail,
    errors=(404,),
)
def get_document(document_id: int) -> DocumentDetail:
    row, history = documents.detail(db(), principal(), document_id)
    return DocumentDetail(**_document(row), history=[StatusChange(**h) for h in history])


@bp.get("/documents/<int:document_id>/chunks")
@endpoint(
    summary="A document's chunks in order",
    tag="documents",
    query=PageQuery,
    response=Page[Chunk],
    errors=(404,),
)
def list_chunks(document_id: int, query: PageQuery) -> Page[Chunk]:
    rows, total = documents.chunks(
        read_db(), principal(), document_id, limit=query.limit, offset=query.offset
    )
    return Page[Chunk](
        items=[Chunk(**r) for r in rows], total=total, limit=query.limit, offset=query.offset
    )


def attachment(filename: str) -> str:
    """A Content-Disposition any server can send: an ASCII name, and the real one (RFC 6266).

    Control characters become _, and names beyond ASCII go in filename* (UTF-8, percent-encoded).
    """
    name = "".join("_" if unicodedata.category(c) == "Cc" else c for c in filename)
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = ascii_name.replace("\\", "_").replace('"', "_") or "document"
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


@bp.get("/documents/<int:document_id>/content")
@endpoint(summary="The original file, as uploaded", tag="documents", errors=(404,))
def get_content(document_id: int) -> Response:
    row = documents.content(db(), principal(), document_id)
    response = Response(bytes(row["content"]), mimetype=row["content_type"])
    # Always a download, never rendered: an uploaded HTML file must not run in our origin.
    response.headers["Content-Disposition"] = attachment(row["filename"])
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.delete("/documents/<int:document_id>")
@endpoint(
    summary="Delete a document with its chunks and vectors (its collection's owner or an editor)",
    tag="documents",
    status=204,
    errors=(403, 404),
)
def delete_document(document_id: int) -> None:
    documents.delete(db(), principal(), document_id)


@bp.post("/documents/<int:document_id>/reindex")
@endpoint(
    summary="Process a document again (its collection's owner or an editor)",
    tag="documents",
    status=202,
    response=Document,
    errors=(403, 404, 409),
)
def reindex_document(document_id: int) -> tuple[Document, dict[str, str]]:
    settings = runtime().settings
    row = documents.reindex(db(), principal(), document_id, settings)
    return Document(**_document(row)), {
        "Location": url_for("documents.get_document", document_id=document_id)
    }
