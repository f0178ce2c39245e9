"""Running an evaluation: every judged query searched as the set's owner, scored, aggregated.

Each query goes through the real search service with the run's configuration. A query judged on
documents is scored on the ranked documents (each at its best hit's place), one judged on chunks
only on the ranked chunks; a query without a relevant judgment (grade > 0) is not scored. Over a
named embedding space, only the queries whose relevant items are covered (every chunk of each
judged document, or each judged chunk, has a vector in that space) are scored, and `coverage`
says what share of the judged items is covered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from statistics import fmean
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from app.db import scope
from app.errors import AppError, ServiceUnavailable, ValidationFailed
from app.providers.embeddings import Embedder, QueryEmbedders
from app.providers.rerank import make_reranker
from app.repositories import Conn, Row
from app.repositories import evaluation_runs as run_repo
from app.repositories import evaluations as evaluation_repo
from app.repositories.evaluation_runs import QueryResult
from app.repositories.search import Hit
from app.services import search as search_service
from app.services import wider_context
from app.services.evaluation_metrics import ndcg_at_k, percentile, recall_at_k, reciprocal_rank
from app.services.search import SearchDeps
from app.services.tokens import Principal
from app.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_DEPTH = 100  # hits searched per query, recall@k's k (the search API's top_k limit)
RANKED_KEPT = 10  # the top keys stored per query


class RunConfig(BaseModel):
    """How a run searches: as POST /api/v1/search would, plus the embedding space and depth."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["hybrid", "semantic", "fulltext"] = "hybrid"
    rrf_k: int = Field(60, ge=1, le=1000, description="hybrid: the k of reciprocal rank fusion")
    semantic_weight: float = Field(1.0, ge=0, le=10)
    fulltext_weight: float = Field(1.0, ge=0, le=10)
    min_similarity: float | None = Field(
        None, ge=0, le=1, description="semantic leg: the lowest similarity (default: yours)"
    )
    rerank: bool | None = Field(None, description="default: on when a reranker is configured")
    rerank_candidates: int | None = Field(None, ge=1, le=200)
    context_window: int = Field(0, ge=0, le=wider_context.MAX_TOKENS)
    space_id: int | None = Field(
        None,
        ge=1,
        le=2**62,
        description="the embedding space searched (ready or being filled; default: the ready"
        " one); a space being filled evaluates only the queries it covers",
    )
    k: int = Field(DEFAULT_DEPTH, ge=1, le=100, description="hits searched per query, recall@k's k")


def checked_config(config: Any) -> RunConfig:
    """The config validated with its defaults; 422 on `config` naming the first bad field."""
    try:
        return RunConfig.model_validate(config)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        at = tuple(first["loc"])
        where = ".".join(map(str, at)) or "config"
        detail = f"config.{where}: {first['msg']}"
        raise ValidationFailed.on_field(
            "config", first["msg"], type=first["type"], at=at, detail=detail
        ) from None


@dataclass(frozen=True)
class _Judged:
    """A query as it is scored: its keys (document or chunk ids) and their grades."""

    id: int
    text: str
    level: str  # document | chunk
    grades: dict[int, int]

    @classmethod
    def of(cls, row: Row) -> _Judged:
        relevant = row["relevant"]
        if relevant and all(j["chunk_id"] is not None for j in relevant):
            chunk_grades = {j["chunk_id"]: j["grade"] for j in relevant}
            return cls(row["id"], row["text"], "chunk", chunk_grades)
        grades: dict[int, int] = {}
        for j in relevant:  # a chunk's grade counts for its document
            grades[j["document_id"]] = max(grades.get(j["document_id"], 0), j["grade"])
        return cls(row["id"], row["text"], "document", grades)

    @property
    def relevant(self) -> set[int]:
        return {key for key, grade in self.grades.items() if grade > 0}

    def ranking(self, hits: list[Hit]) -> list[int]:
        keys = [h.chunk_id if self.level == "chunk" else h.document_id for h in hits]
        return list(dict.fromkeys(keys))  # each at its first (best) place


def _covered(
    conn: Conn, space_id: int | None, queries: list[_Judged]
) -> tuple[list[_Judged], float | None]:
    """The queries a run over `space_id` scores, and the share of judged items covered."""
    if space_id is None:
        return queries, None
    documents = {k for q in queries if q.level == "document" for k in q.relevant}
    chunks = {k for q in queries if q.level == "chunk" for k in q.relevant}
    covered = {
        "document": evaluation_repo.covered_documents(conn, space_id, sorted(documents)),
        "chunk": evaluation_repo.covered_chunks(conn, space_id, sorted(chunks)),
    }
    judged = len(documents) + len(chunks)
    share = (len(covered["document"]) + len(covered["chunk"])) / judged if judged else 0.0
    return [q for q in queries if q.relevant <= covered[q.level]], share


def _request(config: RunConfig, query: str, collection_id: int) -> search_service.SearchRequest:
    return search_service.SearchRequest(
        query=query,
        mode=config.mode,
        top_k=max(config.k, 10),  # nDCG@10 looks at 10 hits whatever recall's k
        min_similarity=config.min_similarity,
        collection_ids=[collection_id],
        rrf_k=config.rrf_k,
        semantic_weight=config.semantic_weight,
        fulltext_weight=config.fulltext_weight,
        context_window=config.context_window,
        rerank=config.rerank,
        rerank_candidates=config.rerank_candidates,
        space_id=config.space_id,
    )


def _searched(
    conn: Conn, who: Principal, config: RunConfig, text: str, collection_id: int, deps: SearchDeps
) -> search_service.SearchResult:
    """One query's search on the worker's own connection; a search that could not run as
    configured (no reranker, the embedding model down, no ready space: its warnings) fails the
    run, whose numbers would otherwise describe another configuration."""
    found = search_service.search(
        search_service.holding(conn), who, _request(config, text, collection_id), deps
    )
    if found.warnings:
        raise ServiceUnavailable(f"a search did not run as configured: {found.warnings[0]}")
    return found


def _score(
    conn: Conn,
    run: Row,
    deps: SearchDeps,
    progress: Callable[[int], Any],
) -> tuple[list[QueryResult], dict[str, Any]]:
    config = checked_config(run["config"])
    who = Principal(run["owner_id"], "", "user", None, ("read",))
    rows = evaluation_repo.all_queries(conn, run["set_id"])
    judged = [q for q in map(_Judged.of, rows) if q.relevant]
    scored, coverage = _covered(conn, config.space_id, judged)
    results = []
    if scored:  # untimed: the first search loads the query embedder, no query's latency
        _searched(conn, who, config, scored[0].text, run["collection_id"], deps)
    for query in scored:
        started = time.perf_counter()
        found = _searched(conn, who, config, query.text, run["collection_id"], deps)
        latency_ms = (time.perf_counter() - started) * 1000
        ranked = query.ranking(found.hits)
        results.append(
            QueryResult(
                query_id=query.id,
                level=query.level,
                ndcg_at_10=ndcg_at_k(ranked, query.grades, 10),
                recall_at_k=recall_at_k(ranked, query.grades, config.k),
                reciprocal_rank=reciprocal_rank(ranked, query.grades),
                latency_ms=latency_ms,
                ranked=ranked[:RANKED_KEPT],
            )
        )
        progress(1)
    return results, _aggregate(results, len(rows), len(judged), coverage, config.k)


def _aggregate(
    results: list[QueryResult], queries: int, judged: int, coverage: float | None, k: int
) -> dict[str, Any]:
    def mean(values: list[float]) -> float | None:
        return fmean(values) if values else None

    latencies = [r.latency_ms for r in results]
    return {
        "queries": queries,
        "judged": judged,
        "evaluated": len(results),
        "coverage": coverage,
        "k": k,
        "ndcg_at_10": mean([r.ndcg_at_10 for r in results]),
        "recall_at_k": mean([r.recall_at_k for r in results]),
        "mrr": mean([r.reciprocal_rank for r in results]),
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p95_ms": percentile(latencies, 95),
    }


@contextmanager
def search_deps(conn: Conn, settings: Settings, embedder: Embedder) -> Iterator[SearchDeps]:
    """What a run's searches need outside a request (a worker, the CLI), closed afterwards:
    the embedder of any space, made on demand, and the configured reranker."""
    embedders = QueryEmbedders(settings, embedder)
    reranker = make_reranker(settings)
    try:
        yield SearchDeps(
            settings, embedders, search_service.iterative_scans_available(conn), reranker
        )
    finally:
        embedders.close()
        if reranker is not None:
            reranker.close()


def execute(
    conn: Conn,
    run_id: int,
    deps: SearchDeps,
    progress: Callable[[int], Any] = lambda n: None,
) -> None:
    """Search and score a running run, then store it done (or failed, with why).

    `conn` is the tables' owner's (a worker's or the CLI's); the searches act as the set's owner.
    `progress` is called after each scored query (a worker renews its lease there).
    """
    run = run_repo.get_run(conn, run_id, None)
    if run is None or run["state"] != "running":
        return  # deleted with its set, or finished already
    try:
        with scope.acting_as(conn, run["owner_id"]):
            results, metrics = _score(conn, run, deps, progress)
    except AppError as exc:
        fail(conn, run_id, exc.detail)
        return
    with conn.transaction():
        run_repo.insert_results(conn, run_id, results)
        run_repo.finish(conn, run_id, state="done", metrics=metrics, error=None)


def fail(conn: Conn, run_id: int, error: str) -> None:
    """Store the run failed with why (a run that ended already stays as it is)."""
    with conn.transaction():
        run_repo.finish(conn, run_id, state="failed", metrics=None, error=error)
