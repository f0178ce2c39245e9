"""POST /api/v1/dify/retrieval: Dify's External Knowledge API, its request and error shapes."""

from __future__ import annotations

import pytest

from tests.helpers import FOX, VALVE, create_collection, drain, upload

URL = "/api/v1/dify/retrieval"


@pytest.fixture
def docs(app, client, admin, collection):
    upload(client, admin, collection, "fox.txt", FOX, metadata={"team": "wildlife", "year": 2021})
    upload(client, admin, collection, "valve.txt", VALVE, metadata={"team": "plant", "year": 2019})
    drain(app)
    return collection


def ask(client, headers, knowledge_id, query="clever fox animals", top_k=5, threshold=0.0, **more):  # type: ignore[no-untyped-def]
    body = {
        "knowledge_id": str(knowledge_id),
        "query": query,
        "retrieval_setting": {"top_k": top_k, "score_threshold": threshold},
        **more,
    }
    return client.post(URL, json=body, headers=headers)


def dify_error(response, status: int, code: int) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.json
    assert response.mimetype == "application/json"  # Dify's shape, not problem+json
    assert set(response.json) == {"error_code", "error_msg"}
    assert response.json["error_code"] == code
    return str(response.json["error_msg"])


def test_records_have_difys_shape_best_first(client, admin, docs):
    response = ask(client, admin, docs)
    assert response.status_code == 200, response.json
    records = response.json["records"]
    assert [r["title"] for r in records][0] == "fox.txt"
    assert set(records[0]) == {"content", "score", "title", "metadata"}
    assert records[0]["content"] == FOX
    assert records[0]["metadata"]["collection_id"] == docs
    scores = [r["score"] for r in records]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


def test_top_k_and_score_threshold_are_honoured(client, admin, docs):
    everything = ask(client, admin, docs).json["records"]
    assert len(everything) == 2
    assert len(ask(client, admin, docs, top_k=1).json["records"]) == 1
    between = (everything[0]["score"] + everything[1]["score"]) / 2
    kept = ask(client, admin, docs, threshold=between).json["records"]
    assert [r["title"] for r in kept] == ["fox.txt"]
    assert ask(client, admin, docs, threshold=1.0).json["records"] == []


def test_metadata_condition_filters_and_unknown_operators_are_refused(client, admin, docs):
    condition = {
        "logical_operator": "and",
        "conditions": [{"name": "team", "comparison_operator": "is", "value": "plant"}],
    }
    kept = ask(client, admin, docs, metadata_condition=condition).json["records"]
    assert [r["title"] for r in kept] == ["valve.txt"]
    condition["conditions"] = [{"name": "year", "comparison_operator": "≥", "value": 2020}]
    kept = ask(client, admin, docs, metadata_condition=condition).json["records"]
    assert [r["title"] for r in kept] == ["fox.txt"]
    condition["conditions"] = [{"name": "team", "comparison_operator": "contains", "value": "a"}]
    msg = dify_error(ask(client, admin, docs, metadata_condition=condition), 422, 422)
    assert "'contains' is not supported" in msg


def test_a_malformed_authorization_header_is_1001(client, docs):
    for headers in ({}, {"Authorization": "Token abc"}, {"Authorization": "Bearer"}):
        msg = dify_error(ask(client, headers, docs), 401, 1001)
        assert "Authorization header format" in msg


def test_a_refused_key_is_1002(client, docs):
    dify_error(ask(client, {"Authorization": "Bearer prg_wrong"}, docs), 401, 1002)


def test_an_unknown_or_anothers_collection_does_not_exist(client, admin, docs, new_user):
    for knowledge_id in ("999999", "abc", "-1", "99999999999999999999999"):
        msg = dify_error(ask(client, admin, knowledge_id), 404, 2001)
        assert "does not exist" in msg
    other = new_user()
    dify_error(ask(client, other, docs), 404, 2001)  # the admin's collection, unshared
    theirs = create_collection(client, other, "theirs")
    assert ask(client, other, theirs).json == {"records": []}


def test_a_malformed_body_is_an_error_in_difys_shape(client, admin, docs):
    response = client.post(URL, json={"knowledge_id": str(docs), "query": "x"}, headers=admin)
    assert "retrieval_setting" in dify_error(response, 422, 422)
    response = ask(client, admin, docs, top_k=0)
    dify_error(response, 422, 422)


def test_openapi_documents_the_errors_in_difys_shape(client, admin):
    operation = client.get("/openapi.json", headers=admin).json["paths"][URL]["post"]
    for status in ("401", "404", "422"):
        (media,) = operation["responses"][status]["content"].items()
        assert media[0] == "application/json"
        assert media[1]["schema"]["$ref"].endswith("/DifyError")


def _titles(client, admin, docs, *conditions, logical="and"):  # type: ignore[no-untyped-def]
    condition = {"logical_operator": logical, "conditions": list(conditions)}
    response = ask(client, admin, docs, metadata_condition=condition)
    assert response.status_code == 200, response.json
    return sorted(r["title"] for r in response.json["records"])


def test_metadata_condition_takes_the_values_dify_sends(client, admin, docs):
    def cond(op, value):  # type: ignore[no-untyped-def]
        return {"name": "year", "comparison_operator": op, "value": value}

    assert _titles(client, admin, docs, cond("in", [2019, 2020])) == ["valve.txt"]
    assert _titles(client, admin, docs, cond("not in", [2019])) == ["fox.txt"]
    assert _titles(client, admin, docs, cond("=", "2021")) == ["fox.txt"]  # a number as text
    assert _titles(client, admin, docs, cond(">", 2019.5)) == ["fox.txt"]
    team = {"name": "team", "comparison_operator": "in", "value": ["plant", "x"]}
    assert _titles(client, admin, docs, team) == ["valve.txt"]


def test_metadata_condition_compares_booleans_as_booleans(client, admin, collection, app):
    upload(client, admin, collection, "fox.txt", FOX, metadata={"public": True})
    upload(client, admin, collection, "valve.txt", VALVE, metadata={"public": False})
    drain(app)
    public = {"name": "public", "comparison_operator": "is", "value": True}
    assert _titles(client, admin, collection, public) == ["fox.txt"]


@pytest.mark.parametrize(
    ("condition", "where"),
    [
        ({"name": "year", "comparison_operator": "in", "value": 2019}, "conditions[1].value"),
        ({"name": "year", "comparison_operator": ">", "value": [1]}, "conditions[1].value"),
        ({"name": "year", "comparison_operator": "is", "value": {"a": 1}}, "conditions[1].value"),
        ({"name": "a..b", "comparison_operator": "is", "value": 1}, "conditions[1].name"),
        ({"name": "year", "comparison_operator": "≥"}, "conditions[1].value"),
    ],
    ids=["in-scalar", "range-list", "object", "bad-name", "missing"],
)
def test_a_bad_condition_is_named_as_dify_sent_it(client, admin, docs, condition, where):
    fine = {"name": "team", "comparison_operator": "empty"}
    body = {"logical_operator": "or", "conditions": [fine, condition]}
    msg = dify_error(ask(client, admin, docs, metadata_condition=body), 422, 422)
    assert f"metadata_condition.{where}:" in msg, msg
    assert "filter" not in msg and msg.count(":") <= 2, msg  # one error, in Dify's words
