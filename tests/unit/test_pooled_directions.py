"""stats.pooled's direction statistics (feature_direction, feature_spread) on synthetic vectors whose
answer is known, and each resample's value against the statistic recomputed on the documents
actually drawn (a document of weight w is its tokens w times)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from interp_checks.claims.expect import parse_expectation
from interp_checks.stats.pooled import (
    background_centred_top_component,
    best_abs_cosine_over_columns,
    evaluate_pooled,
    expected_abs_cosine_of_random_direction,
    expected_max_share_of_random_direction,
    logistic_probe,
    max_share_statistic,
    mean_difference,
    mean_difference_cosine_statistic,
    probe_cosine_statistic,
    top_component_cosine_statistic,
)

D, N_DOCS = 6, 30


def tokens(rng: np.random.Generator, offset: np.ndarray, feature_share: float = 0.1, per_doc: int = 40):
    """Vectors of N_DOCS documents: background N(0, I) around a per-document mean, feature tokens
    the same plus ``offset`` times a size drawn from U(1, 2)."""
    doc = np.repeat(np.arange(N_DOCS), per_doc)
    x = rng.standard_normal((doc.size, D)) + 0.3 * rng.standard_normal((N_DOCS, D))[doc]
    has = rng.random(doc.size) < feature_share
    x[has] += rng.uniform(1, 2, has.sum())[:, None] * offset
    return x, has, doc


def split_sums(x: np.ndarray, has: np.ndarray, doc: np.ndarray) -> tuple[np.ndarray, ...]:
    def sums(mask):
        out = np.zeros((N_DOCS, x.shape[1]))
        np.add.at(out, doc[mask], x[mask])
        return out, np.bincount(doc[mask], minlength=N_DOCS).astype(float)

    return (*sums(has), *sums(~has))


def drawn(x: np.ndarray, has: np.ndarray, doc: np.ndarray, weights: np.ndarray):
    """The tokens of a resample: each document's tokens repeated by its weight."""
    repeat = weights[doc].astype(int)
    return np.repeat(x, repeat, axis=0), np.repeat(has, repeat), np.repeat(doc, repeat)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def resamples(rng: np.random.Generator, k: int = 5) -> np.ndarray:
    return np.stack([np.bincount(rng.integers(0, N_DOCS, N_DOCS), minlength=N_DOCS) for _ in range(k)]).astype(float)


def test_mean_difference_cosine_recomputes_the_direction_in_each_resample():
    rng = np.random.default_rng(0)
    u = np.eye(D)[0] + 0.5 * np.eye(D)[1]
    x, has, doc = tokens(rng, u)
    reference = rng.standard_normal(D)
    stat = mean_difference_cosine_statistic(*split_sums(x, has, doc), reference)
    assert stat.observed() == pytest.approx(cosine(x[has].mean(0) - x[~has].mean(0), reference), abs=1e-12)
    weights = resamples(rng)
    for w, value in zip(weights, stat.value(weights)):
        xs, hs, _ = drawn(x, has, doc, w)
        assert value == pytest.approx(cosine(xs[hs].mean(0) - xs[~hs].mean(0), reference), abs=1e-12)


def test_mean_difference_cosine_finds_the_offset_and_is_judged_by_document():
    rng = np.random.default_rng(1)
    u = np.eye(D)[2]
    x, has, doc = tokens(rng, 3 * u, feature_share=0.2, per_doc=200)
    aligned = mean_difference_cosine_statistic(*split_sums(x, has, doc), u)
    assert aligned.observed() > 0.95
    at_45_degrees = np.eye(D)[2] + np.eye(D)[3]
    tilted = mean_difference_cosine_statistic(*split_sums(x, has, doc), at_45_degrees)
    assert tilted.observed() == pytest.approx(math.sqrt(0.5), abs=0.05)
    claim = parse_expectation(">= 0.9")
    assert evaluate_pooled(aligned, claim, statistic="cosine", n_resamples=999).p_value < 0.01
    assert evaluate_pooled(tilted, claim, statistic="cosine", n_resamples=999).p_value_refute < 0.01


def test_max_share_is_the_largest_neurons_share_of_the_squared_mean_difference():
    # two documents, means differ by exactly (3, 4, 0): shares 9/25, 16/25, 0
    feature = np.array([[3.0, 4.0, 0.0], [6.0, 8.0, 0.0]]) + np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    background = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    stat = max_share_statistic(feature, np.array([1.0, 2.0]), background, np.array([1.0, 2.0]))
    assert stat.observed() == pytest.approx(16 / 25)
    np.testing.assert_allclose(mean_difference(feature, np.array([1.0, 2.0]), background, np.array([1.0, 2.0])), [3.0, 4.0, 0.0])
    spread = max_share_statistic(np.ones((2, 4)), np.ones(2), np.zeros((2, 4)), np.ones(2))
    assert spread.observed() == pytest.approx(0.25)


def test_max_share_rechooses_the_neuron_in_each_resample():
    rng = np.random.default_rng(2)
    x, has, doc = tokens(rng, np.array([1.0, 0.98, 0, 0, 0, 0]))  # two neurons close: the winner changes
    stat = max_share_statistic(*split_sums(x, has, doc))
    weights = resamples(rng, 20)
    for w, value in zip(weights, stat.value(weights)):
        xs, hs, _ = drawn(x, has, doc, w)
        diff = xs[hs].mean(0) - xs[~hs].mean(0)
        assert value == pytest.approx(np.max(diff**2) / np.sum(diff**2), abs=1e-12)


def test_top_component_points_along_the_feature_seen_from_the_background():
    rng = np.random.default_rng(3)
    u = np.eye(D)[1]
    x, has, doc = tokens(rng, 4 * u, feature_share=0.2)
    background_mean = x[~has].mean(0)
    component = background_centred_top_component(x[has], background_mean)
    assert component @ u > 0.95  # oriented towards the feature, not away from it
    stat = top_component_cosine_statistic(x[has], doc[has], *split_sums(x, has, doc)[2:], u)
    assert stat.observed() == pytest.approx(float(component @ u), abs=1e-12)


def test_top_component_resamples_are_exact_when_the_subspace_is_everything():
    rng = np.random.default_rng(4)
    x, has, doc = tokens(rng, np.array([2.0, 1.0, 0, 0, 0, 0]))
    reference = rng.standard_normal(D)
    stat = top_component_cosine_statistic(x[has], doc[has], *split_sums(x, has, doc)[2:], reference, rank=D)
    weights = resamples(rng)
    for w, value in zip(weights, stat.value(weights)):
        xs, hs, _ = drawn(x, has, doc, w)
        expected = cosine(background_centred_top_component(xs[hs], xs[~hs].mean(0)), reference)
        assert value == pytest.approx(expected, abs=1e-9)
    low_rank = top_component_cosine_statistic(x[has], doc[has], *split_sums(x, has, doc)[2:], reference, rank=2)
    assert low_rank.at_unit_weights() == pytest.approx(low_rank.observed(), abs=1e-9)  # the top component is in the span


def test_logistic_probe_recovers_the_generating_direction():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4000, D))
    beta = np.array([2.0, -1.0, 0.0, 0.0, 0.5, 0.0])
    y = rng.random(4000) < 1 / (1 + np.exp(-(x @ beta - 1.0)))
    theta = logistic_probe(x, y, l2=1e-4)
    assert cosine(theta[:-1], beta) > 0.99
    assert theta[-1] == pytest.approx(-1.0, abs=0.2)
    with pytest.raises(ValueError, match="l2 must be > 0"):
        logistic_probe(x, y, l2=0.0)


def test_probe_resamples_are_one_newton_step_close_to_a_refit():
    rng = np.random.default_rng(6)
    x, has, doc = tokens(rng, np.array([1.5, 0, 0, 1.0, 0, 0]), feature_share=0.3, per_doc=60)
    reference = np.array([1.0, 0, 0, 1.0, 0, 0])
    l2 = 1e-2
    stat = probe_cosine_statistic(x, has, doc, reference, l2=l2)
    assert stat.at_unit_weights() == pytest.approx(stat.observed(), abs=1e-6)  # the observed fit is a stationary point

    def refit(xs, hs):
        def loss(theta):
            z = xs @ theta[:-1] + theta[-1]
            return np.mean(np.logaddexp(0, z) - hs * z) + 0.5 * l2 * theta[:-1] @ theta[:-1]

        return optimize.minimize(loss, np.zeros(D + 1), method="BFGS", options={"gtol": 1e-10}).x[:-1]

    weights = resamples(rng)
    refits = np.array([cosine(refit(*drawn(x, has, doc, w)[:2]), reference) for w in weights])
    linearised = stat.value(weights)
    assert np.max(np.abs(linearised - refits)) < 5e-3
    assert np.std(refits) > 5 * np.max(np.abs(linearised - refits))  # the resamples move far more than the error


def test_undefined_without_feature_tokens():
    x = np.ones((4, D))
    stat = mean_difference_cosine_statistic(np.zeros((2, D)), np.zeros(2), x[:2], np.ones(2), np.ones(D))
    assert math.isnan(stat.observed()) and "no token has the feature" in stat.note
    evaluation = evaluate_pooled(stat, parse_expectation(">= 0.5"), statistic="cosine", n_resamples=99)
    assert evaluation.p_value == 1.0 and evaluation.p_value_refute == 1.0


def test_random_direction_references():
    assert expected_abs_cosine_of_random_direction(3) == pytest.approx(0.5)  # E|cos| in 3-D is 1/2
    assert expected_abs_cosine_of_random_direction(2) == pytest.approx(2 / math.pi)
    g = np.random.default_rng(7).standard_normal((20000, 64))
    sample = np.abs(g[:, 0]) / np.linalg.norm(g, axis=1)
    assert expected_abs_cosine_of_random_direction(64) == pytest.approx(sample.mean(), abs=4 * sample.std() / math.sqrt(20000))
    assert expected_abs_cosine_of_random_direction(512) == pytest.approx(math.sqrt(2 / (math.pi * 512)), rel=0.01)
    assert expected_max_share_of_random_direction(1) == 1.0
    assert expected_max_share_of_random_direction(2) == pytest.approx(0.5 + 1 / math.pi, abs=0.01)  # E max(cos^2, sin^2)


def test_best_abs_cosine_over_columns_takes_the_sign_away():
    columns = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.1]])
    assert best_abs_cosine_over_columns(np.array([-1.0, 0.0]), columns) == (pytest.approx(1.0), 0)
    value, column = best_abs_cosine_over_columns(np.array([0.0, 1.0]), columns)
    assert (value, column) == (pytest.approx(1.0), 1)


def test_best_aurocs_over_columns_agrees_with_best_over_columns_for_each_class():
    from interp_checks.stats.pooled import best_aurocs_over_columns, best_over_columns

    rng = np.random.default_rng(8)
    x = rng.standard_normal((500, 7)).astype(np.float32)
    x[:, 3] = np.round(x[:, 3])  # ties
    classes = [rng.random(500) < 0.1, x[:, 2] > 1.0, np.zeros(500, bool)]
    together = best_aurocs_over_columns(x, classes)
    for hit, (best, column) in zip(classes[:2], together):
        assert (best, column) == pytest.approx(best_over_columns(x, hit, 5)["auroc"])
    assert together[1][1] == 2 and math.isnan(together[2][0]) and together[2][1] == -1
