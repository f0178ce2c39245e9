"""Helpers the test modules share: HTTP calls, uploads, jobs, streams, processes, waiting.

Fixtures live in tests/conftest.py; a helper used by more than one test module lives here, once
(tests/test_code_quality.py fails on a copy of one of these in a test module).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app.runtime import Runtime

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql" / "migrations"
POSTRAG = str(Path(sys.executable).parent / "postrag")
SSE = {"Accept": "text/event-stream"}
FOX = "The quick brown fox jumps over the lazy dog. Foxes are clever animals of the forest."
VALVE = "Install the XR-7734 valve before pressurising the pipeline system."
NDJSON = "application/x-ndjson"

T = TypeVar("T")


# Databases and migrations


def with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def migration_ids() -> list[str]:
    """The ids of the migrations, in their versions' order (V1_1__..., without .sql)."""
    from app.db.migrations import order_key

    return sorted(
        (
            p.name.removesuffix(".sql")
            for p in MIGRATIONS_DIR.glob("V*.sql")
            if not p.name.endswith(".rollback.sql")
        ),
        key=order_key,
    )


def document_status(database_url: str, document_id: int) -> str | None:
    """The document's status as stored, None when there is no such document."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT status FROM documents WHERE id = %s", (document_id,)).fetchone()
    return None if row is None else str(row[0])


# Apps and workers


def close_app(app) -> None:  # type: ignore[no-untyped-def]
    """Stop what an app started: its runtime (clients, embedders, pools)."""
    Runtime.of(app).close()


def drain(app, *, worker=None) -> int:  # type: ignore[no-untyped-def]
    """Run queued jobs in this thread until none is due; the number of jobs run."""
    from app.services.worker import Worker, connect

    settings = Runtime.of(app).settings
    worker = worker or Worker(settings.database_url, settings, Runtime.of(app).embedder)
    count = 0
    with connect(settings.database_url) as conn:
        while worker.run_one(conn):
            count += 1
    return count


@contextlib.contextmanager
def running_workers(app, count: int = 1):  # type: ignore[no-untyped-def]
    """`count` worker threads on the app's database (as `postrag worker` runs them) until the
    block ends; the app itself runs none."""
    from app.services.worker import WorkerPool

    settings = Runtime.of(app).settings
    embedder = Runtime.of(app).embedder
    pool = WorkerPool(settings.database_url, settings, embedder, count).start()
    try:
        yield pool
    finally:
        pool.stop()


def wait_for(condition: Callable[[], T], what: str = "", timeout: float = 90) -> T:
    """Poll `condition` until it returns something truthy; that value. Fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, what or f"still false after {timeout} s: {condition}"
        time.sleep(0.05)
    return value


# The API through the test client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_token_in(data_dir: Path) -> str:
    """The first admin's token, as postrag wrote it into its data directory."""
    return (data_dir / "admin-token").read_text().strip()


def create_collection(client, headers, name: str = "docs", **fields: Any) -> int:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/collections", json={"name": name, **fields}, headers=headers)
    assert response.status_code == 201, response.json
    return int(response.json["id"])


def post_document(client, headers, collection, name, data: bytes, content_type=None, **form):  # type: ignore[no-untyped-def]
    """POST /api/v1/documents with one file and more form fields; the response."""
    # Encoded here: the test client spools big multipart bodies to a file it never closes.
    file = FileStorage(io.BytesIO(data), filename=name, content_type=content_type)
    boundary, body = encode_multipart({"collection_id": str(collection), "file": file, **form})
    return client.post(
        "/api/v1/documents",
        data=body,
        headers=headers,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def upload(client, headers, collection, name, data: str | bytes, metadata=None) -> int:  # type: ignore[no-untyped-def]
    """Uploads a file (text as UTF-8) and checks it was queued; the document's id."""
    raw = data.encode() if isinstance(data, str) else data
    metadata_text = json.dumps(metadata or {})
    response = post_document(client, headers, collection, name, raw, metadata=metadata_text)
    assert response.status_code == 202, response.json
    return int(response.json["id"])


def search(client, headers, **body):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/search", json=body, headers=headers)


def names(response) -> list[str]:  # type: ignore[no-untyped-def]
    """The file names of a search answer's hits, in order."""
    assert response.status_code == 200, response.json
    return [hit["filename"] for hit in response.json["hits"]]


def new_chat(client, headers, **body) -> int:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/chats", json=body, headers=headers)
    assert response.status_code == 201, response.json
    return int(response.json["id"])


def ask(client, headers, chat, content, **kwargs):  # type: ignore[no-untyped-def]
    """Sends a message to a chat; `extra` headers (e.g. SSE), other test-client arguments."""
    return client.post(
        f"/api/v1/chats/{chat}/messages",
        json={"content": content},
        headers={**headers, **kwargs.pop("extra", {})},
        **kwargs,
    )


def messages(client, headers, chat) -> list[dict]:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/v1/chats/{chat}", headers=headers)
    assert response.status_code == 200, response.json
    return list(response.json["messages"]["items"])


def export(client, headers, collection) -> list[dict]:  # type: ignore[no-untyped-def]
    """A collection's export file, one dict per line."""
    response = client.get(f"/api/v1/collections/{collection}/export", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.is_streamed and response.mimetype == NDJSON
    assert "attachment" in response.headers["Content-Disposition"]
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def ndjson(lines: list[dict]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def post_import(client, headers, body: bytes, **query):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/collections/import",
        data=body,
        headers=headers,
        content_type=NDJSON,
        query_string=query,
    )


def replaced(lines: list[dict], at: int, **changes: Any) -> list[dict]:
    """`lines` with the one at `at` updated by `changes`."""
    return [*lines[:at], dict(lines[at], **changes), *lines[at + 1 :]]


# Streams


def parse_sse(raw: bytes | str) -> list[tuple[str, dict]]:
    """The (event, data) pairs of a server-sent-events body."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    found = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def parse_sse_ids(raw: bytes | str) -> list[tuple[int, str, dict]]:
    """The (id, event, data) triples of a server-sent-events body whose events all have ids."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    found = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((int(lines["id"]), lines["event"], json.loads(lines["data"])))
    return found


def stream_until(response, marker: str) -> tuple[str, Iterator[bytes]]:  # type: ignore[no-untyped-def]
    """What a streamed (buffered=False) test response sent up to `marker`, and the rest of it."""
    rest, seen = iter(response.response), ""
    while marker not in seen:
        seen += next(rest).decode()
    return seen, rest


# Servers and processes on loopback


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """`app` served on a loopback port by a threaded werkzeug server; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A loopback port where nothing listens (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def closed_port_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET over real HTTP: (status, body), error statuses included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def embedded_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `postrag` process on the embedded server in `data_dir`."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return {**env, "POSTRAG_DATA_DIR": str(data_dir), **extra}


def run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """`postrag *args` as a process, its output captured as text."""
    return subprocess.run(
        [POSTRAG, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start_serve(env: dict[str, str], *options: str) -> tuple[subprocess.Popen, str]:
    """`postrag serve` on a free loopback port, once GET /healthz answers: (process, base URL).

    stderr is a text pipe: the caller stops the server and reads it with communicate().
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [POSTRAG, "serve", "--port", str(port), *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while True:
        with contextlib.suppress(OSError):
            if http_get(f"{base}/healthz")[0] == 200:
                return server, base
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            _, stderr = server.communicate()
            raise AssertionError(f"server did not come up:\n{stderr[-3000:]}")
        time.sleep(0.3)


# Files


def pdf(objects: list[bytes]) -> bytes:
    """A PDF of `objects` (numbered from 1; 1 is the catalog, 2 the page tree) with its xref."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def pdf_pages(references: int, *, count: int | None = None, content: bytes = b"") -> bytes:
    """A PDF whose page tree lists one page object `references` times (claiming `count`)."""
    content = content or b"BT /F1 12 Tf 72 720 Td (Hello from a hostile page.) Tj ET"
    packed = zlib.compress(content)
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>"
            % (b" ".join([b"5 0 R"] * references), references if count is None else count),
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(packed), packed),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R"
            b" /Resources << /Font << /F1 4 0 R >> >> >>",
        ]
    )


HELD_SETTLE_S = 2.0


@contextlib.contextmanager
def connections_held_at(server: Any, pool: Any) -> Iterator[list[int]]:
    """The connections of `pool` in use each time `server` (a fake with `on_request`) is
    asked something, meanwhile: a request should hold none while it waits on another server."""
    held: list[int] = []

    def count_held() -> None:
        # A connection given back is reset by the pool's worker thread, so it may still count
        # for a moment: wait for that (up to HELD_SETTLE_S). One held by the request stays held,
        # since the request waits on this very server.
        deadline = time.monotonic() + HELD_SETTLE_S
        while True:
            stats = pool.get_stats()
            in_use = stats["pool_size"] - stats["pool_available"]
            if in_use == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        held.append(in_use)

    server.on_request = count_held
    try:
        yield held
    finally:
        server.on_request = None
