"""Documents' metadata: bounded at upload and import, and sent once per search answer."""

from __future__ import annotations

import json

import pytest

from app.services.document_metadata import MAX_METADATA_BYTES, MAX_METADATA_DEPTH
from tests.helpers import (
    drain,
    export,
    ndjson,
    post_document,
    post_import,
    replaced,
    search,
    upload,
)


def sized(size: int) -> dict:
    """Metadata of exactly `size` bytes as compact JSON."""
    padding = size - len('{"notes":""}')
    return {"notes": "x" * padding}


def nested(levels: int) -> dict:
    metadata: dict = {}
    for _ in range(levels - 1):
        metadata = {"deeper": metadata}
    return metadata


def post_file(client, headers, collection, metadata_text: str):
    return post_document(
        client, headers, collection, "owls.txt", b"Owls hunt at night.", metadata=metadata_text
    )


def post_text(client, headers, collection, metadata):
    body = {"collection_id": collection, "text": "Bees dance at noon.", "metadata": metadata}
    return client.post("/api/v1/documents", json=body, headers=headers)


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        (sized(MAX_METADATA_BYTES + 1), f"bytes as JSON; the limit is {MAX_METADATA_BYTES}"),
        (nested(MAX_METADATA_DEPTH + 1), f"nested more than {MAX_METADATA_DEPTH} levels deep"),
    ],
    ids=["too large", "too deep"],
)
def test_uploads_with_metadata_beyond_the_limits_are_422_and_store_nothing(
    client, admin, collection, metadata, problem
):
    for response in (
        post_file(client, admin, collection, json.dumps(metadata)),
        post_text(client, admin, collection, metadata),
    ):
        assert response.status_code == 422, response.json
        assert response.mimetype == "application/problem+json"
        assert problem in response.json["detail"]
        assert response.json["errors"][0]["loc"] == ["body", "metadata"]
    listed = client.get("/api/v1/documents", headers=admin)
    assert listed.json["items"] == []


def test_metadata_at_the_limits_is_stored(client, admin, collection):
    largest = sized(MAX_METADATA_BYTES)
    assert post_file(client, admin, collection, json.dumps(largest)).status_code == 202
    deepest = nested(MAX_METADATA_DEPTH)
    created = post_text(client, admin, collection, deepest)
    assert created.status_code == 202, created.json
    assert created.json["metadata"] == deepest


def test_an_import_line_with_metadata_beyond_the_limit_is_422_naming_it(
    app, client, admin, collection
):
    upload(client, admin, collection, "owls.txt", "Owls hunt at night.", {"k": "v"})
    drain(app)
    lines = export(client, admin, collection)
    at = next(i for i, line in enumerate(lines) if line["kind"] == "document")
    body = ndjson(replaced(lines, at, metadata=sized(MAX_METADATA_BYTES + 1)))
    response = post_import(client, admin, body, name="too much metadata")
    assert response.status_code == 422, response.json
    assert response.json["detail"] == (
        f"line {at + 1} of the import file: the metadata is {MAX_METADATA_BYTES + 1} bytes as"
        f" JSON; the limit is {MAX_METADATA_BYTES}"
    )
    names = [c["name"] for c in client.get("/api/v1/collections", headers=admin).json["items"]]
    assert "too much metadata" not in names


def test_a_search_answer_carries_each_documents_metadata_once(
    app, client, admin, new_user, collection
):
    """Metadata on a shared document is not repeated in every hit another user gets."""
    paragraphs = [f"Paragraph {i} about owls and their nights. " * 12 for i in range(6)]
    largest = sized(MAX_METADATA_BYTES)
    owls = upload(client, admin, collection, "owls.txt", "\n\n".join(paragraphs), largest)
    bees = upload(client, admin, collection, "bees.txt", "Bees and owls share a meadow.", {"b": 1})
    drain(app)
    client.patch(f"/api/v1/collections/{collection}", json={"is_shared": True}, headers=admin)
    for mode in ("fulltext", "hybrid", "semantic"):
        response = search(client, new_user(), query="owls", mode=mode, top_k=20, min_similarity=0)
        assert response.status_code == 200, response.json
        body = response.json
        hits = body["hits"]
        assert sum(h["document_id"] == owls for h in hits) > 2, mode
        assert all("metadata" not in h for h in hits)
        assert body["documents"] == {
            str(owls): {"title": "", "metadata": largest},
            str(bees): {"title": "", "metadata": {"b": 1}},
        }
        text = sum(len(json.dumps(h)) for h in hits)
        assert len(response.get_data()) < text + MAX_METADATA_BYTES + 1024, mode


def test_a_number_too_large_for_a_float_in_metadata_is_refused_not_a_500(
    app, client, admin, collection
):
    """1e999 is valid JSON that Python reads as infinity, which no JSON writer then takes."""
    body = {"collection_id": collection, "text": "Bees.", "metadata": {"n": 1.5}}
    text = json.dumps(body).replace("1.5", "1e999")
    response = client.post(
        "/api/v1/documents", data=text, content_type="application/json", headers=admin
    )
    assert response.status_code == 400, response.json
    assert "too large for a number" in response.json["detail"]
    response = post_file(client, admin, collection, '{"n": -1e999}')
    assert response.status_code == 422, response.json
    assert response.json["errors"][0]["loc"] == ["body", "metadata"]
    upload(client, admin, collection, "owls.txt", "Owls hunt at night.", {"k": "v"})
    drain(app)
    lines = export(client, admin, collection)
    at = next(i for i, line in enumerate(lines) if line["kind"] == "document")
    body = ndjson(replaced(lines, at, metadata={"n": 1.5})).replace(b"1.5", b"1e999")
    response = post_import(client, admin, body, name="infinite metadata")
    assert response.status_code == 422, response.json
    assert response.json["detail"].startswith(f"line {at + 1} of the import file: not JSON")
    assert len(client.get("/api/v1/documents", headers=admin).json["items"]) == 1
