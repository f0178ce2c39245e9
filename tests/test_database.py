"""Where the database comes from and what postrag requires of it."""

import numpy as np
import pytest

from app.db import server
from app.db.server import DatabaseUnsupportedError, pgvector_problem


def test_pool_connections_speak_pgvector(app):
    with app.extensions["postrag.pool"].connection() as conn:
        row = conn.execute("SELECT %(v)s::vector AS v", {"v": np.array([1.5, 2, 3])}).fetchone()
    # pgvector-python answers its Vector type, convertible to numpy.
    assert row["v"].to_numpy().tolist() == [1.5, 2.0, 3.0]


def test_pool_connections_are_autocommit(app):
    with app.extensions["postrag.pool"].connection() as conn:
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
