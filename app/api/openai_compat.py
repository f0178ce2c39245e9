"""/v1: the OpenAI-compatible API (models, embeddings, chat completions) on postrag tokens.

Existing OpenAI clients work unchanged with base_url http://host/v1 and a postrag token as the
API key. Retrieval is opt-in with the extension field `rag`, or by asking for a chat model's
retrieval variant (`llama3.2+rag`, for clients that cannot send that field); the sources given
to the model come back in the extension field `citations`. Errors are problem+json that also
carry OpenAI's `error` object, so the SDKs show their message.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Generator, Iterator
from typing import Annotated, Any, Literal, NoReturn

from flask import Blueprint, Response, g
from pydantic import BaseModel, ConfigDict, Field

from app import strict_json
from app.api.endpoint import db, endpoint, principal, release_db
from app.api.problems import ProblemContext, problem_body
from app.errors import FieldError, NotFound, ValidationFailed, as_app_error
from app.runtime import runtime
from app.services import openai_compat, wider_context

bp = Blueprint("openai", __name__, url_prefix="/v1")
MAX_MESSAGES_CHARS = 1_000_000

_Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
_Text = Annotated[str, Field(min_length=1, max_length=100_000)]


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class EmbeddingsBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    input: _Text | list[_Text] = Field(description="a text or up to 2048 texts")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1, description="must equal the model's dimension")


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str = Field(max_length=100_000)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Annotated[str, Field(max_length=100_000)] | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class RagOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection_ids: list[_Id] | None = Field(None, min_length=1, max_length=100)
    top_k: int | None = Field(None, ge=1, le=50)
    mode: Literal["hybrid", "semantic", "fulltext"] | None = None
    min_similarity: float | None = Field(None, ge=0, le=1)
    context_window: int | None = Field(
        None,
        ge=0,
        le=wider_context.MAX_TOKENS,
        description="tokens of neighbouring text per source (default: your preference's, else"
        " POSTRAG_CHAT_CONTEXT_WINDOW)",
    )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class CompletionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")  # sampling knobs we do not pass on are ignored

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(None, ge=1, le=1_000_000)
    n: Literal[1] = 1
    rag: RagOptions | None = Field(
        None, description="postrag extension: retrieve sources from your collections"
    )


class CompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, int]
    citations: list[dict[str, Any]] = Field(description="postrag extension: sources given")


@bp.get("/models")
@endpoint(summary="Models (OpenAI-compatible)", tag="openai", response=ModelList)
def list_models() -> ModelList:
    return ModelList(data=_models())


def _models() -> list[ModelObject]:
    rt = runtime()
    models = openai_compat.list_models(db(), rt.settings, rt.embedder)
    return [ModelObject(**m) for m in models]


@bp.get("/models/<path:model>")
@endpoint(
    summary="One model (OpenAI-compatible)", tag="openai", response=ModelObject, errors=(404,)
)
def get_model(model: str) -> ModelObject:
    for found in _models():
        if found.id == model:
            return found
    raise NotFound(f"no model {model!r}")


@bp.post("/embeddings")
@endpoint(
    summary="Embed texts (OpenAI-compatible)",
    tag="openai",
    body=EmbeddingsBody,
    errors=(404, 503),
    reads_only=True,
)
def create_embeddings(body: EmbeddingsBody) -> dict[str, Any]:
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not 1 <= len(texts) <= 2048 or sum(map(len, texts)) > 1_000_000:
        _invalid("input", "give 1 to 2048 texts of at most 1,000,000 characters in all")
    rt = runtime()
    vectors, tokens = openai_compat.embed(db(), rt.query_embedders, rt.embedder, body.model, texts)
    if body.dimensions is not None and body.dimensions != vectors.shape[1]:
        _invalid("dimensions", f"this model's vectors have {vectors.shape[1]} dimensions")
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(row.astype("<f4").tobytes()).decode()
            if body.encoding_format == "base64"
            else row.tolist(),
        }
        for i, row in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _invalid(field: str, msg: str) -> NoReturn:
    error = FieldError((field,), msg, "value_error", source="body")
    raise ValidationFailed(f"{field}: {msg}", [error])


@bp.post("/chat/completions")
@endpoint(
    summary="Chat completion, optionally over your documents (OpenAI-compatible; SSE with"
    " stream=true)",
    tag="openai",
    body=CompletionBody,
    response=CompletionResponse,
    errors=(404, 502, 503, 504),
    reads_only=True,
    streams=True,
)
def create_completion(body: CompletionBody) -> Any:
    if sum(len(m.text()) for m in body.messages) > MAX_MESSAGES_CHARS:
        _invalid("messages", f"at most {MAX_MESSAGES_CHARS:,} characters in all")
    rt, who = runtime(), principal()
    release_db()  # the service takes connections only while it uses them (not during the model)
    completion = openai_compat.prepare(
        rt.pool,
        who,
        model=body.model,
        messages=[{"role": m.role, "content": m.text()} for m in body.messages],
        rag=body.rag.model_dump() if body.rag else None,
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        llm=rt.llm,
        search=rt.search,
    )
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    pieces = openai_compat.pieces(completion, rt.llm)
    account = openai_compat.Accountant(completion, rt.pool, g.llm_usage)
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        failed = ProblemContext.of_request(streamed=True)
        return Response(
            _chunks(completion, pieces, ident, created, include_usage, account, failed),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    return _complete(completion, pieces, ident, created, account)


def _complete(
    completion: openai_compat.Completion,
    pieces: Generator[Any, None, None],
    ident: str,
    created: int,
    account: openai_compat.Accountant,
) -> CompletionResponse:
    text = reasoning = ""
    try:
        for answer, thought, last in pieces:
            text, reasoning = text + answer, reasoning + thought
            if last is not None:
                message: dict[str, Any] = {"role": "assistant", "content": text}
                if reasoning:
                    message["reasoning_content"] = reasoning
                counted = completion.usage(last, text + reasoning)
                account(counted)
                return CompletionResponse(
                    id=ident,
                    created=created,
                    model=completion.target.model,
                    choices=[{"index": 0, "message": message, "finish_reason": last.finish_reason}],
                    usage=counted,
                    citations=completion.citations(text),
                )
    finally:
        account.close(text + reasoning)
    raise RuntimeError("the model's stream ended without its closing piece")


def _chunks(
    completion: openai_compat.Completion,
    pieces: Generator[Any, None, None],
    ident: str,
    created: int,
    include_usage: bool,
    account: openai_compat.Accountant,
    failed: ProblemContext,
) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": completion.target.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {strict_json.dumps(body)}\n\n"

    text = reasoning = ""
    try:
        yield chunk({"role": "assistant", "content": ""}, citations=completion.citations(""))
        for answer, thought, last in pieces:
            text, reasoning = text + answer, reasoning + thought
            if answer or thought:
                delta = {"content": answer} if answer else {}
                yield chunk({**delta, **({"reasoning_content": thought} if thought else {})})
            if last is not None:
                yield chunk({}, last.finish_reason, citations=completion.citations(text))
                counted = completion.usage(last, text + reasoning)
                account(counted)
                if include_usage:
                    body = {
                        "id": ident,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": completion.target.model,
                        "choices": [],
                        "usage": counted,
                    }
                    yield f"data: {strict_json.dumps(body)}\n\n"
                yield "data: [DONE]\n\n"
                return
    except Exception as exc:  # the problem a JSON answer would have been, with OpenAI's `error`
        error = as_app_error(exc, "a /v1 chat completion stream")
        yield f"data: {strict_json.dumps(problem_body(error, failed))}\n\n"
    finally:
        pieces.close()
        account.close(text + reasoning)
