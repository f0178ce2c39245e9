"""Pydantic models shared by every API area: pagination and problem details."""

from __future__ import annotations

from typing import Generic, TypeVar

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


class ProblemError(BaseModel):
    """One invalid field of a 422."""

    loc: list[str | int] = Field(
        description="where: body, query or path, then the field and the path inside it"
    )
    msg: str = Field(description="what is wrong")
    type: str = Field(description="a stable name of the kind of error")


class Problem(BaseModel):
    """RFC 9457 problem details (also the data of a stream's `error` event)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = Field(None, description="the X-Request-ID of the request")
    errors: list[ProblemError] | None = Field(
        None, description="for 422: each invalid field, where it is and what is wrong"
    )
    provider: str | None = Field(
        None, description="for 502, 503 and 504 from a language-model provider: which one"
    )
    mcp_server: str | None = Field(
        None, description="for 502, 503 and 504 from an MCP server: which one (its name)"
    )
