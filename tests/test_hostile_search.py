"""Hostile search input: SQL metacharacters in queries, filter keys and values; deep filters;
out-of-range sizes. Each is an ordinary answer or a 4xx problem, and the tables are still there."""

from __future__ import annotations

import json

import psycopg
import pytest

from app.repositories.metadata_filter import MAX_DEPTH
from tests.helpers import drain, names, search, upload

SQL_TEXT = [
    "'; DROP TABLE users; --",
    "' OR '1'='1",
    '" OR ""="',
    "%",
    "_",
    "100%_",
    "\\",
    "\\'; SELECT pg_sleep(10); --",
    "$$; DROP TABLE documents; $$",
    "E'\\x27'",
    "/* comment */ fifty",
    "fifty:* & !tools | (",
]
DOCS = {
    "discount.txt": (
        "Spring sale: fifty percent off all garden tools.",
        {
            "code": "50%_off",
            "quote": 'it\'s "quoted"',
            "path": "C:\\temp\\x",
            "sql": "'; DROP TABLE users; --",
        },
    ),
    "keys.txt": (
        "Weird keys describe the valves of the pipeline.",
        {"we'ird\"key;--": "yes", "%": 1, "_": 2, "a\\b": {"c'd": "deep"}},
    ),
    "plain.txt": ("An ordinary note about the yearly budget.", {"code": "50"}),
}


def _names(response) -> set[str]:
    return set(names(response))


def _filtered(client, headers, spec) -> set[str]:
    """The documents `spec` lets through (a semantic search that would return all of them)."""
    return _names(
        search(client, headers, query="anything", mode="semantic", min_similarity=0, filter=spec)
    )


def _tables_intact(database_url) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT to_regclass('users') IS NOT NULL, to_regclass('documents') IS NOT NULL,"
            " (SELECT count(*) FROM users), (SELECT count(*) FROM documents)"
        ).fetchone()
    assert row == (True, True, 1, len(DOCS))


@pytest.fixture
def corpus(app, client, admin, collection):
    for name, (text, metadata) in DOCS.items():
        upload(client, admin, collection, name, text, metadata)
    assert drain(app) == len(DOCS)


def test_sql_metacharacters_in_queries_are_just_text(client, admin, corpus, database_url):
    for mode in ("hybrid", "semantic", "fulltext"):
        for query in SQL_TEXT:
            response = search(client, admin, query=query, mode=mode)
            assert response.status_code == 200, (mode, query, response.json)
    # Not LIKE patterns: % and _ match no word at all, rather than every row.
    for wildcard in ("%", "_", "%%", "_%_"):
        assert _names(search(client, admin, query=wildcard, mode="fulltext")) == set()
    assert _names(search(client, admin, query="fifty' OR 1=1 --", mode="fulltext")) == {
        "discount.txt"
    }
    _tables_intact(database_url)


def test_filter_values_with_sql_metacharacters_match_literally(client, admin, corpus, database_url):
    discount = DOCS["discount.txt"][1]
    for field in ("code", "quote", "path", "sql"):
        spec = {"field": field, "op": "eq", "value": discount[field]}
        assert _filtered(client, admin, spec) == {"discount.txt"}, field
    for pattern in ("%", "_", "50%", "50_off", "%off", "50%_%"):
        assert _filtered(client, admin, {"field": "code", "value": pattern}) == set(), pattern
    in_list = {"field": "code", "op": "in", "value": ["x' OR '1'='1", "50%_off", "\\"]}
    assert _filtered(client, admin, in_list) == {"discount.txt"}
    not_sql = {"field": "sql", "op": "ne", "value": "'; DROP TABLE users; --"}
    assert _filtered(client, admin, not_sql) == {"keys.txt", "plain.txt"}
    at_least = {"field": "code", "op": "gte", "value": "'"}  # every string sorts after '
    assert _filtered(client, admin, at_least) == {"discount.txt", "plain.txt"}
    _tables_intact(database_url)


def test_filter_keys_with_sql_metacharacters_name_keys_literally(
    client, admin, corpus, database_url
):
    assert _filtered(client, admin, {"field": "we'ird\"key;--", "value": "yes"}) == {"keys.txt"}
    for key in ("%", "_"):  # a key named %, not any key
        assert _filtered(client, admin, {"field": key, "op": "exists"}) == {"keys.txt"}, key
    assert _filtered(client, admin, {"field": "a\\b.c'd", "value": "deep"}) == {"keys.txt"}
    for key in ("'; DROP TABLE users; --", "code') OR true --", "code\\", "co%", "cod_"):
        assert _filtered(client, admin, {"field": key, "op": "exists"}) == set(), key
    _tables_intact(database_url)


def _nested(levels: int) -> dict:
    """A filter `levels` deep, alternating not, and, or around one condition."""
    spec: dict = {"field": "year", "op": "gte", "value": 2000}
    for level in range(levels - 1):
        spec = [{"not": spec}, {"and": [spec]}, {"or": [spec]}][level % 3]
    return spec


def test_filters_nested_beyond_the_bound_are_4xx_not_500(client, admin):
    assert search(client, admin, query="x", filter=_nested(MAX_DEPTH)).status_code == 200
    too_deep = search(client, admin, query="x", filter=_nested(MAX_DEPTH + 1))
    assert too_deep.status_code == 422, too_deep.json
    assert too_deep.mimetype == "application/problem+json"
    assert f"nested deeper than {MAX_DEPTH} levels" in too_deep.json["errors"][0]["msg"]
    assert too_deep.json["errors"][0]["loc"][:2] == ["body", "filter"]
    value_nested = {"field": "x", "value": json.loads("[" * 100 + "1" + "]" * 100)}
    assert search(client, admin, query="x", filter=value_nested).status_code == 200
    # Far deeper than any recursive walk of the body (Python's or the filter compiler's).
    for inner in (
        '{"not":' * 50_000 + '{"field": "x", "value": 1}' + "}" * 50_000,
        '{"field": "x", "value": ' + "[" * 50_000 + "]" * 50_000 + "}",
    ):
        response = client.post(
            "/api/v1/search",
            data='{"query": "x", "filter": ' + inner + "}",
            content_type="application/json",
            headers=admin,
        )
        assert response.status_code == 400, response.json
        assert response.mimetype == "application/problem+json"
        assert "nested too deeply" in response.json["detail"]


def test_out_of_range_sizes_are_422(client, admin):
    for top_k in (10**9, 2**63, 10**30, -1, -(10**9), "abc", 1.5, 1e9, [], {}):
        response = search(client, admin, query="x", top_k=top_k)
        assert response.status_code == 422, (top_k, response.json)
        assert response.json["errors"][0]["loc"] == ["body", "top_k"]
        preferences = client.patch("/api/v1/me/preferences", json={"top_k": top_k}, headers=admin)
        assert preferences.status_code == 422, (top_k, preferences.json)


def test_out_of_range_paging_is_422(client, admin):
    for query in ("limit=1000000000", "limit=-1", "limit=abc", "offset=-1", f"offset={10**30}"):
        response = client.get(f"/api/v1/documents?{query}", headers=admin)
        assert response.status_code == 422, (query, response.json)
        assert response.mimetype == "application/problem+json"
