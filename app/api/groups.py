"""Admin only: GET/POST /api/v1/groups, GET/DELETE /api/v1/groups/{id}, GET/POST
/api/v1/groups/{id}/members and DELETE /api/v1/groups/{id}/members/{user_id}."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import Blueprint, url_for
from pydantic import BaseModel, ConfigDict, Field

from app.api.endpoint import db, endpoint
from app.api.schemas import Page, PageQuery
from app.services import groups

bp = Blueprint("groups", __name__, url_prefix="/api/v1")

Source = Literal["provider", "admin"]


class Group(BaseModel):
    id: int
    name: str
    source: Source = Field(description="who made it: the provider's groups claim or an admin")
    created_at: datetime


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: groups.GroupName
    source: Source = Field(
        "admin",
        description="admin: its members are the ones admins add; provider: also every user"
        " whose token's groups claim names it",
    )


class Member(BaseModel):
    user_id: int
    name: str = Field(description="the user's name")
    source: Source = Field(
        description="provider: from the user's latest token's groups claim; admin: added here"
    )
    created_at: datetime


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int = Field(ge=1, le=2**63 - 1)


@bp.get("/groups")
@endpoint(
    summary="List groups (admin)", tag="groups", auth="admin", query=PageQuery, response=Page[Group]
)
def list_groups(query: PageQuery) -> Page[Group]:
    rows, total = groups.list_page(db(), limit=query.limit, offset=query.offset)
    items = [Group(**row) for row in rows]
    return Page[Group](items=items, total=total, limit=query.limit, offset=query.offset)


@bp.post("/groups")
@endpoint(
    summary="Define a group (admin)",
    tag="groups",
    auth="admin",
    status=201,
    body=GroupCreate,
    response=Group,
    errors=(409, 422),
)
def create_group(body: GroupCreate) -> tuple[Group, dict[str, str]]:
    group = groups.create(db(), body.name, body.source)
    location = url_for("groups.get_group", group_id=group["id"])
    return Group(**group), {"Location": location}


@bp.get("/groups/<int:group_id>")
@endpoint(summary="One group (admin)", tag="groups", auth="admin", response=Group, errors=(404,))
def get_group(group_id: int) -> Group:
    return Group(**groups.get(db(), group_id))


@bp.delete("/groups/<int:group_id>")
@endpoint(
    summary="Delete a group, its memberships and the shares naming it (admin)",
    tag="groups",
    auth="admin",
    status=204,
    errors=(404,),
)
def delete_group(group_id: int) -> None:
    groups.delete(db(), group_id)


@bp.get("/groups/<int:group_id>/members")
@endpoint(
    summary="A group's members (admin)",
    tag="groups",
    auth="admin",
    query=PageQuery,
    response=Page[Member],
    errors=(404,),
)
def list_members(group_id: int, query: PageQuery) -> Page[Member]:
    rows, total = groups.members_page(db(), group_id, limit=query.limit, offset=query.offset)
    items = [Member(**row) for row in rows]
    return Page[Member](items=items, total=total, limit=query.limit, offset=query.offset)


@bp.post("/groups/<int:group_id>/members")
@endpoint(
    summary="Add a user to a group (admin)",
    tag="groups",
    auth="admin",
    status=201,
    body=MemberAdd,
    response=Member,
    errors=(404, 409, 422),
)
def add_member(group_id: int, body: MemberAdd) -> Member:
    return Member(**groups.add_member(db(), group_id, body.user_id))


@bp.delete("/groups/<int:group_id>/members/<int:user_id>")
@endpoint(
    summary="Remove a user's admin-made membership (admin)",
    tag="groups",
    auth="admin",
    status=204,
    errors=(404,),
)
def remove_member(group_id: int, user_id: int) -> None:
    groups.remove_member(db(), group_id, user_id)
