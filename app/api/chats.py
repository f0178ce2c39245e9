"""/api/v1/chats: your chats, their messages, asking a question (JSON or SSE), stopping it, and
truncating a conversation to ask again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from flask import Blueprint, g, request, url_for
from pydantic import BaseModel, ConfigDict, Field

from app.api.chat_tools import Message, Question
from app.api.endpoint import (
    bearer_jwt,
    changes_of,
    db,
    endpoint,
    principal,
    read_db,
    release_db,
    validate,
)
from app.api.problems import ProblemContext, problem_body
from app.api.schemas import Page, PageQuery
from app.api.sse import HEARTBEAT, Closing, event_stream, sse, wants_stream
from app.errors import InternalError
from app.runtime import runtime
from app.services import (
    answer_streams,
    answering,
    chat_answers,
    chat_exchange,
    chat_questions,
    chats,
    slash_commands,
    wider_context,
)
from app.services.answer_streams import StoredEvent

bp = Blueprint("chats", __name__, url_prefix="/api/v1")

_Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
_SCOPE = Field(
    None,
    min_length=1,
    max_length=100,
    description="collections to search for sources (default: every collection you may read)",
)
_SERVERS = (
    "MCP servers (ids) whose tools and slash commands the chat's answers use: registered and"
    " enabled ones"
)
_MODEL = "the chat model (registered) its answers use; null: your preference's, else the default"


class Chat(BaseModel):
    id: int
    title: str
    collection_ids: list[int] | None
    mcp_server_ids: list[int]
    chat_model_id: int | None = Field(description=_MODEL)
    chat_model: str | None = Field(description="the chat model's name")
    created_at: datetime
    updated_at: datetime


class ChatListQuery(PageQuery):
    q: str | None = Field(
        None, min_length=1, max_length=200, description="only chats whose title contains this"
    )


class ChatCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field("", max_length=300, description="default: the start of the first message")
    collection_ids: list[_Id] | None = _SCOPE
    mcp_server_ids: list[_Id] | None = Field(
        None, max_length=20, description=_SERVERS + " (default: your preference's)"
    )
    chat_model_id: _Id | None = Field(None, description=_MODEL)


class ChatUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(None, max_length=300)
    collection_ids: list[_Id] | None = _SCOPE
    mcp_server_ids: list[_Id] | None = Field(None, max_length=20, description=_SERVERS)
    chat_model_id: _Id | None = Field(None, description=_MODEL)


class ChatWithMessages(Chat):
    messages: Page[Message] = Field(description="oldest first")
    questions: list[Question] = Field(description="MCP servers' questions waiting for you")


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=100_000, pattern=r"\S")
    rerank: bool | None = Field(
        None, description="rerank this answer's sources (default: your preference's)"
    )
    context_window: int | None = Field(
        None,
        ge=0,
        le=wider_context.MAX_TOKENS,
        description="tokens of neighbouring text per source for this answer (0: none; default:"
        " your preference's, else POSTRAG_CHAT_CONTEXT_WINDOW)",
    )


class StreamQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stream: bool = Field(False, description="answer as server-sent events (as Accept does)")


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: int = Field(
        0, ge=0, le=2**31 - 1, description="send the events after this id (Last-Event-ID wins)"
    )


class LastEventId(BaseModel):
    last_event_id: int = Field(ge=0, le=2**31 - 1)


class Stopping(BaseModel):
    message_id: int = Field(description="the answer asked to stop")


def _chat(row: dict[str, Any]) -> Chat:
    return Chat(**{k: row[k] for k in Chat.model_fields})


@bp.post("/chats")
@endpoint(
    summary="Start a chat", tag="chats", status=201, body=ChatCreate, response=Chat, errors=(404,)
)
def create_chat(body: ChatCreate) -> tuple[Chat, dict[str, str]]:
    row = chats.create(
        db(), principal(), body.title, body.collection_ids, body.mcp_server_ids, body.chat_model_id
    )
    return _chat(row), {"Location": url_for("chats.get_chat", chat_id=row["id"])}


@bp.get("/chats")
@endpoint(
    summary="My chats, the last used first; ?q= searches their titles",
    tag="chats",
    query=ChatListQuery,
    response=Page[Chat],
)
def list_chats(query: ChatListQuery) -> Page[Chat]:
    rows, total = chats.list_page(
        read_db(), principal(), limit=query.limit, offset=query.offset, q=query.q
    )
    return Page[Chat](
        items=[_chat(r) for r in rows], total=total, limit=query.limit, offset=query.offset
    )


@bp.get("/chats/<int:chat_id>")
@endpoint(
    summary="One chat with a page of its messages",
    tag="chats",
    query=PageQuery,
    response=ChatWithMessages,
    errors=(404,),
)
def get_chat(chat_id: int, query: PageQuery) -> ChatWithMessages:
    chat, rows, total, questions = chats.messages_page(
        db(), principal(), chat_id, limit=query.limit, offset=query.offset
    )
    messages = Page[Message](
        items=[Message(**r) for r in rows], total=total, limit=query.limit, offset=query.offset
    )
    return ChatWithMessages(
        **_chat(chat).model_dump(),
        messages=messages,
        questions=[Question(**chat_questions.public(q)) for q in questions],
    )


@bp.patch("/chats/<int:chat_id>")
@endpoint(
    summary="Rename a chat or change its collections, MCP servers or model",
    tag="chats",
    body=ChatUpdate,
    response=Chat,
    errors=(404,),
)
def update_chat(chat_id: int, body: ChatUpdate) -> Chat:
    changes = changes_of(body, nullable=("collection_ids", "chat_model_id"))
    return _chat(chats.update(db(), principal(), chat_id, changes))


@bp.delete("/chats/<int:chat_id>")
@endpoint(summary="Delete a chat and its messages", tag="chats", status=204, errors=(404,))
def delete_chat(chat_id: int) -> None:
    chats.delete(db(), principal(), chat_id)


@bp.delete("/chats/<int:chat_id>/messages/<int:message_id>")
@endpoint(
    summary="Delete a message and every later one (to regenerate an answer or edit a question)",
    tag="chats",
    status=204,
    errors=(404, 409),
)
def truncate_chat(chat_id: int, message_id: int) -> None:
    chats.truncate(db(), principal(), chat_id, message_id)


@bp.post("/chats/<int:chat_id>/stop")
@endpoint(
    summary="Stop the answer being generated",
    tag="chats",
    status=202,
    response=Stopping,
    errors=(404, 409),
)
def stop_chat(chat_id: int) -> Stopping:
    return Stopping(message_id=chats.stop(db(), principal(), chat_id))


def _deps() -> chat_exchange.Deps:
    rt = runtime()
    return chat_exchange.Deps(
        pool=rt.pool,
        settings=rt.settings,
        llm=rt.llm,
        search=rt.search,
        llm_usage=g.llm_usage,
        stopping=rt.answers.stopping,
        mcp=rt.mcp,
        listener=rt.listener,
    )


@bp.post("/chats/<int:chat_id>/messages")
@endpoint(
    summary="Ask: retrieve sources, answer with [n] citations (JSON, or SSE with"
    " Accept: text/event-stream or ?stream=true: events retrieval, reasoning, delta, tool_call,"
    " progress, question, question_closed, tool_result, done, error, each with an id to resume"
    " from); `/server:prompt args` runs a slash command",
    tag="chats",
    status=201,
    body=MessageCreate,
    query=StreamQuery,
    response=Message,
    errors=(404, 409, 502, 503, 504),
    streams=True,
)
def post_message(chat_id: int, body: MessageCreate, query: StreamQuery) -> Any:
    deps, answers = _deps(), runtime().answers
    who, jwt = principal(), bearer_jwt()  # read here: the answer's thread has no request
    answers.reserve(who.user_id)  # 503/429 while this process (or user) has as many as it may
    try:
        content = body.content
        if command := chat_answers.command(db(), who, chat_id, content, deps, jwt):
            release_db()  # the server may take its time: no connection is held meanwhile
            content = slash_commands.prompt_text(command)
        else:
            content = slash_commands.unescaped(content)
        options = answering.RetrievalOptions(body.rerank, body.context_window)
        exchange = chat_answers.start(db(), who, chat_id, content, deps, jwt, options)
    except BaseException:
        answers.unreserve(who.user_id)
        raise
    release_db()  # the answer takes connections only while it uses them
    failed = ProblemContext.of_request(streamed=True)
    run = answers.launch(exchange, deps, lambda error: problem_body(error, failed))
    if wants_stream(query.stream):
        return event_stream(_sse(run.log.follow()))
    final = run.wait()
    if final is None:  # the answer's thread failed (and logged why)
        raise InternalError()
    if final.error is not None:
        raise final.error
    return Message(**chats.get_message(db(), principal(), chat_id, final.data["message_id"]))


@bp.get("/chats/<int:chat_id>/messages/<int:message_id>/events")
@endpoint(
    summary="An answer's events (SSE) after the id in the Last-Event-ID header (or ?after=),"
    " then the live rest until done or error, from any app process",
    tag="chats",
    query=EventsQuery,
    errors=(404, 429),
    raw_response="text/event-stream",
)
def message_events(chat_id: int, message_id: int, query: EventsQuery) -> Any:
    after = query.after
    if "Last-Event-ID" in request.headers:  # what a browser's EventSource sends on reconnecting
        header = {"last_event_id": request.headers["Last-Event-ID"].strip()}
        after = validate(LastEventId, header, "header").last_event_id
    who = principal()
    answer_streams.check_answer(db(), who, chat_id, message_id)
    release_db()
    rt = runtime()
    give_back = rt.answers.hold_stream(who.user_id)  # 429 past the user's open streams
    stale_s = chat_answers.stale_after_s(rt.settings)
    ids = (chat_id, message_id)
    events = answer_streams.follow_stored(rt.pool, rt.listener, who, ids, after, stale_s)
    return event_stream(Closing(_sse(events), give_back))


def _sse(events: Iterator[StoredEvent | None]) -> Iterator[str]:
    for event in events:
        yield HEARTBEAT if event is None else sse(event.kind, event.data, event.seq)
