"""One answer in the making: the stored exchange, its text so far, how it is saved, closed and
accounted (for app/services/chat_answers.py).

An answer counts as closed only once its closing write is stored: a failed write (the database
may be the cause) leaves it open for the error path to close as `incomplete`; the tokens it
held are settled once, by the first try.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import ConnectionPool

from app.db import scope
from app.db.listener import Listener
from app.errors import AppError
from app.providers.llm import LLMClients, Piece
from app.repositories import Row
from app.repositories import chats as chat_repo
from app.repositories.search import Hit
from app.services import answering, prompting, usage
from app.services.chat_toolbox import EMPTY, Toolbox
from app.services.mcp_tools import Caller, McpDeps
from app.services.search import SearchDeps
from app.services.tokens import Principal
from app.settings import Settings

SAVE_EVERY_S = 0.5


@dataclass(frozen=True)
class Deps:
    pool: ConnectionPool[Any]
    settings: Settings
    llm: LLMClients
    search: SearchDeps
    llm_usage: dict[str, int] = field(default_factory=dict)  # filled for the usage log
    stopping: threading.Event = field(default_factory=threading.Event)  # the process ends
    mcp: McpDeps | None = None  # calls to MCP servers (chats with tools)
    listener: Listener | None = None  # wakes an answer waiting for the user's reply


def answer_tokens(deps: Deps, target: answering.ChatTarget) -> int:
    """The longest answer: the setting, at most a quarter of a small context."""
    return min(deps.settings.chat_answer_tokens, target.context_length // 4)


@dataclass(frozen=True)
class Event:
    # retrieval | reasoning | delta | tool_call | progress | question | question_closed |
    # tool_result | done | error
    kind: str
    data: dict[str, Any]
    error: AppError | None = None  # of an `error` event: the API renders it as any problem


@dataclass
class Exchange:
    who: Principal
    chat: Row
    question: str
    user_message_id: int
    assistant_id: int
    target: answering.ChatTarget
    prefs: answering.Preferences
    history: list[dict[str, str]]
    hold: usage.LLMTokenHold | None  # None for extractive answers: they are free
    toolbox: Toolbox = EMPTY  # the MCP tools offered to the model
    caller: Caller | None = None  # as whom MCP servers are called (with the request's JWT)
    options: answering.RetrievalOptions = answering.NO_OPTIONS  # the message's own
    started: float = field(default_factory=time.monotonic)
    # MCP calls left running by a stop or the time for tools: the answer's room is held until
    # they end (app/services/answer_runs.py), so stopping them does not let them pile up.
    left_calls: list[threading.Thread] = field(default_factory=list)


class Answer:
    """The text so far and how the exchange is saved and closed."""

    def __init__(self, ex: Exchange, deps: Deps):
        self.ex, self.deps = ex, deps
        self.splitter = prompting.ThinkSplitter()
        self.text = self.reasoning = ""
        self.sources: list[Hit] = []
        self.search_query: str | None = None  # what the sources were searched with
        self.rewrite_tokens = (0, 0)  # prompt and completion of the follow-up's rewrite
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self._spent = (0, 0)  # prompt and completion tokens of the rounds before (tool calls)
        self.timings: dict[str, float] = {}
        self.tool_calls: list[dict[str, Any]] = []  # each call made and its result
        self.stopped = False  # a stop was seen while a tool ran: no more calls
        self.last_save = time.monotonic()
        self.text_closed = self.finished = False

    def take(self, text: str, reasoning: str) -> list[Event]:
        answer, thought = self.splitter.feed(text)
        thought = reasoning + thought
        self.text += answer
        self.reasoning += thought
        events = [Event("reasoning", {"text": thought})] if thought else []
        return events + ([Event("delta", {"text": answer})] if answer else [])

    def count(self, piece: Piece) -> None:
        """Take the tokens of a reply's last piece: a round of tool calls is a reply of its own,
        and the answer's tokens are those of all its rounds."""
        if piece.prompt_tokens:
            self.prompt_tokens = self._spent[0] + piece.prompt_tokens
        if piece.completion_tokens is not None:
            self.completion_tokens = self._spent[1] + piece.completion_tokens
        self._spent = (self.prompt_tokens or 0, self.completion_tokens or 0)

    def save_due(self) -> bool:
        """Save the text if it is time; True when a stop was requested."""
        if time.monotonic() - self.last_save < SAVE_EVERY_S:
            return False
        return self.save()

    def save(self) -> bool:
        """Save the text (which also shows the answer is alive); True when a stop was
        requested."""
        self.last_save = time.monotonic()
        with scope.user_connection(self.deps.pool, self.ex.who.user_id) as conn, conn.transaction():
            stop = chat_repo.save_progress(conn, self.ex.assistant_id, self.text, self.reasoning)
        return stop is None or stop  # None: the chat was deleted meanwhile

    def finish(self, status: str, finish_reason: str, error: str | None = None) -> Row | None:
        """Store the end of the answer: the closed row, or None when the message is gone.

        Once stored, later calls do nothing (a reader leaving after `done` changes nothing); a
        failed write leaves it to be tried again, e.g. as `incomplete` by the error path.
        """
        if self.finished:
            return None
        completion = self._close_text()
        self._account(self.prompt_tokens or 0, completion)
        with scope.user_connection(self.deps.pool, self.ex.who.user_id) as conn, conn.transaction():
            row = chat_repo.finish_message(
                conn,
                self.ex.assistant_id,
                status=status,
                finish_reason=finish_reason,
                content=self.text,
                reasoning=self.reasoning,
                prompt_tokens=self.prompt_tokens,
                completion_tokens=completion,
                latency_ms=int(self.timings["total_ms"]),
                citations=[c.as_json() for c in prompting.citations(self.sources, self.text)],
                tool_calls=self.tool_calls,
                error=error,
                search_query=self.search_query,
            )
        self.finished = True
        return row

    def _close_text(self) -> int:
        """Take the text the splitter still holds (once); the completion's tokens."""
        if not self.text_closed:
            self.text_closed = True
            answer, thought = self.splitter.flush()
            self.text += answer
            self.reasoning += thought
            if not self.reasoning:  # templates that open <think> in the prompt: only </think>
                self.text, self.reasoning = prompting.unopened_reasoning(self.text)
            total_ms = (time.monotonic() - self.ex.started) * 1000
            self.timings["total_ms"] = round(total_ms, 1)
        if self.completion_tokens is not None:
            return self.completion_tokens
        return prompting.count_tokens(self.text + self.reasoning)

    def _account(self, prompt: int, completion: int) -> None:
        """Report the tokens to the usage log and, for real models, the daily budget (with
        those the follow-up's rewrite took, which the message's own counts leave out)."""
        prompt, completion = prompt + self.rewrite_tokens[0], completion + self.rewrite_tokens[1]
        self.deps.llm_usage.update(prompt_tokens=prompt, completion_tokens=completion)
        if self.ex.hold is not None:
            usage.settle_llm_tokens(self.deps.pool, self.ex.hold, prompt + completion)

    def discard(self) -> None:
        """Remove the exchange (nothing was generated): the message can be sent again."""
        with scope.user_connection(self.deps.pool, self.ex.who.user_id) as conn, conn.transaction():
            chat_repo.delete_messages(conn, [self.ex.user_message_id, self.ex.assistant_id])

    def done_event(self, row: Row | None, status: str, finish_reason: str) -> Event:
        return Event(
            "done",
            {
                "message_id": self.ex.assistant_id,
                "status": status,
                "finish_reason": finish_reason,
                "model": self.ex.target.model,
                "usage": {
                    "prompt_tokens": row["prompt_tokens"] if row else self.prompt_tokens,
                    "completion_tokens": row["completion_tokens"] if row else None,
                },
                "citations": row["citations"] if row else [],
                "timings_ms": self.timings,
            },
        )
