"""Pydantic models shared by every API area: pagination and problem details."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

MAX_PAGE_SIZE = 100
MAX_OFFSET = 2**31 - 1  # well inside PostgreSQL's bigint OFFSET


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=MAX_PAGE_SIZE, description="page size")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="items to skip")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="items in all pages")
    limit: int
    offset: int


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        None, description="for 422: each invalid field, where it is and what is wrong"
    )
