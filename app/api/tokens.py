"""POST/GET /api/v1/tokens, GET/DELETE /api/v1/tokens/{id}: the caller's own API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, url_for
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.api.endpoint import db, endpoint, principal
from app.api.schemas import Page, PageQuery
from app.services import tokens

bp = Blueprint("tokens", __name__, url_prefix="/api/v1")


class Token(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="shown in clear so a leaked token can be recognised")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    scopes: list[Literal["read", "write"]] | None = Field(
        None, min_length=1, description="default: the scopes of the token making the request"
    )
    expires_at: AwareDatetime | None = Field(None, description="ISO 8601 with a time zone")


class TokenCreated(Token):
    token: str = Field(description="the secret; shown only this once")


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "prefix": f"{tokens.TOKEN_MARK}_{row['prefix']}"}


@bp.post("/tokens")
@endpoint(
    summary="Create a token for yourself",
    tag="tokens",
    status=201,
    body=TokenCreate,
    response=TokenCreated,
    errors=(403, 422),
)
def create_token(body: TokenCreate) -> tuple[TokenCreated, dict[str, str]]:
    scopes = [str(scope) for scope in body.scopes] if body.scopes else None
    row, secret = tokens.create(
        db(), principal(), name=body.name, scopes=scopes, expires_at=body.expires_at
    )
    location = url_for("tokens.get_token", token_id=row["id"])
    return TokenCreated(**_public(row), token=secret), {"Location": location}


@bp.get("/tokens")
@endpoint(summary="Your tokens, newest first", tag="tokens", query=PageQuery, response=Page[Token])
def list_tokens(query: PageQuery) -> Page[Token]:
    rows, total = tokens.list_own(db(), principal(), limit=query.limit, offset=query.offset)
    items = [Token(**_public(row)) for row in rows]
    return Page[Token](items=items, total=total, limit=query.limit, offset=query.offset)


@bp.get("/tokens/<int:token_id>")
@endpoint(summary="One of your tokens", tag="tokens", response=Token, errors=(404,))
def get_token(token_id: int) -> Token:
    return Token(**_public(tokens.get_own(db(), principal(), token_id)))


@bp.delete("/tokens/<int:token_id>")
@endpoint(summary="Revoke one of your tokens", tag="tokens", status=204, errors=(404,))
def revoke_token(token_id: int) -> None:
    tokens.revoke_own(db(), principal(), token_id)
