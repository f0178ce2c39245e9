"""`postrag eval`: evaluation sets (list, create, import BEIR files), runs in this process with a
progress bar, a run's metrics, and two runs compared with their confidence intervals."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from app.cli.common import with_user

if TYPE_CHECKING:
    from app.repositories import Conn, Row
    from app.services.evaluation_import import BeirFiles, ImportSummary
    from app.services.tokens import Principal
    from app.settings import Settings

T = TypeVar("T")
_USER = click.option(
    "--user", "user_name", default="admin", show_default=True, help="whose sets and runs"
)
_METRICS = (
    ("nDCG@10", "ndcg_at_10"),
    ("recall@k", "recall_at_k"),
    ("MRR", "mrr"),
    ("latency p50 ms", "latency_p50_ms"),
    ("latency p95 ms", "latency_p95_ms"),
)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@click.group("eval")
def evaluations() -> None:
    """Prove that a change to search helped: evaluation sets, runs, comparisons."""


@evaluations.command("sets")
@_USER
def eval_sets(user_name: str) -> None:
    """The user's evaluation sets: id, collection, queries, name."""
    from app.services import evaluations as evaluation_service

    def work(conn: Conn, settings: Settings, who: Principal) -> list[Row]:
        return evaluation_service.list_page(conn, who, limit=1000, offset=0)[0]

    for row in with_user(user_name, work):
        click.echo(
            f"{row['id']}\tcollection {row['collection_id']}\t{row['query_count']} queries"
            f"\t{row['name']}"
        )


@evaluations.command("create-set")
@click.argument("name")
@click.option("--collection", "collection_id", type=int, required=True, help="collection id")
@click.option("--description", default="", help="what the set is for")
@_USER
def eval_create_set(name: str, collection_id: int, description: str, user_name: str) -> None:
    """An empty set (add queries with POST /api/v1/evaluation-sets/{id}/queries)."""
    from app.services import evaluations as evaluation_service

    def work(conn: Conn, settings: Settings, who: Principal) -> Row:
        return evaluation_service.create(
            conn, who, collection_id=collection_id, name=name, description=description
        )

    row = with_user(user_name, work, arguments={"name": "NAME"})
    click.echo(f"created evaluation set {row['id']}")


@evaluations.command("import-beir")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--collection", "collection_id", type=int, help="an existing collection's id")
@click.option("--new-collection", help="or a new collection of this name")
@click.option("--split", default="test", show_default=True, help="which qrels/<split>.tsv")
@click.option("--name", help="the set's name (default: the directory's and the split's)")
@_USER
def eval_import_beir(
    directory: Path,
    collection_id: int | None,
    new_collection: str | None,
    split: str,
    name: str | None,
    user_name: str,
) -> None:
    """Import a BEIR dataset (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv): the corpus is
    ingested into the collection in this process, with progress, then the set is ready to run."""
    from app.services import evaluation_import

    if (collection_id is None) == (new_collection is None):
        raise click.UsageError("give --collection ID or --new-collection NAME")
    files = _beir_files(directory, split)
    set_name = name or f"{directory.name} {split}"

    def work(conn: Conn, settings: Settings, who: Principal) -> ImportSummary:
        target = _collection(conn, who, collection_id, new_collection)
        summary = _with_bar(
            len(files.corpus.splitlines()),
            "stored",
            lambda bar: evaluation_import.import_beir(
                conn,
                who,
                files,
                collection_id=target,
                name=set_name,
                settings=settings,
                progress=bar,
            ),
        )
        _ingest(conn, settings, summary)
        return summary

    arguments = {"name": "--name", "collection_id": "--collection"}
    summary = with_user(user_name, work, arguments=arguments)
    click.echo(
        f"evaluation set {summary.set['id']}: {summary.queries} queries, {summary.judgments}"
        f" judgments, {summary.documents} documents ({summary.queued} new)"
    )
    if summary.qrels_skipped:
        click.echo(f"skipped {summary.qrels_skipped} qrels naming unknown ids, e.g.:")
        for example in summary.skipped_examples:
            click.echo(f"  {example}")


def _beir_files(directory: Path, split: str) -> BeirFiles:
    from app.services.evaluation_import import BeirFiles

    paths = [directory / "corpus.jsonl", directory / "queries.jsonl"]
    paths.append(directory / "qrels" / f"{split}.tsv")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise click.UsageError(f"not a BEIR dataset: missing {', '.join(missing)}")
    return BeirFiles(*(p.read_bytes() for p in paths))


def _collection(conn: Conn, who: Principal, collection_id: int | None, new: str | None) -> int:
    from app.services import collections

    if collection_id is not None:
        return int(collections.get_writable(conn, who, collection_id)["id"])
    assert new is not None
    return int(collections.get_or_create(conn, who.user_id, new)["id"])


def _with_bar(total: int, unit: str, work: Callable[[Callable[[int], Any]], T]) -> T:
    """`work` given a progress bar's update (call it with the units done)."""
    from tqdm import tqdm

    with tqdm(total=total, unit=unit, disable=None) as bar:
        return work(bar.update)


def _ingest(conn: Conn, settings: Settings, summary: ImportSummary) -> None:
    """Index the imported documents in this process (as `postrag ingest` does)."""
    from app.providers.embeddings import make_embedder
    from app.services import bulk_ingest
    from app.services.worker import Worker

    assert settings.database_url is not None
    worker = Worker(settings.database_url, settings, make_embedder(settings))
    result = bulk_ingest.Summary()
    waiting = dict(summary.queued_ids)
    _with_bar(
        len(waiting),
        "indexed",
        lambda bar: bulk_ingest.work_until_done(conn, worker, waiting, result, bar),
    )
    for beir_id, reason in result.failed:
        click.echo(f"  failed: {beir_id}: {reason}")


@evaluations.command("run")
@click.argument("set_id", metavar="SET", type=int)
@click.option("--mode", type=click.Choice(["hybrid", "semantic", "fulltext"]), default="hybrid")
@click.option("--rrf-k", type=int, default=60, show_default=True)
@click.option("--semantic-weight", type=float, default=1.0, show_default=True)
@click.option("--fulltext-weight", type=float, default=1.0, show_default=True)
@click.option("--min-similarity", type=float, help="semantic leg (default: the user's)")
@click.option("--rerank/--no-rerank", default=None, help="default: on when one is configured")
@click.option("--rerank-candidates", type=int)
@click.option("--context-window", type=int, default=0, show_default=True)
@click.option("--space", "space_id", type=int, help="an embedding space (default: the ready one)")
@click.option("--k", type=int, default=100, show_default=True, help="hits per query (recall@k)")
@_USER
def eval_run(set_id: int, user_name: str, **config: Any) -> None:
    """Run a set with a search configuration, here, and print its metrics."""
    from app.providers.embeddings import make_embedder
    from app.services import evaluating, evaluation_runs, evaluations

    def work(conn: Conn, settings: Settings, who: Principal) -> Row:
        total = evaluations.get(conn, who, set_id)["query_count"]
        with evaluating.search_deps(conn, settings, make_embedder(settings)) as deps:
            return _with_bar(
                total,
                "query",
                lambda bar: evaluation_runs.run_here(
                    conn, who, set_id, config, deps, lambda n: _advance(bar, n, stopped)
                ),
            )

    # A kill (SIGTERM, a closed terminal) while it runs ends the run failed, not running forever:
    # the signal is noted and the run stops after its current query (never inside a statement).
    stopped: list[str] = []

    def note(signum: int, frame: Any) -> None:
        stopped.append(signal.Signals(signum).name)

    before = {ending: signal.signal(ending, note) for ending in (signal.SIGTERM, signal.SIGHUP)}
    try:
        run = with_user(user_name, work, arguments={"config": "option", "set_id": "SET"})
    finally:
        for ending, handler in before.items():
            signal.signal(ending, handler)
    _print_run(run)
    if run["state"] == "failed":
        sys.exit(1)


def _advance(bar: Callable[[int], Any], n: int, stopped: list[str]) -> None:
    bar(n)
    if stopped:  # run_here fails the run with this as its error
        raise SystemExit(f"stopped by {stopped[0]}")


@evaluations.command("show")
@click.argument("run_id", metavar="RUN", type=int)
@_USER
def eval_show(run_id: int, user_name: str) -> None:
    """A run's configuration and metrics."""
    from app.services import evaluation_runs

    def work(conn: Conn, settings: Settings, who: Principal) -> Row:
        return evaluation_runs.get(conn, who, run_id)

    _print_run(with_user(user_name, work))


def _print_run(run: Row) -> None:
    config = ", ".join(f"{k}={v}" for k, v in run["config"].items() if v is not None)
    click.echo(f"run {run['id']} of set {run['set_id']}: {run['state']} ({config})")
    if run["error"]:
        click.echo(f"error: {run['error']}")
    metrics = run["metrics"]
    if not metrics:
        return
    coverage = metrics["coverage"]
    covered = "" if coverage is None else f", coverage {coverage:.1%}"
    click.echo(
        f"queries {metrics['queries']}, judged {metrics['judged']},"
        f" evaluated {metrics['evaluated']}{covered}, k {metrics['k']}"
    )
    for label, key in _METRICS:
        click.echo(f"{label:<16}{_number(metrics[key]):>10}")


@evaluations.command("compare")
@click.argument("a", type=int)
@click.argument("b", type=int)
@_USER
def eval_compare(a: int, b: int, user_name: str) -> None:
    """Run B against run A on their common queries: per metric a, b, b - a, its 95% confidence
    interval (paired bootstrap) and p-value; * marks an interval that leaves out 0."""
    from app.services import evaluation_runs

    def work(conn: Conn, settings: Settings, who: Principal) -> dict[str, Any]:
        return evaluation_runs.compare(conn, who, a, b)

    compared = with_user(user_name, work, arguments={"a": "A", "b": "B"})
    click.echo(
        f"{compared['queries']} common queries (run {a}: {compared['queries_a']},"
        f" run {b}: {compared['queries_b']})"
    )
    click.echo(f"{'metric':<12}{'a':>10}{'b':>10}{'diff':>10}  {'95% CI':<22}{'p':>7}")
    for m in compared["metrics"]:
        interval = f"[{m['low']:+.4f}, {m['high']:+.4f}]"
        mark = " *" if m["significant"] else ""
        click.echo(
            f"{m['metric']:<12}{m['mean_a']:>10.4f}{m['mean_b']:>10.4f}{m['difference']:>+10.4f}"
            f"  {interval:<22}{m['p_value']:>7.3f}{mark}"
        )
