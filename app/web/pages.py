"""GET / and GET /static/...: the web UI. Static files only: no data, no private endpoints."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

bp = Blueprint("web", __name__)
_STATIC = Path(__file__).parent / "static"
# Same origin only: no inline script, no CDN, nothing framed.
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/")
def index() -> Response:
    return _secured(send_from_directory(_STATIC, "index.html", max_age=0))


@bp.get("/ui/<path:filename>")
def assets(filename: str) -> Response:
    return _secured(send_from_directory(_STATIC, filename, max_age=300))
