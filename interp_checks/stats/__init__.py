"""Statistics for interpretability claims: estimates, intervals, p-values, verdicts.

Pure numpy/scipy on purpose: nothing here imports torch, model code or pytest,
so the statistical core can be tested (and reasoned about) on synthetic data.

Typical use, per claim::

    ev = evaluate(per_sequence_values, Comparison(">=", 0.4), null_samples=null_values)
    # ... after evaluating every claim in the run:
    # one claim = one or more expectations; the family is every claim of the session
    support, refute = zip(*(claim_p_values(claim_evs) for claim_evs in claims))
    p = adjust_p_values(support, "holm", family_size=m)
    p_ref = adjust_p_values(refute, "holm", family_size=m)
    decisions = [decide_claim(evs, p_adjusted=a, p_adjusted_refute=b, alpha=0.05) for evs, a, b in zip(claims, p, p_ref)]
"""

from interp_checks.stats.clusters import cluster_means
from interp_checks.stats.comparison import Comparison, ComparisonOp
from interp_checks.stats.evaluate import Evaluation, evaluate, evaluate_against_draws, evaluate_largest_mean, evaluate_many
from interp_checks.stats.estimators import ESTIMATORS, display_unit, display_values, evaluate_with
from interp_checks.stats.ratios import evaluate_ratio_of_means, evaluate_share_beaten, ratio_shares
from interp_checks.stats.pooled import (
    CorrelationSums,
    PooledStatistic,
    auroc_statistic,
    band_share_statistic,
    best_over_columns,
    column_statistics,
    correlation_statistic,
    correlation_sums,
    evaluate_pooled,
    family_separation_statistic,
    firing_precision_statistic,
    firing_recall_statistic,
    firing_threshold,
    frequency_matched_class,
    mean_pairwise_correlation_statistic,
    pooled_correlations,
    rank_correlation_statistic,
    ranked_correlation_statistic,
    top_share_statistic,
    undefined_statistic,
)
from interp_checks.stats.multiplicity import AdjustMethod, adjust_p_values
from interp_checks.stats.verdict import ClaimDecision, Outcome, claim_p_values, combine, decide, decide_claim

__all__ = [
    "ESTIMATORS",
    "AdjustMethod",
    "ClaimDecision",
    "Comparison",
    "CorrelationSums",
    "ComparisonOp",
    "Evaluation",
    "Outcome",
    "PooledStatistic",
    "adjust_p_values",
    "auroc_statistic",
    "band_share_statistic",
    "best_over_columns",
    "column_statistics",
    "claim_p_values",
    "cluster_means",
    "combine",
    "correlation_statistic",
    "correlation_sums",
    "decide",
    "decide_claim",
    "ratio_shares",
    "display_unit",
    "display_values",
    "evaluate",
    "evaluate_against_draws",
    "evaluate_largest_mean",
    "evaluate_many",
    "evaluate_pooled",
    "evaluate_ratio_of_means",
    "evaluate_share_beaten",
    "evaluate_with",
    "family_separation_statistic",
    "firing_precision_statistic",
    "firing_recall_statistic",
    "firing_threshold",
    "frequency_matched_class",
    "mean_pairwise_correlation_statistic",
    "pooled_correlations",
    "rank_correlation_statistic",
    "ranked_correlation_statistic",
    "top_share_statistic",
    "undefined_statistic",
]
