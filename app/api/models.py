"""/api/v1/models: the model registry with each model's live state; admins register, change,
remove and pull (Ollama, progress as SSE) models and choose the default chat and embedding models.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, url_for
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from app.api.endpoint import changes_of, db, endpoint, release_db
from app.api.problems import ProblemContext, problem_body
from app.api.schemas import Page, PageQuery
from app.api.sse import event_stream, sse, wants_stream
from app.providers.llm import LLMClients
from app.repositories import Row
from app.runtime import runtime
from app.services import llm_models
from app.services.llm_models import LiveState

bp = Blueprint("models", __name__, url_prefix="/api/v1")

Kind = Literal["chat", "embedding"]
_CONTEXT_LENGTH = Field(None, ge=1, le=2**31 - 1, description="tokens the model can attend to")


class ModelLiveState(BaseModel):
    state: Literal["installed", "missing", "unreachable"]
    context_length: int | None
    dimension: int | None
    capabilities: list[str] = Field(description="what the provider says (Ollama: completion, ...)")
    detail: str | None = Field(description="why a model is missing or unreachable")


class LLMModel(BaseModel):
    id: int
    provider: str
    name: str
    kind: str
    dimension: int | None
    context_length: int | None
    capabilities: dict[str, Any]
    is_default: bool
    created_at: datetime
    updated_at: datetime
    live: ModelLiveState = Field(description="what the provider has right now")


class LLMModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    provider: Literal["ollama", "openai", "local"]
    name: str = Field(min_length=1, max_length=200)
    kind: Kind
    dimension: int | None = Field(
        None, ge=1, le=16000, description="embedding models; default: what Ollama says"
    )
    context_length: int | None = Field(
        None, ge=1, le=2**31 - 1, description="default: what Ollama says"
    )
    capabilities: dict[str, Any] = Field(default_factory=dict, description="free-form notes")
    is_default: bool = Field(False, description="make it the default model of its kind")


class LLMModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    context_length: int | None = _CONTEXT_LENGTH
    capabilities: dict[str, Any] | None = None
    is_default: bool | None = Field(
        None, description="true: the default of its kind (the previous one stops being it)"
    )
    # Present only to answer a clear 422: register a new model instead.
    provider: SkipJsonSchema[Any] = None
    name: SkipJsonSchema[Any] = None
    kind: SkipJsonSchema[Any] = None
    dimension: SkipJsonSchema[Any] = None

    @field_validator("provider", "name", "kind", "dimension")
    @classmethod
    def _immutable(cls, value: Any) -> Any:
        raise ValueError("cannot be changed: register another model instead")


class LLMModelQuery(PageQuery):
    kind: Kind | None = None


class PullQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stream: bool = Field(False, description="answer as server-sent events (as Accept does)")


def _llm() -> LLMClients:
    llm: LLMClients = runtime().llm
    return llm


def _model(row: Row, live: LiveState) -> LLMModel:
    return LLMModel(**row, live=ModelLiveState(**asdict(live)))


def _with_live(rows: list[Row]) -> list[LLMModel]:
    states = llm_models.live_states(_llm(), rows)
    return [_model(row, states[row["id"]]) for row in rows]


@bp.get("/models")
@endpoint(
    summary="Registered models with their live state (installed, missing, unreachable)",
    tag="models",
    query=LLMModelQuery,
    response=Page[LLMModel],
)
def list_models(query: LLMModelQuery) -> Page[LLMModel]:
    rows, total = llm_models.list_page(
        db(), kind=query.kind, limit=query.limit, offset=query.offset
    )
    return Page[LLMModel](
        items=_with_live(rows), total=total, limit=query.limit, offset=query.offset
    )


@bp.get("/models/<int:model_id>")
@endpoint(summary="One registered model", tag="models", response=LLMModel, errors=(404,))
def get_model(model_id: int) -> LLMModel:
    return _with_live([llm_models.get(db(), model_id)])[0]


@bp.post("/models")
@endpoint(
    summary="Register a model (Ollama fills in its dimension and context length)",
    tag="models",
    auth="admin",
    status=201,
    body=LLMModelCreate,
    response=LLMModel,
    errors=(409,),
)
def register_model(body: LLMModelCreate) -> tuple[LLMModel, dict[str, str]]:
    row = llm_models.register(db(), _llm(), **body.model_dump())
    location = url_for("models.get_model", model_id=row["id"])
    return _with_live([row])[0], {"Location": location}


@bp.patch("/models/<int:model_id>")
@endpoint(
    summary="Change a model's context length, capabilities, or make it the default of its kind",
    tag="models",
    auth="admin",
    body=LLMModelUpdate,
    response=LLMModel,
    errors=(404,),
)
def update_model(model_id: int, body: LLMModelUpdate) -> LLMModel:
    changes = changes_of(body, nullable=("context_length",))
    return _with_live([llm_models.update(db(), model_id, changes)])[0]


@bp.delete("/models/<int:model_id>")
@endpoint(
    summary="Remove a model (409 while an embedding space uses it)",
    tag="models",
    auth="admin",
    status=204,
    errors=(404, 409),
)
def delete_model(model_id: int) -> None:
    llm_models.delete(db(), model_id)


def _stream(
    row: Row, events: Iterator[llm_models.PullEvent], failed: ProblemContext
) -> Iterator[str]:
    for event in events:
        if event.error is not None:
            yield sse(event.kind, problem_body(event.error, failed))
        elif event.kind == "done":
            yield sse("done", {"model": _model(row, event.data["live"]).model_dump(mode="json")})
        else:
            yield sse(event.kind, event.data)


@bp.post("/models/<int:model_id>/pull")
@endpoint(
    summary="Pull an Ollama model (JSON when done, or SSE with Accept: text/event-stream or"
    " ?stream=true: events progress, then done or error)",
    tag="models",
    auth="admin",
    query=PullQuery,
    response=LLMModel,
    errors=(404, 502, 503, 504),
    streams=True,
)
def pull_model(model_id: int, query: PullQuery) -> Any:
    row = llm_models.pullable(db(), model_id)
    llm = _llm()
    if wants_stream(query.stream):
        failed = ProblemContext.of_request(streamed=True)
        return event_stream(_stream(row, llm_models.pull_events(llm, row), failed))
    release_db()  # a pull takes minutes: hold no connection meanwhile
    for _progress in llm_models.pull(llm, row):
        pass  # the JSON answer waits for the end
    return _with_live([row])[0]
