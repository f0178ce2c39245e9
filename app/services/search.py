"""Search: semantic, full-text (BM25) or hybrid over the chunks a user may read.

The scope is resolved here (explicit ids must be readable, else 404), defaults come from the
user's preferences, the query is embedded with the searched space's own model, and the legs run
as one SQL statement (app/repositories/search.py) inside a transaction that carries the
per-query HNSW settings. The reranker (app/services/reranking.py) then works with no connection
held: a search takes one from its `Connect` for each stretch of database work.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from app.errors import NotFound, ServiceUnavailable
from app.metrics import metrics
from app.providers.embeddings import EmbeddingError, QueryEmbedders
from app.providers.rerank import Reranker
from app.repositories import Conn, Row, bm25
from app.repositories import documents as document_repo
from app.repositories import search as search_repo
from app.repositories import search_context as context_repo
from app.repositories.embedding_spaces import EmbeddingSpace
from app.repositories.search import Hit
from app.services import reranking, wider_context
from app.services.tokens import Principal
from app.settings import Settings

# What a user without a preferences row gets (the user_preferences column defaults).
DEFAULT_MODE = "hybrid"
DEFAULT_TOP_K = 8
DEFAULT_MIN_SIMILARITY = 0.3
MAX_EF_SEARCH = 1000  # pgvector's limit
MAX_SCAN_TUPLES = 20_000  # index tuples an iterative HNSW scan may visit (pgvector's default)
_PHRASE = re.compile(r'"([^"]+)"')
_PREFIX = re.compile(r"(?<!\w)([^\W_]{3,})\*")  # three letters or digits at least
# Where a search takes a connection each time it needs one (and gives it back after).
Connect = Callable[[], AbstractContextManager[Conn]]


@dataclass(frozen=True)
class SearchRequest:
    query: str
    mode: str | None = None
    top_k: int | None = None
    min_similarity: float | None = None
    collection_ids: list[int] | None = None
    document_ids: list[int] | None = None
    filter: dict[str, Any] | None = None
    rrf_k: int = 60
    semantic_weight: float = 1.0
    fulltext_weight: float = 1.0
    candidates: int | None = None  # hits per leg before fusion (None: _candidates decides)
    context_window: int | None = None  # tokens of neighbouring text per hit (0: none)
    debug: bool = False
    rerank: bool | None = None  # None: on when a reranker is configured
    rerank_candidates: int | None = None  # None: POSTRAG_RERANK_CANDIDATES
    # The embedding space searched (an evaluation of one being filled); None: the ready one.
    space_id: int | None = None


@dataclass
class SearchResult:
    mode: str
    top_k: int
    min_similarity: float
    hits: list[Hit]
    warnings: list[str] = field(default_factory=list)
    debug: dict[str, Any] | None = None

    def documents(self) -> dict[int, dict[str, Any]]:
        """The hits' documents by id: title and metadata, carried by each one's best hit."""
        return {h.document_id: h.document for h in self.hits if h.document is not None}


def _defaults(prefs: Row | None, req: SearchRequest) -> tuple[str, int, float]:
    mode = req.mode or (prefs["search_mode"] if prefs else DEFAULT_MODE)
    top_k = req.top_k or (prefs["top_k"] if prefs else DEFAULT_TOP_K)
    if req.min_similarity is not None:
        min_similarity = req.min_similarity
    else:
        min_similarity = prefs["similarity_threshold"] if prefs else DEFAULT_MIN_SIMILARITY
    return mode, top_k, float(min_similarity)


def _rerank_depth(
    prefs: Row | None, req: SearchRequest, deps: SearchDeps, warnings: list[str]
) -> int:
    """The request's rerank and depth, else the user's preferences, else the server's."""
    asked = req.rerank
    if asked is None and prefs is not None and not prefs["rerank"]:
        asked = False
    candidates = req.rerank_candidates or (prefs and prefs["rerank_candidates"])
    return reranking.depth(
        deps.reranker, asked, candidates or deps.settings.rerank_candidates, warnings
    )


def _context_window(prefs: Row | None, req: SearchRequest) -> int:
    """The request's wider context, else the user's preference, else none."""
    if req.context_window is not None:
        return req.context_window
    preferred = prefs["context_window"] if prefs is not None else None
    return int(preferred or 0)


def _candidates(req: SearchRequest, mode: str, top_k: int, fetched: int) -> int:
    """Hits each leg hands to the fusion: the request's depth or, in hybrid, a few times top_k
    (so a chunk ranked low by one leg and high by the other can still win); never fewer than
    the fused hits returned."""
    if req.candidates is not None:
        return max(req.candidates, fetched)
    return fetched if mode != "hybrid" else max(4 * top_k, 20, fetched)


def _scope(
    conn: Conn, who: Principal, req: SearchRequest, collection_ids: list[int]
) -> search_repo.Scope:
    """The readable `collection_ids` narrowed to the request's documents; 404 for any asked for
    that the user may not read."""
    if req.collection_ids is not None:
        missing = sorted(set(req.collection_ids) - set(collection_ids))
        if missing:
            raise NotFound(f"no collection {', '.join(map(str, missing))}")
    document_ids = None
    if req.document_ids is not None:
        placed = document_repo.readable_placement(conn, who.user_id, req.document_ids)
        missing = sorted(set(req.document_ids) - {r["id"] for r in placed})
        if missing:
            raise NotFound(f"no document {', '.join(map(str, missing))}")
        document_ids = [r["id"] for r in placed]
        # Only the documents' collections (so BM25 statistics describe what is searched).
        in_documents = {r["collection_id"] for r in placed}
        collection_ids = [c for c in collection_ids if c in in_documents]
    return search_repo.make_scope(collection_ids, document_ids, req.filter)


def _fulltext_leg(query: str) -> bm25.FulltextLeg:
    phrases = [p.strip() for p in _PHRASE.findall(query) if p.strip()]
    return bm25.FulltextLeg(phrases=phrases[:8], prefixes=_PREFIX.findall(query)[:8])


def _embed(
    embedders: QueryEmbedders,
    space: EmbeddingSpace,
    query: str,
    warnings: list[str],
    required: bool,
) -> np.ndarray | None:
    try:
        vector = embedders.get(space.provider, space.model).embed([query])[0]
        if len(vector) != space.dimension:
            raise EmbeddingError(
                f"{space.provider} model {space.model!r} answered {len(vector)} dimensions,"
                f" its embedding space has {space.dimension}"
            )
    except EmbeddingError as exc:
        if required:
            raise ServiceUnavailable(f"cannot embed the query: {exc}") from None
        warnings.append(f"semantic leg skipped, cannot embed the query: {exc}")
        return None
    # float32 numpy: sent as pgvector's binary format (register_vector), not as text.
    return np.asarray(vector, dtype=np.float32)


def _plan_summary(plan: dict[str, Any], out: list[str], depth: int = 0) -> list[str]:
    line = plan["Node Type"]
    if "Index Name" in plan:
        line += f" using {plan['Index Name']}"
    if "Relation Name" in plan:
        line += f" on {plan['Relation Name']}"
    if "CTE Name" in plan:
        line += f" ({plan['CTE Name']})"
    out.append("  " * depth + line)
    for child in plan.get("Plans", []):
        _plan_summary(child, out, depth + 1)
    return out


def iterative_scans_available(conn: Conn) -> bool:
    """Whether the server's pgvector has iterative index scans (0.8+); asked once at start."""
    return search_repo.pgvector_version(conn) >= (0, 8)


def _semantic_leg(
    conn: Conn,
    req: SearchRequest,
    context: context_repo.SearchContext,
    scope: search_repo.Scope,
    candidates: int,
    settings: Settings,
    embedders: QueryEmbedders,
    result: SearchResult,
    timings: dict[str, float],
) -> tuple[search_repo.SemanticLeg | None, np.ndarray | None]:
    space = context.space
    if space is None and req.space_id is not None:
        raise NotFound(f"no embedding space {req.space_id}")
    if space is None:
        result.warnings.append("no embedding space is ready yet: nothing is embedded")
        return None, None
    started = time.perf_counter()
    vector = _embed(embedders, space, req.query, result.warnings, result.mode == "semantic")
    timings["embed_ms"] = (time.perf_counter() - started) * 1000
    if vector is None:
        return None, None
    # An exact scan when the scope is small, or so small a share of the space that an iterative
    # HNSW scan would stop at MAX_SCAN_TUPLES before finding enough of its rows.
    share = candidates / MAX_SCAN_TUPLES
    cap = max(settings.exact_search_max_rows, math.ceil(share * context.all_chunks))
    if scope.narrowed():  # documents or a filter: counted (up to the cap) by a statement
        in_scope = search_repo.chunks_in_scope(conn, scope, cap)
    else:  # whole collections: their counts came with the context, no round trip
        in_scope = sum(context.chunk_counts.get(i, 0) for i in scope.collection_ids)
    exact = in_scope <= cap
    return search_repo.SemanticLeg(space.id, space.dimension, exact), vector


def _debug(
    semantic: search_repo.SemanticLeg | None,
    ef_search: int,
    iterative: bool,
    candidates: int,
    plan: dict[str, Any] | None,
    timings: dict[str, float],
) -> dict[str, Any]:
    lines = _plan_summary(plan, []) if plan is not None else []
    scan = None
    if semantic is not None:
        # What the planner did: on a small table it may prefer a sort to the HNSW index.
        scan = "hnsw" if any("_hnsw_idx" in line for line in lines) else "exact"
    return {
        "semantic_scan": scan,
        "ef_search": ef_search if semantic is not None else None,
        "iterative_scan": iterative and scan == "hnsw",
        "candidates_per_leg": candidates,
        "plan": lines,
        "timings_ms": {k: round(v, 3) for k, v in timings.items()},
    }


@dataclass(frozen=True)
class SearchDeps:
    """What a search needs besides its request: the knobs, the query embedders, and whether
    the server's pgvector has iterative index scans (0.8+, asked once at start), and the
    reranker (None: none is configured)."""

    settings: Settings
    embedders: QueryEmbedders
    iterative_scans: bool
    reranker: Reranker | None = None


def search(connect: Connect, who: Principal, req: SearchRequest, deps: SearchDeps) -> SearchResult:
    """Run one search on connections from `connect`: given back while the reranker works (it
    may take POSTRAG_RERANK_TIMEOUT_S), taken again for the wider context."""
    started = time.perf_counter()
    with connect() as conn:
        result, rest = _search(conn, who, req, deps)
        if rest is not None and rest.reranker is None:
            _finish(conn, result, rest)
    if rest is not None and rest.reranker is not None:
        result.hits = reranking.reranked_top(
            rest.reranker,
            req.query,
            result.hits,
            rest.rerank_depth,
            result.top_k,
            result.warnings,
            rest.timings,
        )
        with connect() if rest.window else nullcontext(None) as conn:
            _finish(conn, result, rest)
    metrics().search_seconds.labels(result.mode).observe(time.perf_counter() - started)
    return result


def holding(conn: Conn) -> Connect:
    """Connections that are always `conn` (a worker's own, kept while it searches)."""
    return lambda: nullcontext(conn)


@dataclass(frozen=True)
class _Rest:
    """What a search does after its SQL: rerank (with no connection held), cut, widen."""

    reranker: Reranker | None  # None: no reranking
    rerank_depth: int
    window: int  # wider context's tokens per hit (0: none)
    timings: dict[str, float]
    debug: Callable[[], dict[str, Any]] | None  # the debug report, once all is timed


def _finish(conn: Conn | None, result: SearchResult, rest: _Rest) -> None:
    """Cut the hits to top_k, widen them (on `conn`, there when `rest.window` is), add debug."""
    result.hits = result.hits[: result.top_k]
    if conn is not None and rest.window:
        started = time.perf_counter()
        result.hits = wider_context.widen(conn, result.hits, rest.window)
        rest.timings["context_ms"] = (time.perf_counter() - started) * 1000
    if rest.debug is not None:
        result.debug = rest.debug()


def _search(
    conn: Conn, who: Principal, req: SearchRequest, deps: SearchDeps
) -> tuple[SearchResult, _Rest | None]:
    settings = deps.settings
    context = context_repo.load(conn, who.user_id, req.collection_ids, req.space_id)
    prefs = context.preferences
    mode, top_k, min_similarity = _defaults(prefs, req)
    result = SearchResult(mode=mode, top_k=top_k, min_similarity=min_similarity, hits=[])
    scope = _scope(conn, who, req, context.collection_ids)
    if not scope.collection_ids:
        return result, None
    rerank_depth = _rerank_depth(prefs, req, deps, result.warnings)
    fetched = max(top_k, rerank_depth)  # the fused hits the SQL returns
    candidates = _candidates(req, mode, top_k, fetched)
    timings: dict[str, float] = {}
    semantic, query_vector = None, None
    if mode in ("semantic", "hybrid"):
        semantic, query_vector = _semantic_leg(
            conn, req, context, scope, candidates, settings, deps.embedders, result, timings
        )
    fulltext = _fulltext_leg(req.query) if mode in ("fulltext", "hybrid") else None
    if semantic is None and fulltext is None:
        return result, None

    statement, params = search_repo.search_statement(semantic, fulltext, scope)
    params.update(
        query=req.query,
        query_vector=query_vector,
        candidates=candidates,
        top_k=fetched,
        min_similarity=min_similarity,
        k1=settings.bm25_k1,
        b=settings.bm25_b,
        rrf_k=req.rrf_k,
        semantic_weight=req.semantic_weight,
        fulltext_weight=req.fulltext_weight,
    )
    ef_search = min(MAX_EF_SEARCH, max(settings.hnsw_ef_search, 2 * candidates))
    iterative = deps.iterative_scans
    search_repo.set_search_knobs(
        conn, ef_search=ef_search, iterative_scan=iterative, max_scan_tuples=MAX_SCAN_TUPLES
    )
    plan = search_repo.explain(conn, statement, params) if req.debug else None
    started = time.perf_counter()
    result.hits = search_repo.run(conn, statement, params)
    timings["search_ms"] = (time.perf_counter() - started) * 1000
    debug = None
    if req.debug:
        debug = partial(_debug, semantic, ef_search, iterative, candidates, plan, timings)
    reranker = deps.reranker if rerank_depth else None
    return result, _Rest(reranker, rerank_depth, _context_window(prefs, req), timings, debug)
