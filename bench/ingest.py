"""Ingestion benchmark: end-to-end throughput, where the time goes, and the write path.

    .venv/bin/python bench/ingest.py [--docs 30] [--words 1500] [--rows 5000]

Runs against DATABASE_URL if set, else a throwaway embedded PostgreSQL. Prints a Markdown table
(the README's figures come from it). Three parts, all in the same run:
1. end to end: upload N Markdown documents through the documents service and let a worker
   ingest them (extract, chunk, embed with the local model, COPY into pgvector);
2. the same documents stage by stage, timed separately (extraction, chunking, embedding, write);
3. the write path alone: chunks + 384-d vectors into the HNSW-indexed tables with binary COPY
   (what postrag does) versus executemany of INSERTs (the baseline), same rows, same run.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import prepare_database
from app.db import embedded
from app.providers.local_embedder import LocalEmbedder
from app.repositories import documents as document_repo
from app.repositories import embedding_spaces as space_repo
from app.services import collections, documents, extraction, ingestion
from app.services.chunking import chunk_document
from app.services.documents import Upload
from app.services.tokens import Principal
from app.services.worker import Worker, connect
from app.settings import Settings
from bench.common import fresh_database

WORDS = (
    "database vector index query search embedding chunk document postgres retrieval answer "
    "model token latency recall memory storage network cluster replica backup schema table "
    "column planner cost estimate cache buffer page write read commit transaction lock"
).split()


def make_markdown(rng: random.Random, words: int) -> str:
    parts, written, section = [], 0, 0
    while written < words:
        section += 1
        parts.append(f"## Section {section}\n")
        for _ in range(rng.randint(2, 5)):
            sentence_count = rng.randint(3, 7)
            sentences = []
            for _ in range(sentence_count):
                n = rng.randint(6, 16)
                sentences.append(" ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + ".")
                written += n
            parts.append(" ".join(sentences) + "\n")
    return "# Benchmark document\n\n" + "\n".join(parts)


def end_to_end(settings: Settings, texts: list[str]) -> tuple[float, int]:
    worker = Worker(settings.database_url or "", settings, LocalEmbedder())
    with connect(settings.database_url or "") as conn:
        admin = conn.execute("SELECT id, name, role FROM users ORDER BY id LIMIT 1").fetchone()
        who = Principal(admin["id"], admin["name"], admin["role"], 0, ("read", "write"))
        coll = collections.get_or_create(conn, who.user_id, "bench-e2e")
        worker.run_one(conn)  # warm-up: model load and space creation, not timed
        started = time.perf_counter()
        for i, text in enumerate(texts):
            documents.upload(
                conn,
                who,
                Upload(f"doc{i}.md", None, text.encode(), coll["id"], f"doc {i}"),
                settings,
            )
        while worker.run_one(conn):
            pass
        elapsed = time.perf_counter() - started
        chunks = conn.execute("SELECT count(*) AS n FROM document_chunks").fetchone()["n"]
    return elapsed, int(chunks)


def stages(settings: Settings, texts: list[str]) -> dict[str, float]:
    embedder = LocalEmbedder()
    timings = dict.fromkeys(("extract", "chunk", "embed", "write"), 0.0)
    with connect(settings.database_url or "") as conn:
        space = conn.execute("SELECT id FROM embedding_spaces WHERE state = 'ready'").fetchone()
        coll = conn.execute("SELECT id, owner_id FROM collections LIMIT 1").fetchone()
        for i, text in enumerate(texts):
            data = text.encode()
            t0 = time.perf_counter()
            doc = extraction.extract(data, "text/markdown", "x.md")
            t1 = time.perf_counter()
            chunks = list(
                chunk_document(
                    doc, embedder.token_spans, settings.chunk_tokens, settings.chunk_overlap_tokens
                )
            )
            t2 = time.perf_counter()
            vectors = embedder.embed(
                [ingestion.embedding_input("t", c.heading_path, c.text) for c in chunks]
            )
            t3 = time.perf_counter()
            with conn.transaction():
                row = document_repo.insert(
                    conn,
                    collection_id=coll["id"],
                    filename=f"s{i}.md",
                    title="",
                    content_type="text/markdown",
                    sha256=os.urandom(32),
                    content=data,
                    metadata={},
                )
                assert row is not None
                document_repo.replace_chunks(conn, row.id, space.id, chunks, vectors)
            t4 = time.perf_counter()
            for key, value in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                timings[key] += value
    return timings


def _bench_document(conn, coll, name: str) -> int:  # type: ignore[no-untyped-def]
    with conn.transaction():
        doc = document_repo.insert(
            conn,
            collection_id=coll["id"],
            filename=name,
            title="",
            content_type="text/plain",
            sha256=os.urandom(32),
            content=b"x",
            metadata={},
        )
    assert doc is not None
    return doc.id


def write_paths(settings: Settings, rows: int) -> dict[tuple[str, bool], float]:
    """Rows/s writing chunks + vectors: binary COPY versus executemany, into a space without
    its HNSW index (a bulk load, index built afterwards) and with it (incremental ingestion).
    Every run writes fresh random vectors, so no run finds its vectors already in the graph."""
    rng = np.random.default_rng(7)
    results = {}
    with connect(settings.database_url or "") as conn:
        coll = conn.execute("SELECT id, owner_id FROM collections LIMIT 1").fetchone()
        with conn.transaction():
            model = space_repo.upsert_embedding_model(
                conn, provider="local", name="bench-384", dimension=384, context_length=256
            )
            space = space_repo.insert_space(conn, model_id=model["id"], dimension=384, ready=False)
        for indexed in (False, True):
            if indexed:
                conn.execute("SELECT create_embedding_space_index(%s)", (space.id,))
            else:
                conn.execute("SELECT drop_embedding_space_index(%s)", (space.id,))
            for method in ("copy", "executemany"):
                vectors = rng.standard_normal((rows, 384)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                doc_id = _bench_document(conn, coll, f"{method}-{indexed}.txt")
                fake_chunks = [_FakeChunk(i) for i in range(rows)]
                started = time.perf_counter()
                with conn.transaction():
                    if method == "copy":
                        document_repo.replace_chunks(conn, doc_id, space.id, fake_chunks, vectors)
                    else:
                        _executemany(conn, doc_id, space.id, fake_chunks, vectors)
                results[(method, indexed)] = rows / (time.perf_counter() - started)
    return results


class _FakeChunk:
    def __init__(self, i: int) -> None:
        self.ordinal, self.text, self.token_count = i, f"chunk number {i} " * 20, 60
        self.page, self.char_start, self.char_end, self.heading_path = None, 0, 10, ("h",)


def _executemany(conn, document_id, space_id, chunks, vectors) -> None:  # type: ignore[no-untyped-def]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO document_chunks (document_id, ordinal, text, token_count, page,"
            " char_start, char_end, heading_path) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            [
                (
                    document_id,
                    c.ordinal,
                    c.text,
                    c.token_count,
                    c.page,
                    c.char_start,
                    c.char_end,
                    list(c.heading_path),
                )
                for c in chunks
            ],
            returning=True,
        )
        ids = []
        while True:
            ids.append(cur.fetchone()["id"])
            if not cur.nextset():
                break
        cur.executemany(
            "INSERT INTO chunk_embeddings (chunk_id, space_id, embedding) VALUES (%s, %s, %s)",
            [(i, space_id, v) for i, v in zip(ids, vectors, strict=True)],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=12)
    parser.add_argument("--words", type=int, default=1200)
    parser.add_argument("--rows", type=int, default=5000)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="postrag-bench-"))
    server_url = os.environ.get("DATABASE_URL") or embedded.start(data_dir).url
    base = Settings.from_env({"POSTRAG_DATA_DIR": str(data_dir)})
    settings = prepare_database(replace(base, database_url=fresh_database(server_url), workers=0))
    rng = random.Random(42)
    texts = [make_markdown(rng, args.words) for _ in range(args.docs)]

    elapsed, chunks = end_to_end(settings, texts)
    split = stages(settings, texts)
    writes = write_paths(settings, args.rows)
    total = sum(split.values())
    print(
        f"\n{args.docs} Markdown documents of ~{args.words} words, {chunks} chunks "
        f"({settings.chunk_tokens}-token chunks), local all-MiniLM-L6-v2 int8, 1 thread\n"
    )
    print("| measure | value |\n| --- | --- |")
    print(
        f"| end to end (upload -> indexed) | {args.docs / elapsed:.2f} documents/s, "
        f"{chunks / elapsed:.1f} chunks/s |"
    )
    for stage, seconds in split.items():
        print(f"| {stage} | {seconds:.2f} s ({100 * seconds / total:.1f}%) |")
    for indexed in (False, True):
        where = "space with its HNSW index" if indexed else "space without HNSW index (bulk load)"
        copy, many = writes[("copy", indexed)], writes[("executemany", indexed)]
        print(f"| {args.rows} chunks + vectors into a {where}: binary COPY | {copy:,.0f} rows/s |")
        print(f"| same, executemany INSERT (baseline) | {many:,.0f} rows/s |")
        print(f"| COPY / executemany | {copy / many:.1f}x |")


if __name__ == "__main__":
    main()
