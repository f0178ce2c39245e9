"""Embedders that call a server: Ollama (POST /api/embed), OpenAI-compatible (POST /v1/embeddings).

Both batch their inputs, retry 429/5xx and connection errors with exponential backoff (honouring
Retry-After), and fail with errors naming the provider, URL and status. Token spans come from the
bundled MiniLM tokenizer: remote models do not expose theirs, and chunk sizes only need to be close.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import numpy as np

from app.providers import local_embedder
from app.providers.embeddings import EmbeddingError, normalise

RETRY_STATUSES = {429, 500, 502, 503, 504}


def post_json(
    provider: str,
    client: httpx.Client,
    url: str,
    body: dict[str, Any],
    *,
    attempts: int = 4,
    backoff_s: float = 0.5,
) -> Any:
    """POST with retries; the decoded answer, or EmbeddingError naming provider, URL and status."""
    for attempt in range(1, attempts + 1):
        try:
            response = client.post(url, json=body)
        except httpx.TransportError as exc:
            if attempt == attempts:
                raise EmbeddingError(f"{provider}: cannot reach {url}: {exc}") from exc
            time.sleep(backoff_s * 2 ** (attempt - 1))
            continue
        if response.status_code in RETRY_STATUSES and attempt < attempts:
            retry_after = response.headers.get("Retry-After", "")
            delay = float(retry_after) if retry_after.isdigit() else backoff_s * 2 ** (attempt - 1)
            time.sleep(min(delay, 30.0))
            continue
        if response.status_code != 200:
            raise EmbeddingError(
                f"{provider}: {url} answered {response.status_code}: {error_text(response)}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise EmbeddingError(f"{provider}: {url} answered invalid JSON") from exc
    raise AssertionError("unreachable")


def error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))[:300]
    return str(error or body)[:300]


class _HttpEmbedder:
    provider = ""
    max_tokens = local_embedder.MAX_TOKENS
    batch_size = 64

    def __init__(self, base_url: str, model: str, headers: dict[str, str] | None = None):
        if not model:
            raise EmbeddingError(
                f"{self.provider}: set POSTRAG_EMBEDDING_MODEL to the model's name"
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._client = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0), headers=headers)
        self._dimension: int | None = None

    def close(self) -> None:
        self._client.close()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return local_embedder.token_spans(text)

    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self.embed(["dimension probe"]).shape[1])
        return self._dimension

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        rows = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            vectors = self._embed_batch(batch)
            if len(vectors) != len(batch):
                raise EmbeddingError(
                    f"{self.provider}: asked for {len(batch)} embeddings, got {len(vectors)}"
                )
            rows.extend(vectors)
        try:
            matrix = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError):
            matrix = np.zeros(0)
        if matrix.ndim != 2 or matrix.shape[1] == 0:
            raise EmbeddingError(
                f"{self.provider}: the answer's embeddings are not lists of numbers of one length"
            )
        matrix = normalise(matrix, self.provider)
        self._dimension = int(matrix.shape[1])
        return matrix

    def _embed_batch(self, texts: list[str]) -> list[Any]:
        raise NotImplementedError


class OllamaEmbedder(_HttpEmbedder):
    provider = "ollama"

    def _embed_batch(self, texts: list[str]) -> list[Any]:
        url = f"{self.base_url}/api/embed"
        body = post_json(self.provider, self._client, url, {"model": self.model, "input": texts})
        return list(body["embeddings"])


class OpenAIEmbedder(_HttpEmbedder):
    provider = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        super().__init__(base_url, model, headers)

    def _embed_batch(self, texts: list[str]) -> list[Any]:
        url = f"{self.base_url}/embeddings"
        body = post_json(
            self.provider,
            self._client,
            url,
            {"model": self.model, "input": texts, "encoding_format": "float"},
        )
        items = sorted(body["data"], key=lambda item: item["index"])
        return [_decode(item["embedding"]) for item in items]


def _decode(embedding: Any) -> Any:
    # Some servers answer base64 (little-endian float32) whatever was asked.
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return embedding
