"""SQL for a user's preferences (one optional row; the column defaults apply without it)."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from app.repositories import Conn, Row


def get(conn: Conn, user_id: int) -> Row | None:
    return conn.execute(
        "SELECT user_id, chat_model_id, similarity_threshold, top_k, temperature, system_prompt,"
        " search_mode, mcp_server_ids, rerank, rerank_candidates, context_window, updated_at"
        " FROM user_preferences"
        " WHERE user_id = %(user_id)s",
        {"user_id": user_id},
    ).fetchone()


def column_defaults(conn: Conn) -> dict[str, str]:
    """The table's column defaults as SQL text (what a user without a row gets)."""
    rows = conn.execute(
        "SELECT column_name, column_default FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = 'user_preferences'"
        " AND column_default IS NOT NULL"
    ).fetchall()
    return {r["column_name"]: r["column_default"] for r in rows}


# The columns a user may set; the API calls similarity_threshold `min_similarity`.
SETTABLE = (
    "chat_model_id",
    "similarity_threshold",
    "top_k",
    "temperature",
    "system_prompt",
    "search_mode",
    "mcp_server_ids",
    "rerank",
    "rerank_candidates",
    "context_window",
)


def get_with_model(conn: Conn, user_id: int) -> Row | None:
    """The user's row with the chosen chat model's name (`chat_model`, NULL when none)."""
    return conn.execute(
        "SELECT p.user_id, p.chat_model_id, m.name AS chat_model, p.similarity_threshold,"
        " p.top_k, p.temperature, p.system_prompt, p.search_mode, p.mcp_server_ids, p.rerank,"
        " p.rerank_candidates, p.context_window, p.updated_at"
        " FROM user_preferences p LEFT JOIN llm_models m ON m.id = p.chat_model_id"
        " WHERE p.user_id = %(user_id)s",
        {"user_id": user_id},
    ).fetchone()


def upsert(conn: Conn, user_id: int, values: dict[str, Any]) -> None:
    """Set `values` (column -> value, columns from SETTABLE); a missing row gets the defaults."""
    unknown = set(values) - set(SETTABLE)
    if unknown or not values:
        raise ValueError(f"not settable preference columns: {sorted(unknown) or 'none given'}")
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in values)
    placeholders = sql.SQL(", ").join(sql.Placeholder(c) for c in values)
    assigns = sql.SQL(", ").join(
        sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in values
    )
    query = sql.SQL(
        "INSERT INTO user_preferences (user_id, {}) VALUES (%(user_id)s, {})"
        " ON CONFLICT (user_id) DO UPDATE SET {}"
    ).format(columns, placeholders, assigns)
    conn.execute(query, {**values, "user_id": user_id})
