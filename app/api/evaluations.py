"""Evaluation runs: POST/GET /api/v1/evaluations (a set searched with one configuration, in the
background), GET /{id} with its metrics, GET /{id}/results per query, GET /compare?a=&b=."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, url_for
from pydantic import BaseModel, ConfigDict, Field

from app.api.endpoint import db, endpoint, principal, read_db
from app.api.schemas import Page, PageQuery
from app.runtime import runtime
from app.services import evaluation_runs
from app.services.evaluating import RunConfig

bp = Blueprint("evaluations", __name__, url_prefix="/api/v1")


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    set_id: int = Field(ge=1, le=2**62)
    config: RunConfig = Field(default_factory=lambda: RunConfig.model_validate({}))


class RunMetrics(BaseModel):
    queries: int = Field(description="the set's queries")
    judged: int = Field(description="with a relevant judgment (grade > 0)")
    evaluated: int = Field(description="scored: the judged ones the space covers")
    coverage: float | None = Field(
        description="with a space named: the share of judged documents (or chunks) whose"
        " chunks all have a vector in it"
    )
    k: int
    ndcg_at_10: float | None = Field(description="mean nDCG@10")
    recall_at_k: float | None = Field(description="mean recall@k")
    mrr: float | None = Field(description="mean reciprocal rank")
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class EvaluationRun(BaseModel):
    id: int
    set_id: int
    config: dict[str, Any]
    state: Literal["running", "done", "failed"]
    metrics: RunMetrics | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class RunListQuery(PageQuery):
    set_id: int | None = Field(None, ge=1, le=2**62, description="only this set's runs")


class QueryResult(BaseModel):
    query_id: int
    external_id: str | None
    query: str
    level: Literal["document", "chunk"]
    ndcg_at_10: float
    recall_at_k: float
    reciprocal_rank: float
    latency_ms: float
    ranked: list[int] = Field(description="the top 10 document (or chunk) ids, best first")


class CompareQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: int = Field(ge=1, le=2**62, description="the baseline run")
    b: int = Field(ge=1, le=2**62, description="the run compared with it")


class MetricDifference(BaseModel):
    metric: Literal["ndcg@10", "recall@k", "mrr", "latency_ms"]
    queries: int
    mean_a: float
    mean_b: float
    difference: float = Field(description="mean_b - mean_a")
    low: float = Field(description="the confidence interval of the difference")
    high: float
    confidence: float
    p_value: float
    significant: bool = Field(description="the interval leaves out 0")


class Comparison(BaseModel):
    a: int
    b: int
    set_id: int
    queries: int = Field(description="compared: the queries both runs evaluated")
    queries_a: int
    queries_b: int
    metrics: list[MetricDifference]


@bp.post("/evaluations")
@endpoint(
    summary="Run an evaluation set with a search configuration, in the background",
    tag="evaluations",
    status=202,
    body=RunCreate,
    response=EvaluationRun,
    errors=(404, 422),
)
def start_run(body: RunCreate) -> tuple[EvaluationRun, dict[str, str]]:
    row = evaluation_runs.start(
        db(), principal(), body.set_id, body.config.model_dump(), runtime().settings, queue=True
    )
    return EvaluationRun(**row), {"Location": url_for(".get_run", run_id=row["id"])}


@bp.get("/evaluations")
@endpoint(
    summary="Your evaluation runs, newest first",
    tag="evaluations",
    query=RunListQuery,
    response=Page[EvaluationRun],
    errors=(404,),
)
def list_runs(query: RunListQuery) -> Page[EvaluationRun]:
    rows, total = evaluation_runs.list_page(
        read_db(), principal(), query.set_id, limit=query.limit, offset=query.offset
    )
    items = [EvaluationRun(**r) for r in rows]
    return Page[EvaluationRun](items=items, total=total, limit=query.limit, offset=query.offset)


@bp.get("/evaluations/compare")
@endpoint(
    summary="Compare two runs of a set on their common queries (paired bootstrap, 95% CI)",
    tag="evaluations",
    query=CompareQuery,
    response=Comparison,
    errors=(404, 422),
)
def compare_runs(query: CompareQuery) -> Comparison:
    return Comparison(**evaluation_runs.compare(read_db(), principal(), query.a, query.b))


@bp.get("/evaluations/<int:run_id>")
@endpoint(summary="One evaluation run", tag="evaluations", response=EvaluationRun, errors=(404,))
def get_run(run_id: int) -> EvaluationRun:
    return EvaluationRun(**evaluation_runs.get(read_db(), principal(), run_id))


@bp.get("/evaluations/<int:run_id>/results")
@endpoint(
    summary="A run's per-query results",
    tag="evaluations",
    query=PageQuery,
    response=Page[QueryResult],
    errors=(404,),
)
def list_results(run_id: int, query: PageQuery) -> Page[QueryResult]:
    rows, total = evaluation_runs.results(
        read_db(), principal(), run_id, limit=query.limit, offset=query.offset
    )
    items = [QueryResult(**r, query=r["text"]) for r in rows]
    return Page[QueryResult](items=items, total=total, limit=query.limit, offset=query.offset)
