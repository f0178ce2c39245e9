"""Retrieval metrics checked against numbers worked out by hand."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from app.services.evaluation_metrics import (
    ndcg_at_k,
    paired_bootstrap,
    percentile,
    recall_at_k,
    reciprocal_rank,
)


def test_ndcg_of_one_relevant_document_at_rank_three():
    # DCG = 1 / log2(4) = 0.5; the ideal ranking has it first: 1 / log2(2) = 1.
    assert ndcg_at_k(["x", "y", "a", "z"], {"a": 1}) == pytest.approx(0.5)


def test_ndcg_with_graded_judgments_by_hand():
    # Ranking a(2) b(0) c(1): DCG = 2/1 + 0 + 1/log2(4) = 2.5.
    # Ideal a(2) c(1): 2/1 + 1/log2(3) = 2.6309297...
    grades = {"a": 2, "b": 0, "c": 1}
    assert ndcg_at_k(["a", "b", "c"], grades) == pytest.approx(2.5 / (2 + 1 / math.log2(3)))


def test_ndcg_counts_relevant_documents_that_were_not_retrieved_in_the_ideal():
    # Two relevant, one retrieved first: 1 / (1 + 1/log2(3)) = 0.6131471...
    assert ndcg_at_k(["a", "x"], {"a": 1, "b": 1}) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_ndcg_cuts_at_k():
    ranking = [f"x{i}" for i in range(10)] + ["a"]
    assert ndcg_at_k(ranking, {"a": 1}, k=10) == 0.0
    assert ndcg_at_k(ranking, {"a": 1}, k=11) == pytest.approx(1 / math.log2(12))


def test_ndcg_is_zero_without_relevant_judgments():
    assert ndcg_at_k(["a"], {"a": 0}) == 0.0
    assert ndcg_at_k([], {}) == 0.0


def test_recall_at_k_is_the_share_of_relevant_found():
    grades = {"a": 1, "b": 2, "c": 1, "d": 0}
    assert recall_at_k(["a", "d", "x", "b"], grades, 4) == pytest.approx(2 / 3)
    assert recall_at_k(["a", "d", "x", "b"], grades, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["d"], {"d": 0}, 10) == 0.0


def test_reciprocal_rank_of_the_first_relevant():
    assert reciprocal_rank(["x", "y", "b", "a"], {"a": 1, "b": 1}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x", "n"], {"n": 0}) == 0.0


def test_percentile_interpolates_between_ranks():
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == pytest.approx(25.0)
    # Rank 0.95 * 3 = 2.85: 30 + 0.85 * 10.
    assert percentile([40.0, 10.0, 30.0, 20.0], 95) == pytest.approx(38.5)
    assert percentile([], 50) is None


def test_paired_bootstrap_of_a_constant_difference_is_that_difference():
    result = paired_bootstrap([0.2, 0.5, 0.7], [0.3, 0.6, 0.8])
    assert result.difference == pytest.approx(0.1)
    assert result.low == pytest.approx(0.1)
    assert result.high == pytest.approx(0.1)
    assert result.significant
    assert result.p_value == 0.0
    assert (result.mean_a, result.mean_b) == (
        pytest.approx(0.4667, abs=1e-4),
        pytest.approx(0.5667, abs=1e-4),
    )


def test_paired_bootstrap_of_noise_includes_zero():
    # Half the queries gain 1, half lose 1: the mean difference is 0 and the interval spans it.
    a = [0.0, 1.0] * 20
    b = [1.0, 0.0] * 20
    result = paired_bootstrap(a, b)
    assert result.difference == 0.0
    assert result.low < 0 < result.high
    assert not result.significant
    assert result.p_value == 1.0


def test_paired_bootstrap_interval_by_hand_on_two_queries():
    # Differences 0 and 1: a resample's mean is 0, 0.5 or 1 with probability 1/4, 1/2, 1/4,
    # so the 95% interval is [0, 1] and a resample falls at or below 0 a quarter of the time.
    result = paired_bootstrap([0.0, 0.0], [0.0, 1.0], resamples=20_000)
    assert (result.low, result.high) == (0.0, 1.0)
    assert result.p_value == pytest.approx(0.5, abs=0.03)


def test_paired_bootstrap_refuses_unpaired_scores():
    with pytest.raises(ValueError):
        paired_bootstrap([0.1], [0.1, 0.2])
    with pytest.raises(ValueError):
        paired_bootstrap([], [])


def test_paired_bootstrap_of_many_queries_draws_in_blocks():
    # 10,000 queries whose differences average 0.05: resampling them all at once would hold a
    # 10,000 x 10,000 matrix of picks (1.6 GB with the gathered values); in blocks it stays small.
    rng = np.random.default_rng(7)
    a = rng.random(10_000)
    b = a + 0.05 + rng.normal(0, 0.2, 10_000)
    tracemalloc.start()
    try:
        result = paired_bootstrap(a.tolist(), b.tolist())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.low < float(np.mean(b - a)) < result.high
    assert result.low < 0.05 < result.high and result.significant
    assert peak < 100 * 2**20
