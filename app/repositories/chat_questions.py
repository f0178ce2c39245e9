"""SQL for the questions MCP servers ask a chat's user while a tool runs (sql/migrations/V2_18),
and the NOTIFY that wakes the answer waiting for the reply."""

from __future__ import annotations

from typing import Any

from app.repositories import Conn, Row, returned
from app.repositories.chat_events import CHANNEL
from app.strict_json import jsonb

QUESTION = (
    "id, chat_id, message_id, server, tool, question, requested_schema, url, state, answer,"
    " expires_at, answered_at, created_at"
)
# A question past its time is expired, whether or not its answer's process could say so.
_LIVE = "state = 'pending' AND expires_at > now()"


def wake_key(question_id: int) -> str:
    """What the NOTIFY on the chat events' channel says when a question is answered."""
    return f"question:{question_id}"


def insert(conn: Conn, values: dict[str, Any], expires_in_s: float) -> Row:
    """A pending question (chat_id, message_id, server, tool, question, requested_schema, url)."""
    return returned(
        conn.execute(
            "INSERT INTO chat_questions (chat_id, message_id, server, tool, question,"
            " requested_schema, url, expires_at) VALUES (%(chat_id)s, %(message_id)s,"
            " %(server)s, %(tool)s, %(question)s, %(requested_schema)s, %(url)s,"
            f" now() + make_interval(secs => %(expires_in_s)s)) RETURNING {QUESTION}",
            {
                **values,
                "requested_schema": jsonb(values["requested_schema"]),
                "expires_in_s": expires_in_s,
            },
        ).fetchone()
    )


def get(conn: Conn, chat_id: int, question_id: int, *, lock: bool = False) -> Row | None:
    """A question of the chat, with `live`: pending and not yet past its time."""
    return conn.execute(
        f"SELECT {QUESTION}, ({_LIVE}) AS live FROM chat_questions"
        " WHERE id = %(id)s AND chat_id = %(chat_id)s" + (" FOR UPDATE" if lock else ""),
        {"id": question_id, "chat_id": chat_id},
    ).fetchone()


def pending(conn: Conn, chat_id: int) -> list[Row]:
    """The chat's questions still waiting for the user, oldest first."""
    return conn.execute(
        f"SELECT {QUESTION} FROM chat_questions WHERE chat_id = %(chat_id)s AND {_LIVE}"
        " ORDER BY id",
        {"chat_id": chat_id},
    ).fetchall()


def answer(conn: Conn, question_id: int, state: str, reply: dict[str, Any]) -> Row:
    """Store the user's reply and wake the answer waiting for it (at commit)."""
    row = returned(
        conn.execute(
            "UPDATE chat_questions SET state = %(state)s, answer = %(answer)s,"
            f" answered_at = now() WHERE id = %(id)s RETURNING {QUESTION}",
            {"id": question_id, "state": state, "answer": jsonb(reply)},
        ).fetchone()
    )
    conn.execute(
        "SELECT pg_notify(%(channel)s, %(key)s)",
        {"channel": CHANNEL, "key": wake_key(question_id)},
    )
    return row


def expire(conn: Conn, question_id: int) -> Row | None:
    """Close a question nobody answered in time; None when it was answered meanwhile."""
    return conn.execute(
        "UPDATE chat_questions SET state = 'expired'"
        f" WHERE id = %(id)s AND state = 'pending' RETURNING {QUESTION}",
        {"id": question_id},
    ).fetchone()


def prune(conn: Conn, keep_hours: int) -> int:
    """Delete the questions that could be answered no more over `keep_hours` ago."""
    return conn.execute(
        "DELETE FROM chat_questions WHERE expires_at < now() - make_interval(hours => %(hours)s)",
        {"hours": keep_hours},
    ).rowcount
