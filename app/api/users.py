"""GET /api/v1/me; admin only: POST/GET /api/v1/users, GET /api/v1/users/{id}."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import Blueprint, url_for
from pydantic import BaseModel, ConfigDict, Field

from app.api.endpoint import db, endpoint, principal
from app.api.schemas import Page, PageQuery
from app.services import users

bp = Blueprint("users", __name__, url_prefix="/api/v1")


class User(BaseModel):
    id: int
    name: str
    role: Literal["admin", "user"]
    created_at: datetime


class Me(User):
    token_id: int | None = Field(
        description="the API token this request used (null: a JWT of the OpenID provider)"
    )
    scopes: list[str]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: users.UserName
    role: Literal["admin", "user"] = "user"


class UserCreated(User):
    token: str = Field(description="the user's first API token; shown only this once")


@bp.get("/me")
@endpoint(summary="The calling user", tag="users", response=Me)
def me() -> Me:
    who = principal()
    user = users.get(db(), who.user_id)
    return Me(**user, token_id=who.token_id, scopes=list(who.scopes))


@bp.post("/users")
@endpoint(
    summary="Create a user and its first token (admin)",
    tag="users",
    auth="admin",
    status=201,
    body=UserCreate,
    response=UserCreated,
    errors=(409, 422),
)
def create_user(body: UserCreate) -> tuple[UserCreated, dict[str, str]]:
    user, token = users.create(db(), name=body.name, role=body.role)
    location = url_for("users.get_user", user_id=user["id"])
    return UserCreated(**user, token=token), {"Location": location}


@bp.get("/users")
@endpoint(
    summary="List users (admin)", tag="users", auth="admin", query=PageQuery, response=Page[User]
)
def list_users(query: PageQuery) -> Page[User]:
    rows, total = users.list_page(db(), limit=query.limit, offset=query.offset)
    items = [User(**row) for row in rows]
    return Page[User](items=items, total=total, limit=query.limit, offset=query.offset)


@bp.get("/users/<int:user_id>")
@endpoint(summary="One user (admin)", tag="users", auth="admin", response=User, errors=(404,))
def get_user(user_id: int) -> User:
    return User(**users.get(db(), user_id))
