"""Round trips to PostgreSQL per search, counted on the wire (tests/wire.py) and bounded."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import pytest

from tests.helpers import drain, names, search, upload
from tests.wire import WireCounter


@pytest.fixture
def wire(make_database, template_name) -> Iterator[WireCounter]:  # type: ignore[no-untyped-def]
    counter = WireCounter(make_database(template=template_name))
    yield counter
    counter.close()


@pytest.fixture
def database_url(wire: WireCounter) -> str:
    """The test database, reached through the counting proxy."""
    return wire.url


def _searched(client, admin, wire: WireCounter, **body) -> tuple[float, list[str]]:  # type: ignore[no-untyped-def]
    """Round trips per search in a steady state (the median of 5, after the pool's connections
    are used and psycopg has prepared its statements), with the first search's file names."""
    for _ in range(12):
        search(client, admin, query="warm up", **body)
    counts, found = [], []
    for _ in range(5):
        with wire.counted():
            found.append(names(search(client, admin, query="clever forest animals", **body)))
        counts.append(wire.round_trips)
    return statistics.median(counts), found[0]


# Before issue 23: 21 statements, each its own round trip. Now: the pool's check; the switch to
# the owner; the token lookup; the switch to the user; preferences, collections, their chunk
# counts and the space; the statement (the connection keeps its HNSW settings); the usage row;
# and, off the request's path (psycopg_pool does it in the background), the pool's reset.
ROUND_TRIPS = 8


def test_a_semantic_search_makes_few_round_trips(client, admin, docs, wire):
    trips, found = _searched(client, admin, wire, mode="semantic")
    assert found[0] == "fox.txt"
    assert 0 < trips <= ROUND_TRIPS


def test_the_rate_counter_costs_one_more(make_app, admin, docs, wire):
    client = make_app(rate_limit_per_minute=600).test_client()
    trips, found = _searched(client, admin, wire, mode="semantic")
    assert found[0] == "fox.txt"
    assert 0 < trips <= ROUND_TRIPS + 1


def test_a_hybrid_search_over_chosen_documents_places_and_counts_them_in_two_more(
    client, admin, collection, app, wire
):
    ids = [
        upload(
            client, admin, collection, "fox.txt", "The quick brown fox is a clever forest animal."
        ),
        upload(
            client, admin, collection, "valve.txt", "Close the valve before servicing the pump."
        ),
    ]
    drain(app)
    trips, found = _searched(client, admin, wire, mode="hybrid", document_ids=ids[:1])
    assert found == ["fox.txt"]
    assert 0 < trips <= ROUND_TRIPS + 2
