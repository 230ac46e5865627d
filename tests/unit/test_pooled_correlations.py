"""stats.pooled's rank correlation of two readings and its correlations between columns (neurons), on
synthetic tokens whose answer is known: each equals its direct computation, a document of weight w
is its tokens w times, the order statistic that restates a count re-ranks on every resample, and
degenerate inputs are undefined with a note rather than errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from interp_checks.stats import (
    Comparison,
    correlation_sums,
    evaluate_pooled,
    family_separation_statistic,
    mean_pairwise_correlation_statistic,
    pooled_correlations,
    rank_correlation_statistic,
    ranked_correlation_statistic,
    undefined_statistic,
)


def documents(rng: np.random.Generator, n_documents: int = 12, per_document: int = 30) -> np.ndarray:
    return np.repeat(np.arange(n_documents), rng.poisson(per_document, n_documents) + 2)


def family_columns(rng: np.random.Generator, document: np.ndarray) -> np.ndarray:
    """[T, 6]: columns 0-2 share a signal (a family), 3-5 are independent noise, plus a document effect."""
    signal = rng.normal(size=document.size)
    effect = rng.normal(size=(document.max() + 1, 6))[document]
    noise = rng.normal(size=(document.size, 6))
    x = noise + 0.5 * effect
    x[:, :3] += 2.0 * signal[:, None]
    return x + 100.0  # far from zero: the sums must not lose the correlations to cancellation


def replicated(document: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Token indices of the sample in which document d appears weights[d] times."""
    return np.concatenate([np.flatnonzero(document == d) for d in range(weights.size) for _ in range(int(weights[d]))])


# -- a statistic the data cannot define -------------------------------------------------------------


def test_an_undefined_statistic_is_nan_on_every_resample():
    stat = undefined_statistic(5, "e", "why")
    assert np.isnan(stat.value(np.ones((3, 5)))).all() and stat.note == "undefined: why"


# -- Spearman's rho of two readings ---------------------------------------------------------------------


def test_rank_correlation_is_spearman_s_rho_with_ties():
    rng = np.random.default_rng(1)
    document = documents(rng)
    x = np.round(rng.normal(size=document.size), 1)
    y = np.round(x + rng.normal(size=document.size), 1)
    stat = rank_correlation_statistic(x, y, document)
    assert stat.observed() == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_a_resampled_rank_correlation_is_pearson_s_r_of_the_fixed_ranks_of_the_repeated_tokens():
    rng = np.random.default_rng(2)
    document = documents(rng)
    x = rng.normal(size=document.size)
    y = x + rng.normal(size=document.size)
    weights = rng.integers(0, 3, document.max() + 1)
    tokens = replicated(document, weights)
    fixed = np.corrcoef(stats.rankdata(x)[tokens], stats.rankdata(y)[tokens])[0, 1]
    value = rank_correlation_statistic(x, y, document).value(weights[None, :].astype(float))[0]
    assert value == pytest.approx(fixed, abs=1e-12)
    assert value == pytest.approx(stats.spearmanr(x[tokens], y[tokens]).statistic, abs=0.02)  # re-ranking changes little


def test_a_constant_reading_has_no_rank_correlation():
    stat = rank_correlation_statistic(np.ones(10), np.arange(10.0), np.repeat(np.arange(2), 5))
    assert math.isnan(stat.observed()) and "constant" in stat.note


# -- correlations between columns from per-document sums ------------------------------------------------


def test_pooled_correlations_are_pearson_s_r_over_all_tokens_even_far_from_zero():
    rng = np.random.default_rng(3)
    document = documents(rng)
    x = family_columns(rng, document)
    sums = correlation_sums(x, document, (0, 4))
    r = pooled_correlations(sums, np.ones((1, sums.n_documents)))[0]
    np.testing.assert_allclose(r, np.corrcoef(x, rowvar=False)[[0, 4]], atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=12, max_size=12).filter(lambda w: sum(w) >= 2))
def test_a_document_of_weight_w_counts_as_its_tokens_w_times(weights: list[int]):
    rng = np.random.default_rng(4)
    document = documents(rng)
    x = family_columns(rng, document)
    w = np.asarray(weights, dtype=float)
    tokens = replicated(document, w)
    r = pooled_correlations(correlation_sums(x, document, (1,)), w[None, :])[0, 0]
    np.testing.assert_allclose(r, np.corrcoef(x[tokens], rowvar=False)[1], atol=1e-9)


def test_a_constant_column_has_no_correlation_even_when_rounding_leaves_it_a_tiny_variance():
    rng = np.random.default_rng(5)
    document = documents(rng)
    x = family_columns(rng, document)
    x[:, 5] = 100.3  # centred, it is not exactly 0: its sums of squares are ~1e-25, not 0
    r = pooled_correlations(correlation_sums(x, document, (0,)), np.ones((1, document.max() + 1)))[0, 0]
    assert math.isnan(r[5]) and np.isfinite(r[:5]).all()


def test_the_family_statistics_are_the_mean_within_and_within_minus_outside():
    rng = np.random.default_rng(6)
    document = documents(rng)
    x = family_columns(rng, document)
    r = np.corrcoef(x, rowvar=False)
    sums = correlation_sums(x, document, (0, 1, 2))
    within = np.mean([r[0, 1], r[0, 2], r[1, 2]])
    assert mean_pairwise_correlation_statistic(sums).observed() == pytest.approx(within, abs=1e-12)
    assert family_separation_statistic(sums).observed() == pytest.approx(within - r[:3, 3:].mean(), abs=1e-12)
    assert within > 0.7 and abs(r[:3, 3:].mean()) < 0.2  # the plant


def test_separation_leaves_constant_outsiders_out_and_a_constant_member_is_undefined():
    rng = np.random.default_rng(7)
    document = documents(rng)
    x = family_columns(rng, document)
    x[:, 5] = 1.0
    r = np.corrcoef(x[:, :5], rowvar=False)
    separation = family_separation_statistic(correlation_sums(x, document, (0, 1))).observed()
    assert separation == pytest.approx(r[0, 1] - r[:2, 2:5].mean(), abs=1e-12)
    member = mean_pairwise_correlation_statistic(correlation_sums(x, document, (0, 5)))
    assert math.isnan(member.observed()) and "constant" in member.note


def test_the_ranked_correlation_is_the_kth_largest_and_is_re_ranked_on_every_resample():
    # column 1 tracks column 0 only in documents 0-5, column 2 only in documents 6-11: which one is
    # the best depends on which documents a resample draws
    rng = np.random.default_rng(8)
    document = np.repeat(np.arange(12), 40)
    base = rng.normal(size=document.size)
    first_half = document < 6
    x = np.stack([base, np.where(first_half, base, 0) + 0.3 * rng.normal(size=document.size),
                  np.where(first_half, 0, base) + 0.6 * rng.normal(size=document.size), rng.normal(size=document.size)], axis=1)
    sums = correlation_sums(x, document, (0,))
    r = np.corrcoef(x, rowvar=False)[0, 1:]
    for rank in (1, 2, 3):
        assert ranked_correlation_statistic(sums, rank).observed() == pytest.approx(np.sort(r)[::-1][rank - 1], abs=1e-12)
    only_first, only_second = np.r_[np.ones(6), np.zeros(6)], np.r_[np.zeros(6), np.ones(6)]
    best = ranked_correlation_statistic(sums, 1).value(np.stack([only_first, only_second]))
    expected = [np.corrcoef(x[first_half], rowvar=False)[0, 1:].max(), np.corrcoef(x[~first_half], rowvar=False)[0, 1:].max()]
    np.testing.assert_allclose(best, expected, atol=1e-12)
    assert np.argmax(np.corrcoef(x[first_half], rowvar=False)[0, 1:]) != np.argmax(np.corrcoef(x[~first_half], rowvar=False)[0, 1:])


def test_a_count_of_columns_above_a_cut_is_judged_through_its_order_statistic():
    rng = np.random.default_rng(9)
    document = documents(rng, 30, 40)
    x = family_columns(rng, document)
    sums = correlation_sums(x, document, (0,))
    # columns 1 and 2 share column 0's signal (r about 0.75), 3-5 do not: two columns reach 0.5, not three
    second = evaluate_pooled(ranked_correlation_statistic(sums, 2), Comparison(">=", 0.5), statistic="2nd", n_resamples=999)
    third = evaluate_pooled(ranked_correlation_statistic(sums, 3), Comparison(">=", 0.5), statistic="3rd", n_resamples=999)
    assert second.p_value < 0.01 and second.ci[0] > 0.5
    assert third.p_value_refute < 0.01 and third.ci[1] < 0.5


def test_a_rank_beyond_the_columns_is_refused():
    sums = correlation_sums(np.random.default_rng(10).normal(size=(20, 3)), np.repeat(np.arange(4), 5), (0,))
    with pytest.raises(ValueError, match="rank must be 1..2"):
        ranked_correlation_statistic(sums, 3)
