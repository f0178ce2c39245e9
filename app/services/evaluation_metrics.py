"""Retrieval metrics (nDCG@k, recall@k, MRR, latency percentiles) and a paired bootstrap.

Conventions follow trec_eval, as BEIR reports them: graded judgments, a gain equal to the grade,
a log2(rank + 1) discount, the ideal ranking built from every judged item of the query (not only
the retrieved ones), and grade 0 meaning judged not relevant. A ranking is a list of keys (document
or chunk ids) without repeats, best first.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)  # a document or chunk id
# Index draws per block of resamples: bounds the bootstrap's memory (8 bytes each, twice) when a
# set has many queries; a resamples x queries matrix would be 1.6 GB at 10,000 of each.
BOOTSTRAP_BLOCK = 1_000_000


def ndcg_at_k(ranking: Sequence[K], grades: Mapping[K, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain of the first k keys (0.0 when nothing is relevant)."""
    gains = [grades.get(key, 0) for key in ranking[:k]]
    dcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains) if gain > 0)
    ideal_gains = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    ideal = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal_gains))
    return dcg / ideal if ideal > 0 else 0.0


def recall_at_k(ranking: Sequence[K], grades: Mapping[K, int], k: int) -> float:
    """The share of the relevant keys found in the first k (0.0 when nothing is relevant)."""
    relevant = {key for key, grade in grades.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def reciprocal_rank(ranking: Sequence[K], grades: Mapping[K, int]) -> float:
    """1 / the rank of the first relevant key (0.0 when none was retrieved)."""
    for rank, key in enumerate(ranking, start=1):
        if grades.get(key, 0) > 0:
            return 1.0 / rank
    return 0.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between ranks; None when empty."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass(frozen=True)
class PairedDifference:
    """How much b differs from a on the same queries, with a bootstrap confidence interval."""

    queries: int
    mean_a: float
    mean_b: float
    difference: float  # mean_b - mean_a
    low: float
    high: float
    confidence: float
    p_value: float  # two-sided: how often a resample's difference falls on the other side of 0

    @property
    def significant(self) -> bool:
        """Whether the interval leaves out 0 (b really differs from a at this confidence)."""
        return self.low > 0 or self.high < 0


def _resampled_means(
    differences: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """The mean of each resample, drawn a block of rows at a time (the same draws in order)."""
    n = len(differences)
    rows = max(1, BOOTSTRAP_BLOCK // n)
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, rows):
        count = min(rows, resamples - start)
        picks = rng.integers(0, n, size=(count, n))
        means[start : start + count] = differences[picks].mean(axis=1)
    return means


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Resample the queries (with replacement) and take the percentile interval of the mean
    per-query difference b - a. The pairs must be the same queries in the same order."""
    if len(a) != len(b):
        raise ValueError(f"paired scores differ in length: {len(a)} and {len(b)}")
    if not a:
        raise ValueError("no queries to compare")
    first = np.asarray(a, dtype=np.float64)
    second = np.asarray(b, dtype=np.float64)
    differences = second - first
    means = _resampled_means(differences, resamples, np.random.default_rng(seed))
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    observed = float(differences.mean())
    if observed == 0:
        p_value = 1.0
    else:
        other_side = float(np.mean(means <= 0) if observed > 0 else np.mean(means >= 0))
        p_value = min(1.0, 2 * other_side)
    return PairedDifference(
        queries=len(differences),
        mean_a=float(first.mean()),
        mean_b=float(second.mean()),
        difference=observed,
        low=float(low),
        high=float(high),
        confidence=confidence,
        p_value=p_value,
    )
