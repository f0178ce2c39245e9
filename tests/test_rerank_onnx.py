"""The local cross-encoder reranker: a tiny ONNX model built for the test (tests/fake_rerank.py),
its tokenizer.json beside it, scoring a pair by the query's words found in the passage."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.providers.rerank import RerankError
from app.providers.rerank_onnx import OnnxReranker
from app.runtime import Runtime
from tests.fake_rerank import tiny_cross_encoder
from tests.helpers import drain, names, search, upload


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The model's path and its sha256."""
    return tiny_cross_encoder(tmp_path_factory.mktemp("cross-encoder"))


def test_the_cross_encoder_scores_each_pair(model_file):  # type: ignore[no-untyped-def]
    path, sha256 = model_file
    reranker = OnnxReranker(str(path), sha256, 10.0)
    passages = ["alpha beta", "valve valve budget", "pipeline valve", "Valve unknown words here"]
    scores = reranker.scores("pipeline valve", passages)
    assert scores == [0.0, 2.0, 2.0, 1.0]
    assert reranker.scores("budget", passages) == [0.0, 1.0, 0.0, 0.0]
    many = [f"valve {'budget ' * i}" for i in range(40)]  # more than one batch
    assert reranker.scores("budget", many) == [float(i) for i in range(40)]


def test_a_wrong_sha256_refuses_to_load(model_file):  # type: ignore[no-untyped-def]
    path, sha256 = model_file
    with pytest.raises(RerankError, match="does not match its pinned sha256"):
        OnnxReranker(str(path), "0" * 64, 10.0)
    with pytest.raises(RerankError, match="is not a file"):
        OnnxReranker(str(path.parent / "missing.onnx"), sha256, 10.0)


def test_an_app_with_a_wrong_sha256_does_not_start(make_app, model_file):  # type: ignore[no-untyped-def]
    path, _ = model_file
    with pytest.raises(RerankError, match="pinned sha256"):
        make_app(rerank="onnx", rerank_onnx_path=str(path), rerank_onnx_sha256="1" * 64)


@pytest.fixture
def docs(app, client, admin, collection):  # type: ignore[no-untyped-def]
    # BM25 weighs the rare "valve" over four common "pipeline"s; the model counts matches.
    docs = {
        "many.txt": "pipeline pipeline pipeline pipeline alpha.",
        "one.txt": "pipeline valve beta.",
        "some.txt": "pipeline pipeline beta gamma.",
    }
    for name, text in docs.items():
        upload(client, admin, collection, name, text)
    drain(app)


def test_search_reranks_with_the_local_model(make_app, admin, docs, model_file):  # type: ignore[no-untyped-def]
    body = {"query": "pipeline valve", "mode": "fulltext"}
    path, sha256 = model_file
    reranking = make_app(rerank="onnx", rerank_onnx_path=str(path), rerank_onnx_sha256=sha256)
    fused = search(reranking.test_client(), admin, **body, rerank=False)
    assert names(fused) == ["one.txt", "many.txt", "some.txt"]
    response = search(reranking.test_client(), admin, **body)
    assert names(response) == ["many.txt", "one.txt", "some.txt"]
    assert [h["rerank_score"] for h in response.json["hits"]] == [4.0, 2.0, 2.0]


def test_an_expired_deadline_is_a_rerank_error_naming_the_setting(model_file):  # type: ignore[no-untyped-def]
    path, sha256 = model_file
    reranker = OnnxReranker(str(path), sha256, 0.0)
    with pytest.raises(RerankError, match=r"did not finish in time \(POSTRAG_RERANK_TIMEOUT_S=0\)"):
        reranker.scores("pipeline valve", ["pipeline valve"])


def test_a_late_local_rerank_keeps_the_fused_order(make_app, admin, docs, model_file):  # type: ignore[no-untyped-def]
    path, sha256 = model_file
    reranking = make_app(
        rerank="onnx", rerank_onnx_path=str(path), rerank_onnx_sha256=sha256, rerank_timeout_s=0.1
    )
    reranker = Runtime.of(reranking).search.reranker
    assert isinstance(reranker, OnnxReranker)
    with reranker._lock:  # another search's inference that outlasts this one's time
        response = search(reranking.test_client(), admin, query="pipeline valve", mode="fulltext")
    assert names(response) == ["one.txt", "many.txt", "some.txt"]  # the fused order
    assert [h["rerank_score"] for h in response.json["hits"]] == [None, None, None]
    assert response.json["warnings"] == [
        "the reranker (onnx) failed: no scores in time; the fused order is kept"
    ]
