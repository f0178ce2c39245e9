"""GET /api/v1/collections/{id}/export and POST /api/v1/collections/import (JSON lines)."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, request, stream_with_context
from pydantic import BaseModel, ConfigDict, Field

from app.api.collections import Collection
from app.api.documents import attachment
from app.api.endpoint import db, endpoint, principal, release_db
from app.db import scope
from app.errors import UnsupportedMediaType
from app.runtime import runtime
from app.services import collections, transfer

bp = Blueprint("transfer", __name__, url_prefix="/api/v1")

IMPORT_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")
MAX_IMPORT_BYTES = 8 * 1024**3  # streamed, one document in memory at a time


class ImportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        "",
        max_length=200,
        description="the new collection's name (empty or absent: the name in the file)",
    )


class ImportResult(BaseModel):
    collection: Collection
    documents: int
    chunks: int
    vectors_kept: bool = Field(
        description="the file's vectors were stored; false: every document is being embedded again"
    )
    queued: int = Field(description="documents queued for (re-)embedding")


@bp.get("/collections/<int:collection_id>/export")
@endpoint(
    summary="Download a collection you own as JSON lines (documents, chunks, vectors)",
    tag="collections",
    errors=(404,),
    raw_response=transfer.CONTENT_TYPE,
)
def export_collection(collection_id: int) -> Response:
    who = principal()
    collection = collections.get_owned(db(), who, collection_id)  # 404 before streaming
    pool = runtime().pool

    def lines() -> Iterator[str]:
        # A connection of its own: the export's snapshot stays open while the client reads.
        with scope.user_connection(pool, who.user_id) as conn:
            for _, line in transfer.export_collection(conn, who, collection_id):
                yield line

    release_db()  # the stream has a connection of its own; this one goes back now
    return Response(
        stream_with_context(lines()),
        mimetype=transfer.CONTENT_TYPE,
        headers={
            "Content-Disposition": attachment(f"{collection['name']}.jsonl"),
            "X-Accel-Buffering": "no",
        },
    )


@bp.post("/collections/import")
@endpoint(
    summary="Create a collection from an export file (application/x-ndjson body)",
    tag="collections",
    status=201,
    query=ImportQuery,
    response=ImportResult,
    errors=(409, 413),
    raw_body=transfer.CONTENT_TYPE,
)
def import_collection(query: ImportQuery) -> ImportResult:
    if request.mimetype not in IMPORT_TYPES:
        raise UnsupportedMediaType(f"send the export file as {transfer.CONTENT_TYPE}")
    request.max_content_length = MAX_IMPORT_BYTES  # more than one upload; read as a stream
    settings = runtime().settings
    summary = transfer.import_collection(
        db(),
        principal(),
        transfer.read_lines(request.stream, transfer.max_line_bytes(settings)),
        settings=settings,
        embedder=runtime().embedder,
        name=query.name.strip() or None,
    )
    return ImportResult(
        collection=Collection(**summary.collection),
        documents=summary.documents,
        chunks=summary.chunks,
        vectors_kept=summary.vectors_kept,
        queued=summary.queued,
    )
