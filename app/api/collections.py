"""POST/GET /api/v1/collections, GET/PATCH/DELETE /api/v1/collections/{id}."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import Blueprint, url_for
from pydantic import BaseModel, ConfigDict, Field

from app.api.endpoint import changes_of, db, endpoint, principal, read_db
from app.api.schemas import Page, PageQuery
from app.services import collections

bp = Blueprint("collections", __name__, url_prefix="/api/v1")

_NAME = Field(min_length=1, max_length=200)
_LANGUAGE = r"^[a-z_]{2,40}$"


class Collection(BaseModel):
    id: int
    owner_id: int
    name: str
    description: str
    language: str
    is_shared: bool
    role: Literal["owner", "editor", "reader"] = Field(
        description="what you are to it: its owner, an editor or a reader (by a share, or"
        " as every user when it is shared with everyone)"
    )
    created_at: datetime
    updated_at: datetime


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = _NAME
    description: str = Field("", max_length=5000)
    language: str = Field(
        "english",
        pattern=_LANGUAGE,
        description="a PostgreSQL text search configuration, e.g. english, french; cjk (also"
        " named chinese, japanese or korean) for Chinese, Japanese and Korean text",
    )
    is_shared: bool = Field(False, description="every user may read (and search) it")


class CollectionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    language: str | None = Field(None, pattern=_LANGUAGE)
    is_shared: bool | None = None


@bp.post("/collections")
@endpoint(
    summary="Create a collection",
    tag="collections",
    status=201,
    body=CollectionCreate,
    response=Collection,
    errors=(409, 422),
)
def create_collection(body: CollectionCreate) -> tuple[Collection, dict[str, str]]:
    row = collections.create(db(), principal(), **body.model_dump())
    return Collection(**row), {
        "Location": url_for("collections.get_collection", collection_id=row["id"])
    }


@bp.get("/collections")
@endpoint(
    summary="Your collections and those shared with you, newest first",
    tag="collections",
    query=PageQuery,
    response=Page[Collection],
)
def list_collections(query: PageQuery) -> Page[Collection]:
    rows, total = collections.list_page(
        read_db(), principal(), limit=query.limit, offset=query.offset
    )
    return Page[Collection](
        items=[Collection(**r) for r in rows], total=total, limit=query.limit, offset=query.offset
    )


@bp.get("/collections/<int:collection_id>")
@endpoint(summary="One collection", tag="collections", response=Collection, errors=(404,))
def get_collection(collection_id: int) -> Collection:
    return Collection(**collections.get_readable(db(), principal(), collection_id))


@bp.patch("/collections/<int:collection_id>")
@endpoint(
    summary="Change a collection you own",
    tag="collections",
    body=CollectionUpdate,
    response=Collection,
    errors=(404, 409),
)
def update_collection(collection_id: int, body: CollectionUpdate) -> Collection:
    changes = changes_of(body)
    return Collection(**collections.update(db(), principal(), collection_id, changes))


@bp.delete("/collections/<int:collection_id>")
@endpoint(
    summary="Delete a collection you own, with its documents and vectors",
    tag="collections",
    status=204,
    errors=(404,),
)
def delete_collection(collection_id: int) -> None:
    collections.delete(db(), principal(), collection_id)
