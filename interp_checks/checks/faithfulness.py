"""Faithfulness of a named circuit: how much of the model's behaviour do the circuit's components
alone recover when everything else is ablated?

Definition (the MIB benchmark's): with m a metric read over the tokens ``where:`` selects,

    f(C) = (m(C) - m(empty)) / (m(model) - m(empty))

where m(C) is the metric with every component *outside* C ablated, m(empty) with every component
ablated, m(model) with none. f = 1: the circuit does all the model does (over the empty circuit);
f = 0: no more than nothing. Each of "ablate everything outside C" and "ablate everything" is one
``Intervention`` with many sites, run by the engine.

Per sequence, m is the mean over the selected tokens of the metric: ``logprob`` (default; the
log-prob of the clean next token) or ``logit_diff`` (clean next token minus the corrupted input's,
with paired inputs). The statistic is the **ratio of the mean numerator to the mean denominator**
over sequences, not the mean of per-sequence ratios, which explodes where the model is barely
better than the empty circuit on a sequence (see ``stats.ratios``: paired BCa bootstrap over
sequences, Fieller's test; undefined, hence never judged, where the model's metric does not
reliably differ from the empty circuit's, e.g. on a random-weights model).

The answer depends on the ablation value, the granularity and the positions (Miller et al. 2024),
so they are part of the claim (``ablation:`` is required) and printed as the unit of every number.

Claim keys: ``circuit`` (heads ``L1H2``, MLPs ``L0.mlp``), ``ablation`` (mean | zero | resample),
``granularity`` (heads: only heads are ablated, the default; heads+mlps: MLPs too), ``positions``
(all, the default, or a list of positions where the ablation applies), ``where``, ``metric``,
``random_circuits`` (default 100), ``random_seed`` (default 0: which random circuits, and the
``resample`` derangement), ``ranking`` (components in order of importance, for the curve).

Statistics:

* ``faithfulness``: f(C);
* ``drop_without``: for each component c of C, f(C) - f(C without c), one expectation per
  component ("every component is needed": all must hold);
* ``beats_random``: the share of random circuits of the same size (drawn without replacement from
  the model's components, seeded by ``random_seed``; all of them when there are no more than
  ``random_circuits``) whose f the circuit's exceeds; exact binomial test, permutation p in the note;
* ``cpr`` and ``cmd``: MIB's areas of the faithfulness curve f(top-k of the ranking), k = 0..K, at
  x = k/K: CPR the area under f (higher is better), CMD the area of |1 - f| (0 is best).

No random-weights null is run: f is already normalised against the empty circuit (f = 0), and a
random circuit of the same size is the null of ``beats_random``.

Pictures (``figures``, on the first chunk): f of the circuit beside f without each component and
the random circuits' median and maximum (bars); with a ranking, the faithfulness curve against the
5-95% band of random circuits of each size (line).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Iterable, Mapping

import numpy as np
from jaxtyping import Float

from interp_checks.checks.base import MODEL, Activations, CheckError, ModelShape, Needs, Prepared, parse_component, register
from interp_checks.checks.compare import mean_over
from interp_checks.figures import Figure, rounded
from interp_checks.inputs.generators import InputBatch
from interp_checks.inputs.token_sets import TokenSetError, parse_where, select
from interp_checks.interventions import METRICS, Intervention, Site, clean_key
from interp_checks.stats.ratios import curve_areas, ratio_of_means

__all__ = ["FaithfulnessCheck", "parse_circuit_component", "random_circuits"]

ABLATIONS = ("mean", "zero", "resample")
GRANULARITIES = ("heads", "heads+mlps")
MIN_RANDOM_CIRCUITS = 100
CURVE_RANDOM_PER_SIZE = 10  # random circuits per size for the curve's band (a picture, not a test)
Circuit = frozenset[Site]


def parse_circuit_component(text: Any, shape: ModelShape) -> Site:
    """``L1H2`` (a head's output) or ``L0.mlp`` (an MLP's output), checked against the model."""
    return parse_component(text, shape, ("head", "mlp"), "circuit component")


def all_components(shape: ModelShape, granularity: str) -> list[Site]:
    """Every component the claim's granularity ablates, in model order."""
    heads = [Site("head", layer, head) for layer in range(shape.n_layers) for head in range(shape.n_heads)]
    mlps = [Site("mlp", layer) for layer in range(shape.n_layers)] if granularity == "heads+mlps" else []
    return heads + mlps


def random_circuits(pool: list[Site], size: int, count: int, exclude: Circuit, seed: int) -> tuple[list[Circuit], bool]:
    """(``count`` distinct circuits of ``size`` components from ``pool``, none equal to ``exclude``;
    whether that is every such circuit). Seeded; all of them when there are no more than ``count``."""
    total = math.comb(len(pool), size) - (1 if len(exclude) == size else 0)
    if total <= count:
        from itertools import combinations

        every = [frozenset(c) for c in combinations(pool, size)]
        return [c for c in every if c != exclude], True
    rng = np.random.default_rng(seed)
    chosen: dict[Circuit, None] = {}
    while len(chosen) < count:
        circuit = frozenset(pool[i] for i in rng.choice(len(pool), size=size, replace=False))
        if circuit != exclude:
            chosen[circuit] = None
    return list(chosen), False


def _names(circuit: Iterable[Site]) -> str:
    return "{" + ", ".join(site.name for site in sorted(circuit)) + "}"


class FaithfulnessCheck:
    """``check: faithfulness``: see the module docstring."""

    name: ClassVar[str] = "faithfulness"
    description: ClassVar[str] = "share of the model's gain over the empty circuit that a circuit recovers when all else is ablated (MIB's f)"
    statistics: ClassVar[tuple[str, ...]] = ("faithfulness", "drop_without", "beats_random", "cpr", "cmd")
    params: ClassVar[tuple[str, ...]] = ("circuit", "ablation", "granularity", "positions", "where", "metric", "random_circuits", "random_seed", "ranking")
    model_roles: ClassVar[tuple[str, ...]] = ()
    # Repeated random tokens, read on the repeat: the behaviour an induction circuit is for.
    default_inputs: ClassVar[Mapping[str, Any]] = {"kind": "repeated_random_tokens", "seq_len": 32, "n": 64}

    # -- preparing -------------------------------------------------------------------------------

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        settings = self._settings(params, shape)
        circuit: list[Site] = settings["circuit"]
        pool = all_components(shape, settings["granularity"])
        outside = [site for site in circuit if site not in pool]
        if outside:
            raise CheckError(f"{outside[0].name} is an MLP: ablating MLPs needs granularity: heads+mlps")
        ranking = settings["ranking"] or (circuit if {"cpr", "cmd"} & set(expect) else None)
        runs: dict[str, Circuit] = {"empty": frozenset(), "circuit": frozenset(circuit)}
        statistics, source, estimators = [], {}, {}
        if "faithfulness" in expect:
            statistics.append("faithfulness")
        if "drop_without" in expect:
            if len(circuit) < 2:
                raise CheckError("drop_without needs a circuit of at least 2 components (without its only one it is empty: f = 0)")
            for site in circuit:
                stat = f"drop_without[{site.name}]"
                statistics.append(stat)
                source[stat] = "drop_without"
                runs[f"without {site.name}"] = frozenset(circuit) - {site}
        randoms: list[Circuit] = []
        exhaustive = False
        if "beats_random" in expect:
            randoms, exhaustive = random_circuits(pool, len(circuit), settings["random_circuits"], frozenset(circuit), settings["seed"])
            statistics.append("beats_random")
            for i, random_circuit in enumerate(randoms):
                runs[f"random {i}"] = random_circuit
        band: dict[int, list[Circuit]] = {}
        if ranking is not None:
            for k in range(1, len(ranking) + 1):
                runs[f"top {k}"] = frozenset(ranking[:k])
                band[k] = random_circuits(pool, k, CURVE_RANDOM_PER_SIZE, frozenset(), settings["seed"] + k)[0]
                for i, random_circuit in enumerate(band[k]):
                    runs[f"band {k} {i}"] = random_circuit
            statistics += [stat for stat in ("cpr", "cmd") if stat in expect]
        for stat in statistics:
            source.setdefault(stat, stat)
            estimators[stat] = {"beats_random": "share_beaten_of_ratios", "cpr": "curve_area", "cmd": "curve_gap_area"}.get(source[stat], "ratio_of_means")
        interventions = {label: self._ablation(pool, kept, settings) for label, kept in runs.items()}
        setting = self._describe(settings)
        notes = [
            f"setting of every number: {setting}",
            "f = (m(C) - m(empty)) / (m(model) - m(empty)) as a ratio of means over sequences (stats.ratios)",
        ]
        if randoms:
            how = "every other circuit" if exhaustive else f"{len(randoms)} distinct random circuits"
            notes.append(f"beats_random: {how} of {len(circuit)} of the model's {len(pool)} components (seed {settings['seed']})")
        if ranking is not None:
            notes.append(f"curve over the top-k of the ranking {[site.name for site in ranking]}, k = 0..{len(ranking)}, x = k/{len(ranking)}")
        units = {stat: self._unit(source[stat], setting) for stat in statistics}
        return Prepared(
            needs={MODEL: Needs(frozenset(), interventions=tuple(i for i in interventions.values() if i is not None))},
            null_needs=None,
            statistics=statistics,
            expectation_source=source,
            state={"interventions": interventions, "where": settings["where"], "metric": settings["metric"],
                   "circuit": circuit, "ranking": ranking, "randoms": len(randoms), "band": {k: len(v) for k, v in band.items()},
                   "setting": setting},
            notes=notes,
            units=units,
            estimators=estimators,
        )

    @staticmethod
    def _settings(params: Mapping[str, Any], shape: ModelShape) -> dict[str, Any]:
        """The claim's keys, validated (raises CheckError saying what to write instead)."""
        raw = params.get("circuit")
        if not isinstance(raw, list) or not raw:
            raise CheckError("faithfulness needs circuit: a non-empty list of components, e.g. [L0H1, L1H2]")
        circuit = [parse_circuit_component(item, shape) for item in raw]
        if len(set(circuit)) != len(circuit):
            raise CheckError(f"circuit lists a component twice: {raw}")
        ablation = params.get("ablation")
        if ablation not in ABLATIONS:
            raise CheckError(
                f"faithfulness needs ablation: one of {', '.join(ABLATIONS)} (the answer depends on it, so the claim names it); got {ablation!r}"
            )
        granularity = params.get("granularity", "heads")
        if granularity not in GRANULARITIES:
            raise CheckError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
        positions = params.get("positions", "all")
        if positions != "all" and (
            not isinstance(positions, list) or not positions
            or not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p < shape.n_ctx for p in positions)
        ):
            raise CheckError(f"positions must be 'all' or a list of positions in 0..{shape.n_ctx - 1}, got {positions!r}")
        metric = params.get("metric", "logprob")
        if metric not in METRICS:
            raise CheckError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        count = params.get("random_circuits", MIN_RANDOM_CIRCUITS)
        if not isinstance(count, int) or isinstance(count, bool) or count < MIN_RANDOM_CIRCUITS:
            raise CheckError(f"random_circuits must be an integer >= {MIN_RANDOM_CIRCUITS}, got {count!r}")
        ranking = params.get("ranking")
        if ranking is not None:
            if not isinstance(ranking, list) or not ranking:
                raise CheckError("ranking must be a non-empty list of components, most important first")
            ranking = [parse_circuit_component(item, shape) for item in ranking]
            if len(set(ranking)) != len(ranking):
                raise CheckError("ranking lists a component twice")
        seed = params.get("random_seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise CheckError(f"random_seed must be a non-negative integer, got {seed!r}")
        try:
            where = parse_where(params.get("where"))
        except TokenSetError as error:
            raise CheckError(str(error)) from None
        return {
            "circuit": circuit, "ablation": ablation, "granularity": granularity, "metric": metric, "where": where,
            "positions": None if positions == "all" else tuple(sorted(set(positions))), "random_circuits": count,
            "ranking": ranking, "seed": seed,
        }

    @staticmethod
    def _ablation(pool: list[Site], kept: Circuit, settings: Mapping[str, Any]) -> Intervention | None:
        """One run: every component of ``pool`` outside ``kept`` ablated together (None: nothing is)."""
        sites = tuple(Site(s.kind, s.layer, s.head, settings["positions"]) for s in pool if s not in kept)
        if not sites:
            return None
        return Intervention(sites, settings["ablation"], metric=settings["metric"], seed=settings["seed"])

    @staticmethod
    def _describe(settings: Mapping[str, Any]) -> str:
        value = {
            "mean": "its per-position mean over the claim's inputs",
            "zero": "zero",
            "resample": "its value on another input sequence (seeded derangement)",
        }[settings["ablation"]]
        positions = "all positions" if settings["positions"] is None else f"positions {list(settings['positions'])}"
        metric = "log-prob of the clean next token" if settings["metric"] == "logprob" else "logit difference, clean minus corrupted next token"
        return (
            f"ablation {settings['ablation']} (each ablated component's output replaced by {value}), granularity "
            f"{settings['granularity']}, at {positions}; metric: mean {metric} over {settings['where'].describe()}"
        )

    @staticmethod
    def _unit(statistic: str, setting: str) -> str:
        short = setting.split(";")[0].split(" (")[0] + ", " + setting.split(", at ")[1].split(";")[0]
        return {
            "faithfulness": f"f, share of the model's gain over the empty circuit ({short})",
            "drop_without": f"drop in f ({short})",
            "beats_random": f"share of random circuits of the same size beaten ({short})",
            "cpr": f"area under f over circuit sizes ({short})",
            "cmd": f"area of |1 - f| over circuit sizes ({short})",
        }[statistic]

    # -- measuring -------------------------------------------------------------------------------

    def _metric_per_sequence(self, prepared: Prepared, readings: Activations, batch: InputBatch) -> dict[str, Float[np.ndarray, "n"]]:
        """{run label: the per-sequence mean of the metric over the selected tokens}, "model" for the
        unchanged model. Tokens where the metric is undefined (a logit difference between equal
        tokens) are left out of every run alike."""
        try:
            selected = select(prepared.state["where"], batch)
        except TokenSetError as error:
            raise ValueError(str(error)) from None
        clean = np.asarray(readings[clean_key(prepared.state["metric"])], dtype=float)
        selected = selected & np.isfinite(clean)
        out = {"model": mean_over(clean, selected)}
        for label, intervention in prepared.state["interventions"].items():
            values = clean if intervention is None else np.asarray(readings[intervention.key], dtype=float)
            out[label] = mean_over(values, selected)
        return out

    def measure(self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]) -> dict[str, np.ndarray]:
        m = self._metric_per_sequence(prepared, activations[MODEL], batches[MODEL])
        den = m["model"] - m["empty"]
        out: dict[str, np.ndarray] = {}
        for stat in prepared.statistics:
            if stat == "faithfulness":
                out[stat] = np.stack([m["circuit"] - m["empty"], den], axis=1)
            elif stat.startswith("drop_without["):
                name = stat[len("drop_without[") : -1]
                out[stat] = np.stack([m["circuit"] - m[f"without {name}"], den], axis=1)
            elif stat == "beats_random":
                randoms = [m[f"random {i}"] - m["empty"] for i in range(prepared.state["randoms"])]
                out[stat] = np.stack([den, m["circuit"] - m["empty"], *randoms], axis=1)
            elif stat in ("cpr", "cmd"):
                curve = [np.zeros_like(den)] + [m[f"top {k}"] - m["empty"] for k in range(1, len(prepared.state["ranking"]) + 1)]
                out[stat] = np.stack([den, *curve], axis=1)
        return out

    def figures(self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]) -> list[Figure]:
        """On the first chunk: f of the circuit beside the circuit without each component and the
        random circuits (bars); with a ranking, the faithfulness curve against random circuits (line)."""
        m = self._metric_per_sequence(prepared, activations[MODEL], batches[MODEL])
        defined = np.isfinite(m["model"]) & np.isfinite(m["empty"])
        den = (m["model"] - m["empty"])[defined]

        def f(label: str) -> float:
            return float(ratio_of_means((m[label] - m["empty"])[defined], den))

        figures = [self._bars(prepared, f, int(defined.sum()))]
        if prepared.state["ranking"] is not None:
            figures.append(self._curve(prepared, f, int(defined.sum())))
        return figures

    @staticmethod
    def _bars(prepared: Prepared, f: Any, n: int) -> Figure:
        circuit = prepared.state["circuit"]
        labels, values = ["circuit"], [f("circuit")]
        for site in circuit:
            if f"without {site.name}" in prepared.state["interventions"]:
                labels.append(f"without {site.name}")
                values.append(f(f"without {site.name}"))
        randoms = [f(f"random {i}") for i in range(prepared.state["randoms"])]
        if randoms:
            labels += ["random circuits: median", "random circuits: max"]
            values += [float(np.median(randoms)), float(np.max(randoms))]
        data = {
            "labels": labels, "values": rounded(values), "highlight": ["circuit"], "value_label": "faithfulness f",
            "lines": [{"value": 1.0, "label": "the model"}, {"value": 0.0, "label": "the empty circuit"}],
        }
        caption = (
            f"f (ratio of means over the first {n} sequences of the inputs) of the circuit {_names(circuit)}"
            + (", of the circuit without each component" if len(labels) > 1 and labels[1].startswith("without") else "")
            + (f", and the median and largest f of {len(randoms)} random circuits of the same size" if randoms else "")
            + f". Setting: {prepared.state['setting']}."
        )
        return Figure("bars", "Faithfulness of the circuit", data, caption)

    @staticmethod
    def _curve(prepared: Prepared, f: Any, n: int) -> Figure:
        ranking = prepared.state["ranking"]

        sizes = list(range(len(ranking) + 1))
        curve = [0.0] + [f(f"top {k}") for k in sizes[1:]]
        band = [[0.0]] + [[f(f"band {k} {i}") for i in range(prepared.state["band"][k])] for k in sizes[1:]]
        cpr, cmd = (float(v) for v in curve_areas(np.asarray(curve)))
        data = {
            "series": [
                {"label": "top-k of the ranking", "x": sizes, "y": rounded(curve)},
                {
                    "label": f"random circuits of size k (median, 5-95% band of {CURVE_RANDOM_PER_SIZE} per size)",
                    "x": sizes,
                    "y": rounded([float(np.median(v)) for v in band]),
                    "low": rounded([float(np.percentile(v, 5)) for v in band]),
                    "high": rounded([float(np.percentile(v, 95)) for v in band]),
                },
            ],
            "x_label": "circuit size k (components kept)",
            "y_label": "faithfulness f",
            "lines": [{"value": 1.0, "label": "f = 1 (the model)"}, {"value": 0.0, "label": "f = 0 (the empty circuit)"}],
        }
        caption = (
            f"f of the top-k components of the ranking {[s.name for s in ranking]} on the first {n} sequences "
            f"of the inputs (ratio of means), against random circuits of the same size; CPR {cpr:.3f}, CMD {cmd:.3f} on these "
            f"sequences. Setting: {prepared.state['setting']}."
        )
        return Figure("line", "Faithfulness curve over circuit sizes", data, caption)

    def measure_null(self, prepared: Prepared, activations: Activations, batch: InputBatch) -> np.ndarray:
        raise NotImplementedError("faithfulness needs no random-weights null (f is normalised against the empty circuit)")

    def null_description(self, prepared: Prepared) -> str:
        return "the empty circuit (f = 0 by definition); for beats_random, random circuits of the same size"


register(FaithfulnessCheck())
