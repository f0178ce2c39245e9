"""A local cross-encoder reranker: an ONNX model file the admin provides, its tokenizer.json beside.

The model's sha256 is pinned in POSTRAG_RERANK_ONNX_SHA256: a file that does not match is refused
at start. It runs as the local embedder does (app/providers/local_embedder.py): onnxruntime on one
intra-op thread with spinning off, since PostgreSQL shares the cores. Inputs are the pair
(query, passage) as the tokenizer's template joins them (input_ids, attention_mask and, when the
model asks for it, token_type_ids); the output's first column is the relevance logit.

Scoring is bounded by POSTRAG_RERANK_TIMEOUT_S, as the HTTP rerankers are: the time waiting for
another search's inference counts, a run still going at the deadline is stopped (onnxruntime's
RunOptions.terminate), and the RerankError that follows makes search keep the fused order.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.providers.local_embedder import _sha256
from app.providers.rerank import RerankError

MAX_TOKENS = 512
BATCH_SIZE = 16


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxReranker:
    """A cross-encoder loaded once; one inference at a time (one core's worth of work)."""

    def __init__(self, model_path: str, sha256: str, timeout_s: float) -> None:
        from tokenizers import Tokenizer

        path = Path(model_path)
        tokenizer_path = path.parent / "tokenizer.json"
        for needed in (path, tokenizer_path):
            if not needed.is_file():
                raise RerankError(f"onnx reranker: {needed} is not a file", "no model file")
        if _sha256(path) != sha256.lower():
            raise RerankError(
                f"onnx reranker: {path} does not match its pinned sha256 {sha256}",
                "the model file does not match its sha256",
            )
        self.kind = "onnx"
        self.name = f"onnx:{path.name}"
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._session = _session(path)
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._lock = threading.Lock()
        self._timeout_s = timeout_s

    def scores(self, query: str, passages: list[str]) -> list[float]:
        deadline = time.monotonic() + self._timeout_s
        scores: list[float] = []
        for start in range(0, len(passages), BATCH_SIZE):
            scores.extend(self._batch(query, passages[start : start + BATCH_SIZE], deadline))
        return scores

    def _batch(self, query: str, passages: list[str], deadline: float) -> list[float]:
        encodings = self._tokenizer.encode_batch([(query, p) for p in passages])
        length = max(len(e.ids) for e in encodings)
        feeds = {
            name: np.zeros((len(passages), length), dtype=np.int64)
            for name in ("input_ids", "attention_mask", "token_type_ids")
        }
        for row, encoding in enumerate(encodings):
            size = len(encoding.ids)
            feeds["input_ids"][row, :size] = encoding.ids
            feeds["attention_mask"][row, :size] = 1
            feeds["token_type_ids"][row, :size] = encoding.type_ids
        logits = self._run({k: v for k, v in feeds.items() if k in self._inputs}, deadline)
        return [float(v) for v in np.asarray(logits).reshape(len(passages), -1)[:, 0]]

    def _run(self, feeds: dict[str, Any], deadline: float) -> Any:
        """The model's first output; a RerankError once `deadline` (time.monotonic) passes."""
        import onnxruntime as ort

        left = deadline - time.monotonic()
        if left <= 0 or not self._lock.acquire(timeout=left):
            raise self._late()
        options = ort.RunOptions()
        stop = threading.Timer(max(0.0, deadline - time.monotonic()), _terminate, (options,))
        stop.start()
        try:
            return self._session.run(None, feeds, options)[0]
        except Exception as exc:  # onnxruntime raises its own untyped errors
            if options.terminate:
                raise self._late() from None
            raise RerankError(f"onnx reranker failed: {exc}", "the model failed") from None
        finally:
            stop.cancel()
            self._lock.release()

    def _late(self) -> RerankError:
        return RerankError(
            f"onnx reranker did not finish in time (POSTRAG_RERANK_TIMEOUT_S={self._timeout_s:g})",
            "no scores in time",
        )

    def close(self) -> None:
        pass  # the session is freed with the object


def _terminate(options: Any) -> None:
    options.terminate = True  # the run in progress stops at its next node
