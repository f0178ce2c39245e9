"""Evaluation runs and their per-query results (sql/migrations/V2_22)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from app.repositories import Conn, Row, returned

_RUN = (
    "r.id, r.set_id, s.owner_id, s.collection_id, r.config, r.state, r.metrics, r.error,"
    " r.started_at, r.finished_at"
)
_FROM = " FROM evaluation_runs r JOIN evaluation_sets s ON s.id = r.set_id"


@dataclass(frozen=True)
class QueryResult:
    query_id: int
    level: str  # document | chunk
    ndcg_at_10: float
    recall_at_k: float
    reciprocal_rank: float
    latency_ms: float
    ranked: list[int]


def insert_run(conn: Conn, set_id: int, owner_id: int, config: dict[str, Any]) -> Row:
    row = conn.execute(
        "INSERT INTO evaluation_runs (set_id, config) VALUES (%(set)s, %(config)s) RETURNING id",
        {"set": set_id, "config": Jsonb(config)},
    ).fetchone()
    return returned(get_run(conn, returned(row)["id"], owner_id))


def get_run(conn: Conn, run_id: int, owner_id: int | None) -> Row | None:
    """The run (of `owner_id`'s set; None: whoever's, for a worker)."""
    return conn.execute(
        f"SELECT {_RUN}{_FROM} WHERE r.id = %(id)s"
        " AND (%(owner)s::bigint IS NULL OR s.owner_id = %(owner)s)",
        {"id": run_id, "owner": owner_id},
    ).fetchone()


def list_runs(
    conn: Conn, owner_id: int, set_id: int | None, *, limit: int, offset: int
) -> tuple[list[Row], int]:
    where = " WHERE s.owner_id = %(owner)s AND (%(set)s::bigint IS NULL OR r.set_id = %(set)s)"
    params = {"owner": owner_id, "set": set_id, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"SELECT {_RUN}{_FROM}{where} ORDER BY r.id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = conn.execute(f"SELECT count(*) AS n{_FROM}{where}", params).fetchone()
    return rows, int(returned(total)["n"])


def finish(
    conn: Conn, run_id: int, *, state: str, metrics: dict[str, Any] | None, error: str | None
) -> None:
    conn.execute(
        "UPDATE evaluation_runs SET state = %(state)s, metrics = %(metrics)s,"
        " error = left(%(error)s, 2000), finished_at = now()"
        " WHERE id = %(id)s AND state = 'running'",
        {
            "id": run_id,
            "state": state,
            "metrics": Jsonb(metrics) if metrics is not None else None,
            "error": error,
        },
    )


def insert_results(conn: Conn, run_id: int, results: Sequence[QueryResult]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO evaluation_results (run_id, query_id, level, ndcg_at_10, recall_at_k,"
            " reciprocal_rank, latency_ms, ranked) VALUES (%(run)s, %(query_id)s, %(level)s,"
            " %(ndcg_at_10)s, %(recall_at_k)s, %(reciprocal_rank)s, %(latency_ms)s, %(ranked)s)",
            [{"run": run_id, **r.__dict__} for r in results],
        )


_RESULT = (
    "x.query_id, q.external_id, q.text, x.level, x.ndcg_at_10, x.recall_at_k,"
    " x.reciprocal_rank, x.latency_ms, x.ranked"
    " FROM evaluation_results x JOIN evaluation_queries q ON q.id = x.query_id"
    " WHERE x.run_id = %(run)s"
)


def list_results(conn: Conn, run_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    params = {"run": run_id, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"SELECT {_RESULT} ORDER BY x.query_id LIMIT %(limit)s OFFSET %(offset)s", params
    ).fetchall()
    total = conn.execute(
        "SELECT count(*) AS n FROM evaluation_results WHERE run_id = %(run)s", params
    ).fetchone()
    return rows, int(returned(total)["n"])


def all_results(conn: Conn, run_id: int) -> list[Row]:
    return conn.execute(f"SELECT {_RESULT} ORDER BY x.query_id", {"run": run_id}).fetchall()
