"""stats.rank: "member A is among the k largest means", on synthetic data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from interp_checks.stats import Comparison
from interp_checks.stats.rank import claimed_k, evaluate_rank, ranks_of_first

NAMES = ["A", "B", "C", "D", "E"]


def samples(means: list[float], n: int = 60, sd: float = 0.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.asarray(means)[None, :] + rng.normal(0, sd, size=(n, len(means)))


def test_a_clear_second_is_in_the_top_two_and_not_the_top_one():
    x = samples([1.0, 2.0, 0.0, 0.1, -0.5])  # A is second, far from both neighbours
    top2 = evaluate_rank(x, Comparison("<=", 2), NAMES, n_resamples=999)
    top1 = evaluate_rank(x, Comparison("<=", 1), NAMES, n_resamples=999)
    assert top2.estimate == 2 and top2.p_value < 1e-6 and top2.p_value_refute == 1.0
    assert top1.estimate == 2 and top1.p_value > 0.5 and top1.p_value_refute < 1e-6
    assert "100.0%" in top2.note and "0.0%" in top1.note  # share of resamples in the top k


def test_ties_never_support_a_rank_claim_more_often_than_alpha():
    """A tied with the 1st (B): "A is first" is false; over 400 samples it is supported at most
    at rate alpha (the test is valid whichever member the noise favours)."""
    supported = 0
    for seed in range(400):
        x = samples([1.0, 1.0, 0.0, 0.0, 0.0], n=20, seed=seed)
        if evaluate_rank(x, Comparison("<=", 1), NAMES, n_resamples=99).p_value <= 0.05:
            supported += 1
    assert supported / 400 <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 400)


def test_k_is_read_from_the_comparison_and_must_say_something():
    assert claimed_k(Comparison("<=", 2), 5) == 2
    assert claimed_k(Comparison("<", 3), 5) == 2
    for bad in (Comparison(">=", 2), Comparison("<=", 5), Comparison("<", 1)):
        with pytest.raises(ValueError):
            claimed_k(bad, 5)


def test_ranks_count_strictly_larger_others():
    assert ranks_of_first(np.array([[3.0, 1.0, 2.0], [1.0, 3.0, 2.0], [2.0, 2.0, 1.0]])).tolist() == [1, 3, 1]
