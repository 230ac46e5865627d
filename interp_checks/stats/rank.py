"""Rank claims: "member A is among the k largest of several members' means" (e.g. L1H0 is among
the 2 heads whose ablation raises the loss most), judged without ranking noise passing for a result.

Why not the observed rank: with 16 heads, a head whose mean is tied with three others comes out
anywhere from 1st to 4th depending on the sample, so "it came out 2nd" says little. And why not a
split (choose the k-th strongest competitor on half of the sequences, test against it on the
other half): beating the competitor that *looked* k-th does not imply being in the top k when the
look was wrong. Instead the claim is restated as what it means about pairs:

    rank(A) <= k  <=>  A's mean exceeds the means of at least m - k + 1 of the m other members.

Per other member j, a one-sided paired t-test over sequences of H0_j: mean(A - j) <= 0 gives p_j.
The claim needs m - k + 1 rejections; under the claim's null (rank > k: at least k of the H0_j
true) any m - k + 1 rejections include a true H0_j, and a union bound over the true ones (worst
case exactly k of them) makes ``p = min(1, k x (k-th largest p_j))`` a valid p-value (k = 1: the
intersection-union test, p = largest p_j). The refutation (rank > k: at least k others exceed A)
is the mirror: p = min(1, (m - k + 1) x (k-th smallest p'_j)) with p'_j from H0'_j: mean(A - j) >= 0.

The estimate is A's observed rank by means; its interval is a percentile bootstrap over sequences
of that rank, and the note gives the share of bootstrap resamples in which A is in the top k
(descriptive: the verdict rests on the tests above). Pure numpy/scipy.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats

from interp_checks.numbers import finite_or_none
from interp_checks.stats.comparison import Comparison
from interp_checks.stats.evaluate import Evaluation, _margin, _null_effect

__all__ = ["claimed_k", "evaluate_rank", "ranks_of_first"]


def claimed_k(comparison: Comparison, members: int) -> int:
    """The k of "rank <= k" (``<= 2``, ``< 3``); a ValueError for any other shape of claim."""
    if comparison.op not in ("<=", "<"):
        raise ValueError(f"a rank claim reads 'rank <= k' (among the k largest); got {comparison}")
    t = comparison.threshold
    k = math.floor(t) if comparison.op == "<=" else math.ceil(t) - 1
    if not 1 <= k < members:
        raise ValueError(f"rank <= {k} among {members} members says nothing testable: k must be 1..{members - 1}")
    return k


def ranks_of_first(means: npt.ArrayLike) -> np.ndarray:
    """1 + how many other columns have a strictly larger mean than column 0, per row of ``means``
    ([..., members]); ties count in the first member's favour."""
    means = np.asarray(means, dtype=float)
    return 1 + (means[..., 1:] > means[..., :1]).sum(axis=-1)


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def _paired_p(differences: np.ndarray, alternative: str) -> np.ndarray:
    """One-sided t-test p per column of [n, m] differences; 1 where the test is undefined (all equal)."""
    p = np.asarray(stats.ttest_1samp(differences, 0.0, axis=0, alternative=alternative).pvalue, dtype=float)
    return np.where(np.isfinite(p), p, 1.0)


def evaluate_rank(
    samples: npt.ArrayLike,
    comparison: Comparison,
    members: list[str],
    *,
    statistic: str = "rank",
    alpha: float = 0.05,
    seed: int = 0,
    null_samples: npt.ArrayLike | None = None,
    null_kind: str = "random-weights model",
    n_resamples: int = 9999,
) -> Evaluation:
    """Judge "members[0] is among the k largest means" from [n, members] per-sequence values
    (column 0 the claimed member). See the module docstring for the test."""
    x = np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[1] != len(members) or len(members) < 2 or x.shape[0] < 2:
        raise ValueError(f"{statistic} needs [sequences >= 2, members >= 2] values for {members}, got shape {x.shape}")
    m = len(members) - 1
    k = claimed_k(comparison, len(members))
    differences = x[:, :1] - x[:, 1:]  # [n, m]: the claimed member minus each other
    p_above = _paired_p(differences, "greater")
    p_below = _paired_p(differences, "less")
    p_claim = min(1.0, k * float(np.sort(p_above)[::-1][k - 1]))
    p_refute = min(1.0, (m - k + 1) * float(np.sort(p_below)[k - 1]))
    means = x.mean(axis=0)
    rank = int(ranks_of_first(means))
    rng = np.random.default_rng(seed)
    boot_ranks = np.empty(n_resamples, dtype=int)
    for begin in range(0, n_resamples, 1000):  # resample sequences, 1000 resamples at a time
        rows = rng.integers(0, x.shape[0], size=(min(1000, n_resamples - begin), x.shape[0]))
        boot_ranks[begin : begin + rows.shape[0]] = ranks_of_first(x[rows].mean(axis=1))
    low, high = np.quantile(boot_ranks, [alpha, 1 - alpha], method="inverted_cdf")
    share = float(np.mean(boot_ranks <= k))
    # effect size: the margin over the k-th strongest other member (by mean), against the null
    kth_other = 1 + int(np.argsort(-means[1:], kind="stable")[k - 1])
    notes = [
        f"observed rank {rank} of {len(members)} by means; {members[0]} is in the top {k} in {share:.1%} of "
        f"{n_resamples} bootstrap resamples of sequences (descriptive; the verdict rests on the paired tests)"
    ]
    effect, effect_kind, null_estimate, null_draws, effect_range = _null_effect(
        x[:, 0] - x[:, kth_other], null_samples, null_kind, notes
    )
    member_rows = tuple(
        {
            "member": name,
            "estimate": finite_or_none(float(differences[:, j].mean())),
            "ci": [None, None],
            "p_value": finite_or_none(float(p_above[j])),
            "p_value_refute": finite_or_none(float(p_below[j])),
        }
        for j, name in enumerate(members[1:])
    )
    margin = _margin(float(rank), comparison)
    return Evaluation(
        statistic=statistic,
        comparison=comparison,
        n=int(x.shape[0]),
        estimate=float(rank),
        ci=(float(low), float(high)),
        ci_level=1.0 - 2.0 * alpha,
        ci_method=f"percentile bootstrap of the rank over {x.shape[0]} sequences ({n_resamples} resamples)",
        test=(
            f"rank of {members[0]} among {len(members)} members' means <= {k}: one-sided paired t-test over sequences "
            f"per other member (H0_j: mean({members[0]} - j) <= 0); p = min(1, {k} x the {_ordinal(k)} largest p_j); "
            f"refutation H0: rank <= {k}, p = min(1, {m - k + 1} x the {_ordinal(k)} smallest p of H0'_j: mean({members[0]} - j) >= 0)"
        ),
        p_value=p_claim,
        p_value_refute=p_refute,
        effect_size=effect,
        effect_size_kind=None if effect_kind is None else f"{effect_kind} (of {members[0]} minus the {_ordinal(k)} strongest other, {members[kth_other]})",
        null_estimate=null_estimate,
        note="; ".join(notes),
        estimand=f"rank of {members[0]}'s mean among {len(members)} members' means (members: {', '.join(members)})",
        null_draws=null_draws,
        effect_size_range=effect_range,
        margin=margin,
        margin_sd=None,
        members=member_rows,
        deciding_member=members[0],
    )
