"""Chats: create, list, read, rename or rescope, delete, truncate, and stop a running answer.

Posting a message (the RAG answer itself) is in app/services/chat_answers.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.errors import Conflict, NotFound, ValidationFailed
from app.repositories import Conn, Row
from app.repositories import chat_questions as question_repo
from app.repositories import chats as chat_repo
from app.repositories import collections as collection_repo
from app.repositories import llm_models as model_repo
from app.repositories import mcp_servers as server_repo
from app.repositories import preferences as preference_repo
from app.services.tokens import Principal


def check_scope(conn: Conn, who: Principal, collection_ids: list[int] | None) -> list[int] | None:
    """The scope with duplicates removed; 404 naming any collection the user may not read."""
    if collection_ids is None:
        return None
    wanted = sorted(set(collection_ids))
    readable = set(collection_repo.readable_ids(conn, who.user_id, wanted))
    missing = [i for i in wanted if i not in readable]
    if missing:
        raise NotFound(f"no collection {', '.join(map(str, missing))}")
    return wanted


def check_servers(conn: Conn, server_ids: list[int]) -> list[int]:
    """The MCP servers a chat's answers may use, without duplicates; 422 naming any that is not
    registered or not enabled."""
    wanted = sorted(set(server_ids))
    enabled = {r["id"] for r in server_repo.enabled_among(conn, wanted)}
    missing = [i for i in wanted if i not in enabled]
    if missing:
        raise ValidationFailed.on_field(
            "mcp_server_ids",
            f"no enabled MCP server {', '.join(map(str, missing))}",
            type="value_error",
        )
    return wanted


def check_chat_model(conn: Conn, model_id: int) -> None:
    """422 unless `model_id` is a registered chat model (locked until the transaction ends)."""
    row = model_repo.get_for_reference(conn, model_id)
    if row is None:
        msg = f"no model {model_id} in the registry"
    elif row["kind"] != "chat":
        msg = f"model {model_id} ({row['name']}) is an {row['kind']} model, not a chat model"
    else:
        return
    raise ValidationFailed.on_field("chat_model_id", msg, type="value_error")


def create(
    conn: Conn,
    who: Principal,
    title: str,
    collection_ids: list[int] | None,
    mcp_server_ids: Sequence[int] | None = None,
    chat_model_id: int | None = None,
) -> Row:
    """A new chat; without `mcp_server_ids`, it uses the servers of the user's preference;
    without `chat_model_id`, its answers use the preferred (or default) chat model."""
    with conn.transaction():
        scope = check_scope(conn, who, collection_ids)
        if chat_model_id is not None:
            check_chat_model(conn, chat_model_id)
        if mcp_server_ids is None:
            preferred = preference_repo.get(conn, who.user_id)
            mcp_server_ids = preferred["mcp_server_ids"] if preferred else []
            # one disabled or removed since is left out, not refused
            mcp_server_ids = [r["id"] for r in server_repo.enabled_among(conn, mcp_server_ids)]
        servers = check_servers(conn, list(mcp_server_ids))
        return chat_repo.insert(conn, who.user_id, title, scope, servers, chat_model_id)


def get_owned(conn: Conn, who: Principal, chat_id: int) -> Row:
    chat = chat_repo.get_owned(conn, chat_id, who.user_id)
    if chat is None:
        raise NotFound(f"no chat {chat_id}")
    return chat


def list_page(
    conn: Conn, who: Principal, *, limit: int, offset: int, q: str | None = None
) -> tuple[list[Row], int]:
    """A page of the user's chats, the last used first; `q`: those whose title contains it."""
    return chat_repo.list_owned(conn, who.user_id, limit=limit, offset=offset, title_contains=q)


def messages_page(
    conn: Conn, who: Principal, chat_id: int, *, limit: int, offset: int
) -> tuple[Row, list[Row], int, list[Row]]:
    """The chat, a page of its messages, their total, and the questions waiting for the user."""
    with conn.transaction():
        chat = get_owned(conn, who, chat_id)
        rows, total = chat_repo.messages_page(conn, chat_id, limit=limit, offset=offset)
        questions = question_repo.pending(conn, chat_id)
    return chat, rows, total, questions


def get_message(conn: Conn, who: Principal, chat_id: int, message_id: int) -> Row:
    get_owned(conn, who, chat_id)
    row = chat_repo.get_message(conn, chat_id, message_id)
    if row is None:
        raise NotFound(f"no message {message_id} in chat {chat_id}")
    return row


def update(conn: Conn, who: Principal, chat_id: int, changes: dict[str, Any]) -> Row:
    with conn.transaction():
        if "collection_ids" in changes:
            changes["collection_ids"] = check_scope(conn, who, changes["collection_ids"])
        if "mcp_server_ids" in changes:
            changes["mcp_server_ids"] = check_servers(conn, changes["mcp_server_ids"])
        if changes.get("chat_model_id") is not None:
            check_chat_model(conn, changes["chat_model_id"])
        chat = chat_repo.update(conn, chat_id, who.user_id, changes)
        if chat is None:
            raise NotFound(f"no chat {chat_id}")
        return chat


def delete(conn: Conn, who: Principal, chat_id: int) -> None:
    with conn.transaction():
        if not chat_repo.delete(conn, chat_id, who.user_id):
            raise NotFound(f"no chat {chat_id}")


def truncate(conn: Conn, who: Principal, chat_id: int, message_id: int) -> None:
    """Delete a message and every later one of the chat (to regenerate an answer or edit a
    question); 404 for a chat or message not there, 409 while an answer is being generated."""
    with conn.transaction():
        if chat_repo.get_owned(conn, chat_id, who.user_id, lock=True) is None:  # no post meanwhile
            raise NotFound(f"no chat {chat_id}")
        if chat_repo.get_message(conn, chat_id, message_id) is None:
            raise NotFound(f"no message {message_id} in chat {chat_id}")
        if chat_repo.is_streaming(conn, chat_id):
            raise Conflict("an answer is being generated in this chat; stop it first")
        chat_repo.delete_from(conn, chat_id, message_id)
        chat_repo.touch(conn, chat_id)


def stop(conn: Conn, who: Principal, chat_id: int) -> int:
    """End the answer being generated in this chat at once; its message id (409 if none).

    The chat takes a new message right away, even when the process generating the answer died;
    a live one stops at its next save and stores the text it has.
    """
    with conn.transaction():
        get_owned(conn, who, chat_id)
        row = chat_repo.stop_streaming(conn, chat_id)
    if row is None:
        raise Conflict("no answer is being generated in this chat")
    return int(row["id"])
