"""bench/tune.py's report: the choice rule applied to the per-query scores, and Markdown tables.

    .venv/bin/python bench/tune_report.py SCORES_JSON   # again, from `bench/tune.py --json`

The rule, fixed before the run so that the grid's many comparisons cannot pick a lucky winner:
the primary set's queries are split in two halves (seeded shuffle). The hybrid configuration with
the best mean nDCG@10 on the first half is the only candidate; it replaces today's default only
if, on the second half (queries it was not chosen on), its paired difference in nDCG@10 against
the default has a 95% bootstrap interval above 0, and on the other set the interval does not lie
wholly below 0 (not worse beyond noise). The full-set tables compare every configuration with
the default for information only.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.services.evaluation_metrics import PairedDifference, paired_bootstrap, percentile

DEFAULT_LABEL = "hybrid k=60 w=1:1 depth=default"
SHOWN = 8  # hybrid configurations listed per set besides the default and the candidate


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SetScores:
    name: str
    documents: int
    queries: int
    scores: dict[str, dict[str, list[float]]]  # label -> metric -> per-query values

    def mean(self, label: str, metric: str, picks: list[int] | None = None) -> float:
        values = self.scores[label][metric]
        return float(np.mean([values[i] for i in picks] if picks is not None else values))

    def against_default(
        self, label: str, metric: str, picks: list[int] | None = None
    ) -> PairedDifference:
        a, b = self.scores[DEFAULT_LABEL][metric], self.scores[label][metric]
        if picks is not None:
            a, b = [a[i] for i in picks], [b[i] for i in picks]
        return paired_bootstrap(a, b)


def halves(queries: int, seed: int) -> tuple[list[int], list[int]]:
    order = list(range(queries))
    random.Random(seed).shuffle(order)
    return sorted(order[: queries // 2]), sorted(order[queries // 2 :])


def ci(d: PairedDifference) -> str:
    return f"{d.difference:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"


def choose(primary: SetScores, other: SetScores, labels: list[str], seed: int) -> list[str]:
    """The rule above, applied; the lines that report it (the last one says the choice)."""
    hybrid = [label for label in labels if label.startswith("hybrid")]
    first, second = halves(primary.queries, seed)
    # A tie goes to the default: a change must earn its place.
    best = max(hybrid, key=lambda lb: (primary.mean(lb, "ndcg", first), lb == DEFAULT_LABEL))
    lines = [
        f"- compared: {len(labels)} configurations ({len(hybrid)} hybrid) on each set;"
        f" chosen on {len(first)} {primary.name} queries, confirmed on the other {len(second)}",
        f"- best on the choosing half: `{best}` (nDCG@10 {primary.mean(best, 'ndcg', first):.3f},"
        f" default {primary.mean(DEFAULT_LABEL, 'ndcg', first):.3f})",
    ]
    if best == DEFAULT_LABEL:
        return [*lines, "- choice: keep today's defaults (they are best on the choosing half)"]
    held_out = primary.against_default(best, "ndcg", second)
    elsewhere = other.against_default(best, "ndcg")
    lines += [
        f"- held-out {primary.name} half, nDCG@10 difference vs default: {ci(held_out)}",
        f"- {other.name}, nDCG@10 difference vs default: {ci(elsewhere)}",
    ]
    if held_out.low > 0 and elsewhere.high >= 0:
        return [*lines, f"- choice: change the defaults to `{best}`"]
    why = "its held-out interval includes 0" if held_out.low <= 0 else f"worse on {other.name}"
    return [*lines, f"- choice: keep today's defaults ({why})"]


def table(scores: SetScores, labels: list[str], top_k: int) -> list[str]:
    lines = [
        f"### {scores.name}: {scores.documents} documents, {scores.queries} queries",
        "",
        f"| configuration | nDCG@10 | recall@{top_k} | MRR | p50 ms | p95 ms"
        " | nDCG@10 vs default [95% CI] | MRR vs default [95% CI] |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for label in labels:
        ms = scores.scores[label]["ms"]
        means = " | ".join(f"{scores.mean(label, m):.3f}" for m in ("ndcg", "recall", "rr"))
        latency = f"{percentile(ms, 50):.1f} | {percentile(ms, 95):.1f}"
        diffs = " | ".join(ci(scores.against_default(label, m)) for m in ("ndcg", "rr"))
        lines.append(f"| {label} | {means} | {latency} | {diffs} |")
    return lines


def counts(scores: SetScores, labels: list[str]) -> str:
    diffs = [scores.against_default(label, "ndcg") for label in labels if label != DEFAULT_LABEL]
    better = sum(d.low > 0 for d in diffs)
    worse = sum(d.high < 0 for d in diffs)
    return (
        f"{scores.name}: of {len(diffs)} configurations against the default (full set, nDCG@10,"
        f" 95% CI, not corrected for multiple comparisons) {better} better, {worse} worse"
    )


def report(results: dict[str, SetScores], labels: list[str], args: argparse.Namespace) -> str:
    primary = results[args.primary]
    other = next(s for name, s in results.items() if name != args.primary)
    decision = choose(primary, other, labels, args.seed)
    chosen = decision[1].split("`")[1]
    lines = ["## Choice", "", *decision, ""]
    for scores in results.values():
        hybrid = [label for label in labels if label.startswith("hybrid")]
        ranked = sorted(hybrid, key=lambda label: -scores.mean(label, "ndcg"))
        shown = [DEFAULT_LABEL, chosen, *ranked[:SHOWN], "semantic", "fulltext"]
        shown = list(dict.fromkeys(shown))
        lines += [*table(scores, shown, args.top_k), "", counts(scores, labels), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", type=Path, help="bench/tune.py --json's file")
    parser.add_argument("--top-k", type=int, default=10, help="the run's --top-k")
    parser.add_argument("--seed", type=int, default=22, help="the run's --seed")
    parser.add_argument("--primary", default="debian")
    args = parser.parse_args()
    results = {k: SetScores(**v) for k, v in json.loads(args.scores.read_text()).items()}
    labels = list(results[args.primary].scores)
    print(report(results, labels, args))


if __name__ == "__main__":
    main()
