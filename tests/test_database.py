"""Where the database comes from and what postrag requires of it; the embedded server's first
start by several processes at once, and its supervision (restarted when killed)."""

import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx
import numpy as np
import psutil
import pytest

from app.db import embedded, server, watchdog
from app.db.server import DatabaseUnsupportedError, pgvector_problem
from app.runtime import Runtime
from tests.helpers import POSTRAG, admin_token_in, bearer, embedded_env, run, start_serve, wait_for


def test_pool_connections_speak_pgvector(app):
    with Runtime.of(app).pool.connection() as conn:
        row = conn.execute("SELECT %(v)s::vector AS v", {"v": np.array([1.5, 2, 3])}).fetchone()
    # pgvector-python answers its Vector type, convertible to numpy.
    assert row["v"].to_numpy().tolist() == [1.5, 2.0, 3.0]


def test_pool_connections_are_autocommit(app):
    with Runtime.of(app).pool.connection() as conn:
        assert conn.autocommit


def test_check_server_accepts_this_server(database_url):
    version = server.check_server(database_url)
    assert server.parse_version(version) >= (0, 7)


@pytest.mark.parametrize(
    ("installed", "available", "message"),
    [
        (None, None, "pgvector extension is not available"),
        (None, "0.6.2", "pgvector 0.6.2 is too old"),
        ("0.5.1", "0.8.0", "ALTER EXTENSION vector UPDATE"),
    ],
)
def test_missing_or_old_pgvector_is_refused_with_a_clear_message(installed, available, message):
    problem = pgvector_problem(installed, available)
    assert problem is not None and message in problem


@pytest.mark.parametrize(("installed", "available"), [(None, "0.7.0"), ("0.8.5", "0.8.5")])
def test_recent_pgvector_is_accepted(installed, available):
    assert pgvector_problem(installed, available) is None


def test_a_server_without_pgvector_stops_the_start(database_url, monkeypatch):
    monkeypatch.setattr(server, "MIN_PGVECTOR", (99, 0, 0))
    with pytest.raises(DatabaseUnsupportedError, match="postrag needs pgvector >= 0.7"):
        server.check_server(database_url)


def test_logged_urls_never_carry_the_password():
    assert server.redact("postgresql://app:s3cret@db:5432/postrag") == (
        "postgresql://app:***@db:5432/postrag"
    )
    assert server.redact("postgresql://app@db/postrag") == "postgresql://app@db/postrag"


def _kill_postmaster(pgdata: Path) -> None:
    pid = embedded.postmaster_pid(pgdata)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: embedded.postmaster_pid(pgdata) is None, "the postmaster did not die")


def _serve(env: dict[str, str]) -> tuple[subprocess.Popen, str, Callable[[], str]]:
    """start_serve, its stderr read as it comes (a full pipe would block the server's logging);
    the third item returns all of it once the server and its workers have exited."""
    process, base = start_serve(env, "--workers", "1", "--threads", "2")
    lines: list[str] = []

    def read(stream: IO[str]) -> None:
        with stream:  # until every process holding it (the workers too) has exited
            lines.extend(stream)

    reader = threading.Thread(target=read, args=(process.stderr,), daemon=True)
    reader.start()

    def logged() -> str:
        reader.join(timeout=30)
        return "".join(lines)

    return process, base, logged


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL, without waiting for its gunicorn workers (which share its stderr) to notice."""
    process.kill()
    process.wait(timeout=30)


def test_concurrent_first_starts_on_an_empty_data_dir_all_succeed(tmp_path):
    data_dir = tmp_path / "data"
    env = embedded_env(data_dir)
    starts = [
        subprocess.Popen(
            [POSTRAG, "migrate"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(4)
    ]
    errors = [start.communicate(timeout=180)[1] for start in starts]
    assert [start.returncode for start in starts] == [0, 0, 0, 0], "\n".join(errors)
    assert embedded.postmaster_pid(data_dir / "pgdata") is None  # the last to leave stopped it
    users = run("users", "list", env=env)
    assert users.returncode == 0, users.stderr
    assert users.stdout.split() == ["1", "admin", "admin"]
    assert (data_dir / "admin-token").read_text().startswith("prg_")


def test_the_last_to_leave_stops_postgres_though_another_was_killed_meanwhile(tmp_path):
    data_dir, pgdata = tmp_path / "data", tmp_path / "data" / "pgdata"
    env = embedded_env(data_dir)

    def joined(seconds: int) -> subprocess.Popen:
        process = subprocess.Popen(
            [POSTRAG, "psql", "-X", "-c", f"select pg_sleep({seconds})"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        listed = pgdata / embedded.PIDS_FILE
        wait_for(
            lambda: listed.exists() and process.pid in json.loads(listed.read_text() or "[]"),
            "the process did not join the embedded server",
        )
        return process

    killed = joined(60)
    last = joined(2)
    try:
        _kill(killed)  # its pid stays in pgserver's list
        assert last.wait(timeout=60) == 0
        assert embedded.postmaster_pid(pgdata) is None, "the last to leave left PostgreSQL running"
    finally:
        leftover = embedded.postmaster_pid(pgdata)
        if leftover is not None:
            os.kill(leftover, signal.SIGKILL)


def test_serve_restarts_its_killed_postgres_and_answers_503_meanwhile(tmp_path):
    """kill -9 of the embedded postmaster, then of postrag itself."""
    data_dir, pgdata = tmp_path / "data", tmp_path / "data" / "pgdata"
    # Requests must fail fast while the database is down, not wait out the pool's timeout.
    env = embedded_env(data_dir, POSTRAG_POOL_TIMEOUT_S="60")
    server, base, _ = _serve(env)
    again = None
    try:
        auth = bearer(admin_token_in(data_dir))
        assert httpx.get(f"{base}/api/v1/me", headers=auth).status_code == 200
        assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
        server.send_signal(signal.SIGSTOP)  # its watchdog waits while we look at the outage
        _kill_postmaster(pgdata)
        for path in ("/api/v1/me", "/readyz"):
            down = httpx.get(f"{base}{path}", headers=auth, timeout=15)
            assert down.status_code == 503, (path, down.text)
            assert down.headers["Content-Type"] == "application/problem+json"
            assert down.json()["detail"] == "the database is unavailable; retry later"
            assert down.headers["Retry-After"] == "5"
        assert httpx.get(f"{base}/readyz", timeout=15).status_code == 503  # no token needed
        server.send_signal(signal.SIGCONT)
        wait_for(
            lambda: httpx.get(f"{base}/api/v1/me", headers=auth, timeout=15).status_code == 200,
            "the database did not come back",
        )
        assert httpx.get(f"{base}/readyz").status_code == 200

        # postrag itself this time: its pid stays in pgserver's list, and its children (gunicorn,
        # the ingestion workers) must not live on as orphans holding the port.
        children = psutil.Process(server.pid).children(recursive=True)
        _kill(server)
        _, orphans = psutil.wait_procs(children, timeout=45)
        assert orphans == [], f"the children of a killed serve kept running: {orphans}"
        again, base, logged = _serve(env)
        assert json.loads((pgdata / embedded.PIDS_FILE).read_text()) == [again.pid]
        assert httpx.get(f"{base}/api/v1/me", headers=auth).status_code == 200
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=60) == 0, logged()
        assert "forgetting processes that died" in logged()
        assert embedded.postmaster_pid(pgdata) is None, "a clean stop left PostgreSQL running"
        assert not (pgdata / "postmaster.pid").exists()
    finally:
        for process in (server, again):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGCONT)
                _kill(process)
        leftover = embedded.postmaster_pid(pgdata)
        if leftover is not None:
            os.kill(leftover, signal.SIGKILL)


def test_the_watchdog_adopts_a_restart_by_another_process_and_gives_up_when_none_works(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(watchdog, "RESTART_DELAYS_S", (0.0, 0.1))
    data_dir = tmp_path / "data"
    server = embedded.start(data_dir)
    conf = server.pgdata / "postgresql.auto.conf"
    good = conf.read_text()
    given_up = threading.Event()
    dog = watchdog.Watchdog(server, given_up.set, interval_s=0.05)
    try:
        _kill_postmaster(server.pgdata)
        # Another postrag process starts it again first: this one must then stop that postmaster
        # when it is the last to leave, not the dead one it knew.
        assert run("psql", "-c", "select 1", env=embedded_env(data_dir)).returncode == 0
        dog.start()
        wait_for(
            lambda: server.handle.get_pid() == embedded.postmaster_pid(server.pgdata),
            "the watchdog did not adopt the new postmaster",
        )
        conf.write_text(good + "shared_buffers = 'plenty'\n")  # read at the next start only
        _kill_postmaster(server.pgdata)
        assert given_up.wait(60), "the watchdog did not give up"
        assert dog.failed
        assert embedded.postmaster_pid(server.pgdata) is None
    finally:
        dog.stop()
        conf.write_text(good)
        embedded.restart(server)
        server.handle.cleanup()  # this process is the last to leave: it stops the server
    assert embedded.postmaster_pid(server.pgdata) is None
