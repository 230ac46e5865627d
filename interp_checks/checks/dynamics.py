"""Training-dynamics claims over a checkpoint series: grokking, phase changes, double descent,
logit-PCA kinks, and whether two events coincide.

Every check here reads a ``series:`` model (``models.series``) and takes *readings* at each
checkpoint (``checks.base.SeriesReading``): an existing check's statistic on fixed inputs, so "the
induction score at step 700" means exactly what an ``induction_head`` claim means on that
checkpoint. A check then judges a statistic of the curve. The unit of sampling is the evaluation
sample (a sequence, a modular-addition pair): a bootstrap resample redraws the samples and
recomputes the whole curve from them (``stats.series``), so a located step gets an interval.
Several runs (``series:runs/modadd-40-s*``, one per seed) are judged run by run (``stat[run]``):
three seeds are too few to resample, and a claim about grokking should hold in each.

What an interval does not cover, and every result says so: the checkpoints' spacing (a step is
located by linear interpolation between the two checkpoints around it) and training noise beyond
the runs given.

Checks (``check:`` in a claim file):

``grokking``      the train metric reaches ``level`` at step a, the test metric at step b:
                  ``delay_ratio`` = b / a, ``train_step`` = a, ``test_step`` = b, ``final_test`` (the
                  test metric at the last checkpoint). Claiming ``delay_ratio`` or ``test_step`` also
                  claims ``final_test`` reaches the level: a model that never generalises has not
                  grokked (its b is censored at the last checkpoint, so b / a alone would say "a long
                  delay").
``phase_change``  a reading jumps: ``jump`` = the largest rise within ``window`` steps, ``midpoint``
                  = where the curve first gets halfway from its start to its maximum (``direction:
                  down`` for a curve that falls, such as a loss or an ICL score).
``double_descent`` a reading (a test loss, over steps or over a swept size) has a bump: ``rise`` =
                  the peak above the minimum before it, ``second_descent`` = that minimum minus the
                  lowest value after the peak (> 0: it falls below it again), ``peak`` = where.
``logit_pca``     per-token losses of fixed random-token inputs at every checkpoint, projected on
                  their top principal components (classical MDS of the checkpoints' Gram matrix):
                  ``kink_angle`` = the sharpest turn of the trajectory (degrees), ``kink_at`` = where,
                  ``other_turns`` = the median of the other turns, ``kink_contrast`` = the sharpest
                  minus that median, ``straightness`` = start-to-end distance over path length,
                  ``explained`` = the variance share of the components kept. A cloud of unrelated
                  checkpoints (random weights) turns 100-180 degrees everywhere (measured: median of
                  the other turns 112-134 at 21 and 9 checkpoints): a kink is a sharp turn on an otherwise smooth path, so a
                  kink claim should claim ``other_turns`` small too, as the bundled ones do.
``coincide``      two events located by other checks (``first:``, ``second:``, each a mapping with
                  ``check``, ``statistic`` and that check's keys): ``gap`` = |second - first|,
                  ``lead`` = second - first (> 0: the first event comes first). Both events are
                  resampled together (samples the two share are drawn once).

Nulls: "no change" values (a jump of 0, no delay: b / a = 1, no bump) for the effect size; a
random-weights model is not a null of a curve (it has no training). A series whose checkpoints do
not train (the tests build one) must leave every claim here unsupported.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from interp_checks.checks.base import MODEL, CheckError, CorpusMeasurement, ModelShape, Needs, Prepared, SeriesCurves, SeriesReading, get_check, register
from interp_checks.figures import Figure, rounded
from interp_checks.stats.series import (
    SampleBlock,
    bump,
    curve_statistic,
    first_crossing,
    gram_contributions,
    half_rise_position,
    largest_rise,
    pca_trajectory,
    resampled_values,
    sharpest_turn,
    straightness,
    value_at_end,
)

__all__ = ["Coincide", "DoubleDescent", "Grokking", "LogitPCA", "PhaseChange"]

# A curve function: reduced readings (reading -> [B, S] mean curve, or [B, S, S] Gram) -> [B].
CurveFunction = Callable[[Mapping[str, np.ndarray]], np.ndarray]
SERIES_KEYS = ("every", "steps")
FIGURE_RESAMPLES = 999


# -- shared parsing --------------------------------------------------------------------------------


def _thinning(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    every, steps = params.get("every"), params.get("steps")
    if every is not None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise CheckError(f"every: must be a positive integer (keep every k-th checkpoint), got {every!r}")
        out["every"] = every
    if steps is not None:
        if not isinstance(steps, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
            raise CheckError(f"steps: must be a list of checkpoint positions (integers), got {steps!r}")
        out["steps"] = list(steps)
    return out


def _reading(raw: Any, name: str, *, default_check: str | None = None, default_statistic: str | None = None) -> SeriesReading:
    """A ``reading:`` mapping (``check``, ``statistic``, ``inputs``, ``seed``, and the check's own keys)."""
    if not isinstance(raw, Mapping):
        raise CheckError(
            f"{name}: must be a mapping such as {{check: induction_head, head: L1H0, statistic: score, "
            f"inputs: {{kind: repeated_random_tokens, seq_len: 32, n: 64}}}}, got {raw!r}"
        )
    check = raw.get("check", default_check)
    statistic = raw.get("statistic", default_statistic)
    if not isinstance(check, str) or not isinstance(statistic, str):
        raise CheckError(f"{name}: needs check: (a per-checkpoint check, e.g. loss or induction_head) and statistic: (one of its statistics)")
    seed = raw.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise CheckError(f"{name}.seed must be a non-negative integer, got {seed!r}")
    inputs = raw.get("inputs")
    if inputs is not None and not isinstance(inputs, Mapping):
        raise CheckError(f"{name}.inputs must be an inputs mapping such as {{kind: repeated_random_tokens, n: 64}}")
    params = {k: v for k, v in raw.items() if k not in ("check", "statistic", "inputs", "seed")}
    return SeriesReading(name, check, statistic, params, None if inputs is None else dict(inputs), seed)


def _window(params: Mapping[str, Any], key: str = "window") -> float:
    value = params.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise CheckError(f"{key}: must be a positive number of steps (or axis units), got {value!r}")
    return float(value)


def _unknown(params: Mapping[str, Any], allowed: tuple[str, ...], check: str) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise CheckError(f"unknown key {unknown[0]!r} for check {check}; it takes {', '.join(allowed)}")


# -- turning curves into statistics ---------------------------------------------------------------


def sample_blocks(curves: SeriesCurves, reductions: Mapping[str, str]) -> list[SampleBlock]:
    """The readings as blocks of evaluation samples: readings with the same samples (input key) in
    one block, resampled together. ``reductions``: reading -> "mean" (its mean curve per member,
    [S, k]) or "gram" (the checkpoints' Gram matrix of the per-member values, [S, S])."""
    blocks: dict[str, tuple[dict[str, np.ndarray], dict[str, tuple[int, ...]]]] = {}
    for name, how in reductions.items():
        values = curves.values[name]  # [S, n, k]
        values = values.reshape(values.shape[0], values.shape[1], -1)
        per_sample = np.transpose(values, (1, 0, 2))  # [n, S, k]
        # the same samples: the same inputs (key), and as many (a weights check's fixed statistic is one sample)
        contributions, shapes = blocks.setdefault(f"{curves.sample_keys[name]}/{values.shape[1]}", ({}, {}))
        if how == "gram":
            contributions[name] = gram_contributions(np.nan_to_num(per_sample))
            shapes[name] = (values.shape[0], values.shape[0])
        else:
            contributions[name] = per_sample.reshape(per_sample.shape[0], -1)
            shapes[name] = (values.shape[0], per_sample.shape[2])
    return [SampleBlock(c, s) for c, s in blocks.values()]


def _curve(reduced: Mapping[str, np.ndarray], name: str, members: str = "mean") -> np.ndarray:
    """[B, S] from a reduced [B, S, k] reading: its members averaged, or the largest member mean."""
    value = np.asarray(reduced[name])
    if value.ndim == 2:
        return value
    return value.max(axis=2) if members == "max" else value.mean(axis=2)


def _point_curve(curves: SeriesCurves, name: str, members: str = "mean") -> np.ndarray:
    """The observed mean curve of one reading ([S]), for pictures."""
    values = curves.values[name]
    values = values.reshape(values.shape[0], values.shape[1], -1)
    with np.errstate(invalid="ignore"):
        means = np.nanmean(values, axis=1)
    return means.max(axis=1) if members == "max" else means.mean(axis=1)


def _interval(stat: Any, seed: int) -> tuple[float | None, float | None]:
    values = resampled_values(stat, FIGURE_RESAMPLES, seed)
    values = values[np.isfinite(values)]
    if values.size < 10:
        return None, None
    return float(np.quantile(values, 0.05)), float(np.quantile(values, 0.95))


def _curve_figure(title: str, curves: SeriesCurves, lines: list[tuple[str, np.ndarray]], marker: tuple[str, float, Any] | None,
                  y_label: str, caption: str, reference: list[dict[str, Any]] | None = None) -> Figure:
    """One run's curves with the located position (and a 90% percentile interval of 999 resamples)."""
    x = curves.positions
    data: dict[str, Any] = {
        "series": [{"label": label, "x": rounded(x), "y": rounded(y)} for label, y in lines],
        "x_label": curves.axis, "y_label": y_label,
        "x_scale": "log" if x[0] > 0 and x[-1] / x[0] > 50 else "linear",
    }
    if marker is not None and math.isfinite(marker[1]):
        low, high = _interval(marker[2], 0) if marker[2] is not None else (None, None)
        data["markers"] = [{"x": rounded(marker[1]), "label": marker[0], "low": rounded(low), "high": rounded(high)}]
    if reference:
        data["lines"] = reference
    note = "; the shaded band is a 90% percentile interval of the located position over 999 resamples of the evaluation samples (the verdict's interval is BCa)" if marker else ""
    return Figure("line", f"{title} ({curves.run})", rounded(data), caption + note, "")


def _unit(unit: str | None, axis: str) -> str | None:
    """A located position is in the series' axis units ("step", "dataset size T")."""
    return axis if unit == "step" else unit


class _SeriesCheck:
    """What every series check shares: ``reads_series``, thinning keys, judging per run."""

    model_roles: ClassVar[tuple[str, ...]] = ()
    default_inputs: ClassVar[Mapping[str, Any] | None] = None
    reads_series: ClassVar[bool] = True
    units: ClassVar[dict[str, str]] = {}

    def measure(self, *args: Any) -> dict[str, np.ndarray]:  # pragma: no cover - the engine never calls it
        raise CheckError(f"check {self.name} reads a checkpoint series (model: series:PATH)")  # type: ignore[attr-defined]

    def measure_null(self, *args: Any) -> np.ndarray:  # pragma: no cover
        raise CheckError(f"check {self.name} has no per-sequence null")  # type: ignore[attr-defined]

    def _prepared(self, params: Mapping[str, Any], readings: list[SeriesReading], stats: list[str], state: dict[str, Any],
                  notes: list[str], restated: dict[str, Any] | None = None) -> Prepared:
        return Prepared(
            needs={MODEL: Needs(frozenset())}, null_needs=None, statistics=stats, state=state, notes=notes, sampling="series",
            readings=tuple(readings), thinning=_thinning(params), restated=restated or {},
            units={s: self.units.get(s, "") for s in stats},
        )

    # Each series check: ``functions(prepared, curves) -> (reductions, {statistic: (function, estimand, nulls)})``.
    def functions(self, prepared: Prepared, curves: SeriesCurves) -> tuple[dict[str, str], dict[str, tuple[CurveFunction, str, dict[str, float]]]]:
        raise NotImplementedError

    def statistics_of(self, prepared: Prepared, curves: SeriesCurves) -> tuple[dict[str, Any], list[SampleBlock], dict[str, Any]]:
        """The judged statistics of one run, and the sample blocks and curve functions they were
        built from (a picture's marker and trajectory reuse them: ``located``)."""
        reductions, functions = self.functions(prepared, curves)
        blocks = sample_blocks(curves, reductions)
        spacing = np.diff(curves.positions)
        note = f"{len(curves.positions)} checkpoints, {curves.axis} {curves.positions[0]:g}..{curves.positions[-1]:g} (spacing {spacing.min():g}-{spacing.max():g}; a located {curves.axis} is interpolated between checkpoints)"
        stats = {
            stat: curve_statistic(blocks, function, estimand=f"{estimand}; {note}", unit=_unit(self.units.get(stat), curves.axis), nulls=nulls)
            for stat, (function, estimand, nulls) in functions.items()
            if stat in prepared.statistics
        }
        return stats, blocks, functions

    def null_description(self, prepared: Prepared) -> str:
        return "no change over training (the null values named in each estimate's notes)"

    @staticmethod
    def located(measured: tuple[dict[str, Any], list[SampleBlock], dict[str, Any]], name: str) -> Any:
        """The statistic ``name`` (a located position) for a picture's marker: the judged one, or
        built from the same blocks when the claim does not judge it (``statistics_of``'s result)."""
        stats, blocks, functions = measured
        return stats[name] if name in stats else curve_statistic(blocks, functions[name][0], estimand=name)

    def one_reading_conclusion(self, prepared: Prepared, curves: SeriesCurves, marker: str, members: str = "mean") -> CorpusMeasurement:
        """The statistics of a check that reads one curve (``reading``), and that curve with the
        position ``marker`` located on it."""
        measured = self.statistics_of(prepared, curves)
        position = self.located(measured, marker)
        reading = prepared.readings[0]
        figure = _curve_figure(
            reading.describe(), curves, [(reading.statistic, _point_curve(curves, "reading", members))],
            (marker, float(position.observed()), position), reading.statistic,
            "mean over the evaluation samples at each checkpoint" + (" (largest member)" if members == "max" else ""),
        )
        return CorpusMeasurement(measured[0], [replace(figure, source=self.name)], list(curves.notes))  # type: ignore[attr-defined]


# -- grokking --------------------------------------------------------------------------------------


class Grokking(_SeriesCheck):
    """``check: grokking``; keys ``train``, ``test`` (inputs), ``metric``, ``level``, ``every``, ``steps``."""

    name: ClassVar[str] = "grokking"
    description: ClassVar[str] = (
        "over a checkpoint series: the step a at which the train metric reaches level, the step b at which the test metric "
        "does, delay_ratio b / a (claiming it also claims the test metric reaches level by the last checkpoint)"
    )
    statistics: ClassVar[tuple[str, ...]] = ("delay_ratio", "train_step", "test_step", "final_test")
    params: ClassVar[tuple[str, ...]] = ("train", "test", "metric", "level", *SERIES_KEYS)
    units: ClassVar[dict[str, str]] = {"delay_ratio": "ratio of steps", "train_step": "step", "test_step": "step", "final_test": ""}

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        from interp_checks.stats import Comparison

        metric = params.get("metric", "accuracy")
        if metric not in ("accuracy", "loss"):
            raise CheckError(f"metric: must be accuracy or loss (of check loss), got {metric!r}")
        level = params.get("level", 0.95 if metric == "accuracy" else None)
        if level is None or isinstance(level, bool) or not isinstance(level, (int, float)):
            raise CheckError(f"level: the {metric} that counts as reached (e.g. 0.95 for accuracy, 0.1 for loss), got {level!r}")
        readings = []
        for split in ("train", "test"):
            if not isinstance(params.get(split), Mapping):
                raise CheckError(f"{split}: the {split} evaluation inputs, e.g. {{kind: modular_pairs, split: {split}, train_fraction: 0.4}}")
            readings.append(SeriesReading(split, "loss", metric, {}, dict(params[split])))
        stats = [s for s in self.statistics if s in expect]
        restated = {}
        if {"delay_ratio", "test_step"} & set(stats) and "final_test" not in stats:
            stats.append("final_test")
            restated["final_test"] = Comparison(">=" if metric == "accuracy" else "<=", float(level))
        words = "reaches" if metric == "accuracy" else "falls to"
        notes = [
            f"a = the first step at which the train {metric} {words} {level}, b = the same for the test {metric} "
            "(linear interpolation between checkpoints); delay_ratio = b / a"
        ]
        if "final_test" in restated:
            notes.append(f"claiming the delay also claims the test {metric} {words} {level} by the last checkpoint (final_test): without it a run that never generalises would show a long 'delay'")
        return self._prepared(params, readings, stats, {"metric": metric, "level": float(level)}, notes, restated)

    def functions(self, prepared: Prepared, curves: SeriesCurves) -> tuple[dict[str, str], dict[str, tuple[CurveFunction, str, dict[str, float]]]]:
        metric, level = prepared.state["metric"], prepared.state["level"]
        rising = metric == "accuracy"
        x = curves.positions
        last = float(x[-1])

        def step(reduced: Mapping[str, np.ndarray], split: str, censor: bool) -> np.ndarray:
            found = first_crossing(_curve(reduced, split), x, level, rising=rising)
            return np.where(np.isnan(found), last, found) if censor else found

        functions = {
            "train_step": (lambda r: step(r, "train", False), f"first step at which the mean train {metric} reaches {level:g}", {}),
            "test_step": (lambda r: step(r, "test", True), f"first step at which the mean test {metric} reaches {level:g} (the last checkpoint's step where it never does: a lower bound)", {}),
            "delay_ratio": (
                lambda r: step(r, "test", True) / step(r, "train", False),
                f"test step / train step, each the first step at which the mean {metric} reaches {level:g} (test censored at the last checkpoint)",
                {"no delay: test reaches the level with train": 1.0},
            ),
            "final_test": (lambda r: value_at_end(_curve(r, "test")), f"mean test {metric} at the last checkpoint ({curves.axis} {last:g})", {}),
        }
        return {"train": "mean", "test": "mean"}, functions

    def conclude(self, prepared: Prepared, curves: SeriesCurves) -> CorpusMeasurement:
        measured = self.statistics_of(prepared, curves)
        stats = measured[0]
        metric, level = prepared.state["metric"], prepared.state["level"]
        located = self.located(measured, "test_step")
        figure = _curve_figure(
            f"train and test {metric}", curves,
            [("train", _point_curve(curves, "train")), ("test", _point_curve(curves, "test"))],
            ("test reaches the level", float(located.observed()), located), metric,
            f"mean {metric} over the train and test evaluation samples at each checkpoint",
            [{"value": level, "label": f"level {level:g}"}],
        )
        figure = replace(figure, source=self.name)
        return CorpusMeasurement(stats, [figure], list(curves.notes))


# -- phase change -----------------------------------------------------------------------------------


class PhaseChange(_SeriesCheck):
    """``check: phase_change``; keys ``reading``, ``window``, ``direction``, ``members``, ``every``, ``steps``."""

    name: ClassVar[str] = "phase_change"
    description: ClassVar[str] = (
        "over a checkpoint series: a reading (e.g. an induction score, an ICL score) jumps; jump = the largest rise within "
        "window steps, midpoint = where it first gets halfway from its start to its maximum"
    )
    statistics: ClassVar[tuple[str, ...]] = ("jump", "midpoint")
    params: ClassVar[tuple[str, ...]] = ("reading", "window", "direction", "members", *SERIES_KEYS)
    units: ClassVar[dict[str, str]] = {"midpoint": "step"}

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        reading = _reading(params.get("reading"), "reading")
        direction = params.get("direction", "up")
        if direction not in ("up", "down"):
            raise CheckError(f"direction: up (the reading rises, e.g. an induction score) or down (it falls, e.g. a loss), got {direction!r}")
        members = params.get("members", "max")
        if members not in ("max", "mean"):
            raise CheckError(f"members: max (the largest member's mean, e.g. the best head of a layer) or mean, got {members!r}")
        window = _window(params) if "jump" in expect or params.get("window") is not None else None
        stats = [s for s in self.statistics if s in expect]
        sign = "" if direction == "up" else "minus "
        notes = [f"the curve is {sign}the mean of {reading.describe()} over the evaluation samples at each checkpoint"]
        return self._prepared(params, [reading], stats, {"window": window, "sign": 1.0 if direction == "up" else -1.0, "members": members}, notes)

    def functions(self, prepared: Prepared, curves: SeriesCurves) -> tuple[dict[str, str], dict[str, tuple[CurveFunction, str, dict[str, float]]]]:
        sign, window, members, x = prepared.state["sign"], prepared.state["window"], prepared.state["members"], curves.positions
        what = "the reading" if sign > 0 else "minus the reading"

        def curve(reduced: Mapping[str, np.ndarray]) -> np.ndarray:
            return sign * _curve(reduced, "reading", members)

        functions: dict[str, tuple[CurveFunction, str, dict[str, float]]] = {
            "midpoint": (lambda r: half_rise_position(curve(r), x), f"first {curves.axis} at which {what} gets halfway from its first value to its maximum", {}),
        }
        if window is not None:
            functions["jump"] = (lambda r: largest_rise(curve(r), x, window), f"largest rise of {what} between checkpoints at most {window:g} apart", {"no change": 0.0})
        return {"reading": "mean"}, functions

    def conclude(self, prepared: Prepared, curves: SeriesCurves) -> CorpusMeasurement:
        return self.one_reading_conclusion(prepared, curves, "midpoint", prepared.state["members"])


# -- double descent ---------------------------------------------------------------------------------


class DoubleDescent(_SeriesCheck):
    """``check: double_descent``; keys ``reading``, ``every``, ``steps``."""

    name: ClassVar[str] = "double_descent"
    description: ClassVar[str] = (
        "over a checkpoint series (steps, or a swept size): a test-loss curve rises after a minimum and falls again; "
        "rise = the peak above the minimum before it, second_descent = that minimum minus the lowest value after the peak, peak = where"
    )
    statistics: ClassVar[tuple[str, ...]] = ("rise", "second_descent", "peak")
    params: ClassVar[tuple[str, ...]] = ("reading", *SERIES_KEYS)

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        reading = _reading(params.get("reading"), "reading")
        stats = [s for s in self.statistics if s in expect]
        return self._prepared(params, [reading], stats, {}, [f"the curve is the mean of {reading.describe()} over the evaluation samples at each checkpoint"])

    def functions(self, prepared: Prepared, curves: SeriesCurves) -> tuple[dict[str, str], dict[str, tuple[CurveFunction, str, dict[str, float]]]]:
        x = curves.positions
        return {"reading": "mean"}, {
            "rise": (lambda r: bump(_curve(r, "reading"), x)["rise"], "height of the bump: the peak minus the lowest value before it (the peak that rises most)", {"no bump": 0.0}),
            "second_descent": (lambda r: bump(_curve(r, "reading"), x)["second_descent"], "the lowest value before the peak minus the lowest value after it (> 0: falls below it again)", {"no second descent": 0.0}),
            "peak": (lambda r: bump(_curve(r, "reading"), x)["peak"], f"the {curves.axis} of the bump's peak", {}),
        }

    def conclude(self, prepared: Prepared, curves: SeriesCurves) -> CorpusMeasurement:
        return self.one_reading_conclusion(prepared, curves, "peak")


# -- logit PCA ----------------------------------------------------------------------------------------


class LogitPCA(_SeriesCheck):
    """``check: logit_pca``; keys ``probe`` (the fixed inputs), ``components``, ``min_share``, ``every``, ``steps``."""

    name: ClassVar[str] = "logit_pca"
    description: ClassVar[str] = (
        "over a checkpoint series: the per-token losses of fixed random-token inputs at every checkpoint, projected on their "
        "top principal components; kink_angle = the sharpest turn of that trajectory (degrees), kink_at = where, explained = variance share kept"
    )
    statistics: ClassVar[tuple[str, ...]] = ("kink_angle", "kink_contrast", "other_turns", "kink_at", "straightness", "explained")
    params: ClassVar[tuple[str, ...]] = ("probe", "components", "min_share", *SERIES_KEYS)
    units: ClassVar[dict[str, str]] = {"kink_angle": "degrees", "kink_contrast": "degrees", "other_turns": "degrees", "kink_at": "step", "straightness": "ratio", "explained": "share of variance"}
    DEFAULT_INPUTS: ClassVar[dict[str, Any]] = {"kind": "random_tokens", "seq_len": 32, "n": 64}

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        components = params.get("components", 3)
        if not isinstance(components, int) or isinstance(components, bool) or not 2 <= components <= 10:
            raise CheckError(f"components: how many principal components the trajectory keeps (2..10), got {components!r}")
        min_share = params.get("min_share", 0.02)
        if isinstance(min_share, bool) or not isinstance(min_share, (int, float)) or not 0 <= min_share < 0.5:
            raise CheckError(f"min_share: a turn counts where both steps around it are at least this share of the path (0..0.5), got {min_share!r}")
        inputs = params.get("probe", self.DEFAULT_INPUTS)
        if not isinstance(inputs, Mapping):
            raise CheckError(f"probe: the fixed inputs run through every checkpoint, an inputs mapping such as {self.DEFAULT_INPUTS}")
        reading = SeriesReading("losses", "loss", "token_losses", {}, dict(inputs))
        stats = [s for s in self.statistics if s in expect]
        notes = [
            f"trajectory: each checkpoint's per-token losses on {inputs} as one vector, projected on the top {components} principal "
            "components of the checkpoints (classical MDS of their Gram matrix); a turn counts where both steps around it are at least "
            f"{min_share:g} of the path's length"
        ]
        return self._prepared(params, [reading], stats, {"components": components, "min_share": float(min_share)}, notes)

    def functions(self, prepared: Prepared, curves: SeriesCurves) -> tuple[dict[str, str], dict[str, tuple[CurveFunction, str, dict[str, float]]]]:
        x, k, share = curves.positions, prepared.state["components"], prepared.state["min_share"]

        def turn(reduced: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            return sharpest_turn(pca_trajectory(reduced["losses"], k), x, min_share=share)

        def explained(reduced: Mapping[str, np.ndarray]) -> np.ndarray:
            g = np.asarray(reduced["losses"], dtype=float)
            s = g.shape[-1]
            centre = np.eye(s) - 1.0 / s
            eigenvalues = np.linalg.eigvalsh(centre @ g @ centre)[..., ::-1].clip(min=0.0)
            return eigenvalues[..., :k].sum(-1) / eigenvalues.sum(-1)

        return {"losses": "gram"}, {
            "kink_angle": (lambda r: turn(r)["angle"], f"largest turning angle (degrees) of the trajectory on the top {k} components", {"a straight path": 0.0}),
            "kink_contrast": (lambda r: turn(r)["contrast"], "the sharpest turn minus the median of the other turns (degrees)", {"turns all alike": 0.0}),
            "other_turns": (lambda r: turn(r)["median_other"], "the median turning angle (degrees) at the checkpoints other than the sharpest turn: small on a smooth path", {"independent random checkpoints (measured 112-134)": 112.0}),
            "kink_at": (lambda r: turn(r)["position"], f"the {curves.axis} of the checkpoint where the trajectory turns most", {}),
            "straightness": (lambda r: straightness(pca_trajectory(r["losses"], k)), f"distance from the first to the last checkpoint over the path's length, top {k} components", {f"independent random points (about 1/sqrt({len(x)}))": 1 / math.sqrt(len(x))}),
            "explained": (explained, f"share of the checkpoints' variance on the top {k} components", {}),
        }

    def conclude(self, prepared: Prepared, curves: SeriesCurves) -> CorpusMeasurement:
        measured = self.statistics_of(prepared, curves)
        stats, blocks, _ = measured
        k, share = prepared.state["components"], prepared.state["min_share"]
        contributions = next(block.contributions["losses"] for block in blocks if "losses" in block.contributions)
        gram = contributions.mean(axis=0).reshape(1, len(curves.positions), -1)  # the observed Gram matrix
        coords = pca_trajectory(gram, k)[0]
        turns = sharpest_turn(coords[None], curves.positions, min_share=share)
        angles = np.where(np.isfinite(turns["angles"][0]), turns["angles"][0], np.nan)
        trajectory = Figure(
            "line", f"logit-PCA trajectory ({curves.run})",
            rounded({
                "series": [{"label": f"{curves.axis} {curves.positions[0]:g} to {curves.positions[-1]:g}", "x": coords[:, 0], "y": coords[:, 1]}],
                "x_label": "PC1", "y_label": "PC2",
            }),
            "each point is a checkpoint's per-token losses projected on the top two principal components (classical MDS), in training order",
            self.name,
        )
        kink = self.located(measured, "kink_at")
        turning = _curve_figure(
            "turning angle", replace(curves, positions=curves.positions[1:-1]), [("angle (degrees)", angles)],
            ("sharpest turn", float(kink.observed()), kink), "degrees",
            f"the angle between the steps into and out of each checkpoint, top {k} components (turns with a step under {share:g} of the path left out)",
        )
        return CorpusMeasurement(stats, [trajectory, replace(turning, source=self.name)], list(curves.notes))


# -- coincide -----------------------------------------------------------------------------------------


class Coincide(_SeriesCheck):
    """``check: coincide``; keys ``first``, ``second`` (events), ``every``, ``steps``."""

    name: ClassVar[str] = "coincide"
    description: ClassVar[str] = (
        "two events located by other series checks (first:, second:: {check, statistic, ...its keys}) on the same series: "
        "gap = |second - first|, lead = second - first (> 0: first comes first), resampled together"
    )
    statistics: ClassVar[tuple[str, ...]] = ("gap", "lead")
    params: ClassVar[tuple[str, ...]] = ("first", "second", *SERIES_KEYS)
    units: ClassVar[dict[str, str]] = {"gap": "step", "lead": "step"}

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        events, readings, notes = {}, [], []
        for key in ("first", "second"):
            raw = params.get(key)
            if not isinstance(raw, Mapping) or not isinstance(raw.get("check"), str) or not isinstance(raw.get("statistic"), str):
                raise CheckError(f"{key}: an event, e.g. {{check: phase_change, statistic: midpoint, reading: {{...}}}}")
            check = get_check(raw["check"])
            if not getattr(check, "reads_series", False) or check.name == self.name:
                raise CheckError(f"{key}: check {raw['check']} does not locate events on a series (use grokking, phase_change, double_descent or logit_pca)")
            sub_params = {k: v for k, v in raw.items() if k not in ("check", "statistic")}
            _unknown(sub_params, tuple(p for p in check.params if p not in SERIES_KEYS), check.name)
            try:
                inner = check.prepare(sub_params, shapes, {raw["statistic"]: None})
            except CheckError as error:
                raise CheckError(f"{key}: {error}") from None
            if raw["statistic"] not in inner.statistics:
                raise CheckError(f"{key}: check {check.name} has no statistic {raw['statistic']!r}; it has {', '.join(check.statistics)}")
            events[key] = (check, inner, raw["statistic"])
            readings += [replace(r, name=f"{key}.{r.name}") for r in inner.readings]
            notes.append(f"{key}: {raw['statistic']} of {check.name} ({'; '.join(inner.notes)})")
        stats = [s for s in self.statistics if s in expect]
        return self._prepared(params, readings, stats, {"events": events}, notes)

    @staticmethod
    def _own_curves(curves: SeriesCurves, key: str) -> SeriesCurves:
        """One event's readings, under the names its own check gave them (without ``first.``)."""
        prefix = f"{key}."
        return replace(
            curves,
            values={n[len(prefix):]: v for n, v in curves.values.items() if n.startswith(prefix)},
            sample_keys={n[len(prefix):]: v for n, v in curves.sample_keys.items() if n.startswith(prefix)},
        )

    def _event(self, prepared: Prepared, key: str, curves: SeriesCurves) -> tuple[dict[str, str], CurveFunction]:
        check, inner, statistic = prepared.state["events"][key]
        prefix = f"{key}."
        reductions, functions = check.functions(inner, self._own_curves(curves, key))
        function = functions[statistic][0]
        return {prefix + n: how for n, how in reductions.items()}, lambda r: function({n[len(prefix):]: v for n, v in r.items() if n.startswith(prefix)})

    def functions(self, prepared: Prepared, curves: SeriesCurves) -> tuple[dict[str, str], dict[str, tuple[CurveFunction, str, dict[str, float]]]]:
        first_reductions, first = self._event(prepared, "first", curves)
        second_reductions, second = self._event(prepared, "second", curves)
        names = {key: f"{prepared.state['events'][key][2]} of {prepared.state['events'][key][0].name}" for key in ("first", "second")}
        return {**first_reductions, **second_reductions}, {
            "gap": (lambda r: np.abs(second(r) - first(r)), f"|{names['second']} - {names['first']}|", {"the events coincide": 0.0}),
            "lead": (lambda r: second(r) - first(r), f"{names['second']} minus {names['first']}", {"the events coincide": 0.0}),
        }

    def conclude(self, prepared: Prepared, curves: SeriesCurves) -> CorpusMeasurement:
        stats, _, _ = self.statistics_of(prepared, curves)
        figures = []
        for key in ("first", "second"):
            check, inner, _ = prepared.state["events"][key]
            for figure in check.conclude(inner, self._own_curves(curves, key)).figures:
                figures.append(replace(figure, title=f"{key} event: {figure.title}", source=self.name))
        return CorpusMeasurement(stats, figures, list(curves.notes))


for _check in (Grokking(), PhaseChange(), DoubleDescent(), LogitPCA(), Coincide()):
    register(_check)
