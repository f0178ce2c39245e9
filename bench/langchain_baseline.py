"""The langchain-postgres side of bench/search.py, run with bench/.venv-langchain's Python.

langchain-postgres 0.0.19 pins pgvector<0.4 while postrag needs pgvector>=0.5, so the two cannot
share a venv: bench/search.py runs this file in its own venv, hands it the same rows and queries
(vectors.npy, queries.npy and texts.txt in --data) and reads back a JSON report on stdout.

    python3.11 -m venv bench/.venv-langchain
    bench/.venv-langchain/bin/pip install -r bench/requirements-langchain.txt
    bench/.venv-langchain/bin/python bench/langchain_baseline.py --url URL --data DIR \
        --store pgvectorstore --ef-search 0,64

For each store (PGVectorStore, the one langchain-postgres recommends, and the older PGVector):
insert every row through the library's own add_embeddings (no index, as a bulk load should be),
build an HNSW index (m=16, ef_construction=64, cosine, as postrag's) with the session's default
maintenance_work_mem, then run every query through similarity_search_with_score_by_vector at
each --ef-search (0: the library's default, which sets nothing, so pgvector's 40), and once more
as the bare SQL statement the store sends (psycopg, no library in between).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from langchain_core.embeddings import Embeddings

TABLE = "bench_langchain"
BATCH = 1000  # PGVector.add_embeddings sends one INSERT with every row's values: keep it bounded
WARMUP = 10


class Precomputed(Embeddings):
    """The vectors are computed beforehand; the stores never need to embed anything."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError("the benchmark passes precomputed embeddings")

    def embed_query(self, text: str) -> list[float]:
        raise NotImplementedError("the benchmark passes precomputed embeddings")


def log(message: str) -> None:
    print(f"[langchain] {message}", file=sys.stderr, flush=True)


def sqlalchemy_url(url: str) -> str:
    """postgresql://... for SQLAlchemy's psycopg 3 dialect (query params, host= too, kept)."""
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def load_data(data: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    vectors = np.load(data / "vectors.npy")
    queries = np.load(data / "queries.npy")
    texts = (data / "texts.txt").read_text().split("\n")
    return vectors, queries, texts[: len(vectors)]


def timed_queries(
    search: Any, queries: np.ndarray, k: int
) -> tuple[list[float], list[list[str]], float]:
    """Latency (ms) and ids found per query, and the wall time; a few warm-ups first, untimed."""
    for vector in queries[:WARMUP]:
        search(vector.tolist(), k)
    latencies, found = [], []
    started_all = time.perf_counter()
    for vector in queries:
        started = time.perf_counter()
        hits = search(vector.tolist(), k)
        latencies.append((time.perf_counter() - started) * 1000)
        found.append([doc.id for doc, _score in hits])
    return latencies, found, time.perf_counter() - started_all


def sql_queries(
    url: str, statement: str, ef: int, queries: np.ndarray, k: int
) -> tuple[list[float], list[list[str]], float]:
    """The store's own statement over psycopg, one transaction per query as the store does."""
    latencies, found = [], []
    with psycopg.connect(url) as conn:
        for vector in queries[:WARMUP]:
            conn.execute(statement, {"q": str(vector.tolist()), "k": k}).fetchall()
            conn.rollback()
        started_all = time.perf_counter()
        for vector in queries:
            if ef:
                conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
            started = time.perf_counter()
            rows = conn.execute(statement, {"q": str(vector.tolist()), "k": k}).fetchall()
            latencies.append((time.perf_counter() - started) * 1000)
            conn.rollback()
            found.append([str(r[0]) for r in rows])
        wall = time.perf_counter() - started_all
    return latencies, found, wall


PGVECTORSTORE_SQL = (
    'SELECT "langchain_id", "content", "embedding", "langchain_metadata",'
    f' cosine_distance("embedding", %(q)s) AS distance FROM "public"."{TABLE}"'
    ' ORDER BY "embedding" <=> %(q)s LIMIT %(k)s'
)  # what AsyncPGVectorStore.__query_collection sends, the vector as text as it passes it


def run_pgvectorstore(args: argparse.Namespace, data: tuple[Any, ...]) -> dict[str, Any]:
    from langchain_postgres import PGEngine, PGVectorStore
    from langchain_postgres.v2.indexes import HNSWIndex, HNSWQueryOptions

    vectors, queries, texts = data
    embeddings = Precomputed(vectors.shape[1])
    engine = PGEngine.from_connection_string(sqlalchemy_url(args.url))
    engine.init_vectorstore_table(TABLE, vectors.shape[1], overwrite_existing=True)
    store = PGVectorStore.create_sync(engine, embeddings, TABLE)
    ids = [str(uuid.UUID(int=i)) for i in range(len(vectors))]
    insert_s = insert_batches(store, vectors, texts, ids)
    log(f"PGVectorStore: building the HNSW index on {len(vectors):,} rows")
    started = time.perf_counter()
    store.apply_vector_index(HNSWIndex())  # m=16, ef_construction=64, vector_cosine_ops
    build_s = time.perf_counter() - started
    vacuum_analyze(args.url, TABLE)

    def search_at(ef: int) -> Any:
        options = HNSWQueryOptions(ef_search=ef) if ef else None
        searcher = PGVectorStore.create_sync(engine, embeddings, TABLE, index_query_options=options)
        return searcher.similarity_search_with_score_by_vector

    runs = library_runs(args, search_at, queries, uuid_indexes)
    sql_runs = sql_level(args, PGVECTORSTORE_SQL, queries, uuid_indexes)
    return report("PGVectorStore", vectors, insert_s, build_s, runs, sql_runs)


def run_pgvector(args: argparse.Namespace, data: tuple[Any, ...]) -> dict[str, Any]:
    from langchain_postgres import PGVector

    vectors, queries, texts = data
    embeddings = Precomputed(vectors.shape[1])
    url = sqlalchemy_url(args.url)
    store = PGVector(
        embeddings, connection=url, embedding_length=vectors.shape[1], collection_name="bench"
    )
    insert_s = insert_batches(store, vectors, texts, [str(i) for i in range(len(vectors))])
    log(f"PGVector: building the HNSW index on {len(vectors):,} rows (by hand: no API for it)")
    started = time.perf_counter()
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute(
            "CREATE INDEX bench_pgvector_hnsw ON langchain_pg_embedding"
            " USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
    build_s = time.perf_counter() - started
    vacuum_analyze(args.url, "langchain_pg_embedding")

    def search_at(ef: int) -> Any:
        # PGVector has no query options: a user sets ef_search on the engine's connections.
        engine_args = {"connect_args": {"options": f"-c hnsw.ef_search={ef}"}} if ef else None
        searcher = PGVector(
            embeddings,
            connection=url,
            embedding_length=vectors.shape[1],
            collection_name="bench",
            engine_args=engine_args,
        )
        return searcher.similarity_search_with_score_by_vector

    runs = library_runs(args, search_at, queries, int_indexes)
    return report("PGVector", vectors, insert_s, build_s, runs, [])


def library_runs(
    args: argparse.Namespace, search_at: Any, queries: np.ndarray, to_index: Any
) -> list[dict[str, Any]]:
    """The queries through the store's own search call, at each --ef-search."""
    runs = []
    for ef in args.ef_search:
        latencies, found, wall = timed_queries(search_at(ef), queries, args.k)
        runs.append(run_result(ef, latencies, to_index(found), wall))
    return runs


def insert_batches(store: Any, vectors: np.ndarray, texts: list[str], ids: list[str]) -> float:
    started = time.perf_counter()
    for start in range(0, len(vectors), BATCH):
        end = start + BATCH
        store.add_embeddings(texts[start:end], vectors[start:end].tolist(), ids=ids[start:end])
        if (end // BATCH) % 10 == 0:
            log(f"inserted {min(end, len(vectors)):,} / {len(vectors):,} rows")
    return time.perf_counter() - started


def vacuum_analyze(url: str, table: str) -> None:
    """Steady state, as autovacuum leaves it (postrag's tables get the same)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'VACUUM (ANALYZE) "{table}"')


def sql_level(
    args: argparse.Namespace, statement: str, queries: np.ndarray, to_index: Any
) -> list[dict[str, Any]]:
    runs = []
    for ef in args.ef_search:
        latencies, found, wall = sql_queries(args.url, statement, ef, queries, args.k)
        runs.append(run_result(ef, latencies, to_index(found), wall))
    return runs


def run_result(
    ef: int, latencies: list[float], ids: list[list[int]], wall: float
) -> dict[str, Any]:
    return {"ef_search": ef, "latencies_ms": latencies, "ids": ids, "wall_s": wall}


def uuid_indexes(found: list[list[str]]) -> list[list[int]]:
    return [[uuid.UUID(i).int for i in ids] for ids in found]


def int_indexes(found: list[list[str]]) -> list[list[int]]:
    return [[int(i) for i in ids] for ids in found]


def report(
    store: str,
    vectors: np.ndarray,
    insert_s: float,
    build_s: float,
    runs: list[dict[str, Any]],
    sql_runs: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "store": store,
        "rows": len(vectors),
        "insert_s": insert_s,
        "build_s": build_s,
        "runs": runs,
        "sql_runs": sql_runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="postgresql:// URL of an empty database")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--store", choices=("pgvectorstore", "pgvector"), required=True)
    parser.add_argument("--ef-search", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    data = load_data(args.data)
    run = run_pgvectorstore if args.store == "pgvectorstore" else run_pgvector
    json.dump(run(args, data), sys.stdout)


if __name__ == "__main__":
    main()
