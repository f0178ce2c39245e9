"""Prometheus metrics: one set per process, shared across gunicorn's workers when multiprocess.

`postrag serve` sets PROMETHEUS_MULTIPROC_DIR before forking, so every worker process writes its
samples to files there and a scrape of any one of them sums all of them. Elsewhere (tests, one
process) the metrics live in memory. Values computed from the database at scrape time (job queue,
documents by status) come from `DatabaseCollector`, so they agree whichever process answers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from app.repositories import metrics as metrics_repo

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SLOW = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass(frozen=True)
class Metrics:
    http_seconds: Histogram
    search_seconds: Histogram
    llm_seconds: Histogram
    llm_tokens: Counter
    ingested_documents: Counter
    ingested_chunks: Counter
    ingestion_seconds: Histogram


_metrics: Metrics | None = None
_lock = threading.Lock()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def metrics() -> Metrics:
    """This process's metrics, made on first use (after the fork, under gunicorn)."""
    global _metrics
    with _lock:
        if _metrics is None:
            if multiprocess_dir() and values.ValueClass.__name__ != "MmapedValue":
                # The value class is chosen when prometheus_client is imported; the directory
                # may have been set after that (by `postrag serve`, in the same process).
                values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
            _metrics = _make()
        return _metrics


def _make() -> Metrics:
    return Metrics(
        http_seconds=Histogram(
            "postrag_http_request_duration_seconds",
            "HTTP requests by route template, method and status (streams: until the last byte)",
            ["route", "method", "status"],
            buckets=_FAST,
        ),
        search_seconds=Histogram(
            "postrag_search_duration_seconds",
            "Searches by mode, query embedding included",
            ["mode"],
            buckets=_FAST,
        ),
        llm_seconds=Histogram(
            "postrag_llm_request_duration_seconds",
            "Language-model answers, from the request to the last piece, by provider and outcome",
            ["provider", "outcome"],
            buckets=_SLOW,
        ),
        llm_tokens=Counter(
            "postrag_llm_tokens",
            "Language-model tokens by provider and kind (prompt, completion)",
            ["provider", "kind"],
        ),
        ingested_documents=Counter(
            "postrag_ingested_documents",
            "Documents the workers of this process finished, by outcome (indexed, failed)",
            ["outcome"],
        ),
        ingested_chunks=Counter(
            "postrag_ingested_chunks", "Chunks embedded and stored by the workers of this process"
        ),
        ingestion_seconds=Histogram(
            "postrag_ingestion_duration_seconds",
            "Time to extract, chunk, embed and store one document",
            buckets=_SLOW,
        ),
    )


class DatabaseCollector:
    """Job queue depth and age and documents by status, read from the database at each scrape."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "postrag_jobs", "Jobs waiting or running, by kind and state", labels=["kind", "state"]
        )
        for row in metrics_repo.job_queue(self.conn):
            jobs.add_metric([row["kind"], row["state"]], row["jobs"])
        age = GaugeMetricFamily(
            "postrag_job_oldest_due_age_seconds",
            "How long the longest-waiting due queued job has waited (0: none waits)",
            value=metrics_repo.oldest_due_age_s(self.conn),
        )
        documents = GaugeMetricFamily(
            "postrag_documents", "Documents by processing status", labels=["status"]
        )
        for row in metrics_repo.documents_by_status(self.conn):
            documents.add_metric([row["status"]], row["documents"])
        yield from (jobs, age, documents)


def exposition(conn: Any) -> bytes:
    """The text format of every metric: this process's (or all workers') plus the database's."""
    metrics()  # so an idle process still lists its metrics (at zero) from the first scrape
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        own = generate_latest(registry)
    else:
        own = generate_latest(REGISTRY)
    database = CollectorRegistry()
    database.register(DatabaseCollector(conn))
    return own + generate_latest(database)
