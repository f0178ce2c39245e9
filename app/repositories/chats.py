"""SQL for chats and their messages (every chat has one owner; messages are ordered by id)."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from app.repositories import Conn, Row, returned
from app.strict_json import jsonb

CHAT = "id, owner_id, title, collection_ids, mcp_server_ids, created_at, updated_at"
MESSAGE = (
    "id, chat_id, role, content, reasoning, status, finish_reason, model, prompt_tokens,"
    " completion_tokens, latency_ms, citations, tool_calls, error, created_at, updated_at"
)


def insert(
    conn: Conn,
    owner_id: int,
    title: str,
    collection_ids: list[int] | None,
    mcp_server_ids: list[int],
) -> Row:
    return returned(
        conn.execute(
            "INSERT INTO chats (owner_id, title, collection_ids, mcp_server_ids)"
            " VALUES (%(owner_id)s, %(title)s, %(collection_ids)s, %(mcp_server_ids)s)"
            f" RETURNING {CHAT}",
            {
                "owner_id": owner_id,
                "title": title,
                "collection_ids": collection_ids,
                "mcp_server_ids": mcp_server_ids,
            },
        ).fetchone()
    )


def get_owned(conn: Conn, chat_id: int, owner_id: int, *, lock: bool = False) -> Row | None:
    return conn.execute(
        f"SELECT {CHAT} FROM chats WHERE id = %(id)s AND owner_id = %(owner_id)s"
        + (" FOR UPDATE" if lock else ""),
        {"id": chat_id, "owner_id": owner_id},
    ).fetchone()


def list_owned(conn: Conn, owner_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    params = {"owner_id": owner_id, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"SELECT {CHAT} FROM chats WHERE owner_id = %(owner_id)s"
        " ORDER BY updated_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = returned(
        conn.execute(
            "SELECT count(*) AS n FROM chats WHERE owner_id = %(owner_id)s", params
        ).fetchone()
    )
    return rows, int(total["n"])


def update(conn: Conn, chat_id: int, owner_id: int, changes: dict[str, Any]) -> Row | None:
    """Set the given columns (title, collection_ids, mcp_server_ids); a no-op change still bumps
    updated_at."""
    assigns: list[sql.Composable] = [
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in changes
    ]
    assigns.append(sql.SQL("updated_at = now()"))
    query = sql.SQL(
        "UPDATE chats SET {} WHERE id = %(id)s AND owner_id = %(owner_id)s RETURNING " + CHAT
    ).format(sql.SQL(", ").join(assigns))
    return conn.execute(query, {**changes, "id": chat_id, "owner_id": owner_id}).fetchone()


def delete(conn: Conn, chat_id: int, owner_id: int) -> bool:
    return (
        conn.execute(
            "DELETE FROM chats WHERE id = %(id)s AND owner_id = %(owner_id)s",
            {"id": chat_id, "owner_id": owner_id},
        ).rowcount
        == 1
    )


def messages_page(conn: Conn, chat_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    params = {"chat_id": chat_id, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"SELECT {MESSAGE} FROM chat_messages WHERE chat_id = %(chat_id)s"
        " ORDER BY id LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = returned(
        conn.execute(
            "SELECT count(*) AS n FROM chat_messages WHERE chat_id = %(chat_id)s", params
        ).fetchone()
    )
    return rows, int(total["n"])


def get_message(conn: Conn, chat_id: int, message_id: int) -> Row | None:
    return conn.execute(
        f"SELECT {MESSAGE} FROM chat_messages WHERE chat_id = %(chat_id)s AND id = %(id)s",
        {"chat_id": chat_id, "id": message_id},
    ).fetchone()


def history(conn: Conn, chat_id: int, before_id: int, *, limit: int = 200) -> list[Row]:
    """The latest user/assistant messages before `before_id`, oldest first (content only)."""
    rows = conn.execute(
        "SELECT id, role, content FROM chat_messages"
        " WHERE chat_id = %(chat_id)s AND id < %(before)s AND role IN ('user', 'assistant')"
        " AND status <> 'streaming' AND content <> ''"
        " ORDER BY id DESC LIMIT %(limit)s",
        {"chat_id": chat_id, "before": before_id, "limit": limit},
    ).fetchall()
    return rows[::-1]


def insert_message(conn: Conn, chat_id: int, role: str, content: str, **extra: Any) -> Row:
    """A message; `extra` sets other columns (status, model, citations, ...)."""
    values = {"chat_id": chat_id, "role": role, "content": content, **extra}
    if "citations" in values:
        values["citations"] = jsonb(values["citations"])
    query = sql.SQL("INSERT INTO chat_messages ({}) VALUES ({}) RETURNING " + MESSAGE).format(
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(map(sql.Placeholder, values)),
    )
    return returned(conn.execute(query, values).fetchone())


def save_progress(conn: Conn, message_id: int, content: str, reasoning: str) -> bool | None:
    """Store the text so far; True when a stop was requested, None when the message is gone."""
    row = conn.execute(
        "UPDATE chat_messages SET content = %(content)s, reasoning = %(reasoning)s"
        " WHERE id = %(id)s AND status = 'streaming' RETURNING stop_requested",
        {"id": message_id, "content": content, "reasoning": reasoning},
    ).fetchone()
    return None if row is None else bool(row["stop_requested"])


def finish_message(conn: Conn, message_id: int, **values: Any) -> Row | None:
    """Close a streaming message with its final columns (status, content, tokens, ...); one a stop
    request closed already still takes the last text of the process generating it."""
    for column in ("citations", "tool_calls"):
        if column in values:
            values[column] = jsonb(values[column])
    assigns = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in values
    )
    query = sql.SQL(
        "UPDATE chat_messages SET {} WHERE id = %(id)s"
        " AND (status = 'streaming' OR stop_requested) RETURNING " + MESSAGE
    ).format(assigns)
    return conn.execute(query, {**values, "id": message_id}).fetchone()


def delete_messages(conn: Conn, message_ids: list[int]) -> None:
    conn.execute("DELETE FROM chat_messages WHERE id = ANY(%(ids)s)", {"ids": message_ids})


def stop_streaming(conn: Conn, chat_id: int) -> Row | None:
    """Close the chat's answer in the making as stopped (its process, if alive, stores its last
    text when it sees the stop); the message's id, or None when none is being made."""
    return conn.execute(
        "UPDATE chat_messages SET stop_requested = true, status = 'incomplete',"
        " finish_reason = 'stopped', error = 'stopped by the user'"
        " WHERE chat_id = %(chat_id)s AND status = 'streaming' RETURNING id",
        {"chat_id": chat_id},
    ).fetchone()


def close_abandoned(conn: Conn, chat_id: int, stale_s: float) -> int:
    """Mark answers whose generating process went silent (it crashed) as incomplete."""
    return conn.execute(
        "UPDATE chat_messages SET status = 'incomplete', finish_reason = 'error',"
        " error = 'the generation was interrupted'"
        " WHERE chat_id = %(chat_id)s AND status = 'streaming'"
        " AND updated_at < now() - make_interval(secs => %(stale_s)s)",
        {"chat_id": chat_id, "stale_s": stale_s},
    ).rowcount


def touch(conn: Conn, chat_id: int, title: str | None = None) -> None:
    """Bump the chat to the top of "newest first"; set its title when it has none yet."""
    conn.execute(
        "UPDATE chats SET updated_at = now(), title = CASE"
        " WHEN title = '' AND %(title)s::text IS NOT NULL THEN %(title)s ELSE title END"
        " WHERE id = %(id)s",
        {"id": chat_id, "title": title},
    )
