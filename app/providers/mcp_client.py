"""A session with one MCP server over streamable HTTP (the official `mcp` SDK), for sync code.

`session(target, hooks)` opens the session (the SDK negotiates the protocol: `server/discover`
with a 2026 server, the `initialize` handshake with an older one) on an event loop of its own
(an anyio blocking portal), so a Flask request or a chat's generator calls `discover`,
`call_tool` and `get_prompt` as plain functions, one after another on the same session.

Every call is bounded: by POSTRAG_MCP_TIMEOUT_S as a whole (the time a user takes to answer a
server's question is added back), by the HTTP client's timeouts (connecting: 5 s at most), and
a tool's result by the number of characters kept for the model. The server's address must be one
the `reach` allows, checked when its name is resolved and again for the address each answer came
from. Failures are McpError (an AppError naming the server, never its credentials): unreachable
503, too slow 504, anything else 502. A tool that fails is not an error here: its result says
`is_error`, for the model to read.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import httpx2
import mcp_types as types
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import Client, MCPError
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client

from app.errors import BadGateway
from app.providers import mcp_content
from app.providers.mcp_content import Catalog, Hooks, Progress, PromptResult, Reply, ToolResult
from app.providers.mcp_http import CappedTransport, TooLarge
from app.providers.source_reach import Reach
from app.storable import cleaned

log = logging.getLogger(__name__)

T = TypeVar("T")
CONNECT_TIMEOUT_S = 5.0
MAX_EVENT_BYTES = 4 * 1024 * 1024  # one streamed message from the server
MAX_PAGES = 20  # of a tool or prompt listing
# Questions a call may ask the user; more are cancelled unasked. With the question's own timeout
# this bounds a call: its deadline waits while the user answers, at most this many times.
MAX_QUESTIONS = 3
_PATIENT_S = 7 * 24 * 3600.0  # the SDK's per-request wait while a user may be answering
_CLIENT = types.Implementation(name="postrag", version="1")


class McpError(BadGateway):
    """An MCP server failed or refused; the problem names it (`mcp_server`)."""

    def __init__(self, server: str, detail: str) -> None:
        super().__init__(f"MCP server {server}: {detail}", mcp_server=server)
        self.server = server


class McpUnavailable(McpError):
    status, title = 503, "Service unavailable"


class McpTimeout(McpError):
    status, title = 504, "Gateway timeout"


@dataclass(frozen=True)
class McpTarget:
    """Where a session goes, and as whom (`headers`: never shown, never logged)."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    reach: Reach = field(default_factory=lambda: Reach(setting="POSTRAG_MCP_HOSTS"))
    timeout_s: float = 60.0
    result_chars: int = 20_000
    response_bytes: int = 4 * 1024 * 1024  # one HTTP response's body (JSON, or an SSE stream)


class _Refused(Exception):
    """The address an answer came from is not one to reach."""


class _Denied(Exception):
    """The server refused postrag's credentials (401 or 403)."""


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups, or `exc` itself."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def translated(server: str, exc: Exception) -> Exception:
    """What the caller gets for a failure of the session with `server`."""
    leaf = _leaf(exc)
    if isinstance(leaf, McpError):
        return leaf
    if isinstance(leaf, _Refused):
        return McpError(server, f"may not be reached: {leaf}")
    if isinstance(leaf, TooLarge):
        return McpError(server, f"sent {leaf}")
    if isinstance(leaf, _Denied):
        return McpError(server, f"refused the credentials postrag sent (HTTP {leaf})")
    if isinstance(leaf, TimeoutError | httpx2.TimeoutException):
        return McpTimeout(server, "did not answer in time")
    if isinstance(leaf, httpx2.ConnectError):
        return McpUnavailable(server, "cannot be reached")
    if isinstance(leaf, httpx2.HTTPError):
        return McpUnavailable(server, f"failed ({type(leaf).__name__})")
    if isinstance(leaf, MCPError):
        return McpError(server, f"refused: {leaf.message[:500]}")
    return exc


@contextlib.contextmanager
def _translating(server: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        better = translated(server, exc)
        if better is exc:
            raise
        raise better from None  # the SDK's chain may hold request details


@contextlib.contextmanager
def session(target: McpTarget, hooks: Hooks | None = None) -> Iterator[McpSession]:
    """A session with `target`'s server, closed on leaving the block."""
    refusal = target.reach.refusal(target.url)
    if refusal is not None:
        raise McpError(target.name, f"may not be reached: {refusal}")
    with start_blocking_portal() as portal:
        live = McpSession(portal, target, hooks or Hooks())
        live.open()
        try:
            yield live
        finally:
            live.close()


class McpSession:
    """One open session; its methods run on the portal's loop, one call at a time."""

    def __init__(self, portal: BlockingPortal, target: McpTarget, hooks: Hooks) -> None:
        self._portal, self._target, self._hooks = portal, target, hooks
        self._closing = anyio.Event()
        self._deadline: anyio.CancelScope | None = None  # of the call under way
        self._asked = 0  # questions the call under way asked
        self._capped = CappedTransport(httpx2.AsyncHTTPTransport(), target.response_bytes)
        self._served: Future[None] | None = None
        self._client: Client | None = None

    def open(self) -> None:
        with _translating(self._target.name):
            self._served, self._client = self._portal.start_task(self._serve)

    def close(self) -> None:
        """End the session (the server is told); a failure to do so is only logged."""
        if self._served is None:
            return
        self._portal.call(self._closing.set)
        try:
            self._served.result(timeout=self._target.timeout_s)
        except Exception as exc:
            self._served.cancel()
            log.info("closing MCP server %s's session: %s", self._target.name, _leaf(exc))

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[Client]) -> None:
        # No read timeout: a call's own deadline bounds it (an idle stream may be a server
        # waiting for the user's answer), and the SDK bounds the handshake.
        timeout = httpx2.Timeout(self._target.timeout_s, connect=CONNECT_TIMEOUT_S, read=None)
        http = httpx2.AsyncClient(
            transport=self._capped,
            headers=dict(self._target.headers),
            timeout=timeout,
            event_hooks={"response": [self._check_peer]},
        )
        transport = streamable_http_client(
            self._target.url, http_client=http, max_sse_event_size=MAX_EVENT_BYTES
        )
        asks = self._hooks.on_question is not None
        client = Client(
            transport,
            read_timeout_seconds=self._target.timeout_s,
            elicitation_callback=self._elicit if asks else None,
            client_info=_CLIENT,
            cache=None,  # postrag keeps the catalog in Postgres
        )
        async with http, client:
            task_status.started(client)
            await self._closing.wait()

    async def _check_peer(self, response: httpx2.Response) -> None:
        refusal = self._target.reach.reached_refusal(self._target.url, response)
        if refusal is not None:
            raise _Refused(refusal)
        if response.status_code in (401, 403):
            raise _Denied(response.status_code)

    def _run(self, call: Callable[[Client], Awaitable[T]]) -> T:
        with _translating(self._target.name):
            return self._portal.call(self._bounded, call)

    async def _bounded(self, call: Callable[[Client], Awaitable[T]]) -> T:
        assert self._client is not None, "open() first"
        with anyio.CancelScope(deadline=anyio.current_time() + self._target.timeout_s) as scope:
            self._deadline, self._asked, self._capped.exceeded = scope, 0, None
            try:
                done = await call(self._client)
            finally:
                self._deadline = None
            if self._capped.exceeded is not None:  # the SDK saw only a closed connection
                raise self._capped.exceeded
            return done
        raise TimeoutError  # only a passed deadline ends the block without an answer

    def discover(self) -> Catalog:
        """The server's tools and prompts (what it does not offer is empty)."""
        return self._run(_discover)

    def call_tool(self, name: str, arguments: Mapping[str, Any]) -> ToolResult:
        """Call tool `name`; its result, or the server's refusal, as a ToolResult."""

        async def call(client: Client) -> ToolResult:
            progress = self._progress if self._hooks.on_progress is not None else None
            patience = _PATIENT_S if self._hooks.on_question is not None else None
            try:
                result = await client.call_tool(
                    name, dict(arguments), read_timeout_seconds=patience, progress_callback=progress
                )
            except MCPError as exc:
                return ToolResult(f"the server refused the call: {exc.message[:500]}", True)
            return mcp_content.tool_result(result, self._target.result_chars)

        return self._run(call)

    def get_prompt(self, name: str, arguments: Mapping[str, str]) -> PromptResult:
        """Prompt `name` filled with `arguments` (a slash command's)."""

        async def get(client: Client) -> PromptResult:
            result = await client.get_prompt(name, dict(arguments))
            return mcp_content.prompt_result(result, self._target.result_chars)

        return self._run(get)

    async def _progress(self, progress: float, total: float | None, message: str | None) -> None:
        assert self._hooks.on_progress is not None
        # Called on the loop, not in a thread: the SDK starts a task per notification, and
        # only tasks that do not wait keep the notifications' order.
        if not math.isfinite(progress):  # the SDK reads NaN and 1e999; no event can hold them
            return
        total = total if total is not None and math.isfinite(total) else None
        self._hooks.on_progress(Progress(progress, total, cleaned(message)))

    async def _elicit(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        del context  # the question says all the user needs
        assert self._hooks.on_question is not None
        if self._asked >= MAX_QUESTIONS:  # a server asking on and on would hold the answer
            log.info("MCP server %s asked past %d questions", self._target.name, MAX_QUESTIONS)
            return mcp_content.elicit_result(Reply("cancel"))
        self._asked += 1
        # The user's time is not the server's: the call's deadline waits while they answer.
        scope = self._deadline
        left = scope.deadline - anyio.current_time() if scope is not None else 0.0
        if scope is not None:
            scope.deadline = math.inf
        try:
            reply = await anyio.to_thread.run_sync(
                self._hooks.on_question, mcp_content.question(params)
            )
        finally:
            if scope is not None:
                scope.deadline = anyio.current_time() + left
        return mcp_content.elicit_result(reply)


async def _discover(client: Client) -> Catalog:
    capabilities = client.server_capabilities
    tools: list[types.Tool] = []
    prompts: list[types.Prompt] = []
    if capabilities.tools is not None:
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            if (cursor := page.next_cursor) is None:
                break
    if capabilities.prompts is not None:
        cursor = None
        for _ in range(MAX_PAGES):
            listed = await client.list_prompts(cursor=cursor)
            prompts.extend(listed.prompts)
            if (cursor := listed.next_cursor) is None:
                break
    return mcp_content.catalog(tools, prompts)
