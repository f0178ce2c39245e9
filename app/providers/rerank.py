"""Rerankers: score (query, passage) pairs after fusion, over HTTP or with a local ONNX model.

The HTTP client speaks the `/rerank` APIs self-hosters run. Every failure is a RerankError;
search keeps the fused order then. The shapes, as checked against each server's docs or source:

- Cohere `POST /v2/rerank` {model, query, documents: [str], top_n} -> {id, results: [{index,
  relevance_score}], meta} (docs.cohere.com/reference/rerank; v2 requires `model`).
- Jina `POST /v1/rerank` {model, query, documents, top_n, return_documents} -> {model, usage,
  results: [{index, relevance_score, document?: {text}}]} (jina.ai/reranker; documents are
  returned unless `return_documents` is false, so it is sent false).
- llama.cpp server `POST /v1/rerank` (also /rerank, /reranking) with `documents` -> {model,
  object: "list", usage, results: [{index, relevance_score}]}, sorted and cut to top_n
  (tools/server format_response_rerank; given `texts` instead it would answer TEI's shape).
- Infinity `POST /rerank` {query, documents, model, top_n, return_documents} -> {object:
  "rerank", results: [{relevance_score, index, document}], model, usage, id, created}
  (infinity_emb fastapi_schemas/pymodels.py RerankInput, ReRankResult).
- Hugging Face TEI `POST /rerank` {query, texts, truncate} -> [{index, score, text?}]
  (router/src/http/types.rs RerankRequest, RerankResponse).

Results are matched by `index`: the servers sort them by score, not in the documents' order.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import httpx

from app.providers.http_embedders import error_text
from app.settings import Settings

# Where each kind of server answers, under POSTRAG_RERANK_URL.
PATHS = {
    "cohere": "/v2/rerank",
    "jina": "/v1/rerank",
    "llamacpp": "/v1/rerank",
    "infinity": "/rerank",
    "tei": "/rerank",
}

# TEI's default --max-client-batch-size: it answers 413 {"error": "batch size 33 > maximum allowed
# batch size 32", "error_type": "Validation"} past it (router/src/http/server.rs), so its passages
# go in batches of this many; scores come back by index within each batch.
TEI_BATCH = 32
WRONG_SHAPE = "an answer of the wrong shape"


class RerankError(Exception):
    """The reranker could not score the passages (unreachable, timeout, bad answer).

    Its message has the details for the log (the server's URL, its error body); `reason` is
    what a searcher may read in a search's warnings.
    """

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Reranker(Protocol):
    name: str
    kind: str  # a POSTRAG_RERANK value, the only part of the reranker warnings name

    def scores(self, query: str, passages: list[str]) -> list[float]:
        """One relevance score per passage, in the passages' order; higher is better."""
        ...

    def close(self) -> None: ...


class HttpReranker:
    """A client for one rerank server of the kinds in PATHS."""

    def __init__(
        self, kind: str, url: str, model: str, api_key: str | None, timeout_s: float
    ) -> None:
        self.kind = kind
        self.name = f"{kind}:{model}" if model else kind
        self._model = model
        self._url = url.rstrip("/") + PATHS[kind]
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)

    def _body(self, query: str, passages: list[str]) -> dict[str, Any]:
        if self.kind == "tei":
            return {"query": query, "texts": passages, "truncate": True}
        body: dict[str, Any] = {"query": query, "documents": passages, "top_n": len(passages)}
        if self._model:
            body["model"] = self._model
        if self.kind == "jina":  # Jina returns each document's text unless told not to
            body["return_documents"] = False
        return body

    def scores(self, query: str, passages: list[str]) -> list[float]:
        if self.kind != "tei":
            return self._batch_scores(query, passages)
        # TEI refuses more texts per request than its MAX_CLIENT_BATCH_SIZE (32 by default).
        return [
            score
            for start in range(0, len(passages), TEI_BATCH)
            for score in self._batch_scores(query, passages[start : start + TEI_BATCH])
        ]

    def _batch_scores(self, query: str, passages: list[str]) -> list[float]:
        try:
            response = self._client.post(self._url, json=self._body(query, passages))
        except httpx.TimeoutException:
            raise RerankError(
                f"{self.kind} reranker at {self._url} did not answer in time", "no answer in time"
            ) from None
        except httpx.HTTPError as exc:
            raise RerankError(
                f"cannot reach the {self.kind} reranker at {self._url}: {exc}", "unreachable"
            ) from None
        if response.status_code >= 400:
            raise RerankError(
                f"{self.kind} reranker at {self._url} answered {response.status_code}:"
                f" {error_text(response)}",
                f"HTTP {response.status_code}",
            )
        try:
            answer = response.json()
        except ValueError:
            raise RerankError(
                f"{self.kind} reranker at {self._url} did not answer JSON", "an answer not JSON"
            ) from None
        return _read_scores(self.kind, answer, len(passages))

    def close(self) -> None:
        self._client.close()


def _read_scores(kind: str, answer: Any, count: int) -> list[float]:
    """Scores by passage index from [{index, score}] (TEI) or {results: [{index,
    relevance_score}]} (the others); an index missing, repeated or out of range is an error."""
    items, key = (answer, "score") if kind == "tei" else (_results(answer), "relevance_score")
    if not isinstance(items, list):
        raise RerankError(f"{kind} reranker answered no list of scores", WRONG_SHAPE)
    scores: list[float | None] = [None] * count
    for item in items:
        index = item.get("index") if isinstance(item, dict) else None
        score = item.get(key) if isinstance(item, dict) else None
        if not (
            isinstance(index, int)
            and 0 <= index < count
            and scores[index] is None
            and isinstance(score, int | float)
            and math.isfinite(score)
        ):
            raise RerankError(
                f"{kind} reranker answered an item of the wrong shape: {item!r:.100}", WRONG_SHAPE
            )
        scores[index] = float(score)
    if any(s is None for s in scores):
        raise RerankError(f"{kind} reranker scored {len(items)} of {count} passages", WRONG_SHAPE)
    return [s for s in scores if s is not None]


def _results(answer: Any) -> Any:
    return answer.get("results") if isinstance(answer, dict) else None


def make_reranker(settings: Settings) -> Reranker | None:
    """The reranker POSTRAG_RERANK names, or None when it is `none`."""
    kind = settings.rerank
    if kind == "none":
        return None
    if kind == "onnx":
        from app.providers.rerank_onnx import OnnxReranker

        return OnnxReranker(
            settings.rerank_onnx_path, settings.rerank_onnx_sha256, settings.rerank_timeout_s
        )
    return HttpReranker(
        kind,
        settings.rerank_url,
        settings.rerank_model,
        settings.rerank_api_key,
        settings.rerank_timeout_s,
    )
