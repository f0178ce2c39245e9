"""The RAG answer: which model answers, what is retrieved for it, and the stream of its reply.

Shared by the chats API and the OpenAI-compatible API. The model is the one asked for, else the
chat's own model, else the user's preferred chat model, else the registry's default, else
POSTRAG_CHAT_MODEL on POSTRAG_LLM, else (Ollama only) the first installed chat model; with no
language model at all the answer is extractive: the best passages, labelled as not generated.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import NotFound, ServiceUnavailable
from app.metrics import metrics
from app.providers.llm import ChatRequest, LLMClients, LLMUnavailable, Piece, ToolSpec
from app.repositories import Conn
from app.repositories import collections as collection_repo
from app.repositories import llm_models as model_repo
from app.repositories import preferences as preference_repo
from app.repositories.search import Hit
from app.services import prompting, search
from app.services.tokens import Principal

log = logging.getLogger(__name__)
MAX_QUERY_CHARS = 4000  # what search takes; a longer message is searched by its start


@dataclass(frozen=True)
class ChatTarget:
    provider: str  # ollama | openai | extractive
    model: str
    context_length: int


@dataclass(frozen=True)
class Preferences:
    chat_model_id: int | None
    search_mode: str
    top_k: int
    min_similarity: float
    temperature: float
    system_prompt: str
    context_window: int | None = None  # None: POSTRAG_CHAT_CONTEXT_WINDOW


@dataclass(frozen=True)
class RetrievalOptions:
    """A request's own retrieval choices (None: the user's preference, else the server's)."""

    rerank: bool | None = None
    context_window: int | None = None


NO_OPTIONS = RetrievalOptions()


def preferences(conn: Conn, user_id: int, chat_model_id: int | None = None) -> Preferences:
    """The user's preferences; `chat_model_id` (a chat's own model) comes before theirs."""
    row = preference_repo.get(conn, user_id)
    if row is None:
        return Preferences(
            chat_model_id,
            search.DEFAULT_MODE,
            search.DEFAULT_TOP_K,
            search.DEFAULT_MIN_SIMILARITY,
            0.2,
            "",
        )
    return Preferences(
        chat_model_id or row["chat_model_id"],
        row["search_mode"],
        row["top_k"],
        float(row["similarity_threshold"]),
        float(row["temperature"]),
        row["system_prompt"],
        row["context_window"],
    )


def _target(llm: LLMClients, provider: str, name: str, context_length: int | None) -> ChatTarget:
    cap = llm.settings.chat_context_tokens
    if context_length is None and provider == "ollama":
        try:
            info = llm.show(provider, name)
        except LLMUnavailable:
            info = None  # the chat itself will report the provider as unreachable
        context_length = info.context_length if info else None
    return ChatTarget(provider, name, min(context_length or cap, cap))


def _first_ollama_chat_model(llm: LLMClients) -> str | None:
    for model in llm.client("ollama").list_models():
        info = llm.show("ollama", model.name)
        # Old Ollamas list no capabilities: then skip what is named like an embedding model.
        if info is not None and (
            info.kind == "chat" or (not info.capabilities and "embed" not in model.name)
        ):
            return model.name
    return None


def resolve_target(
    conn: Conn, llm: LLMClients, prefs: Preferences, requested: str | None = None
) -> ChatTarget:
    """The model that answers (see the module docstring for the order)."""
    extractive = ChatTarget(
        "extractive", prompting.EXTRACTIVE_MODEL, llm.settings.chat_context_tokens
    )
    if requested is not None:
        if requested == prompting.EXTRACTIVE_MODEL:
            return extractive
        rows = model_repo.find_by_name(conn, requested, "chat")
        if rows:
            return _target(llm, rows[0]["provider"], rows[0]["name"], rows[0]["context_length"])
        if requested == llm.settings.chat_model and llm.provider in ("ollama", "openai"):
            return _target(llm, llm.provider, requested, None)
        raise NotFound(f"no chat model {requested!r}; GET /v1/models lists them")
    row = model_repo.get(conn, prefs.chat_model_id) if prefs.chat_model_id else None
    row = row or model_repo.default_for(conn, "chat")
    if row is not None:
        return _target(llm, row["provider"], row["name"], row["context_length"])
    if llm.settings.chat_model and llm.provider in ("ollama", "openai"):
        return _target(llm, llm.provider, llm.settings.chat_model, None)
    if llm.provider == "ollama":
        name = _first_ollama_chat_model(llm)
        if name is None:
            raise LLMUnavailable("ollama", "has no chat model installed; pull one first")
        return _target(llm, "ollama", name, None)
    return extractive


@dataclass
class Retrieval:
    sources: list[Hit]
    warnings: list[str]
    mode: str


def retrieve(
    connect: search.Connect,
    who: Principal,
    question: str,
    *,
    collection_ids: list[int] | None,
    prefs: Preferences,
    deps: search.SearchDeps,
    top_k: int | None = None,
    mode: str | None = None,
    min_similarity: float | None = None,
    options: RetrievalOptions = NO_OPTIONS,
) -> Retrieval:
    """The passages for `question` within `collection_ids` (None: all readable), best first.

    Collections deleted or unshared since the scope was set are skipped, not errors. When the
    embedding model is down, semantic search falls back to full text with a warning. Each
    passage brings `context_window` tokens of its neighbours: the request's, else the user's
    preference, else POSTRAG_CHAT_CONTEXT_WINDOW. `rerank` None follows the preference.
    """
    warnings: list[str] = []
    if collection_ids is not None:
        with connect() as conn:
            readable = collection_repo.readable_ids(conn, who.user_id, collection_ids)
        if len(readable) < len(collection_ids):
            warnings.append("some collections of this chat no longer exist and were skipped")
        if not readable:
            return Retrieval([], warnings, mode or prefs.search_mode)
        collection_ids = readable
    request = search.SearchRequest(
        query=question[:MAX_QUERY_CHARS],
        mode=mode or prefs.search_mode,
        top_k=top_k or prefs.top_k,
        min_similarity=prefs.min_similarity if min_similarity is None else min_similarity,
        collection_ids=collection_ids,
        context_window=_first(
            options.context_window, prefs.context_window, deps.settings.chat_context_window
        ),
        rerank=options.rerank,
    )
    try:
        result = search.search(connect, who, request, deps)
    except ServiceUnavailable as exc:  # semantic mode with the embedding model down
        warnings.append(f"semantic search failed ({exc.detail}); used full text instead")
        result = search.search(
            connect,
            who,
            dataclasses.replace(request, mode="fulltext"),
            deps,
        )
    return Retrieval(result.hits, warnings + result.warnings, result.mode)


def _first(*choices: int | None) -> int:
    return next(c for c in choices if c is not None)


def generate(
    llm: LLMClients,
    target: ChatTarget,
    prompt: prompting.Prompt,
    *,
    temperature: float,
    max_tokens: int,
    conversation: Sequence[dict[str, Any]] | None = None,
    tools: tuple[ToolSpec, ...] = (),
) -> Generator[Piece, None, None]:
    """The reply's pieces, ending with a `done` piece (extractive answers included).

    `conversation` replaces the prompt's messages (a chat's prompt with the tool calls made and
    their results); `tools` are the functions the model may call.

    Timed and its tokens counted for GET /metrics: outcome `complete` at the done piece, `error`
    when the provider fails, `stopped` when the reader closes the generator first.
    """
    started, outcome = time.monotonic(), "stopped"
    try:
        messages = list(prompt.messages if conversation is None else conversation)
        request = ChatRequest(
            target.model, messages, temperature, max_tokens, target.context_length, tools
        )
        for piece in _pieces(llm, target, prompt, request):
            if piece.done:
                outcome = "complete"
                tokens = metrics().llm_tokens
                tokens.labels(target.provider, "prompt").inc(piece.prompt_tokens or 0)
                tokens.labels(target.provider, "completion").inc(piece.completion_tokens or 0)
            yield piece
    except Exception:
        outcome = "error"
        raise
    finally:
        elapsed = time.monotonic() - started
        metrics().llm_seconds.labels(target.provider, outcome).observe(elapsed)


def _pieces(
    llm: LLMClients, target: ChatTarget, prompt: prompting.Prompt, request: ChatRequest
) -> Generator[Piece, None, None]:
    if target.provider == "extractive":
        text = ""
        for piece in prompting.extractive_answer(prompt.sources, prompt.quotes_for):
            text += piece
            yield Piece(text=piece)
        yield Piece(
            done=True,
            finish_reason="stop",
            prompt_tokens=0,
            completion_tokens=prompting.count_tokens(text),
        )
        return
    yield from llm.client(target.provider).stream(request)
