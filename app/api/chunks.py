"""GET /api/v1/chunks/{id}: one passage with where it is, the target of search citations."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from pydantic import BaseModel

from app.api.endpoint import endpoint, principal, read_db
from app.services import passages

bp = Blueprint("chunks", __name__, url_prefix="/api/v1")


class Passage(BaseModel):
    id: int
    document_id: int
    collection_id: int
    filename: str
    title: str
    ordinal: int
    text: str
    page: int | None
    char_start: int
    char_end: int
    heading_path: list[str]
    metadata: dict[str, Any]


@bp.get("/chunks/<int:chunk_id>")
@endpoint(
    summary="One chunk of a document you can read, with its document and span",
    tag="documents",
    response=Passage,
    errors=(404,),
)
def get_chunk(chunk_id: int) -> Passage:
    row = passages.chunk(read_db(), principal(), chunk_id)
    return Passage(**{**row, "title": row["title"] or ""})
