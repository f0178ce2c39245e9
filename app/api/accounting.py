"""Per-request accounting: RateLimit-* headers and one api_usage row per authenticated request.

A streamed answer's row is written when the stream is closed, so it counts the whole duration
and the LLM tokens its generator reported into `g.llm_usage` along the way.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, g, request

from app.runtime import runtime
from app.services import usage


def register_accounting(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.started = time.monotonic()
        g.llm_usage = {}

    @app.after_request
    def _account(response: Response) -> Response:
        who = g.get("principal")
        if who is None:
            return response
        response.headers.update(g.get("rate_headers") or {})
        pool = runtime().pool
        values: dict[str, Any] = {
            "user_id": who.user_id,
            "token_id": who.token_id,
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule else "(unmatched)",
            "status": response.status_code,
        }
        started, llm_usage = g.started, g.llm_usage

        def _record(conn: Any = None) -> None:
            values["latency_ms"] = int((time.monotonic() - started) * 1000)
            values["prompt_tokens"] = llm_usage.get("prompt_tokens")
            values["completion_tokens"] = llm_usage.get("completion_tokens")
            usage.record(pool, values, conn)

        if response.is_streamed:
            response.call_on_close(_record)  # once the stream has ended, on a connection of its own
        else:
            _record(g.get("db_conn"))  # the request's, acting as the caller, when it holds one
        return response
