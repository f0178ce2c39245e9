"""Queries first: a search embeds its query on its own session, never behind an ingestion batch."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from app.providers import local_embedder
from tests.helpers import drain, names, search, upload


class _HeldBatch:
    """An ingestion session whose batches stop inside `run` until released."""

    def __init__(self, real: Any):
        self.real, self.inside, self.release = real, threading.Event(), threading.Event()

    def run(self, *args: Any) -> Any:
        self.inside.set()
        assert self.release.wait(60)
        return self.real.run(*args)


def test_a_search_embeds_its_query_while_an_ingestion_batch_is_running(
    app, client, admin, docs, monkeypatch
):
    real = local_embedder._session
    held = _HeldBatch(real(local_embedder.DEFAULT_MODEL, local_embedder.INGESTION, None, True))
    monkeypatch.setattr(
        local_embedder,
        "_session",
        lambda model, purpose, cache_dir, arena: (
            held if purpose == local_embedder.INGESTION else real(model, purpose, cache_dir, arena)
        ),
    )
    upload(client, admin, docs, "later.txt", "A document embedded while someone searches.")
    ingesting = threading.Thread(target=drain, args=(app,))
    ingesting.start()
    try:
        assert held.inside.wait(60), "the ingestion batch never started"
        found: list[Any] = []
        searching = threading.Thread(
            target=lambda: found.append(
                search(client, admin, query="clever forest animals", mode="semantic")
            )
        )
        searching.start()
        searching.join(60)
        # The search answered while the batch still holds the ingestion session.
        assert not searching.is_alive() and ingesting.is_alive()
        assert names(found[0])[0] == "fox.txt"
    finally:
        held.release.set()
        ingesting.join(60)
    assert names(search(client, admin, query="embedded while someone searches"))[0] == ("later.txt")


@pytest.mark.parametrize("purpose", [local_embedder.INGESTION, local_embedder.QUERIES])
def test_both_sessions_embed_alike(purpose):
    vectors = local_embedder.LocalEmbedder(purpose).embed(["the quick brown fox"])
    expected = local_embedder.LocalEmbedder().embed(["the quick brown fox"])
    assert vectors.shape == (1, 384) and vectors.tobytes() == expected.tobytes()
