"""logprob_gain without models: the floor, its unit across tokenizers, token subsets, span alignment, sequence-level statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from interp_checks.checks.base import MODEL
from interp_checks.checks.compare import (
    BASELINE,
    UNIT,
    LogprobGainCheck,
    floored,
    mean_over,
    shared_spans,
    token_gains,
)
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


def span_gain(model, baseline, model_logp, baseline_logp, selected, floor=-5.0):
    spans = shared_spans(model, baseline, 0, np.asarray(model_logp), np.asarray(baseline_logp), np.asarray(selected))
    return spans, spans.mean_gain(floor)


def test_different_tokenizers_are_compared_on_shared_character_boundaries():
    text = "abcdef"
    # model: BOS, "ab", "cd", "ef"; baseline: BOS, "abc", "def": the only shared boundary is the end (6)
    model = batch([[0, 1, 2, 3]], texts=[text], offsets=[[[0, 0], [0, 2], [2, 4], [4, 6]]])
    baseline = batch([[0, 7, 8]], texts=[text], offsets=[[[0, 0], [0, 3], [3, 6]]])
    model_logp = np.array([[np.nan, -1.0, -2.0, -3.0]])
    selected = np.array([[False, True, True, True]])
    spans, gain = span_gain(model, baseline, model_logp, [[np.nan, -4.0, -4.0]], selected)
    assert spans.model_tokens.tolist() == [3] and spans.gains(-5.0).tolist() == [pytest.approx((-1 - 2 - 3) - (-4 - 4))]
    assert gain == pytest.approx(2 / 3)  # 2 nats over the span, per model token: 3 of them
    # with a boundary both share ("ab|cd|ef" vs "ab|cdef"): two spans, of 1 and 2 model tokens
    baseline2 = batch([[0, 7, 8]], texts=[text], offsets=[[[0, 0], [0, 2], [2, 6]]])
    spans, gain = span_gain(model, baseline2, model_logp, [[np.nan, -1.5, -2.5]], selected)
    assert spans.gains(-5.0).tolist() == [pytest.approx(-1 + 1.5), pytest.approx(-5 + 2.5)]
    assert gain == pytest.approx((0.5 - 2.5) / 3)
    # where: only spans containing a selected model token count, divided by their model tokens
    only_last = np.array([[False, False, False, True]])
    assert span_gain(model, baseline2, model_logp, [[np.nan, -1.5, -2.5]], only_last)[1] == pytest.approx(-2.5 / 2)
    # nothing selected: no value for the sequence
    assert np.isnan(span_gain(model, baseline2, model_logp, [[np.nan, -1.5, -2.5]], np.zeros((1, 4), bool))[1])


def test_the_floor_applies_once_per_span_at_floor_per_model_token():
    text = "abcdef"
    model = batch([[0, 1, 2, 3]], texts=[text], offsets=[[[0, 0], [0, 2], [2, 4], [4, 6]]])
    baseline = batch([[0, 7]], texts=[text], offsets=[[[0, 0], [0, 6]]])
    everything = np.ones((1, 4), bool)
    # one span, three model tokens: both totals floored at 3 * -5 = -15 (not the baseline's one token at -5)
    spans, gain = span_gain(model, baseline, [[np.nan, -1.0, -1.0, -20.0]], [[np.nan, -30.0]], everything)
    assert spans.gains(-5.0).tolist() == [pytest.approx(-15 - (-15))] and gain == 0
    spans, gain = span_gain(model, baseline, [[np.nan, -1.0, -1.0, -2.0]], [[np.nan, -30.0]], everything)
    assert gain == pytest.approx((-4 + 15) / 3)
    # the model's one bad token is not floored on its own: the span's total is what counts
    spans, gain = span_gain(model, baseline, [[np.nan, -0.5, -0.5, -9.0]], [[np.nan, -9.0]], everything)
    assert gain == pytest.approx((-10 + 9) / 3)


def fine_and_coarse_cuts(rng, n_chars, fine_len=(1, 3), keep=1 / 3):
    """Token boundaries of a fine and a coarse tokenization of ``n_chars`` characters; every coarse
    boundary is a fine one (a coarse token is a run of fine ones), as with BPE vocabularies."""
    fine = np.cumsum(rng.integers(fine_len[0], fine_len[1] + 1, size=n_chars))
    fine = [0] + [int(c) for c in fine if c < n_chars] + [n_chars]
    coarse = [0] + [c for c in fine[1:-1] if rng.random() < keep] + [n_chars]
    return fine, coarse


def tokenized(cuts, char_logp, first_id=1):
    """A one-row batch cut at ``cuts`` (after a BOS) and its next-token log-probs: each token's
    log-prob is the sum of its characters' log-probs, so the per-character quality is ``char_logp``."""
    text = "x" * len(char_logp)
    offsets = [[0, 0]] + [[a, b] for a, b in zip(cuts[:-1], cuts[1:])]
    logp = [np.nan] + [float(np.sum(char_logp[a:b])) for a, b in zip(cuts[:-1], cuts[1:])]
    tokens = [0] + list(range(first_id, first_id + len(cuts) - 1))
    return batch([tokens], texts=[text], offsets=[offsets]), np.array([logp])


def per_character_models(rng, n_chars, char_logp, **cuts):
    """The same text tokenized finely and coarsely, both with per-character quality ``char_logp``."""
    cut_fine, cut_coarse = fine_and_coarse_cuts(rng, n_chars, **cuts)
    return (*tokenized(cut_fine, char_logp), *tokenized(cut_coarse, char_logp, first_id=1000))


def old_stacked_gain(model, baseline, model_logp, baseline_logp, floor):
    """Before issue 10: each token floored on its own inside a span, mean over spans."""
    spans = shared_spans(model, baseline, 0, floored(model_logp, floor), floored(baseline_logp, floor), np.ones(model.tokens.shape, bool))
    return float(np.mean(spans.model_logp - spans.baseline_logp))


@pytest.mark.parametrize("seed", range(5))
def test_the_same_per_character_quality_gains_nothing_whatever_the_tokenizers(seed):
    """Issue 10 item 3: a per-token floor stacked inside a span favoured the coarser tokenizer."""
    rng = np.random.default_rng(seed)
    char_logp = rng.uniform(-4.0, 0.0, size=120)  # both models give each character this log-prob
    fine, fine_logp, coarse, coarse_logp = per_character_models(rng, 120, char_logp)
    for model, model_logp, baseline, baseline_logp in ((fine, fine_logp, coarse, coarse_logp), (coarse, coarse_logp, fine, fine_logp)):
        spans = shared_spans(model, baseline, 0, model_logp, baseline_logp, np.ones(model.tokens.shape, bool))
        assert spans.model_tokens.sum() == model.tokens.shape[1] - 1  # every model token is in some span
        assert spans.mean_gain(-5.0) == pytest.approx(0.0, abs=1e-12)
    # the old rule: the fine model "loses" to the coarse one on identical predictions, and wins when swapped
    assert old_stacked_gain(fine, coarse, fine_logp, coarse_logp, -5.0) < -0.5
    assert old_stacked_gain(coarse, fine, coarse_logp, fine_logp, -5.0) > 0.5


def test_a_real_per_character_advantage_reads_the_same_in_nats_per_model_token():
    """A model better by 0.1 nats on every character gains 0.1 x (characters per model token) per
    model token, against a baseline with its own tokenizer or with a coarser one alike."""
    rng = np.random.default_rng(7)
    char_logp = rng.uniform(-1.5, -0.2, size=150)  # fine tokens (<= 3 characters) stay above the floor, coarse ones often not
    cut_fine, cut_coarse = fine_and_coarse_cuts(rng, 150)
    model, model_logp = tokenized(cut_fine, char_logp + 0.1)
    _, same_logp = tokenized(cut_fine, char_logp)
    coarse, coarse_logp = tokenized(cut_coarse, char_logp, first_id=1000)
    everything = np.ones(model.tokens.shape, bool)
    everything[:, 0] = False  # the BOS is predicted by nothing
    expected = 0.1 * 150 / (model.tokens.shape[1] - 1)
    assert mean_over(token_gains(model_logp, same_logp, -5.0), everything)[0] == pytest.approx(expected)
    assert shared_spans(model, coarse, 0, model_logp, coarse_logp, everything).mean_gain(-5.0) == pytest.approx(expected)
    # before: a coarse token floored alone made the baseline look better, and the mean was per span
    assert old_stacked_gain(model, coarse, model_logp, coarse_logp, -5.0) < expected - 0.5


def test_identical_tokenizations_reduce_to_the_per_token_rule():
    rng = np.random.default_rng(3)
    n, pos = 6, 30
    lengths = rng.integers(1, 4, size=(n, pos))
    ends = np.cumsum(lengths, axis=1)
    offsets = np.stack([ends - lengths, ends], axis=-1)
    offsets[:, 0] = 0  # BOS covers no characters
    texts = ["y" * int(ends[i, -1]) for i in range(n)]
    tokens = rng.integers(1, 50, size=(n, pos))
    model = batch(tokens, texts=texts, offsets=offsets)
    baseline = batch(tokens.copy(), texts=texts, offsets=offsets.copy())
    model_logp = rng.uniform(-9.0, 0.0, size=(n, pos))  # often below the floor
    baseline_logp = rng.uniform(-9.0, 0.0, size=(n, pos))
    model_logp[:, 0] = baseline_logp[:, 0] = np.nan
    selected = rng.random((n, pos)) < 0.5
    selected[:, 0] = False
    per_token = mean_over(token_gains(model_logp, baseline_logp, -5.0), selected)
    per_span = [shared_spans(model, baseline, i, model_logp, baseline_logp, selected).mean_gain(-5.0) for i in range(n)]
    np.testing.assert_allclose(per_span, per_token, rtol=1e-12)


def logits_for(logp_of_next, tokens, vocab=64):
    """Logits whose next-token log-probs are ``logp_of_next`` (NaN at position 0) for ``tokens``."""
    n, pos = tokens.shape
    rng = np.random.default_rng(0)
    logits = np.full((n, pos, vocab), -1e4)
    for i in range(n):
        for p in range(pos - 1):
            target = tokens[i, p + 1]
            rest = np.log1p(-np.exp(logp_of_next[i, p + 1]))  # the other tokens share the remaining mass
            others = [t for t in rng.permutation(vocab) if t != target][:4]
            logits[i, p, others] = rest - np.log(4)
            logits[i, p, target] = logp_of_next[i, p + 1]
    return torch.tensor(logits, dtype=torch.float64)


def measure(model, baseline, model_logits, baseline_logits, where=None, floor=-5.0):
    check = LogprobGainCheck()
    prepared = check.prepare({"floor": floor, **({"where": where} if where else {})}, {}, {})
    values = check.measure(prepared, {MODEL: {"logits": model_logits}, BASELINE: {"logits": baseline_logits}}, {MODEL: model, BASELINE: baseline})
    return values["mean_gain"], prepared.notes


def test_the_check_names_its_unit_and_keeps_the_token_rule_when_tokenizers_agree():
    rng = np.random.default_rng(4)
    tokens = rng.integers(0, 64, size=(5, 12))
    model_logits, baseline_logits = torch.tensor(rng.normal(0, 3, (5, 12, 64))), torch.tensor(rng.normal(0, 3, (5, 12, 64)))
    gains, notes = measure(batch(tokens), batch(tokens.copy()), model_logits, baseline_logits)
    expected = mean_over(
        token_gains(next_token_logprobs(model_logits, tokens), next_token_logprobs(baseline_logits, tokens), -5.0),
        select(Where(), batch(tokens)),
    )
    assert np.array_equal(gains, expected)  # bit for bit: the bundled claims keep their numbers
    assert any(UNIT in note and note.startswith("unit:") for note in notes)
    assert not any("character spans" in note for note in notes)


def test_the_check_on_different_tokenizers_floors_per_span_and_says_so():
    rng = np.random.default_rng(5)
    char_logp = rng.uniform(-4.0, -1.0, size=60)
    fine, fine_logp, coarse, coarse_logp = per_character_models(rng, 60, char_logp)
    coarse.tokens[:] = coarse.tokens % 64  # ids inside the little vocabulary of logits_for
    assert old_stacked_gain(fine, coarse, fine_logp, coarse_logp, -5.0) < -0.5  # the floor matters on this text
    gains, notes = measure(fine, coarse, logits_for(fine_logp, fine.tokens), logits_for(coarse_logp, coarse.tokens))
    assert gains[0] == pytest.approx(0.0, abs=1e-5)  # identical per-character quality (float32 log-probs)
    assert any("character spans" in note and UNIT in note for note in notes)
    assert any(UNIT in note and note.startswith("unit:") for note in notes)


def test_sequence_level_test_is_calibrated_where_a_token_level_test_is_fooled():
    """Tokens of a sequence share its luck. With no true gain, pooling tokens finds one anyway, while
    evaluate + decide on per-sequence means supports "gain > 0" at rate alpha: not 2 alpha, not alpha / 2,
    and not never (an always-inconclusive verdict would pass a test with only an upper bound)."""
    alpha, runs, n_seq, n_tok = 0.05, 1500, 32, 40
    rng = np.random.default_rng(0)
    per_sequence = rng.normal(0.0, 1.0, size=(runs, n_seq, 1))  # shared within a sequence
    gains = per_sequence + rng.normal(0.0, 0.1, size=(runs, n_seq, n_tok))  # true mean gain: 0
    token_p = scipy_stats.ttest_1samp(gains.reshape(runs, -1), 0.0, axis=1, alternative="greater").pvalue
    supported = refuted = 0
    for run, means in enumerate(gains.mean(axis=2)):
        ev = evaluate(means, Comparison(">", 0.0), alpha=alpha, seed=run, n_resamples=49)
        outcome = decide(ev, p_adjusted=ev.p_value, p_adjusted_refute=ev.p_value_refute, alpha=alpha)
        supported += outcome is Outcome.SUPPORTED
        refuted += outcome is Outcome.REFUTED
    # a pooled token-level test rejects far more often than alpha
    assert np.mean(token_p < alpha) > 0.3
    # The null is symmetric, so "supported" (mean > 0) and "refuted" (mean < 0) each happen at rate
    # alpha. Each must lie in [alpha / sqrt 2, alpha * sqrt 2] = [0.035, 0.071]: over 1500 runs a
    # true rate of alpha falls outside with probability ~0.5%, a rate of alpha / 2 inside with ~0.5%,
    # 2 alpha inside with < 1e-4; an always-inconclusive verdict (rate 0) fails.
    band = (alpha / np.sqrt(2), alpha * np.sqrt(2))
    assert band[0] < supported / runs < band[1], (supported, refuted, runs)
    assert band[0] < refuted / runs < band[1], (supported, refuted, runs)


def test_tokens_after_the_last_shared_boundary_are_left_out():
    text = "abcdefg"
    model = batch([[0, 1, 2, 3]], texts=[text], offsets=[[[0, 0], [0, 2], [2, 4], [4, 6]]])
    baseline = batch([[0, 7, 8]], texts=[text], offsets=[[[0, 0], [0, 2], [2, 5]]])
    spans, gain = span_gain(model, baseline, [[np.nan, -1.0, -2.0, -3.0]], [[np.nan, -1.5, -9.0]], np.ones((1, 4), bool))
    assert spans.model_tokens.tolist() == [1]  # only "ab" is comparable; "cd" and "ef" end past the last shared boundary
    assert gain == pytest.approx(0.5)


def test_repeated_identifier_matches_whole_words_only():
    text = "value = 1\nval = value"
    # tokens: "value"(0-5) ... "val"(10-13) ... "value"(16-21)
    offsets = [[0, 0], [0, 5], [10, 13], [16, 21]]
    b = batch([[0, 1, 2, 3]], texts=[text], offsets=[offsets])
    assert select(parse_where({"pattern": "repeated_identifier"}), b)[0].tolist() == [False, False, False, True]


def test_log_probs_are_computed_once_per_logits_tensor_and_tokens(monkeypatch):
    """``measure`` and ``figures`` of every claim of a group read one logits tensor per model and
    chunk: the log-softmax over the vocabulary must run once for it, and again for other tokens."""
    from interp_checks.checks import compare

    calls = []
    monkeypatch.setattr(compare, "next_token_logprobs", lambda logits, tokens: calls.append(1) or next_token_logprobs(logits, tokens))
    logits = torch.randn(3, 5, 11)
    tokens = np.random.default_rng(0).integers(0, 11, (3, 5))
    first = compare.chunk_logprobs(logits, tokens)
    np.testing.assert_array_equal(first, next_token_logprobs(logits, tokens))
    assert compare.chunk_logprobs(logits, tokens) is first and len(calls) == 1
    other = (tokens + 1) % 11
    np.testing.assert_array_equal(compare.chunk_logprobs(logits, other), next_token_logprobs(logits, other))
    assert len(calls) == 2
    np.testing.assert_array_equal(compare.chunk_logprobs(logits.clone(), tokens), first)
    assert len(calls) == 3  # a new tensor, however equal, is a new chunk
    key = id(logits)
    assert key in compare._LOGPROBS
    del logits
    assert key not in compare._LOGPROBS  # nothing outlives its chunk
