"""POST/GET /api/v1/collections/{id}/shares, GET/DELETE /api/v1/collections/{id}/shares/{share_id}
and GET /api/v1/collections/{id}/access: sharing with users and groups (owner or admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, url_for
from pydantic import BaseModel, ConfigDict, Field

from app.api.endpoint import db, endpoint, principal
from app.api.schemas import Page, PageQuery
from app.services import shares

bp = Blueprint("shares", __name__, url_prefix="/api/v1")


class SharePrincipal(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: shares.PrincipalType
    name: str = Field(min_length=1, max_length=255, description="the user's or the group's name")


class SharedWith(SharePrincipal):
    id: int = Field(description="the user's or the group's id")


class ShareCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principal: SharePrincipal
    role: shares.Role = Field(
        description="reader: search, chat and read documents; editor: also upload, reindex and"
        " delete documents"
    )


class Share(BaseModel):
    id: int
    collection_id: int
    principal: SharedWith
    role: shares.Role
    created_at: datetime
    updated_at: datetime


class Reason(BaseModel):
    via: Literal["owner", "share", "group"] = Field(
        description="owner: the collection is theirs; share: a share names them; group: a share"
        " names a group they belong to"
    )
    role: Literal["owner", "reader", "editor"]
    share_id: int | None = None
    group: str | None = Field(None, description="the group, for via=group")


class UserAccess(BaseModel):
    user_id: int
    name: str
    can_read: bool = True
    can_write: bool = Field(description="may add, reindex and delete documents")
    because: list[Reason]


class GroupAccess(BaseModel):
    share_id: int
    group: str
    role: shares.Role


class Access(Page[UserAccess]):
    collection_id: int
    everyone: Literal["reader"] | None = Field(
        description="reader when the collection is shared with every user (is_shared)"
    )
    groups: list[GroupAccess] = Field(
        description="the groups it is shared with; their members are among `items` (with"
        " via=group) only for admins"
    )


def _share(row: dict[str, Any]) -> Share:
    principal = SharedWith(
        type=row["principal_type"], id=row["principal_id"], name=row["principal_name"]
    )
    return Share(**row, principal=principal)


@bp.post("/collections/<int:collection_id>/shares")
@endpoint(
    summary="Share a collection with a user or a group (owner or admin)",
    tag="sharing",
    status=201,
    also=(200,),  # the principal had a share already: it now has this role
    body=ShareCreate,
    response=Share,
    errors=(403, 404, 422),
)
def create_share(collection_id: int, body: ShareCreate) -> tuple[Share, dict[str, str], int]:
    grantee = shares.Grantee(body.principal.type, body.principal.name)
    row, created = shares.share(db(), principal(), collection_id, grantee, body.role)
    location = url_for("shares.get_share", collection_id=collection_id, share_id=row["id"])
    return _share(row), {"Location": location}, 201 if created else 200


@bp.get("/collections/<int:collection_id>/shares")
@endpoint(
    summary="A collection's shares (owner or admin)",
    tag="sharing",
    query=PageQuery,
    response=Page[Share],
    errors=(403, 404),
)
def list_shares(collection_id: int, query: PageQuery) -> Page[Share]:
    rows, total = shares.list_page(
        db(), principal(), collection_id, limit=query.limit, offset=query.offset
    )
    items = [_share(row) for row in rows]
    return Page[Share](items=items, total=total, limit=query.limit, offset=query.offset)


@bp.get("/collections/<int:collection_id>/shares/<int:share_id>")
@endpoint(
    summary="One share of a collection (owner or admin)",
    tag="sharing",
    response=Share,
    errors=(403, 404),
)
def get_share(collection_id: int, share_id: int) -> Share:
    return _share(shares.get(db(), principal(), collection_id, share_id))


@bp.delete("/collections/<int:collection_id>/shares/<int:share_id>")
@endpoint(
    summary="End a share (owner or admin)",
    tag="sharing",
    status=204,
    errors=(403, 404),
)
def delete_share(collection_id: int, share_id: int) -> None:
    shares.revoke(db(), principal(), collection_id, share_id)


@bp.get("/collections/<int:collection_id>/access")
@endpoint(
    summary="Who can read and write a collection, and why (owner or admin)",
    tag="sharing",
    query=PageQuery,
    response=Access,
    errors=(403, 404),
)
def get_access(collection_id: int, query: PageQuery) -> Access:
    collection, rows, total, groups = shares.access(
        db(), principal(), collection_id, limit=query.limit, offset=query.offset
    )
    return Access(
        collection_id=collection_id,
        everyone="reader" if collection["is_shared"] else None,
        groups=[
            GroupAccess(share_id=g["share_id"], group=g["group_name"], role=g["role"])
            for g in groups
        ],
        items=[UserAccess(**row) for row in rows],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )
