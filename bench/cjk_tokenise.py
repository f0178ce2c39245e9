"""CJK tokenising benchmark (issue 23): what V2_25's bigrams cost per chunk and per query.

    .venv/bin/python bench/cjk_tokenise.py [--chunks 2000] [--chars 1000]

On a fresh, migrated database (the embedded PostgreSQL unless DATABASE_URL names a server), one
statement per row tokenises --chunks distinct texts of about --chars characters each way: the
plain `to_tsvector('english', ...)` that V2_1 used, `postrag_tsvector` for english (what every
non-cjk collection pays now: the check for cjk), and `postrag_tsvector` for cjk on Chinese,
Japanese, Korean and English text; then a 12-character query the same ways. Prints microseconds
per text and the ratio to the plain English baseline. What a chunk costs to embed (tens of
milliseconds here, bench/ingest.py) is the scale to read it against.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db import embedded, migrations  # noqa: E402
from bench.common import fresh_database  # noqa: E402

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql" / "migrations"
SAMPLES = {
    "english": "The quick brown fox jumps over the lazy dog while the budget is planned. ",
    "chinese": "北京是中国的首都，也是一座历史悠久的城市。服务器 runs PostgreSQL，数据库很快。",
    "japanese": "私は東京大学で機械学習の研究をしています。データベースは PostgreSQL です。",
    "korean": "저는 서울에 있는 학교에서 한국어를 공부합니다. 데이터베이스는 빠릅니다. ",
}
WAYS = [  # label, function, configuration, sample
    ("to_tsvector english (V2_1)", "to_tsvector", "english", "english"),
    ("postrag_tsvector english", "postrag_tsvector", "english", "english"),
    ("postrag_tsvector cjk, English text", "postrag_tsvector", "cjk", "english"),
    ("postrag_tsvector cjk, Chinese", "postrag_tsvector", "cjk", "chinese"),
    ("postrag_tsvector cjk, Japanese", "postrag_tsvector", "cjk", "japanese"),
    ("postrag_tsvector cjk, Korean", "postrag_tsvector", "cjk", "korean"),
]


def per_text_us(conn: psycopg.Connection, function: str, config: str, text: str, n: int) -> float:
    """Microseconds per call, over n distinct texts (the row number appended) in one statement."""
    statement = (
        f"SELECT sum(length({function}(%s::regconfig, %s || g))) FROM generate_series(1, %s) g"
    )
    conn.execute(statement, (config, text, 10))  # plans and caches warm
    started = time.perf_counter()
    conn.execute(statement, (config, text, n))
    return (time.perf_counter() - started) / n * 1e6


def report(conn: psycopg.Connection, args: argparse.Namespace) -> None:
    for what, size, n in (("chunk", args.chars, args.chunks), ("query", 12, args.chunks * 10)):
        print(f"per {what} of about {size} characters, {n} each:")
        baseline = 0.0
        for label, function, config, sample in WAYS:
            text = (SAMPLES[sample] * (size // len(SAMPLES[sample]) + 1))[:size]
            us = per_text_us(conn, function, config, text, n)
            baseline = baseline or us
            print(f"  {label:38} {us:8.1f} us  {us / baseline:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--chars", type=int, default=1000)
    args = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="postrag-bench-cjk-"))
    server_url = os.environ.get("DATABASE_URL") or embedded.start(work_dir).url
    database_url = fresh_database(server_url, "postrag_bench_cjk")
    migrations.migrate(database_url, MIGRATIONS_DIR)
    with psycopg.connect(database_url, autocommit=True) as conn:
        report(conn, args)


if __name__ == "__main__":
    main()
