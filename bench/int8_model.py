"""The int8-computing model against today's local model: quality, speed and memory, in one run.

    .venv/bin/python bench/int8_model.py [--sets DIR] [--speed-chunks 128] [--repeats 3] > int8.md

--sets is bench/labelled_sets.py's output (built into a temporary directory without it). For
each set (workplace, debian), on a fresh postrag database (DATABASE_URL's server, else a
throwaway embedded PostgreSQL), through the same services as `postrag eval`:
1. `eval import-beir`: a user, a collection, the corpus uploaded and ingested by a worker with
   today's default local model (all-MiniLM-L6-v2), whose space is the ready one;
2. `eval run --space S` for that space in semantic and hybrid mode;
3. a worker configured with POSTRAG_EMBEDDING_MODEL=all-MiniLM-L6-v2-int8 creates that model's
   space and fills it through the `embed_space` job (the path an installation switching models
   takes), then the same runs over the new space;
4. `eval compare`: int8 - fp32 per query, nDCG@10 and recall@k (k 100, the run default) with the
   95% interval of the paired bootstrap (app/services/evaluation_metrics.py).
Speed: the first --speed-chunks chunks of the debian set (their embedding inputs, as embed_space
builds them) embedded in this process on one onnxruntime thread by each model as it runs
(float32 in batches of 32, int8 one text per run) and by the float32 model one text per run too
(the graphs compared alone), --repeats rounds interleaved; the best round of each.
Memory: a fresh process per model loads it and embeds one batch; its resident set before and after.
The verdict: the int8 model may become the default only if no interval lies wholly below 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from app import prepare_database
from app.db import embedded
from app.providers.embeddings import make_embedder
from app.providers.local_embedder import INT8_MODEL_NAME, MODEL_NAME, LocalEmbedder
from app.repositories import embedding_spaces as space_repo
from app.services import (
    bulk_ingest,
    collections,
    evaluating,
    evaluation_import,
    evaluation_runs,
    users,
)
from app.services.ingestion import embedding_input
from app.services.worker import Worker, connect
from app.settings import Settings
from bench import labelled_sets
from bench.common import offline_settings

MODES = ("semantic", "hybrid")
DECIDING = ("ndcg@10", "recall@k")
MODELS = (MODEL_NAME, INT8_MODEL_NAME)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _import(conn: Any, settings: Settings, set_dir: Path) -> tuple[Any, int]:
    """The set imported and its corpus indexed with the configured model: (principal, set id)."""
    users.create(conn, name="bench", role="user")
    who = users.acting_principal(conn, "bench")
    collection_id = collections.get_or_create(conn, who.user_id, set_dir.name)["id"]
    paths = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")
    files = evaluation_import.BeirFiles(*[(set_dir / p).read_bytes() for p in paths])
    summary = evaluation_import.import_beir(
        conn, who, files, collection_id=collection_id, name=set_dir.name, settings=settings
    )
    worker = Worker(settings.database_url or "", settings, make_embedder(settings))
    result = bulk_ingest.Summary()
    bulk_ingest.work_until_done(conn, worker, dict(summary.queued_ids), result, lambda n: None)
    assert not result.failed, result.failed
    return who, int(summary.set["id"])


def _fill_int8_space(conn: Any, settings: Settings) -> int:
    """A worker on the int8 model creates its space and fills it; the space's id once ready."""
    int8 = replace(settings, embedding_model=INT8_MODEL_NAME)
    worker = Worker(settings.database_url or "", int8, make_embedder(int8))
    while True:
        worker.run_one(conn)
        ready = space_repo.current_ready(conn)
        if ready is not None and ready.model == INT8_MODEL_NAME:
            return ready.id


def _runs(conn: Any, settings: Settings, who: Any, set_id: int, space_id: int) -> dict[str, int]:
    """One finished run per mode over the space: mode -> run id."""
    runs = {}
    with evaluating.search_deps(conn, settings, make_embedder(settings)) as deps:
        for mode in MODES:
            config = {"mode": mode, "space_id": space_id}
            run = evaluation_runs.run_here(conn, who, set_id, config, deps)
            assert run["state"] == "done", run
            runs[mode] = int(run["id"])
    return runs


def evaluate_set(server_url: str, work_dir: Path, set_dir: Path) -> dict[str, Any]:
    """Per mode: the fp32 and int8 runs' metrics and their comparison."""
    settings = offline_settings(server_url, work_dir / set_dir.name, "postrag_bench_int8")
    settings = prepare_database(settings)
    with connect(settings.database_url or "") as conn:
        started = time.perf_counter()
        who, set_id = _import(conn, settings, set_dir)
        fp32_space = space_repo.current_ready(conn)
        assert fp32_space is not None and fp32_space.model == MODEL_NAME
        log(f"{set_dir.name}: imported and indexed in {time.perf_counter() - started:.0f} s")
        fp32_runs = _runs(conn, settings, who, set_id, fp32_space.id)
        started = time.perf_counter()
        int8_space = _fill_int8_space(conn, settings)
        log(f"{set_dir.name}: int8 space filled in {time.perf_counter() - started:.0f} s")
        int8_runs = _runs(conn, settings, who, set_id, int8_space)
        chunks = conn.execute("SELECT count(*) AS n FROM document_chunks").fetchone()["n"]
        return {
            "chunks": chunks,
            "modes": {
                mode: evaluation_runs.compare(conn, who, fp32_runs[mode], int8_runs[mode])
                for mode in MODES
            },
            "speed_texts": _speed_texts(conn),
        }


def _speed_texts(conn: Any) -> list[str]:
    rows = conn.execute(
        "SELECT c.text, c.heading_path, coalesce(nullif(d.title, ''), d.filename) AS title"
        " FROM document_chunks c JOIN documents d ON d.id = c.document_id ORDER BY c.id"
    ).fetchall()
    return [embedding_input(r["title"], r["heading_path"], r["text"]) for r in rows]


class OneTextPerRun(LocalEmbedder):
    """Today's model run one text at a time, as the int8 model runs: the two graphs alone."""

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.vstack([super(OneTextPerRun, self).embed([text]) for text in texts])


SPEED_ROWS = (
    (MODEL_NAME, "batches of 32, as it runs"),
    (MODEL_NAME, "one text per run"),
    (INT8_MODEL_NAME, "one text per run, as it runs"),
)


def speed(texts: list[str], repeats: int, cache_dir: Path) -> list[float]:
    """Chunks per second of each SPEED_ROWS on one thread: the best of `repeats` interleaved
    rounds."""
    embedders = [
        LocalEmbedder(model=MODEL_NAME),
        OneTextPerRun(model=MODEL_NAME),
        LocalEmbedder(model=INT8_MODEL_NAME, cache_dir=cache_dir),
    ]
    best = [0.0] * len(embedders)
    for embedder in embedders:
        embedder.embed(texts[:4])  # sessions loaded (and the int8 graph built) before timing
    for _ in range(repeats):
        for row, embedder in enumerate(embedders):
            started = time.perf_counter()
            embedder.embed(texts)
            best[row] = max(best[row], len(texts) / (time.perf_counter() - started))
    return best


_MEMORY_PROBE = """
import json, sys, psutil
from pathlib import Path
from app.providers.local_embedder import LocalEmbedder
texts = json.loads(sys.stdin.read())
before = psutil.Process().memory_info().rss
LocalEmbedder(model=sys.argv[1], cache_dir=Path(sys.argv[2])).embed(texts)
print(json.dumps([before, psutil.Process().memory_info().rss]))
"""


def memory(texts: list[str], cache_dir: Path) -> dict[str, list[int]]:
    """Per model: a fresh process's resident bytes before loading it and after one batch."""
    root = Path(__file__).resolve().parent.parent
    found = {}
    for model in MODELS:
        done = subprocess.run(
            [sys.executable, "-c", _MEMORY_PROBE, model, str(cache_dir)],
            input=json.dumps(texts),
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
        )
        found[model] = json.loads(done.stdout)
    return found


def no_loss(results: dict[str, dict[str, Any]]) -> bool:
    """Whether every deciding metric's interval (int8 - fp32) reaches 0 or lies above it."""
    return all(
        m["high"] >= 0
        for result in results.values()
        for compared in result["modes"].values()
        for m in compared["metrics"]
        if m["metric"] in DECIDING
    )


def report(results: dict[str, dict[str, Any]], rates: list[float], rss: Any) -> str:
    """The Markdown tables and the verdict."""
    lines = [
        f"Retrieval (int8 - fp32 on the same queries; {', '.join(DECIDING)} decide):",
        "",
        "| set | chunks | queries | mode | metric | fp32 | int8 | int8 - fp32 | 95% CI | p |",
        "| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for name, result in results.items():
        for mode, compared in result["modes"].items():
            for m in compared["metrics"]:
                if m["metric"] not in (*DECIDING, "mrr"):
                    continue
                lines.append(
                    f"| {name} | {result['chunks']} | {compared['queries']} | {mode}"
                    f" | {m['metric']} | {m['mean_a']:.4f} | {m['mean_b']:.4f}"
                    f" | {m['difference']:+.4f} | [{m['low']:+.4f}, {m['high']:+.4f}]"
                    f" | {m['p_value']:.3f} |"
                )
    lines += ["", "| model | how | chunks/s, 1 thread |", "| --- | --- | ---: |"]
    for (model, how), rate in zip(SPEED_ROWS, rates, strict=True):
        lines.append(f"| {model} | {how} | {rate:.1f} |")
    lines += [
        "",
        "| model | process RSS after load + 1 batch | of which the model and onnxruntime |",
        "| --- | ---: | ---: |",
    ]
    for model in MODELS:
        before, after = rss[model]
        lines.append(f"| {model} | {after / 2**20:.0f} MB | {(after - before) / 2**20:.0f} MB |")
    as_run, alone = rates[2] / rates[0], rates[2] / rates[1]
    verdict = "no loss beyond noise" if no_loss(results) else "a loss beyond noise"
    lines += [
        "",
        f"int8 / fp32 speed: {as_run:.2f}x as each runs, {alone:.2f}x one text per run each."
        f" Verdict: {verdict}.",
    ]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=Path, help="bench/labelled_sets.py's output directory")
    parser.add_argument("--speed-chunks", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the comparisons here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="postrag-bench-int8-"))
    if args.sets is None:
        args.sets = work_dir / "sets"
        sys.argv = [sys.argv[0], str(args.sets)]
        labelled_sets.main()
    server_url = os.environ.get("DATABASE_URL") or embedded.start(work_dir / "pg").url
    results = {
        name: evaluate_set(server_url, work_dir, args.sets / name)
        for name in ("workplace", "debian")
    }
    texts = results["debian"].pop("speed_texts")[: args.speed_chunks]
    results["workplace"].pop("speed_texts")
    cache_dir = work_dir / "models"
    rates = speed(texts, args.repeats, cache_dir)
    rss = memory(texts[:32], cache_dir)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "rates": rates, "rss": rss}))
    print(report(results, rates, rss))


if __name__ == "__main__":
    main()
