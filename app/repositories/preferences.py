"""SQL for a user's preferences (one optional row; the column defaults apply without it)."""

from __future__ import annotations

from app.repositories import Conn, Row


def get(conn: Conn, user_id: int) -> Row | None:
    return conn.execute(
        "SELECT user_id, chat_model_id, similarity_threshold, top_k, temperature, system_prompt,"
        " search_mode, updated_at FROM user_preferences WHERE user_id = %(user_id)s",
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
