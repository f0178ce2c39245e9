"""Load test: concurrent users searching, chatting and uploading against a local `postrag serve`.

    .venv/bin/pip install -e '.[bench]'        # locust
    .venv/bin/python bench/load.py [--users 20] [--duration 60] [--max-requests 5000]

Everything is on loopback and thrown away afterwards: a new embedded PostgreSQL in a temp dir (or
a fresh database on DATABASE_URL's server, dropped at the end), the tests' fake language model in
a process of its own (bench/fake_llm_process.py: Ollama's protocol, answers streamed word by
word), and `postrag serve` (gunicorn, --server-workers x --threads, and POSTRAG_WORKERS ingestion
worker processes beside it, no rate limit, the default local embedder unless the environment
says otherwise). Seeded before the clock starts: --accounts users, each with a collection of
--seed-docs indexed documents.

Then --users locust users (FastHttpUser, one per greenlet in this process), each acting as one of
the accounts, pick weighted tasks: search (hybrid, semantic, full text), a chat message (JSON, or
server-sent events read to the end; a new chat every few turns), an upload (multipart, a new small
text document) and a documents listing. The run stops at --duration seconds or --max-requests
requests, whichever comes first; users finish the task in hand (so a few requests may pass the
budget) and nothing is cut off mid-request.

A request fails when it answers anything but its documented 2xx, when its body is not the
expected one (an SSE stream must end with `done` and a complete message), or on any exception.
After the run: wait (at most --ingest-timeout) until no document is waiting, then check that
every accepted upload is `indexed`, the database holds exactly the seeded and accepted
documents, every document's ingestion job succeeded and none is queued, running or failed, every
chat answer was stored complete, no task raised and the server logged no error. Prints a
Markdown table (per route: requests, failures, p50, p99, requests/s over the whole run), the
uploads' upload -> indexed times (from the status history) and the checks; exit code 1 if a
request failed or a check did not hold. Latencies are exact percentiles of every request's time
(the whole body read, streams included), not locust's rounded buckets. The load generator runs
on the same machine as the server, so on a small machine it takes part of the CPU it measures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import gevent
from locust import FastHttpUser, between
from locust.env import Environment
from locust.runners import STATE_STOPPED

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from app.db import embedded

BENCH_DIR = Path(__file__).resolve().parent
CHAT_MODEL = "fake-chat"  # a model tests/fake_llm.py knows
TURNS_PER_CHAT = 4
# Task -> weight: searches in three modes, a chat message, an upload, a documents listing.
WEIGHTS = {"hybrid": 4, "semantic": 2, "fulltext": 2, "chat": 3, "upload": 1, "listing": 1}
WAITING = ("queued", "extracting", "chunking", "embedding")
VOCABULARY = (
    "postgres vector index query search embedding chunk document retrieval answer model token "
    "latency recall memory storage network cluster replica backup schema table column planner "
    "cost cache buffer page write read commit transaction lock vacuum worker queue lease "
    "heartbeat upload parser heading citation prompt stream answer budget tenant policy role"
).split()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- generated text


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(6, 14))).capitalize() + "."


def document_text(rng: random.Random, words: int, marker: str) -> str:
    """Markdown-ish plain text of about `words` words; `marker` makes its bytes unique."""
    parts = [f"# Notes {marker}", ""]
    while sum(len(p.split()) for p in parts) < words:
        parts.append(" ".join(sentence(rng) for _ in range(rng.randint(3, 6))))
        parts.append("")
    return "\n".join(parts)


def query_text(rng: random.Random) -> str:
    return "how does the " + " ".join(rng.sample(VOCABULARY, rng.randint(2, 4))) + " work"


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body (FastHttpUser has no `files=`) and its Content-Type."""
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    out += content + f"\r\n--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


# ---------------------------------------------------------------- what the run records


@dataclass(frozen=True)
class Account:
    token: str
    collection_id: int


@dataclass
class Record:
    """Every request's latency by route name, and what the users saw accepted."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    first_failure: dict[str, str] = field(default_factory=dict)  # by route
    uploaded_ids: list[int] = field(default_factory=list)
    answers: int = 0
    task_errors: list[str] = field(default_factory=list)  # exceptions in the tasks' own code
    requests: int = 0

    def on_request(self, name: str, response_time: float, exception: Any, **_: Any) -> None:
        self.requests += 1
        self.latencies.setdefault(name, []).append(response_time)
        if exception is not None:
            self.failures[name] = self.failures.get(name, 0) + 1
            self.first_failure.setdefault(name, str(exception))

    def failed(self) -> int:
        return sum(self.failures.values())


# ---------------------------------------------------------------- the locust user


def user_class(
    accounts: list[Account], record: Record, args: argparse.Namespace
) -> type[FastHttpUser]:
    """A FastHttpUser class acting as the accounts in turn (closure: no module-level state)."""
    weights = args.weights
    turn = itertools.count()

    class ApiUser(FastHttpUser):
        wait_time = between(*args.wait)

        def on_start(self) -> None:
            n = next(turn)
            self.account = accounts[n % len(accounts)]
            self.rng = random.Random(args.seed * 1000 + n)
            self.auth = {"Authorization": f"Bearer {self.account.token}"}
            self.chat_id: int | None = None
            self.turns = 0

        def search(self, mode: str) -> None:
            body = {"query": query_text(self.rng), "mode": mode, "top_k": 8}
            name = f"POST /api/v1/search [{mode}]"
            with self.client.post(
                "/api/v1/search", json=body, headers=self.auth, name=name, catch_response=True
            ) as r:
                expect(r, r.status_code == 200 and "hits" in body_of(r))

        def hybrid(self) -> None:
            self.search("hybrid")

        def semantic(self) -> None:
            self.search("semantic")

        def fulltext(self) -> None:
            self.search("fulltext")

        def chat(self) -> None:
            if self.chat_id is None or self.turns >= TURNS_PER_CHAT:
                with self.client.post(
                    "/api/v1/chats",
                    json={"title": "load"},
                    headers=self.auth,
                    name="POST /api/v1/chats",
                    catch_response=True,
                ) as r:
                    if not expect(r, r.status_code == 201):
                        return
                    self.chat_id, self.turns = r.json()["id"], 0
            self.turns += 1
            sse = self.rng.random() < 0.5
            headers = {**self.auth, "Accept": "text/event-stream" if sse else "application/json"}
            with self.client.post(
                f"/api/v1/chats/{self.chat_id}/messages",
                json={"content": query_text(self.rng) + "?"},
                headers=headers,
                name=f"POST /api/v1/chats/{{id}}/messages [{'sse' if sse else 'json'}]",
                catch_response=True,
            ) as r:
                if expect(r, *answer_complete(r, sse)):
                    record.answers += 1

        def upload(self) -> None:
            marker = uuid.uuid4().hex
            text = document_text(self.rng, 120, marker)
            data, content_type = multipart(
                {"collection_id": str(self.account.collection_id), "title": f"load {marker}"},
                f"load-{marker}.txt",
                text.encode(),
            )
            with self.client.post(
                "/api/v1/documents",
                data=data,
                headers={**self.auth, "Content-Type": content_type},
                name="POST /api/v1/documents [multipart]",
                catch_response=True,
            ) as r:
                if expect(r, r.status_code == 202):
                    record.uploaded_ids.append(r.json()["id"])

        def listing(self) -> None:
            with self.client.get(
                f"/api/v1/documents?collection_id={self.account.collection_id}&limit=20",
                headers=self.auth,
                name="GET /api/v1/documents",
                catch_response=True,
            ) as r:
                expect(r, r.status_code == 200 and "items" in body_of(r))

    # Each task listed as many times as its weight, as locust expands @task(weight).
    ApiUser.tasks = [getattr(ApiUser, name) for name, n in weights.items() for _ in range(n)]
    return ApiUser


def expect(response: Any, ok: bool, detail: str = "") -> bool:
    """Mark the request succeeded or failed (with its status and the start of its body)."""
    if ok:
        response.success()
    else:
        response.failure(f"{response.status_code}: {(detail or response.text or '')[:300]}")
    return ok


def body_of(response: Any) -> dict[str, Any]:
    """The JSON object answered, or {} when the body is not one."""
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def answer_complete(response: Any, sse: bool) -> tuple[bool, str]:
    """A complete stored answer: JSON 201 with status complete, or a stream ending in `done`."""
    if not sse:
        return response.status_code == 201 and body_of(response).get("status") == "complete", ""
    if response.status_code != 200:
        return False, ""
    events = []
    for block in (response.text or "").split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], lines["data"]))
    if not events:
        return False, "no events"
    kind, data = events[-1]
    ok = kind == "done" and json.loads(data).get("status") == "complete"
    return ok, f"the stream ended with {kind}: {data}"


# ---------------------------------------------------------------- running the load


def run_load(
    base_url: str, accounts: list[Account], args: argparse.Namespace
) -> tuple[Record, float, str]:
    """Run the users until the duration or the request budget runs out; (record, seconds, why)."""
    record = Record()
    cls = user_class(accounts, record, args)
    env = Environment(user_classes=[cls], host=base_url, stop_timeout=60)
    runner = env.create_local_runner()
    why: list[str] = []

    def stop(reason: str) -> None:
        if not why:
            why.append(reason)
            gevent.spawn(runner.stop)

    def on_request(**kwargs: Any) -> None:
        record.on_request(**kwargs)
        if record.requests >= args.max_requests:
            stop(f"request budget ({args.max_requests:,})")

    env.events.request.add_listener(on_request)
    started = time.perf_counter()
    runner.start(args.users, spawn_rate=max(1.0, args.users / 2))
    gevent.spawn_later(args.duration, stop, f"duration ({args.duration:g} s)")
    while runner.state != STATE_STOPPED:
        gevent.sleep(0.05)
    elapsed = time.perf_counter() - started
    record.task_errors = [f"{e['count']}x {e['msg']}" for e in runner.exceptions.values()]
    runner.quit()
    return record, elapsed, why[0]


# ---------------------------------------------------------------- the server and its data


@dataclass
class Stack:
    """What the run started, to stop and remove at the end."""

    work_dir: Path
    database_url: str = ""
    drop_database: str = ""  # the server URL to drop it from, when it is not a throwaway server
    embedded: Any = None
    processes: list[subprocess.Popen] = field(default_factory=list)

    def close(self, keep: bool) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
        if self.drop_database:
            name = urlsplit(self.database_url).path.lstrip("/")
            with psycopg.connect(self.drop_database, autocommit=True) as conn:
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                conn.execute(drop.format(sql.Identifier(name)))
        if self.embedded is not None:
            self.embedded.handle.cleanup()
        if not keep:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_database(stack: Stack) -> None:
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        stack.embedded = embedded.start(stack.work_dir / "data")
        stack.database_url = stack.embedded.url
        return
    name = f"postrag_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    stack.database_url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    stack.drop_database = server_url


def start_fake_llm(stack: Stack, args: argparse.Namespace) -> str:
    command = [sys.executable, str(BENCH_DIR / "fake_llm_process.py")]
    command += ["--reply-words", str(args.reply_words), "--delay-ms", str(args.llm_delay_ms)]
    if args.llm_fail_status:
        command += ["--fail-status", str(args.llm_fail_status)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    stack.processes.append(process)
    url = process.stdout.readline().strip() if process.stdout else ""
    if not url.startswith("http://127.0.0.1:"):
        raise RuntimeError(f"the fake LLM server did not start (it printed {url!r})")
    return url


def start_server(stack: Stack, llm_url: str, args: argparse.Namespace) -> str:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": stack.database_url,
        "POSTRAG_DATA_DIR": str(stack.work_dir / "data"),
        "POSTRAG_LLM": "ollama",
        "OLLAMA_URL": llm_url,
        "POSTRAG_CHAT_MODEL": CHAT_MODEL,
        "POSTRAG_WORKERS": str(args.ingest_workers),
        "POSTRAG_RATE_LIMIT_PER_MINUTE": "0",  # a few accounts send thousands of requests
        "POSTRAG_LOG_LEVEL": "WARNING",
    }
    command = [str(Path(sys.executable).parent / "postrag"), "serve", "--port", str(port)]
    command += ["--workers", str(args.server_workers), "--threads", str(args.threads)]
    log_path = stack.work_dir / "serve.log"
    with log_path.open("wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    stack.processes.append(server)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return base_url
        except httpx.TransportError:
            time.sleep(0.5)
    raise RuntimeError(f"postrag serve did not start: {log_path.read_text()[-3000:]}")


def seed(base_url: str, stack: Stack, args: argparse.Namespace) -> list[Account]:
    """--accounts users, each with a collection of --seed-docs documents, all indexed."""
    admin = (stack.work_dir / "data" / "admin-token").read_text().strip()
    rng = random.Random(args.seed)
    accounts = []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for i in range(args.accounts):
            user = client.post(
                "/api/v1/users",
                json={"name": f"load{i}"},
                headers={"Authorization": f"Bearer {admin}"},
            ).raise_for_status()
            auth = {"Authorization": f"Bearer {user.json()['token']}"}
            coll = client.post("/api/v1/collections", json={"name": "load"}, headers=auth)
            account = Account(user.json()["token"], coll.raise_for_status().json()["id"])
            for d in range(args.seed_docs):
                body = {
                    "collection_id": account.collection_id,
                    "title": f"seed {i}-{d}",
                    "text": document_text(rng, 300, f"seed {i}-{d}"),
                }
                client.post("/api/v1/documents", json=body, headers=auth).raise_for_status()
            accounts.append(account)
    settled = wait_for_ingestion(stack.database_url, args.ingest_timeout)
    if settled is None:
        raise RuntimeError("the seeded documents were not all processed in time")
    return accounts


def wait_for_ingestion(database_url: str, timeout_s: float) -> float | None:
    """Seconds until no document waits to be processed and no job is queued or running; None
    after timeout_s."""
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.perf_counter() - started < timeout_s:
            busy = conn.execute(
                "SELECT (SELECT count(*) FROM documents WHERE status = ANY(%s))"
                " + (SELECT count(*) FROM jobs WHERE state IN ('queued', 'running'))",
                (list(WAITING),),
            ).fetchone()
            if busy is not None and busy[0] == 0:
                return time.perf_counter() - started
            time.sleep(0.25)
    return None


# ---------------------------------------------------------------- checks and report


def check_database(database_url: str, record: Record, seeded: int) -> list[str]:
    """What did not hold, as sentences; empty when every upload, job and answer is accounted for."""
    problems = []
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        docs = {
            r["id"]: r["status"]
            for r in conn.execute("SELECT id, status FROM documents").fetchall()
        }
        jobs = conn.execute("SELECT state, count(*) AS n FROM jobs GROUP BY state").fetchall()
        missing_job = conn.execute(
            "SELECT count(*) AS n FROM documents d WHERE NOT EXISTS (SELECT 1 FROM jobs j"
            " WHERE j.kind = 'ingest_document' AND (j.payload->>'document_id')::bigint = d.id"
            " AND j.state = 'succeeded')"
        ).fetchone()
        answers = conn.execute(
            "SELECT status, count(*) AS n FROM chat_messages WHERE role = 'assistant'"
            " GROUP BY status"
        ).fetchall()
    not_indexed = [i for i in record.uploaded_ids if docs.get(i) != "indexed"]
    if not_indexed:
        problems.append(f"{len(not_indexed)} accepted uploads not indexed: {not_indexed[:10]}")
    if len(docs) != seeded + len(record.uploaded_ids):
        problems.append(
            f"{len(docs)} documents in the database, expected {seeded} seeded"
            f" + {len(record.uploaded_ids)} accepted uploads"
        )
    if bad_jobs := [f"{j['n']} {j['state']}" for j in jobs if j["state"] != "succeeded"]:
        problems.append("jobs not succeeded: " + ", ".join(bad_jobs))
    if missing_job is not None and missing_job["n"]:
        problems.append(f"{missing_job['n']} documents without a succeeded ingestion job")
    stored = {a["status"]: a["n"] for a in answers}
    if set(stored) - {"complete"} or stored.get("complete", 0) != record.answers:
        problems.append(f"chat answers stored {stored}, {record.answers} answered complete")
    return problems


def ingestion_facts(database_url: str, uploaded_ids: list[int]) -> str:
    """Upload -> indexed seconds of the run's uploads (from the status history), and retries."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        seconds = [
            float(r[0])
            for r in conn.execute(
                "SELECT extract(epoch FROM h.created_at - d.created_at) FROM documents d"
                " JOIN document_status_history h ON h.document_id = d.id AND h.status = 'indexed'"
                " WHERE d.id = ANY(%s)",
                (uploaded_ids,),
            )
        ]
        retried = conn.execute("SELECT count(*) FROM jobs WHERE attempts > 1").fetchone()
    if not seconds:
        return "no upload indexed"
    p50, p99 = np.percentile(seconds, [50, 99])
    return (
        f"upload -> indexed p50 {p50:.1f} s, p99 {p99:.1f} s, max {max(seconds):.1f} s;"
        f" jobs that needed a retry: {retried[0] if retried else 0}"
    )


def server_errors(log_path: Path) -> list[str]:
    """Tracebacks and ERROR lines in the server's log (requests can succeed around them)."""
    lines = log_path.read_text(errors="replace").splitlines()
    found = [line for line in lines if "Traceback" in line or "ERROR" in line]
    return [f"{len(found)} error lines in the server log, the first: {found[0]}"] if found else []


def table(record: Record, elapsed: float) -> list[str]:
    out = [
        "| route | requests | failures | p50 ms | p99 ms | requests/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    every: list[float] = []
    for name in sorted(record.latencies):
        times = record.latencies[name]
        every += times
        out.append(row(name, times, record.failures.get(name, 0), elapsed))
    out.append(row("**all**", every, record.failed(), elapsed, bold=True))
    return out


def row(name: str, times: list[float], failures: int, elapsed: float, bold: bool = False) -> str:
    p50, p99 = np.percentile(times, [50, 99]) if times else (0.0, 0.0)
    cells = [
        f"{len(times):,}",
        str(failures),
        f"{p50:.0f}",
        f"{p99:.0f}",
        f"{len(times) / elapsed:.1f}",
    ]
    if bold:
        cells = [f"**{c}**" for c in cells]
    return f"| {name} | " + " | ".join(cells) + " |"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--users", type=int, default=20, help="concurrent locust users")
    add("--duration", type=float, default=60, help="seconds of load at most")
    add("--max-requests", type=int, default=5000, help="requests at most")
    add("--wait", type=_pair, default=(0.5, 1.5), help="think time between tasks, MIN,MAX s")
    add("--weights", type=_weights, default=WEIGHTS, help="task mix, e.g. upload=0,chat=5")
    add("--accounts", type=int, default=4, help="postrag users the locust users act as")
    add("--seed-docs", type=int, default=3, help="indexed documents per account before the run")
    add("--server-workers", type=int, default=2, help="postrag serve --workers")
    add("--threads", type=int, default=8, help="postrag serve --threads")
    add("--ingest-workers", type=int, default=2, help="POSTRAG_WORKERS (worker processes)")
    add("--reply-words", type=int, default=40, help="words in each fake LLM answer")
    add("--llm-delay-ms", type=float, default=5, help="between the fake LLM's streamed words")
    add("--llm-fail-status", type=int, help="the fake LLM fails every chat (to see a run fail)")
    add("--ingest-timeout", type=float, default=120, help="seconds to wait for ingestion")
    add("--markdown", type=Path, help="also write the report (Markdown) to this file")
    add("--keep", action="store_true", help="keep the work dir (database, server log)")
    add("--seed", type=int, default=42)
    return parser.parse_args()


def _weights(text: str) -> dict[str, int]:
    weights = dict(WEIGHTS)
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name not in WEIGHTS or not value.isdigit():
            raise argparse.ArgumentTypeError(f"{item!r}: say NAME=N with NAME among {[*WEIGHTS]}")
        weights[name] = int(value)
    if not any(weights.values()):
        raise argparse.ArgumentTypeError("every weight is 0")
    return weights


def _pair(text: str) -> tuple[float, float]:
    low, high = (float(x) for x in text.split(","))
    return low, high


def report(args: argparse.Namespace, record: Record, elapsed: float, why: str) -> list[str]:
    return [
        f"{args.users} users for {elapsed:.1f} s (stopped by the {why}), think time"
        f" {args.wait[0]:g}-{args.wait[1]:g} s, task mix "
        + ", ".join(f"{name} {n}" for name, n in args.weights.items())
        + f"; `postrag serve --workers {args.server_workers}"
        f" --threads {args.threads}`, POSTRAG_WORKERS={args.ingest_workers},"
        f" embedder {os.environ.get('POSTRAG_EMBEDDER', 'local')}; fake LLM: {args.reply_words}"
        f" words, {args.llm_delay_ms:g} ms apart; {os.cpu_count()} cores",
        "",
        *table(record, elapsed),
    ]


def main() -> int:
    args = parse_args()
    stack = Stack(Path(tempfile.mkdtemp(prefix="postrag-load-")))
    try:
        log(f"work dir: {stack.work_dir}")
        start_database(stack)
        llm_url = start_fake_llm(stack, args)
        base_url = start_server(stack, llm_url, args)
        log(f"postrag serve on {base_url}, fake LLM on {llm_url}; seeding")
        accounts = seed(base_url, stack, args)
        load_before = os.getloadavg()
        log(f"load: {args.users} users, {args.duration:g} s or {args.max_requests:,} requests")
        record, elapsed, why = run_load(base_url, accounts, args)
        load_after = os.getloadavg()
        log(f"{record.requests:,} requests in {elapsed:.1f} s; waiting for ingestion")
        settled = wait_for_ingestion(stack.database_url, args.ingest_timeout)
        problems = [
            f"{n} failed requests: {name}; the first: {record.first_failure[name]}"
            for name, n in record.failures.items()
        ]
        if settled is None:
            problems.append(f"documents still waiting after {args.ingest_timeout:g} s")
        problems += [f"error in a task: {e}" for e in record.task_errors]
        problems += check_database(stack.database_url, record, args.accounts * args.seed_docs)
        problems += server_errors(stack.work_dir / "serve.log")
        ingested = "not all processed" if settled is None else f"{settled:.1f} s"
        lines = [
            *report(args, record, elapsed, why),
            "",
            f"- uploads accepted during the run: {len(record.uploaded_ids)}; time from the end of"
            f" the load until every document was processed: {ingested};"
            f" {ingestion_facts(stack.database_url, record.uploaded_ids)}",
            f"- chat answers completed: {record.answers}",
            f"- load average (1 / 5 / 15 min): before the run {_load(load_before)},"
            f" after {_load(load_after)}",
            "- checks: " + ("all passed" if not problems else "FAILED"),
            *(f"  - {p}" for p in problems),
        ]
        text = "\n".join(lines)
        print(text)
        if args.markdown:
            args.markdown.write_text(text + "\n")
        return 1 if problems else 0
    finally:
        stack.close(args.keep)


def _load(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    sys.exit(main())
