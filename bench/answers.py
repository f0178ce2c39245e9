"""Answer benchmark (issue 22): what wider context and extractive quotes cost per query.

    .venv/bin/python bench/answers.py [--docs 20] [--queries 100] [--window 300]

Documents of --paragraphs paragraphs of made-up sentences are uploaded and ingested through the
normal pipeline (the app's upload endpoint, the worker, the local embedding model). Each query
then runs POST /api/v1/search (in-process, the app's test client: no network) without and with
`context_window`, alternately, so that drift hits both alike; and the extractive answer's
sentence selection (split, one embedding batch, MMR) over the hits of each query. Prints p50/p95
of each and the ratio with/without wider context from the same run.

Runs against DATABASE_URL if set, else a throwaway embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app, prepare_database  # noqa: E402
from app.db import embedded  # noqa: E402
from app.repositories.search import Context, Hit  # noqa: E402
from app.services import extractive  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.common import offline_settings  # noqa: E402
from tests.helpers import admin_token_in, bearer, close_app, create_collection, drain, upload  # noqa: E402

SUBJECTS = ["The pump", "Each valve", "The operator", "A backup job", "The gateway", "Our audit"]
VERBS = ["checks", "restarts", "logs", "replaces", "reports", "seals"]
OBJECTS = ["the pressure gauge", "the nightly export", "every open ticket", "the cold store"]
TAILS = ["before noon.", "after each storm.", "when the alarm sounds.", "at 3.5 bar or more."]


def document(rng: random.Random, paragraphs: int) -> str:
    def sentence() -> str:
        parts = (SUBJECTS, VERBS, OBJECTS, TAILS)
        return " ".join(rng.choice(p) for p in parts) + f" Code {rng.randrange(10_000)} applies."

    return "\n\n".join(" ".join(sentence() for _ in range(4)) for _ in range(paragraphs)) + "\n"


def percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=20)
    return f"p50 {statistics.median(samples):7.2f} ms, p95 {cuts[18]:7.2f} ms"


def as_hit(found: dict) -> Hit:  # type: ignore[type-arg]
    """A search response's hit as the service's dataclass (what the answer is built from)."""
    fields = {k: v for k, v in found.items() if k not in ("semantic", "fulltext", "context")}
    context = Context(**found["context"]) if found.get("context") else None
    return Hit(
        **fields,
        ordinal=0,
        semantic_rank=None,
        semantic_similarity=None,
        fulltext_rank=None,
        fulltext_score=None,
        context=context,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--paragraphs", type=int, default=10)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--window", type=int, default=300, help="context_window in tokens")
    args = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="postrag-bench-answers-"))
    server_url = os.environ.get("DATABASE_URL") or embedded.start(work_dir / "pg").url
    settings = offline_settings(server_url, work_dir / "data", "postrag_bench_answers")
    settings = prepare_database(settings)
    app = create_app(settings)
    try:
        run(app, settings, args)
    finally:
        close_app(app)


def run(app, settings: Settings, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(22)
    client = app.test_client()
    admin = bearer(admin_token_in(settings.data_dir))
    collection = create_collection(client, admin, "bench")
    for i in range(args.docs):
        upload(client, admin, collection, f"doc-{i}.txt", document(rng, args.paragraphs))
    started = time.perf_counter()
    drain(app)
    print(f"{args.docs} documents ingested in {time.perf_counter() - started:.1f} s")
    plain: list[float] = []
    wide: list[float] = []
    quoting: list[float] = []
    for q in range(args.queries):
        query = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        order = [0, args.window] if q % 2 else [args.window, 0]
        for window in order:
            started = time.perf_counter()
            response = client.post(
                "/api/v1/search", json={"query": query, "context_window": window}, headers=admin
            )
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.json
            (wide if window else plain).append(elapsed)
        hits = [as_hit(h) for h in response.json["hits"]]
        started = time.perf_counter()
        extractive.select(query, hits)
        quoting.append((time.perf_counter() - started) * 1000)
    print(f"{args.queries} queries, hybrid, top_k 8 (the default), in-process HTTP")
    print(f"search without wider context:   {percentiles(plain)}")
    print(f"search with context_window {args.window}: {percentiles(wide)}")
    ratio = statistics.median(wide) / statistics.median(plain)
    print(f"ratio with/without (p50): {ratio:.2f}")
    print(f"extractive sentence selection:  {percentiles(quoting)}")


if __name__ == "__main__":
    main()
