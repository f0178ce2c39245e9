"""The calls a chat's model asks for, made on MCP servers as the chat's user, as events.

Each call is announced (`tool_call`), made in a thread of its own while the answer's generator
passes on what the call reports meanwhile (`progress`, and a server's `question` with its
`question_closed`), and ends with its `tool_result`; a tool that fails, a server that is down or
refuses, an unknown tool, or a call past the answer's time for tools is a result marked
`is_error`, for the model (and the user) to read, never an exception; so are arguments the model
wrote that are not a JSON object (it may retry). While a call runs the answer saves its text
every KEEPALIVE_S (so it is not taken as abandoned, and a stop reaches it: then the call is left
to end on its own and its result is "stopped").
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

from app.db import scope
from app.errors import AppError
from app.providers import mcp_client
from app.providers.llm import ToolCall
from app.providers.mcp_content import Hooks, Progress, Question, Reply, ToolResult
from app.services import chat_questions, mcp_tools
from app.services.chat_exchange import Answer, Deps, Event, Exchange
from app.services.chat_toolbox import ToolRef

log = logging.getLogger(__name__)
KEEPALIVE_S = 2.0
MAX_PROGRESS = 50  # progress events stored per call
PROGRESS_MESSAGE_CHARS = 500


def calls(
    ex: Exchange, deps: Deps, answer: Answer, asked: tuple[ToolCall, ...], deadline: float
) -> Iterator[Event]:
    """Make the calls `asked` in order; each one's record goes to `answer.tool_calls`."""
    for call in asked:
        ref = ex.toolbox.refs.get(call.name)
        server, tool = (ref.server, ref.tool) if ref else (None, call.name)
        head = {"id": call.id, "server": server, "tool": tool}
        yield Event("tool_call", {**head, "arguments": call.arguments})
        if ref is None:
            result = ToolResult(f"there is no tool named {call.name!r}", True)
        elif call.error is not None:
            result = ToolResult(f"not called: {call.error}", True)
        elif answer.stopped:
            result = ToolResult("not called: the answer was stopped", True)
        elif time.monotonic() > deadline:
            result = ToolResult("not called: the answer's time for tools is up", True)
        else:
            result = yield from _made(ex, deps, answer, ref, call, deadline)
        outcome = {"text": result.text, "is_error": result.is_error, "truncated": result.truncated}
        answer.tool_calls.append({**head, "arguments": call.arguments, **outcome})
        yield Event("tool_result", {**head, **outcome})


def _made(
    ex: Exchange, deps: Deps, answer: Answer, ref: ToolRef, call: ToolCall, deadline: float
) -> Generator[Event, None, ToolResult]:
    """The call's result, made in a thread; what it reports meanwhile as events. A call still
    running when the answer's time for tools is up is left to end on its own, as on a stop."""
    reported: queue.Queue[Event | ToolResult | None] = queue.Queue()  # None: see `latest`
    cancelled = threading.Event()
    latest = _Latest({"id": call.id, "server": ref.server, "tool": ref.tool})

    def emit(kind: str, data: dict[str, Any]) -> None:
        reported.put(Event(kind, data))

    def progress(p: Progress) -> None:
        if latest.offer(p):
            reported.put(None)

    def work() -> None:
        reported.put(_call(ex, deps, ref, call, progress, emit, cancelled))

    worker = threading.Thread(target=work, name=f"answer-{ex.assistant_id}-tool", daemon=True)
    worker.start()
    while True:
        try:
            item: Event | ToolResult | None = reported.get(timeout=KEEPALIVE_S)
        except queue.Empty:
            item = None
        if isinstance(item, ToolResult):
            return item
        if item is None:
            item = latest.take()
        if item is not None:
            yield item
        due = time.monotonic() - answer.last_save >= KEEPALIVE_S
        if deps.stopping.is_set() or (due and answer.save()):
            answer.stopped = True
            cancelled.set()  # a question being waited for is expired: the call ends soon
            ex.left_calls.append(worker)
            return ToolResult("stopped before the tool answered", True)
        if time.monotonic() > deadline:
            cancelled.set()
            ex.left_calls.append(worker)
            return ToolResult("the answer's time for tools ran out while the tool ran", True)


class _Latest:
    """A call's progress not passed on yet: notifications that come faster than the answer
    passes them on collapse into the latest, at most MAX_PROGRESS of a call are passed on (each
    one a stored event), and a message is cut at PROGRESS_MESSAGE_CHARS."""

    def __init__(self, head: dict[str, Any]) -> None:
        self._head, self._lock = head, threading.Lock()
        self._waiting: Progress | None = None
        self._passed = 0

    def offer(self, p: Progress) -> bool:
        """Keep `p`; True if nothing was waiting (then the answer is to be told)."""
        with self._lock:
            told, self._waiting = self._waiting is not None, p
            return not told

    def take(self) -> Event | None:
        with self._lock:
            p, self._waiting = self._waiting, None
            if p is None or self._passed >= MAX_PROGRESS:
                return None
            self._passed += 1
        message = p.message[:PROGRESS_MESSAGE_CHARS] if p.message is not None else None
        data = {"progress": p.progress, "total": p.total, "message": message}
        return Event("progress", {**self._head, **data})


def _call(
    ex: Exchange,
    deps: Deps,
    ref: ToolRef,
    call: ToolCall,
    progress: Callable[[Progress], None],
    emit: Callable[[str, dict[str, Any]], None],
    cancelled: threading.Event,
) -> ToolResult:
    """Call the tool as the chat's user (its progress to `progress`, its questions asked of
    the user); every failure becomes an error result."""

    def question(q: Question) -> Reply:
        return chat_questions.ask(_asking(ex, deps, cancelled), ref.server, ref.tool, q, emit)

    assert deps.mcp is not None, "a chat with tools needs the MCP dependencies"
    try:
        with scope.user_connection(deps.pool, ex.who.user_id) as conn:
            caller = ex.caller or mcp_tools.Caller(ex.who.user_id)
            reached = mcp_tools.target(conn, deps.mcp, caller, ref.server_id)
        with mcp_client.session(reached, Hooks(progress, question)) as session:
            return session.call_tool(ref.tool, call.arguments)
    except AppError as exc:  # down, too slow, refused, no credentials
        return ToolResult(f"the tool could not be called: {exc.detail}", True)
    except Exception:
        log.exception("calling %s on MCP server %s failed", ref.tool, ref.server)
        return ToolResult("the tool could not be called: an unexpected error", True)


def _asking(ex: Exchange, deps: Deps, cancelled: threading.Event) -> chat_questions.Asking:
    assert deps.listener is not None, "a chat with tools needs the listener"
    return chat_questions.Asking(
        deps.pool,
        deps.listener,
        ex.who.user_id,
        ex.chat["id"],
        ex.assistant_id,
        deps.settings.chat_question_timeout_s,
        cancelled,
    )
