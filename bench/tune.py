"""Search defaults by evaluation: a grid of rrf_k, leg weights and candidate depth on labelled sets.

    .venv/bin/python bench/tune.py [--sets DIR] [--sample 400] > tune.md

--sets is a directory made by bench/labelled_sets.py (its `workplace` and `debian` sets); without
it they are built first into a temporary directory. Each set is loaded into a fresh postrag
database (on DATABASE_URL's server, else a throwaway embedded PostgreSQL): a user, a collection,
every document uploaded through the app (in-process test client, title given) and ingested by
the worker with the local embedding model. --sample queries of a set (seeded, 0: all) are kept.

Each query is embedded once (the local model), then searched by app.services.search.search
in-process as the user (row-level security on, no HTTP) under every configuration, configurations
interleaved per query so that drift hits them alike: mode semantic and fulltext as references,
and hybrid with each rrf_k x weights x candidates of the grid; top_k --top-k, the user's default
min_similarity. Hits are folded into documents (best chunk first); per query nDCG@10,
recall@top_k and reciprocal rank (app/services/evaluation_metrics.py), and the search's latency
(SQL and service, the query embedding excluded). The report is bench/tune_report.py's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app, prepare_database
from app.db import embedded, scope
from app.runtime import Runtime
from app.services import collections, users
from app.services import search as search_service
from app.services.evaluation_metrics import ndcg_at_k, recall_at_k, reciprocal_rank
from app.services.tokens import Principal
from app.services.worker import connect
from app.settings import Settings
from bench import labelled_sets, tune_report
from bench.common import offline_settings
from bench.labelled_sets import BeirSet
from tests.helpers import bearer, close_app, drain, post_document

RRF_KS = (10, 20, 40, 60, 100)
WEIGHTS = ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0), (3.0, 1.0), (1.0, 3.0))
DEPTHS = (20, 40, 100)  # candidates per leg; None below is today's computed depth


@dataclass(frozen=True)
class Config:
    mode: str
    rrf_k: int = 60
    semantic_weight: float = 1.0
    fulltext_weight: float = 1.0
    candidates: int | None = None

    @property
    def label(self) -> str:
        if self.mode != "hybrid":
            return self.mode
        depth = "default" if self.candidates is None else str(self.candidates)
        weights = f"{self.semantic_weight:g}:{self.fulltext_weight:g}"
        return f"hybrid k={self.rrf_k} w={weights} depth={depth}"


DEFAULT = Config("hybrid")


def grid() -> list[Config]:
    """Today's default first, the single legs, then every hybrid configuration of the grid."""
    hybrid = [
        Config("hybrid", k, s, f, depth)
        for k, (s, f), depth in itertools.product(RRF_KS, WEIGHTS, DEPTHS)
    ]
    return [DEFAULT, Config("semantic"), Config("fulltext"), *hybrid]


class CachedEmbedders:
    """QueryEmbedders for the bench: every query embedded once, up front, by the app's model."""

    def __init__(self, embedder: Any, texts: list[str]) -> None:
        self.provider, self.model = embedder.provider, embedder.model
        self.table = dict(zip(texts, embedder.embed(texts), strict=True))

    def get(self, provider: str, model: str) -> CachedEmbedders:
        assert (provider, model) == (self.provider, self.model)
        return self

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    who: Principal
    collection_id: int
    corpus_ids: dict[int, str]  # document id -> the set's corpus id
    embedders: CachedEmbedders


def load(server_url: str, work_dir: Path, beir: BeirSet, queries: list[str]) -> Loaded:
    """A fresh postrag with the set's corpus uploaded and ingested."""
    settings = offline_settings(server_url, work_dir, "postrag_bench_tune")
    settings = prepare_database(settings)
    app = create_app(settings)
    try:
        with connect(settings.database_url or "") as conn:
            user, token = users.create(conn, name="bench", role="user")
            collection_id = collections.get_or_create(conn, user["id"], "bench")["id"]
        client, headers, corpus_ids = app.test_client(), bearer(token), {}
        for doc in beir.corpus:
            name = doc["_id"] if doc["_id"].endswith(".txt") else f"{doc['_id']}.txt"
            data = doc["text"].encode()
            response = post_document(client, headers, collection_id, name, data, title=doc["title"])
            assert response.status_code == 202, response.json
            corpus_ids[int(response.json["id"])] = doc["_id"]
        drain(app)
        with connect(settings.database_url or "") as conn:
            rows = conn.execute("SELECT status, count(*) AS n FROM documents GROUP BY 1")
            statuses = {row["status"]: row["n"] for row in rows}
        assert statuses == {"indexed": len(beir.corpus)}, statuses  # nothing failed or pending
        embedders = CachedEmbedders(Runtime.of(app).embedder, queries)
    finally:
        close_app(app)
    who = Principal(user["id"], user["name"], user["role"], 0, ("read", "write"))
    return Loaded(settings, who, collection_id, corpus_ids, embedders)


def ranked(
    conn: Any, loaded: Loaded, deps: Any, query: str, config: Config, top_k: int
) -> tuple[list[str], float]:
    """The documents found (corpus ids, best first) and the search's milliseconds."""
    request = search_service.SearchRequest(
        query=query,
        mode=config.mode,
        top_k=top_k,
        collection_ids=[loaded.collection_id],
        rrf_k=config.rrf_k,
        semantic_weight=config.semantic_weight,
        fulltext_weight=config.fulltext_weight,
        candidates=config.candidates,
    )
    started = time.perf_counter()
    result = search_service.search(search_service.holding(conn), loaded.who, request, deps)
    elapsed = (time.perf_counter() - started) * 1000
    found = [loaded.corpus_ids[h.document_id] for h in result.hits]
    return list(dict.fromkeys(found)), elapsed


def evaluate(
    loaded: Loaded, beir: BeirSet, configs: list[Config], top_k: int
) -> dict[str, dict[str, list[float]]]:
    """Per configuration label: per-query ndcg, recall, rr and latency lists, in query order."""
    grades: dict[str, dict[str, int]] = {}
    for query_id, corpus_id, score in beir.qrels:
        grades.setdefault(query_id, {})[corpus_id] = score
    scores: dict[str, dict[str, list[float]]] = {
        c.label: {"ndcg": [], "recall": [], "rr": [], "ms": []} for c in configs
    }
    deps = search_service.SearchDeps(loaded.settings, loaded.embedders, True)  # type: ignore[arg-type]
    with (
        connect(loaded.settings.database_url or "") as conn,
        scope.acting_as(conn, loaded.who.user_id),
    ):
        for n, query in enumerate(beir.queries, start=1):
            if n % 100 == 0:
                tune_report.log(f"{n} of {len(beir.queries)} queries")
            judged = grades.get(query["_id"], {})
            for config in configs:
                found, ms = ranked(conn, loaded, deps, query["text"], config, top_k)
                row = scores[config.label]
                row["ndcg"].append(ndcg_at_k(found, judged, 10))
                row["recall"].append(recall_at_k(found, judged, top_k))
                row["rr"].append(reciprocal_rank(found, judged))
                row["ms"].append(ms)
    return scores


def sample(beir: BeirSet, size: int, seed: int) -> BeirSet:
    """`size` queries drawn with `seed` (all when size is 0 or more than there are)."""
    if not size or size >= len(beir.queries):
        return beir
    picked = random.Random(seed).sample(beir.queries, size)
    return BeirSet(beir.corpus, picked, beir.qrels)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=Path, help="bench/labelled_sets.py's output directory")
    parser.add_argument("--sample", type=int, default=400, help="queries per set (0: all)")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--primary", default="debian", help="the set the choice is made on")
    parser.add_argument(
        "--json", type=Path, help="also write the per-query scores here (tune_report.py reads it)"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="postrag-bench-tune-"))
    if args.sets is None:
        args.sets = work_dir / "sets"
        sys.argv = [sys.argv[0], str(args.sets)]
        labelled_sets.main()
    server_url = os.environ.get("DATABASE_URL") or embedded.start(work_dir / "pg").url
    configs, results = grid(), {}
    for name in ("workplace", "debian"):
        beir = sample(labelled_sets.read_beir(args.sets / name), args.sample, args.seed)
        started = time.perf_counter()
        loaded = load(server_url, work_dir / name, beir, [q["text"] for q in beir.queries])
        tune_report.log(f"{name}: loaded in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        scores = evaluate(loaded, beir, configs, args.top_k)
        results[name] = tune_report.SetScores(name, len(beir.corpus), len(beir.queries), scores)
        elapsed = time.perf_counter() - started
        tune_report.log(f"{name}: {len(configs)} configurations in {elapsed:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({k: asdict(v) for k, v in results.items()}))
    print(tune_report.report(results, [c.label for c in configs], args))


if __name__ == "__main__":
    main()
