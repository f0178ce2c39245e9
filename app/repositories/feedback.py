"""SQL for users' ratings of answers (sql/migrations/V2_23) and the candidate judgments made of
them: the question an answer searched and the passages it cited, in one collection."""

from __future__ import annotations

from app.repositories import Conn, Row, returned

# Stored as +1/-1 (a sum or an average means something); the API says up or down.
RATINGS = {"up": 1, "down": -1}
_RATING = "CASE WHEN f.rating > 0 THEN 'up' ELSE 'down' END"
FEEDBACK = f"{_RATING} AS rating, f.comment, f.created_at, f.updated_at"
# A message's rating as shown with it, or NULL: its chat owner's (the only one who may rate it).
OF_MESSAGE = (
    "(SELECT jsonb_build_object("
    f"'rating', {_RATING}, 'comment', f.comment, 'updated_at', f.updated_at)"
    " FROM answer_feedback f WHERE f.message_id = chat_messages.id AND f.user_id ="
    " (SELECT c.owner_id FROM chats c WHERE c.id = chat_messages.chat_id)) AS feedback"
)


def rateable_message(conn: Conn, chat_id: int, message_id: int) -> Row | None:
    """The message's role and status, locked against its deletion until the transaction ends
    (a truncation meanwhile waits, so the rating never points at a message gone)."""
    return conn.execute(
        "SELECT id, role, status FROM chat_messages"
        " WHERE chat_id = %(chat_id)s AND id = %(id)s FOR KEY SHARE",
        {"chat_id": chat_id, "id": message_id},
    ).fetchone()


def upsert(conn: Conn, message_id: int, user_id: int, rating: int, comment: str | None) -> Row:
    """Rate the message, replacing the user's earlier rating of it."""
    return returned(
        conn.execute(
            "INSERT INTO answer_feedback AS f (message_id, user_id, rating, comment)"
            " VALUES (%(message_id)s, %(user_id)s, %(rating)s, %(comment)s)"
            " ON CONFLICT (message_id, user_id) DO UPDATE"
            " SET rating = EXCLUDED.rating, comment = EXCLUDED.comment"
            f" RETURNING {FEEDBACK}",
            {"message_id": message_id, "user_id": user_id, "rating": rating, "comment": comment},
        ).fetchone()
    )


def delete(conn: Conn, message_id: int, user_id: int) -> bool:
    return (
        conn.execute(
            "DELETE FROM answer_feedback WHERE message_id = %(message_id)s"
            " AND user_id = %(user_id)s",
            {"message_id": message_id, "user_id": user_id},
        ).rowcount
        == 1
    )


# The user's rated answers in their own chats, each with the question it searched (the stored
# standalone query, else the user's question before it) and its cited passages that are (still)
# in the collection, in the order the answer numbered them; _JUDGED leaves out the answers citing
# none there (and any with no question before them).
_JUDGMENTS = f"""
    SELECT f.message_id, m.chat_id, {_RATING} AS rating, f.comment, f.updated_at AS rated_at,
        COALESCE(m.search_query, (
            SELECT q.content FROM chat_messages q
            WHERE q.chat_id = m.chat_id AND q.id < m.id AND q.role = 'user'
            ORDER BY q.id DESC LIMIT 1
        )) AS query,
        (
            SELECT jsonb_agg(jsonb_build_object('document_id', k.document_id, 'chunk_id', k.id)
                ORDER BY x.n)
            FROM jsonb_to_recordset(m.citations) AS x(n integer, chunk_id bigint, cited boolean)
            JOIN document_chunks k ON k.id = x.chunk_id
            WHERE x.cited AND k.collection_id = %(collection_id)s
        ) AS relevant
    FROM answer_feedback f
    JOIN chat_messages m ON m.id = f.message_id
    JOIN chats c ON c.id = m.chat_id
    WHERE f.user_id = %(user_id)s AND c.owner_id = %(user_id)s
        AND (%(rating)s::smallint IS NULL OR f.rating = %(rating)s)
"""

_JUDGED = "j.relevant IS NOT NULL AND j.query IS NOT NULL"
_JUDGMENT = "j.message_id, j.chat_id, j.rating, j.comment, j.rated_at, j.query, j.relevant"


def judgments_page(
    conn: Conn, user_id: int, collection_id: int, rating: int | None, *, limit: int, offset: int
) -> tuple[list[Row], int]:
    """A page of the user's candidate judgments in the collection, the last rated first, and
    their total; `rating` keeps only the answers rated so."""
    params = {
        "user_id": user_id,
        "collection_id": collection_id,
        "rating": rating,
        "limit": limit,
        "offset": offset,
    }
    rows = conn.execute(
        f"SELECT {_JUDGMENT} FROM ({_JUDGMENTS}) j WHERE {_JUDGED}"
        " ORDER BY j.rated_at DESC, j.message_id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = returned(
        conn.execute(
            f"SELECT count(*) AS n FROM ({_JUDGMENTS}) j WHERE {_JUDGED}", params
        ).fetchone()
    )
    return rows, int(total["n"])
