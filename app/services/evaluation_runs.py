"""Evaluation runs: start one (a search configuration over a set), read them, compare two.

A run is queued as an `evaluate` job (app/services/job_kinds/evaluate.py) or run in-process by
the CLI; either way app/services/evaluating.py searches and scores it. Two runs of one set are
compared on the queries both evaluated, metric by metric, with a paired bootstrap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from app.errors import NotFound, ValidationFailed
from app.repositories import Conn, Row
from app.repositories import embedding_spaces as space_repo
from app.repositories import evaluation_runs as run_repo
from app.services import evaluating, evaluations
from app.services.evaluating import checked_config
from app.services.evaluation_metrics import paired_bootstrap
from app.services.job_kinds import evaluate
from app.services.search import SearchDeps
from app.services.tokens import Principal
from app.settings import Settings

# What two runs are compared on: per-query result column -> the metric's name.
COMPARED = {
    "ndcg_at_10": "ndcg@10",
    "recall_at_k": "recall@k",
    "reciprocal_rank": "mrr",
    "latency_ms": "latency_ms",
}


def start(
    conn: Conn, who: Principal, set_id: int, config: Any, settings: Settings, *, queue: bool
) -> Row:
    """A new running run of the set; queued for a worker unless the caller runs it itself."""
    checked = checked_config(config)
    evaluation_set = evaluations.get(conn, who, set_id)
    if not evaluation_set["query_count"]:
        raise ValidationFailed.on_field("set_id", "the set has no queries", type="value_error")
    if checked.space_id is not None and space_repo.get(conn, checked.space_id) is None:
        msg = f"no embedding space {checked.space_id}"
        raise ValidationFailed.on_field("config", msg, type="value_error", at=("space_id",))
    with conn.transaction():
        run = run_repo.insert_run(conn, set_id, who.user_id, checked.model_dump())
        if queue:
            evaluate.enqueue(conn, run["id"], who.user_id, max_attempts=settings.job_max_attempts)
    return run


def run_here(
    conn: Conn,
    who: Principal,
    set_id: int,
    config: Any,
    deps: SearchDeps,
    progress: Callable[[int], Any] = lambda n: None,
) -> Row:
    """For the CLI: start a run and run it in this process; the finished run."""
    run = start(conn, who, set_id, config, deps.settings, queue=False)
    try:
        evaluating.execute(conn, run["id"], deps, progress)
    except BaseException as exc:  # interrupted too: the run must not stay running
        evaluating.fail(conn, run["id"], str(exc) or type(exc).__name__)
        raise
    return get(conn, who, run["id"])


def get(conn: Conn, who: Principal, run_id: int) -> Row:
    row = run_repo.get_run(conn, run_id, who.user_id)
    if row is None:
        raise NotFound(f"no evaluation run {run_id}")
    return row


def list_page(
    conn: Conn, who: Principal, set_id: int | None, *, limit: int, offset: int
) -> tuple[list[Row], int]:
    if set_id is not None:
        evaluations.get(conn, who, set_id)
    return run_repo.list_runs(conn, who.user_id, set_id, limit=limit, offset=offset)


def results(
    conn: Conn, who: Principal, run_id: int, *, limit: int, offset: int
) -> tuple[list[Row], int]:
    get(conn, who, run_id)
    return run_repo.list_results(conn, run_id, limit=limit, offset=offset)


def compare(conn: Conn, who: Principal, a: int, b: int) -> dict[str, Any]:
    """b against a on the queries both evaluated: per metric, the means, the difference, its
    95% confidence interval and p-value. 422 unless both are done runs of one set with queries
    in common."""
    first, second = get(conn, who, a), get(conn, who, b)
    if first["set_id"] != second["set_id"]:
        msg = f"runs {a} and {b} are of different sets ({first['set_id']}, {second['set_id']})"
        raise ValidationFailed.on_field("b", msg, type="value_error")
    for name, run in (("a", first), ("b", second)):
        if run["state"] != "done":
            msg = f"run {run['id']} is {run['state']}, not done"
            raise ValidationFailed.on_field(name, msg, type="value_error")
    by_query_a = {r["query_id"]: r for r in run_repo.all_results(conn, a)}
    by_query_b = {r["query_id"]: r for r in run_repo.all_results(conn, b)}
    common = sorted(by_query_a.keys() & by_query_b.keys())
    if not common:
        msg = f"runs {a} and {b} evaluated no query in common"
        raise ValidationFailed.on_field("b", msg, type="value_error")
    metrics = []
    for column, name in COMPARED.items():
        difference = paired_bootstrap(
            [by_query_a[q][column] for q in common], [by_query_b[q][column] for q in common]
        )
        metrics.append(
            {"metric": name, **asdict(difference), "significant": difference.significant}
        )
    return {
        "a": a,
        "b": b,
        "set_id": first["set_id"],
        "queries": len(common),
        "queries_a": len(by_query_a),
        "queries_b": len(by_query_b),
        "metrics": metrics,
    }
