"""An in-process MCP server built with the official SDK (MCPServer), served over streamable HTTP
on 127.0.0.1 by uvicorn in a thread.

Tools: `add` (a plain one), `fail` (raises a ToolError), `ask` (asks the user for a colour:
elicitation), `nag` (asks four times), `odd` (asks with a form outside MCP's
subset), `count` (reports progress at each step), `wait`
(answers late), `big` (a long text); prompt `summarise` (topic). Every HTTP request's headers
are recorded in `headers`; with `required` set to (header, value), requests without that header
get 401, as a server checking its credentials. `rewrite` (bytes to bytes) edits what the server
sends, for JSON the SDK would not write (NaN): keep each edit within one body message (an SSE
event, or a whole answer).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any

import anyio
import uvicorn
from mcp.server.mcpserver import (
    Context,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
)
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Colour(BaseModel):
    colour: str


class Code(BaseModel):
    code: str = Field(pattern=r"^(a+)+$")  # a form outside MCP's flat subset


def _ask_code() -> Elicit[Code]:
    return Elicit("Which code?", Code)


def _ask_colour() -> Elicit[Colour]:
    return Elicit("Which colour should the ticket be?", Colour)


def _asked(n: int) -> Any:
    """A parameter filled by asking for colour number n (resolvers are run once each)."""
    return Annotated[
        ElicitationResult[Colour], Resolve(lambda: Elicit(f"Colour number {n}?", Colour))
    ]


def build_server() -> MCPServer:
    server = MCPServer("fake-tools", log_level="WARNING")

    @server.tool()
    def add(a: int, b: int) -> str:
        """Add two whole numbers."""
        return str(a + b)

    @server.tool()
    def fail(reason: str = "the ticket system is down") -> str:
        """A tool that always fails."""
        raise ToolError(reason)

    @server.tool()
    def ask(answer: Annotated[ElicitationResult[Colour], Resolve(_ask_colour)]) -> str:
        """Ask the user which colour to use."""
        if answer.action == "accept":
            return f"the colour is {answer.data.colour}"
        return f"the user chose to {answer.action}"

    @server.tool()
    def nag(a1: _asked(1), a2: _asked(2), a3: _asked(3), a4: _asked(4)) -> str:
        """Ask 4 times."""
        return ",".join(a.action for a in (a1, a2, a3, a4))

    @server.tool()
    def odd(answer: Annotated[ElicitationResult[Code], Resolve(_ask_code)]) -> str:
        """Ask for a code."""
        return f"the user chose to {answer.action}"

    @server.tool()
    async def count(steps: int, ctx: Context) -> str:
        """Count to `steps`, reporting progress."""
        note = " " + "é" * 2000 if steps > 100 else ""  # a flood comes with long messages
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step}{note}")
        return f"counted to {steps}"

    @server.tool()
    async def wait(seconds: float) -> str:
        """Answer after `seconds`."""
        await anyio.sleep(seconds)
        return "waited"

    @server.tool()
    def big(size: int) -> str:
        """A text of `size` characters."""
        return "x" * size

    @server.prompt()
    def summarise(topic: str) -> str:
        """Summarise a topic."""
        return f"Please summarise what we know about {topic}."

    return server


class FakeMcpServer:
    """The server on a free loopback port; `url` is its MCP endpoint."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.required: tuple[str, str] | None = None
        self.on_request: Callable[[], None] | None = None  # run (in the server) on each request
        self.rewrite: dict[bytes, bytes] = {}
        self._inner = build_server().streamable_http_app()
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/mcp"
        config = uvicorn.Config(self._app, log_level="warning", lifespan="on", interface="asgi3")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.headers.append(headers)
            if self.on_request is not None:
                self.on_request()
            if self.required is not None:
                name, value = self.required
                if headers.get(name.lower()) != value:
                    await _unauthorized(send)
                    return
        await self._inner(scope, receive, self._rewritten(send))

    def _rewritten(self, send: Send) -> Send:
        """`send` with `rewrite` applied to each body (a whole answer's length set anew)."""
        held: list[MutableMapping[str, Any]] = []  # the start, until the length is known

        async def rewritten(message: MutableMapping[str, Any]) -> None:
            if not self.rewrite:
                await send(message)
            elif message["type"] == "http.response.start":
                held.append(message)
            else:
                body = message.get("body", b"")
                for old, new in self.rewrite.items():
                    body = body.replace(old, new)
                if held:
                    start = held.pop()
                    length = str(len(body)).encode()
                    headers = [
                        (k, length if k == b"content-length" else v) for k, v in start["headers"]
                    ]
                    await send({**start, "headers": headers})
                await send({**message, "body": body})

        return rewritten

    def __enter__(self) -> FakeMcpServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake MCP server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()

    def seen(self, header: str) -> list[str]:
        """The values of `header` the requests carried."""
        return [h[header.lower()] for h in self.headers if header.lower() in h]


async def _unauthorized(send: Send) -> None:
    body = b'{"error": "invalid_token"}'
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
        }
    )
    await send({"type": "http.response.body", "body": body})
