"""Server-sent events: formatting, the client's choice of SSE over JSON, the streaming response."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Response, request

from app import strict_json


def sse(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    # Streams run outside the app context, where flask.json would fall back to lenient json.
    head = "" if event_id is None else f"id: {event_id}\n"
    return f"{head}event: {event}\ndata: {strict_json.dumps(data)}\n\n"


# A comment line: clients ignore it; proxies see traffic and keep a waiting stream open.
HEARTBEAT = ": keep-alive\n\n"


def wants_stream(stream_flag: bool) -> bool:
    """True with ?stream=true or when Accept prefers text/event-stream to JSON."""
    best = request.accept_mimetypes.best_match(["application/json", "text/event-stream"])
    return stream_flag or best == "text/event-stream"


def event_stream(chunks: Iterable[str]) -> Response:
    """A 200 text/event-stream response that proxies must not buffer."""
    return Response(
        chunks,
        status=200,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
