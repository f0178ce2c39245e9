"""Server-sent events: formatting, the client's choice of SSE over JSON, the streaming response."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
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


class Closing:
    """`chunks`, calling `on_close` once when the response is closed (also when it was never
    read: a generator's own `finally` would not run then)."""

    def __init__(self, chunks: Iterable[str], on_close: Callable[[], None]):
        self._chunks: Iterator[str] = iter(chunks)
        self._on_close: Callable[[], None] | None = on_close
        self._lock = threading.Lock()

    def __iter__(self) -> Closing:
        return self

    def __next__(self) -> str:
        return next(self._chunks)

    def close(self) -> None:
        with self._lock:
            on_close, self._on_close = self._on_close, None
        try:
            closer = getattr(self._chunks, "close", None)
            if closer is not None:
                closer()
        finally:
            if on_close is not None:
                on_close()
