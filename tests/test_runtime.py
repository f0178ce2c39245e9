"""The app's runtime: opened in order, closed in reverse, nothing left open after a failed start."""

from __future__ import annotations

import dataclasses
import logging
import time

import psycopg
import pytest

from app import create_app
from app.runtime import Runtime
from app.settings import Settings
from tests.helpers import wait_for


def _other_connections(database_url: str) -> list[tuple[str, str]]:
    """Client connections to the test database besides this one (state, last query), once
    those closing have gone. Only client backends count: an autovacuum worker also shows the
    database's name. The pool closes a connection handed back just before `close()` in its
    worker thread, which a loaded machine may run seconds later: wait for up to 30 s."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        deadline = time.monotonic() + 30
        while True:
            rows = conn.execute(
                "SELECT state, query FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'"
            ).fetchall()
            if not rows or time.monotonic() > deadline:
                return [(str(state), str(query)) for state, query in rows]
            time.sleep(0.1)


def test_an_app_keeps_one_runtime_with_everything_it_opened(app, settings: Settings):
    runtime = Runtime.of(app)
    assert runtime.settings.database_url == settings.database_url
    assert runtime.replica is None  # no DATABASE_REPLICA_URL
    assert runtime.oidc is None  # no POSTRAG_OIDC_ISSUER
    assert runtime.search.embedders is runtime.query_embedders
    with runtime.pool.connection() as conn:
        assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}


def _all_back(stats: dict[str, int]) -> bool:
    """Every connection the pool holds is back in it (one may have been opened beside the first
    while it was busy, and come back last)."""
    return stats.get("pool_available", 0) >= max(1, stats.get("pool_size", 1))


def test_close_shuts_down_in_reverse_order_once_even_when_one_close_fails(
    settings: Settings, caplog: pytest.LogCaptureFixture
):
    runtime = Runtime.open(settings, "none")
    closed: list[str] = []
    runtime.query_embedders.close = lambda: closed.append("embedders")  # type: ignore[method-assign]

    def broken() -> None:
        closed.append("llm")
        raise RuntimeError("boom")

    runtime.llm.close = broken  # type: ignore[method-assign]
    pool_close = runtime.pool.close
    runtime.pool.close = lambda *a, **k: (closed.append("pool"), pool_close())  # type: ignore[method-assign]
    with runtime.pool.connection() as conn:
        assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
    # The pool takes a connection back in a worker thread, which a loaded machine runs late:
    # close once it is back, as a process does at its end (the close must close it).
    wait_for(lambda: _all_back(runtime.pool.get_stats()))
    with caplog.at_level(logging.ERROR, logger="app.runtime"):
        runtime.close()
        runtime.close()  # a second close does nothing
    assert closed == ["embedders", "llm", "pool"]
    assert "closing the LLM clients failed" in caplog.text
    assert _other_connections(settings.database_url or "") == []


def test_a_failed_start_closes_what_it_had_opened(settings: Settings, monkeypatch):
    def no_model(_settings: Settings) -> None:
        raise OSError("the embedding model file is unreadable")

    monkeypatch.setattr("app.runtime.make_embedder", no_model)
    with pytest.raises(OSError, match="unreadable"):
        create_app(settings)
    assert _other_connections(settings.database_url or "") == []  # the pool was closed


def test_the_openid_verifier_is_made_for_its_issuer_and_closed_with_the_runtime(
    settings: Settings,
):
    runtime = Runtime.open(
        dataclasses.replace(
            settings, oidc_issuer="https://id.example/realms/team", oidc_audience="postrag"
        ),
        "none",
    )
    verifier = runtime.oidc
    assert verifier is not None
    assert (verifier.issuer, verifier.audience) == ("https://id.example/realms/team", "postrag")
    runtime.close()
    assert verifier._http.is_closed
