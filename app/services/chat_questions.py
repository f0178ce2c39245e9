"""Questions an MCP server asks the user while a chat's tool runs (elicitation).

The answer's thread stores the question (pending, with the time it may wait:
POSTRAG_CHAT_QUESTION_TIMEOUT_S), tells the stream (`question`), and waits for the reply; the
user answers through POST /api/v1/chats/{chat}/questions/{id} on any app process, whose NOTIFY
wakes the waiting thread (which also reads the row every POLL_S, so a lost notification only
delays it). Nobody answering in time, or the answer being stopped, expires the question and the
tool is told the user cancelled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import jsonschema
from psycopg_pool import ConnectionPool

from app.db import scope
from app.db.listener import Listener
from app.errors import Conflict, NotFound, ValidationFailed
from app.providers import mcp_content
from app.providers.mcp_content import Question, Reply
from app.repositories import Conn, Row
from app.repositories import chat_questions as question_repo
from app.services import chats
from app.services.tokens import Principal

log = logging.getLogger(__name__)
POLL_S = 2.0  # the waiting thread reads the question this often even without a notification


@dataclass(frozen=True)
class Asking:
    """Where a question comes from and how its answer is waited for."""

    pool: ConnectionPool[Any]
    listener: Listener
    user_id: int
    chat_id: int
    message_id: int
    timeout_s: float
    cancelled: threading.Event  # set when the answer is stopped: stop waiting


def public(row: Row) -> dict[str, Any]:
    """A question as the API and the stream show it."""
    return {
        "id": row["id"],
        "message_id": row["message_id"],
        "server": row["server"],
        "tool": row["tool"],
        "message": row["question"],
        "requested_schema": row["requested_schema"],
        "url": row["url"],
        "state": row["state"],
        "answer": row["answer"],
        "expires_at": row["expires_at"].isoformat(),
    }


def ask(
    asking: Asking, server: str, tool: str, question: Question, emit: Callable[[str, Any], None]
) -> Reply:
    """Store `question`, announce it (`question`), wait for the user's reply and announce its
    end (`question_closed`); cancel when nobody answered in time or the answer was stopped,
    or when the question is not one postrag puts to users (then it is only logged)."""
    why = mcp_content.unreadable(question)
    if why is not None:
        log.warning("a question of %s's %s was cancelled unasked: %s", server, tool, why)
        return Reply("cancel")
    values = {
        "chat_id": asking.chat_id,
        "message_id": asking.message_id,
        "server": server,
        "tool": tool,
        "question": question.message[:10_000],
        "requested_schema": question.schema,
        "url": question.url,
    }
    with scope.user_connection(asking.pool, asking.user_id) as conn, conn.transaction():
        row = question_repo.insert(conn, values, asking.timeout_s)
    emit("question", public(row))
    answered = _wait(asking, row["id"], time.monotonic() + asking.timeout_s)
    if answered is None:
        with scope.user_connection(asking.pool, asking.user_id) as conn, conn.transaction():
            # None: answered just now, or the chat is gone
            answered = question_repo.expire(conn, row["id"]) or question_repo.get(
                conn, asking.chat_id, row["id"]
            )
    if answered is None:
        return Reply("cancel")
    emit("question_closed", {"id": row["id"], "state": answered["state"]})
    reply = answered["answer"] or {"action": "cancel"}
    return Reply(reply["action"], reply.get("content"))


def _wait(asking: Asking, question_id: int, deadline: float) -> Row | None:
    """The question once answered, or None when time ran out or the answer was stopped."""
    with asking.listener.watch(question_repo.wake_key(question_id)) as woken:
        while True:
            woken.clear()  # before reading: a NOTIFY from now on ends the wait below
            with scope.user_connection(asking.pool, asking.user_id) as conn:
                row = question_repo.get(conn, asking.chat_id, question_id)
            if row is None or row["state"] != "pending":
                return row
            left = deadline - time.monotonic()
            if left <= 0 or asking.cancelled.is_set():
                return None
            woken.wait(min(POLL_S, left))


def pending(conn: Conn, chat_id: int) -> list[dict[str, Any]]:
    return [public(r) for r in question_repo.pending(conn, chat_id)]


def answer(
    conn: Conn,
    who: Principal,
    ids: tuple[int, int],
    action: str,
    content: dict[str, Any] | None,
) -> dict[str, Any]:
    """The user's reply to question `ids` (chat, question): 404 unless it is theirs, 409 once
    it is answered or expired, 422 for accepted content its requested schema refuses."""
    chat_id, question_id = ids
    with conn.transaction():
        chats.get_owned(conn, who, chat_id)
        row = question_repo.get(conn, chat_id, question_id, lock=True)
        if row is None:
            raise NotFound(f"no question {question_id} in chat {chat_id}")
        if not row["live"]:
            state = "expired" if row["state"] == "pending" else row["state"]
            raise Conflict(f"question {question_id} is {state} already")
        reply: dict[str, Any] = {"action": action}
        if action == "accept":
            reply["content"] = _checked(row, content or {})
        state = "answered" if action == "accept" else "declined"
        return public(question_repo.answer(conn, question_id, state, reply))


def _checked(row: Row, content: dict[str, Any]) -> dict[str, Any]:
    """`content` if the question's requested schema takes it (a page to open takes none)."""
    schema = cast(dict[str, Any], row["requested_schema"]) or {"type": "object", "maxProperties": 0}
    if row["requested_schema"] and mcp_content.unreadable(Question("", schema)) is not None:
        return content  # a form outside MCP's subset (stored before it was refused): unchecked
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError:
        return content  # a server's schema postrag cannot read: the server checks the reply
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(content))
    if error is not None:
        where = tuple(str(p) for p in error.absolute_path)
        raise ValidationFailed.on_field(
            "content",
            error.message[:500],
            type="value_error",
            at=where,
            detail=f"content: {error.message[:500]}",
        )
    return content
