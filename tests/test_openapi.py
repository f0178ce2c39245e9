"""The OpenAPI document is generated from the endpoint declarations and served with offline docs."""

import re

from openapi_spec_validator import validate

from tests.helpers import bearer


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_openapi_document_is_valid_and_covers_every_route(app, client, admin):
    response = client.get("/openapi.json", headers=admin)
    assert response.status_code == 200
    spec = response.json
    validate(spec)
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method.lower()) in documented
    schemas = spec["components"]["schemas"]
    for ref in _refs(spec):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_operations_declare_auth_bodies_and_problem_responses(client, admin):
    spec = client.get("/openapi.json", headers=admin).json
    assert "security" not in spec["paths"]["/healthz"]["get"]
    assert spec["paths"]["/readyz"]["get"]["security"] == [{}, {"bearerAuth": []}]  # optional
    create_user = spec["paths"]["/api/v1/users"]["post"]
    assert create_user["security"] == [{"bearerAuth": []}]
    assert set(create_user["responses"]) >= {"201", "401", "403", "409", "422"}
    body_ref = create_user["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    user_create = spec["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert user_create["required"] == ["name"]
    assert user_create["properties"]["role"]["enum"] == ["admin", "user"]
    problem = create_user["responses"]["409"]["content"]["application/problem+json"]
    assert problem["schema"]["$ref"].endswith("/Problem")
    upload = spec["paths"]["/api/v1/documents"]["post"]
    assert set(upload["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "application/json" in upload["responses"]["200"]["content"]
    assert "application/json" in upload["responses"]["202"]["content"]
    list_tokens = spec["paths"]["/api/v1/tokens"]["get"]
    params = {p["name"]: p for p in list_tokens["parameters"]}
    assert params["limit"]["schema"]["maximum"] == 100
    assert params["offset"]["in"] == "query"


def test_docs_page_works_offline(client, admin_token):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert not re.search(r"(src|href)=\"https?://", html), "docs must not load from a CDN"
    for asset in re.findall(r"(?:src|href)=\"(/docs/assets/[^\"]+)\"", html):
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.get_data()) > 1000, asset
        response.close()
    assert "/openapi.json" in html
    assert client.get("/openapi.json", headers=bearer(admin_token)).status_code == 200
