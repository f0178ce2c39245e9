"""Peak memory of one worker ingesting one big text: a run without spaces, and prose.

    .venv/bin/python bench/ingest_memory.py [--mb 20] [--prose-mb 5] [--embedder stub|local]

Runs against DATABASE_URL if set, else a throwaway embedded PostgreSQL. Each case runs in a
fresh process (so its peak RSS is its own): it stores the file through the documents service,
then a worker claims and runs the job to the end. Printed per case: the worker process's peak
RSS, the peak of any process under it (extraction's, sampled from /proc), the time, the chunks
written and the longest chunk. `--embedder stub` (the default) tokenizes every input exactly as
the local model does but makes its vectors from a hash, so that tens of thousands of chunks take
minutes, not hours; `local` runs the real model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import prepare_database
from app.db import embedded
from app.providers import local_embedder
from app.providers.embeddings import normalise
from app.providers.local_embedder import LocalEmbedder
from app.services import collections, documents
from app.services.documents import Upload
from app.services.tokens import Principal
from app.services.worker import Worker, connect
from app.settings import Settings
from bench.common import fresh_database
from bench.ingest import WORDS


class StubEmbedder(LocalEmbedder):
    """The local model's tokenizer on every input, then a vector from a hash of the text."""

    def embed(self, texts: list[str]) -> np.ndarray:
        tok = local_embedder.tokenizer()
        rows = []
        for text in texts:
            tok.encode(text)  # what the real model does first, whatever the input's length
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).standard_normal(local_embedder.DIMENSION))
        return normalise(np.array(rows, dtype=np.float32).reshape(-1, local_embedder.DIMENSION))


def no_spaces(size: int) -> bytes:
    return (b"abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 1))[:size]


def prose(size: int) -> bytes:
    rng = random.Random(7)
    out: list[str] = []
    written = 0
    while written < size:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))).capitalize()
        paragraph_end = "\n\n" if rng.random() < 0.2 else " "
        out.append(sentence + "." + paragraph_end)
        written += len(out[-1])
    return "".join(out).encode()[:size]


class DescendantsPeak:
    """The highest peak RSS (VmHWM) of this process's descendants, sampled every 50 ms."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> DescendantsPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            parents = {}
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                    parents[int(stat.parent.name)] = int(fields[1])
                except (OSError, ValueError, IndexError):
                    continue
            for pid in parents:
                ancestor = parents.get(pid)
                while ancestor is not None and ancestor != os.getpid():
                    ancestor = parents.get(ancestor)
                if ancestor is not None:
                    self.peak_kb = max(self.peak_kb, _hwm_kb(pid))


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def child(url: str, data_dir: str, kind: str, size: int, embedder: str) -> None:
    """One case, in this process: store the file, run its job, print the figures as JSON."""
    settings = replace(
        Settings.from_env({"POSTRAG_DATA_DIR": data_dir}),
        database_url=url,
        migrate_on_start=False,
        workers=0,
    )
    data = no_spaces(size) if kind == "no-spaces" else prose(size)
    worker = Worker(url, settings, StubEmbedder() if embedder == "stub" else LocalEmbedder())
    with connect(url) as conn:
        admin = conn.execute("SELECT id, name, role FROM users ORDER BY id LIMIT 1").fetchone()
        who = Principal(admin["id"], admin["name"], admin["role"], 0, ("read", "write"))
        coll = collections.get_or_create(conn, who.user_id, f"memory-{kind}")
        item = Upload(f"{kind}.txt", "text/plain", data, coll["id"], kind)
        row, _ = documents.upload(conn, who, item, settings)
        del data, item
        started = time.perf_counter()
        with DescendantsPeak() as descendants:
            while worker.run_one(conn):
                pass
        elapsed = time.perf_counter() - started
        found = conn.execute(
            "SELECT d.status, d.error, count(c.id) AS chunks,"
            " coalesce(max(length(c.text)), 0) AS longest,"
            " coalesce(max(c.token_count), 0) AS most_tokens"
            " FROM documents d LEFT JOIN document_chunks c ON c.document_id = d.id"
            " WHERE d.id = %(id)s GROUP BY d.id",
            {"id": row.id},
        ).fetchone()
    print(
        json.dumps(
            {
                **found,
                "seconds": round(elapsed, 1),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                "children_peak_rss_mb": descendants.peak_kb // 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20, help="size of the text without spaces")
    parser.add_argument("--prose-mb", type=float, default=5, help="size of the prose text")
    parser.add_argument("--embedder", choices=("stub", "local"), default="stub")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, data_dir, kind, size, embedder = args.child
        child(url, data_dir, kind, int(size), embedder)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="postrag-bench-"))
    server_url = os.environ.get("DATABASE_URL") or embedded.start(data_dir).url
    base = Settings.from_env({"POSTRAG_DATA_DIR": str(data_dir)})
    url = fresh_database(server_url)
    prepare_database(replace(base, database_url=url, workers=0))
    print(
        f"| case ({args.embedder} embedder) | status | chunks | longest chunk (chars) |"
        " most tokens | seconds | worker peak RSS | extraction peak RSS |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, mb in (("no-spaces", args.mb), ("prose", args.prose_mb)):
        size = int(mb * 1024 * 1024)
        run = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                url,
                str(data_dir),
                kind,
                str(size),
                args.embedder,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            print(run.stderr[-3000:], file=sys.stderr)
            continue
        found = json.loads(run.stdout.strip().splitlines()[-1])
        print(
            f"| {mb:g} MB {kind} | {found['status']} | {found['chunks']:,} |"
            f" {found['longest']:,} | {found['most_tokens']:,} | {found['seconds']} |"
            f" {found['peak_rss_mb']:,} MB | {found['children_peak_rss_mb']:,} MB |"
        )


if __name__ == "__main__":
    main()
