"""/api/v1/chats/{id}/questions/{id} (answer an MCP server's question) and
/api/v1/chats/{id}/commands (the chat's slash commands); the shapes of messages, tool calls and
questions that chats show."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from app.api.endpoint import db, endpoint, principal, read_db
from app.services import chat_questions, chats, slash_commands

bp = Blueprint("chat_tools", __name__, url_prefix="/api/v1")


class ToolCallRecord(BaseModel):
    id: str = Field(description="pairs the call with its result")
    server: str | None = Field(description="the MCP server (null: the model named no such tool)")
    tool: str
    arguments: dict[str, Any]
    text: str = Field(description="the result, as the model read it")
    is_error: bool
    truncated: bool = Field(description="the result was cut at POSTRAG_MCP_RESULT_CHARS")


class Citation(BaseModel):
    n: int = Field(description="the [n] the answer uses for this source")
    chunk_id: int
    document_id: int
    collection_id: int
    filename: str
    page: int | None
    char_start: int
    char_end: int
    score: float
    cited: bool = Field(description="the answer cites it")


class MessageFeedback(BaseModel):
    rating: Literal["up", "down"]
    comment: str | None
    updated_at: datetime


class Message(BaseModel):
    id: int
    role: Literal["system", "user", "assistant"]
    content: str
    reasoning: str = Field(description="the model's <think> text; never sent back as history")
    status: Literal["streaming", "complete", "incomplete"]
    finish_reason: str | None = Field(
        description="stop, length, stopped (by you), error; disconnected: a client that left"
        " ended answers before postrag 20 (since then, answers go on without it)"
    )
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int | None
    citations: list[Citation]
    tool_calls: list[ToolCallRecord] = Field(description="MCP tool calls made for the answer")
    error: str | None
    search_query: str | None = Field(
        description="what the answer's sources were searched with: the question, or a follow-up"
        " made standalone (null on your messages and on answers before postrag 22)"
    )
    feedback: MessageFeedback | None = Field(
        description="your rating of the answer (PUT .../feedback); null: not rated"
    )
    created_at: datetime


class Question(BaseModel):
    id: int
    message_id: int = Field(description="the answer whose tool call asks")
    server: str
    tool: str
    message: str = Field(description="what the server asks")
    requested_schema: dict[str, Any] = Field(description="JSON Schema of the content to send")
    url: str | None = Field(description="a page to open instead of a form")
    state: Literal["pending", "answered", "declined", "expired"]
    answer: dict[str, Any] | None
    expires_at: datetime


class QuestionReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "decline", "cancel"]
    content: dict[str, Any] | None = Field(
        None, description="with accept: the form's values, as the question's requested_schema"
    )


class PromptArgument(BaseModel):
    name: str
    description: str | None
    required: bool


class SlashCommand(BaseModel):
    command: str = Field(description="what to type: /server:prompt (or /prompt when unique)")
    server: str
    prompt: str
    description: str | None
    arguments: list[PromptArgument]


class SlashCommands(BaseModel):
    items: list[SlashCommand]


@bp.post("/chats/<int:chat_id>/questions/<int:question_id>")
@endpoint(
    summary="Answer a question an MCP server asked while a tool ran",
    tag="chats",
    body=QuestionReply,
    response=Question,
    errors=(404, 409),
)
def answer_question(chat_id: int, question_id: int, body: QuestionReply) -> Question:
    answered = chat_questions.answer(
        db(), principal(), (chat_id, question_id), body.action, body.content
    )
    return Question(**answered)


@bp.get("/chats/<int:chat_id>/commands")
@endpoint(
    summary="The chat's slash commands: its MCP servers' prompts",
    tag="chats",
    response=SlashCommands,
    errors=(404,),
)
def list_commands(chat_id: int) -> SlashCommands:
    conn = read_db()
    chat = chats.get_owned(conn, principal(), chat_id)
    commands = slash_commands.available(conn, chat["mcp_server_ids"])
    return SlashCommands(
        items=[
            SlashCommand(
                command=f"/{c.name}",
                server=c.server,
                prompt=c.prompt,
                description=c.description,
                arguments=[PromptArgument(**a) for a in c.arguments],
            )
            for c in commands
        ]
    )
