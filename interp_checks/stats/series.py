"""Statistics of curves over a checkpoint series, resampled over evaluation samples.

A series claim reads something at every checkpoint of a training run ("the induction score of
L1H0", "the loss on the test pairs"), always on the same evaluation samples (sequences, pairs, test
points), and judges a statistic of the *curve*: the step at which the test accuracy first reaches
95%, the largest rise within 100 steps, the height of a double-descent bump. The evaluation sample
is the unit of resampling: a bootstrap resample draws samples with replacement and recomputes the
whole curve from them, then the statistic of that curve; so a located step gets an interval too.

Representation: each reading contributes, per evaluation sample, a vector (its value at every
checkpoint, [S]; or for a trajectory, a flattened [S, S] Gram matrix of per-token values), and a
resample's curve is the weighted mean of those vectors (one matrix product per batch of resamples).
That is :class:`interp_checks.stats.pooled.PooledStatistic` with the sample as the unit: the
judging (BCa interval, p-values by inverting it, effect against a named null) is
``stats.pooled.evaluate_pooled``'s, unchanged. Readings measured on the same samples are resampled
together (paired); different sample sets (a model's train and test pairs) are strata resampled
apart, each keeping its size. A reading with one sample (a statistic of the weights alone) is a
fixed curve, not resampled.

What the interval covers: variation over evaluation samples, given the checkpoints. It does not
cover the choice of checkpoints (a step is located by linear interpolation between the two
checkpoints around it, so its resolution is the checkpoint spacing; the checks say so) nor
training noise (seeds: a claim over several runs is judged run by run).

The curve functions below take [B, S] curves (B resamples) and return [B] values; NaN where the
statistic is undefined on a resample (e.g. a level never reached).

Pure numpy.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from interp_checks.stats.pooled import PooledStatistic

__all__ = [
    "SampleBlock",
    "curve_statistic",
    "first_crossing",
    "half_rise_position",
    "largest_rise",
    "bump",
    "value_at_end",
    "gram_contributions",
    "pca_trajectory",
    "sharpest_turn",
    "straightness",
    "resampled_values",
]

CurveFunction = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class SampleBlock:
    """Readings measured on one set of evaluation samples, resampled together.

    ``contributions``: reading name -> [n, d] per-sample vectors (a resample's reduced reading is
    their weighted mean); ``shapes``: reading name -> the shape of one reduced reading ((S,) for a
    curve, (S, S) for a Gram matrix). With n == 1 the block is fixed (not resampled)."""

    contributions: Mapping[str, np.ndarray]
    shapes: Mapping[str, tuple[int, ...]]

    @property
    def n(self) -> int:
        sizes = {int(np.asarray(v).shape[0]) for v in self.contributions.values()}
        if len(sizes) != 1:
            raise ValueError(f"readings of one block must have the same samples, got sizes {sorted(sizes)}")
        return sizes.pop()


def curve_statistic(
    blocks: Sequence[SampleBlock],
    function: CurveFunction,
    *,
    estimand: str,
    unit: str | None = None,
    nulls: Mapping[str, float] | None = None,
    note: str | None = None,
) -> PooledStatistic:
    """``function`` of the reduced readings (reading -> [B, *shape]) as a statistic of sample weights.

    Blocks of more than one sample are strata of the bootstrap, in order; one-sample blocks are fixed."""
    resampled = [b for b in blocks if b.n > 1]
    fixed = [b for b in blocks if b.n == 1]
    sizes = tuple(b.n for b in resampled)
    matrices = [{name: np.asarray(v, dtype=float).reshape(b.n, -1) for name, v in b.contributions.items()} for b in resampled]
    constants = {name: np.asarray(v, dtype=float).reshape(-1) for b in fixed for name, v in b.contributions.items()}
    shapes = {name: tuple(shape) for b in blocks for name, shape in b.shapes.items()}

    def value(weights: np.ndarray) -> np.ndarray:
        weights = np.asarray(weights, dtype=float)
        rows = weights.shape[0]
        reduced: dict[str, np.ndarray] = {}
        start = 0
        for size, block in zip(sizes, matrices):
            w = weights[:, start:start + size]
            start += size
            total = w.sum(axis=1, keepdims=True)
            for name, matrix in block.items():
                with np.errstate(invalid="ignore", divide="ignore"):
                    reduced[name] = ((w @ matrix) / total).reshape((rows, *shapes[name]))
        for name, vector in constants.items():
            reduced[name] = np.broadcast_to(vector.reshape(shapes[name]), (rows, *shapes[name]))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(function(reduced), dtype=float).reshape(rows)

    n = sum(sizes)
    if n == 0:  # nothing to resample: a deterministic curve (weights only)
        def deterministic(weights: np.ndarray) -> np.ndarray:
            return np.asarray(function({k: c.reshape((1, *shapes[k])) for k, c in constants.items()}), dtype=float).reshape(-1).repeat(weights.shape[0])

        return PooledStatistic(deterministic, 1, estimand, dict(nulls or {}), None, unit, note, "evaluation samples")
    return PooledStatistic(value, n, estimand, dict(nulls or {}), None, unit, note, "evaluation samples", sizes if len(sizes) > 1 else None)


def resampled_values(stat: PooledStatistic, n_resamples: int, seed: int) -> np.ndarray:
    """``stat`` on ``n_resamples`` (stratified) resamples of its units: for a picture's interval
    (a percentile band), never for a verdict (``stats.pooled.evaluate_pooled`` judges)."""
    rng = np.random.default_rng(seed)
    sizes = stat.strata if stat.strata is not None else (stat.n_documents,)
    weights = np.concatenate([rng.multinomial(size, np.full(size, 1.0 / size), size=n_resamples) for size in sizes], axis=1)
    return np.asarray(stat.value(weights.astype(float)), dtype=float)


# --------------------------------------------------------------------------------------------------
# curve functions: [B, S] curves (positions [S], increasing) -> [B]


def first_crossing(
    curves: np.ndarray, positions: npt.ArrayLike, level: float | np.ndarray, *, rising: bool = True
) -> np.ndarray:
    """The first position at which each curve reaches ``level`` (>= when ``rising``, else <=),
    linearly interpolated between the checkpoints around it; the first position if it starts
    there; NaN if it never does."""
    x = np.asarray(positions, dtype=float)
    c = np.asarray(curves, dtype=float)
    level = np.broadcast_to(np.asarray(level, dtype=float), (c.shape[0],))[:, None]
    signed = (c - level) if rising else (level - c)
    reached = signed >= 0
    any_reached = reached.any(axis=1)
    first = np.argmax(reached, axis=1)
    out = np.full(c.shape[0], math.nan)
    rows = np.nonzero(any_reached)[0]
    at_start = rows[first[rows] == 0]
    out[at_start] = x[0]
    inner = rows[first[rows] > 0]
    if inner.size:
        j = first[inner]
        before, after = signed[inner, j - 1], signed[inner, j]
        fraction = np.where(after != before, -before / (after - before), 1.0)
        out[inner] = x[j - 1] + np.clip(fraction, 0.0, 1.0) * (x[j] - x[j - 1])
    return out


def half_rise_position(curves: np.ndarray, positions: npt.ArrayLike) -> np.ndarray:
    """Where each curve first gets halfway from its first value to its maximum (a rise's midpoint,
    the "t50" of a phase change); NaN for a curve that never rises above its start."""
    c = np.asarray(curves, dtype=float)
    start, top = c[:, 0], c.max(axis=1)
    out = first_crossing(c, positions, start + (top - start) / 2.0, rising=True)
    return np.where(top > start, out, math.nan)


def largest_rise(curves: np.ndarray, positions: npt.ArrayLike, window: float) -> np.ndarray:
    """The largest increase c[j] - c[i] over checkpoint pairs i < j at most ``window`` apart: how
    much the curve jumps within a window (negative: it only falls)."""
    x = np.asarray(positions, dtype=float)
    c = np.asarray(curves, dtype=float)
    i, j = np.triu_indices(x.size, k=1)
    keep = (x[j] - x[i]) <= window
    if not keep.any():
        raise ValueError(f"no two checkpoints lie within window {window}; the closest are {np.min(np.diff(x)):g} apart")
    return (c[:, j[keep]] - c[:, i[keep]]).max(axis=1)


def bump(curves: np.ndarray, positions: npt.ArrayLike) -> dict[str, np.ndarray]:
    """A double-descent bump of each curve: the peak that rises most above the minimum before it.

    ``rise``: that peak minus the lowest value before it; ``second_descent``: the lowest value
    before the peak minus the lowest value after it (> 0: the curve falls below its first minimum
    again); ``peak``: the peak's position; NaN where the curve never rises (no bump)."""
    x = np.asarray(positions, dtype=float)
    c = np.asarray(curves, dtype=float)
    running_min = np.minimum.accumulate(c, axis=1)
    rises = c - running_min
    peak = np.argmax(rises, axis=1)
    rows = np.arange(c.shape[0])
    rise = rises[rows, peak]
    valley = running_min[rows, peak]
    after = np.where(np.arange(c.shape[1])[None, :] > peak[:, None], c, np.inf).min(axis=1)
    no_bump = rise <= 0
    return {
        "rise": np.where(no_bump, math.nan, rise),
        "second_descent": np.where(no_bump | ~np.isfinite(after), math.nan, valley - after),
        "peak": np.where(no_bump, math.nan, x[peak]),
    }


def value_at_end(curves: np.ndarray) -> np.ndarray:
    return np.asarray(curves, dtype=float)[:, -1]


# --------------------------------------------------------------------------------------------------
# trajectories: per-token values (losses, logits) at every checkpoint, projected on principal components


def gram_contributions(values: np.ndarray) -> np.ndarray:
    """Per sample, its part of the checkpoints' Gram matrix: sum over its k values of x_s x_t.
    The mean over samples is the Gram matrix of the checkpoints' concatenated values / n, so a
    resample of samples gives its Gram matrix as a weighted mean (``curve_statistic``)."""
    v = np.asarray(values, dtype=float)
    return np.einsum("nsk,ntk->nst", v, v).reshape(v.shape[0], -1)


def pca_trajectory(gram: np.ndarray, components: int) -> np.ndarray:
    """Each checkpoint's coordinates on the top principal components of the checkpoints' values
    (classical MDS of the Gram matrix: double-centred, eigendecomposed); signs are fixed so that the
    first checkpoint's coordinates are <= 0 (so resamples agree)."""
    g = np.asarray(gram, dtype=float)
    s = g.shape[-1]
    centre = np.eye(s) - 1.0 / s
    centred = centre @ g @ centre
    eigenvalues, eigenvectors = np.linalg.eigh(centred)
    top = eigenvalues[..., ::-1][..., :components].clip(min=0.0)
    vectors = eigenvectors[..., ::-1][..., :components]
    coords = vectors * np.sqrt(top)[..., None, :]
    sign = np.where(coords[..., :1, :] > 0, -1.0, 1.0)
    return coords * sign


def sharpest_turn(coords: np.ndarray, positions: npt.ArrayLike, *, min_share: float = 0.0) -> dict[str, np.ndarray]:
    """The sharpest turn of each trajectory: at every inner checkpoint, the angle (degrees) between
    the incoming and the outgoing step; ``angle`` the largest, ``position`` where it is. A straight
    path turns 0 degrees, a reversal 180.

    ``min_share``: a turn counts only where both steps around it are at least this share of the
    whole path's length. Late in training a model barely moves between checkpoints, and the
    direction of a tiny step is noise: without this, the sharpest "turn" is often a jitter."""
    x = np.asarray(positions, dtype=float)
    c = np.asarray(coords, dtype=float)
    steps = np.linalg.norm(np.diff(c, axis=1), axis=-1)
    incoming = c[:, 1:-1] - c[:, :-2]
    outgoing = c[:, 2:] - c[:, 1:-1]
    norms = steps[:, :-1] * steps[:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.clip((incoming * outgoing).sum(-1) / norms, -1.0, 1.0)
    angles = np.degrees(np.arccos(cosine))
    long_enough = np.minimum(steps[:, :-1], steps[:, 1:]) >= min_share * steps.sum(axis=1, keepdims=True)
    angles = np.where(np.isfinite(angles) & long_enough, angles, -np.inf)
    where = np.argmax(angles, axis=1)
    best = angles[np.arange(c.shape[0]), where]
    counted = np.where(np.isfinite(angles), angles, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row with no counted turn: NaN, said by the caller
        others = np.nanmedian(np.where(np.arange(angles.shape[1])[None, :] == where[:, None], np.nan, counted), axis=1)
    best = np.where(np.isfinite(best), best, math.nan)
    return {"angle": best, "position": x[1:-1][where], "angles": angles, "contrast": best - others, "median_other": others}


def straightness(coords: np.ndarray) -> np.ndarray:
    """The distance from the first checkpoint to the last over the length of the path through all of
    them: 1 for a straight path, near 1/sqrt(S) for independent random points. A "kink" means
    something only on a path (checkpoints of one training run); a cloud of unrelated models turns
    sharply everywhere."""
    c = np.asarray(coords, dtype=float)
    length = np.linalg.norm(np.diff(c, axis=1), axis=-1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.linalg.norm(c[:, -1] - c[:, 0], axis=-1) / length
