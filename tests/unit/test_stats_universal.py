"""stats.universal: a found counterexample refutes "violation_rate <= 0" deterministically, none found
is inconclusive with p 1 both ways (never supported, however much was searched), and only the
universal comparison is accepted."""

from __future__ import annotations

import pytest

from interp_checks.stats import Comparison, Outcome, decide
from interp_checks.stats.universal import CORPUS_EVALUATORS, SEARCH_TEST, UniversalEvidence, evaluate_universal, is_universal

UNIVERSAL = Comparison("<=", 0)


def verdict(evaluation) -> Outcome:
    return decide(evaluation, p_adjusted=evaluation.p_value, p_adjusted_refute=evaluation.p_value_refute, alpha=0.05)


def test_a_counterexample_refutes_with_refutation_p_zero():
    evaluation = evaluate_universal(True, 34, UNIVERSAL, statistic="violation_rate", counterexample_share=0.5, corpus_tokens=900, n_documents=30)
    assert verdict(evaluation) is Outcome.REFUTED
    assert (evaluation.p_value, evaluation.p_value_refute) == (1.0, 0.0) and evaluation.test == SEARCH_TEST
    assert evaluation.estimate == 0.5 and evaluation.ci == (0.5, 1.0) and evaluation.n == 30
    assert "none in the corpus stream" in evaluation.note and "34 generated inputs" in evaluation.note


def test_a_refutation_survives_any_multiplicity_adjustment():
    evaluation = evaluate_universal(True, 1, UNIVERSAL, statistic="v", counterexample_share=1.0)
    assert decide(evaluation, p_adjusted=1.0, p_adjusted_refute=min(1.0, 10_000 * evaluation.p_value_refute), alpha=0.05) is Outcome.REFUTED


@pytest.mark.parametrize("searched", [(0, 0), (200, 10_000), (10**6, 10**8)])
def test_no_counterexample_is_inconclusive_however_long_the_search(searched):
    tried, tokens = searched
    evaluation = evaluate_universal(False, tried, UNIVERSAL, statistic="violation_rate", corpus_tokens=tokens)
    assert verdict(evaluation) is Outcome.INCONCLUSIVE
    assert evaluation.p_value == evaluation.p_value_refute == 1.0
    assert evaluation.note.startswith(f"no counterexample in {tokens:,} corpus tokens and {tried:,} generated inputs; not a proof")


def test_corpus_violations_are_named():
    evaluation = evaluate_universal(True, 0, UNIVERSAL, statistic="v", counterexample_share=0.25, corpus_tokens=100, corpus_violations=3)
    assert "3 violating corpus token(s)" in evaluation.note


def test_only_the_universal_comparison_is_judged_by_search():
    assert is_universal(Comparison("<=", 0)) and not is_universal(Comparison("<=", 0.01)) and not is_universal(Comparison("<", 0))
    with pytest.raises(ValueError, match="only the universal claim"):
        evaluate_universal(True, 1, Comparison("<=", 0.01), statistic="v")
    with pytest.raises(ValueError, match=r"violation share in \(0, 1\]"):
        evaluate_universal(True, 1, UNIVERSAL, statistic="v", counterexample_share=0.0)


def test_the_engine_finds_both_evaluators_by_name():
    evidence = UniversalEvidence(found=True, tried=5, counterexample_share=1.0, corpus_tokens=10, corpus_violations=1, n_documents=2)
    evaluation = CORPUS_EVALUATORS["universal"](evidence, UNIVERSAL, statistic="v", alpha=0.05, seed=0, n_resamples=99)
    assert evaluation.p_value_refute == 0.0 and evaluation.n == 2
    assert set(CORPUS_EVALUATORS) == {"pooled", "universal"}
