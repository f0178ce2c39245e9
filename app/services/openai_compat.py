"""The OpenAI-compatible API's use cases: model list, embeddings, and stateless chat completions
with optional retrieval over the caller's collections (nothing is stored as a chat).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg_pool import ConnectionPool

from app.db import scope
from app.errors import NotFound, ServiceUnavailable, ValidationFailed
from app.providers.embeddings import Embedder, EmbeddingError, QueryEmbedders
from app.providers.llm import LLMClients, Piece
from app.repositories import Conn
from app.repositories import llm_models as model_repo
from app.services import answering, chats, followups, prompting, usage
from app.services.search import Connect, SearchDeps
from app.services.tokens import Principal
from app.settings import Settings

log = logging.getLogger(__name__)


def list_models(conn: Conn, settings: Settings, embedder: Embedder) -> list[dict[str, Any]]:
    """Registered models, the configured chat model, `extractive` (always available), and each
    chat model again with the retrieval suffix (POSTRAG_RAG_MODEL_SUFFIX)."""
    rows, _ = model_repo.list_page(conn, kind=None, limit=1000, offset=0)
    found: dict[str, dict[str, Any]] = {}
    chat: list[str] = []
    for row in rows:
        created = int(row["created_at"].timestamp())
        found.setdefault(
            row["name"], {"id": row["name"], "created": created, "owned_by": row["provider"]}
        )
        if row["kind"] == "chat":
            chat.append(row["name"])
    if settings.chat_model:
        found.setdefault(
            settings.chat_model, {"id": settings.chat_model, "created": 0, "owned_by": settings.llm}
        )
        chat.append(settings.chat_model)
    found.setdefault(
        embedder.model, {"id": embedder.model, "created": 0, "owned_by": embedder.provider}
    )
    found.setdefault(
        prompting.EXTRACTIVE_MODEL,
        {"id": prompting.EXTRACTIVE_MODEL, "created": 0, "owned_by": "postrag"},
    )
    for name in [*chat, prompting.EXTRACTIVE_MODEL]:
        variant = name + settings.rag_model_suffix
        found.setdefault(variant, {**found[name], "id": variant})
    return [{**m, "object": "model"} for m in found.values()]


def with_retrieval(model: str | None, suffix: str) -> tuple[str | None, bool]:
    """(the model that answers, whether it searches first): `llama3.2+rag` is `llama3.2` over
    the caller's documents, for clients that cannot send the `rag` field."""
    if model is not None and model.endswith(suffix) and len(model) > len(suffix):
        return model.removesuffix(suffix), True
    return model, False


def embed(
    conn: Conn, embedders: QueryEmbedders, configured: Embedder, model: str, texts: list[str]
) -> tuple[np.ndarray, int]:
    """Vectors of `texts` by the named embedding model, and the tokens they took."""
    if model == configured.model:
        embedder = configured
    else:
        rows = model_repo.find_by_name(conn, model, "embedding")
        if not rows:
            raise NotFound(f"no embedding model {model!r}; GET /v1/models lists them")
        try:
            embedder = embedders.get(rows[0]["provider"], rows[0]["name"])
        except EmbeddingError as exc:
            raise ServiceUnavailable(str(exc)) from None
    try:
        vectors = embedder.embed(texts)
    except EmbeddingError as exc:
        raise ServiceUnavailable(str(exc)) from None
    tokens = sum(len(embedder.token_spans(t)) for t in texts)
    return vectors, tokens


@dataclass
class Completion:
    target: answering.ChatTarget
    prompt: prompting.Prompt
    warnings: list[str]
    max_tokens: int
    temperature: float
    hold: usage.LLMTokenHold | None  # None for extractive answers: they are free
    rewrite_tokens: tuple[int, int] = (0, 0)  # prompt and completion of the query's rewrite

    def citations(self, answer: str) -> list[dict[str, Any]]:
        return [c.as_json() for c in prompting.citations(self.prompt.sources, answer)]

    def usage(self, last: Piece, generated: str) -> dict[str, int]:
        """The tokens of a finished answer: as the model counted them, else estimated."""
        prompt = last.prompt_tokens
        if prompt is None:
            prompt = self.prompt.estimated_tokens
        done = last.completion_tokens
        if done is None:
            done = prompting.count_tokens(generated)
        return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def _split(messages: list[dict[str, str]]) -> tuple[str, list[dict[str, str]], str]:
    """(system prompt, history, question) from an OpenAI message list."""
    if not messages or messages[-1]["role"] != "user":
        raise ValidationFailed.on_field(
            "messages",
            "must end with a user message",
            type="value_error",
            detail="the last message must be the user's",
        )
    system = "\n\n".join(m["content"] for m in messages if m["role"] in ("system", "developer"))
    history = [m for m in messages[:-1] if m["role"] in ("user", "assistant")]
    return system, history, messages[-1]["content"]


def prepare(
    pool: ConnectionPool[Any],
    who: Principal,
    *,
    model: str | None,
    messages: list[dict[str, str]],
    rag: dict[str, Any] | None,
    temperature: float | None,
    max_tokens: int | None,
    llm: LLMClients,
    search: SearchDeps,
) -> Completion:
    """Hold the tokens an answer may take of the caller's daily budget (first: a follow-up's
    rewrite is paid from it too), resolve the model (None: the caller's preferred one),
    retrieve (when `rag` is given or the model is a retrieval variant) and build the prompt.
    Release the hold with `usage.settle_llm_tokens`; on an error here it is released, the
    rewrite's tokens counted.

    Connections are taken from `pool` only while used: none is held while the chat model
    rewrites a follow-up (it may take POSTRAG_CHAT_REWRITE_TIMEOUT_S) or the reranker scores."""
    system, history, question = _split(messages)
    settings = search.settings
    model, searches = with_retrieval(model, settings.rag_model_suffix)
    if searches and rag is None:  # the user's preferences, all readable collections
        rag = {}
    with scope.user_connection(pool, who.user_id) as conn:
        prefs = answering.preferences(conn, who.user_id)
        target = answering.resolve_target(conn, llm, prefs, requested=model)
        collections = chats.check_scope(conn, who, (rag or {}).get("collection_ids"))
        hold = None
        if target.provider != "extractive":  # prompt and answer fit the context: hold all of it
            budget = settings.llm_tokens_per_day
            hold = usage.hold_llm_tokens(conn, who.user_id, budget, target.context_length)
    asked = followups.Standalone(question, "question")
    found = answering.Retrieval([], [], prefs.search_mode)
    answer_tokens = min(max_tokens or settings.chat_answer_tokens, target.context_length // 2)
    try:
        if rag is not None:
            asked = followups.standalone(llm, target, history, question)
            found = _retrieved(
                lambda: scope.user_connection(pool, who.user_id),
                who,
                asked.query,
                collections,
                rag,
                prefs,
                search,
            )
        prompt = prompting.build_prompt(
            system_prompt=system or prefs.system_prompt,
            sources=found.sources,
            history=history,
            question=question,
            context_tokens=target.context_length,
            answer_tokens=answer_tokens,
            search_query=asked.query,
        )
    except BaseException:
        usage.release_llm_tokens(pool, hold, sum(asked.tokens))
        raise
    temperature = prefs.temperature if temperature is None else temperature
    warnings = asked.warnings + found.warnings
    return Completion(target, prompt, warnings, answer_tokens, temperature, hold, asked.tokens)


def _retrieved(
    connect: Connect,
    who: Principal,
    query: str,
    collections: list[int] | None,
    rag: dict[str, Any],
    prefs: answering.Preferences,
    search: SearchDeps,
) -> answering.Retrieval:
    return answering.retrieve(
        connect,
        who,
        query,
        collection_ids=collections,
        prefs=prefs,
        deps=search,
        top_k=rag.get("top_k"),
        mode=rag.get("mode"),
        min_similarity=rag.get("min_similarity"),
        options=answering.RetrievalOptions(context_window=rag.get("context_window")),
    )


def pieces(
    completion: Completion, llm: LLMClients
) -> Generator[tuple[str, str, Piece | None], None, None]:
    """(answer text, reasoning text, the closing piece or None) as the model streams."""
    splitter = prompting.ThinkSplitter()
    stream = answering.generate(
        llm,
        completion.target,
        completion.prompt,
        temperature=completion.temperature,
        max_tokens=completion.max_tokens,
    )
    try:
        for piece in stream:
            if piece.done:
                text, thought = splitter.flush()
                yield text, thought, piece
                return
            text, thought = splitter.feed(piece.text)
            if text or thought or piece.reasoning:
                yield text, piece.reasoning + thought, None
    finally:
        stream.close()


class Accountant:
    """Reports a completion's tokens to the usage log and the daily budget (from any thread),
    also those of an answer that failed or was abandoned midway."""

    def __init__(
        self, completion: Completion, pool: ConnectionPool[Any], llm_usage: dict[str, int]
    ) -> None:
        self.llm_usage, self.hold, self.pool = llm_usage, completion.hold, pool
        self.prompt_tokens = completion.prompt.estimated_tokens
        self.rewrite_tokens = completion.rewrite_tokens

    def __call__(self, counted: dict[str, int]) -> None:
        """Count the answer's tokens, with those the rewrite of its query took."""
        prompt, done = self.rewrite_tokens
        counted = {
            "prompt_tokens": counted["prompt_tokens"] + prompt,
            "completion_tokens": counted["completion_tokens"] + done,
            "total_tokens": counted["total_tokens"] + prompt + done,
        }
        self.llm_usage.update(
            prompt_tokens=counted["prompt_tokens"], completion_tokens=counted["completion_tokens"]
        )
        if self.hold is not None:
            usage.settle_llm_tokens(self.pool, self.hold, counted["total_tokens"])

    def close(self, generated: str) -> None:
        """However the answer ended: one cut short (an error, a client that left) still counts
        the tokens it made the model generate, estimated, as a chat does; one that generated
        nothing gives back the tokens it held, its query's rewrite counted."""
        if generated and self.hold is not None and not self.hold.settled:
            prompt, done = self.prompt_tokens, prompting.count_tokens(generated)
            counted = {"prompt_tokens": prompt, "completion_tokens": done}
            counted["total_tokens"] = prompt + done
            try:
                self(counted)
            except Exception:  # the stream is over: nobody to tell
                log.exception("could not count the tokens of a /v1 answer cut short")
        usage.release_llm_tokens(self.pool, self.hold, sum(self.rewrite_tokens))
