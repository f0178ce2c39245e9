"""The rerank stage of a search: the top fused hits scored again by the configured reranker.

It runs after fusion over the first `depth` hits; the reranked ones come first in their new
order. When the reranker fails (unreachable, too slow, a bad answer), the fused order is kept and
the search says so in its warnings: a reranker is an improvement, never a reason to fail.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from app.providers.rerank import Reranker, RerankError
from app.repositories.search import Hit

log = logging.getLogger(__name__)


def depth(
    reranker: Reranker | None, asked: bool | None, candidates: int, warnings: list[str]
) -> int:
    """How many fused hits to rerank: 0 when reranking is off (or asked for, but there is no
    reranker configured: a warning then)."""
    if asked is False or (asked is None and reranker is None):
        return 0
    if reranker is None:
        warnings.append("reranking skipped: no reranker is configured (POSTRAG_RERANK)")
        return 0
    return candidates


def reranked_top(
    reranker: Reranker,
    query: str,
    hits: list[Hit],
    depth: int,
    top_k: int,
    warnings: list[str],
    timings: dict[str, float],
) -> list[Hit]:
    """The first `depth` hits reranked, then the others, cut to `top_k`; each document's title
    and metadata on its first hit left (the SQL put them on its best fused hit, which reranking
    may have moved down or past the cut)."""
    ranked = rerank(reranker, query, hits[:depth], warnings, timings) + hits[depth:]
    documents = {h.document_id: h.document for h in ranked if h.document is not None}
    kept, seen = [], set()
    for hit in ranked[:top_k]:
        first = hit.document_id not in seen
        seen.add(hit.document_id)
        kept.append(replace(hit, document=documents.get(hit.document_id) if first else None))
    return kept


def rerank(
    reranker: Reranker,
    query: str,
    hits: list[Hit],
    warnings: list[str],
    timings: dict[str, float],
) -> list[Hit]:
    """`hits` in the reranker's order, each with its rerank_score; as they were on failure."""
    if not hits:
        return hits
    started = time.perf_counter()
    try:
        scores = reranker.scores(query, [h.text for h in hits])
    except RerankError as exc:
        # The details (the server's URL, its error body) are for the log, not for searchers.
        log.warning("reranking failed, the fused order is kept: %s", exc)
        warnings.append(
            f"the reranker ({reranker.kind}) failed: {exc.reason}; the fused order is kept"
        )
        return hits
    finally:
        timings["rerank_ms"] = (time.perf_counter() - started) * 1000
    # sorted is stable: passages the reranker scores alike keep their fused order.
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [replace(hits[i], rerank_score=scores[i]) for i in order]
