"""Queries first: a query's embedding while ingestion batches run, before and after, one run.

    .venv/bin/python bench/query_first.py [--queries 40] [--workers 2] [--processes]

--workers threads in this process (as a `postrag worker` process, or the CLI's ingestion, shares
its configured local embedder with whatever else it embeds) embed batches of 32 chunk-sized texts
without pause; with --processes they are child processes at the niceness `postrag serve` gives
its workers instead. The main thread embeds one short query at a time through
- the ingestion embedder (what a search did before: it queued behind the batches' lock), and
- the queries' own session (QueryEmbedders now), each first idle, then during the batches.
Prints p50/p99 per case and the ratio to idle, and the process's memory (VmRSS) before and after
the second session is made. Figures: README, "Queries first".
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from app.providers.local_embedder import QUERIES, LocalEmbedder
from app.serve import WORKER_NICENESS

CHUNK = " ".join(
    ["the pipeline valve holds pressure in the plant while the budget is planned"] * 12
)
QUERY = "how do I install the valve before pressurising"


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def _latencies(embedder: LocalEmbedder, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        embedder.embed([QUERY])
        out.append((time.perf_counter() - started) * 1000)
    return out


def _batches(embedder: LocalEmbedder, stop: threading.Event) -> None:
    while not stop.is_set():
        embedder.embed([CHUNK] * 32)


def _child_batches(_embedder: LocalEmbedder, stop: threading.Event) -> None:
    """_batches in a child process at the workers' niceness, until `stop`."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--child"], preexec_fn=lambda: os.nice(WORKER_NICENESS)
    )
    stop.wait()
    child.kill()
    child.wait()


def _row(name: str, ms: list[float], idle: float) -> str:
    p50 = statistics.median(ms)
    p99 = sorted(ms)[max(0, int(len(ms) * 0.99) - 1)]
    return f"| {name} | {p50:.1f} | {p99:.1f} | {p50 / idle:.1f}x |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--processes", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _batches(LocalEmbedder(), threading.Event())
        return
    batches: Callable[[LocalEmbedder, threading.Event], None]
    batches = _child_batches if args.processes else _batches
    ingestion = LocalEmbedder()
    ingestion.embed([CHUNK] * 32)
    before = _rss_mb()
    queries = LocalEmbedder(QUERIES)
    queries.embed([QUERY])
    after = _rss_mb()
    idle = {name: _latencies(e, args.queries) for name, e in [("old", ingestion), ("new", queries)]}
    stop = threading.Event()
    threads = [
        threading.Thread(target=batches, args=(ingestion, stop)) for _ in range(args.workers)
    ]
    for thread in threads:
        thread.start()
    time.sleep(3 if args.processes else 1)
    busy = {"old": _latencies(ingestion, args.queries), "new": _latencies(queries, args.queries)}
    stop.set()
    for thread in threads:
        thread.join()
    where = f"processes at nice {WORKER_NICENESS}" if args.processes else "threads"
    print(f"{args.workers} ingestion {where}, {args.queries} queries per case")
    print("| query embedding | p50 ms | p99 ms | p50 / idle |\n|---|---|---|---|")
    base = statistics.median(idle["old"])
    print(_row("idle, ingestion session (before)", idle["old"], base))
    print(_row("idle, queries' session (now)", idle["new"], base))
    print(_row("during ingestion, behind the batches (before)", busy["old"], base))
    print(_row("during ingestion, queries' session (now)", busy["new"], base))
    print(f"VmRSS {before:.0f} MB with the ingestion session, {after:.0f} MB with both")


if __name__ == "__main__":
    main()
