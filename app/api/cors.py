"""CORS: off unless POSTRAG_CORS_ORIGINS lists the browser origins that may call the API.

Cross-origin callers send tokens in the Authorization header; the web page's session cookie is for
postrag's own origin only, so credentials (cookies) are not allowed across origins.
Preflight (OPTIONS) requests are answered by Flask without running a view or authenticating.
"""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_HEADERS = "Authorization, Content-Type, Accept"
EXPOSED_HEADERS = "Location, Retry-After, Content-Disposition"
MAX_AGE_S = "600"


def register_cors(app: Flask, origins: tuple[str, ...]) -> None:
    if not origins:
        return
    allowed = set(origins)

    @app.after_request
    def _cors(response: Response) -> Response:
        origin = request.headers.get("Origin")
        response.vary.add("Origin")
        if origin is None or not ("*" in allowed or origin in allowed):
            return response
        response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        if request.method == "OPTIONS":
            wanted = request.headers.get("Access-Control-Request-Method")
            response.headers["Access-Control-Allow-Methods"] = response.headers.get(
                "Allow", wanted or "GET"
            )
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = MAX_AGE_S
        return response
