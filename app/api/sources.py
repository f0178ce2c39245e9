"""POST/GET /api/v1/sources, GET/PATCH/DELETE /api/v1/sources/{id}, POST .../sync and
GET .../runs: sources kept in sync with a collection (app/services/sources.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, url_for
from pydantic import BaseModel, ConfigDict, Field

from app.api.endpoint import changes_of, db, endpoint, principal, read_db
from app.api.schemas import Page, PageQuery
from app.runtime import runtime
from app.services import sources

bp = Blueprint("sources", __name__, url_prefix="/api/v1")

_SCHEDULE = Field(
    None, ge=15, le=525600, description="minutes between scheduled syncs; null: only on demand"
)


class Source(BaseModel):
    id: int
    collection_id: int
    kind: sources.Kind
    connector: Literal["atlassian"] | None
    name: str
    config: dict[str, Any]
    schedule_minutes: int | None
    paused: bool
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: sources.Kind
    collection_id: int = Field(ge=1, le=2**63 - 1)
    name: str = Field(min_length=1, max_length=200)
    connector: Literal["atlassian"] | None = Field(
        None, description="whose token reads it: atlassian for confluence and jira"
    )
    config: dict[str, Any] = Field(
        description="confluence: base_url, spaces; jira: base_url, jql; web: urls,"
        " allowed_prefixes, max_depth, max_pages, delay_s"
    )
    schedule_minutes: int | None = _SCHEDULE


class SourceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None
    schedule_minutes: int | None = _SCHEDULE
    paused: bool | None = Field(None, description="a paused source is not synced on schedule")


class Run(BaseModel):
    id: int
    source_id: int
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    trigger: Literal["manual", "schedule", "created"]
    added: int
    updated: int
    deleted: int
    unchanged: int
    failed: int
    errors: list[str] = Field(description="the first errors of items that failed")
    error: str | None = Field(description="why the run failed")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@bp.post("/sources")
@endpoint(
    summary="Keep a Confluence space, a Jira query or a website in sync with a collection",
    tag="sources",
    status=201,
    body=SourceCreate,
    response=Source,
    errors=(403, 404, 409, 422),
)
def create_source(body: SourceCreate) -> tuple[Source, dict[str, str]]:
    row = sources.create(db(), principal(), runtime().settings, **body.model_dump())
    return Source(**row), {"Location": url_for("sources.get_source", source_id=row["id"])}


@bp.get("/sources")
@endpoint(summary="Your sources", tag="sources", query=PageQuery, response=Page[Source])
def list_sources(query: PageQuery) -> Page[Source]:
    rows, total = sources.list_page(read_db(), principal(), limit=query.limit, offset=query.offset)
    items = [Source(**row) for row in rows]
    return Page[Source](items=items, total=total, limit=query.limit, offset=query.offset)


@bp.get("/sources/<int:source_id>")
@endpoint(summary="One source", tag="sources", response=Source, errors=(404,))
def get_source(source_id: int) -> Source:
    return Source(**sources.get(db(), principal(), source_id))


@bp.patch("/sources/<int:source_id>")
@endpoint(
    summary="Rename, reconfigure, reschedule, pause or resume a source",
    tag="sources",
    body=SourceUpdate,
    response=Source,
    errors=(404, 409, 422),
)
def update_source(source_id: int, body: SourceUpdate) -> Source:
    changes = changes_of(body, nullable=("schedule_minutes",))
    return Source(**sources.update(db(), principal(), source_id, changes, runtime().settings))


@bp.delete("/sources/<int:source_id>")
@endpoint(
    summary="Delete a source and the documents it brought in",
    tag="sources",
    status=204,
    errors=(404,),
)
def delete_source(source_id: int) -> None:
    sources.delete(db(), principal(), source_id)


@bp.post("/sources/<int:source_id>/sync")
@endpoint(
    summary="Sync a source now (409 while a run is queued or running)",
    tag="sources",
    status=202,
    response=Run,
    errors=(404, 409),
)
def sync_source(source_id: int) -> Run:
    return Run(**sources.sync_now(db(), principal(), source_id, runtime().settings))


@bp.get("/sources/<int:source_id>/runs")
@endpoint(
    summary="A source's runs, newest first, with their counts and errors",
    tag="sources",
    query=PageQuery,
    response=Page[Run],
    errors=(404,),
)
def list_runs(source_id: int, query: PageQuery) -> Page[Run]:
    rows, total = sources.runs_page(
        read_db(), principal(), source_id, limit=query.limit, offset=query.offset
    )
    return Page[Run](
        items=[Run(**row) for row in rows], total=total, limit=query.limit, offset=query.offset
    )
