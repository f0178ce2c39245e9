"""An in-process rerank server on 127.0.0.1 speaking one of the `/rerank` APIs self-hosters run.

The shapes are those app/providers/rerank.py cites from each server's docs or source. Cohere:
POST /v2/rerank (and /v1/rerank) {model, query, documents, top_n} -> {id, results: [{index,
relevance_score}], meta}. Jina: POST /v1/rerank, the same request and `return_documents` (default
true) -> {model, usage, results: [{index, relevance_score, document: {text}}]}, the document only
when asked. llama.cpp server: POST /v1/rerank or /rerank -> {model, object: "list", usage,
results: [{index, relevance_score}]}. Infinity: POST /rerank -> {object: "rerank", results:
[{relevance_score, index, document}], model, usage, id, created}, document null unless
`return_documents`. Hugging Face TEI: POST /rerank {query, texts, truncate} -> [{index, score}],
or 413 {error, error_type: "Validation"} past its max client batch size (32 by default).
Results come sorted by relevance, best first, cut to top_n, as the real servers send them.

`tiny_cross_encoder` writes a cross-encoder in ONNX whose effect is known, for the local reranker.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from tests.fakes import LoopbackServer, QuietHandler, send_json

PATHS = {
    "cohere": ("/v2/rerank", "/v1/rerank"),
    "jina": ("/v1/rerank",),
    "llamacpp": ("/v1/rerank", "/rerank"),
    "infinity": ("/rerank",),
    "tei": ("/rerank",),
}

TEI_MAX_CLIENT_BATCH_SIZE = 32  # TEI's default --max-client-batch-size


def reverse(query: str, texts: list[str]) -> list[float]:
    """Scores that put the last passage first: the fused order reversed."""
    return [float(i) for i in range(len(texts))]


class FakeRerankServer(LoopbackServer):
    """Scores passages with `scorer(query, texts)` (default: `reverse`) in the wire shape of
    `kind`. Knobs: `fail_status` answers every request with that status; `delay_s` before each
    answer; `on_request` runs (in the server) on each request before it is answered;
    `requests` records (path, body), `authorizations` each request's Authorization."""

    def __init__(
        self, kind: str, scorer: Callable[[str, list[str]], list[float]] = reverse
    ) -> None:
        self.kind = kind
        self.scorer = scorer
        self.fail_status: int | None = None
        self.delay_s = 0.0
        self.on_request: Callable[[], None] | None = None
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.authorizations: list[str | None] = []
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((self.path, body))
                server.authorizations.append(self.headers.get("Authorization"))
                time.sleep(server.delay_s)
                if server.on_request is not None:
                    server.on_request()
                if self.path not in PATHS[server.kind]:
                    send_json(self, 404, {"error": f"no route {self.path}"})
                elif server.kind == "tei" and len(body["texts"]) > TEI_MAX_CLIENT_BATCH_SIZE:
                    message = f"batch size {len(body['texts'])} > maximum allowed batch size 32"
                    send_json(self, 413, {"error": message, "error_type": "Validation"})
                elif server.fail_status is not None:
                    send_json(self, server.fail_status, {"message": "the model is not loaded"})
                else:
                    send_json(self, 200, server.answer(body))

        self.url = self._listen(Handler)

    def answer(self, body: dict[str, Any]) -> Any:
        """The answer of a server of this kind to a rerank request."""
        texts = body["texts"] if self.kind == "tei" else body["documents"]
        scores = self.scorer(body["query"], texts)
        best_first = sorted(range(len(texts)), key=lambda i: -scores[i])
        if self.kind == "tei":
            return [{"index": i, "score": scores[i]} for i in best_first]
        results: list[dict[str, Any]] = [
            {"index": i, "relevance_score": scores[i]}
            for i in best_first[: body.get("top_n") or len(texts)]
        ]
        tokens = sum(len(t.split()) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        if self.kind == "cohere":
            return {"id": "r-1", "results": results, "meta": {"billed_units": {"search_units": 1}}}
        if self.kind == "jina":
            if body.get("return_documents", True):
                for r in results:
                    r["document"] = {"text": texts[r["index"]]}
            return {
                "model": body.get("model"),
                "usage": {"total_tokens": tokens},
                "results": results,
            }
        if self.kind == "llamacpp":
            return {
                "model": body.get("model"),
                "object": "list",
                "usage": usage,
                "results": results,
            }
        for r in results:
            r["document"] = texts[r["index"]] if body.get("return_documents") else None
        return {
            "object": "rerank",
            "results": results,
            "model": body.get("model"),
            "usage": usage,
            "id": "infinity-1",
            "created": 1,
        }


# ---------------------------------------------------------------- a tiny cross-encoder in ONNX

WORDS = ["pipeline", "valve", "budget", "alpha", "beta", "gamma"]


def _tokenizer(path: Path) -> None:
    """A WordLevel tokenizer.json of WORDS, pairs joined as BERT joins them."""
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    vocab.update({w: i + 4 for i, w in enumerate(WORDS)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    tok.save(str(path))


def _overlap_model(path: Path) -> None:
    """logits[n, 0] = pairs (i in the query, j in the passage) with equal known word ids."""
    node = helper.make_node
    shape_nl = ["batch", "length"]
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, shape_nl)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1])
    nodes = [
        node("Constant", [], ["one"], value=helper.make_tensor("one", TensorProto.INT64, [], [1])),
        node("Constant", [], ["words"], value=helper.make_tensor("w", TensorProto.INT64, [], [4])),
        node("Constant", [], ["ax1"], value=helper.make_tensor("a1", TensorProto.INT64, [1], [1])),
        node("Constant", [], ["ax2"], value=helper.make_tensor("a2", TensorProto.INT64, [1], [2])),
        node(
            "Constant", [], ["ax12"], value=helper.make_tensor("a", TensorProto.INT64, [2], [1, 2])
        ),
        # A word (not [PAD], [UNK], [CLS], [SEP]) in segment A (the query) or B (the passage).
        node("GreaterOrEqual", ["input_ids", "words"], ["is_word_b"]),
        node("Cast", ["is_word_b"], ["is_word"], to=TensorProto.INT64),
        node("Mul", ["is_word", "attention_mask"], ["real"]),
        node("Sub", ["one", "token_type_ids"], ["type_a"]),
        node("Mul", ["real", "type_a"], ["in_a"]),
        node("Mul", ["real", "token_type_ids"], ["in_b"]),
        node("Unsqueeze", ["input_ids", "ax2"], ["ids_col"]),
        node("Unsqueeze", ["input_ids", "ax1"], ["ids_row"]),
        node("Equal", ["ids_col", "ids_row"], ["same_b"]),
        node("Cast", ["same_b"], ["same"], to=TensorProto.FLOAT),
        node("Unsqueeze", ["in_a", "ax2"], ["a_col"]),
        node("Unsqueeze", ["in_b", "ax1"], ["b_row"]),
        node("Mul", ["a_col", "b_row"], ["pairs_i"]),
        node("Cast", ["pairs_i"], ["pairs"], to=TensorProto.FLOAT),
        node("Mul", ["same", "pairs"], ["matches"]),
        node("ReduceSum", ["matches", "ax12"], ["total"], keepdims=0),
        node("Unsqueeze", ["total", "ax1"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "overlap", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def tiny_cross_encoder(folder: Path) -> tuple[Path, str]:
    """A cross-encoder scoring a (query, passage) pair by the pairs of equal words (of WORDS)
    between the query and the passage (segments A and B of token_type_ids), written to folder
    as model.onnx with its tokenizer.json; the model's path and sha256."""
    _tokenizer(folder / "tokenizer.json")
    _overlap_model(folder / "model.onnx")
    return folder / "model.onnx", hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
