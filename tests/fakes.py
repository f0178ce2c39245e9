"""In-process HTTP servers on 127.0.0.1 that speak Ollama's and OpenAI's embedding protocols."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import numpy as np


def fake_vector(text: str, dimension: int) -> list[float]:
    """A deterministic vector per text (its words hashed into buckets), so equal texts match."""
    vector = np.zeros(dimension, dtype=np.float32)
    for word in text.lower().split():
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dimension] += 1.0
    return vector.tolist()


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    send_raw(handler, status, {"Content-Type": "application/json"}, json.dumps(payload).encode())


def send_raw(
    handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
) -> None:
    """An answer with these headers (and its Content-Length) and body."""
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing, so the tests' output stays readable."""

    def log_message(self, *args: Any) -> None:
        pass


class LoopbackServer:
    """A fake server's life: serves on a free 127.0.0.1 port, in a thread, inside `with`."""

    def _listen(
        self,
        handler: type[BaseHTTPRequestHandler],
        server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer,
    ) -> str:
        """Binds `handler` (started by `with`); the server's base URL."""
        self.httpd = server_class(("127.0.0.1", 0), handler)
        # Polled every 50 ms (not 500): `with` blocks end that much sooner in every test.
        self.thread = threading.Thread(
            target=functools.partial(self.httpd.serve_forever, poll_interval=0.05), daemon=True
        )
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeEmbeddingServer(LoopbackServer):
    """Serves POST /api/embed (Ollama) and POST /v1/embeddings (OpenAI-compatible).

    `models` are the known model names; `fail_next` is a list of statuses to answer before
    succeeding (e.g. [503] for one 503 then success); `requests` records every request body.
    """

    def __init__(
        self,
        models: tuple[str, ...] = ("fake-embed",),
        dimension: int = 8,
        base64_answers: bool = False,
        vectors: Mapping[str, list[float]] | None = None,
    ) -> None:
        self.models = set(models)
        self.vectors = dict(vectors or {})  # texts answered with these vectors, not fake ones
        self.dimension = dimension
        self.base64_answers = base64_answers
        self.fail_next: list[int] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(QuietHandler):
            # Headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK can hold the body back ~40 ms.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                if server.fail_next:
                    status = server.fail_next.pop(0)
                    self._send(status, {"error": f"temporarily unavailable ({status})"})
                    return
                if self.path == "/api/embed":
                    self._ollama(body)
                elif self.path == "/v1/embeddings":
                    self._openai(body)
                else:
                    self._send(404, {"error": "404 page not found"})

            def _ollama(self, body: dict[str, Any]) -> None:
                if body.get("model") not in server.models:
                    model = body.get("model")
                    self._send(404, {"error": f'model "{model}" not found, try pulling it first'})
                    return
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                self._send(
                    200,
                    {
                        "model": body["model"],
                        "embeddings": [server.vector_for(t) for t in inputs],
                    },
                )

            def _openai(self, body: dict[str, Any]) -> None:
                if body.get("model") not in server.models:
                    self._send(
                        404,
                        {
                            "error": {
                                "message": f"The model `{body.get('model')}` does not exist",
                                "type": "invalid_request_error",
                            }
                        },
                    )
                    return
                data = []
                for i, text in enumerate(body["input"]):
                    vector = server.vector_for(text)
                    if server.base64_answers:
                        encoded: Any = base64.b64encode(
                            np.asarray(vector, dtype="<f4").tobytes()
                        ).decode()
                    else:
                        encoded = vector
                    data.append({"object": "embedding", "index": i, "embedding": encoded})
                data.reverse()  # the index field, not the order, says which input is which
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": data,
                        "model": body["model"],
                        "usage": {"prompt_tokens": 1, "total_tokens": 1},
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                send_json(self, status, payload)

        self.url = self._listen(Handler)

    def vector_for(self, text: str) -> list[float]:
        return self.vectors.get(text) or fake_vector(text, self.dimension)
