"""Progress measures for modular addition (Nanda et al. 2023), statistics of the weights alone.

A model that groks modular addition learns a Fourier algorithm: its embedding of ``a`` becomes a
few sines and cosines of ``2 pi k a / p`` (a handful of key frequencies k). Two weight statistics
track that circuit forming, and are what a series claim reads at every checkpoint ("the circuit
forms before the test loss falls": a ``coincide`` of this reading's rise and the test loss's fall):

* ``fourier_gini``: the Gini coefficient of the norms of the embedding's Fourier components (rows
  0..p-1 of W_E projected on the real Fourier basis of Z_p, one norm per frequency k = 1..(p-1)/2,
  cosine and sine together). 0 when every frequency carries the same weight; near 1 when a few do.
* ``weight_norm``: the L2 norm of every parameter (the quantity weight decay shrinks; in Nanda et
  al. it falls through the circuit-formation and cleanup phases).

Not built here: Nanda et al.'s restricted and excluded losses, which need the key frequencies of
the *final* model; a per-checkpoint reading does not know them (the issue's note says so).

Null (a standalone claim on one checkpoint): the same statistic on random-weights twins of the same
shapes (``weight_null_draws``), judged as a z-score against them (``stats.evaluate_against_draws``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np

from interp_checks.checks.base import MODEL, CheckError, ModelShape, Needs, Prepared, register

__all__ = ["ModularProgress", "fourier_basis", "gini"]

PARAMETERS = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O", "W_in", "b_in", "W_out", "b_out", "W_U", "b_U")


def fourier_basis(p: int) -> np.ndarray:
    """[p, p] orthonormal real Fourier basis of Z_p: row 0 constant, then cos and sin of each frequency."""
    x = np.arange(p)
    rows = [np.ones(p)]
    for k in range(1, (p - 1) // 2 + 1):
        rows += [np.cos(2 * np.pi * k * x / p), np.sin(2 * np.pi * k * x / p)]
    basis = np.stack(rows)
    return basis / np.linalg.norm(basis, axis=1, keepdims=True)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0: all equal; (n - 1) / n: one carries everything)."""
    v = np.sort(np.asarray(values, dtype=float))
    n = v.size
    if n == 0 or v.sum() == 0:
        return float("nan")
    return float((2 * np.arange(1, n + 1) - n - 1) @ v / (n * v.sum()))


def frequency_norms(embedding: np.ndarray, p: int) -> np.ndarray:
    """The norm of the embedding's component on each frequency k = 1..(p-1)/2 (cos and sin together)."""
    coefficients = fourier_basis(p) @ embedding[:p]  # [p, d_model]
    squared = (coefficients[1:] ** 2).sum(axis=1)
    return np.sqrt(squared[0::2] + squared[1::2])


class ModularProgress:
    """``check: modular_progress``; key ``p``."""

    name: ClassVar[str] = "modular_progress"
    description: ClassVar[str] = (
        "weights only: the Gini coefficient of the embedding's Fourier-component norms (fourier_gini) and the total weight norm "
        "(weight_norm) of a modular-addition model; a per-checkpoint reading of series claims"
    )
    statistics: ClassVar[tuple[str, ...]] = ("fourier_gini", "weight_norm")
    params: ClassVar[tuple[str, ...]] = ("p",)
    model_roles: ClassVar[tuple[str, ...]] = ()
    default_inputs: ClassVar[Mapping[str, Any] | None] = {"kind": "random_tokens", "seq_len": 2, "n": 1}
    reads_series: ClassVar[bool] = False

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        p = params.get("p", shape.d_vocab - 1)
        if not isinstance(p, int) or isinstance(p, bool) or not 3 <= p <= shape.d_vocab:
            raise CheckError(f"p: the modulus, at most the model's vocabulary ({shape.d_vocab}); got {p!r}")
        needs = Needs(frozenset(), weights=frozenset(PARAMETERS))
        stats = [s for s in self.statistics if s in expect]
        return Prepared(
            needs={MODEL: needs}, null_needs=needs, statistics=stats, sampling="weights", weight_null_draws=20, state={"p": p},
            units={"fourier_gini": "Gini", "weight_norm": "L2"},
            notes=[f"fourier_gini over frequencies 1..{(p - 1) // 2} of W_E's first {p} rows; weight_norm over {', '.join(PARAMETERS)}"],
        )

    def _values(self, prepared: Prepared, weights: Mapping[str, Any]) -> dict[str, float]:
        missing = [name for name in PARAMETERS if name not in weights]
        if missing:
            raise CheckError(f"the model has no {missing[0]}")
        embedding = np.asarray(weights["W_E"].detach().double().cpu().numpy())
        total = sum(float((weights[name].detach().double() ** 2).sum()) for name in PARAMETERS)
        return {"fourier_gini": gini(frequency_norms(embedding, prepared.state["p"])), "weight_norm": float(np.sqrt(total))}

    def measure(self, prepared: Prepared, activations: Mapping[str, Any], batches: Mapping[str, Any]) -> dict[str, np.ndarray]:
        values = self._values(prepared, activations[MODEL])
        return {stat: np.asarray([values[stat]]) for stat in prepared.statistics}

    def measure_null(self, prepared: Prepared, activations: Mapping[str, Any], batch: Any) -> np.ndarray:
        values = self._values(prepared, activations)
        return np.asarray([values[prepared.statistics[0] if prepared.statistics else "fourier_gini"]])

    def null_description(self, prepared: Prepared) -> str:
        return f"{prepared.weight_null_draws} random-weights twins of the same shapes"


register(ModularProgress())
