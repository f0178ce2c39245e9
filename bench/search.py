"""Search benchmark: postrag's search (SQL, service, HTTP) against langchain-postgres, same run.

    .venv/bin/python bench/search.py [--chunks 100000] [--queries 200] [--no-build-compare]
    .venv/bin/python bench/search.py --chunks 5000 --queries 50      # a quick run

langchain-postgres pins pgvector<0.4 and postrag needs pgvector>=0.5, so its side runs in a venv
of its own, as a subprocess (bench/langchain_baseline.py). Make that venv once:

    python3.11 -m venv bench/.venv-langchain
    bench/.venv-langchain/bin/pip install -r bench/requirements-langchain.txt

or pass --langchain none. Runs against DATABASE_URL if set, else a throwaway embedded PostgreSQL;
postrag and each langchain store get a fresh database on that one server. Progress goes to
stderr; Markdown tables and a summary go to stdout. At the defaults (100,000 chunks) expect about
half an hour on 2 cores, most of it in the two HNSW builds at the server's maintenance_work_mem
(64MB on the embedded server: the 100k graph, ~225 MB, does not fit), postrag's comparison build
and langchain's; --no-build-compare saves the first.

Data: --chunks unit 384-d vectors in two levels of clusters (topics -> --clusters centres ->
chunks, each a centre plus gaussian noise, normalised: uniformly random 384-d vectors have no
neighbourhoods, so no ANN index can find their neighbours); each chunk's text is 60-100 words,
80% drawn from a Zipf-distributed vocabulary (English stop words first, then made-up words) and
20% from its cluster's own words. Queries are drawn the same way, not taken from the data. Ground
truth: the exact cosine top-k in numpy over the same rows (one collection, no filter).

All in one run:
1. postrag ingest: documents of --per-doc chunks, written by replace_chunks (binary COPY; the
   chunk triggers add BM25 postings) into the embedding space with its HNSW index dropped, then
   the index built by space_repo.create_index as postrag builds a new space's index (with
   POSTRAG_INDEX_BUILD_MEMORY); before that, unless --no-build-compare, the same build with the
   server's defaults (what a build without that setting gets) and with --build-memory and
   --build-workers;
2. SQL level: the search service's statement for each mode (hybrid, semantic, fulltext) with
   its per-query knobs, on one connection: p50/p99 latency of the statement, queries/s over the
   loop (transaction and knobs included), recall@k of semantic against exact, an ef_search sweep;
3. service level: app.services.search.search in-process acting as the user (role postrag_app,
   row-level security on, as a request runs it), the query vector looked up (no HTTP);
4. HTTP level: POST /api/v1/search on `postrag serve` (gunicorn, its defaults) with
   POSTRAG_EMBEDDER=ollama pointing at a loopback fake Ollama that answers each query text with
   the query's synthetic vector; one client, requests in sequence;
5. langchain-postgres: ingest through the library (then an HNSW index with postrag's m and
   ef_construction), query latency and recall@k at its default ef_search and at postrag's.
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
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import prepare_database
from app.db import embedded, scope
from app.providers.http_embedders import OllamaEmbedder
from app.repositories import bm25
from app.repositories import documents as document_repo
from app.repositories import embedding_spaces as space_repo
from app.repositories import search as search_repo
from app.services import collections, spaces, users
from app.services import search as search_service
from app.services.chunking import Chunk
from app.services.tokens import Principal
from app.services.worker import connect
from app.settings import Settings
from bench.common import fresh_database
from tests.fakes import FakeEmbeddingServer

BENCH_DIR = Path(__file__).resolve().parent
MODEL = "bench-synthetic-384"
MODES = ("hybrid", "semantic", "fulltext")
WARMUP = 10
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
# The most frequent words of real text are stop words, which to_tsvector drops.
STOP_WORDS = (
    "the of and to a in is it that for on was with as be by at this are from or an have not but"
    " they which you were his her all their has had there been if more can will about what when"
    " would so no out up into do than its also other some these them"
).split()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- synthetic data, ground truth


@dataclass(frozen=True)
class Data:
    vectors: np.ndarray  # (chunks, dimension) float32, unit length
    texts: list[str]
    queries: np.ndarray  # (queries, dimension) float32, unit length
    query_texts: list[str]  # all distinct: the fake Ollama maps each to its query vector


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_vocabulary(rng: np.random.Generator, size: int) -> np.ndarray:
    """English stop words first (the most frequent ranks), then made-up words."""
    words: dict[str, None] = dict.fromkeys(STOP_WORDS)
    while len(words) < size:
        words["".join(rng.choice(SYLLABLES, rng.integers(2, 5)))] = None
    return np.array(list(words))


def zipf(size: int, exponent: float = 1.07) -> np.ndarray:
    weights = 1.0 / np.arange(1, size + 1) ** exponent
    return weights / weights.sum()


def make_texts(
    rng: np.random.Generator, vocab: np.ndarray, own_words: np.ndarray, labels: np.ndarray
) -> list[str]:
    """60-100 words per text: 80% from the Zipf vocabulary, 20% from its cluster's own words."""
    lengths = rng.integers(60, 101, size=len(labels))
    total = int(lengths.sum())
    common = rng.choice(len(vocab), size=total, p=zipf(len(vocab)))
    owner = np.repeat(labels, lengths)
    topical = own_words[owner, rng.integers(0, own_words.shape[1], size=total)]
    words = vocab[np.where(rng.random(total) < 0.2, topical, common)]
    bounds = np.concatenate(([0], np.cumsum(lengths)))
    return [" ".join(words[a:b].tolist()) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def make_query_texts(
    rng: np.random.Generator, vocab: np.ndarray, own_words: np.ndarray, labels: np.ndarray
) -> list[str]:
    """Two of the query's cluster's words and two words of the Zipf vocabulary; all distinct."""
    texts: dict[str, None] = {}
    p = zipf(len(vocab))
    for label in labels:
        text = ""
        while not text or text in texts:
            picked = [*rng.choice(vocab[own_words[label]], 2, replace=False)]
            text = " ".join([*picked, *rng.choice(vocab, 2, p=p)])
        texts[text] = None
    return list(texts)


def make_centres(rng: np.random.Generator, args: argparse.Namespace) -> np.ndarray:
    """Cluster centres grouped under topics (clusters of a topic alike, as in real corpora)."""
    topics = unit(rng.standard_normal((args.topics, args.dimension), dtype=np.float32))
    spread = rng.standard_normal((args.clusters, args.dimension), dtype=np.float32)
    return unit(topics[rng.integers(0, args.topics, size=args.clusters)] + spread * args.spread)


def make_data(args: argparse.Namespace) -> Data:
    """The same seed gives the same chunks whatever --queries is (separate random streams)."""
    streams = np.random.SeedSequence(args.seed).spawn(3)
    space, words, asked = (np.random.default_rng(s) for s in streams)
    centres = make_centres(space, args)
    labels = space.integers(0, args.clusters, size=args.chunks)
    noise = space.standard_normal((args.chunks, args.dimension), dtype=np.float32)
    vectors = unit(centres[labels] + noise * args.noise)
    vocab = make_vocabulary(words, args.vocabulary)
    # A cluster's own words come from the less common part of the vocabulary, as topical words do.
    own_words = words.integers(len(vocab) // 10, len(vocab), size=(args.clusters, 8))
    texts = make_texts(words, vocab, own_words, labels)
    query_labels = asked.integers(0, args.clusters, size=args.queries)
    query_noise = asked.standard_normal((args.queries, args.dimension), dtype=np.float32)
    queries = unit(centres[query_labels] + query_noise * args.noise)
    return Data(vectors, texts, queries, make_query_texts(asked, vocab, own_words, query_labels))


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


# ---------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timings:
    latencies_ms: list[float]
    found: list[list[int]]  # per query, row indexes into Data.vectors, best first
    wall_s: float  # the whole loop, so queries/s counts every round trip of a query

    def p50(self) -> float:
        return float(np.percentile(self.latencies_ms, 50))

    def p99(self) -> float:
        return float(np.percentile(self.latencies_ms, 99))

    def qps(self) -> float:
        return len(self.latencies_ms) / self.wall_s


def timed(one: Callable[[int], tuple[list[int], float | None]], n: int) -> Timings:
    """Query i = 0..n-1, after a few untimed warm-up queries. `one(i)` returns the rows found and
    the latency to report in ms, or None to report the whole call's."""
    for i in range(min(WARMUP, n)):
        one(i)
    latencies, found = [], []
    started_all = time.perf_counter()
    for i in range(n):
        started = time.perf_counter()
        rows, ms = one(i)
        latencies.append((time.perf_counter() - started) * 1000 if ms is None else ms)
        found.append(rows)
    return Timings(latencies, found, time.perf_counter() - started_all)


# ---------------------------------------------------------------- query embedding stand-ins


def synthetic_ollama(data: Data) -> FakeEmbeddingServer:
    """POST /api/embed on 127.0.0.1 answering each query text with the query's synthetic vector
    (tests/fakes.py's server; other texts, such as the dimension probe, get a hashed vector)."""
    table = {t: v.tolist() for t, v in zip(data.query_texts, data.queries, strict=True)}
    return FakeEmbeddingServer(models=(MODEL,), dimension=data.queries.shape[1], vectors=table)


class LookupEmbedders:
    """In-process stand-in for QueryEmbedders: each query text's synthetic vector."""

    def __init__(self, data: Data) -> None:
        self.table = dict(zip(data.query_texts, data.queries, strict=True))

    def get(self, provider: str, model: str) -> LookupEmbedders:
        return self

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])


# ---------------------------------------------------------------- postrag: setup, ingest, index


@dataclass(frozen=True)
class Postrag:
    settings: Settings  # database_url set
    who: Principal
    token: str
    collection_id: int
    space_id: int

    @property
    def url(self) -> str:
        return self.settings.database_url or ""


def setup_postrag(server_url: str, work_dir: Path, ollama_url: str) -> Postrag:
    """A fresh database, a user with a token, a collection, and the fake model's ready space."""
    settings = replace(
        Settings.from_env({**os.environ, "POSTRAG_DATA_DIR": str(work_dir)}),
        database_url=fresh_database(server_url, "postrag_bench"),
        workers=0,
        embedder="ollama",
        ollama_url=ollama_url,
        embedding_model=MODEL,
    )
    settings = prepare_database(settings)
    with connect(settings.database_url or "") as conn:
        user, token = users.create(conn, name="bench", role="user")
        who = Principal(user["id"], user["name"], user["role"], 0, ("read", "write"))
        coll = collections.get_or_create(conn, user["id"], "bench")
        # The app's embedder owns the space, so search embeds queries with it (the fake Ollama).
        space = spaces.ensure_space(conn, OllamaEmbedder(ollama_url, MODEL), max_attempts=1)
    return Postrag(settings, who, token, coll["id"], space.id)


def chunks_of(texts: list[str]) -> list[Chunk]:
    chunks, offset = [], 0
    for i, text in enumerate(texts):
        chunks.append(Chunk(i, text, len(text.split()), None, offset, offset + len(text), ()))
        offset += len(text) + 1
    return chunks


def write_document(conn: Any, pr: Postrag, doc_no: int, texts: list[str], vectors: Any) -> None:
    """One document as the worker writes it: its row, chunks and vectors, status, one transaction.
    The stored original is a placeholder: the comparison is about chunks and vectors."""
    with conn.transaction():
        doc = document_repo.insert(
            conn,
            collection_id=pr.collection_id,
            filename=f"doc{doc_no:06d}.txt",
            title="",
            content_type="text/plain",
            sha256=hashlib.sha256(b"bench %d" % doc_no).digest(),
            content=b"(benchmark document)",
            metadata={},
        )
        assert doc is not None
        document_repo.replace_chunks(conn, doc.id, pr.space_id, chunks_of(texts), vectors)
        document_repo.set_status(conn, doc.id, "indexed")


def load_postrag(conn: Any, pr: Postrag, data: Data, per_doc: int) -> float:
    """Seconds to write every document into the space with its HNSW index dropped."""
    conn.execute("SELECT drop_embedding_space_index(%s)", (pr.space_id,))
    total = len(data.texts)
    every = max(1, total // per_doc // 10)
    started = time.perf_counter()
    for doc_no, start in enumerate(range(0, total, per_doc)):
        end = start + per_doc
        write_document(conn, pr, doc_no, data.texts[start:end], data.vectors[start:end])
        if (doc_no + 1) % every == 0:
            log(f"postrag: {min(end, total):,} / {total:,} chunks written")
    return time.perf_counter() - started


def server_build_settings(conn: Any) -> dict[str, str]:
    """What an index build gets when nothing is set: the session's (server's) values."""
    names = ("maintenance_work_mem", "max_parallel_maintenance_workers")
    return {name: conn.execute(f"SHOW {name}").fetchone()[name] for name in names}


def build_index(conn: Any, space_id: int, memory: str | None, workers: int | None) -> float:
    """Seconds to rebuild the space's HNSW index with space_repo.create_index (its ANALYZE
    included); None keeps the session's setting."""
    conn.execute("SELECT drop_embedding_space_index(%s)", (space_id,))
    started = time.perf_counter()
    with conn.transaction():
        if workers is not None:
            conn.execute(
                "SELECT set_config('max_parallel_maintenance_workers', %s, true)", (str(workers),)
            )
        space_repo.create_index(conn, space_id, build_memory=memory)
    return time.perf_counter() - started


def chunk_rows(conn: Any, collection_id: int) -> dict[int, int]:
    """Chunk id -> row of Data.vectors (documents and ordinals were written in row order)."""
    rows = conn.execute(
        "SELECT id FROM document_chunks WHERE collection_id = %s ORDER BY document_id, ordinal",
        (collection_id,),
    ).fetchall()
    return {r["id"]: i for i, r in enumerate(rows)}


class Build(NamedTuple):
    label: str
    memory: str  # maintenance_work_mem in effect
    workers: str  # max_parallel_maintenance_workers in effect
    seconds: float


@dataclass(frozen=True)
class Ingest:
    write_s: float
    builds: list[Build]  # the last one is postrag's own, the index the queries then use
    server: dict[str, str]  # the server's maintenance_work_mem, max_parallel_maintenance_workers

    @property
    def postrag_build(self) -> Build:
        return self.builds[-1]


def build_plans(pr: Postrag, args: argparse.Namespace) -> list[tuple[str, str | None, int | None]]:
    """(label, maintenance_work_mem, max_parallel_maintenance_workers) of each build, postrag's
    own last (None: the server's setting)."""
    plans: list[tuple[str, str | None, int | None]] = []
    if args.build_compare:
        plans.append(
            ("server defaults (what a build without POSTRAG_INDEX_BUILD_MEMORY gets)", None, None)
        )
        plans.append(
            ("raised (--build-memory, --build-workers)", args.build_memory, args.build_workers)
        )
    plans.append(
        (
            "as postrag builds a space's index (POSTRAG_INDEX_BUILD_MEMORY)",
            pr.settings.index_build_memory,
            None,
        )
    )
    return plans


def build_all(
    conn: Any, pr: Postrag, args: argparse.Namespace, server: dict[str, str]
) -> list[Build]:
    builds: list[Build] = []
    for label, memory, workers in build_plans(pr, args):
        mem = memory or server["maintenance_work_mem"]
        parallel = (
            str(workers) if workers is not None else server["max_parallel_maintenance_workers"]
        )
        log(f"postrag: building the HNSW index, {label}: {mem}, {parallel} parallel workers")
        seconds = build_index(conn, pr.space_id, memory, workers)
        log(f"postrag: index built in {seconds:.1f} s")
        builds.append(Build(label, mem, parallel, seconds))
    return builds


def ingest_postrag(pr: Postrag, data: Data, args: argparse.Namespace) -> tuple[Ingest, dict]:
    with connect(pr.url) as conn:
        log(f"postrag: writing {len(data.texts):,} chunks in documents of {args.per_doc}")
        write_s = load_postrag(conn, pr, data, args.per_doc)
        log(f"postrag: written in {write_s:.1f} s")
        server = server_build_settings(conn)
        builds = build_all(conn, pr, args, server)
        # Steady state, as autovacuum leaves it: statistics, and visibility maps for index-only
        # scans of the postings (langchain's tables get the same).
        conn.execute("VACUUM (ANALYZE) documents, document_chunks, chunk_embeddings, chunk_lexemes")
        rows = chunk_rows(conn, pr.collection_id)
    return Ingest(write_s, builds, server), rows


# ---------------------------------------------------------------- postrag: SQL and service level


@dataclass(frozen=True)
class ModeQuery:
    statement: sql.Composed
    params: list[dict[str, Any]]  # one per query
    ef_search: int


def mode_statement(conn: Any, pr: Postrag, mode: str, dimension: int) -> tuple[sql.Composed, dict]:
    """The statement app/services/search.py composes for this mode over the one collection."""
    scope = search_repo.make_scope([pr.collection_id], None, None)
    semantic = None
    if mode != "fulltext":
        cap = pr.settings.exact_search_max_rows
        exact = search_repo.chunks_in_scope(conn, scope, cap) <= cap
        semantic = search_repo.SemanticLeg(pr.space_id, dimension, exact)
    fulltext = bm25.FulltextLeg([], []) if mode != "semantic" else None
    return search_repo.search_statement(semantic, fulltext, scope)


def mode_query(conn: Any, pr: Postrag, mode: str, data: Data, top_k: int) -> ModeQuery:
    """Statement, parameters and ef_search as the service picks them; min_similarity 0, so that
    semantic recall is the index's alone."""
    settings = pr.settings
    statement, base = mode_statement(conn, pr, mode, data.vectors.shape[1])
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
        {**common, "query": text, "query_vector": np.asarray(vector, dtype=np.float32)}
        for text, vector in zip(data.query_texts, data.queries, strict=True)
    ]
    return ModeQuery(statement, params, ef_search)


def timed_sql(conn: Any, mq: ModeQuery, ef_search: int, rows: dict[int, int]) -> Timings:
    """Each query in its own transaction with the service's knobs; latency of the statement."""
    iterative = search_repo.pgvector_version(conn) >= (0, 8)

    def one(i: int) -> tuple[list[int], float]:
        with conn.transaction():
            search_repo.set_search_knobs(
                conn,
                ef_search=ef_search,
                iterative_scan=iterative,
                max_scan_tuples=search_service.MAX_SCAN_TUPLES,
            )
            started = time.perf_counter()
            hits = search_repo.run(conn, mq.statement, mq.params[i])
            ms = (time.perf_counter() - started) * 1000
        return [rows[h.chunk_id] for h in hits], ms

    return timed(one, len(mq.params))


def plan_indexes(conn: Any, mq: ModeQuery) -> list[str]:
    """The index scans the planner picks for the first query (EXPLAIN, knobs as in the run)."""
    iterative = search_repo.pgvector_version(conn) >= (0, 8)
    with conn.transaction():
        search_repo.set_search_knobs(
            conn,
            ef_search=mq.ef_search,
            iterative_scan=iterative,
            max_scan_tuples=search_service.MAX_SCAN_TUPLES,
        )
        plan = search_repo.explain(conn, mq.statement, mq.params[0])
    names, stack = set(), [plan]
    while stack:
        node = stack.pop()
        if "Index Name" in node:
            names.add(f"{node['Node Type']} using {node['Index Name']}")
        stack.extend(node.get("Plans", []))
    return sorted(names)


@dataclass(frozen=True)
class SqlLevel:
    modes: dict[str, Timings]
    ef_by_mode: dict[str, int]
    sweep: dict[int, Timings]  # semantic at other ef_search values
    plans: dict[str, list[str]]
    rls: dict[str, Timings]  # the same statements acting as the owner: row-level security on


def sql_level(pr: Postrag, data: Data, rows: dict[int, int], args: argparse.Namespace) -> SqlLevel:
    modes, efs, plans, sweep, rls = {}, {}, {}, {}, {}
    with connect(pr.url) as conn:
        queries = {mode: mode_query(conn, pr, mode, data, args.top_k) for mode in MODES}
        for mode, mq in queries.items():
            log(f"SQL level: {mode}, {len(mq.params)} queries, ef_search {mq.ef_search}")
            plans[mode] = plan_indexes(conn, mq)
            modes[mode], efs[mode] = timed_sql(conn, mq, mq.ef_search, rows), mq.ef_search
        for ef in args.ef_sweep:
            if ef != efs["semantic"]:
                log(f"SQL level: semantic at ef_search {ef}")
                sweep[ef] = timed_sql(conn, queries["semantic"], ef, rows)
        # As the app runs a request: role postrag_app, the policies of V2_5 in every plan.
        with scope.acting_as(conn, pr.who.user_id):
            for mode, mq in queries.items():
                log(f"SQL level under row-level security: {mode}")
                rls[mode] = timed_sql(conn, mq, mq.ef_search, rows)
    return SqlLevel(modes, efs, sweep, plans, rls)


def service_level(
    pr: Postrag, data: Data, rows: dict[int, int], args: argparse.Namespace
) -> dict[str, Timings]:
    """search_service.search in-process on one connection acting as the user, as a request runs
    it: the SQL level plus the service's own queries (preferences, scope, space, scope size,
    knobs), without HTTP or embedding."""
    embedders: Any = LookupEmbedders(data)
    results = {}
    with connect(pr.url) as conn, scope.acting_as(conn, pr.who.user_id):
        for mode in MODES:
            log(f"service level: {mode}, {len(data.queries)} queries")

            def one(i: int, mode: str = mode) -> tuple[list[int], None]:
                request = search_service.SearchRequest(
                    query=data.query_texts[i],
                    mode=mode,
                    top_k=args.top_k,
                    min_similarity=0.0,
                    collection_ids=[pr.collection_id],
                )
                found = search_service.search(
                    search_service.holding(conn),
                    pr.who,
                    request,
                    search_service.SearchDeps(pr.settings, embedders, iterative_scans=True),
                )
                return [rows[h.chunk_id] for h in found.hits], None

            results[mode] = timed(one, len(data.queries))
    return results


# ---------------------------------------------------------------- postrag: HTTP level


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(pr: Postrag, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """`postrag serve` (gunicorn, its default workers and threads) on 127.0.0.1, no ingestion."""
    env = {
        **os.environ,
        "DATABASE_URL": pr.url,
        "POSTRAG_DATA_DIR": str(pr.settings.data_dir),
        "POSTRAG_EMBEDDER": "ollama",
        "OLLAMA_URL": pr.settings.ollama_url,
        "POSTRAG_EMBEDDING_MODEL": MODEL,
        "POSTRAG_WORKERS": "0",
        "POSTRAG_LOG_LEVEL": "WARNING",
        "POSTRAG_RATE_LIMIT_PER_MINUTE": "0",  # one client sends thousands of requests a minute
    }
    command = [str(Path(sys.executable).parent / "postrag"), "serve", "--port", str(port)]
    with log_path.open("wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"postrag serve did not start: {log_path.read_text()[-2000:]}")


def search_body(pr: Postrag, mode: str, text: str, top_k: int) -> dict[str, Any]:
    return {
        "query": text,
        "mode": mode,
        "top_k": top_k,
        "min_similarity": 0,
        "collection_ids": [pr.collection_id],
    }


def timed_http(
    client: httpx.Client, pr: Postrag, mode: str, data: Data, k: int, rows: dict[int, int]
) -> Timings:
    def one(i: int) -> tuple[list[int], None]:
        response = client.post("/api/v1/search", json=search_body(pr, mode, data.query_texts[i], k))
        response.raise_for_status()
        return [rows[h["chunk_id"]] for h in response.json()["hits"]], None

    return timed(one, len(data.query_texts))


def http_level(
    pr: Postrag, data: Data, rows: dict[int, int], args: argparse.Namespace
) -> dict[str, Timings]:
    """Timings per mode, and under "healthz" those of GET /healthz: the HTTP stack's floor."""
    port = free_port()
    log(f"HTTP level: starting postrag serve on 127.0.0.1:{port}")
    server = start_server(pr, port, pr.settings.data_dir / "serve.log")
    results = {}
    try:
        headers = {"Authorization": f"Bearer {pr.token}"}
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:

            def healthz(i: int) -> tuple[list[int], None]:
                client.get("/healthz").raise_for_status()
                return [], None

            results["healthz"] = timed(healthz, len(data.query_texts))
            for mode in MODES:
                body = {**search_body(pr, mode, data.query_texts[0], args.top_k), "debug": True}
                debug = client.post("/api/v1/search", json=body).raise_for_status().json()["debug"]
                shown = {key: debug[key] for key in ("semantic_scan", "ef_search", "timings_ms")}
                log(
                    f"HTTP level: {mode}, {len(data.query_texts)} requests; one with debug: {shown}"
                )
                results[mode] = timed_http(client, pr, mode, data, args.top_k, rows)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return results


# ---------------------------------------------------------------- langchain-postgres


def write_shared_data(data: Data, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "vectors.npy", data.vectors)
    np.save(directory / "queries.npy", data.queries)
    (directory / "texts.txt").write_text("\n".join(data.texts))


def run_langchain(
    args: argparse.Namespace, server_url: str, data: Data, work_dir: Path, ef_search: int
) -> list[dict[str, Any]]:
    """bench/langchain_baseline.py in its venv, once per store, each in a fresh database."""
    shared = work_dir / "langchain-data"
    write_shared_data(data, shared)
    reports = []
    for store in args.langchain:
        log(f"langchain-postgres {store}: starting (the [langchain] lines are its own)")
        command = [
            str(args.langchain_python),
            str(BENCH_DIR / "langchain_baseline.py"),
            *("--url", fresh_database(server_url, "langchain_bench")),
            *("--data", str(shared), "--store", store),
            *("--ef-search", f"0,{ef_search}", "--k", str(args.top_k)),
        ]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        reports.append(json.loads(done.stdout))
    return reports


def langchain_timings(run: dict[str, Any]) -> Timings:
    return Timings(run["latencies_ms"], run["ids"], run["wall_s"])


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class Results:
    args: argparse.Namespace
    data: Data
    exact: np.ndarray
    ingest: Ingest
    sql: SqlLevel
    service: dict[str, Timings]
    http: dict[str, Timings]
    langchain: list[dict[str, Any]]

    def recall(self, t: Timings) -> float:
        return recall_at_k(t.found, self.exact, self.args.top_k)


LANGCHAIN_INGEST = {
    "PGVectorStore": "add_embeddings (an INSERT and a commit per row), then apply_vector_index",
    "PGVector": "add_embeddings in batches of 1,000 rows, then CREATE INDEX (it has no API)",
}


def ingest_table(r: Results) -> list[str]:
    n, ingest = len(r.data.texts), r.ingest
    ours = ingest.postrag_build
    out = [
        f"| ingest, {n:,} chunks x {r.data.vectors.shape[1]}-d, HNSW m=16 ef_construction=64"
        " | rows/s, index build included | write | index build |",
        "| --- | --- | --- | --- |",
        f"| postrag: binary COPY, a transaction per document of {r.args.per_doc} chunks (BM25"
        f" postings by trigger), then the index {ours.label}: maintenance_work_mem {ours.memory},"
        f" max_parallel_maintenance_workers {ours.workers}"
        f" | {n / (ingest.write_s + ours.seconds):,.0f} | {ingest.write_s:.1f} s"
        f" ({n / ingest.write_s:,.0f} rows/s) | {ours.seconds:.1f} s |",
    ]
    for build in ingest.builds[:-1]:
        out.append(
            f"| postrag, same rows, index built with {build.label}: maintenance_work_mem"
            f" {build.memory}, max_parallel_maintenance_workers {build.workers}"
            f" | {n / (ingest.write_s + build.seconds):,.0f} | same | {build.seconds:.1f} s |"
        )
    for report in r.langchain:
        out.append(
            f"| langchain-postgres {report['store']}: {LANGCHAIN_INGEST[report['store']]};"
            f" index built with the server's maintenance_work_mem"
            f" ({ingest.server['maintenance_work_mem']}), as a user's would be"
            f" | {n / (report['insert_s'] + report['build_s']):,.0f}"
            f" | {report['insert_s']:.1f} s ({n / report['insert_s']:,.0f} rows/s)"
            f" | {report['build_s']:.1f} s |"
        )
    return out


def query_row(r: Results, level: str, mode: str, ef: Any, t: Timings) -> str:
    recall = f"{r.recall(t):.3f}" if mode == "semantic" else "–"
    return (
        f"| {level} | {mode} | {ef} | {t.p50():.2f} | {t.p99():.2f} | {t.qps():,.0f} | {recall} |"
    )


def postrag_rows(r: Results) -> list[str]:
    def ef(mode: str) -> Any:
        return r.sql.ef_by_mode[mode] if mode != "fulltext" else "–"

    out = [query_row(r, "postrag, SQL statement", m, ef(m), t) for m, t in r.sql.modes.items()]
    for value, t in sorted(r.sql.sweep.items()):
        out.append(query_row(r, "postrag, SQL statement", "semantic", value, t))
    for m, t in r.sql.rls.items():
        out.append(query_row(r, "postrag, SQL statement as the user (RLS)", m, ef(m), t))
    for m, t in r.service.items():
        out.append(query_row(r, "postrag, service call in-process", m, ef(m), t))
    for m in MODES:
        out.append(query_row(r, "postrag, HTTP POST /api/v1/search", m, ef(m), r.http[m]))
    floor = "postrag, HTTP GET /healthz (no database: the HTTP stack alone)"
    out.append(query_row(r, floor, "–", "–", r.http["healthz"]))
    return out


def langchain_rows(r: Results) -> list[str]:
    out = []
    for report in r.langchain:
        for kind, runs in (("library call", report["runs"]), ("its SQL", report["sql_runs"])):
            for run in runs:
                ef = run["ef_search"] or "40 (its default)"
                level = f"langchain {report['store']}, {kind}"
                out.append(query_row(r, level, "semantic", ef, langchain_timings(run)))
    return out


def query_table(r: Results) -> list[str]:
    k = r.args.top_k
    return [
        f"| {len(r.data.queries)} queries, top {k}, one client in sequence | mode | ef_search"
        f" | p50 ms | p99 ms | queries/s | recall@{k} |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *postrag_rows(r),
        *langchain_rows(r),
    ]


def summary(r: Results) -> list[str]:
    semantic, n = r.sql.modes["semantic"], len(r.data.texts)
    recall, p50 = r.recall(semantic), semantic.p50()
    verdict = "met" if recall >= 0.95 and p50 <= 10 else "NOT met"
    lines = [
        f"- target recall@{r.args.top_k} >= 0.95 at p50 <= 10 ms (SQL level, semantic,"
        f" {n:,} chunks): {verdict} (recall {recall:.3f}, p50 {p50:.2f} ms)",
        "- index builds: postrag builds a new space's index with POSTRAG_INDEX_BUILD_MEMORY"
        f" ({r.ingest.postrag_build.memory} here) and the server's max_parallel_maintenance_workers"
        f" ({r.ingest.server['max_parallel_maintenance_workers']}); a build without it (e.g."
        " create_embedding_space_index() after a bulk load) gets the server's"
        f" maintenance_work_mem ({r.ingest.server['maintenance_work_mem']}); build times: "
        + ", ".join(f"{b.memory} x {b.workers} workers {b.seconds:.1f} s" for b in r.ingest.builds),
    ]
    lines += [f"- plan, {mode}: {', '.join(i) or 'no index'}" for mode, i in r.sql.plans.items()]
    for mode in MODES:
        bare, rls = r.sql.modes[mode], r.sql.rls[mode]
        recall = f", recall {r.recall(rls):.3f}" if mode == "semantic" else ""
        lines.append(
            f"- row-level security, {mode}: p50 {rls.p50():.2f} ms acting as the user vs"
            f" {bare.p50():.2f} ms as the tables' owner ({rls.p50() / bare.p50():.2f}x){recall},"
            f" {min(len(f) for f in rls.found)}..{max(len(f) for f in rls.found)} hits per query"
        )
    for mode in MODES:
        sql_ms, service_ms = r.sql.modes[mode].p50(), r.service[mode].p50()
        lines.append(
            f"- {mode}, p50: statement {sql_ms:.2f} ms; the service call adds"
            f" {service_ms - sql_ms:.2f} ms, HTTP {r.http[mode].p50() - service_ms:.2f} ms more"
        )
    lines.append(
        f"- HTTP: GET /healthz alone takes {r.http['healthz'].p50():.2f} ms (p50); semantic and"
        " hybrid requests also embed the query through the loopback fake Ollama"
    )
    return lines + langchain_summary(r)


def langchain_summary(r: Results) -> list[str]:
    n, ef = len(r.data.texts), r.sql.ef_by_mode["semantic"]
    ours, ours_service = r.sql.modes["semantic"], r.service["semantic"]
    rate = n / (r.ingest.write_s + r.ingest.postrag_build.seconds)
    lines = []
    for report in r.langchain:
        their_rate = n / (report["insert_s"] + report["build_s"])
        call = langchain_timings(next(run for run in report["runs"] if run["ef_search"] == ef))
        line = (
            f"- vs langchain-postgres {report['store']}: ingest {rate / their_rate:.2f}x its rate"
            " (index builds included; postrag also writes full-text postings); semantic at"
            f" ef_search {ef}, p50: postrag service call {ours_service.p50():.2f} ms vs its"
            f" library call {call.p50():.2f} ms"
        )
        sql_runs = [run for run in report["sql_runs"] if run["ef_search"] == ef]
        if sql_runs:
            theirs = langchain_timings(sql_runs[0])
            line += f", SQL statement {ours.p50():.2f} ms vs {theirs.p50():.2f} ms"
        lines.append(f"{line}; recall {r.recall(ours):.3f} vs {r.recall(call):.3f}")
    return lines


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--chunks", type=int, default=100_000)
    add("--queries", type=int, default=200)
    add("--clusters", type=int, help="default: chunks / 100")
    add("--topics", type=int, help="groups of clusters; default: clusters / 10")
    add("--spread", type=float, default=0.03, help="per-dimension sigma of a topic's clusters")
    add("--noise", type=float, default=0.05, help="per-dimension sigma of a cluster's chunks")
    add("--dimension", type=int, default=384)
    add("--vocabulary", type=int, default=5000)
    add("--per-doc", type=int, default=100, help="chunks per document")
    add("--top-k", type=int, default=10)
    add("--ef-sweep", type=_ints, default=[40, 64, 100, 200], help="semantic, SQL level")
    add("--build-compare", action=argparse.BooleanOptionalAction, default=True)
    add("--build-memory", default="2GB", help="maintenance_work_mem of the second build")
    add("--build-workers", type=int, default=2, help="its max_parallel_maintenance_workers")
    add("--langchain", type=_stores, default=["pgvectorstore"], help="pgvectorstore,pgvector|none")
    add("--langchain-python", type=Path, default=BENCH_DIR / ".venv-langchain" / "bin" / "python")
    add("--seed", type=int, default=42)
    args = parser.parse_args()
    args.clusters = args.clusters or max(10, args.chunks // 100)
    args.topics = args.topics or max(2, args.clusters // 10)
    if args.langchain and not args.langchain_python.exists():
        parser.error(f"{args.langchain_python} is missing: make it (see above) or --langchain none")
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
    log(f"work dir (left behind, as bench/ingest.py does): {work_dir}")
    log(f"data: {args.chunks:,} chunks, {args.clusters:,} clusters, {args.queries} queries")
    data = make_data(args)
    exact = exact_top_k(data.vectors, data.queries, args.top_k)
    with synthetic_ollama(data) as ollama:
        pr = setup_postrag(server_url, work_dir, ollama.url)
        ingest, rows = ingest_postrag(pr, data, args)
        sql_results = sql_level(pr, data, rows, args)
        service = service_level(pr, data, rows, args)
        http = http_level(pr, data, rows, args)
    ef = sql_results.ef_by_mode["semantic"]
    langchain = run_langchain(args, server_url, data, work_dir, ef) if args.langchain else []
    r = Results(args, data, exact, ingest, sql_results, service, http, langchain)
    for table in (ingest_table(r), query_table(r), summary(r)):
        print()
        print("\n".join(table))


if __name__ == "__main__":
    main()
