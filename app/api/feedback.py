"""/api/v1/chats/{id}/messages/{id}/feedback (thumbs up or down on an answer) and
/api/v1/judgments (your rated answers as candidate judgments for an evaluation set)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from app.api.endpoint import db, endpoint, principal
from app.api.schemas import Page, PageQuery
from app.services import feedback

bp = Blueprint("feedback", __name__, url_prefix="/api/v1")

Rating = Literal["up", "down"]
_COMMENT = "what was good or wrong about the answer"


class FeedbackReplace(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    rating: Rating = Field(description="up: a good answer; down: a bad one")
    comment: str | None = Field(None, max_length=2000, description=_COMMENT)


class Feedback(BaseModel):
    rating: Rating
    comment: str | None = Field(description=_COMMENT)
    created_at: datetime
    updated_at: datetime


class JudgmentQuery(PageQuery):
    collection_id: int = Field(
        ge=1, le=2**63 - 1, description="the collection whose cited passages are judged"
    )
    rating: Rating | None = Field(None, description="only the answers rated so")


class RelevantPassage(BaseModel):
    document_id: int
    chunk_id: int
    grade: int = Field(description="1: cited by an answer rated up; 0: by one rated down")


class Judgment(BaseModel):
    message_id: int = Field(description="the rated answer")
    chat_id: int
    rating: Rating
    comment: str | None
    rated_at: datetime
    query: str = Field(
        description="what the answer searched: the follow-up made standalone, else the question"
    )
    relevant: list[RelevantPassage] = Field(
        description="the passages the answer cited that are in the collection, in its order"
    )


@bp.put("/chats/<int:chat_id>/messages/<int:message_id>/feedback")
@endpoint(
    summary="Rate an answer up or down (again: replaces your rating)",
    tag="chats",
    body=FeedbackReplace,
    response=Feedback,
    errors=(404,),
)
def rate_answer(chat_id: int, message_id: int, body: FeedbackReplace) -> Feedback:
    comment = body.comment or None  # an empty comment is none
    row = feedback.rate(db(), principal(), chat_id, message_id, body.rating, comment)
    return Feedback(**row)


@bp.delete("/chats/<int:chat_id>/messages/<int:message_id>/feedback")
@endpoint(summary="Remove your rating of an answer", tag="chats", status=204, errors=(404,))
def unrate_answer(chat_id: int, message_id: int) -> None:
    feedback.unrate(db(), principal(), chat_id, message_id)


@bp.get("/judgments")
@endpoint(
    summary="Your rated answers as candidate judgments of a collection's passages (the question"
    " searched, the cited passages graded 1 up, 0 down), the last rated first: review them,"
    " then add them to an evaluation set",
    tag="chats",
    query=JudgmentQuery,
    response=Page[Judgment],
    errors=(404,),
)
def list_judgments(query: JudgmentQuery) -> Page[Judgment]:
    rows, total = feedback.judgments_page(
        db(),
        principal(),
        query.collection_id,
        query.rating,
        limit=query.limit,
        offset=query.offset,
    )
    return Page[Judgment](
        items=[Judgment(**r) for r in rows], total=total, limit=query.limit, offset=query.offset
    )
