"""Thumbs up or down on answers, and the candidate judgments they make: for each rated answer,
the question it searched and the passages it cited in a collection, graded 1 for a good answer
and 0 for a bad one, to review and add to an evaluation set."""

from __future__ import annotations

from typing import Any

from app.errors import NotFound, ValidationFailed
from app.repositories import Conn, Row
from app.repositories import feedback as feedback_repo
from app.services import chats, collections
from app.services.tokens import Principal

# The grade a cited passage gets from its answer's rating.
GRADES = {"up": 1, "down": 0}


def _check_rateable(conn: Conn, who: Principal, chat_id: int, message_id: int) -> None:
    """404 unless the message is in one of the user's chats; 422 unless it is a complete answer.
    The message stays (locked) until the transaction ends."""
    chats.get_owned(conn, who, chat_id)
    message = feedback_repo.rateable_message(conn, chat_id, message_id)
    if message is None:
        raise NotFound(f"no message {message_id} in chat {chat_id}")
    if message["role"] != "assistant":
        raise ValidationFailed(f"message {message_id} is not an answer: only answers are rated")
    if message["status"] != "complete":
        raise ValidationFailed(f"answer {message_id} is {message['status']}: it cannot be rated")


def rate(
    conn: Conn, who: Principal, chat_id: int, message_id: int, rating: str, comment: str | None
) -> Row:
    """Rate an answer `up` or `down`, with an optional comment, replacing the user's earlier
    rating of it."""
    with conn.transaction():
        _check_rateable(conn, who, chat_id, message_id)
        return feedback_repo.upsert(
            conn, message_id, who.user_id, feedback_repo.RATINGS[rating], comment
        )


def unrate(conn: Conn, who: Principal, chat_id: int, message_id: int) -> None:
    """Remove the user's rating of an answer (none is fine); 404 for a message not theirs."""
    with conn.transaction():
        chats.get_owned(conn, who, chat_id)
        if feedback_repo.rateable_message(conn, chat_id, message_id) is None:
            raise NotFound(f"no message {message_id} in chat {chat_id}")
        feedback_repo.delete(conn, message_id, who.user_id)


def judgments_page(
    conn: Conn,
    who: Principal,
    collection_id: int,
    rating: str | None,
    *,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the user's rated answers citing passages of the collection (404 unless the user
    may read it), as candidate judgments, the last rated first; and their total."""
    with conn.transaction():
        collections.get_readable(conn, who, collection_id)
        wanted = None if rating is None else feedback_repo.RATINGS[rating]
        rows, total = feedback_repo.judgments_page(
            conn, who.user_id, collection_id, wanted, limit=limit, offset=offset
        )
    return [_judgment(row) for row in rows], total


def _judgment(row: Row) -> dict[str, Any]:
    grade = GRADES[row["rating"]]
    return {**row, "relevant": [{**passage, "grade": grade} for passage in row["relevant"]]}
