"""Embedding at the machine's limit: raw onnxruntime against postrag end to end, same chunks.

    .venv/bin/python bench/embed_limit.py [--quick] [--repeats 3] [--chunks 300]

The chunks are the ones postrag embeds for README.md (cut at its `## ` sections, one document
each) and tests/data/dpkg-status-sample.txt: same extraction, chunking and embedding input
(app.services.chunking, ingestion.embedding_input). Each repeat measures, one after the other:
1. raw: the bundled model's onnxruntime session (one intra-op thread, spinning off, its memory
   arena for runs of one chunk only, as postrag runs it), inputs tokenised beforehand, at batch
   sizes 1/2/4/8/16, on 1 to `cores` processes each embedding its share; then on one process,
   batch 1 without the arena and batch 16 with it;
2. postrag end to end: the documents uploaded and ingested by `postrag worker` processes (one
   per core, and one alone) on a fresh database of the embedded server (or DATABASE_URL), with
   the environment's settings (POSTRAG_EMBED_BATCH...), from the first upload until every
   document is indexed; the workers' RSS once warm and after the ingestion.
Prints medians over the repeats, end to end / raw best on the same cores, and the load average.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import prepare_database
from app.db import embedded
from app.providers import local_embedder
from app.services import collections, documents, extraction, ingestion
from app.services.chunking import chunk_document
from app.services.documents import Upload
from app.services.tokens import Principal
from app.services.worker import connect
from app.settings import Settings
from app.settings_vars import available_cores
from bench.common import fresh_database

ROOT = Path(__file__).resolve().parent.parent
BATCHES = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Doc:
    name: str
    content_type: str
    data: bytes


def corpus(chunks_wanted: int, settings: Settings) -> tuple[list[Doc], list[str]]:
    """Whole documents, in order, until they hold `chunks_wanted` chunks; their embedding inputs."""
    sections = ROOT.joinpath("README.md").read_text().split("\n## ")
    candidates = [
        Doc(
            "dpkg-status.txt",
            "text/plain",
            (ROOT / "tests/data/dpkg-status-sample.txt").read_bytes(),
        )
    ]
    candidates += [
        Doc(f"readme-{n:02d}.md", "text/markdown", (text if n == 0 else "## " + text).encode())
        for n, text in enumerate(sections)
    ]
    docs: list[Doc] = []
    inputs: list[str] = []
    for doc in candidates:
        if len(inputs) >= chunks_wanted:
            break
        extracted = extraction.extract(doc.data, doc.content_type, doc.name)
        chunks = chunk_document(
            extracted,
            local_embedder.token_spans,
            settings.chunk_tokens,
            settings.chunk_overlap_tokens,
        )
        inputs += [ingestion.embedding_input(doc.name, c.heading_path, c.text) for c in chunks]
        docs.append(doc)
    return docs, inputs


def _rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def _raw_process(texts: list[str], batch: int, arena: bool, start: Any, results: Any) -> None:
    # The model postrag embeds with by default, its int8 graph built (or read) in a temp dir.
    session = local_embedder.new_session(
        local_embedder.DEFAULT_MODEL,
        Path(tempfile.gettempdir()) / "postrag-bench-models",
        arena=arena,
    )
    arrays = [
        local_embedder.model_inputs(texts[i : i + batch]) for i in range(0, len(texts), batch)
    ]
    local_embedder.run_model(session, *arrays[0])  # warm-up, not timed
    start.wait()
    started = time.monotonic()
    for ids, mask in arrays:
        local_embedder.run_model(session, ids, mask)
    results.put((started, time.monotonic(), _rss_mb(os.getpid())))


def raw(inputs: list[str], processes: int, batch: int, arena: bool = False) -> tuple[float, float]:
    """(chunks/s, largest RSS in MB) of `processes` processes embedding a share of the inputs
    each, timed from a common start until the last one is done."""
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Barrier(processes), spawn.Queue()
    children = [
        spawn.Process(
            target=_raw_process, args=(inputs[i::processes], batch, arena, start, results)
        )
        for i in range(processes)
    ]
    for child in children:
        child.start()
    done = [results.get(timeout=1800) for _ in children]
    for child in children:
        child.join()
    wall = max(end for _, end, _ in done) - min(begin for begin, _, _ in done)
    return len(inputs) / wall, max(rss for _, _, rss in done)


def _wait_indexed(conn: Any, collection_id: int, count: int) -> None:
    while True:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'indexed') AS done,"
            " count(*) FILTER (WHERE status = 'failed') AS failed"
            " FROM documents WHERE collection_id = %(c)s",
            {"c": collection_id},
        ).fetchone()
        if row["failed"]:
            raise RuntimeError("a document failed; see the workers' log")
        if row["done"] == count:
            return
        time.sleep(0.05)


def _upload(
    conn: Any, who: Principal, collection_id: int, docs: list[Doc], settings: Settings
) -> None:
    for doc in docs:
        item = Upload(doc.name, doc.content_type, doc.data, collection_id, doc.name)
        documents.upload(conn, who, item, settings)


def _warm_up_docs(count: int) -> list[Doc]:
    text = ROOT.joinpath("README.md").read_text()[:3000]
    return [
        Doc(f"warm-{n}.md", "text/markdown", f"# Warm-up {n}\n\n{text}".encode())
        for n in range(count)
    ]


@dataclass(frozen=True)
class EndToEnd:
    rate: float
    chunks: int
    rss_warm: list[float]
    rss_after: list[float]


def end_to_end(server_url: str, data_dir: Path, docs: list[Doc], workers: int) -> EndToEnd:
    """`workers` `postrag worker` processes ingest the documents on a fresh database."""
    base = Settings.from_env({**os.environ, "POSTRAG_DATA_DIR": str(data_dir)})
    settings = replace(base, database_url=fresh_database(server_url, "postrag_limit"), workers=0)
    prepare_database(settings)
    url = settings.database_url or ""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "POSTRAG_DATA_DIR": str(data_dir),
        "POSTRAG_MIGRATE_ON_START": "false",
        "POSTRAG_JOBS_PER_USER": "64",  # one user uploads everything here
    }
    log = (data_dir / "workers.log").open("ab")
    command = [sys.executable, "-m", "app", "worker"]
    procs = [subprocess.Popen(command, env=env, stdout=log, stderr=log) for _ in range(workers)]
    try:
        with connect(url) as conn:
            admin = conn.execute("SELECT id, name, role FROM users ORDER BY id LIMIT 1").fetchone()
            who = Principal(admin["id"], admin["name"], admin["role"], 0, ("read", "write"))
            warm = collections.get_or_create(conn, who.user_id, "warm-up")["id"]
            # Two small documents per worker: each one loads its model before the clock starts.
            _upload(conn, who, warm, _warm_up_docs(2 * workers), settings)
            _wait_indexed(conn, warm, 2 * workers)
            time.sleep(2)
            rss_warm = [_rss_mb(p.pid) for p in procs]
            coll = collections.get_or_create(conn, who.user_id, "limit")["id"]
            started = time.monotonic()
            _upload(conn, who, coll, docs, settings)
            _wait_indexed(conn, coll, len(docs))
            elapsed = time.monotonic() - started
            chunks = conn.execute(
                "SELECT count(*) AS n FROM document_chunks c JOIN documents d"
                " ON d.id = c.document_id WHERE d.collection_id = %(c)s",
                {"c": coll},
            ).fetchone()["n"]
        time.sleep(2)
        rss_after = [_rss_mb(p.pid) for p in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
        log.close()
    return EndToEnd(chunks / elapsed, int(chunks), rss_warm, rss_after)


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}"


def measure(args: argparse.Namespace) -> None:
    cores = available_cores()
    data_dir = Path(tempfile.mkdtemp(prefix="postrag-limit-"))
    server_url = os.environ.get("DATABASE_URL") or embedded.start(data_dir / "pg").url
    settings = Settings.from_env({**os.environ, "POSTRAG_DATA_DIR": str(data_dir)})
    docs, inputs = corpus(args.chunks, settings)
    batches = (1, 16) if args.quick else BATCHES
    counts = sorted({1, cores})
    # As postrag runs it (the arena for runs of one chunk only), and the other way at 1 and 16.
    configs = [(n, b, b == 1) for n in counts for b in batches] + [(1, 1, False), (1, 16, True)]
    rates: dict[Any, list[float]] = {}
    rss: dict[Any, list[float]] = {}
    load = [os.getloadavg()[0]]
    for repeat in range(args.repeats):
        for config in configs:
            rate, peak = raw(inputs, *config)
            rates.setdefault(config, []).append(rate)
            rss.setdefault(config, []).append(peak)
        for workers in counts:
            run = end_to_end(server_url, data_dir, docs, workers)
            rates.setdefault(("e2e", workers), []).append(run.rate)
            rss.setdefault(("warm", workers), []).append(max(run.rss_warm))
            rss.setdefault(("after", workers), []).append(max(run.rss_after))
            # the ratio within this repeat: end to end / raw best on the same processes
            best = max(rates[(workers, b, b == 1)][-1] for b in batches)
            rates.setdefault(("ratio", workers), []).append(run.rate / best)
        load.append(os.getloadavg()[0])
        print(f"\nafter repeat {repeat + 1}/{args.repeats} ({run.chunks} chunks stored):\n")
        report(rates, rss, counts, batches, len(inputs), len(docs), load, settings)


def report(rates, rss, counts, batches, chunks, docs, load, settings) -> None:  # type: ignore[no-untyped-def]
    print(
        f"{chunks} chunks in {docs} documents; medians of {len(load) - 1} repeats;"
        f" POSTRAG_EMBED_BATCH={settings.embed_batch}; 1-minute load average"
        f" {', '.join(f'{x:.1f}' for x in load)} (start, after each repeat)\n"
    )
    print(
        "| raw onnxruntime (chunks/s) | "
        + " | ".join(f"batch {b}" for b in batches)
        + " | RSS per process (batch 1 / 16) |"
    )
    print("| --- |" + " ---: |" * (len(batches) + 1))
    for n in counts:
        cells = [_median(rates[(n, b, b == 1)]) for b in batches]
        memory = f"{_median(rss[(n, 1, True)])} / {_median(rss[(n, batches[-1], False)])} MB"
        print(f"| {n} process(es) | " + " | ".join(cells) + f" | {memory} |")
    other = [_median(rates[config]) for config in ((1, 1, False), (1, 16, True))]
    print(
        f"| 1 process, batch 1 without the arena / 16 with it | {other[0]} / {other[1]} |"
        f" RSS {_median(rss[(1, 1, False)])} / {_median(rss[(1, 16, True)])} MB |\n"
    )
    print(
        "| postrag end to end | chunks/s | / raw best, same processes | worker RSS warm | after |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for n in counts:
        ratio = statistics.median(rates[("ratio", n)])
        print(
            f"| {n} worker(s) | {_median(rates[('e2e', n)])} | {ratio:.0%} |"
            f" {_median(rss[('warm', n)])} MB | {_median(rss[('after', n)])} MB |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 chunks, batches 1, 16, 1 run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=300, help="at least this many chunks")
    args = parser.parse_args()
    if args.quick:
        args.chunks, args.repeats = min(args.chunks, 40), 1
    measure(args)


if __name__ == "__main__":
    main()
