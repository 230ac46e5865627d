"""stats.pooled on synthetic tokens whose answer is known: each pooled statistic equals its direct
computation, a document of weight w is its tokens w times, the cluster bootstrap over documents is
calibrated where a bootstrap over tokens (the wrong unit) is not, degenerate corpora are
inconclusive rather than errors, and the nulls' helpers find a planted neuron and build a random
token class of the same size and frequency."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from interp_checks.stats import (
    Comparison,
    PooledStatistic,
    auroc_statistic,
    band_share_statistic,
    best_over_columns,
    correlation_statistic,
    evaluate_pooled,
    firing_precision_statistic,
    firing_recall_statistic,
    firing_threshold,
    frequency_matched_class,
    top_share_statistic,
)

ALPHA = 0.05
REPEATS = 200
RESAMPLES = 999

# the clustered corpus: activation = SHIFT * match + document effect + token noise (both sd 1), the
# match rate of each document drawn from Beta(2, 8) (mean 0.2), independent of the document effect
SHIFT, DOC_SD, TOKEN_SD, MATCH_RATE = 1.0, 1.0, 1.0, 0.2
# two tokens of different documents (all pairs, in the population) differ by SHIFT + N(0, 2 (DOC_SD^2 + TOKEN_SD^2))
TRUE_AUROC = float(stats.norm.cdf(SHIFT / math.sqrt(2 * (DOC_SD**2 + TOKEN_SD**2))))
_MATCH_VARIANCE = MATCH_RATE * (1 - MATCH_RATE)
TRUE_CORRELATION = SHIFT * math.sqrt(_MATCH_VARIANCE) / math.sqrt(SHIFT**2 * _MATCH_VARIANCE + DOC_SD**2 + TOKEN_SD**2)


def clustered_tokens(rng: np.random.Generator, n_documents: int = 60, tokens_per_document: float = 15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(activation, match, document) with a document-level random effect in both the activation
    and the match rate, so tokens of one document are correlated."""
    lengths = rng.poisson(tokens_per_document, n_documents) + 1
    document = np.repeat(np.arange(n_documents), lengths)
    match = rng.random(document.size) < rng.beta(2, 8, n_documents)[document]
    activation = SHIFT * match + rng.normal(0, DOC_SD, n_documents)[document] + rng.normal(0, TOKEN_SD, document.size)
    return activation, match, document


def tied_tokens(seed: int, n_documents: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered tokens with activations rounded to one decimal: many ties."""
    activation, match, document = clustered_tokens(np.random.default_rng(seed), n_documents, 20)
    return np.round(activation, 1), match, document


def rate_interval(hits: int, repeats: int = REPEATS) -> tuple[float, float]:
    """99.9% Clopper-Pearson interval of a rate over ``repeats`` runs: what "about" means below."""
    ci = stats.binomtest(hits, repeats).proportion_ci(confidence_level=0.999)
    return ci.low, ci.high


def at_unit_weights(stat: PooledStatistic) -> float:
    return float(stat.value(np.ones((1, stat.n_documents)))[0])


def duplicated(weights: np.ndarray, activation: np.ndarray, match: np.ndarray, document: np.ndarray):
    """The tokens with document d repeated weights[d] times (each copy a new document)."""
    parts = [(activation[document == d], match[document == d]) for d in range(weights.size) for _ in range(int(weights[d]))]
    acts = np.concatenate([p[0] for p in parts])
    hits = np.concatenate([p[1] for p in parts])
    docs = np.concatenate([np.full(p[0].size, i) for i, p in enumerate(parts)])
    return acts, hits, docs


def top_share_direct(activation: np.ndarray, match: np.ndarray, k: int) -> float:
    """Share matching among the k largest, tied values at the k-th place sharing the places left."""
    kth = np.sort(activation)[::-1][k - 1]
    above, tied = activation > kth, activation == kth
    left = k - above.sum()
    return float((match[above].sum() + left * match[tied].mean()) / k)


# --------------------------------------------------------------------------- exact values


def test_auroc_is_mann_whitney_u_over_pairs_with_ties_and_the_binned_value_agrees():
    activation, match, document = tied_tokens(0)
    stat = auroc_statistic(activation, match, document)
    u = stats.mannwhitneyu(activation[match], activation[~match]).statistic
    assert stat.exact == pytest.approx(u / (match.sum() * (~match).sum()), abs=1e-12)
    assert at_unit_weights(stat) == pytest.approx(stat.exact, abs=1e-12)  # fewer distinct values than bins: exact


def test_binned_auroc_is_within_0_002_of_the_exact_one_on_realistic_activations():
    """SoLU-like: most tokens near 0, a heavy right tail, matching tokens a bit higher; 60k tokens."""
    rng = np.random.default_rng(1)
    document = np.repeat(np.arange(200), 300)
    match = rng.random(document.size) < 0.05
    activation = rng.exponential(0.05, document.size) + match * rng.gamma(2.0, 0.6, document.size) * (rng.random(document.size) < 0.7)
    activation += rng.normal(0, 0.1, 200)[document] * (rng.random(document.size) < 0.3)
    stat = auroc_statistic(activation, match, document)
    assert np.unique(activation).size > 1024
    assert abs(at_unit_weights(stat) - stat.exact) < 0.002
    assert stat.exact == pytest.approx(stats.mannwhitneyu(activation[match], activation[~match]).statistic / (match.sum() * (~match).sum()))


def test_precision_recall_and_band_share_equal_their_direct_computation_with_ties():
    activation, match, document = tied_tokens(2)
    threshold = firing_threshold(activation)
    assert threshold == 0.5 * activation.max()
    fires = activation >= threshold
    assert at_unit_weights(firing_precision_statistic(activation, match, document)) == pytest.approx(match[fires].mean())
    assert at_unit_weights(firing_recall_statistic(activation, match, document)) == pytest.approx(fires[match].mean())
    assert at_unit_weights(firing_precision_statistic(activation, match, document, 0.3)) == pytest.approx(match[activation >= 0.3].mean())
    for lower, upper in [(0, 1), (1, 5), (5, 20), (20, 50)]:
        low, high = np.quantile(activation, [1 - upper / 100, 1 - lower / 100])
        inside = (activation >= low) & ((activation < high) if lower else True)
        stat = band_share_statistic(activation, match, document, lower, upper)
        assert at_unit_weights(stat) == pytest.approx(match[inside].mean()), (lower, upper)
        assert "fixed" in stat.estimand


@pytest.mark.parametrize("k", [1, 7, 40, 10_000])
def test_top_share_equals_the_direct_share_among_the_k_largest_with_ties(k: int):
    activation, match, document = tied_tokens(3)
    k_used = min(k, activation.size)
    assert at_unit_weights(top_share_statistic(activation, match, document, k)) == pytest.approx(
        top_share_direct(activation, match, k_used) if k <= activation.size else match.mean()
    )


def test_correlation_is_pearsons_r_with_the_match_indicator():
    activation, match, document = tied_tokens(4)
    activation = activation + 1e6  # far from 0: the per-document sums must not lose it to cancellation
    assert at_unit_weights(correlation_statistic(activation, match, document)) == pytest.approx(np.corrcoef(activation, match)[0, 1], abs=1e-9)


# --------------------------------------------------------------------------- weights semantics

weights_vectors = st.lists(st.integers(0, 3), min_size=8, max_size=8).filter(lambda w: sum(w) > 0)


@settings(max_examples=25, deadline=None)
@given(weights_vectors)
def test_a_document_of_weight_w_is_its_tokens_w_times(weights: list[int]):
    activation, match, document = tied_tokens(5, n_documents=8)
    w = np.asarray(weights, dtype=float)
    acts, hits, docs = duplicated(w, activation, match, document)
    if hits.all() or not hits.any():
        return  # nothing to compare with: the duplicated corpus is degenerate
    threshold = firing_threshold(activation)
    low, high = np.quantile(activation, [0.8, 0.95])  # band (5, 20) of the original tokens: fixed edges
    inside = (acts >= low) & (acts < high)
    pairs = [
        (auroc_statistic(activation, match, document), auroc_statistic(acts, hits, docs).exact),
        (firing_precision_statistic(activation, match, document), hits[acts >= threshold].mean() if (acts >= threshold).any() else math.nan),
        (firing_recall_statistic(activation, match, document), (acts[hits] >= threshold).mean()),
        (correlation_statistic(activation, match, document), np.corrcoef(acts, hits)[0, 1] if np.ptp(acts) > 0 else math.nan),
        (band_share_statistic(activation, match, document, 5, 20), hits[inside].mean() if inside.any() else math.nan),
    ]
    for stat, expected in pairs:
        np.testing.assert_allclose(stat.value(w[None, :])[0], expected, atol=1e-9, err_msg=stat.estimand)


def test_top_share_under_weights_is_the_top_k_of_the_weighted_sample_even_past_its_candidates():
    """Weights that drop the documents holding the top 4k tokens force the fallback to every token."""
    rng = np.random.default_rng(6)
    activation, match, document = clustered_tokens(rng, 10, 30)
    k = 5
    stat = top_share_statistic(activation, match, document, k)
    top_documents = np.unique(document[np.argsort(-activation)[: 4 * k]])
    for w in [np.where(np.isin(np.arange(10), top_documents), 0.0, 1.0), rng.integers(0, 4, 10).astype(float), np.full(10, 2.0)]:
        acts, hits, _ = duplicated(w, activation, match, document)
        assert stat.value(w[None, :])[0] == pytest.approx(top_share_direct(acts, hits, k))


@settings(max_examples=25, deadline=None)
@given(st.floats(0.1, 10), st.integers(0, 2**31 - 1))
def test_ratio_statistics_ignore_the_scale_and_the_order_of_document_weights(scale: float, seed: int):
    activation, match, document = tied_tokens(7, n_documents=8)
    rng = np.random.default_rng(seed)
    w = rng.integers(1, 4, 8).astype(float)
    order = rng.permutation(8)
    relabelled = order[document]  # document d becomes order[d]
    w_relabelled = np.empty(8)
    w_relabelled[order] = w
    for make in (auroc_statistic, firing_precision_statistic, firing_recall_statistic, correlation_statistic):
        stat, moved = make(activation, match, document), make(activation, match, relabelled)
        assert stat.value(scale * w[None, :])[0] == pytest.approx(stat.value(w[None, :])[0])
        assert moved.value(w_relabelled[None, :])[0] == pytest.approx(stat.value(w[None, :])[0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=4, max_size=40), st.integers(0, 2**31 - 1))
def test_auroc_of_the_negated_activation_is_one_minus_the_auroc(values: list[int], seed: int):
    activation = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    match = rng.random(activation.size) < 0.5
    document = rng.integers(0, 3, activation.size)
    up, down = auroc_statistic(activation, match, document, n_documents=3), auroc_statistic(-activation, match, document, n_documents=3)
    if math.isnan(up.exact):
        assert math.isnan(down.exact)
        return
    assert down.exact == pytest.approx(1 - up.exact)
    assert at_unit_weights(down) == pytest.approx(1 - at_unit_weights(up))


# --------------------------------------------------------------------------- calibration


def repeated_evaluations(make, truth: float, document_unit: bool, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for r in range(REPEATS):
        activation, match, document = clustered_tokens(rng)
        unit = document if document_unit else np.arange(document.size)  # tokens as the unit: the wrong one
        out.append(evaluate_pooled(make(activation, match, unit), Comparison(">=", truth), statistic="s", alpha=ALPHA, seed=r, n_resamples=RESAMPLES))
    return out


def test_auroc_at_the_true_value_is_supported_in_about_alpha_of_runs_and_covered_at_the_nominal_rate():
    evaluations = repeated_evaluations(auroc_statistic, TRUE_AUROC, True, seed=2024)
    supported = sum(e.p_value < ALPHA for e in evaluations)
    covered = sum(e.ci[0] <= TRUE_AUROC <= e.ci[1] for e in evaluations)
    low, high = rate_interval(supported)
    assert low <= ALPHA <= high, f"supported in {supported} of {REPEATS}"
    low, high = rate_interval(covered)
    assert low <= 1 - 2 * ALPHA <= high, f"covered in {covered} of {REPEATS}"
    assert all("BCa bootstrap over 60 documents" in e.ci_method for e in evaluations[:5])


def test_resampling_documents_covers_the_true_correlation_where_resampling_tokens_does_not():
    by_document = repeated_evaluations(correlation_statistic, TRUE_CORRELATION, True, seed=2025)
    by_token = repeated_evaluations(correlation_statistic, TRUE_CORRELATION, False, seed=2025)
    covered = sum(e.ci[0] <= TRUE_CORRELATION <= e.ci[1] for e in by_document)
    covered_by_token = sum(e.ci[0] <= TRUE_CORRELATION <= e.ci[1] for e in by_token)
    low, high = rate_interval(covered)
    assert low <= 1 - 2 * ALPHA <= high, f"document unit covered in {covered} of {REPEATS}"
    assert rate_interval(covered_by_token)[1] < 1 - 2 * ALPHA, f"token unit covered in {covered_by_token} of {REPEATS}"


def test_the_bca_p_value_is_the_level_at_which_the_interval_reaches_the_threshold():
    """Skewed data (BCa's acceleration is not 0): the claim's p at t = the lower end is alpha, the
    refutation's at t = the upper end too, so the p-values and the interval always agree."""
    rng = np.random.default_rng(3)
    lengths = rng.poisson(20, 30) + 1
    document = np.repeat(np.arange(30), lengths)
    match = rng.random(document.size) < rng.beta(0.5, 5, 30)[document]
    activation = 2 * match * rng.exponential(1, document.size) + rng.normal(0, 1, 30)[document] + rng.normal(0, 1, document.size)
    stat = auroc_statistic(activation, match, document)
    ev = evaluate_pooled(stat, Comparison(">=", 0.5), statistic="auroc", n_resamples=1999)
    assert ev.ci_method.startswith("BCa")
    at_low = evaluate_pooled(stat, Comparison(">=", ev.ci[0]), statistic="auroc", n_resamples=1999)
    at_high = evaluate_pooled(stat, Comparison("<=", ev.ci[1]), statistic="auroc", n_resamples=1999)
    assert at_low.p_value == pytest.approx(ALPHA, abs=0.004)
    assert at_high.p_value == pytest.approx(ALPHA, abs=0.004)
    inside = evaluate_pooled(stat, Comparison("between", ev.ci[0] - 0.01, ev.ci[1] + 0.01), statistic="auroc", n_resamples=1999)
    assert inside.p_value < ALPHA and "TOST" in inside.test
    straddling = evaluate_pooled(stat, Comparison("between", ev.ci[0] + 0.01, ev.ci[1] + 0.01), statistic="auroc", n_resamples=1999)
    assert straddling.p_value > ALPHA  # the lower side alone fails: TOST takes the larger p


def test_an_approximate_value_is_shifted_onto_the_exact_estimate():
    activation, match, document = clustered_tokens(np.random.default_rng(8))
    stat = correlation_statistic(activation, match, document)
    off = dataclasses.replace(stat, exact=stat.observed() + 0.1)
    plain, shifted = (evaluate_pooled(s, Comparison(">=", 0.2), statistic="r", n_resamples=RESAMPLES) for s in (stat, off))
    assert shifted.estimate == pytest.approx(plain.estimate + 0.1)
    assert shifted.ci == pytest.approx((plain.ci[0] + 0.1, plain.ci[1] + 0.1))
    assert shifted.p_value < plain.p_value


# --------------------------------------------------------------------------- nulls and effect size


def test_the_effect_size_is_measured_against_the_most_demanding_null():
    activation, match, document = clustered_tokens(np.random.default_rng(9))
    nulls = {"best of 512 random-weights neurons": 0.58, "best neuron for a random token class": 0.64}
    ev = evaluate_pooled(auroc_statistic(activation, match, document, nulls=nulls), Comparison(">=", 0.6), statistic="auroc", n_resamples=RESAMPLES)
    assert ev.null_estimate == 0.64
    assert ev.effect_size == pytest.approx(ev.estimate - 0.64)
    assert "random token class" in ev.effect_size_kind
    assert all(name in ev.note for name in nulls)
    assert ev.n == 60 and ev.margin == pytest.approx(ev.estimate - 0.6)
    bare = evaluate_pooled(auroc_statistic(activation, match, document), Comparison(">=", 0.6), statistic="auroc", n_resamples=RESAMPLES)
    assert bare.effect_size is None and bare.null_estimate is None


# --------------------------------------------------------------------------- degenerate corpora


@pytest.mark.parametrize(
    "case",
    ["one document", "no matching token", "all activations equal", "no tokens"],
)
@pytest.mark.parametrize(
    "make",
    [auroc_statistic, firing_precision_statistic, firing_recall_statistic, correlation_statistic,
     lambda a, m, d: top_share_statistic(a, m, d, 5), lambda a, m, d: band_share_statistic(a, m, d, 0, 1)],
)
def test_degenerate_corpora_are_inconclusive_with_a_note_never_an_error(case: str, make):
    activation, match, document = clustered_tokens(np.random.default_rng(10), 6, 10)
    if case == "one document":
        document = np.zeros_like(document)
    elif case == "no matching token":
        match = np.zeros_like(match)
    elif case == "all activations equal":
        activation = np.full(activation.size, 0.7)
    else:
        activation, match, document = activation[:0], match[:0], document[:0]
    ev = evaluate_pooled(make(activation, match, document), Comparison(">=", 0.1), statistic="s", n_resamples=199)
    assert math.isnan(ev.ci[0]) and math.isnan(ev.ci[1])
    assert ev.p_value == 1.0 and ev.p_value_refute == 1.0
    assert ev.note and "no inference" in ev.note


def test_matches_in_one_document_fall_back_to_the_percentile_interval_with_a_note():
    """Resamples without that document have no matching token: their AUROC is undefined."""
    activation, match, document = clustered_tokens(np.random.default_rng(11), 20, 10)
    match = (document == 3) & (activation > np.median(activation))
    ev = evaluate_pooled(auroc_statistic(activation, match, document), Comparison(">=", 0.5), statistic="auroc", n_resamples=RESAMPLES)
    assert ev.ci_method.startswith("percentile")
    assert "left out" in ev.note and "percentile" in ev.test
    assert ev.ci[0] <= ev.ci[1]


# --------------------------------------------------------------------------- the nulls' helpers


def test_best_over_columns_finds_a_planted_neuron_and_its_values():
    rng = np.random.default_rng(12)
    tokens, neurons, planted, k = 2000, 64, 41, 50
    match = rng.random(tokens) < 0.1
    activations = rng.normal(0, 1, (tokens, neurons))
    activations[:, planted] = 3.0 * match + rng.normal(0, 0.5, tokens)
    best = best_over_columns(activations, match, k)
    column = activations[:, planted]
    fires = column >= 0.5 * column.max()
    expected = {
        "auroc": stats.mannwhitneyu(column[match], column[~match]).statistic / (match.sum() * (~match).sum()),
        "precision": match[fires].mean(),
        "recall": fires[match].mean(),
        "top_share": match[np.argsort(-column)[:k]].mean(),
        "correlation": np.corrcoef(column, match)[0, 1],
    }
    for name, value in expected.items():
        assert best[name][1] == planted, name
        assert best[name][0] == pytest.approx(value), name


def test_best_over_columns_takes_the_best_not_the_claimed_column():
    rng = np.random.default_rng(13)
    match = rng.random(500) < 0.3
    activations = rng.normal(0, 1, (500, 8)) + np.linspace(0, 2, 8) * match[:, None]
    best = best_over_columns(activations, match, 20)
    assert best["auroc"][1] == 7 and best["correlation"][1] == 7


def test_a_frequency_matched_class_has_as_many_types_about_the_frequency_and_no_matching_type():
    rng = np.random.default_rng(14)
    tokens = rng.zipf(1.3, 50_000) % 5000
    # mid-frequency types, like digits (at the very head of a Zipf vocabulary no type has a similar count)
    matching_types = np.array([17, 60, 250, 900, 2000])
    match = np.isin(tokens, matching_types)
    random_class = frequency_matched_class(tokens, match, np.random.default_rng(0))
    chosen, chosen_counts = np.unique(tokens[random_class], return_counts=True)
    assert chosen.size == matching_types.size
    assert not np.isin(chosen, matching_types).any()
    target_counts = np.unique(tokens[match], return_counts=True)[1]
    np.testing.assert_array_less(np.abs(np.log(np.sort(chosen_counts) / np.sort(target_counts))), math.log(2))
    assert 0.67 < random_class.sum() / match.sum() < 1.5
    again = frequency_matched_class(tokens, match, np.random.default_rng(1))
    assert not np.array_equal(again, random_class)  # random, not the nearest types every time


def test_a_frequency_matched_class_needs_enough_other_types():
    tokens = np.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match="never-matching types"):
        frequency_matched_class(tokens, tokens < 2, np.random.default_rng(0))


def test_a_threshold_beyond_every_resample_gets_the_normal_tail_of_the_bootstrap_capped_at_its_resolution():
    """Where no resample lies beyond the threshold, BCa's tail correction extrapolates past the data
    and the percentile p can only say p < 1 / (B + 1); the p is then the normal tail of the bootstrap
    distribution at the threshold (its standard deviation as the standard error), at most 1 / (B + 1),
    so a large family adjusted by Holm can still reach a verdict."""
    rng = np.random.default_rng(3)
    document = np.repeat(np.arange(40), 50)
    match = rng.random(document.size) < 0.3
    activation = match * 2.0 + rng.standard_normal(document.size) * 0.3 + rng.standard_normal(40)[document] * 0.2
    stat = correlation_statistic(activation, match, document)
    evaluation = evaluate_pooled(stat, Comparison(">=", 0.0), statistic="r", n_resamples=999, seed=0)
    assert evaluation.ci[0] > 0.5
    assert evaluation.p_value < 1e-6  # many bootstrap SDs from 0
    near = evaluate_pooled(stat, Comparison(">=", evaluation.ci[0] - 0.001), statistic="r", n_resamples=999, seed=0)
    assert 1e-6 < near.p_value <= 0.05  # inside the resampled range: the interval's own inversion
    refuted = evaluate_pooled(stat, Comparison(">=", 0.99), statistic="r", n_resamples=999, seed=0)
    assert refuted.p_value_refute <= 1 / 1000 and refuted.p_value > 0.99
