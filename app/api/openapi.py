"""GET /openapi.json, built from the @endpoint declarations, and the offline docs page at /docs."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import flask_swagger_ui
import pydantic
from flask import Blueprint, Flask, Response, current_app, send_from_directory
from pydantic.json_schema import models_json_schema

from app.api.endpoint import EndpointSpec, endpoint
from app.api.schemas import Problem
from app.runtime import runtime

bp = Blueprint("openapi", __name__)

_SWAGGER_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
_DOCS_PAGE = Path(__file__).parent / "docs.html"
_PATH_ARG = re.compile(r"<(?:(\w+):)?(\w+)>")
_ERROR_TITLES = {
    400: "Bad request",
    401: "Missing, malformed, revoked or expired token",
    403: "Not allowed for this token or user",
    404: "Not found (or not yours)",
    409: "Conflicts with an existing resource",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid parameters",
    502: "An upstream provider (language or embedding model) failed",
    503: "Not ready, or an upstream provider cannot be reached",
    504: "An upstream provider timed out",
}


# Each server-sent event of a stream (chat answers, model pulls): its id, name and JSON data.
_SSE = {
    "type": "object",
    "description": "each server-sent event: its id (chat answers), its name and its JSON data",
    "properties": {
        "id": {"type": "string"},
        "event": {"type": "string"},
        "data": {"type": "string"},
    },
    "required": ["data"],
}


def _endpoints(app: Flask) -> list[tuple[str, str, EndpointSpec, dict[str, str]]]:
    found = []
    for rule in app.url_map.iter_rules():
        spec = getattr(app.view_functions[rule.endpoint], "endpoint_spec", None)
        if spec is None:
            continue
        converters = {name: conv for conv, name in _PATH_ARG.findall(rule.rule)}
        path = _PATH_ARG.sub(r"{\2}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((path, method.lower(), spec, converters))
    return found


def _operation(
    spec: EndpointSpec, converters: dict[str, str], refs: dict[Any, Any]
) -> dict[str, Any]:
    def ref(model: type[pydantic.BaseModel], mode: str) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer" if conv == "int" else "string"},
        }
        for name, conv in converters.items()
    ]
    if spec.query is not None:
        schema = spec.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "description": prop.get("description", ""),
                    "schema": prop,
                }
            )
    op: dict[str, Any] = {"summary": spec.summary, "tags": [spec.tag], "parameters": params}
    if spec.body is not None or spec.multipart is not None:
        content: dict[str, Any] = {}
        if spec.body is not None:
            content["application/json"] = {"schema": ref(spec.body, "validation")}
        if spec.multipart is not None:
            content["multipart/form-data"] = {"schema": ref(spec.multipart, "validation")}
        op["requestBody"] = {"required": True, "content": content}
    if spec.raw_body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {spec.raw_body: {"schema": {"type": "string"}}},
        }
    ok: dict[str, Any] = {"description": "Success"}
    if spec.raw_response is not None:
        raw = _SSE if spec.raw_response == "text/event-stream" else {"type": "string"}
        ok["content"] = {spec.raw_response: {"schema": raw}}
    if spec.response is not None:
        ok["content"] = {"application/json": {"schema": ref(spec.response, "serialization")}}
    responses: dict[str, Any] = {str(spec.status): ok}
    if spec.streams:  # with Accept: text/event-stream (or ?stream=true): 200 and the events
        stream = {"schema": _SSE}
        streamed = responses.setdefault("200", {"description": "Success (server-sent events)"})
        streamed["content"] = {**streamed.get("content", {}), "text/event-stream": stream}
    for status in spec.also:
        responses[str(status)] = {**ok, "description": "Success (already there)"}
    codes = set(spec.errors)
    if spec.auth != "public":
        codes |= {401, 403}
        op["security"] = [{"bearerAuth": []}]
        if spec.auth == "optional":  # an empty requirement: the token may be left out
            op["security"].insert(0, {})
    if spec.body is not None or spec.query is not None or spec.raw_body is not None:
        codes |= {422}
    if spec.body is not None or spec.raw_body is not None:
        codes |= {400, 415}
    error = {"application/problem+json": {"schema": ref(Problem, "serialization")}}
    if spec.error_body is not None:
        error = {"application/json": {"schema": ref(spec.error_body, "serialization")}}
    for code in sorted(codes):
        responses[str(code)] = {"description": _ERROR_TITLES.get(code, "Error"), "content": error}
    op["responses"] = responses
    return op


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every @endpoint registered on `app`."""
    endpoints = _endpoints(app)
    models: set[tuple[type[pydantic.BaseModel], str]] = {(Problem, "serialization")}
    for _, _, spec, _ in endpoints:
        if spec.body is not None:
            models.add((spec.body, "validation"))
        if spec.response is not None:
            models.add((spec.response, "serialization"))
        if spec.multipart is not None:
            models.add((spec.multipart, "validation"))
        if spec.error_body is not None:
            models.add((spec.error_body, "serialization"))
    ordered = sorted(models, key=lambda item: (item[0].__name__, item[1]))
    refs, schemas = models_json_schema(ordered, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
    paths: dict[str, dict[str, Any]] = {}
    for path, method, spec, converters in endpoints:
        paths.setdefault(path, {})[method] = _operation(spec, converters, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "postrag",
            "version": version("postrag"),
            "description": "Retrieval-augmented generation on one PostgreSQL database.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a postrag API token: prg_...",
                }
            },
        },
    }


@bp.get("/openapi.json")
@endpoint(summary="This API's OpenAPI 3.1 document", tag="meta")
def openapi_json() -> dict[str, Any]:
    rt = runtime()
    if rt.openapi is None:  # built on first use: every blueprint is registered by then
        rt.openapi = build_spec(current_app)
    return rt.openapi


# The docs page is static (Swagger UI shipped inside the flask-swagger-ui wheel, so no CDN); it
# holds no data and asks for a token, which it sends with every request, /openapi.json included.
@bp.get("/docs")
def docs() -> Response:
    return Response(_DOCS_PAGE.read_text(), mimetype="text/html")


@bp.get("/docs/assets/<path:filename>")
def docs_assets(filename: str) -> Response:
    return send_from_directory(_SWAGGER_DIST, filename, max_age=3600)
