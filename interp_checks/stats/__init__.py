"""Statistics for interpretability claims: estimates, intervals, p-values, verdicts.

Pure numpy/scipy on purpose: nothing here imports torch, model code or pytest,
so the statistical core can be tested (and reasoned about) on synthetic data.

Typical use, per claim::

    ev = evaluate(per_sequence_values, Comparison(">=", 0.4), null_samples=null_values)
    # ... after evaluating every claim in the run:
    p = adjust_p_values([e.p_value for e in evs], "holm")
    p_ref = adjust_p_values([e.p_value_refute for e in evs], "holm")
    outcomes = [decide(e, p_adjusted=a, p_adjusted_refute=b, alpha=0.05) for e, a, b in zip(evs, p, p_ref)]
"""

from interp_checks.stats.comparison import Comparison, ComparisonOp
from interp_checks.stats.evaluate import Evaluation, evaluate
from interp_checks.stats.multiplicity import AdjustMethod, adjust_p_values
from interp_checks.stats.verdict import Outcome, combine, decide

__all__ = [
    "AdjustMethod",
    "Comparison",
    "ComparisonOp",
    "Evaluation",
    "Outcome",
    "adjust_p_values",
    "combine",
    "decide",
    "evaluate",
]
