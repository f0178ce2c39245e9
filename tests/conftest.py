"""Fixtures: a real PostgreSQL with pgvector, a fresh migrated database per test, app, client.

The server is TEST_DATABASE_URL when set, else a pgvector/pgvector testcontainer when a Docker
engine answers, else the embedded server (the same code postrag uses without DATABASE_URL).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from app import create_app
from app.runtime import Runtime
from app.settings import Settings
from app.strict_json import NonFiniteNumber

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql" / "migrations"
PGVECTOR_IMAGE = "pgvector/pgvector:0.8.1-pg17"


def with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def _docker_answers() -> bool:
    """True when a Docker engine answers a ping on DOCKER_HOST or the default socket."""
    if not os.environ.get("DOCKER_HOST"):
        # Probe the socket ourselves: the docker client leaks a socket when nothing listens.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            try:
                probe.connect("/var/run/docker.sock")
            except OSError:
                return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


class _NonFiniteJSONCatcher(logging.Handler):
    """Records every logged exception caused by JSON with a NaN or an infinity."""

    def __init__(self) -> None:
        super().__init__()
        self.caught: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        while error is not None:
            if isinstance(error, NonFiniteNumber):
                self.caught.append(f"{record.name}: {record.getMessage()}: {error}")
                return
            error = error.__cause__ or error.__context__


@pytest.fixture(autouse=True)
def no_nan_in_json() -> Iterator[_NonFiniteJSONCatcher]:
    """Fails any test during which the app tried to write a NaN or an infinity as JSON.

    The app refuses (app/strict_json.py) and answers a logged 500 or an error event, which a
    test might accept; this makes it a failure wherever it happened (request, stream, worker).
    A test of the refusal itself empties `caught` once it has checked it.
    """
    catcher = _NonFiniteJSONCatcher()
    root = logging.getLogger()
    root.addHandler(catcher)
    try:
        yield catcher
    finally:
        root.removeHandler(catcher)
    if catcher.caught:
        pytest.fail("JSON with a NaN or an infinity: " + "; ".join(catcher.caught))


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A URL to a PostgreSQL server where the tests may create and drop databases."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
    elif _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer(PGVECTOR_IMAGE, driver=None) as container:
            yield container.get_connection_url()
    else:
        from app.db import embedded

        # Not under pytest's numbered temp dirs: another pytest run on the machine prunes those.
        data_dir = Path(tempfile.mkdtemp(prefix="postrag-test-pg-"))
        server = embedded.start(data_dir)
        yield server.url
        server.handle.cleanup()  # stops PostgreSQL (no other process uses it)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def make_database(server_url: str) -> Iterator[Callable[[], str]]:
    """Creates databases (empty, or copies of a template), dropped after the test; their URLs."""
    created: list[str] = []

    def make(template: str | None = None) -> str:
        name = f"postrag_test_{uuid.uuid4().hex[:12]}"
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(create)
        created.append(name)
        return with_dbname(server_url, name)

    yield make
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in created:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def template_name(server_url: str) -> str:
    """A database migrated once per session through the production code; tests get copies."""
    from app.db import migrations

    name = f"postrag_template_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrations.migrate(with_dbname(server_url, name), MIGRATIONS_DIR)
    return name


@pytest.fixture
def database_url(make_database: Callable[..., str], template_name: str) -> str:
    """A fresh database with every migration applied (a copy of the session's template)."""
    return make_database(template=template_name)


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment for running `postrag` as a subprocess on the test database."""
    return {**os.environ, "DATABASE_URL": database_url, "POSTRAG_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        migrations_dir=MIGRATIONS_DIR,
        pool_min_size=1,
        pool_max_size=4,
        workers=0,  # tests that need background processing run workers themselves
        llm="none",  # no probe for an Ollama on this machine; chat tests bring a fake one
        rate_limit_per_minute=0,  # the rate-limit tests set theirs
    )


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    close_app(app)


def close_app(app) -> None:  # type: ignore[no-untyped-def]
    """Stop what an app started: its runtime (clients, embedders, pools)."""
    Runtime.of(app).close()


@pytest.fixture
def make_app(settings: Settings, app):  # type: ignore[no-untyped-def]
    """Apps on the test database with other settings (the `app` fixture made the admin)."""
    made = []

    def make(**changes):  # type: ignore[no-untyped-def]
        made.append(create_app(dataclasses.replace(settings, **changes)))
        return made[-1]

    yield make
    for other in made:
        close_app(other)


@pytest.fixture
def llm():  # type: ignore[no-untyped-def]
    """A fake Ollama / OpenAI-compatible language-model server on 127.0.0.1."""
    from tests.fake_llm import FakeLLMServer

    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
def ollama_app(make_app, llm):  # type: ignore[no-untyped-def]
    """An app whose chats are answered by the fake server's model fake-chat, as Ollama."""
    return make_app(llm="ollama", ollama_url=llm.url, chat_model="fake-chat", llm_timeout_s=3)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def admin_token(settings: Settings, app) -> str:  # type: ignore[no-untyped-def]
    return (settings.data_dir / "admin-token").read_text().strip()


def parse_sse(raw: bytes | str) -> list[tuple[str, dict]]:
    """The (event, data) pairs of a server-sent-events body."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    found = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


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


def closed_port_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(admin_token: str) -> dict[str, str]:
    """Headers of the bootstrap admin."""
    return bearer(admin_token)


@pytest.fixture
def new_user(client, admin: dict[str, str]) -> Callable[..., dict[str, str]]:  # type: ignore[no-untyped-def]
    """Creates a user through the API and returns the headers of its first token."""

    def make(name: str | None = None, role: str = "user") -> dict[str, str]:
        name = name or f"user-{uuid.uuid4().hex[:8]}"
        response = client.post("/api/v1/users", json={"name": name, "role": role}, headers=admin)
        assert response.status_code == 201, response.json
        return bearer(response.json["token"])

    return make


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


@pytest.fixture
def collection(client, admin) -> int:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/collections", json={"name": "docs"}, headers=admin)
    assert response.status_code == 201, response.json
    return int(response.json["id"])
