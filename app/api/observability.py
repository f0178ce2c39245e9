"""Request ids, the access log, request-latency metrics, and GET /metrics (Prometheus).

Every request gets an id: the caller's X-Request-ID when it is a sane token, else a new one. It
is echoed in the X-Request-ID response header, put in problem+json bodies (app/api/problems.py)
and on every log line the request causes (app/logs.py). GET /metrics wants POSTRAG_METRICS_TOKEN
as a bearer token, or an admin's API token.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid

from flask import Blueprint, Flask, Response, g, request

from app import metrics
from app.api.endpoint import db
from app.db import scope
from app.errors import Forbidden, Unauthorized
from app.logredact import redact
from app.runtime import runtime
from app.services import tokens

bp = Blueprint("observability", __name__)
access_log = logging.getLogger("postrag.access")
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _loggable(path: str) -> str:
    escaped = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", path)
    return redact(escaped[:2000])


def register_request_tracking(app: Flask) -> None:
    """Before every other hook: the request id; after every other: metrics and the access log."""

    @app.before_request
    def _begin() -> None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex
        g.request_started = time.monotonic()

    @app.after_request
    def _end(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        route = request.url_rule.rule if request.url_rule else "(unmatched)"
        # Labels and log fields from the client, made safe: a made-up method is one series,
        # and a path cannot forge log lines (control characters) or carry a token into them.
        method = request.method if request.method in _METHODS else "OTHER"
        path, status = _loggable(request.path), response.status_code
        started, request_id = g.get("request_started", time.monotonic()), g.get("request_id")
        who = g.get("principal")
        user_id = who.user_id if who is not None else None

        def _observe() -> None:
            seconds = time.monotonic() - started
            metrics.metrics().http_seconds.labels(route, method, str(status)).observe(seconds)
            access_log.info(
                "%s %s %s %.1fms",
                method,
                path,
                status,
                seconds * 1000,
                extra={
                    "request_id": request_id,
                    "method": method,
                    "path": path,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "user_id": user_id,
                },
            )

        if response.is_streamed:
            response.call_on_close(_observe)  # a stream's time runs until its last byte
        else:
            _observe()
        return response


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus text format; for POSTRAG_METRICS_TOKEN or an admin's API token."""
    header = request.headers.get("Authorization", "")
    expected = runtime().settings.metrics_token
    given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if not (expected and given and hmac.compare_digest(given.encode(), expected.encode())):
        _require_admin(header)
    conn = db()
    with scope.acting_as_owner(conn):  # queue depth and documents of every user, as counts
        body = metrics.exposition(conn)
    return Response(body, status=200, content_type=metrics.CONTENT_TYPE)


def _require_admin(header: str) -> None:
    if not header:
        raise Unauthorized("GET /metrics wants POSTRAG_METRICS_TOKEN or an admin's API token")
    conn = db()
    with scope.acting_as_owner(conn):
        who = tokens.authenticate(conn, header)
    if not who.is_admin:
        raise Forbidden("GET /metrics is for admins and the metrics token only")
