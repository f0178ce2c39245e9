"""Search latency while `postrag serve` ingests at full speed, against the same searches idle.

    .venv/bin/python bench/search_during_ingest.py [--docs 80] [--paragraphs 30] [--queries 60]

On loopback and thrown away afterwards: a new embedded PostgreSQL in a temp dir (or a fresh
database on DATABASE_URL's server), and `postrag serve` with its ingestion worker processes
(POSTRAG_WORKERS, the default unless the environment says otherwise), the default local
embedder and no rate limit. A seed collection is indexed first. Then one client searches it
(--mode, the query embedded by the server's local model, as a user's search is):

1. idle: --queries searches with nothing else running;
2. during ingestion: --docs new documents are uploaded at once and the client searches until the
   last of them is indexed (only searches that start and end while a document is still waiting
   or being worked on count);
3. idle again, to bracket the run's drift.

Prints p50/p95 of each phase and the ratio of the ingestion phase's p50 to the idle phases'
(their mean), the ingestion's chunks per second, and the server's workers. The client shares the
machine's cores with the server and PostgreSQL, as it would on a laptop.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db import embedded  # noqa: E402
from bench.common import fresh_database  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(database_url: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "POSTRAG_DATA_DIR": str(data_dir),
        "POSTRAG_LLM": "none",
        "POSTRAG_RATE_LIMIT_PER_MINUTE": "0",  # one client sends hundreds of requests a minute
        "POSTRAG_LOG_LEVEL": "WARNING",
    }
    command = [str(Path(sys.executable).parent / "postrag"), "serve", "--port", str(port)]
    log = (data_dir.parent / "serve.log").open("wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return server, base
        except httpx.TransportError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("postrag serve did not start; see serve.log in the work dir")


def paragraphs() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [p.strip() for p in text.split("\n\n") if len(p.split()) >= 20]


def document(rng: random.Random, pool: list[str], count: int) -> str:
    return "\n\n".join(rng.choice(pool) for _ in range(count))


def counted(client: httpx.Client, collection: int, status: str | None = None) -> int:
    params: dict[str, object] = {"collection_id": collection, "limit": 1}
    if status:
        params["status"] = status
    return int(client.get("/api/v1/documents", params=params).raise_for_status().json()["total"])


def waiting(client: httpx.Client, collection: int) -> int:
    """Documents of the collection not yet indexed (nor failed)."""
    done = counted(client, collection, "indexed") + counted(client, collection, "failed")
    return counted(client, collection) - done


def chunk_count(client: httpx.Client, collection: int) -> int:
    total, offset = 0, 0
    while True:
        params = {"collection_id": collection, "limit": 100, "offset": offset}
        items = client.get("/api/v1/documents", params=params).raise_for_status().json()["items"]
        total += sum(d["chunk_count"] for d in items)
        offset += len(items)
        if len(items) < 100:
            return total


def wait_indexed(client: httpx.Client, collection: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while waiting(client, collection):
        if time.monotonic() > deadline:
            raise RuntimeError("ingestion did not finish in time")
        time.sleep(1)


def searches(client: httpx.Client, body: dict[str, object], queries: list[str]) -> list[float]:
    took = []
    for query in queries:
        started = time.perf_counter()
        client.post("/api/v1/search", json={**body, "query": query}).raise_for_status()
        took.append((time.perf_counter() - started) * 1000)
    return took


def row(name: str, ms: list[float]) -> str:
    p95 = statistics.quantiles(ms, n=20)[-1] if len(ms) >= 2 else ms[0]
    return f"| {name} | {len(ms)} | {statistics.median(ms):.1f} | {p95:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=80, help="documents ingested under load")
    parser.add_argument("--paragraphs", type=int, default=30, help="README paragraphs each")
    parser.add_argument("--queries", type=int, default=60, help="searches per idle phase")
    parser.add_argument("--mode", default="hybrid", choices=["hybrid", "semantic", "fulltext"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="postrag-bench-during-"))
    server_url = os.environ.get("DATABASE_URL") or embedded.start(work / "pg").url
    server, base = start_server(fresh_database(server_url, "postrag_during"), work / "data")
    rng = random.Random(23)
    pool = paragraphs()
    queries = [" ".join(rng.choice(p.split()) for _ in range(3)) for p in pool]
    try:
        admin = (work / "data" / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            seed = client.post("/api/v1/collections", json={"name": "seed"}).raise_for_status()
            seed_id = seed.json()["id"]
            for i in range(10):
                body = {
                    "collection_id": seed_id,
                    "title": f"seed {i}",
                    "text": document(rng, pool, 10),
                }
                client.post("/api/v1/documents", json=body).raise_for_status()
            wait_indexed(client, seed_id, 600)
            body = {"mode": args.mode, "collection_ids": [seed_id]}
            searches(client, body, queries[:10])  # warm: connections, sessions, prepared plans
            idle = searches(client, body, rng.sample(queries, args.queries))
            bulk = client.post("/api/v1/collections", json={"name": "bulk"}).raise_for_status()
            bulk_id = bulk.json()["id"]
            started = time.monotonic()
            for i in range(args.docs):
                text = document(rng, pool, args.paragraphs)
                body_doc = {"collection_id": bulk_id, "title": f"bulk {i}", "text": text}
                client.post("/api/v1/documents", json=body_doc).raise_for_status()
            during: list[float] = []
            done = threading.Event()

            def watch() -> None:
                with httpx.Client(base_url=base, headers=headers, timeout=120) as watcher:
                    wait_indexed(watcher, bulk_id, 3600)
                done.set()

            threading.Thread(target=watch, daemon=True).start()
            while not done.is_set():
                took = searches(client, body, [rng.choice(queries)])
                if not done.is_set():
                    during += took
            ingest_s = time.monotonic() - started
            chunks = chunk_count(client, bulk_id)
            after = searches(client, body, rng.sample(queries, args.queries))
    finally:
        server.terminate()
        server.wait(timeout=60)
    idle_p50 = (statistics.median(idle) + statistics.median(after)) / 2
    print(
        f"\n{args.docs} documents of {args.paragraphs} paragraphs ingested in {ingest_s:.0f} s"
        f" ({chunks} chunks, {chunks / ingest_s:.1f}/s); mode {args.mode}; load average"
        f" {os.getloadavg()[0]:.1f}\n"
    )
    print("| phase | searches | p50 ms | p95 ms |\n| --- | --- | --- | --- |")
    print(row("idle, before", idle))
    print(row("while every worker ingests", during))
    print(row("idle, after", after))
    print(f"\nduring / idle p50: {statistics.median(during) / idle_p50:.2f}x")


if __name__ == "__main__":
    main()
