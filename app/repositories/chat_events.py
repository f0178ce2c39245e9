"""SQL for the stored events of chat answers (sql/migrations/V2_16) and their NOTIFY."""

from __future__ import annotations

from typing import Any

from app.repositories import Conn, Row
from app.strict_json import jsonb

# The channel a NOTIFY naming the message (its id as text) goes to with each stored batch.
CHANNEL = "postrag_chat_events"
TERMINAL = ("done", "error")


def insert(conn: Conn, message_id: int, events: list[tuple[int, str, dict[str, Any]]]) -> None:
    """Store (seq, kind, data) events and tell the listeners, at commit; nothing when the message
    is gone (an exchange removed because nothing was generated)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO chat_message_events (message_id, seq, kind, data)"
            " SELECT %(message_id)s, %(seq)s, %(kind)s, %(data)s"
            " WHERE EXISTS (SELECT 1 FROM chat_messages WHERE id = %(message_id)s)",
            [
                {"message_id": message_id, "seq": seq, "kind": kind, "data": jsonb(data)}
                for seq, kind, data in events
            ],
        )
    conn.execute(
        "SELECT pg_notify(%(channel)s, %(message_id)s::text)",
        {"channel": CHANNEL, "message_id": message_id},
    )


def after(conn: Conn, message_id: int, seq: int, *, limit: int) -> list[Row]:
    """The message's events after `seq`, in order."""
    return conn.execute(
        "SELECT seq, kind, data FROM chat_message_events"
        " WHERE message_id = %(message_id)s AND seq > %(seq)s ORDER BY seq LIMIT %(limit)s",
        {"message_id": message_id, "seq": seq, "limit": limit},
    ).fetchall()


def stream_state(conn: Conn, chat_id: int, message_id: int, owner_id: int) -> Row | None:
    """An answer of the owner's chat: its status, the id of its last event (done or error) once
    stored (`end_seq`), and how long ago it or its events last changed; None when there is no
    such answer."""
    return conn.execute(
        "SELECT m.status,"
        " (SELECT max(e.seq) FROM chat_message_events e WHERE e.message_id = m.id"
        "  AND e.kind = ANY(%(terminal)s)) AS end_seq,"
        " extract(epoch FROM now() - greatest(m.updated_at,"
        "   (SELECT max(e.created_at) FROM chat_message_events e WHERE e.message_id = m.id)"
        " ))::float8 AS quiet_s"
        " FROM chat_messages m JOIN chats c ON c.id = m.chat_id"
        " WHERE m.id = %(message_id)s AND m.chat_id = %(chat_id)s AND c.owner_id = %(owner_id)s"
        " AND m.role = 'assistant'",
        {
            "message_id": message_id,
            "chat_id": chat_id,
            "owner_id": owner_id,
            "terminal": list(TERMINAL),
        },
    ).fetchone()


def prune(conn: Conn, keep_hours: int) -> int:
    """Delete the events of messages that ended (or went silent) over `keep_hours` ago."""
    return conn.execute(
        "DELETE FROM chat_message_events e USING chat_messages m"
        " WHERE m.id = e.message_id"
        " AND e.created_at < now() - make_interval(hours => %(hours)s)"
        " AND m.updated_at < now() - make_interval(hours => %(hours)s)",
        {"hours": keep_hours},
    ).rowcount
