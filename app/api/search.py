"""POST /api/v1/search: semantic, full-text (BM25) or hybrid search over your collections."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from typing import Annotated, Any, Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from app.api.endpoint import endpoint, principal, read_db, read_db_while_used
from app.repositories import Conn
from app.repositories.search import Hit
from app.runtime import runtime
from app.services import search, wider_context

bp = Blueprint("search", __name__, url_prefix="/api/v1")

_Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000, pattern=r"\S")
    mode: Literal["hybrid", "semantic", "fulltext"] | None = Field(
        None, description="default: your preference (hybrid unless you changed it)"
    )
    top_k: int | None = Field(None, ge=1, le=100, description="default: your preference (8)")
    min_similarity: float | None = Field(
        None,
        ge=0,
        le=1,
        description="semantic leg only: drop hits whose cosine similarity is lower"
        " (default: your preference, 0.3)",
    )
    collection_ids: list[_Id] | None = Field(
        None, min_length=1, max_length=100, description="default: every collection you may read"
    )
    document_ids: list[_Id] | None = Field(None, min_length=1, max_length=100)
    filter: dict[str, Any] | None = Field(
        None,
        description="conditions on the documents' metadata:"
        ' {"field": "year", "op": "gte", "value": 2020}, ops eq, ne, in, lt, lte, gt, gte,'
        ' exists; combined with {"and": [...]}, {"or": [...]}, {"not": {...}};'
        " a dotted field walks into nested objects",
        examples=[{"and": [{"field": "team", "op": "eq", "value": "hr"}]}],
    )
    rrf_k: int = Field(60, ge=1, le=1000, description="hybrid: the k of reciprocal rank fusion")
    semantic_weight: float = Field(1.0, ge=0, le=10, description="hybrid: weight of that leg")
    fulltext_weight: float = Field(1.0, ge=0, le=10, description="hybrid: weight of that leg")
    context_window: int | None = Field(
        None,
        ge=0,
        le=wider_context.MAX_TOKENS,
        description="tokens of neighbouring text (the chunks before and after in the same"
        " document) to add to each hit as `context`; 0: none; default: your preference's, else 0",
    )
    debug: bool = Field(False, description="add the plan and per-stage timings")
    rerank: bool | None = Field(
        None, description="rerank the top fused hits (default: on when a reranker is configured)"
    )
    rerank_candidates: int | None = Field(
        None, ge=1, le=200, description="how many fused hits to rerank (default: 50)"
    )


class SemanticScore(BaseModel):
    rank: int
    similarity: float = Field(description="cosine similarity, clamped to [0, 1]")


class FulltextScore(BaseModel):
    rank: int
    score: float = Field(description="BM25")


class SearchContext(BaseModel):
    text: str = Field(description="the hit's text with its neighbours' around it")
    char_start: int
    char_end: int


class SearchHit(BaseModel):
    chunk_id: int
    document_id: int
    filename: str
    collection_id: int
    text: str
    page: int | None
    char_start: int
    char_end: int
    heading_path: list[str]
    score: float = Field(
        description="hybrid: fused RRF score; semantic: similarity; fulltext: BM25"
    )
    semantic: SemanticScore | None
    fulltext: FulltextScore | None
    rerank_score: float | None = Field(
        None, description="the reranker's score, when the hit was reranked"
    )
    context: SearchContext | None = Field(None, description="with `context_window` above 0")


class SearchDocument(BaseModel):
    title: str
    metadata: dict[str, Any] = Field(description="as given at upload (at most 16 KiB)")


class SearchDebug(BaseModel):
    semantic_scan: Literal["hnsw", "exact"] | None
    ef_search: int | None
    iterative_scan: bool
    candidates_per_leg: int
    plan: list[str]
    timings_ms: dict[str, float]


class SearchResponse(BaseModel):
    mode: str
    top_k: int
    min_similarity: float
    hits: list[SearchHit]
    documents: dict[str, SearchDocument] = Field(
        description="the hits' documents, each once, keyed by document id (as a string)"
    )
    warnings: list[str]
    debug: SearchDebug | None = None


def _hit(hit: Hit) -> SearchHit:
    semantic = fulltext = None
    if hit.semantic_rank is not None and hit.semantic_similarity is not None:
        semantic = SemanticScore(rank=hit.semantic_rank, similarity=hit.semantic_similarity)
    if hit.fulltext_rank is not None and hit.fulltext_score is not None:
        fulltext = FulltextScore(rank=hit.fulltext_rank, score=hit.fulltext_score)
    found = asdict(hit)
    shown = {name: found[name] for name in SearchHit.model_fields if name in found}
    return SearchHit(**shown, semantic=semantic, fulltext=fulltext)


def _read_db_kept() -> AbstractContextManager[Conn]:
    return nullcontext(read_db())


@bp.post("/search")
@endpoint(
    summary="Search the collections you may read (hybrid, semantic or full-text)",
    tag="search",
    body=SearchBody,
    response=SearchResponse,
    errors=(404, 422, 503),
    reads_only=True,
)
def search_chunks(body: SearchBody) -> SearchResponse:
    deps = runtime().search
    # A replica when one is configured and fresh. Given back between stretches only when a
    # reranker may be waited on; else kept, so the usage row goes on it (no second checkout).
    connect = read_db_while_used if deps.reranker is not None else _read_db_kept
    result = search.search(connect, principal(), search.SearchRequest(**body.model_dump()), deps)
    return SearchResponse(
        mode=result.mode,
        top_k=result.top_k,
        min_similarity=result.min_similarity,
        hits=[_hit(r) for r in result.hits],
        documents={str(k): SearchDocument(**v) for k, v in result.documents().items()},
        warnings=result.warnings,
        debug=SearchDebug(**result.debug) if result.debug is not None else None,
    )
