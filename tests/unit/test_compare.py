"""logprob_gain without models: the floor, token subsets, span alignment, sequence-level statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from interp_checks.checks.compare import floored, mean_over, span_gains_row, token_gains
from interp_checks.runner import next_token_logprobs
from interp_checks.inputs.generators import InputBatch
from interp_checks.inputs.token_sets import TokenSetError, Where, bigram_seen_before, parse_where, seen_before, select
from interp_checks.stats import Comparison, Outcome, decide, evaluate


def test_next_token_logprobs_pick_the_actual_next_token():
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 2] = 10.0  # position 0 predicts token 2 at position 1
    tokens = np.array([[0, 2, 1]])
    logp = next_token_logprobs(logits, tokens)
    assert np.isnan(logp[0, 0])
    # float32 logit - logsumexp: absolute error of order 1e-6 nats at logits near 10
    assert logp[0, 1] == pytest.approx(float(torch.log_softmax(logits[0, 0].double(), -1)[2]), abs=1e-5)
    assert logp[0, 2] == pytest.approx(np.log(0.25))


def test_the_floor_stops_one_wildly_wrong_model_from_dominating():
    model = np.array([[np.nan, -0.1, -0.2]])
    baseline = np.array([[np.nan, -20.0, -0.3]])
    assert token_gains(model, baseline, floor=-5)[0, 1] == pytest.approx(-0.1 + 5)
    assert token_gains(model, baseline, floor=-50)[0, 1] == pytest.approx(19.9)
    assert np.isnan(floored(model, -5)[0, 0])
    # a floor above both log-probs makes them equal: no gain
    assert token_gains(np.array([[-7.0]]), np.array([[-9.0]]), floor=-5)[0, 0] == 0


def test_mean_over_selected_tokens_per_sequence():
    values = np.array([[np.nan, 1.0, 3.0, 100.0], [np.nan, 2.0, 2.0, 2.0]])
    mask = np.array([[False, True, True, False], [False, False, False, False]])
    out = mean_over(values, mask)
    assert out[0] == 2.0 and np.isnan(out[1])


def batch(tokens, texts=None, offsets=None, regions=None):
    tokens = np.asarray(tokens)
    return InputBatch(tokens, "test", {}, 0, regions=regions or {}, texts=texts, offsets=None if offsets is None else np.asarray(offsets))


def test_seen_before_and_induction_like():
    tokens = np.array([[0, 5, 6, 7, 5, 6, 9]])
    b = batch(tokens)
    assert seen_before(b.tokens, b.valid)[0].tolist() == [False, False, False, False, True, True, False]
    # (5, 6) occurred before: the second 6 is induction-like; the second 5 follows 7, never seen before 5
    assert bigram_seen_before(b.tokens, b.valid)[0].tolist() == [False, False, False, False, False, True, False]


def test_select_combines_conditions_and_never_selects_position_zero():
    tokens = np.array([[0, 5, 6, 5, 6]])
    repeat = np.array([[True, False, False, True, True]])
    b = batch(tokens, regions={"repeat": repeat})
    assert select(Where(), b)[0].tolist() == [False, True, True, True, True]
    assert select(Where(region="repeat"), b)[0].tolist() == [False, False, False, True, True]
    assert select(Where(region="repeat", pattern="induction_like"), b)[0].tolist() == [False, False, False, False, True]
    assert select(Where(seen_before=False), b)[0].tolist() == [False, True, True, False, False]
    assert select(Where(predicate=lambda bb: bb.tokens == 6), b)[0].tolist() == [False, False, True, False, True]


def test_regex_subset_selects_tokens_overlapping_matches():
    text = "f(x) + g(y)"
    offsets = [[0, 0], [0, 1], [1, 2], [2, 3], [3, 4], [4, 11]]
    b = batch([[0, 1, 2, 3, 4, 5]], texts=[text], offsets=[offsets])
    assert select(parse_where({"regex": r"\)"}), b)[0].tolist() == [False, False, False, False, True, True]


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"regoin": "repeat"}, "no key 'regoin'"),
        ({"pattern": "nope"}, "unknown pattern 'nope'"),
        ({"regex": "("}, "does not compile"),
        ({"seen_before": "yes"}, "true or false"),
        ("repeat", "must be a mapping"),
    ],
)
def test_bad_where_blocks_are_refused(raw, message):
    with pytest.raises(TokenSetError, match=message):
        parse_where(raw)


def test_regex_on_random_tokens_says_it_needs_text():
    with pytest.raises(TokenSetError, match="start from text"):
        select(Where(regex="x"), batch([[0, 1, 2]]))


def test_different_tokenizers_are_compared_on_shared_character_boundaries():
    text = "abcdef"
    # model: BOS, "ab", "cd", "ef"; baseline: BOS, "abc", "def": the only shared boundary is the end (6)
    model = batch([[0, 1, 2, 3]], texts=[text], offsets=[[[0, 0], [0, 2], [2, 4], [4, 6]]])
    baseline = batch([[0, 7, 8]], texts=[text], offsets=[[[0, 0], [0, 3], [3, 6]]])
    model_logp = np.array([[np.nan, -1.0, -2.0, -3.0]])
    baseline_logp = np.array([[np.nan, -4.0, -4.0]])
    selected = np.array([[False, True, True, True]])
    gains = span_gains_row(model, baseline, 0, model_logp, baseline_logp, selected, floor=-5)
    assert gains == [pytest.approx((-1 - 2 - 3) - (-4 - 4))]
    # with a boundary both share ("ab|cd|ef" vs "ab|cdef"): two spans
    baseline2 = batch([[0, 7, 8]], texts=[text], offsets=[[[0, 0], [0, 2], [2, 6]]])
    gains = span_gains_row(model, baseline2, 0, model_logp, np.array([[np.nan, -1.5, -2.5]]), selected, floor=-5)
    assert gains == [pytest.approx(-1 + 1.5), pytest.approx(-5 + 2.5)]
    # where: only spans containing a selected model token count
    only_last = np.array([[False, False, False, True]])
    assert span_gains_row(model, baseline2, 0, model_logp, np.array([[np.nan, -1.5, -2.5]]), only_last, floor=-5) == [pytest.approx(-2.5)]


def test_sequence_level_test_is_calibrated_where_a_token_level_test_is_fooled():
    """Tokens of a sequence share its luck. With no true gain, pooling tokens finds one anyway."""
    alpha, runs, n_seq, n_tok = 0.05, 200, 32, 40
    rng = np.random.default_rng(0)
    token_level_hits = sequence_level_supported = 0
    for run in range(runs):
        per_sequence = rng.normal(0.0, 1.0, size=(n_seq, 1))  # shared within a sequence
        gains = per_sequence + rng.normal(0.0, 0.1, size=(n_seq, n_tok))  # true mean gain: 0
        token_p = scipy_stats.ttest_1samp(gains.ravel(), 0.0, alternative="greater").pvalue
        token_level_hits += token_p < alpha
        ev = evaluate(gains.mean(axis=1), Comparison(">", 0.0), alpha=alpha, seed=run, n_resamples=199)
        sequence_level_supported += decide(ev, p_adjusted=ev.p_value, p_adjusted_refute=ev.p_value_refute, alpha=alpha) is Outcome.SUPPORTED
    # a pooled token-level test rejects far more often than alpha; the per-sequence one about alpha
    assert token_level_hits / runs > 0.3
    assert sequence_level_supported / runs < alpha + 3 * np.sqrt(alpha * (1 - alpha) / runs)


def test_tokens_after_the_last_shared_boundary_are_left_out():
    text = "abcdefg"
    model = batch([[0, 1, 2, 3]], texts=[text], offsets=[[[0, 0], [0, 2], [2, 4], [4, 6]]])
    baseline = batch([[0, 7, 8]], texts=[text], offsets=[[[0, 0], [0, 2], [2, 5]]])
    gains = span_gains_row(
        model, baseline, 0, np.array([[np.nan, -1.0, -2.0, -3.0]]), np.array([[np.nan, -1.5, -9.0]]), np.ones((1, 4), bool), floor=-5
    )
    assert gains == [pytest.approx(0.5)]  # only "ab" is comparable; "cd" and "ef" end past the last shared boundary


def test_repeated_identifier_matches_whole_words_only():
    text = "value = 1\nval = value"
    # tokens: "value"(0-5) ... "val"(10-13) ... "value"(16-21)
    offsets = [[0, 0], [0, 5], [10, 13], [16, 21]]
    b = batch([[0, 1, 2, 3]], texts=[text], offsets=[offsets])
    assert select(parse_where({"pattern": "repeated_identifier"}), b)[0].tolist() == [False, False, False, True]
