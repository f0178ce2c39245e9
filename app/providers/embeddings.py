"""The Embedder protocol and the factory that picks one from the settings.

The rest of postrag only sees `Embedder`: which provider is in use is decided here, once.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np

if TYPE_CHECKING:
    from app.settings import Settings


class EmbeddingError(RuntimeError):
    """An embedding provider failed; the message names the provider, URL and status."""


class Embedder(Protocol):
    provider: str  # ollama | openai | local (the llm_models.provider value)
    model: str  # the model's name in the llm_models registry
    max_tokens: int  # longest input the model takes; longer inputs are truncated

    def dimension(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised float32 row per text."""
        ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the text's tokens, in the model's tokenizer (or a close one)."""
        ...


def without_direction(vectors: np.ndarray) -> list[int]:
    """The rows cosine similarity cannot compare: a NaN or an infinity, or all zeros.

    Their cosine distance to anything is NaN, which PostgreSQL ranks above every number.
    """
    wide = np.asarray(vectors, dtype=np.float64)
    finite = np.isfinite(wide).all(axis=1)
    largest = np.abs(np.where(np.isfinite(wide), wide, 0.0)).max(axis=1, initial=0.0)
    return np.flatnonzero(~finite | (largest == 0)).tolist()


def normalise(vectors: np.ndarray, provider: str) -> np.ndarray:
    """Rows scaled to length 1; EmbeddingError naming the first row that has no direction."""
    bad = without_direction(vectors)
    if bad:
        raise EmbeddingError(
            f"{provider}: the model answered a vector without direction (all zeros, NaN or"
            f" infinite) for input {bad[0] + 1} of {len(vectors)}"
        )
    # Divided by its largest value first, a row's squares neither underflow nor overflow.
    wide = np.asarray(vectors, dtype=np.float64)
    wide = wide / np.abs(wide).max(axis=1, keepdims=True)
    unit: np.ndarray = (wide / np.linalg.norm(wide, axis=1, keepdims=True)).astype(np.float32)
    return unit


def make_embedder(settings: Settings) -> Embedder:
    """The embedder POSTRAG_EMBEDDER names (local by default, offline)."""
    if settings.embedder == "local":
        from app.providers.local_embedder import DEFAULT_MODEL, LocalEmbedder

        model = settings.embedding_model or DEFAULT_MODEL
        return LocalEmbedder(
            model=model, cache_dir=settings.data_dir / "models", batch_size=settings.embed_batch
        )
    from app.providers.http_embedders import OllamaEmbedder, OpenAIEmbedder

    if settings.embedder == "ollama":
        return OllamaEmbedder(settings.ollama_url, settings.embedding_model)
    return OpenAIEmbedder(
        settings.openai_base_url, settings.embedding_model, settings.openai_api_key
    )


def for_queries(embedder: Embedder) -> Embedder:
    """The embedder's twin that queries use: a local model's own session (never queued behind an
    ingestion batch); an HTTP embedder itself (its server queues, not postrag)."""
    twin = getattr(embedder, "for_queries", None)
    return embedder if twin is None else cast(Embedder, twin())


class QueryEmbedders:
    """The embedder for a given (provider, model): the configured one, or one made on demand,
    each on its queries' side (for_queries).

    Search embeds a query with the model of the space it searches, which is not the configured
    model while a new model's space is still being filled.
    """

    def __init__(self, settings: Settings, configured: Embedder):
        self._settings = settings
        self._configured = for_queries(configured)
        self._made: dict[tuple[str, str], Embedder] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the HTTP clients of the embedders made on demand."""
        with self._lock:
            for made in self._made.values():
                close = getattr(made, "close", None)
                if close is not None:
                    close()
            self._made.clear()

    def get(self, provider: str, model: str) -> Embedder:
        key = (provider, model)
        if key == (self._configured.provider, self._configured.model):
            return self._configured
        with self._lock:
            if key not in self._made:
                made = make_embedder(
                    dataclasses.replace(self._settings, embedder=provider, embedding_model=model)
                )
                if (made.provider, made.model) != key:
                    raise EmbeddingError(f"no embedder available for {provider} model {model!r}")
                self._made[key] = for_queries(made)
            return self._made[key]
