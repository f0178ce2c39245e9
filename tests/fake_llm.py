"""An in-process language-model server on 127.0.0.1 speaking Ollama's and OpenAI's chat protocols.

Ollama: POST /api/chat (NDJSON stream), GET /api/tags, POST /api/show, POST /api/pull (NDJSON
progress), GET /api/version. OpenAI-compatible: POST /v1/chat/completions (SSE ending in
`data: [DONE]`, or one JSON answer without "stream"), GET /v1/models. Streams use chunked transfer
encoding, so a server that "dies" mid-stream is a truncated body, as with a crashed upstream.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from app.services.followups import REWRITE_INSTRUCTIONS
from tests.fake_llm_tools import call_chunks, whole
from tests.fakes import LoopbackServer, QuietHandler, send_json

DEFAULT_MODELS: dict[str, dict[str, Any]] = {
    "fake-chat": {"capabilities": ["completion"], "context_length": 4096},
    "fake-embed": {"capabilities": ["embedding"], "context_length": 512, "dimension": 8},
}


def words(text: str) -> list[str]:
    """`text` cut into word pieces (each keeps its leading space), as models stream tokens."""
    pieces: list[str] = []
    for i, word in enumerate(text.split(" ")):
        pieces.append(word if i == 0 else " " + word)
    return [p for p in pieces if p]


def _rewriting(messages: list[dict[str, Any]]) -> bool:
    return bool(messages) and messages[0].get("content") == REWRITE_INSTRUCTIONS


def _as_asked(messages: list[dict[str, Any]]) -> str:
    """The follow-up's own words (the rewrite request ends with them)."""
    return str(messages[-1]["content"]).rsplit("Last question: ", 1)[-1]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-stream or drop idle keep-alive connections are expected


class FakeLLMServer(LoopbackServer):
    """Answers chats with `reply` (a text, or a function of the request's messages).

    Knobs: `delay_s` between pieces; `die_after` pieces then the connection drops;
    `fail_status` answers every chat with that status and an error body; `error_after` pieces
    then an error object in the stream; `malformed_after` pieces then a line of the wrong shape;
    `models` is what /api/tags, /api/show and /v1/models know; `aborted` is set when a client
    hangs up mid-stream. `requests` records (path, body). `tool_calls` (a function of the
    messages, for requests that offer tools) answers with calls ({"name", "arguments"}) instead
    of text when it returns any; `whole_json` answers one JSON object even when asked to stream.
    `rewrite` answers the requests that ask for a follow-up's standalone question (those whose
    system message is app/services/followups.py's): a text or a function of the messages; by
    default the question as it is, so tests of answers get the reply they set. `on_request`
    (when set) runs in the server on each chat request, before it is answered. `rewrite_stall_s`
    (when set) answers a rewrite request with headers only, then waits that long for the client
    to hang up (then `aborted` is set).
    """

    def __init__(self, reply: str | Callable[[list[dict[str, Any]]], str] = "Hello there.") -> None:
        self.reply = reply
        self.delay_s = 0.0
        self.die_after: int | None = None
        self.error_after: int | None = None
        self.fail_status: int | None = None
        self.models = {name: dict(info) for name, info in DEFAULT_MODELS.items()}
        self.usage = (11, 7)  # prompt, completion tokens reported at the end
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.malformed_after: int | None = None
        self.tool_calls: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
        self.whole_json = False
        self.rewrite: str | Callable[[list[dict[str, Any]]], str] = _as_asked
        self.aborted = threading.Event()  # set when a client hung up in the middle of a stream
        self.on_request: Callable[[], None] | None = None
        self.rewrite_stall_s: float | None = None
        server = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.requests.append((self.path, {}))
                if self.path == "/api/version":
                    self._json(200, {"version": "0.12.0"})
                elif self.path == "/api/tags":
                    models = [
                        {"name": n, "model": n, "size": 1000, "details": {"family": "fake"}}
                        for n in server.models
                    ]
                    self._json(200, {"models": models})
                elif self.path == "/v1/models":
                    data = [
                        {"id": n, "object": "model", "created": 0, "owned_by": "fake"}
                        for n in server.models
                    ]
                    self._json(200, {"object": "list", "data": data})
                else:
                    self._json(404, {"error": "404 page not found"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append((self.path, body))
                if self.path == "/api/show":
                    self._show(body)
                elif self.path == "/api/pull":
                    self._pull(body)
                elif self.path in ("/api/chat", "/v1/chat/completions"):
                    self._chat(body)
                else:
                    self._json(404, {"error": "404 page not found"})

            def _show(self, body: dict[str, Any]) -> None:
                info = server.models.get(body.get("model", ""))
                if info is None:
                    self._json(404, {"error": f"model '{body.get('model')}' not found"})
                    return
                model_info = {"general.architecture": "fake"}
                if "context_length" in info:
                    model_info["fake.context_length"] = info["context_length"]
                if "dimension" in info:
                    model_info["fake.embedding_length"] = info["dimension"]
                self._json(
                    200,
                    {
                        "details": {"family": "fake", "parameter_size": "1B"},
                        "model_info": model_info,
                        "capabilities": info["capabilities"],
                    },
                )

            def _pull(self, body: dict[str, Any]) -> None:
                name = body.get("model", "")
                self._start_stream("application/x-ndjson")
                self._chunk({"status": "pulling manifest"})
                if name.startswith("missing"):
                    self._chunk({"error": "pull model manifest: file does not exist"})
                    self._end_stream()
                    return
                for done in (0, 500, 1000):
                    time.sleep(server.delay_s)
                    self._chunk(
                        {
                            "status": "pulling abc123",
                            "digest": "sha256:abc123",
                            "total": 1000,
                            "completed": done,
                        }
                    )
                # Installed before "success" is sent, as in Ollama: a client that stops reading
                # at "success" and lists the models at once finds it.
                server.models.setdefault(
                    name, {"capabilities": ["completion"], "context_length": 2048}
                )
                for status in ("verifying sha256 digest", "writing manifest", "success"):
                    self._chunk({"status": status})
                self._end_stream()

            def _chat(self, body: dict[str, Any]) -> None:
                openai = self.path.startswith("/v1/")
                if server.on_request is not None:
                    server.on_request()
                if body.get("model") not in server.models:
                    message = f"model '{body.get('model')}' not found"
                    self._json(
                        404, {"error": {"message": message}} if openai else {"error": message}
                    )
                    return
                if server.fail_status is not None:
                    message = f"upstream failure ({server.fail_status})"
                    self._json(
                        server.fail_status,
                        {"error": {"message": message}} if openai else {"error": message},
                    )
                    return
                rewriting = _rewriting(body["messages"])
                if rewriting and server.rewrite_stall_s is not None:
                    self._stall(server.rewrite_stall_s)
                    return
                answer = server.rewrite if rewriting else server.reply
                reply = answer(body["messages"]) if callable(answer) else answer
                offered = body.get("tools") and server.tool_calls is not None
                calls = server.tool_calls(body["messages"]) if offered else []
                reply = "" if calls else reply
                pieces = words(reply)
                if server.whole_json or (openai and not body.get("stream")):
                    self._json(200, whole(openai, body["model"], reply, calls, server.usage))
                    return
                self._start_stream("text/event-stream" if openai else "application/x-ndjson")
                try:
                    for i, piece in enumerate(pieces):
                        if server.die_after is not None and i == server.die_after:
                            self.wfile.flush()
                            self.connection.shutdown(2)  # truncated chunked body
                            return
                        if server.error_after is not None and i == server.error_after:
                            self._chunk(
                                {"error": {"message": "model crashed"}}
                                if openai
                                else {"error": "model runner crashed"},
                                openai,
                            )
                            self._end_stream(openai)
                            return
                        if server.malformed_after is not None and i == server.malformed_after:
                            self._chunk({"message": "not an object", "choices": ["x"]}, openai)
                            continue
                        time.sleep(server.delay_s)
                        self._chunk(self._delta(body, piece, openai), openai)
                    for chunk in call_chunks(openai, body["model"], calls):
                        self._chunk(chunk, openai)
                    self._finish(body, openai, "tool_calls" if calls else "stop")
                except (BrokenPipeError, ConnectionResetError):
                    server.aborted.set()  # the client went away: exactly what some tests do

            def _delta(self, body: dict[str, Any], piece: str, openai: bool) -> dict[str, Any]:
                if openai:
                    return {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                        ],
                    }
                return {
                    "model": body["model"],
                    "created_at": "2026-11-23T00:00:00Z",
                    "message": {"role": "assistant", "content": piece},
                    "done": False,
                }

            def _finish(self, body: dict[str, Any], openai: bool, reason: str) -> None:
                prompt, completion = server.usage
                if openai:
                    self._chunk(
                        {
                            "id": "chatcmpl-fake",
                            "object": "chat.completion.chunk",
                            "created": 0,
                            "model": body["model"],
                            "choices": [{"index": 0, "delta": {}, "finish_reason": reason}],
                        },
                        openai,
                    )
                    if (body.get("stream_options") or {}).get("include_usage"):
                        self._chunk(
                            {
                                "id": "chatcmpl-fake",
                                "object": "chat.completion.chunk",
                                "created": 0,
                                "model": body["model"],
                                "choices": [],
                                "usage": {
                                    "prompt_tokens": prompt,
                                    "completion_tokens": completion,
                                    "total_tokens": prompt + completion,
                                },
                            },
                            openai,
                        )
                    self._raw_chunk(b"data: [DONE]\n\n")
                else:
                    self._chunk(
                        {
                            "model": body["model"],
                            "message": {"role": "assistant", "content": ""},
                            "done": True,
                            "done_reason": "stop",
                            "prompt_eval_count": prompt,
                            "eval_count": completion,
                        }
                    )
                self._end_stream(openai)

            def _start_stream(self, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

            def _stall(self, seconds: float) -> None:
                self._start_stream("application/x-ndjson")
                readable, _, _ = select.select([self.connection], [], [], seconds)
                try:  # the client sends nothing more: readable means it hung up
                    hung_up = bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
                except ConnectionResetError:
                    hung_up = True
                if hung_up:
                    server.aborted.set()
                self.close_connection = True

            def _chunk(self, data: dict[str, Any], sse: bool = False) -> None:
                line = json.dumps(data).encode()
                self._raw_chunk(b"data: " + line + b"\n\n" if sse else line + b"\n")

            def _raw_chunk(self, raw: bytes) -> None:
                self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
                self.wfile.flush()

            def _end_stream(self, _sse: bool = False) -> None:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                send_json(self, status, payload)

        self.url = self._listen(Handler, _QuietServer)

    def chat_requests(self) -> list[dict[str, Any]]:
        return [body for path, body in self.requests if path.endswith(("/chat", "/completions"))]
