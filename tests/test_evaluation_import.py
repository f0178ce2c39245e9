"""BEIR files imported as an evaluation set: the corpus through the upload pipeline, then run."""

from __future__ import annotations

import io
import json

import psycopg
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from tests.helpers import drain

CORPUS = [
    {"_id": "d1", "title": "Owls", "text": "Owls hunt mice at night with silent feathers."},
    {"_id": "d2", "title": "Bees", "text": "Bees dance to tell the hive where flowers grow."},
    {
        "_id": "d3",
        "title": "Whales",
        "text": "Whales sing songs that travel across the ocean.",
        "metadata": {"source": "sea"},
    },
]
QUERIES = [
    {"_id": "q1", "text": "how do owls hunt"},
    {"_id": "q2", "text": "why do bees dance"},
    {"_id": "q3", "text": "a query of another split"},
]
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td9\t1\nq9\td1\t1\n"


def jsonl(items):
    return "".join(json.dumps(item) + "\n" for item in items).encode()


def post_import(client, headers, collection, corpus, queries=None, qrels=None, name="beir"):
    files = {
        "corpus": FileStorage(io.BytesIO(corpus), filename="corpus.jsonl"),
        "queries": FileStorage(io.BytesIO(queries or jsonl(QUERIES)), filename="queries.jsonl"),
        "qrels": FileStorage(io.BytesIO(qrels or QRELS.encode()), filename="test.tsv"),
    }
    boundary, body = encode_multipart({"collection_id": str(collection), "name": name, **files})
    return client.post(
        "/api/v1/evaluation-sets/import",
        data=body,
        headers=headers,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def test_a_beir_import_is_ingested_and_runs(client, admin, collection, database_url):
    response = post_import(client, admin, collection, jsonl(CORPUS))
    assert response.status_code == 201, response.json
    body = response.json
    assert (body["documents"], body["queued"], body["queries"], body["judgments"]) == (3, 3, 2, 2)
    assert body["qrels_skipped"] == 2 and body["queries_without_judgments"] == 1
    assert body["skipped_examples"] == ["qrels line 4: q2\td9", "qrels line 5: q9\td1"]
    assert body["set"]["query_count"] == 2
    drain(client.application)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT d.metadata, d.status, j.grade FROM evaluation_judgments j"
            " JOIN documents d ON d.id = j.document_id ORDER BY j.grade"
        ).fetchall()
    assert [(r[0]["beir_id"], r[1], r[2]) for r in rows] == [
        ("d1", "indexed", 1),
        ("d2", "indexed", 2),
    ]
    run = client.post(
        "/api/v1/evaluations",
        json={"set_id": body["set"]["id"], "config": {"mode": "fulltext", "k": 10}},
        headers=admin,
    ).json
    drain(client.application)
    done = client.get(f"/api/v1/evaluations/{run['id']}", headers=admin).json
    assert done["state"] == "done", done
    assert done["metrics"]["evaluated"] == 2 and done["metrics"]["k"] == 10
    # each query's words are in its own document only
    assert done["metrics"]["mrr"] == 1.0 and done["metrics"]["ndcg_at_10"] == 1.0


def test_a_malformed_line_is_422_with_its_number_and_nothing_is_written(
    client, admin, collection, database_url
):
    corpus = jsonl(CORPUS[:2]) + b'{"_id": "d3", "text": \n'
    response = post_import(client, admin, collection, corpus)
    assert response.status_code == 422, response.json
    assert response.json["detail"] == "corpus line 3: not a JSON object"
    assert response.json["errors"][0]["loc"] == ["body", "corpus", "line", 3]
    nul = jsonl([*QUERIES[:1], {"_id": "q2", "text": "nul \u0000 here"}])
    response = post_import(client, admin, collection, jsonl(CORPUS), queries=nul)
    assert response.status_code == 422 and response.json["detail"].startswith("queries line 2:")
    for score in ("high", "\u00b2"):  # a superscript two is a digit to str.isdigit, not a grade
        bad_qrels = f"query-id\tcorpus-id\tscore\nq1\td1\t{score}\n".encode()
        response = post_import(client, admin, collection, jsonl(CORPUS), qrels=bad_qrels)
        assert response.status_code == 422 and response.json["detail"].startswith("qrels line 2:")
    with psycopg.connect(database_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM evaluation_sets),"
            " (SELECT count(*) FROM jobs)"
        ).fetchone()
    assert counts == (0, 0, 0)


def test_a_document_that_fails_its_upload_rolls_the_import_back(
    client, admin, collection, database_url
):
    corpus = jsonl([*CORPUS[:2], {"_id": "big", "text": "x", "metadata": {"v": "y" * 20000}}])
    response = post_import(client, admin, collection, corpus)
    assert response.status_code == 422, response.json
    assert response.json["detail"].startswith("corpus line 3: the metadata is")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM documents").fetchone() == (0,)


def test_the_import_needs_a_collection_you_may_write(client, admin, collection, new_user):
    response = post_import(client, new_user(), collection, jsonl(CORPUS))
    assert response.status_code == 404


def test_line_separators_inside_json_strings_do_not_end_a_line(client, admin, collection):
    # JSON allows U+0085, U+2028 and U+2029 raw in strings (json.dumps writes them so)
    corpus = "".join(
        json.dumps({**entry, "text": entry["text"] + " \u0085\u2028\u2029 end"}, ensure_ascii=False)
        + "\r\n"
        for entry in CORPUS
    ).encode()
    response = post_import(client, admin, collection, corpus)
    assert response.status_code == 201, response.json
    assert response.json["documents"] == 3
