"""Readings of a toy model of superposition (``models.toy``: x' = ReLU(W^T W x + b)), for the
double-descent series over dataset size (Henighan et al. 2023; ``zoo.superposition``).

``check: superposition`` is meant as the per-checkpoint **reading** of a series claim: the series
path evaluates it at every checkpoint and judges a statistic of the curve with a bootstrap over the
evaluation samples. ``Prepared.sampling`` is ``"weights"`` (no input runs through the engine's
forward pass; it asks for ``W`` and ``b``), and ``measure`` returns per statistic either a 1-D
array of per-sample values (the samples a bootstrap resamples) or one deterministic value:

* ``test_loss``, per fresh test point: sum over features of (x'_j - x_j)^2 (every feature's
  importance 1; predicting zero costs exactly 1 for a unit-norm point), on ``test_points`` points
  of ``inputs.sparse_features.fresh_points`` seeded by ``seed``;
* ``datapoint_dimensionality``, per training point: D_i = ||h_i||^2 / sum_j (h_i_hat . h_j)^2 with
  h_i = W x_i over the model's training set, regenerated from ``dataset_size`` and ``data_seed``
  (``training_points``; a series checkpoint's config.json "meta" records both, see
  :func:`params_from_meta`);
* ``weight_norm``: the Frobenius norm of W;
* ``feature_dimensionality``: the mean over features of D_j = ||W_j||^2 / sum_k (W_j_hat . W_k)^2
  (W_j the feature's column of W);
* ``max_feature_dimensionality``: the largest D_j (2/5 when five features form a pentagon);
* ``features_stored``: how many features have ||W_j|| > ``STORED_NORM``.

What marks the change of regime at d_hidden = 2 (measured on the committed sweep,
``fixtures/series/tms-dd-s*/README.md``): the weight norm, ``features_stored`` and
``max_feature_dimensionality``, not the two means. The dimensionalities of a set of vectors sum to
m = d_hidden when they form a tight frame (sum_i v_i v_i^T proportional to the identity), and trained
toys are close to one in every regime, so the mean feature dimensionality stays near m / n and the
mean data-point dimensionality near m / T (measured: sums 1.94-2.00 at every T and seed).
``max_feature_dimensionality`` was added after seeing that: a claim on it should be judged on
seeds other than the three it was chosen on.

A dimensionality is written as ||v_i||^4 / sum_j (v_i . v_j)^2, so a zero vector gets 0, the limit
as it shrinks, rather than 0/0 (a feature the model ignores claims no dimension). Both
dimensionalities sum to at most d_hidden over their vectors.

A standalone claim (not a series reading) is accepted, but the engine's weight path judges a weight
statistic as z against the random-weights draws (``stats.evaluate_against_draws``: ``weight_norm:
">= 5"`` means z >= 5, not a norm of 5) and has no bootstrap over per-sample arrays (a standalone
``test_loss`` claim is judged on a z of all its points at once, which means little): use the check
through a series claim. Its null is a random-weights toy of the same shape (``models.toy.random_toy``, the
training recipe's init): ``measure_null`` returns the claim's first statistic on those weights.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar, Mapping

import numpy as np
from jaxtyping import Float

from interp_checks.checks.base import MODEL, Activations, CheckError, ModelShape, Needs, Prepared, register
from interp_checks.checks.neurons import positive_int
from interp_checks.inputs.sparse_features import DEFAULT_SPARSITY, fresh_points, training_points

WEIGHTS = frozenset({"W", "b"})
PER_SAMPLE = ("test_loss", "datapoint_dimensionality")  # 1-D arrays of evaluation samples
SINGLE = ("weight_norm", "feature_dimensionality", "max_feature_dimensionality", "features_stored")  # deterministic functions of W
STORED_NORM = 0.5  # a feature counts as stored when its column of W is longer than this
MAX_TEST_POINTS = 1_000_000
NULL_DRAWS = 20
UNITS = {
    "test_loss": "squared error summed over features, per test point",
    "datapoint_dimensionality": "dimensions per training point",
    "weight_norm": "Frobenius norm of W",
    "feature_dimensionality": "dimensions per feature (mean over features)",
    "max_feature_dimensionality": "dimensions of the feature with the most",
    "features_stored": f"features with ||W_j|| > {STORED_NORM}",
}


def dimensionalities(vectors: Float[np.ndarray, "count d"]) -> Float[np.ndarray, " count"]:
    """D_i = ||v_i||^2 / sum_j (v_i_hat . v_j)^2 = ||v_i||^4 / sum_j (v_i . v_j)^2 for every row,
    0 for a zero row (the limit). The one routine for features (rows of W^T) and data points (W x_i)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    gram = vectors @ vectors.T
    squared_norms = np.diag(gram)
    overlap = (gram**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(squared_norms > 0, squared_norms**2 / np.where(overlap > 0, overlap, 1.0), 0.0)


def toy_outputs(W: Float[np.ndarray, "m n"], b: Float[np.ndarray, " n"], x: Float[np.ndarray, "points n"]) -> Float[np.ndarray, "points n"]:
    """x' = ReLU(W^T W x + b) for each row x, in float64 (``models.toy.ToySuperposition.forward``)."""
    return np.maximum((x @ W.T) @ W + b, 0.0)


@lru_cache(maxsize=2)
def _test_set(n_features: int, sparsity: float, count: int, seed: int) -> np.ndarray:
    """Fresh test points, generated once for every checkpoint of a series (the same n and seed)."""
    points = fresh_points(n_features, sparsity, count, seed).astype(np.float64)
    points.flags.writeable = False
    return points


def params_from_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The params a toy checkpoint's config.json "meta" (``zoo.superposition``) fixes: its training
    set's ``dataset_size`` and ``data_seed`` and the ``sparsity`` it was drawn with."""
    found = {"dataset_size": meta.get("dataset_size"), "data_seed": meta.get("data_seed"),
             "sparsity": (meta.get("recipe") or {}).get("sparsity")}
    return {key: value for key, value in found.items() if value is not None}


class SuperpositionCheck:
    """Test loss, weight norm and feature / data-point dimensionality of a toy of superposition."""

    name: ClassVar[str] = "superposition"
    description: ClassVar[str] = (
        "toy model of superposition (W, b): test loss per fresh point, data-point dimensionality per training point, "
        "weight norm, feature dimensionality (mean and max), features stored; a per-checkpoint reading of series claims"
    )
    statistics: ClassVar[tuple[str, ...]] = PER_SAMPLE + SINGLE
    params: ClassVar[tuple[str, ...]] = ("sparsity", "test_points", "seed", "dataset_size", "data_seed")
    model_roles: ClassVar[tuple[str, ...]] = ()
    # No input runs through the engine's forward pass; the engine still wants an input spec to group claims by.
    default_inputs: ClassVar[Mapping[str, Any]] = {"kind": "random_tokens", "seq_len": 2, "n": 1}

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        """Validate the params; the statistics are those of ``expect`` (all that can be computed if none)."""
        shape = shapes[MODEL]
        if shape.n_layers or shape.n_heads:
            raise CheckError(
                f"check superposition reads a toy model of superposition (a native checkpoint whose config.json "
                f"\"architecture\" is {{\"family\": \"toy_superposition\", ...}}), not a transformer with "
                f"{shape.n_layers} layers and {shape.n_heads} heads"
            )
        sparsity = params.get("sparsity", DEFAULT_SPARSITY)
        if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
            raise CheckError(f"sparsity must be a number in [0, 1) (the probability that a feature is off), got {sparsity!r}")
        state = {
            "sparsity": float(sparsity),
            "test_points": positive_int(params, "test_points", 4_096, MAX_TEST_POINTS),
            "seed": self._seed(params, "seed", 0),
        }
        has_training_set = params.get("dataset_size") is not None or params.get("data_seed") is not None
        if has_training_set:
            if params.get("dataset_size") is None or params.get("data_seed") is None:
                raise CheckError("give both dataset_size (T) and data_seed: together they regenerate the model's training set")
            state["dataset_size"] = positive_int(params, "dataset_size", 1, MAX_TEST_POINTS)
            state["data_seed"] = self._seed(params, "data_seed", 0)
        wanted = list(expect) or [stat for stat in self.statistics if has_training_set or stat != "datapoint_dimensionality"]
        unknown = [stat for stat in wanted if stat not in self.statistics]
        if unknown:
            raise CheckError(f"superposition has no statistic {', '.join(unknown)}; its statistics are {', '.join(self.statistics)}")
        if "datapoint_dimensionality" in wanted and not has_training_set:
            raise CheckError(
                "datapoint_dimensionality needs the model's training set: give dataset_size (T) and data_seed, as the "
                "checkpoint's config.json \"meta\" records them (zoo.superposition writes both)"
            )
        notes = [
            "a reading of a toy model of superposition, meant for series claims (the series path bootstraps the "
            "per-sample statistics: test_loss per fresh test point, datapoint_dimensionality per training point)",
            f"test points: {state['test_points']} fresh points, seed {state['seed']}, sparsity {state['sparsity']}",
        ]
        return Prepared(
            needs={MODEL: Needs(frozenset(), weights=WEIGHTS)},
            null_needs=Needs(frozenset(), weights=WEIGHTS),
            statistics=wanted,
            expectation_source={stat: stat for stat in wanted},
            state=state,
            notes=notes,
            units={stat: UNITS[stat] for stat in wanted},
            sampling="weights",
            weight_null_draws=NULL_DRAWS,
        )

    @staticmethod
    def _seed(params: Mapping[str, Any], key: str, default: int) -> int:
        value = params.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckError(f"{key} must be a non-negative integer, got {value!r}")
        return value

    def measure(self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, Any]) -> dict[str, Any]:
        """Each statistic of ``prepared``: a 1-D array per evaluation sample, or one value."""
        return self._statistics(prepared, activations[MODEL], prepared.statistics)

    def measure_null(self, prepared: Prepared, activations: Activations, batch: Any) -> np.ndarray:
        """The claim's first statistic on one random-weights toy of the same shape."""
        stat = prepared.statistics[0]
        return np.atleast_1d(np.asarray(self._statistics(prepared, activations, [stat])[stat], dtype=float))

    def null_description(self, prepared: Prepared) -> str:
        return (
            f"{prepared.statistics[0]} of {prepared.weight_null_draws} random-weights toys of the same shape "
            "(W Xavier-normal, b zero: the training recipe's initialisation)"
        )

    @staticmethod
    def _statistics(prepared: Prepared, weights: Activations, wanted: list[str]) -> dict[str, Any]:
        W = weights["W"].detach().double().cpu().numpy()
        b = weights["b"].detach().double().cpu().numpy()
        state = prepared.state
        n_features = W.shape[1]
        out: dict[str, Any] = {}
        if "test_loss" in wanted:
            x = _test_set(n_features, state["sparsity"], state["test_points"], state["seed"])
            out["test_loss"] = ((toy_outputs(W, b, x) - x) ** 2).sum(axis=1)
        if "datapoint_dimensionality" in wanted:
            x = training_points(n_features, state["sparsity"], state["dataset_size"], state["data_seed"]).astype(np.float64)
            out["datapoint_dimensionality"] = dimensionalities(x @ W.T)
        if "weight_norm" in wanted:
            out["weight_norm"] = float(np.linalg.norm(W))
        if "feature_dimensionality" in wanted or "max_feature_dimensionality" in wanted:
            per_feature = dimensionalities(W.T)
            out.update(feature_dimensionality=float(per_feature.mean()), max_feature_dimensionality=float(per_feature.max()))
        if "features_stored" in wanted:
            out["features_stored"] = float((np.linalg.norm(W, axis=0) > STORED_NORM).sum())
        return {stat: out[stat] for stat in wanted}


register(SuperpositionCheck())
