"""Search benchmark: postrag's search (SQL and HTTP) against langchain-postgres, same data and run.

    .venv/bin/python bench/search.py [--chunks 100000] [--queries 200] [--build-compare]
    .venv/bin/python bench/search.py --chunks 5000 --queries 50      # a quick run

The langchain-postgres side runs in a venv of its own (it pins pgvector<0.4, postrag needs
pgvector>=0.5), as a subprocess (bench/langchain_baseline.py); make it once with

    python3.11 -m venv bench/.venv-langchain
    bench/.venv-langchain/bin/pip install -r bench/requirements-langchain.txt

or pass --langchain none. Runs against DATABASE_URL if set, else a throwaway embedded PostgreSQL;
postrag and each langchain store get a fresh database on that one server. Progress goes to
stderr; a Markdown table and a summary go to stdout.

Data: --chunks unit 384-d vectors around --clusters centres (centre + gaussian noise, normalised;
uniformly random 384-d vectors have no neighbourhoods, so no ANN index finds their neighbours),
each chunk's text 60-100 words drawn from a Zipf-distributed made-up vocabulary plus words of its
cluster; --queries queries drawn the same way (not taken from the data). Ground truth: exact
cosine top-k in numpy over the same rows (one collection, no filter).

All in one run:
1. postrag ingest: documents of --per-doc chunks each, written by replace_chunks (binary COPY,
   BM25 postings by trigger) into the embedding space with its HNSW index dropped, then the index
   built as postrag builds it today (the session's maintenance_work_mem: the server's);
   --build-compare builds it again with --build-memory and --build-workers;
2. SQL level: the service's statement for each mode (hybrid, semantic, fulltext), its per-query
   knobs set as the service sets them, on one connection: p50/p99 latency, queries/s, recall@10
   of semantic against exact, and an ef_search sweep;
3. HTTP level: POST /api/v1/search on `postrag serve` (gunicorn, its defaults) with
   POSTRAG_EMBEDDER=ollama pointing at a loopback fake Ollama that answers each query text with
   the query's synthetic vector; one client, requests in sequence;
4. langchain-postgres: ingest (add_embeddings, then an HNSW index of the same m and
   ef_construction), query latency and recall@10 at its default ef_search and at postrag's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import prepare_database
from app.db import embedded
from app.providers.http_embedders import OllamaEmbedder
from app.repositories import documents as document_repo
from app.repositories import embedding_spaces as space_repo
from app.repositories import search as search_repo
from app.services import collections, spaces, users
from app.services import search as search_service
from app.services.worker import connect
from app.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
MODEL = "bench-synthetic-384"
MODES = ("hybrid", "semantic", "fulltext")
WARMUP = 10
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- synthetic data and ground truth


@dataclass(frozen=True)
class Data:
    vectors: np.ndarray  # (chunks, dim) float32, unit length
    texts: list[str]
    queries: np.ndarray  # (queries, dim) float32, unit length
    query_texts: list[str]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_vocabulary(rng: np.random.Generator, size: int) -> np.ndarray:
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(SYLLABLES, rng.integers(2, 5)))] = None
    return np.array(list(words))


def zipf(size: int, exponent: float = 1.07) -> np.ndarray:
    weights = 1.0 / np.arange(1, size + 1) ** exponent
    return weights / weights.sum()


def make_texts(
    rng: np.random.Generator, vocab: np.ndarray, topics: np.ndarray, labels: np.ndarray
) -> list[str]:
    """60-100 words per text: 80% from the Zipf vocabulary, 20% from the cluster's topic words."""
    lengths = rng.integers(60, 101, size=len(labels))
    total = int(lengths.sum())
    common = rng.choice(len(vocab), size=total, p=zipf(len(vocab)))
    owner = np.repeat(labels, lengths)
    topical = topics[owner, rng.integers(0, topics.shape[1], size=total)]
    words = vocab[np.where(rng.random(total) < 0.2, topical, common)]
    bounds = np.concatenate(([0], np.cumsum(lengths)))
    return [" ".join(words[a:b].tolist()) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def make_query_texts(
    rng: np.random.Generator, vocab: np.ndarray, topics: np.ndarray, labels: np.ndarray
) -> list[str]:
    """Two topic words of the query's cluster and two common words; every text distinct."""
    texts: dict[str, None] = {}
    p = zipf(len(vocab))
    for label in labels:
        while True:
            picked = [*rng.choice(topics[label], 2, replace=False), *rng.choice(vocab, 2, p=p)]
            text = " ".join(picked)
            if text not in texts:
                texts[text] = None
                break
    return list(texts)


def make_data(args: argparse.Namespace) -> Data:
    rng = np.random.default_rng(args.seed)
    dim = args.dimension
    centres = unit(rng.standard_normal((args.clusters, dim), dtype=np.float32))
    labels = rng.integers(0, args.clusters, size=args.chunks)
    noise = rng.standard_normal((args.chunks, dim), dtype=np.float32) * args.noise
    vectors = unit(centres[labels] + noise)
    query_labels = rng.integers(0, args.clusters, size=args.queries)
    query_noise = rng.standard_normal((args.queries, dim), dtype=np.float32) * args.noise
    queries = unit(centres[query_labels] + query_noise)
    vocab = make_vocabulary(rng, args.vocabulary)
    # Topic words come from the less common part of the vocabulary, as topical words do.
    topics = rng.integers(len(vocab) // 10, len(vocab), size=(args.clusters, 8))
    texts = make_texts(rng, vocab, topics, labels)
    query_texts = make_query_texts(rng, vocab, vocab[topics], query_labels)
    return Data(vectors, texts, queries, query_texts)


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row indexes of each query's k nearest rows by cosine (the vectors are unit length)."""
    found = []
    for start in range(0, len(queries), 64):
        sims = queries[start : start + 64] @ vectors.T
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        found.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(found)


def recall_at_k(found: list[list[int]], exact: np.ndarray, k: int) -> float:
    hits = [len(set(f[:k]) & set(e[:k].tolist())) for f, e in zip(found, exact, strict=True)]
    return sum(hits) / (k * len(exact))


@dataclass(frozen=True)
class Timings:
    latencies_ms: list[float]
    found: list[list[int]]  # row indexes into Data.vectors, best first
    wall_s: float  # the whole loop, so queries/s counts every round trip of a query

    def p50(self) -> float:
        return float(np.percentile(self.latencies_ms, 50))

    def p99(self) -> float:
        return float(np.percentile(self.latencies_ms, 99))

    def qps(self) -> float:
        return len(self.latencies_ms) / self.wall_s


# ---------------------------------------------------------------- a fake Ollama for the queries


class SyntheticOllama:
    """POST /api/embed on 127.0.0.1 answering each query text with the query's synthetic vector
    (other texts, such as the embedder's dimension probe, get a fixed unit vector)."""

    def __init__(self, texts: list[str], vectors: np.ndarray) -> None:
        table = {t: v.tolist() for t, v in zip(texts, vectors, strict=True)}
        fallback = [1.0] + [0.0] * (vectors.shape[1] - 1)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: one connection for the whole run

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                answer = {
                    "model": body["model"],
                    "embeddings": [table.get(t, fallback) for t in inputs],
                }
                raw = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> SyntheticOllama:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- postrag: setup, ingest, index


@dataclass(frozen=True)
class Postrag:
    settings: Settings
    token: str
    collection_id: int
    owner_id: int
    space_id: int


class BenchChunk(NamedTuple):
    ordinal: int
    text: str
    token_count: int
    page: int | None
    char_start: int
    char_end: int
    heading_path: tuple[str, ...]


def fresh_database(server_url: str, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def setup_postrag(server_url: str, data_dir: Path, ollama_url: str) -> Postrag:
    """A fresh database, a user with a token, a collection, and the fake model's ready space."""
    base = Settings.from_env({"POSTRAG_DATA_DIR": str(data_dir)})
    settings = replace(
        base,
        database_url=fresh_database(server_url, "postrag_bench"),
        workers=0,
        embedder="ollama",
        ollama_url=ollama_url,
        embedding_model=MODEL,
    )
    settings = prepare_database(settings)
    with connect(settings.database_url or "") as conn:
        user, token = users.create(conn, name="bench", role="user")
        coll = collections.get_or_create(conn, user["id"], "bench")
        # The app's embedder owns the space, so search embeds queries with it (the fake Ollama).
        space = spaces.ensure_space(conn, OllamaEmbedder(ollama_url, MODEL), max_attempts=1)
    return Postrag(settings, token, coll["id"], user["id"], space["id"])


def chunks_of(texts: list[str]) -> list[BenchChunk]:
    chunks, offset = [], 0
    for i, text in enumerate(texts):
        chunks.append(BenchChunk(i, text, len(text.split()), None, offset, offset + len(text), ()))
        offset += len(text) + 1
    return chunks


def load_postrag(conn: Any, pr: Postrag, data: Data, per_doc: int) -> float:
    """Seconds to write every document, chunk and vector, one transaction per document as the
    worker does, into the space with its HNSW index dropped (a bulk load)."""
    conn.execute("SELECT drop_embedding_space_index(%s)", (pr.space_id,))
    total = len(data.texts)
    started = time.perf_counter()
    for doc_no, start in enumerate(range(0, total, per_doc)):
        with conn.transaction():
            doc = document_repo.insert(
                conn,
                collection_id=pr.collection_id,
                owner_id=pr.owner_id,
                filename=f"doc{doc_no:06d}.txt",
                title="",
                content_type="text/plain",
                sha256=hashlib.sha256(b"bench %d" % doc_no).digest(),
                content=b"(benchmark document)",
                metadata={},
            )
            assert doc is not None
            chunks = chunks_of(data.texts[start : start + per_doc])
            vectors = data.vectors[start : start + per_doc]
            document_repo.replace_chunks(conn, doc["id"], pr.space_id, chunks, vectors)
            document_repo.set_status(conn, doc["id"], "indexed")
        if (doc_no + 1) % max(1, total // per_doc // 10) == 0:
            log(f"postrag: {min(start + per_doc, total):,} / {total:,} chunks written")
    return time.perf_counter() - started


def build_settings(conn: Any) -> dict[str, str]:
    """What an index build gets when postrag sets nothing: the session's (server's) values."""
    names = ("maintenance_work_mem", "max_parallel_maintenance_workers")
    return {name: conn.execute(f"SHOW {name}").fetchone()[name] for name in names}


def build_index(conn: Any, space_id: int, memory: str | None, workers: int | None) -> float:
    """Seconds to (re)build the space's HNSW index; None keeps the session's setting."""
    conn.execute("SELECT drop_embedding_space_index(%s)", (space_id,))
    started = time.perf_counter()
    with conn.transaction():
        if memory is not None:
            conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (memory,))
        if workers is not None:
            conn.execute(
                "SELECT set_config('max_parallel_maintenance_workers', %s, true)", (str(workers),)
            )
        space_repo.create_index(conn, space_id)
    return time.perf_counter() - started


def chunk_rows(conn: Any, collection_id: int) -> dict[int, int]:
    """Chunk id -> row of Data.vectors (documents and ordinals were written in row order)."""
    rows = conn.execute(
        "SELECT id FROM document_chunks WHERE collection_id = %s ORDER BY document_id, ordinal",
        (collection_id,),
    ).fetchall()
    return {r["id"]: i for i, r in enumerate(rows)}


@dataclass(frozen=True)
class Ingest:
    write_s: float
    build_s: float
    build_settings: dict[str, str]
    raised_build_s: float | None


def ingest_postrag(pr: Postrag, data: Data, args: argparse.Namespace) -> tuple[Ingest, dict]:
    with connect(pr.settings.database_url or "") as conn:
        log(f"postrag: writing {len(data.texts):,} chunks in documents of {args.per_doc}")
        write_s = load_postrag(conn, pr, data, args.per_doc)
        defaults = build_settings(conn)
        log(f"postrag: building the HNSW index as postrag does today ({defaults})")
        build_s = build_index(conn, pr.space_id, None, None)
        raised = None
        if args.build_compare:
            log(f"postrag: building it again, {args.build_memory} and {args.build_workers} workers")
            raised = build_index(conn, pr.space_id, args.build_memory, args.build_workers)
        conn.execute("ANALYZE documents, document_chunks, chunk_embeddings, chunk_lexemes")
        rows = chunk_rows(conn, pr.collection_id)
    log(f"postrag: written in {write_s:.1f} s, index built in {build_s:.1f} s")
    return Ingest(write_s, build_s, defaults, raised), rows


# ---------------------------------------------------------------- postrag: SQL level


@dataclass(frozen=True)
class ModeQuery:
    statement: sql.Composed
    params: list[dict[str, Any]]  # one per query
    ef_search: int


def mode_query(conn: Any, pr: Postrag, mode: str, data: Data, top_k: int) -> ModeQuery:
    """The statement and parameters the search service would run for this mode and these queries
    (min_similarity 0, so recall is the index's alone)."""
    settings = pr.settings
    scope = search_repo.make_scope([pr.collection_id], None, None)
    semantic = None
    if mode != "fulltext":
        cap = settings.exact_search_max_rows
        exact = search_repo.chunks_in_scope(conn, scope, cap) <= cap
        semantic = search_repo.SemanticLeg(pr.space_id, data.vectors.shape[1], exact)
    fulltext = search_repo.FulltextLeg([], []) if mode != "semantic" else None
    statement, base = search_repo.search_statement(semantic, fulltext, scope)
    candidates = top_k if mode != "hybrid" else max(4 * top_k, 20)
    ef_search = min(search_service.MAX_EF_SEARCH, max(settings.hnsw_ef_search, 2 * candidates))
    common = {
        **base,
        "candidates": candidates,
        "top_k": top_k,
        "min_similarity": 0.0,
        "k1": settings.bm25_k1,
        "b": settings.bm25_b,
        "rrf_k": 60,
        "semantic_weight": 1.0,
        "fulltext_weight": 1.0,
    }
    params = [
        {**common, "query": text, "query_vector": [float(x) for x in vector]}
        for text, vector in zip(data.query_texts, data.queries, strict=True)
    ]
    return ModeQuery(statement, params, ef_search)


def timed_sql(conn: Any, mq: ModeQuery, ef_search: int, rows: dict[int, int]) -> Timings:
    """Each query in its own transaction with the service's knobs; latency of the statement."""
    iterative = search_repo.pgvector_version(conn) >= (0, 8)

    def one(params: dict[str, Any]) -> tuple[float, list[Any]]:
        with conn.transaction():
            search_repo.set_search_knobs(conn, ef_search=ef_search, iterative_scan=iterative)
            started = time.perf_counter()
            hits = search_repo.run(conn, mq.statement, params)
            return (time.perf_counter() - started) * 1000, hits

    for params in mq.params[:WARMUP]:
        one(params)
    latencies, found = [], []
    started_all = time.perf_counter()
    for params in mq.params:
        ms, hits = one(params)
        latencies.append(ms)
        found.append([rows[h["chunk_id"]] for h in hits])
    return Timings(latencies, found, time.perf_counter() - started_all)


def plan_indexes(conn: Any, mq: ModeQuery) -> list[str]:
    """The indexes the planner picks for the first query (EXPLAIN, knobs set as in the run)."""
    iterative = search_repo.pgvector_version(conn) >= (0, 8)
    with conn.transaction():
        search_repo.set_search_knobs(conn, ef_search=mq.ef_search, iterative_scan=iterative)
        plan = search_repo.explain(conn, mq.statement, mq.params[0])
    names, stack = [], [plan]
    while stack:
        node = stack.pop()
        if "Index Name" in node:
            names.append(f"{node['Node Type']} using {node['Index Name']}")
        stack.extend(node.get("Plans", []))
    return sorted(set(names))


@dataclass(frozen=True)
class SqlLevel:
    modes: dict[str, Timings]
    ef_by_mode: dict[str, int]
    sweep: dict[int, Timings]
    plans: dict[str, list[str]]


def sql_level(pr: Postrag, data: Data, rows: dict[int, int], args: argparse.Namespace) -> SqlLevel:
    modes, efs, plans, sweep = {}, {}, {}, {}
    with connect(pr.settings.database_url or "") as conn:
        queries = {mode: mode_query(conn, pr, mode, data, args.top_k) for mode in MODES}
        for mode, mq in queries.items():
            log(f"SQL level: {mode}, {len(mq.params)} queries, ef_search {mq.ef_search}")
            plans[mode] = plan_indexes(conn, mq)
            modes[mode], efs[mode] = timed_sql(conn, mq, mq.ef_search, rows), mq.ef_search
        for ef in args.ef_sweep:
            if ef != efs["semantic"]:
                log(f"SQL level: semantic at ef_search {ef}")
                sweep[ef] = timed_sql(conn, queries["semantic"], ef, rows)
    return SqlLevel(modes, efs, sweep, plans)


# ---------------------------------------------------------------- postrag: HTTP level


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(pr: Postrag, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """`postrag serve` (gunicorn, default workers and threads) on 127.0.0.1, no ingestion workers."""
    env = {
        **os.environ,
        "DATABASE_URL": pr.settings.database_url or "",
        "POSTRAG_DATA_DIR": str(pr.settings.data_dir),
        "POSTRAG_EMBEDDER": "ollama",
        "OLLAMA_URL": pr.settings.ollama_url,
        "POSTRAG_EMBEDDING_MODEL": MODEL,
        "POSTRAG_WORKERS": "0",
        "POSTRAG_LOG_LEVEL": "WARNING",
    }
    command = [str(Path(sys.executable).parent / "postrag"), "serve", "--port", str(port)]
    with log_path.open("wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"postrag serve exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"postrag serve did not get ready: {log_path.read_text()[-2000:]}")


def timed_http(client: httpx.Client, pr: Postrag, mode: str, data: Data, k: int, rows) -> Timings:  # type: ignore[no-untyped-def]
    def one(text: str) -> list[dict[str, Any]]:
        body = {
            "query": text,
            "mode": mode,
            "top_k": k,
            "min_similarity": 0,
            "collection_ids": [pr.collection_id],
        }
        response = client.post("/api/v1/search", json=body)
        response.raise_for_status()
        return list(response.json()["hits"])

    for text in data.query_texts[:WARMUP]:
        one(text)
    latencies, found = [], []
    started_all = time.perf_counter()
    for text in data.query_texts:
        started = time.perf_counter()
        hits = one(text)
        latencies.append((time.perf_counter() - started) * 1000)
        found.append([rows[h["chunk_id"]] for h in hits])
    return Timings(latencies, found, time.perf_counter() - started_all)


def http_debug(client: httpx.Client, pr: Postrag, mode: str, text: str) -> dict[str, Any]:
    body = {"query": text, "mode": mode, "top_k": 10, "collection_ids": [pr.collection_id]}
    response = client.post("/api/v1/search", json={**body, "min_similarity": 0, "debug": True})
    response.raise_for_status()
    return dict(response.json()["debug"])


def http_level(
    pr: Postrag, data: Data, rows: dict[int, int], args: argparse.Namespace
) -> tuple[dict[str, Timings], dict[str, dict[str, Any]]]:
    port = free_port()
    log(f"HTTP level: starting postrag serve on 127.0.0.1:{port}")
    server = start_server(pr, port, pr.settings.data_dir / "serve.log")
    results, debug = {}, {}
    try:
        headers = {"Authorization": f"Bearer {pr.token}"}
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for mode in MODES:
                log(f"HTTP level: {mode}, {len(data.query_texts)} requests")
                debug[mode] = http_debug(client, pr, mode, data.query_texts[0])
                results[mode] = timed_http(client, pr, mode, data, args.top_k, rows)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return results, debug


# ---------------------------------------------------------------- langchain-postgres


def write_shared_data(data: Data, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "vectors.npy", data.vectors)
    np.save(directory / "queries.npy", data.queries)
    (directory / "texts.txt").write_text("\n".join(data.texts))


def run_langchain(
    args: argparse.Namespace, server_url: str, data: Data, work_dir: Path, ef_search: int
) -> list[dict[str, Any]]:
    if not args.langchain:
        return []
    if not args.langchain_python.exists():
        raise SystemExit(
            f"{args.langchain_python} not found: make the langchain venv (see this file's"
            " docstring) or pass --langchain none"
        )
    shared = work_dir / "langchain-data"
    write_shared_data(data, shared)
    reports = []
    for store in args.langchain:
        log(f"langchain-postgres {store}: starting (progress below is its own)")
        command = [
            str(args.langchain_python),
            str(BENCH_DIR / "langchain_baseline.py"),
            "--url",
            fresh_database(server_url, "langchain_bench"),
            "--data",
            str(shared),
            "--store",
            store,
            "--ef-search",
            f"0,{ef_search}",
            "--k",
            str(args.top_k),
        ]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        reports.append(json.loads(done.stdout))
    return reports


def langchain_timings(run: dict[str, Any]) -> Timings:
    return Timings(run["latencies_ms"], run["ids"], run["wall_s"])


# ---------------------------------------------------------------- report


def row(what: str, ef: Any, t: Timings, recall: float | None) -> str:
    r = "–" if recall is None else f"{recall:.3f}"
    return f"| {what} | {ef} | {t.p50():.2f} | {t.p99():.2f} | {t.qps():,.0f} | {r} |"


def ingest_table(args, data: Data, ingest: Ingest, lc: list[dict[str, Any]]) -> list[str]:  # type: ignore[no-untyped-def]
    n = len(data.texts)
    mem = ingest.build_settings["maintenance_work_mem"]
    workers = ingest.build_settings["max_parallel_maintenance_workers"]
    out = [
        f"| ingest, {n:,} chunks x {data.vectors.shape[1]}-d, HNSW m=16 ef_construction=64"
        " | rows/s incl. index build | write | index build |",
        "| --- | --- | --- | --- |",
        f"| postrag: binary COPY per document of {args.per_doc} (+ BM25 postings), index after;"
        f" build as today (maintenance_work_mem {mem}, up to {workers} parallel workers)"
        f" | {n / (ingest.write_s + ingest.build_s):,.0f} | {ingest.write_s:.1f} s"
        f" ({n / ingest.write_s:,.0f} rows/s) | {ingest.build_s:.1f} s |",
    ]
    if ingest.raised_build_s is not None:
        out.append(
            f"| postrag, index built with maintenance_work_mem {args.build_memory},"
            f" {args.build_workers} parallel workers | "
            f"{n / (ingest.write_s + ingest.raised_build_s):,.0f} | same |"
            f" {ingest.raised_build_s:.1f} s |"
        )
    for report in lc:
        how = LANGCHAIN_INGEST[report["store"]]
        out.append(
            f"| langchain-postgres {report['store']}: {how}; index built with maintenance_work_mem"
            f" {mem} | {n / (report['insert_s'] + report['build_s']):,.0f}"
            f" | {report['insert_s']:.1f} s ({n / report['insert_s']:,.0f} rows/s)"
            f" | {report['build_s']:.1f} s |"
        )
    return out


LANGCHAIN_INGEST = {
    "PGVectorStore": "add_embeddings (one INSERT and commit per row), then apply_vector_index",
    "PGVector": "add_embeddings in batches of 1,000 rows, then CREATE INDEX by hand",
}


def query_table(
    args,
    data: Data,
    sql_level_: SqlLevel,
    http: dict[str, Timings],
    lc,
    exact,  # type: ignore[no-untyped-def]
) -> list[str]:
    k = args.top_k
    out = [
        f"| queries ({len(data.queries)} per line, top {k}, one client in sequence)"
        f" | ef_search | p50 ms | p99 ms | queries/s | recall@{k} |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mode, t in sql_level_.modes.items():
        ef = sql_level_.ef_by_mode[mode] if mode != "fulltext" else "–"
        recall = recall_at_k(t.found, exact, k) if mode == "semantic" else None
        out.append(row(f"postrag SQL statement, {mode}", ef, t, recall))
    for ef, t in sorted(sql_level_.sweep.items()):
        out.append(row("postrag SQL statement, semantic", ef, t, recall_at_k(t.found, exact, k)))
    for mode, t in http.items():
        ef = sql_level_.ef_by_mode[mode] if mode != "fulltext" else "–"
        recall = recall_at_k(t.found, exact, k) if mode == "semantic" else None
        out.append(row(f"postrag HTTP POST /api/v1/search, {mode}", ef, t, recall))
    for report in lc:
        for kind, runs in (
            ("library call", report["runs"]),
            ("its SQL statement", report["sql_runs"]),
        ):
            for run in runs:
                t = langchain_timings(run)
                ef = run["ef_search"] or "40 (its default: none set)"
                what = f"langchain-postgres {report['store']} {kind}, semantic"
                out.append(row(what, ef, t, recall_at_k(t.found, exact, k)))
    return out


def summary(args, sql_level_: SqlLevel, ingest: Ingest, lc, exact, data: Data) -> list[str]:  # type: ignore[no-untyped-def]
    k = args.top_k
    semantic = sql_level_.modes["semantic"]
    recall = recall_at_k(semantic.found, exact, k)
    met = recall >= 0.95 and semantic.p50() <= 10
    n = len(data.texts)
    lines = [
        f"- target recall@{k} >= 0.95 at p50 <= 10 ms (SQL level, semantic, {n:,} chunks):"
        f" {'met' if met else 'NOT met'} (recall {recall:.3f}, p50 {semantic.p50():.2f} ms)",
        "- postrag sets nothing for index builds: they get the session's, i.e. the server's,"
        f" maintenance_work_mem ({ingest.build_settings['maintenance_work_mem']}) and"
        f" max_parallel_maintenance_workers ({ingest.build_settings['max_parallel_maintenance_workers']})",
    ]
    for mode, indexes in sql_level_.plans.items():
        lines.append(f"- plan, {mode}: {', '.join(indexes) or 'no index'}")
    postrag_rate = n / (ingest.write_s + ingest.build_s)
    for report in lc:
        rate = n / (report["insert_s"] + report["build_s"])
        same_ef = next(r for r in report["runs"] if r["ef_search"])
        t = langchain_timings(same_ef)
        lines.append(
            f"- vs langchain-postgres {report['store']}: ingest {postrag_rate / rate:.1f}x"
            f" (index build included); semantic p50 at ef_search {same_ef['ef_search']}:"
            f" postrag SQL {semantic.p50():.2f} ms vs its library call {t.p50():.2f} ms,"
            f" recall {recall:.3f} vs {recall_at_k(t.found, exact, k):.3f}"
        )
    return lines


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--clusters", type=int, help="default: chunks / 100")
    parser.add_argument("--noise", type=float, default=0.05, help="per-dimension sigma")
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--vocabulary", type=int, default=5000)
    parser.add_argument("--per-doc", type=int, default=100, help="chunks per document")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--ef-sweep", type=_ints, default=[40, 64, 100, 200])
    parser.add_argument("--build-compare", action="store_true")
    parser.add_argument("--build-memory", default="2GB")
    parser.add_argument("--build-workers", type=int, default=2)
    parser.add_argument(
        "--langchain",
        type=_stores,
        default=["pgvectorstore"],
        help="pgvectorstore, pgvector, both comma-separated, or none",
    )
    parser.add_argument(
        "--langchain-python", type=Path, default=BENCH_DIR / ".venv-langchain" / "bin" / "python"
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    args.clusters = args.clusters or max(10, args.chunks // 100)
    return args


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _stores(text: str) -> list[str]:
    stores = [] if text == "none" else text.split(",")
    for store in stores:
        if store not in ("pgvectorstore", "pgvector"):
            raise argparse.ArgumentTypeError(f"unknown store {store!r}")
    return stores


def main() -> None:
    args = parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="postrag-bench-search-"))
    server_url = os.environ.get("DATABASE_URL") or embedded.start(work_dir).url
    log(f"data: {args.chunks:,} chunks around {args.clusters:,} clusters, {args.queries} queries")
    data = make_data(args)
    exact = exact_top_k(data.vectors, data.queries, args.top_k)
    with SyntheticOllama(data.query_texts, data.queries) as ollama:
        pr = setup_postrag(server_url, work_dir, ollama.url)
        ingest, rows = ingest_postrag(pr, data, args)
        sql_results = sql_level(pr, data, rows, args)
        http, debug = http_level(pr, data, rows, args)
    for mode, info in debug.items():
        log(f"HTTP debug, {mode}: {info['semantic_scan']} scan; plan {info['plan']}")
    lc = run_langchain(args, server_url, data, work_dir, sql_results.ef_by_mode["semantic"])
    print()
    print("\n".join(ingest_table(args, data, ingest, lc)))
    print()
    print("\n".join(query_table(args, data, sql_results, http, lc, exact)))
    print()
    print("\n".join(summary(args, sql_results, ingest, lc, exact, data)))


if __name__ == "__main__":
    main()
