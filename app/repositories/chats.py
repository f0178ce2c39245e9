"""SQL for chats and their messages (every chat has one owner; messages are ordered by id)."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from app.repositories import Conn, Row, returned
from app.repositories import feedback as feedback_repo
from app.strict_json import jsonb

# chat_model: the name of the chat's own model (NULL: none chosen)
CHAT = (
    "id, owner_id, title, collection_ids, mcp_server_ids, chat_model_id,"
    " (SELECT m.name FROM llm_models m WHERE m.id = chats.chat_model_id) AS chat_model,"
    " created_at, updated_at"
)
MESSAGE = (
    "id, chat_id, role, content, reasoning, status, finish_reason, model, prompt_tokens,"
    " completion_tokens, latency_ms, citations, tool_calls, error, search_query, created_at,"
    " updated_at"
)
# A message as read back: with its owner's rating (V2_23).
_RATED_MESSAGE = f"{MESSAGE}, {feedback_repo.OF_MESSAGE}"


def insert(
    conn: Conn,
    owner_id: int,
    title: str,
    collection_ids: list[int] | None,
    mcp_server_ids: list[int],
    chat_model_id: int | None = None,
) -> Row:
    return returned(
        conn.execute(
            "INSERT INTO chats (owner_id, title, collection_ids, mcp_server_ids, chat_model_id)"
            " VALUES (%(owner_id)s, %(title)s, %(collection_ids)s, %(mcp_server_ids)s,"
            f" %(chat_model_id)s) RETURNING {CHAT}",
            {
                "owner_id": owner_id,
                "title": title,
                "collection_ids": collection_ids,
                "mcp_server_ids": mcp_server_ids,
                "chat_model_id": chat_model_id,
            },
        ).fetchone()
    )


def get_owned(conn: Conn, chat_id: int, owner_id: int, *, lock: bool = False) -> Row | None:
    return conn.execute(
        f"SELECT {CHAT} FROM chats WHERE id = %(id)s AND owner_id = %(owner_id)s"
        + (" FOR UPDATE" if lock else ""),
        {"id": chat_id, "owner_id": owner_id},
    ).fetchone()


def _like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % _ and \\ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_owned(
    conn: Conn, owner_id: int, *, limit: int, offset: int, title_contains: str | None = None
) -> tuple[list[Row], int]:
    """A page of the owner's chats, the last used first (updated_at: a new message bumps it),
    with their total; `title_contains` keeps those whose title has it (case-insensitive)."""
    where = "owner_id = %(owner_id)s"
    if title_contains is not None:
        where += " AND title ILIKE %(pattern)s"
    params = {
        "owner_id": owner_id,
        "limit": limit,
        "offset": offset,
        "pattern": None if title_contains is None else _like_pattern(title_contains),
    }
    rows = conn.execute(
        f"SELECT {CHAT} FROM chats WHERE {where}"
        " ORDER BY updated_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = returned(
        conn.execute(f"SELECT count(*) AS n FROM chats WHERE {where}", params).fetchone()
    )
    return rows, int(total["n"])


def update(conn: Conn, chat_id: int, owner_id: int, changes: dict[str, Any]) -> Row | None:
    """Set the given columns (title, collection_ids, mcp_server_ids, chat_model_id); a no-op
    change still bumps updated_at."""
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
        f"SELECT {_RATED_MESSAGE} FROM chat_messages WHERE chat_id = %(chat_id)s"
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
        f"SELECT {_RATED_MESSAGE} FROM chat_messages WHERE chat_id = %(chat_id)s AND id = %(id)s",
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


def delete_from(conn: Conn, chat_id: int, message_id: int) -> None:
    """Delete the message and every later one of the chat (their events and questions go with
    them: V2_16, V2_18)."""
    conn.execute(
        "DELETE FROM chat_messages WHERE chat_id = %(chat_id)s AND id >= %(id)s",
        {"chat_id": chat_id, "id": message_id},
    )


def is_streaming(conn: Conn, chat_id: int) -> bool:
    """An answer is being generated in the chat."""
    row = conn.execute(
        "SELECT 1 FROM chat_messages WHERE chat_id = %(chat_id)s AND status = 'streaming'",
        {"chat_id": chat_id},
    ).fetchone()
    return row is not None


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
