"""Reranking benchmark: what the rerank stage costs per query, against the same search without it.

    .venv/bin/python bench/rerank.py                          # 5,000 chunks, 60 queries
    .venv/bin/python bench/rerank.py --chunks 20000 --depth 20 --server-ms 30

Data and setup are bench/search.py's (synthetic clustered vectors, Zipf texts of 60-100 words,
one collection, the HNSW index built; an embedded PostgreSQL unless DATABASE_URL is set). Each
query is a hybrid search through app.services.search.search in-process, acting as the user, the
query vector looked up (no embedding, no HTTP), with top_k 10, in one run:

1. without reranking (`rerank: false`);
2. a rerank server: tests/fake_rerank.py speaking TEI's `POST /rerank` on loopback. It scores at
   once, so this is postrag's own share: the --depth passages sent as JSON and the scores read
   back. --server-ms adds that much latency per call, for a server's model time;
3. the local ONNX reranker on the tiny cross-encoder of tests/fake_rerank.py: tokenizing the pairs
   and onnxruntime's per-call cost, a floor for a real model;
4. a MiniLM-L6-sized cross-encoder's compute (cross-encoder/ms-marco-MiniLM-L-6-v2 has the shape
   of the bundled all-MiniLM-L6-v2: 6 layers, 384 wide), approximated by that bundled model
   encoding the --depth "query passage" texts on its one thread (--model-queries of them).

Prints a Markdown table: p50 / p95 / mean per query, and the p50 ratio against (1), same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db import embedded, scope
from app.providers.local_embedder import LocalEmbedder
from app.providers.rerank import HttpReranker, Reranker
from app.providers.rerank_onnx import OnnxReranker
from app.services import search as search_service
from app.services.worker import connect
from bench import search as bench_search
from tests.fake_rerank import FakeRerankServer, reverse, tiny_cross_encoder

TOP_K = 10


class MiniLMCompute:
    """The compute of a MiniLM-L6 cross-encoder over the pairs (the bundled embedding model run
    on the same texts); its scores keep the fused order."""

    name = "minilm-l6-compute"

    def __init__(self) -> None:
        self._model = LocalEmbedder()

    def scores(self, query: str, passages: list[str]) -> list[float]:
        self._model.embed([f"{query} {p}" for p in passages])
        return [-float(i) for i in range(len(passages))]

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Row:
    name: str
    latencies_ms: list[float]
    rerank_ms: list[float]
    warnings: int


def timed(pr: Any, data: Any, reranker: Reranker | None, depth: int, queries: int) -> Row:
    """`queries` hybrid searches (after a few untimed ones) with `reranker` over `depth` hits."""
    deps = search_service.SearchDeps(
        pr.settings, bench_search.LookupEmbedders(data), True, reranker
    )
    latencies, rerank_ms, warnings = [], [], 0
    with connect(pr.url) as conn, scope.acting_as(conn, pr.who.user_id):
        for i in [*range(min(bench_search.WARMUP, queries)), *range(queries)]:
            request = search_service.SearchRequest(
                query=data.query_texts[i],
                mode="hybrid",
                top_k=TOP_K,
                min_similarity=0.0,
                collection_ids=[pr.collection_id],
                rerank=reranker is not None,
                rerank_candidates=depth,
                debug=True,
            )
            started = time.perf_counter()
            result = search_service.search(search_service.holding(conn), pr.who, request, deps)
            latencies.append((time.perf_counter() - started) * 1000)
            assert result.debug is not None
            rerank_ms.append(result.debug["timings_ms"].get("rerank_ms", 0.0))
            warnings += len(result.warnings)
    n = len(latencies) - queries  # the warm-up ones are not counted
    name = reranker.name if reranker is not None else "none"
    return Row(name, latencies[n:], rerank_ms[n:], warnings)


def table(rows: list[Row], args: argparse.Namespace) -> list[str]:
    base = float(np.percentile(rows[0].latencies_ms, 50))
    lines = [
        f"{args.chunks:,} chunks, hybrid, top_k {TOP_K}, depth {args.depth},"
        f" server latency {args.server_ms} ms",
        "",
        "| reranker | queries | p50 ms | p95 ms | mean ms | rerank stage p50 ms | p50 vs none |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        p50 = float(np.percentile(row.latencies_ms, 50))
        lines.append(
            f"| {row.name} | {len(row.latencies_ms)} | {p50:.2f}"
            f" | {np.percentile(row.latencies_ms, 95):.2f} | {np.mean(row.latencies_ms):.2f}"
            f" | {np.percentile(row.rerank_ms, 50):.2f} | {p50 / base:.2f}x |"
        )
    if any(row.warnings for row in rows):
        lines.append(f"warnings: { {row.name: row.warnings for row in rows} }")
    return lines


def parse_args() -> tuple[argparse.Namespace, argparse.Namespace]:
    """This script's arguments and bench/search.py's (data shape) with their defaults."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--depth", type=int, default=50, help="fused hits reranked")
    parser.add_argument("--server-ms", type=float, default=0.0, help="the rerank server's delay")
    parser.add_argument("--model-queries", type=int, default=20, help="for the MiniLM compute")
    args = parser.parse_args()
    sys.argv[1:] = [
        *("--chunks", str(args.chunks), "--queries", str(args.queries)),
        *("--langchain", "none", "--no-build-compare"),
    ]
    return args, bench_search.parse_args()


def main() -> None:
    args, data_args = parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="postrag-bench-rerank-"))
    server_url = os.environ.get("DATABASE_URL") or embedded.start(work_dir).url
    data = bench_search.make_data(data_args)
    with bench_search.synthetic_ollama(data) as ollama, FakeRerankServer("tei", reverse) as fake:
        fake.delay_s = args.server_ms / 1000
        pr = bench_search.setup_postrag(server_url, work_dir, ollama.url)
        bench_search.ingest_postrag(pr, data, data_args)
        model_path, sha256 = tiny_cross_encoder(work_dir)
        server = HttpReranker("tei", fake.url, "", None, 30.0)
        rows = [
            timed(pr, data, None, args.depth, args.queries),
            timed(pr, data, server, args.depth, args.queries),
            timed(pr, data, OnnxReranker(str(model_path), sha256, 600.0), args.depth, args.queries),
            timed(pr, data, MiniLMCompute(), args.depth, args.model_queries),
        ]
        server.close()
    print("\n".join(table(rows, args)))


if __name__ == "__main__":
    main()
