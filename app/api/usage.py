"""GET /api/v1/me/usage (yours) and GET /api/v1/usage (admins: everyone's), aggregated."""

from __future__ import annotations

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from app.api.endpoint import db, endpoint, principal
from app.runtime import runtime
from app.services import usage

bp = Blueprint("usage", __name__, url_prefix="/api/v1")


class UsageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(7, ge=1, le=366, description="how far back")


class AdminUsageQuery(UsageQuery):
    user_id: int | None = Field(None, ge=1, le=2**63 - 1, description="one user only")


class UsageRow(BaseModel):
    user_id: int
    user_name: str
    method: str
    route: str
    status: int
    requests: int
    avg_latency_ms: int
    max_latency_ms: int
    prompt_tokens: int = Field(description="LLM prompt tokens")
    completion_tokens: int = Field(description="LLM completion tokens")


class Usage(BaseModel):
    days: int
    items: list[UsageRow] = Field(description="per user, route, method and status")
    llm_tokens_today: int | None = Field(None, description="yours, this UTC day")
    llm_tokens_per_day: int | None = Field(description="the budget (null: none)")


def _budget() -> int | None:
    budget: int = runtime().settings.llm_tokens_per_day
    return budget or None


@bp.get("/me/usage")
@endpoint(summary="Your requests and LLM tokens", tag="usage", query=UsageQuery, response=Usage)
def my_usage(query: UsageQuery) -> Usage:
    who = principal()
    rows = usage.summary(db(), who.user_id, query.days)
    return Usage(
        days=query.days,
        items=[UsageRow(**r) for r in rows],
        llm_tokens_today=usage.llm_tokens_today(db(), who.user_id),
        llm_tokens_per_day=_budget(),
    )


@bp.get("/usage")
@endpoint(
    summary="Everyone's requests and LLM tokens",
    tag="usage",
    auth="admin",
    query=AdminUsageQuery,
    response=Usage,
)
def all_usage(query: AdminUsageQuery) -> Usage:
    rows = usage.summary(db(), query.user_id, query.days)
    return Usage(
        days=query.days,
        items=[UsageRow(**r) for r in rows],
        llm_tokens_today=None,
        llm_tokens_per_day=_budget(),
    )
