"""The job kinds postrag itself queues: what a worker runs unless it is given other kinds."""

from __future__ import annotations

from app.services.job_kinds import (
    JobRegistry,
    embed_range,
    embed_space,
    evaluate,
    ingest_document,
    schedule_sources,
    sync_source,
)


def registry() -> JobRegistry:
    """A new registry of the built-in kinds (a test or an extension may register more in it)."""
    return JobRegistry(
        [
            ingest_document.KIND,
            embed_range.KIND,
            embed_space.KIND,
            sync_source.KIND,
            schedule_sources.KIND,
            evaluate.KIND,
        ]
    )
