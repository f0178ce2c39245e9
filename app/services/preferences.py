"""A user's preferences: reading them (the defaults without a row), replacing and changing them."""

from __future__ import annotations

from typing import Any

from app.repositories import Conn, Row
from app.repositories import preferences as preference_repo
from app.services import chats, search
from app.services.tokens import Principal

# The user_preferences column defaults (a test compares them with the database's).
DEFAULT_TEMPERATURE = 0.2
DEFAULT_SYSTEM_PROMPT = ""
DEFAULTS: dict[str, Any] = {
    "chat_model_id": None,
    "search_mode": search.DEFAULT_MODE,
    "top_k": search.DEFAULT_TOP_K,
    "min_similarity": search.DEFAULT_MIN_SIMILARITY,
    "temperature": DEFAULT_TEMPERATURE,
    "system_prompt": DEFAULT_SYSTEM_PROMPT,
    "mcp_server_ids": [],
    "rerank": True,
    "rerank_candidates": None,
    "context_window": None,
}
# API field -> column; the API names the similarity threshold as search does.
_COLUMNS = {field: field for field in DEFAULTS} | {"min_similarity": "similarity_threshold"}


def _public(row: Row) -> dict[str, Any]:
    return {
        "chat_model_id": row["chat_model_id"],
        "chat_model": row["chat_model"],
        "search_mode": row["search_mode"],
        "top_k": row["top_k"],
        "min_similarity": float(row["similarity_threshold"]),
        "temperature": float(row["temperature"]),
        "system_prompt": row["system_prompt"],
        "mcp_server_ids": row["mcp_server_ids"],
        "rerank": row["rerank"],
        "rerank_candidates": row["rerank_candidates"],
        "context_window": row["context_window"],
        "updated_at": row["updated_at"],
    }


def get(conn: Conn, who: Principal) -> dict[str, Any]:
    """The caller's preferences; the defaults (with updated_at null) when none are stored."""
    row = preference_repo.get_with_model(conn, who.user_id)
    if row is None:
        return {**DEFAULTS, "chat_model": None, "updated_at": None}
    return _public(row)


def change(conn: Conn, who: Principal, values: dict[str, Any]) -> dict[str, Any]:
    """Set the given fields (API names), keeping the others."""
    if not values:
        return get(conn, who)
    with conn.transaction():
        if values.get("chat_model_id") is not None:
            chats.check_chat_model(conn, values["chat_model_id"])
        if "mcp_server_ids" in values:
            values["mcp_server_ids"] = chats.check_servers(conn, values["mcp_server_ids"])
        preference_repo.upsert(conn, who.user_id, {_COLUMNS[k]: v for k, v in values.items()})
        return get(conn, who)


def replace(conn: Conn, who: Principal, values: dict[str, Any]) -> dict[str, Any]:
    """Set every field: those not given go back to their defaults."""
    return change(conn, who, {**DEFAULTS, **values})
