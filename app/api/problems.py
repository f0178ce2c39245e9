"""Renders errors as RFC 9457 application/problem+json; unexpected ones are logged 500s."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import psycopg
import psycopg_pool
from flask import Flask, Response, g, json, request
from werkzeug.exceptions import HTTPException

from app.errors import CONSTRAINT_ERRORS, AppError, DatabaseUnavailable
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


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body["instance"] = request.path
    if g.get("request_id"):  # quote it to the operator: every log line of the request has it
        body["request_id"] = g.request_id
    body.update(extra)
    if request.path.startswith("/v1/"):  # what OpenAI's SDKs read the message from
        body["error"] = {
            "message": detail,
            "type": _OPENAI_TYPES.get(status, "api_error"),
            "param": None,
            "code": None,
        }
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(exc: AppError) -> Response:
        response = problem(exc.status, exc.title, exc.detail, **exc.extra)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(LLMError)
    def _llm_error(exc: LLMError) -> Response:
        log.warning("%s %s: %s", request.method, request.path, exc.detail)
        return problem(exc.status, exc.title, exc.detail, provider=exc.provider)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        title = HTTPStatus(status).phrase
        detail = exc.description or title
        response = problem(status, title, detail)
        if status == 405 and exc.response is None:
            allowed = exc.valid_methods if hasattr(exc, "valid_methods") else None
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(psycopg.IntegrityError)
    def _integrity_error(exc: psycopg.IntegrityError) -> Response:
        name = exc.diag.constraint_name or ""
        if name in CONSTRAINT_ERRORS:
            cls, detail = CONSTRAINT_ERRORS[name]
            return _app_error(cls(detail))
        return _unexpected(exc)

    @app.errorhandler(psycopg.OperationalError)
    @app.errorhandler(psycopg_pool.PoolTimeout)
    def _database_unavailable(exc: Exception) -> Response:
        log.error("database unavailable on %s %s: %s", request.method, request.path, exc)
        return _app_error(DatabaseUnavailable())

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "Internal server error", "an unexpected error occurred; it was logged")
