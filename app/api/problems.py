"""Renders errors as RFC 9457 problem objects: JSON answers and streams' `error` events alike.

`problem_body` is the one renderer. A stream outlives its request context, so it takes a
`ProblemContext` captured while the request was there; a JSON answer takes the live request's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, g, json, request
from werkzeug.exceptions import HTTPException

from app.errors import AppError, FieldError, ValidationFailed, as_app_error
from app.providers.llm import LLMError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True)
class ProblemContext:
    """What a problem object takes from its request: its path, its id, and where each field of
    the request was (for the `loc` of field errors that name only the field)."""

    instance: str
    request_id: str | None = None
    streamed: bool = False  # in a 200 stream, OpenAI's `error.code` carries the status
    path_fields: frozenset[str] = frozenset()
    query_fields: frozenset[str] = frozenset()

    @classmethod
    def of_request(cls, *, streamed: bool = False) -> ProblemContext:
        view = current_app.view_functions.get(request.endpoint or "")
        query = getattr(getattr(view, "endpoint_spec", None), "query", None)
        return cls(
            instance=request.path,
            request_id=g.get("request_id"),
            streamed=streamed,
            path_fields=frozenset(request.view_args or ()),
            query_fields=frozenset(query.model_fields if query is not None else ()),
        )

    def loc(self, error: FieldError) -> list[str | int]:
        """A field error's place in the request: a path or query parameter, else the body."""
        name = error.path[0] if error.path else None
        if name in self.path_fields:
            return error.loc("path")
        return error.loc("query" if name in self.query_fields else "body")


def problem_body(exc: AppError, context: ProblemContext | None = None) -> dict[str, Any]:
    """The problem object of `exc`: RFC 9457 members, `request_id`, `exc.extra`, the `errors`
    of a 422 (each `{loc, msg, type}`), and under /v1 OpenAI's `error` object, which its SDKs
    read the message from."""
    where = context or ProblemContext.of_request()
    body = {"type": "about:blank", "title": exc.title, "status": exc.status, "detail": exc.detail}
    body["instance"] = where.instance
    if where.request_id:  # quote it to the operator: every log line of the request has it
        body["request_id"] = where.request_id
    body.update(exc.extra)
    if isinstance(exc, ValidationFailed) and exc.errors:
        body["errors"] = [{"loc": where.loc(e), "msg": e.msg, "type": e.type} for e in exc.errors]
    if where.instance.startswith("/v1/"):
        body["error"] = {
            "message": exc.detail,
            "type": _OPENAI_TYPES.get(exc.status, "api_error"),
            "param": None,
            "code": exc.status if where.streamed else None,
        }
    return body


class _HTTPProblem(AppError):
    """Werkzeug's own errors (unknown route, wrong method) as problems."""

    def __init__(self, exc: HTTPException):
        self.status = exc.code or 500
        self.title = HTTPStatus(self.status).phrase
        super().__init__(exc.description or self.title)


def _response(exc: AppError) -> Response:
    response = Response(json.dumps(problem_body(exc)), status=exc.status, mimetype=PROBLEM_JSON)
    response.headers.update(exc.headers)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(exc: AppError) -> Response:
        if isinstance(exc, LLMError):  # the operator's business too: the provider failed
            log.warning("%s %s: %s", request.method, request.path, exc.detail)
        return _response(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        response = _response(_HTTPProblem(exc))
        if response.status_code == 405 and exc.response is None:
            allowed = exc.valid_methods if hasattr(exc, "valid_methods") else None
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(Exception)
    def _other(exc: Exception) -> Response:
        return _response(as_app_error(exc, f"{request.method} {request.path}"))
