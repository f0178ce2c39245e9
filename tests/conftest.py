"""Fixtures: a real PostgreSQL with pgvector, a fresh migrated database per test, app, client.

The server is TEST_DATABASE_URL when set, else a pgvector/pgvector testcontainer when a Docker
engine answers, else the embedded server (the same code postrag uses without DATABASE_URL).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from app import create_app
from app.settings import Settings
from app.strict_json import NonFiniteNumber
from tests.fake_oidc import FakeOIDCProvider
from tests.helpers import (
    FOX,
    MIGRATIONS_DIR,
    VALVE,
    admin_token_in,
    bearer,
    close_app,
    create_collection,
    drain,
    live_server,
    upload,
    with_dbname,
)

pytest_plugins = ["tests.web"]  # the browser tests' fixtures

PGVECTOR_IMAGE = "pgvector/pgvector:0.8.1-pg17"


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


@contextlib.contextmanager
def _databases(server_url: str) -> Iterator[Callable[..., str]]:
    """Creates databases (empty, or copies of a template), dropped at the end; their URLs."""
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


@pytest.fixture
def make_database(server_url: str) -> Iterator[Callable[..., str]]:
    """Creates databases (empty, or copies of a template), dropped after the test; their URLs."""
    with _databases(server_url) as make:
        yield make


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


def _settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        migrations_dir=MIGRATIONS_DIR,
        pool_min_size=1,
        pool_max_size=4,
        workers=0,  # tests that need background processing run workers themselves
        llm="none",  # no probe for an Ollama on this machine; chat tests bring a fake one
        rate_limit_per_minute=0,  # the rate-limit tests set theirs
    )


@contextlib.contextmanager
def _started_app(settings: Settings):  # type: ignore[no-untyped-def]
    app = create_app(settings)
    app.config["TESTING"] = True
    try:
        yield app
    finally:
        close_app(app)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return _settings(database_url, tmp_path / "data")


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    with _started_app(settings) as app:
        yield app


@pytest.fixture(scope="module")
def module_settings(
    server_url: str, template_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings on one template copy for a whole module. A module whose tests only read what a
    module-scoped fixture loaded once (e.g. a labelled corpus) overrides `settings` and `app`
    with these and `module_app`, rather than loading it again for every test."""
    with _databases(server_url) as make:
        yield _settings(make(template=template_name), tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def module_app(module_settings: Settings):  # type: ignore[no-untyped-def]
    """The app on `module_settings`, shared by the module's tests."""
    with _started_app(module_settings) as app:
        yield app


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
    return admin_token_in(settings.data_dir)


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


@pytest.fixture
def provider():  # type: ignore[no-untyped-def]
    """An in-process OpenID provider (tests/fake_oidc.py) on loopback."""
    with FakeOIDCProvider() as fake:
        yield fake


@pytest.fixture
def collection(client, admin) -> int:  # type: ignore[no-untyped-def]
    return create_collection(client, admin)


@pytest.fixture
def base_url(ollama_app):  # type: ignore[no-untyped-def]
    """/v1 of an app answered by the fake Ollama, served over loopback HTTP."""
    with live_server(ollama_app) as base:
        yield f"{base}/v1"


@pytest.fixture
def sdk(base_url: str, admin_token: str):  # type: ignore[no-untyped-def]
    """The official `openai` client on `base_url`, as the admin."""
    import openai

    with openai.OpenAI(base_url=base_url, api_key=admin_token, max_retries=0) as client:
        yield client


@pytest.fixture
def docs(app, client, admin, collection) -> int:  # type: ignore[no-untyped-def]
    """`collection` holding fox.txt and valve.txt, indexed."""
    upload(client, admin, collection, "fox.txt", FOX)
    upload(client, admin, collection, "valve.txt", VALVE)
    drain(app)
    return collection


@pytest.fixture(scope="session")
def fake_mcp_server():  # type: ignore[no-untyped-def]
    """An MCP server built with the official SDK (tests/fake_mcp.py), one per session."""
    from tests.fake_mcp import FakeMcpServer

    with FakeMcpServer() as server:
        yield server


@pytest.fixture
def fake_mcp(fake_mcp_server):  # type: ignore[no-untyped-def]
    """The fake MCP server, its records and requirements fresh for each test."""
    fake_mcp_server.headers.clear()
    fake_mcp_server.required = None
    fake_mcp_server.rewrite = {}
    return fake_mcp_server
