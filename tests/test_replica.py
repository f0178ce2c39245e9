"""Reads on a streaming replica (DATABASE_REPLICA_URL): an embedded primary plus a hot standby
made with pg_basebackup, both on loopback. Search and listings read the replica while it is up
and fresh, writes stay on the primary, and reads fall back to the primary while it lags or is
down."""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app import create_app
from app.api.endpoint import READ_FROM_HEADER
from app.db import embedded
from app.runtime import Runtime
from app.settings import Settings
from tests.helpers import (
    MIGRATIONS_DIR,
    admin_token_in,
    bearer,
    close_app,
    drain,
    free_port,
    post_document,
    wait_for,
)

# initdb and postgres refuse to run as root; pgserver runs them as this user then.
RUN_AS = "pgserver" if os.geteuid() == 0 else None
SERVER_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 4
hot_standby = on
fsync = off
"""


def _pg(command: str, *args: str) -> None:
    subprocess.run(
        [str(embedded.bin_dir() / command), *args],
        user=RUN_AS,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )


@dataclass
class Cluster:
    pgdata: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postrag"

    def start(self) -> None:
        _pg("pg_ctl", "-D", str(self.pgdata), "-l", f"{self.pgdata}.log", "-w", "start")

    def stop(self) -> None:
        _pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")

    def execute(self, statement: str) -> Any:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(statement).fetchone()


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary with a database `postrag`, and its hot standby, both running."""
    base = Path(tempfile.mkdtemp(prefix="postrag-replica-"))
    if RUN_AS:
        os.chown(base, pwd.getpwnam(RUN_AS).pw_uid, pwd.getpwnam(RUN_AS).pw_gid)
    primary = Cluster(base / "primary", free_port())
    standby = Cluster(base / "standby", free_port())
    running: list[Cluster] = []
    try:
        _pg("initdb", "--auth=trust", "-U", "postgres", "-E", "utf8", "-D", str(primary.pgdata))
        with (primary.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(SERVER_SETTINGS.format(port=primary.port))
        primary.start()
        running.append(primary)
        with psycopg.connect(primary.url.replace("/postrag", "/postgres"), autocommit=True) as c:
            c.execute("CREATE DATABASE postrag")
        # -R writes standby.signal and primary_conninfo; initdb's pg_hba lets 127.0.0.1 replicate.
        address = ("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres")
        _pg(
            "pg_basebackup", "-R", "-c", "fast", "-X", "stream", *address, "-D", str(standby.pgdata)
        )
        with (standby.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {standby.port}\n")
        standby.start()
        running.append(standby)
        yield primary, standby
    finally:
        for cluster in reversed(running):
            if (cluster.pgdata / "postmaster.pid").exists():
                cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def _settings(primary: Cluster, replica_url: str | None, data_dir: Path) -> Settings:
    return Settings(
        database_url=primary.url,
        database_replica_url=replica_url,
        data_dir=data_dir,
        migrations_dir=MIGRATIONS_DIR,
        pool_min_size=1,
        pool_max_size=4,
        workers=0,
        llm="none",
        rate_limit_per_minute=0,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replica-data")


@pytest.fixture(scope="module")
def primary_only(clusters, data_dir):  # type: ignore[no-untyped-def]
    """An app on the primary alone: migrates it and makes the admin (the standby follows)."""
    app = create_app(_settings(clusters[0], None, data_dir))
    yield app
    close_app(app)


@pytest.fixture(scope="module")
def app(clusters, data_dir, primary_only):  # type: ignore[no-untyped-def]
    app = create_app(_settings(clusters[0], clusters[1].url, data_dir))
    yield app
    close_app(app)
    Runtime.of(app).replica.close()


@pytest.fixture
def replica(app):  # type: ignore[no-untyped-def]
    """The app's Replica, its knobs restored after the test."""
    replica = Runtime.of(app).replica
    knobs = (replica.max_lag_s, replica.retry_after_s)
    yield replica
    replica.max_lag_s, replica.retry_after_s = knobs


@pytest.fixture(scope="module")
def admin(data_dir, primary_only) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(admin_token_in(data_dir))


def read_from(client, path: str, headers: dict[str, str], source: str, **json: Any):  # type: ignore[no-untyped-def]
    """The response to GET `path` (POST with `json`) once `source` served it, else None."""
    response = (
        client.post(path, json=json, headers=headers) if json else client.get(path, headers=headers)
    )
    assert response.status_code == 200, response.json
    return response if response.headers.get(READ_FROM_HEADER) == source else None


def upload_to_primary(client, headers, collection: int, name: str, text: str) -> int:  # type: ignore[no-untyped-def]
    response = post_document(client, headers, collection, name, text.encode())
    assert response.status_code == 202, response.json
    assert READ_FROM_HEADER not in response.headers  # a write: the primary, always
    return int(response.json["id"])


@pytest.fixture(scope="module")
def corpus(app, admin) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """An indexed document in a private collection of the admin's, seen by the replica."""
    client = app.test_client()
    response = client.post("/api/v1/collections", json={"name": "private"}, headers=admin)
    assert response.status_code == 201 and READ_FROM_HEADER not in response.headers
    collection = int(response.json["id"])
    text = "Install the XR-7734 valve before pressurising the pipeline system."
    document = upload_to_primary(client, admin, collection, "valve.txt", text)
    assert drain(app) == 1  # the worker writes chunks and embeddings on the primary

    def indexed_on_replica():  # type: ignore[no-untyped-def]
        response = read_from(client, "/api/v1/documents", admin, "replica")
        return response and [d["status"] for d in response.json["items"]] == ["indexed"]

    wait_for(indexed_on_replica)
    return {"collection": collection, "document": document}


def test_search_and_listings_read_the_replica_and_answer_as_the_primary(
    app, primary_only, admin, corpus
):  # type: ignore[no-untyped-def]
    client, direct = app.test_client(), primary_only.test_client()
    body = {"query": "valve pipeline", "min_similarity": 0}
    searched = read_from(client, "/api/v1/search", admin, "replica", **body)
    assert searched is not None
    assert [hit["document_id"] for hit in searched.json["hits"]] == [corpus["document"]]
    on_primary = direct.post("/api/v1/search", json=body, headers=admin)
    assert READ_FROM_HEADER in on_primary.headers  # no replica configured: says primary
    assert on_primary.headers[READ_FROM_HEADER] == "primary"
    assert searched.json == on_primary.json
    for path in (
        "/api/v1/collections",
        "/api/v1/documents",
        f"/api/v1/documents/{corpus['document']}/chunks",
        "/api/v1/chats",
    ):
        replica_page = read_from(client, path, admin, "replica")
        assert replica_page is not None, path
        assert replica_page.json == direct.get(path, headers=admin).json, path
    # Single items, the targets of a write's Location, read the primary (read-your-writes).
    single = client.get(f"/api/v1/documents/{corpus['document']}", headers=admin)
    assert single.status_code == 200 and READ_FROM_HEADER not in single.headers
    ready = client.get("/readyz", headers=admin)
    assert ready.status_code == 200 and ready.json["replica"]["state"] == "fresh"
    assert "replica" not in direct.get("/readyz", headers=admin).json
    # The request log of a replica read is written on the primary.
    with psycopg.connect(Runtime.of(app).settings.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM api_usage WHERE route = '/api/v1/search'")
        assert row.fetchone()[0] >= 1  # type: ignore[index]


def test_row_level_security_holds_on_replica_reads(app, admin, corpus):  # type: ignore[no-untyped-def]
    client = app.test_client()
    made = client.post("/api/v1/users", json={"name": "bea"}, headers=admin)
    assert made.status_code == 201, made.json
    bea = bearer(made.json["token"])
    wait_for(lambda: read_from(client, "/api/v1/collections", bea, "replica"))  # bea replicated

    collections = read_from(client, "/api/v1/collections", bea, "replica")
    assert collections is not None and collections.json["items"] == []
    documents = read_from(client, "/api/v1/documents", bea, "replica")
    assert documents is not None and documents.json["items"] == []
    searched = read_from(client, "/api/v1/search", bea, "replica", query="valve", min_similarity=0)
    assert searched is not None and searched.json["hits"] == []
    scoped = client.post(
        "/api/v1/search",
        json={"query": "valve", "collection_ids": [corpus["collection"]]},
        headers=bea,
    )
    assert scoped.status_code == 404, scoped.json
    chunks = client.get(f"/api/v1/documents/{corpus['document']}/chunks", headers=bea)
    assert chunks.status_code == 404, chunks.json


def test_reads_go_to_the_primary_while_the_replica_lags_beyond_the_bound(
    app, clusters, admin, corpus, replica, data_dir
):  # type: ignore[no-untyped-def]
    client, standby = app.test_client(), clusters[1]
    replica.max_lag_s = 1.0
    assert read_from(client, "/api/v1/collections", admin, "replica")
    standby.execute("SELECT pg_wal_replay_pause()")
    try:
        made = client.post("/api/v1/collections", json={"name": "after-pause"}, headers=admin)
        assert made.status_code == 201, made.json

        def on_primary_with_new():  # type: ignore[no-untyped-def]
            response = read_from(client, "/api/v1/collections", admin, "primary")
            return response and made.json["id"] in [c["id"] for c in response.json["items"]]

        wait_for(on_primary_with_new)
        lag = replica.status().lag_s
        assert replica.status().state == "lagging" and (lag is None or lag > 1.0)
        assert read_from(client, "/api/v1/search", admin, "primary", query="valve")
        # A process started now has no history of the primary's positions: a replica behind
        # everything it samples is of unknown age, so it reads the primary from the first request.
        fresh_start = create_app(
            dataclasses.replace(
                _settings(clusters[0], clusters[1].url, data_dir), replica_max_lag_s=1.0
            )
        )
        try:
            first = fresh_start.test_client().get("/api/v1/collections", headers=admin)
            assert first.status_code == 200 and first.headers[READ_FROM_HEADER] == "primary"
            assert Runtime.of(fresh_start).replica.status().state == "lagging"
        finally:
            close_app(fresh_start)
            Runtime.of(fresh_start).replica.close()
    finally:
        standby.execute("SELECT pg_wal_replay_resume()")

    def on_replica_with_new():  # type: ignore[no-untyped-def]
        response = read_from(client, "/api/v1/collections", admin, "replica")
        return response and made.json["id"] in [c["id"] for c in response.json["items"]]

    wait_for(on_replica_with_new)
    assert replica.status().state == "fresh"


def test_reads_go_to_the_primary_while_the_replica_is_down(app, clusters, admin, corpus, replica):  # type: ignore[no-untyped-def]
    client, standby = app.test_client(), clusters[1]
    replica.retry_after_s = 0.5
    assert read_from(client, "/api/v1/collections", admin, "replica")
    standby.stop()
    try:
        assert read_from(client, "/api/v1/collections", admin, "primary")
        searched = read_from(client, "/api/v1/search", admin, "primary", query="valve")
        assert searched is not None and len(searched.json["hits"]) == 1
        assert replica.status().state == "down"
        ready = client.get("/readyz", headers=admin)  # ready: reads have the primary
        assert ready.status_code == 200 and ready.json["replica"]["state"] == "down"
    finally:
        standby.start()
    wait_for(lambda: read_from(client, "/api/v1/collections", admin, "replica"), timeout=30)


def test_the_app_starts_and_reads_the_primary_when_the_replica_is_unreachable(
    clusters, data_dir, admin, corpus
):  # type: ignore[no-untyped-def]
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/postrag?connect_timeout=2"
    app = create_app(_settings(clusters[0], nowhere, data_dir))
    try:
        response = app.test_client().get("/api/v1/documents", headers=admin)
        assert response.status_code == 200, response.json
        assert response.headers[READ_FROM_HEADER] == "primary"
        assert [d["id"] for d in response.json["items"]] == [corpus["document"]]
    finally:
        close_app(app)
        Runtime.of(app).replica.close()
