"""One big document on two workers: embedded by its own job alone, or in ranges by both.

    .venv/bin/python bench/ingest_split.py [--words 24000] [--repeats 2]

Runs against DATABASE_URL if set, else a throwaway embedded PostgreSQL. Two worker processes
(as `postrag serve` starts them; the local model runs behind a per-process lock, so threads of
one process would not embed side by side) wait with their model loaded; then one Markdown
document is uploaded and timed from the upload to `indexed`. "Before" is one job per document
(POSTRAG_SPLIT_CHUNKS at its maximum, 4096); "after" is the default (ranges of 64 chunks). Each
mode runs `--repeats` times, alternating, on a new copy of the document; prints a Markdown
table (the README's Benchmarks figures come from it).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from multiprocessing.synchronize import Event
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import prepare_database
from app.db import embedded
from app.providers.local_embedder import LocalEmbedder
from app.services import collections, documents
from app.services.documents import Upload
from app.services.tokens import Principal
from app.services.worker import Worker, connect
from app.settings import Settings
from bench.common import fresh_database
from bench.ingest import make_markdown

MODES = {"before: one job": 4096, "after: ranges": 64}


def _work(settings: Settings, ready: Event, stop: Event) -> None:
    """A worker process: load the model, say so, work until told to stop."""
    # Its own session: with the kernel's autogroup scheduling, the processes of one session share
    # one group's CPU, so on a machine busy with other sessions two workers of one session would
    # together get what one gets. (`postrag serve`'s workers share the server's session, which
    # matters only when other sessions compete for the cores.)
    os.setsid()
    embedder = LocalEmbedder()
    embedder.embed(["warm-up"])
    worker = Worker(settings.database_url or "", settings, embedder)
    ready.set()
    stopping = threading.Event()  # Worker.run takes a thread event; the parent sets a process one
    threading.Thread(target=lambda: (stop.wait(), stopping.set()), daemon=True).start()
    worker.run(stopping)


def _ingest_once(settings: Settings, text: str, name: str) -> tuple[float, int, int]:
    """Seconds from upload to indexed for one document on two fresh workers; its chunks; the
    most jobs seen running at once."""
    spawn = multiprocessing.get_context("spawn")
    ready, stop = [spawn.Event() for _ in range(2)], spawn.Event()
    procs = [spawn.Process(target=_work, args=(settings, r, stop)) for r in ready]
    for proc in procs:
        proc.start()
    for event in ready:
        event.wait(300)
    with connect(settings.database_url or "") as conn:
        admin = conn.execute("SELECT id, name, role FROM users ORDER BY id LIMIT 1").fetchone()
        who = Principal(admin["id"], admin["name"], admin["role"], 0, ("read", "write"))
        coll = collections.get_or_create(conn, who.user_id, "bench-split")
        started = time.perf_counter()
        doc, _ = documents.upload(
            conn, who, Upload(f"{name}.md", None, text.encode(), coll["id"], name), settings
        )
        busiest = 0
        while True:
            row = conn.execute(
                "SELECT status, chunks_total,"
                " (SELECT count(*) FROM jobs WHERE state = 'running') AS running"
                " FROM documents WHERE id = %s",
                (doc.id,),
            ).fetchone()
            busiest = max(busiest, row["running"])
            if row["status"] in ("indexed", "failed"):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    # A worker that died (killed from outside) would make the run one worker's.
    alive = all(proc.is_alive() for proc in procs)
    stop.set()
    for proc in procs:
        proc.join(60)
    assert row["status"] == "indexed", row
    assert alive, "a worker process died during the run"
    return elapsed, int(row["chunks_total"]), busiest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=24000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="postrag-bench-"))
    server_url = os.environ.get("DATABASE_URL") or embedded.start(data_dir).url
    base = Settings.from_env({"POSTRAG_DATA_DIR": str(data_dir)})
    settings = prepare_database(replace(base, database_url=fresh_database(server_url), workers=0))
    rng = random.Random(42)
    text = make_markdown(rng, args.words)
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    busiest: dict[str, int] = dict.fromkeys(MODES, 0)
    chunks = 0
    for repeat in range(args.repeats):
        for mode, split in MODES.items():
            # A new copy each time (the collection refuses the same bytes twice).
            copy = f"{text}\n\nCopy {mode} {repeat}.\n"
            seconds, chunks, running = _ingest_once(
                replace(settings, split_chunks=split), copy, mode
            )
            times[mode].append(seconds)
            busiest[mode] = max(busiest[mode], running)
            print(f"{mode}, run {repeat + 1}: {seconds:.1f} s, {chunks} chunks", file=sys.stderr)
    print(
        f"\nOne Markdown document of ~{args.words} words ({chunks} chunks), two worker processes,"
        f" local all-MiniLM-L6-v2, median of {args.repeats}\n"
    )
    print("| mode | upload -> indexed | chunks/s | jobs running at once (most) |")
    print("| --- | --- | --- | --- |")
    medians = {mode: statistics.median(values) for mode, values in times.items()}
    for mode, seconds in medians.items():
        print(f"| {mode} | {seconds:.1f} s | {chunks / seconds:.1f} | {busiest[mode]} |")
    before, after = medians.values()
    print(f"| before / after (wall time) | {before / after:.2f}x | | |")


if __name__ == "__main__":
    main()
