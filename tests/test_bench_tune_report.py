"""bench/tune_report.py's choice rule on made-up scores: chosen on one half, confirmed on the
other, and not worse on the other set."""

from bench.tune_report import DEFAULT_LABEL, SetScores, choose, halves

OTHER = "hybrid k=10 w=2:1 depth=40"
LABELS = [DEFAULT_LABEL, "semantic", OTHER]
QUERIES = 40


def scored(name: str, default: list[float], other: list[float]) -> SetScores:
    scores = {DEFAULT_LABEL: default, "semantic": [0.0] * len(default), OTHER: other}
    return SetScores(name, 100, len(default), {k: {"ndcg": v} for k, v in scores.items()})


def varied(base: float, n: int = QUERIES) -> list[float]:
    return [base + (i % 5) / 10 for i in range(n)]


def test_a_configuration_better_on_both_halves_and_not_worse_elsewhere_is_chosen():
    primary = scored("debian", varied(0.3), varied(0.4))
    other = scored("workplace", varied(0.5, 30), varied(0.5, 30))
    decision = choose(primary, other, LABELS, seed=22)
    assert decision[-1] == f"- choice: change the defaults to `{OTHER}`"
    assert "on 20 debian queries, confirmed on the other 20" in decision[0]


def test_a_configuration_better_only_where_it_was_chosen_is_not():
    first, _ = halves(QUERIES, 22)
    default = varied(0.3)
    lucky = [v + 0.3 if i in first else v for i, v in enumerate(default)]
    decision = choose(scored("debian", default, lucky), scored("w", [0.5], [0.5]), LABELS, 22)
    assert decision[-1] == "- choice: keep today's defaults (its held-out interval includes 0)"


def test_a_configuration_worse_on_the_other_set_is_not_chosen():
    primary = scored("debian", varied(0.3), varied(0.4))
    other = scored("workplace", varied(0.5, 30), varied(0.3, 30))
    decision = choose(primary, other, LABELS, seed=22)
    assert decision[-1] == "- choice: keep today's defaults (worse on workplace)"


def test_ties_keep_the_default():
    same = scored("debian", varied(0.3), varied(0.3))
    decision = choose(same, same, LABELS, seed=22)
    assert decision[-1].startswith("- choice: keep today's defaults (they are best")
