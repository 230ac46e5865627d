"""Universal claims judged by a search for a counterexample, not by sampling.

"Neuron N fires above t on every match of R" (``violation_rate <= 0``) is a claim about *every*
input. No finite sample of inputs can support it: a sample without a violation is consistent with
a violation on an input nobody tried, and a bootstrap interval of a share that is 0 on every
resample is [0, 0] whatever the truth. One counterexample refutes it, and that refutation is a
proof, not an inference. So the verdict here is deterministic:

* a counterexample found (in the corpus stream or by the generated inputs): **refuted**, the p-value
  of the refutation 0 (the test is "counterexample search"), the claim's p 1. The estimate is the
  share of violating tokens on the counterexample shown, a lower bound on the largest violation
  share over all inputs (the estimand), so the "interval" is the certain range [that share, 1];
* none found: **inconclusive**, p = 1 both ways, estimate 0 (the largest share observed), interval
  [0, 1], with a note "no counterexample in N corpus tokens and M generated inputs; not a proof".

A statistical claim about the same share (``violation_rate <= 0.01``) is judged as usual, pooled
over the corpus (``stats.pooled``); :data:`CORPUS_EVALUATORS` names both evaluators, so the engine
picks one per statistic by name (``checks.base.Prepared.evaluators``) without knowing either.

Pure: numbers in, :class:`Evaluation` out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from interp_checks.stats.comparison import Comparison
from interp_checks.stats.evaluate import Evaluation, _check_common_arguments, _margin

__all__ = ["CORPUS_EVALUATORS", "SEARCH_TEST", "UniversalEvidence", "evaluate_universal", "evaluate_universal_evidence", "is_universal"]

SEARCH_TEST = "counterexample search"
ESTIMAND = (
    "the largest share of violating tokens on any one input (0 exactly when the universal claim holds), "
    "bounded below by the share on a counterexample found"
)


def is_universal(comparison: Comparison) -> bool:
    """Whether a claimed comparison of a violation share is the universal claim "no violation at all"
    (``<= 0``): judged by :func:`evaluate_universal`, not by resampling."""
    return comparison.op == "<=" and comparison.threshold == 0


@dataclass(frozen=True)
class UniversalEvidence:
    """What a counterexample search found, as the engine hands it to :func:`evaluate_universal_evidence`.

    ``found``: a violating input exists (generated or in the corpus); ``tried``: generated inputs run
    through the model; ``counterexample_share``: the share of violating tokens among the selected
    tokens of the counterexample shown (0 when none); ``corpus_tokens`` / ``corpus_violations``: the selected tokens of
    the corpus stream and how many of them violate; ``n_documents``: the stream's documents.
    ``nulls`` is empty: a counterexample needs no null to refute, and no null could support.
    """

    found: bool
    tried: int
    counterexample_share: float
    corpus_tokens: int
    corpus_violations: int
    n_documents: int
    estimand: str = ESTIMAND
    unit: str | None = "share of tokens"
    note: str | None = None
    nulls: Mapping[str, float] = field(default_factory=dict)


def evaluate_universal(
    found: bool,
    tried: int,
    comparison: Comparison,
    *,
    statistic: str,
    alpha: float = 0.05,
    counterexample_share: float = 1.0,
    corpus_tokens: int = 0,
    corpus_violations: int = 0,
    n_documents: int = 0,
    estimand: str = ESTIMAND,
    note: str | None = None,
) -> Evaluation:
    """The deterministic verdict of a universal claim (``comparison`` must be ``<= 0``): refuted with
    p 0 when a counterexample was found, else p 1 both ways (inconclusive). See the module doc."""
    alpha, _ = _check_common_arguments(comparison, alpha, 1)
    if not is_universal(comparison):
        raise ValueError(f"a counterexample search judges only the universal claim '<= 0', not {comparison}")
    if tried < 0 or corpus_tokens < 0 or not 0 <= corpus_violations <= corpus_tokens:
        raise ValueError(f"need 0 <= corpus_violations <= corpus_tokens and tried >= 0, got {corpus_violations}, {corpus_tokens}, {tried}")
    searched = f"{corpus_tokens:,} corpus tokens and {tried:,} generated inputs"
    notes = [note] if note else []
    if found:
        if not 0 < counterexample_share <= 1:
            raise ValueError(f"a counterexample has a violation share in (0, 1], got {counterexample_share}")
        estimate, ci = float(counterexample_share), (float(counterexample_share), 1.0)
        p_claim, p_refute = 1.0, 0.0
        where = f"{corpus_violations:,} violating corpus token(s)" if corpus_violations else "none in the corpus stream"
        notes.insert(0, f"counterexample found ({where}; searched {searched}): a proof that the claim is false, not an inference")
    else:
        estimate, ci = 0.0, (0.0, 1.0)
        p_claim = p_refute = 1.0
        notes.insert(0, f"no counterexample in {searched}; not a proof")
    return Evaluation(
        statistic=statistic, comparison=comparison, n=int(n_documents), estimate=estimate, ci=ci, ci_level=1.0 - 2.0 * alpha,
        ci_method="none: certain bounds (a counterexample's share bounds the largest violation share below, 1 above)",
        test=SEARCH_TEST, p_value=p_claim, p_value_refute=p_refute, effect_size=None, effect_size_kind=None,
        null_estimate=None, note="; ".join(notes), estimand=estimand, margin=_margin(estimate, comparison),
    )


def evaluate_universal_evidence(
    evidence: UniversalEvidence, comparison: Comparison, *, statistic: str, alpha: float = 0.05, seed: int = 0, n_resamples: int = 9999
) -> Evaluation:
    """:func:`evaluate_universal` with the signature of ``stats.pooled.evaluate_pooled`` (``seed`` and
    ``n_resamples`` unused: nothing is resampled), so the engine calls either by name."""
    del seed, n_resamples
    return evaluate_universal(
        evidence.found, evidence.tried, comparison, statistic=statistic, alpha=alpha, counterexample_share=evidence.counterexample_share,
        corpus_tokens=evidence.corpus_tokens, corpus_violations=evidence.corpus_violations,
        n_documents=evidence.n_documents, estimand=evidence.estimand, note=evidence.note,
    )


def _evaluate_pooled(stat: Any, comparison: Comparison, **common: Any) -> Evaluation:
    from interp_checks.stats.pooled import evaluate_pooled

    return evaluate_pooled(stat, comparison, **common)


# The evaluators of corpus statistics, by the name a check gives in ``Prepared.evaluators``: each takes
# (the statistic's measured value, comparison, statistic=, alpha=, seed=, n_resamples=).
CORPUS_EVALUATORS: dict[str, Callable[..., Evaluation]] = {
    "pooled": _evaluate_pooled,
    "universal": evaluate_universal_evidence,
}
