"""GET/PUT/PATCH /api/v1/me/preferences: your chat model, search defaults and system prompt."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from flask import Blueprint
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.api.endpoint import changes_of, db, endpoint, principal
from app.services import preferences, wider_context
from app.services.preferences import DEFAULTS

bp = Blueprint("preferences", __name__, url_prefix="/api/v1")

SearchMode = Literal["hybrid", "semantic", "fulltext"]
_ModelId = Annotated[int, Field(ge=1, le=2**63 - 1)]
_TopK = Annotated[int, Field(ge=1, le=50)]
# Stored as PostgreSQL real: 6 decimals keep values like 1e-50 from underflowing it.
_Real = AfterValidator(lambda v: round(v, 6))
_MinSimilarity = Annotated[float, Field(ge=0, le=1), _Real]
_Temperature = Annotated[float, Field(ge=0, le=2), _Real]
_SystemPrompt = Annotated[str, Field(max_length=20000)]
_ServerIds = Annotated[list[_ModelId], Field(max_length=20)]
_SERVERS = "the MCP servers (ids) new chats use when they name none (registered and enabled)"
_CHAT_MODEL = "a registered chat model; null: the registry's default chat model"
_RERANK = "rerank the fused hits of searches and chats when a reranker is configured"
_RERANK_CANDIDATES = "how many fused hits to rerank; null: the server's (default 50)"
_Candidates = Annotated[int, Field(ge=1, le=200)]
_CONTEXT_WINDOW = (
    "tokens of neighbouring text each search hit and chat source brings (0: none); null: the"
    " server's (none for searches, POSTRAG_CHAT_CONTEXT_WINDOW for chats)"
)
_ContextWindow = Annotated[int, Field(ge=0, le=wider_context.MAX_TOKENS)]


class UserPreferences(BaseModel):
    chat_model_id: int | None = Field(description=_CHAT_MODEL)
    chat_model: str | None = Field(description="the chosen model's name")
    search_mode: str
    top_k: int
    min_similarity: float = Field(description="semantic search drops hits less similar")
    temperature: float
    system_prompt: str = Field(description="empty: postrag's own")
    mcp_server_ids: list[int] = Field(description=_SERVERS)
    rerank: bool = Field(description=_RERANK)
    rerank_candidates: int | None = Field(description=_RERANK_CANDIDATES)
    context_window: int | None = Field(description=_CONTEXT_WINDOW)
    updated_at: datetime | None = Field(description="null: never set, these are the defaults")


class PreferencesReplace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chat_model_id: _ModelId | None = Field(DEFAULTS["chat_model_id"], description=_CHAT_MODEL)
    search_mode: SearchMode = DEFAULTS["search_mode"]
    top_k: _TopK = DEFAULTS["top_k"]
    min_similarity: _MinSimilarity = DEFAULTS["min_similarity"]
    temperature: _Temperature = DEFAULTS["temperature"]
    system_prompt: _SystemPrompt = DEFAULTS["system_prompt"]
    mcp_server_ids: _ServerIds = Field([], description=_SERVERS)
    rerank: bool = Field(DEFAULTS["rerank"], description=_RERANK)
    rerank_candidates: _Candidates | None = Field(None, description=_RERANK_CANDIDATES)
    context_window: _ContextWindow | None = Field(None, description=_CONTEXT_WINDOW)


class PreferencesChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chat_model_id: _ModelId | None = Field(None, description=_CHAT_MODEL)
    search_mode: SearchMode | None = None
    top_k: _TopK | None = None
    min_similarity: _MinSimilarity | None = None
    temperature: _Temperature | None = None
    system_prompt: _SystemPrompt | None = None
    mcp_server_ids: _ServerIds | None = Field(None, description=_SERVERS)
    rerank: bool | None = Field(None, description=_RERANK)
    rerank_candidates: _Candidates | None = Field(None, description=_RERANK_CANDIDATES)
    context_window: _ContextWindow | None = Field(None, description=_CONTEXT_WINDOW)


@bp.get("/me/preferences")
@endpoint(
    summary="Your preferences (the defaults until you set some)",
    tag="preferences",
    response=UserPreferences,
)
def get_preferences() -> UserPreferences:
    return UserPreferences(**preferences.get(db(), principal()))


@bp.put("/me/preferences")
@endpoint(
    summary="Replace your preferences (fields left out go back to their defaults)",
    tag="preferences",
    body=PreferencesReplace,
    response=UserPreferences,
)
def replace_preferences(body: PreferencesReplace) -> UserPreferences:
    return UserPreferences(**preferences.replace(db(), principal(), body.model_dump()))


@bp.patch("/me/preferences")
@endpoint(
    summary="Change some of your preferences",
    tag="preferences",
    body=PreferencesChange,
    response=UserPreferences,
)
def change_preferences(body: PreferencesChange) -> UserPreferences:
    changes = changes_of(body, nullable=("chat_model_id", "rerank_candidates", "context_window"))
    return UserPreferences(**preferences.change(db(), principal(), changes))
