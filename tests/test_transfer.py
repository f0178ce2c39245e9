"""Collection export and import: HTTP and CLI, vectors kept or re-embedded, bad files, memory."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import tracemalloc

import numpy as np
import psycopg
import pytest

from app import create_app
from app.db import scope
from app.runtime import Runtime
from app.services import transfer
from app.services.tokens import Principal
from tests.fakes import FakeEmbeddingServer
from tests.helpers import (
    admin_token_in,
    close_app,
    drain,
    export,
    ndjson,
    post_import,
    replaced,
    run,
    search,
    upload,
)

TEXTS = {
    "owls.txt": "Owls hunt at night. Their soft feathers make their flight silent.",
    "bees.md": "# Bees\n\nHoney bees dance to tell the hive where the flowers are.",
    "tides.txt": "The moon pulls the sea; tides rise and fall twice a day.",
}


@pytest.fixture
def indexed(app, client, admin, collection) -> int:
    for name, text in TEXTS.items():
        upload(client, admin, collection, name, text, {"source": name})
    assert drain(app) == len(TEXTS)
    return collection


def vectors(database_url: str, collection: int) -> list[tuple]:
    """(filename, ordinal, text, md5 of the vector) of every chunk of the collection."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT d.filename, c.ordinal, c.text, md5(e.embedding::text) FROM documents d"
            " JOIN document_chunks c ON c.document_id = d.id"
            " JOIN chunk_embeddings e ON e.chunk_id = c.id"
            " WHERE d.collection_id = %s ORDER BY 1, 2",
            (collection,),
        ).fetchall()


def hits(client, headers, collection, query, mode):
    found = search(client, headers, query=query, mode=mode, collection_ids=[collection])
    assert found.status_code == 200, found.json
    return [(h["filename"], h["text"], round(h["score"], 6)) for h in found.json["hits"]]


def test_round_trip_keeps_documents_chunks_and_vectors(app, client, admin, indexed, database_url):
    lines = export(client, admin, indexed)
    header, end = lines[0], lines[-1]
    assert header["kind"] == "postrag.collection" and header["format"] == 1
    assert header["embedding"]["dimension"] == 384
    assert [line["kind"] for line in lines[1:-1]].count("document") == 3
    assert end == {
        "kind": "end",
        "documents": 3,
        "chunks": sum(line["kind"] == "chunk" for line in lines),
    }

    imported = post_import(client, admin, ndjson(lines), name="owls again")
    assert imported.status_code == 201, imported.json
    result = imported.json
    assert result["collection"]["name"] == "owls again"
    assert (result["documents"], result["chunks"]) == (3, end["chunks"])
    assert result["vectors_kept"] is True and result["queued"] == 0
    copy = result["collection"]["id"]
    assert drain(app) == 0  # nothing to embed
    listed = client.get("/api/v1/documents", headers=admin, query_string={"collection_id": copy})
    assert {d["status"] for d in listed.json["items"]} == {"indexed"}
    assert {d["filename"]: d["metadata"] for d in listed.json["items"]} == {
        name: {"source": name} for name in TEXTS
    }
    original, imported_rows = vectors(database_url, indexed), vectors(database_url, copy)
    assert imported_rows == original and len(original) == end["chunks"]
    for mode in ("semantic", "hybrid", "fulltext"):
        assert hits(client, admin, copy, "bees dance", mode) == hits(
            client, admin, indexed, "bees dance", mode
        )
    # The original bytes came along: a download is identical.
    first = next(d for d in listed.json["items"] if d["filename"] == "owls.txt")
    content = client.get(f"/api/v1/documents/{first['id']}/content", headers=admin)
    assert content.get_data(as_text=True) == TEXTS["owls.txt"]


def test_another_embedding_model_re_embeds_on_import(
    client, admin, indexed, settings, make_database
):
    """Into another postrag (its own database) whose embedder is a different model."""
    lines = export(client, admin, indexed)
    with FakeEmbeddingServer() as embeddings:
        other = create_app(
            dataclasses.replace(
                settings,
                database_url=make_database(),
                data_dir=settings.data_dir.parent / "other",
                embedder="ollama",
                ollama_url=embeddings.url,
                embedding_model="fake-embed",
            )
        )
        try:
            token = admin_token_in(settings.data_dir.parent / "other")
            theirs = {"Authorization": f"Bearer {token}"}
            other_client = other.test_client()
            imported = post_import(other_client, theirs, ndjson(lines))
            assert imported.status_code == 201, imported.json
            assert imported.json["vectors_kept"] is False and imported.json["queued"] == 3
            assert imported.json["collection"]["name"] == lines[0]["collection"]["name"]
            copy = imported.json["collection"]["id"]
            assert drain(other) == 3
            embedded = {t for r in embeddings.requests for t in r["input"]}
            assert any("Honey bees dance" in t for t in embedded)
            assert hits(other_client, theirs, copy, "honey bees", "semantic")
            assert hits(other_client, theirs, copy, "honey bees", "fulltext")[0][0] == "bees.md"
        finally:
            close_app(other)


def test_bad_files_store_nothing(client, admin, indexed, new_user, database_url, make_app):
    lines = export(client, admin, indexed)

    def collections_now() -> int:
        with psycopg.connect(database_url) as conn:
            return conn.execute("SELECT count(*) FROM collections").fetchone()[0]

    before = collections_now()
    chunk = next(i for i, line in enumerate(lines) if line["kind"] == "chunk")
    document = next(i for i, line in enumerate(lines) if line["kind"] == "document")
    short_vector = dict(lines[chunk], embedding_base64=base64.b64encode(b"\0" * 8).decode())

    def vector(*values: float) -> list[dict]:
        raw = np.full(384, values[0], "<f4") if len(values) == 1 else np.asarray(values, "<f4")
        return replaced(lines, chunk, embedding_base64=base64.b64encode(raw.tobytes()).decode())

    tampered = dict(lines[document], content_base64=base64.b64encode(b"other bytes").decode())
    cases = {
        "truncated (no end line)": ndjson(lines[:-1]),
        "cut mid-line": ndjson(lines)[:-20],
        "not JSON": ndjson(lines[:2]) + b"{oops\n" + ndjson(lines[2:]),
        "wrong dimension": ndjson([*lines[:chunk], short_vector, *lines[chunk + 1 :]]),
        # Cosine distance to these is NaN, which PostgreSQL ranks above any threshold.
        "a vector of zeros": ndjson(vector(0.0)),
        "a vector of NaNs": ndjson(vector(float("nan"))),
        "a vector of tiny values": ndjson(vector(1e-30)),
        "a vector not of length 1": ndjson(vector(1.0)),
        "content not matching sha256": ndjson(
            [*lines[:document], tampered, *lines[document + 1 :]]
        ),
        "end count wrong": ndjson([*lines[:-1], dict(lines[-1], chunks=1)]),
        "not an export": ndjson([{"kind": "something else"}]),
        "empty": b"",
        "NUL in a title": ndjson(replaced(lines, document, title="a\u0000b")),
        "NUL in metadata": ndjson(replaced(lines, document, metadata={"k": "\u0000"})),
        "NUL in a chunk": ndjson(replaced(lines, chunk, text="x\u0000")),
        "page 0": ndjson(replaced(lines, chunk, page=0)),
        "an integer PostgreSQL cannot hold": ndjson(replaced(lines, chunk, token_count=2**40)),
        "a chunk ending before it starts": ndjson(replaced(lines, chunk, char_end=0, char_start=5)),
        "a content type with a line break": ndjson(
            replaced(lines, document, filename="x", content_type="text/html\r\nX-Evil: 1")
        ),
        "invalid UTF-8": ndjson(lines[:1]) + b'{"kind": "\xff"}\n',
    }
    for case, body in cases.items():
        response = post_import(client, admin, body, name=f"bad {case}")
        assert response.status_code == 422, (case, response.json)
        assert response.content_type == "application/problem+json"
        assert "line" in response.json["detail"], (case, response.json["detail"])
        if case.startswith("a vector"):
            assert response.json["detail"] == (
                f"line {chunk + 1} of the import file: the vector must be 384 finite float32s"
                " of length 1, as exported"
            )
    # A line longer than a document of the largest size could make: 413 before it is all read.
    small = make_app(max_upload_bytes=1024).test_client()
    huge = ndjson(lines[:1]) + b'{"kind": "document", "content_base64": "' + b"A" * 2**21 + b'"}\n'
    too_long = post_import(small, admin, huge, name="huge")
    assert too_long.status_code == 413, too_long.json
    assert "longer than" in too_long.json["detail"]
    assert collections_now() == before
    # The name is the file's: a second import of the same file is a conflict.
    assert post_import(client, admin, ndjson(lines)).status_code == 409
    wrong_type = client.post(
        "/api/v1/collections/import", data=ndjson(lines), headers=admin, content_type="text/csv"
    )
    assert wrong_type.status_code == 415
    # Only the owner exports: others get 404, or 403 for a collection they may read (shared).
    other = new_user()
    assert client.get(f"/api/v1/collections/{indexed}/export", headers=other).status_code == 404
    shared = client.patch(f"/api/v1/collections/{indexed}", json={"is_shared": True}, headers=admin)
    assert shared.status_code == 200
    assert client.get(f"/api/v1/collections/{indexed}/export", headers=other).status_code == 403
    assert client.get(f"/api/v1/collections/{indexed}", headers=other).status_code == 200


def test_export_and_import_hold_one_document_at_a_time(app, client, admin, collection, tmp_path):
    """10 MB of documents pass through with a peak of about three documents' size in Python."""
    size = 400 * 1024  # under werkzeug's in-memory limit for uploaded files
    for i in range(24):
        body = (f"document {i} " + "lorem ipsum dolor sit amet " * (size // 27)).encode()
        upload(client, admin, collection, f"big-{i}.txt", body.decode())
    settings = Runtime.of(app).settings
    pool = Runtime.of(app).pool
    who = Principal(1, "admin", "admin", 0, ("read", "write"))
    path = tmp_path / "export.jsonl"
    tracemalloc.start()
    try:
        with pool.connection() as conn, path.open("w") as out, scope.acting_as(conn, who.user_id):
            for _, line in transfer.export_collection(conn, who, collection):
                out.write(line)
        exported_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with (
            pool.connection() as conn,
            path.open("rb") as source,
            scope.acting_as(conn, who.user_id),
        ):
            summary = transfer.import_collection(
                conn,
                who,
                source,
                settings=settings,
                embedder=Runtime.of(app).embedder,
                name="big copy",
            )
        imported_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path.stat().st_size > 24 * size * 4 / 3
    assert summary.documents == 24 and summary.queued == 24  # never indexed: queued again
    assert exported_peak < 8 * size, exported_peak
    assert imported_peak < 8 * size, imported_peak


def test_cli_export_and_import(cli_env, app, client, admin, indexed, tmp_path, database_url):
    path = tmp_path / "out" / "owls.jsonl"
    path.parent.mkdir()
    name = client.get(f"/api/v1/collections/{indexed}", headers=admin).json["name"]
    done = run("export", name, str(path), env=cli_env)
    assert done.returncode == 0, done.stderr
    assert "exported 3 document(s)" in done.stdout
    assert not list(path.parent.glob("*.partial"))
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # the documents in full: owner only
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["documents"] == 3
    imported = run("import", str(path), "--name", "from the cli", env=cli_env)
    assert imported.returncode == 0, imported.stderr
    assert "3 document(s)" in imported.stdout and "vectors kept" in imported.stdout
    copy = next(
        c["id"]
        for c in client.get("/api/v1/collections", headers=admin).json["items"]
        if c["name"] == "from the cli"
    )
    assert vectors(database_url, copy) == vectors(database_url, indexed)
    again = run("import", str(path), "--name", "from the cli", env=cli_env)
    assert again.returncode != 0 and "already have a collection" in again.stderr
    unknown = run("export", "no such collection", str(tmp_path / "x.jsonl"), env=cli_env)
    assert unknown.returncode != 0 and "owns no collection" in unknown.stderr
    assert not (tmp_path / "x.jsonl").exists()
    assert os.path.getsize(path) > 0
