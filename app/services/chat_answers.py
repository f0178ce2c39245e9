"""Posting a message to a chat: the exchange is stored, sources retrieved, the answer streamed.

`start` runs before any byte is sent (so its errors are plain HTTP problems): it stores the user's
message and an assistant message in state 'streaming'. `run` then yields events (retrieval,
reasoning, delta, done, error) while it saves the text every half second, so a stop request
from any process reaches it and a crash leaves the partial text. A client that goes away, a stop,
or a model that fails mid-answer leave the message 'incomplete' with what was generated; a model
that fails before its first word leaves nothing stored, so the message can simply be sent again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import ConnectionPool

from app.db import scope
from app.db.pool import DATABASE_DOWN
from app.errors import AppError, DatabaseUnavailable, NotFound, ValidationFailed
from app.providers.embeddings import QueryEmbedders
from app.providers.llm import LLMClients, LLMError
from app.repositories import Conn, Row
from app.repositories import chats as chat_repo
from app.services import answering, prompting, usage
from app.services.tokens import Principal
from app.settings import Settings

log = logging.getLogger(__name__)
SAVE_EVERY_S = 0.5
TITLE_CHARS = 80


@dataclass(frozen=True)
class Deps:
    pool: ConnectionPool[Any]
    settings: Settings
    llm: LLMClients
    embedders: QueryEmbedders
    iterative_scans: bool
    llm_usage: dict[str, int] = field(default_factory=dict)  # filled for the usage log


@dataclass(frozen=True)
class Event:
    kind: str  # retrieval | reasoning | delta | done | error
    data: dict[str, Any]


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
    started: float = field(default_factory=time.monotonic)


def stale_after_s(settings: Settings) -> float:
    """Silence after which a 'streaming' message is taken as abandoned by a crashed process."""
    return 2 * settings.llm_timeout_s + 30


def _title(content: str) -> str:
    first = " ".join(content.split())
    return first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 3].rstrip() + "..."


def start(conn: Conn, who: Principal, chat_id: int, content: str, deps: Deps) -> Exchange:
    """Store the user's message and the assistant's placeholder (404, 409, 422 or 5xx first)."""
    if chat_repo.get_owned(conn, chat_id, who.user_id) is None:
        raise NotFound(f"no chat {chat_id}")
    prefs = answering.preferences(conn, who.user_id)
    target = answering.resolve_target(conn, deps.llm, prefs)
    if target.provider != "extractive":
        usage.check_llm_budget(conn, who.user_id, deps.settings.llm_tokens_per_day)
    room = (target.context_length - _answer_tokens(deps, target)) * prompting.SAFETY_MARGIN
    if prompting.count_tokens(content) > room * 0.8:
        raise ValidationFailed(
            f"the message is too long for {target.model}'s context",
            errors=[{"loc": ["body", "content"], "msg": "too long", "type": "too_long"}],
        )
    with conn.transaction():
        chat = chat_repo.get_owned(conn, chat_id, who.user_id, lock=True)  # one post at a time
        if chat is None:
            raise NotFound(f"no chat {chat_id}")
        chat_repo.close_abandoned(conn, chat_id, stale_after_s(deps.settings))
        user = chat_repo.insert_message(conn, chat_id, "user", content)
        assistant = chat_repo.insert_message(
            conn, chat_id, "assistant", "", status="streaming", model=target.model
        )  # a second answer in the making violates chat_messages_one_streaming_idx: 409
        chat_repo.touch(conn, chat_id, _title(content))
        history = chat_repo.history(conn, chat_id, user["id"])
    return Exchange(
        who,
        chat,
        content,
        user["id"],
        assistant["id"],
        target,
        prefs,
        prompting.alternating([{"role": r["role"], "content": r["content"]} for r in history]),
    )


def _answer_tokens(deps: Deps, target: answering.ChatTarget) -> int:
    return min(deps.settings.chat_answer_tokens, target.context_length // 4)


def _source_event(sources: list[dict[str, Any]], warnings: list[str], mode: str) -> Event:
    items = [
        {**c, "text": s["text"], "heading_path": s["heading_path"]}
        for c, s in zip(prompting.citations(sources, ""), sources, strict=True)
    ]
    for item in items:
        item.pop("cited")
    return Event("retrieval", {"mode": mode, "sources": items, "warnings": warnings})


def problem_data(exc: AppError | LLMError) -> dict[str, Any]:
    data = {"type": "about:blank", "title": exc.title, "status": exc.status, "detail": exc.detail}
    if isinstance(exc, LLMError):
        data["provider"] = exc.provider
    else:
        data.update(exc.extra)  # e.g. the `errors` of a 422
    return data


class _Answer:
    """The text so far and how the exchange is saved and closed."""

    def __init__(self, ex: Exchange, deps: Deps):
        self.ex, self.deps = ex, deps
        self.splitter = prompting.ThinkSplitter()
        self.text = self.reasoning = ""
        self.sources: list[dict[str, Any]] = []
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.timings: dict[str, float] = {}
        self.last_save = time.monotonic()
        self.finished = False

    def take(self, text: str, reasoning: str) -> list[Event]:
        answer, thought = self.splitter.feed(text)
        thought = reasoning + thought
        self.text += answer
        self.reasoning += thought
        events = [Event("reasoning", {"text": thought})] if thought else []
        return events + ([Event("delta", {"text": answer})] if answer else [])

    def save_due(self) -> bool:
        """Save the text if it is time; True when a stop was requested."""
        if time.monotonic() - self.last_save < SAVE_EVERY_S:
            return False
        self.last_save = time.monotonic()
        with scope.user_connection(self.deps.pool, self.ex.who.user_id) as conn, conn.transaction():
            stop = chat_repo.save_progress(conn, self.ex.assistant_id, self.text, self.reasoning)
        return stop is None or stop  # None: the chat was deleted meanwhile

    def finish(self, status: str, finish_reason: str, error: str | None = None) -> Row | None:
        """Store the end of the answer, once (a reader leaving after `done` changes nothing)."""
        if self.finished:
            return None
        self.finished = True
        answer, thought = self.splitter.flush()
        self.text += answer
        self.reasoning += thought
        if not self.reasoning:  # templates that open <think> in the prompt: only </think> shows
            self.text, self.reasoning = prompting.unopened_reasoning(self.text)
        total_ms = (time.monotonic() - self.ex.started) * 1000
        self.timings["total_ms"] = round(total_ms, 1)
        completion = self.completion_tokens
        if completion is None:
            completion = prompting.count_tokens(self.text + self.reasoning)
        self._account(self.prompt_tokens or 0, completion)
        with scope.user_connection(self.deps.pool, self.ex.who.user_id) as conn, conn.transaction():
            return chat_repo.finish_message(
                conn,
                self.ex.assistant_id,
                status=status,
                finish_reason=finish_reason,
                content=self.text,
                reasoning=self.reasoning,
                prompt_tokens=self.prompt_tokens,
                completion_tokens=completion,
                latency_ms=int(total_ms),
                citations=prompting.citations(self.sources, self.text),
                error=error,
            )

    def _account(self, prompt: int, completion: int) -> None:
        """Report the tokens to the usage log and, for real models, the daily budget."""
        self.deps.llm_usage.update(prompt_tokens=prompt, completion_tokens=completion)
        if self.ex.target.provider != "extractive":
            usage.add_llm_tokens(self.deps.pool, self.ex.who.user_id, prompt + completion)

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


def run(ex: Exchange, deps: Deps) -> Iterator[Event]:
    """The answer's events; always ends with `done` or `error` unless the consumer leaves."""
    answer = _Answer(ex, deps)
    try:
        yield from _generate(ex, deps, answer)
    except GeneratorExit:  # the client went away: keep what was generated
        _cleanly(answer.finish, "incomplete", "disconnected", "the client disconnected")
        raise
    except (AppError, LLMError) as exc:
        yield _failed(answer, exc.detail, problem_data(exc))
    except DATABASE_DOWN as exc:  # a 503 the client may retry, not a 500
        log.error("chat %s: answer %s lost the database: %s", ex.chat["id"], ex.assistant_id, exc)
        down = DatabaseUnavailable()
        yield _failed(answer, down.detail, problem_data(down))
    except Exception:
        log.exception("chat %s: answer %s failed", ex.chat["id"], ex.assistant_id)
        detail = "an unexpected error occurred; it was logged"
        yield _failed(
            answer,
            detail,
            {
                "type": "about:blank",
                "title": "Internal server error",
                "status": 500,
                "detail": detail,
            },
        )


def _failed(answer: _Answer, detail: str, problem: dict[str, Any]) -> Event:
    if answer.text or answer.reasoning:
        if _cleanly(answer.finish, "incomplete", "error", detail):
            problem["message_id"] = answer.ex.assistant_id
    else:
        _cleanly(answer.discard)
    return Event("error", problem)


def _cleanly(cleanup: Any, *args: Any) -> bool:
    """Run a cleanup that must not hide the error being reported (the database may be the cause).

    What it fails to close is closed as abandoned later (see `stale_after_s`).
    """
    try:
        cleanup(*args)
    except Exception:
        log.exception("could not store the end of an answer")
        return False
    return True


def _generate(ex: Exchange, deps: Deps, answer: _Answer) -> Iterator[Event]:
    t0 = time.monotonic()
    with scope.user_connection(deps.pool, ex.who.user_id) as conn:
        found = answering.retrieve(
            conn,
            ex.who,
            ex.question,
            collection_ids=ex.chat["collection_ids"],
            prefs=ex.prefs,
            settings=deps.settings,
            embedders=deps.embedders,
            iterative_scans=deps.iterative_scans,
        )
    answer.timings["retrieval_ms"] = round((time.monotonic() - t0) * 1000, 1)
    prompt = prompting.build_prompt(
        system_prompt=ex.prefs.system_prompt,
        sources=found.sources,
        history=ex.history,
        question=ex.question,
        context_tokens=ex.target.context_length,
        answer_tokens=_answer_tokens(deps, ex.target),
    )
    answer.sources = prompt.sources
    answer.prompt_tokens = prompt.estimated_tokens
    yield _source_event(prompt.sources, found.warnings, found.mode)
    t1 = time.monotonic()
    pieces = answering.generate(
        deps.llm,
        ex.target,
        prompt,
        temperature=ex.prefs.temperature,
        max_tokens=_answer_tokens(deps, ex.target),
    )
    try:
        for piece in pieces:
            if piece.done:
                answer.prompt_tokens = piece.prompt_tokens or answer.prompt_tokens
                answer.completion_tokens = piece.completion_tokens
                answer.timings["generation_ms"] = round((time.monotonic() - t1) * 1000, 1)
                reason = piece.finish_reason or "stop"
                row = answer.finish("complete", reason)
                yield answer.done_event(row, "complete", reason)
                return
            if "first_token_ms" not in answer.timings:
                answer.timings["first_token_ms"] = round((time.monotonic() - t1) * 1000, 1)
            yield from answer.take(piece.text, piece.reasoning)
            if answer.save_due():
                break
    finally:
        pieces.close()  # closes the upstream connection when we stop early
    answer.timings["generation_ms"] = round((time.monotonic() - t1) * 1000, 1)
    row = answer.finish("incomplete", "stopped", "stopped by the user")
    yield answer.done_event(row, "incomplete", "stopped")
