"""Source sync benchmark (issue 19): a Confluence space of N pages, synced through postrag's sync.

Measures, on the fake Confluence of the tests (loopback HTTP, real REST v2 shapes):
- the first sync with embedding excluded (list, fetch, convert, write documents, queue their
  ingestion): pages/s;
- the ingestion that follows with the local embedding model (embedding included): pages/s;
- a re-sync of the same, unchanged pages: seconds, and the HTTP requests it makes.

Runs against DATABASE_URL if set, else a throwaway embedded PostgreSQL.
    .venv/bin/python bench/sources.py --pages 2000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import prepare_database  # noqa: E402
from app.db import embedded, scope  # noqa: E402
from app.providers.confluence import ConfluenceReader  # noqa: E402
from app.providers.local_embedder import LocalEmbedder  # noqa: E402
from app.providers.source_http import SourceHttp  # noqa: E402
from app.repositories import sources as source_repo  # noqa: E402
from app.services import collections, source_sync, users  # noqa: E402
from app.services.worker import Worker, connect  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.common import fresh_database  # noqa: E402
from tests.fake_confluence import FakeConfluence, FakePage  # noqa: E402

PARAGRAPH = (
    "<h2>Section {n}</h2><p>The {word} service restarts nightly; its runbook lists the checks"
    " an operator makes before the window, the alerts that page, and who to call.</p>"
)
WORDS = ["billing", "search", "ingest", "gateway", "auth", "storage", "metrics", "mail"]


def page_body(i: int) -> str:
    return "".join(PARAGRAPH.format(n=k, word=WORDS[(i + k) % len(WORDS)]) for k in range(3))


def sync_once(settings: Settings, source: dict, owner: int, confluence: FakeConfluence) -> float:
    """One run of the source, as its owner; its seconds."""
    with connect(settings.database_url or "") as conn:
        run = source_repo.insert_run(conn, source["id"], "manual")
        assert run is not None
        http = SourceHttp("confluence", lambda refresh: "token-1")
        reader = ConfluenceReader(confluence.url, ["ENG"], http)
        started = time.perf_counter()
        with scope.acting_as(conn, owner):
            source_sync.run(conn, source, run["id"], reader, settings, lambda: None)
        elapsed = time.perf_counter() - started
        http.close()
        row = source_repo.get_run(conn, run["id"])
        assert row is not None and row["state"] == "succeeded", row
        print(
            f"  run: added {row['added']}, updated {row['updated']}, unchanged"
            f" {row['unchanged']}, deleted {row['deleted']}, failed {row['failed']}"
        )
    return elapsed


def ingest_all(settings: Settings) -> tuple[float, int]:
    """Drain the queued ingestion jobs with the local model: (seconds, jobs)."""
    worker = Worker(settings.database_url or "", settings, LocalEmbedder())
    jobs = 0
    with connect(settings.database_url or "") as conn:
        started = time.perf_counter()
        while worker.run_one(conn):
            jobs += 1
        return time.perf_counter() - started, jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--no-embedding", action="store_true", help="skip the ingestion step")
    args = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="postrag-bench-sources-"))
    server_url = os.environ.get("DATABASE_URL") or embedded.start(work_dir / "pg").url
    settings = replace(
        Settings.from_env({**os.environ, "POSTRAG_DATA_DIR": str(work_dir / "data")}),
        database_url=fresh_database(server_url, "postrag_bench_sources"),
        workers=0,
    )
    settings = prepare_database(settings)
    with connect(settings.database_url or "") as conn:
        user, _ = users.create(conn, name="bench", role="user")
        collection = collections.get_or_create(conn, user["id"], "wiki")
        with conn.transaction():
            source = source_repo.insert_source(
                conn,
                owner_id=user["id"],
                collection_id=collection["id"],
                kind="confluence",
                connector=None,  # the bench hands the reader its token itself
                name="wiki",
                config={"base_url": "http://unused", "spaces": ["ENG"]},
                schedule_minutes=None,
            )
    with FakeConfluence() as confluence:
        confluence.add_space("ENG", readers=[("user", "ANONYMOUS")])
        for i in range(args.pages):
            confluence.add_page(FakePage(str(10_000 + i), f"Runbook {i}", "ENG", body=page_body(i)))
        print(f"{args.pages} pages in one space; the fake Confluence answers 250 per page")
        first = sync_once(settings, source, user["id"], confluence)
        requests = len(confluence.requests)
        print(
            f"first sync (embedding excluded): {first:.1f} s, {args.pages / first:.0f} pages/s,"
            f" {requests} requests"
        )
        if not args.no_embedding:
            seconds, jobs = ingest_all(settings)
            print(
                f"ingestion (local model): {seconds:.1f} s for {jobs} documents,"
                f" {jobs / seconds:.1f} pages/s"
            )
        confluence.requests.clear()
        again = sync_once(settings, source, user["id"], confluence)
        print(
            f"re-sync, nothing changed: {again:.1f} s, {args.pages / again:.0f} pages/s,"
            f" {len(confluence.requests)} requests"
        )


if __name__ == "__main__":
    main()
