"""Graceful shutdown: requests in flight finish, stopped workers give their jobs back at once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from app.runtime import Runtime
from app.services.worker import Worker
from tests.helpers import (
    POSTRAG,
    admin_token_in,
    bearer,
    document_status,
    drain,
    parse_sse,
    start_serve,
    wait_for,
)

LONG_TEXT = " ".join(f"Sentence {i} about the migration of birds over the sea." for i in range(800))


@pytest.fixture
def server_env(cli_env: dict[str, str], llm) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """`postrag serve` answering chats with the fake LLM server, one ingestion worker thread."""
    return {
        **cli_env,
        "POSTRAG_LLM": "ollama",
        "OLLAMA_URL": llm.url,
        "POSTRAG_CHAT_MODEL": "fake-chat",
        "POSTRAG_WORKERS": "1",
    }


def _job(database_url: str) -> tuple:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT state, lease_owner, lease_expires_at, attempts, run_after <= now()"
            " FROM jobs WHERE kind = 'ingest_document'"
        ).fetchone()
    assert row is not None
    return tuple(row)


def _post(url: str, token: str, body: dict, accept: str = "application/json") -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={**bearer(token), "Content-Type": "application/json", "Accept": accept},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
        return response.status, response.read()


def test_a_stopped_worker_requeues_its_job_for_another_worker_at_once(
    app, client, admin, collection, database_url
):
    doc = client.post(
        "/api/v1/documents",
        headers=admin,
        json={"collection_id": collection, "title": "birds", "text": LONG_TEXT[:3000]},
    ).json["id"]
    settings = Runtime.of(app).settings
    first = Worker(settings.database_url, settings, Runtime.of(app).embedder, "first")
    first.after_batch = first.stop_event.set  # told to stop while the job is in flight
    assert drain(app, worker=first) == 1  # ran the job until it noticed, then claimed no other
    # Queued, unleased and due now, the attempt not counted: not left leased until it expires.
    assert _job(database_url) == ("queued", None, None, 0, True)
    assert document_status(database_url, doc) == "queued"
    assert drain(app) == 1  # another worker, well within the 60 s lease
    detail = client.get(f"/api/v1/documents/{doc}", headers=admin).json
    assert detail["status"] == "indexed" and detail["chunk_count"] > 0
    statuses = [h["status"] for h in detail["history"]]
    assert statuses[statuses.index("embedding") + 1] == "queued"
    assert statuses.count("indexed") == 1
    assert _job(database_url)[:4] == ("succeeded", None, None, 1)


def test_worker_process_gives_its_job_back_on_sigterm_and_exits_0(
    cli_env, app, client, admin, collection, database_url
):
    doc = client.post(
        "/api/v1/documents",
        headers=admin,
        json={"collection_id": collection, "title": "long", "text": LONG_TEXT},
    ).json["id"]
    worker = subprocess.Popen(
        [POSTRAG, "worker"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: document_status(database_url, doc) == "embedding",
            "the worker never started embedding",
        )
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)  # before: waited 30 s, then left the lease
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, stderr
    assert "is queued again" in stderr
    assert _job(database_url) == ("queued", None, None, 0, True)
    assert document_status(database_url, doc) == "queued"


def _stream_chat(base: str, token: str, chat: int, result: dict) -> None:
    try:
        result["status"], result["body"] = _post(
            f"{base}/api/v1/chats/{chat}/messages",
            token,
            {"content": "Where do birds migrate?"},
            accept="text/event-stream",
        )
    except Exception as exc:  # noqa: BLE001 - reported by the test's assertions
        result["error"] = exc


def test_serve_finishes_a_streaming_answer_on_sigterm_then_exits_0(server_env, llm, database_url):
    llm.reply = "Birds fly south in autumn and come back north in spring, every single year."
    llm.delay_s = 0.25  # about 4 s of streaming
    server, base = start_serve(server_env, "--workers", "1", "--threads", "4")
    result: dict = {}
    try:
        token = admin_token_in(Path(server_env["POSTRAG_DATA_DIR"]))
        _, raw = _post(f"{base}/api/v1/collections", token, {"name": "birds"})
        collection = json.loads(raw)["id"]
        _, raw = _post(
            f"{base}/api/v1/documents",
            token,
            {"collection_id": collection, "title": "long", "text": LONG_TEXT},
        )
        doc = json.loads(raw)["id"]
        wait_for(
            lambda: document_status(database_url, doc) == "embedding",
            "the server's worker never started embedding",
        )
        _, raw = _post(f"{base}/api/v1/chats", token, {})
        chat = json.loads(raw)["id"]
        streaming = threading.Thread(target=_stream_chat, args=(base, token, chat, result))
        streaming.start()
        wait_for(lambda: llm.chat_requests() != [], "the answer never started")
        server.send_signal(signal.SIGTERM)  # as `docker stop` does, mid-answer
        streaming.join(60)
        _, stderr = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert "error" not in result, result.get("error")
    assert result["status"] == 200
    events = parse_sse(result["body"])
    assert events[-1][0] == "done" and events[-1][1]["status"] == "complete"
    assert "".join(d["text"] for kind, d in events if kind == "delta") == llm.reply
    assert server.returncode == 0, stderr
    port = int(base.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass
    # The in-server worker gave its job back rather than holding the lease until it expired.
    assert _job(database_url) == ("queued", None, None, 0, True)
    assert document_status(database_url, doc) == "queued"


def _lease_owner_pid(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT lease_owner FROM jobs WHERE state = 'running'").fetchone()
    assert row is not None
    return int(row[0].split(":")[-2])  # host:pid:suffix


def test_serve_ingests_in_worker_processes_that_come_back_when_killed(server_env, database_url):
    """Ingestion threads inside the HTTP processes held the GIL: requests waited 26-38 s behind a
    document, and a lease expired while its job ran (issue 16)."""
    server, base = start_serve({**server_env, "POSTRAG_JOB_LEASE_S": "5"}, "--workers", "1")
    try:
        token = admin_token_in(Path(server_env["POSTRAG_DATA_DIR"]))
        _, raw = _post(f"{base}/api/v1/collections", token, {"name": "birds"})
        body = {"collection_id": json.loads(raw)["id"], "title": "long", "text": LONG_TEXT}
        doc = json.loads(_post(f"{base}/api/v1/documents", token, body)[1])["id"]
        wait_for(lambda: document_status(database_url, doc) == "embedding", "no embedding")
        pid = _lease_owner_pid(database_url)
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"worker" in command and b"serve" not in command, command
        niceness = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
        assert niceness == 10  # requests and PostgreSQL come first
        os.kill(pid, signal.SIGKILL)  # as the kernel's OOM killer would
        wait_for(lambda: document_status(database_url, doc) == "indexed", "not taken over")
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, stderr
    assert f"ingestion worker 1 (pid {pid}) exited with status -9; starting it again" in stderr
    assert _job(database_url)[0] == "succeeded" and _job(database_url)[3] == 2


def test_serves_children_stop_when_serve_is_killed(tmp_path):
    """`postrag serve` killed with SIGKILL (the OOM killer) left gunicorn holding the port and
    the workers running, orphaned (review of issue 16): its children now get SIGTERM."""
    import sys

    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    script = (
        "import os, sys; from app.serve import Supervisor;"
        f" sys.exit(Supervisor({sleeper!r}, {sleeper!r}, 2, dict(os.environ)).run())"
    )
    supervisor = subprocess.Popen([sys.executable, "-c", script])
    try:
        children = Path(f"/proc/{supervisor.pid}/task/{supervisor.pid}/children")
        deadline = time.monotonic() + 30
        while len(pids := children.read_text().split()) < 3:
            assert time.monotonic() < deadline, "the supervisor did not start its children"
            time.sleep(0.05)
        os.kill(supervisor.pid, signal.SIGKILL)
        supervisor.wait()
        deadline = time.monotonic() + 10
        alive = pids
        while alive and time.monotonic() < deadline:
            alive = [p for p in pids if _running(int(p))]
            time.sleep(0.05)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    leftovers = [p for p in pids if _running(int(p))]
    for pid in leftovers:
        os.kill(int(pid), signal.SIGKILL)
    assert leftovers == []


def _running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
