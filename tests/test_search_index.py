"""The full-text index (V2_1, V2_25): tsvectors, BM25 postings and statistics stay exact.

Whatever happens to chunks (upload, re-ingestion, document or collection deletion, a new
collection language, writers in parallel), the maintained tables must equal what a from-scratch
computation over document_chunks gives.
"""

from __future__ import annotations

import threading

import psycopg

from tests.helpers import drain, upload

EXPECTED = {
    "vectors": "SELECT c.id FROM document_chunks c JOIN collections col ON col.id = c.collection_id"
    " WHERE c.search_vector IS DISTINCT FROM postrag_tsvector(col.language, c.text)",
    "text_stats": "SELECT collection_id, count(*), sum(postrag_tsvector_length(search_vector))"
    " FROM document_chunks GROUP BY collection_id",
    "lexeme_stats": "SELECT c.collection_id, t.lexeme, count(*)"
    " FROM document_chunks c CROSS JOIN LATERAL unnest(c.search_vector) t GROUP BY 1, 2",
    "postings": "SELECT c.collection_id, t.lexeme, c.id, cardinality(t.positions),"
    " postrag_tsvector_length(c.search_vector)"
    " FROM document_chunks c CROSS JOIN LATERAL unnest(c.search_vector) t",
}
ACTUAL = {
    "text_stats": "SELECT collection_id, chunk_count, total_length FROM collection_text_stats"
    " WHERE chunk_count > 0",
    "lexeme_stats": "SELECT collection_id, lexeme, df FROM collection_lexeme_stats",
    "postings": "SELECT collection_id, lexeme, chunk_id, tf, chunk_length FROM chunk_lexemes",
}


def assert_index_is_exact(database_url: str) -> int:
    """Compare the maintained tables with a recomputation; the number of postings."""
    with psycopg.connect(database_url) as conn:
        assert conn.execute(EXPECTED["vectors"]).fetchall() == []
        for name, query in ACTUAL.items():
            expected = set(conn.execute(EXPECTED[name]).fetchall())
            actual = set(conn.execute(query).fetchall())
            assert actual == expected, name
        zero = conn.execute("SELECT count(*) FROM collection_lexeme_stats WHERE df = 0").fetchone()
        assert zero == (0,)
        return len(expected)


def test_index_follows_uploads_replacements_deletions_and_language(
    app, client, admin, collection, database_url
):
    german = client.post(
        "/api/v1/collections", json={"name": "de", "language": "german"}, headers=admin
    ).json["id"]
    first = upload(client, admin, collection, "a.txt", "Foxes run. The fox runs fast. " * 40)
    upload(client, admin, collection, "b.txt", "Budgets and budgeting for the finance team.")
    upload(client, admin, german, "c.txt", "Die Häuser der Stadt sind alt und schön.")
    upload(client, admin, collection, "d.txt", "东京大学 runs 東京大学で研究しています。" * 5)
    drain(app)
    assert assert_index_is_exact(database_url) > 0

    # Re-ingestion replaces the chunks (delete + insert in one transaction).
    assert client.post(f"/api/v1/documents/{first}/reindex", headers=admin).status_code == 202
    drain(app)
    assert_index_is_exact(database_url)

    for language in ("cjk", "simple"):
        patched = client.patch(
            f"/api/v1/collections/{collection}", json={"language": language}, headers=admin
        )
        assert patched.status_code == 200
        assert_index_is_exact(database_url)

    assert client.delete(f"/api/v1/documents/{first}", headers=admin).status_code == 204
    assert_index_is_exact(database_url)

    assert client.delete(f"/api/v1/collections/{german}", headers=admin).status_code == 204
    assert_index_is_exact(database_url)
    with psycopg.connect(database_url) as conn:
        left = conn.execute("SELECT DISTINCT collection_id FROM chunk_lexemes").fetchall()
    assert left == [(collection,)]


def test_parallel_writers_in_one_collection_neither_deadlock_nor_drift(
    app, client, admin, collection, database_url
):
    """Ingesting and deleting documents of one collection from several connections at once."""
    ids = [
        upload(
            client, admin, collection, f"doc-{i}.txt", f"Shared words alpha beta gamma {i}. " * 30
        )
        for i in range(12)
    ]
    drain(app)
    errors: list[BaseException] = []

    def churn(mine: list[int]) -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                for document_id in mine:
                    for _ in range(3):
                        with conn.transaction():  # what re-ingestion does: delete, then insert
                            conn.execute(
                                "CREATE TEMP TABLE IF NOT EXISTS keep ON COMMIT DROP AS"
                                " SELECT document_id, ordinal, text, token_count, char_start,"
                                " char_end FROM document_chunks WHERE document_id = %s",
                                (document_id,),
                            )
                            conn.execute(
                                "DELETE FROM document_chunks WHERE document_id = %s", (document_id,)
                            )
                            conn.execute(
                                "INSERT INTO document_chunks (document_id, ordinal, text,"
                                " token_count, char_start, char_end) SELECT * FROM keep"
                            )
                    conn.execute("DELETE FROM documents WHERE id = %s", (document_id,))
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(ids[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert_index_is_exact(database_url)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM document_chunks").fetchone() == (0,)
        stats = conn.execute("SELECT chunk_count, total_length FROM collection_text_stats")
        assert stats.fetchall() == [(0, 0)]


def test_a_language_change_during_reingestion_neither_deadlocks_nor_leaves_stale_tokens(
    app, client, admin, collection, database_url
):
    import numpy as np

    from app.repositories import documents as document_repo
    from app.services.chunking import Chunk
    from app.services.worker import connect

    ids = [
        upload(client, admin, collection, f"d{i}.txt", f"Die Häuser und Gärten {i}. " * 20)
        for i in range(3)
    ]
    drain(app)
    errors: list[BaseException] = []

    def reingest() -> None:
        try:
            with connect(database_url) as conn:
                space = conn.execute("SELECT id, dimension FROM embedding_spaces").fetchone()
                for round_ in range(6):
                    for document_id in ids:
                        text = f"Die Häuser und Gärten, Runde {round_}."
                        chunk = Chunk(0, text, 8, None, 0, len(text), ())
                        vector = np.ones((1, space["dimension"]), dtype=np.float32)
                        with conn.transaction():
                            document_repo.replace_chunks(
                                conn, document_id, space["id"], [chunk], vector
                            )
        except BaseException as exc:  # reported below
            errors.append(exc)

    def switch_language() -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                for language in ("german", "cjk", "simple", "german") * 2:
                    conn.execute(
                        "UPDATE collections SET language = %s::regconfig WHERE id = %s",
                        (language, collection),
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=reingest), threading.Thread(target=switch_language)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert assert_index_is_exact(database_url) > 0  # tokens follow the final language (german)
