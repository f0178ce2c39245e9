"""Errors are RFC 9457 problem+json with the right status, and never leak internals."""

import io
import logging

import flask


def test_unknown_route_is_404_problem_json(client, admin):
    response = client.get("/api/v1/nothing-here", headers=admin)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["instance"] == "/api/v1/nothing-here"
    assert body["type"] == "about:blank"


def test_wrong_method_is_405_with_allow_header(client, admin):
    response = client.put("/api/v1/me", headers=admin)
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]


def test_unexpected_error_is_logged_500_without_internals(app, caplog):
    def explode():
        raise RuntimeError("secret internal detail: password=hunter2")

    app.add_url_rule("/explode", "explode", explode)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/explode")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "hunter2" not in response.get_data(as_text=True)
    assert response.json["detail"] == "an unexpected error occurred; it was logged"
    assert any("hunter2" in record.exc_text for record in caplog.records if record.exc_text)


def test_malformed_json_is_400(client, admin):
    response = client.post(
        "/api/v1/tokens", data="{not json", content_type="application/json", headers=admin
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert "not valid JSON" in response.json["detail"]


def test_non_json_body_is_415(client, admin):
    response = client.post("/api/v1/tokens", data="name=x", headers=admin)
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"


def test_invalid_body_is_422_with_field_errors(client, admin):
    response = client.post("/api/v1/tokens", json={"name": "", "bogus": 1}, headers=admin)
    assert response.status_code == 422
    locations = {tuple(error["loc"]) for error in response.json["errors"]}
    assert ("body", "name") in locations
    assert ("body", "bogus") in locations


def test_invalid_query_is_422(client, admin):
    response = client.get("/api/v1/tokens?limit=abc", headers=admin)
    assert response.status_code == 422
    assert response.json["errors"][0]["loc"] == ["query", "limit"]


def test_nul_characters_are_422_not_500(client, admin):
    response = client.post("/api/v1/tokens", json={"name": "bad\u0000name"}, headers=admin)
    assert response.status_code == 422
    assert response.json["errors"][0]["loc"] == ["body", "name"]
    query = client.get("/api/v1/tokens?limit=5%00", headers=admin)
    assert query.status_code == 422


def test_huge_offset_is_422_not_500(client, admin):
    response = client.get("/api/v1/tokens?offset=9223372036854775808", headers=admin)
    assert response.status_code == 422
    assert response.json["errors"][0]["loc"] == ["query", "offset"]


def test_deeply_nested_json_is_400_not_500(client, admin):
    body = "[" * 100_000 + "]" * 100_000
    response = client.post(
        "/api/v1/tokens", data=body, content_type="application/json", headers=admin
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_json_with_nan_is_never_written_and_fails_the_tests(app, no_nan_in_json):
    """NaN and Infinity are not JSON: the app refuses to write them (a logged 500), and the
    suite-wide guard (tests/conftest.py) fails whichever test made the app try."""

    def not_a_number():
        return flask.Response(flask.json.dumps({"similarity": float("nan")}))

    app.add_url_rule("/nan", "nan", not_a_number)
    response = app.test_client().get("/nan")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "NaN" not in response.get_data(as_text=True)
    assert len(no_nan_in_json.caught) == 1 and "NaN" in no_nan_in_json.caught[0]
    no_nan_in_json.caught.clear()  # what the guard would fail this test for, checked above


def test_nan_and_infinity_in_a_request_body_are_400(client, admin):
    for constant in ("NaN", "Infinity", "-Infinity"):
        response = client.post(
            "/api/v1/search",
            data='{"query": "x", "min_similarity": ' + constant + "}",
            content_type="application/json",
            headers=admin,
        )
        assert response.status_code == 400, (constant, response.json)
        assert "not valid JSON" in response.json["detail"]


def test_every_field_error_has_loc_msg_and_type(client, admin, collection):
    """Whoever names the field (pydantic, the API layer, a service, a repository), every entry
    of `errors` has the same members and a `loc` that starts where the value was sent."""

    def upload(**fields):
        form = {"collection_id": str(collection), **fields}
        return client.post(
            "/api/v1/documents", data=form, headers=admin, content_type="multipart/form-data"
        )

    def owls():
        return (io.BytesIO(b"Owls hunt at night."), "owls.txt")

    past = {"name": "t", "expires_at": "2000-01-01T00:00:00Z"}
    refused = {
        "pydantic, body": client.post("/api/v1/tokens", json={"name": ""}, headers=admin),
        "pydantic, query": client.get("/api/v1/tokens?limit=abc", headers=admin),
        "null in a patch": client.patch(
            "/api/v1/me/preferences", json={"top_k": None}, headers=admin
        ),
        "token expiry": client.post("/api/v1/tokens", json=past, headers=admin),
        "unknown chat model": client.put(
            "/api/v1/me/preferences", json={"chat_model_id": 999999}, headers=admin
        ),
        "unknown language": client.post(
            "/api/v1/collections", json={"name": "c", "language": "klingon"}, headers=admin
        ),
        "bad filter": client.post(
            "/api/v1/search", json={"query": "x", "filter": {"op": "nope"}}, headers=admin
        ),
        "upload without a file": upload(),
        "metadata not an object": upload(file=owls(), metadata="[1]"),
        "NUL in metadata": upload(file=owls(), metadata='{"k\\u0000": 1}'),
    }
    for case, response in refused.items():
        assert response.status_code == 422, (case, response.json)
        assert response.json["errors"], case
        for entry in response.json["errors"]:
            assert entry.keys() == {"loc", "msg", "type"}, (case, entry)
            assert entry["loc"][0] in ("body", "query", "path"), (case, entry)
    assert refused["unknown chat model"].json["errors"][0]["loc"] == ["body", "chat_model_id"]
    assert refused["upload without a file"].json["errors"][0]["loc"] == ["body", "file"]
    assert refused["NUL in metadata"].json["errors"][0]["loc"] == ["body", "metadata", "k\x00"]
