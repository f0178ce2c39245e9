"""Ollama and OpenAI-compatible embedders against fake servers speaking their wire protocols."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import psycopg
import pytest

from app.providers.embeddings import EmbeddingError, make_embedder, normalise
from app.providers.http_embedders import OllamaEmbedder, OpenAIEmbedder
from app.repositories import embedding_spaces as space_repo
from app.runtime import Runtime
from app.services.worker import Worker, connect
from tests.fakes import FakeEmbeddingServer, fake_vector
from tests.helpers import drain


def _expected(text: str, dimension: int = 8) -> np.ndarray:
    vector = np.asarray(fake_vector(text, dimension), dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_ollama_embeds_in_batches():
    with FakeEmbeddingServer() as server:
        embedder = OllamaEmbedder(server.url, "fake-embed")
        embedder.batch_size = 2
        vectors = embedder.embed(["alpha beta", "gamma", "delta epsilon", "zeta"])
        assert vectors.shape == (4, 8)
        assert np.allclose(vectors[2], _expected("delta epsilon"))
        assert [len(r["input"]) for r in server.requests] == [2, 2]
        assert all(r["model"] == "fake-embed" for r in server.requests)


def test_ollama_unknown_model_names_provider_url_and_status():
    with FakeEmbeddingServer() as server:
        embedder = OllamaEmbedder(server.url, "no-such-model")
        with pytest.raises(EmbeddingError) as info:
            embedder.embed(["x"])
    message = str(info.value)
    assert message.startswith("ollama:")
    assert f"{server.url}/api/embed" in message
    assert "404" in message and "not found" in message


def test_503_then_success_is_retried():
    with FakeEmbeddingServer() as server:
        server.fail_next = [503, 429]
        embedder = OllamaEmbedder(server.url, "fake-embed")
        vectors = embedder.embed(["retry me"])
        assert np.allclose(vectors[0], _expected("retry me"))
        assert len(server.requests) == 3


def test_persistent_5xx_gives_up_with_a_clear_error():
    with FakeEmbeddingServer() as server:
        server.fail_next = [500] * 10
        embedder = OpenAIEmbedder(f"{server.url}/v1", "fake-embed", None)
        with pytest.raises(EmbeddingError, match=r"openai: .*/v1/embeddings answered 500"):
            embedder.embed(["x"])
        assert len(server.requests) == 4


def test_unreachable_server_is_a_clear_error():
    embedder = OllamaEmbedder("http://127.0.0.1:9", "fake-embed")
    with pytest.raises(EmbeddingError, match=r"ollama: cannot reach http://127.0.0.1:9/api/embed"):
        embedder.embed(["x"])


@pytest.mark.parametrize("base64_answers", [False, True])
def test_openai_float_and_base64_answers_in_index_order(base64_answers):
    with FakeEmbeddingServer(base64_answers=base64_answers) as server:
        embedder = OpenAIEmbedder(f"{server.url}/v1", "fake-embed", "sk-test")
        vectors = embedder.embed(["first text", "second text", "third"])
        assert np.allclose(vectors[0], _expected("first text"), atol=1e-6)
        assert np.allclose(vectors[2], _expected("third"), atol=1e-6)
        assert server.headers[0]["Authorization"] == "Bearer sk-test"
        assert server.requests[0]["encoding_format"] == "float"


def test_openai_unknown_model_message_is_passed_on():
    with FakeEmbeddingServer() as server:
        embedder = OpenAIEmbedder(f"{server.url}/v1", "gpt-nope", None)
        with pytest.raises(EmbeddingError, match="The model `gpt-nope` does not exist"):
            embedder.embed(["x"])


WITHOUT_DIRECTION = {
    "zeros": [0.0] * 8,
    "a NaN": [float("nan")] + [1.0] * 7,
    "an infinity": [float("inf")] + [0.0] * 7,
}


@pytest.mark.parametrize("vector", WITHOUT_DIRECTION.values(), ids=WITHOUT_DIRECTION.keys())
@pytest.mark.parametrize("protocol", ["ollama", "openai", "openai-base64"])
def test_a_vector_without_direction_is_an_embedding_error(protocol, vector):
    """Its cosine distance to anything is NaN: it must never be stored nor searched with."""
    with FakeEmbeddingServer(vectors={"void": vector}, base64_answers="base64" in protocol) as fake:
        if protocol == "ollama":
            embedder: OllamaEmbedder | OpenAIEmbedder = OllamaEmbedder(fake.url, "fake-embed")
        else:
            embedder = OpenAIEmbedder(f"{fake.url}/v1", "fake-embed", None)
        with pytest.raises(EmbeddingError) as info:
            embedder.embed(["a fine text", "void"])
    assert str(info.value) == (
        f"{embedder.provider}: the model answered a vector without direction (all zeros, NaN or"
        " infinite) for input 2 of 2"
    )


def test_every_embedder_normalises_or_refuses_vectors_without_direction():
    """The local model's pooled vectors go through the same check as the remote ones'."""
    rows = [[3.0, 4.0], [1e-30, 0.0], [3e38, 3e38], [1e308, 1e308], [5e-324, 0.0]]
    vectors = normalise(np.array(rows), "local")
    half = 2**-0.5
    assert np.allclose(vectors, [[0.6, 0.8], [1, 0], [half, half], [half, half], [1, 0]])
    assert vectors.dtype == np.float32
    with pytest.raises(EmbeddingError, match=r"^local: .* input 2 of 2"):
        normalise(np.array([[1.0, 0.0], [0.0, 0.0]], np.float32), "local")
    with pytest.raises(EmbeddingError, match=r"^local: .* input 1 of 1"):
        normalise(np.array([[float("nan"), 1.0]], np.float32), "local")


def test_settings_pick_the_embedder(settings):
    with FakeEmbeddingServer() as server:
        ollama = make_embedder(
            replace(
                settings, embedder="ollama", ollama_url=server.url, embedding_model="fake-embed"
            )
        )
        assert (ollama.provider, ollama.model, ollama.dimension()) == ("ollama", "fake-embed", 8)
    assert make_embedder(settings).provider == "local"
    with pytest.raises(EmbeddingError, match="POSTRAG_EMBEDDING_MODEL"):
        make_embedder(replace(settings, embedder="openai", embedding_model=""))


def test_switching_models_fills_a_new_space_in_the_background(
    app, client, admin, collection, database_url
):
    settings = Runtime.of(app).settings
    for i in range(3):
        client.post(
            "/api/v1/documents",
            headers=admin,
            json={
                "collection_id": collection,
                "title": f"d{i}",
                "text": f"Document {i} about owls.",
            },
        )
    drain(app)
    with connect(database_url) as conn:
        old = space_repo.current_ready(conn)
    assert old is not None and old.provider == "local" and old.dimension == 384

    with FakeEmbeddingServer() as server:
        ollama_settings = replace(
            settings, embedder="ollama", ollama_url=server.url, embedding_model="fake-embed"
        )
        worker = Worker(database_url, ollama_settings, make_embedder(ollama_settings))
        with connect(database_url) as conn:
            assert worker.run_one(conn)  # creates the new space, then runs its fill job
            new = space_repo.current_ready(conn)
        assert new is not None and new.provider == "ollama" and new.dimension == 8
        assert server.requests, "the new space was filled through the Ollama protocol"
    with psycopg.connect(database_url) as conn:
        spaces = conn.execute(
            "SELECT state, (SELECT count(*) FROM chunk_embeddings e"
            " WHERE e.space_id = s.id) FROM embedding_spaces s ORDER BY id"
        ).fetchall()
    assert spaces == [("retired", 3), ("ready", 3)]


def test_search_keeps_the_old_space_while_the_new_one_builds(
    app, client, admin, collection, database_url
):
    client.post(
        "/api/v1/documents",
        headers=admin,
        json={"collection_id": collection, "title": "t", "text": "Owls hunt at night."},
    )
    drain(app)
    with FakeEmbeddingServer() as server:
        server.fail_next = [503] * 50  # the new model is down: its space cannot be filled
        ollama_settings = replace(
            Runtime.of(app).settings,
            embedder="ollama",
            ollama_url=server.url,
            embedding_model="fake-embed",
            job_retry_base_s=60,
        )
        worker = Worker(database_url, ollama_settings, OllamaEmbedder(server.url, "fake-embed"))
        worker.embedder._dimension = 8  # known already: no probe request needed
        with connect(database_url) as conn:
            worker.run_one(conn)
            ready = space_repo.current_ready(conn)
    assert ready is not None and ready.provider == "local"
