"""Seeded sparse-feature points for the toy model of superposition (Elhage et al. 2022; Henighan et
al. 2023): each of ``n_features`` features is active with probability ``1 - sparsity``, an active
feature's value is uniform in [0, 1], and each point is scaled to unit norm.

One generator serves both the training recipe (``interp_checks.zoo.superposition``) and the check
that reads the trained models (``interp_checks.checks.superposition``): the check recomputes a
training point's dimensionality from the same points the model was trained on, so both must draw
them the same way from the same seeds.

Seed scheme (numpy ``SeedSequence`` entropy lists, so streams never overlap):

* training set of a run: ``[TRAIN_STREAM, data_seed, T]`` -- one independent set per dataset size T
  and dataset seed (a larger T is not a superset of a smaller one, as in the paper's sweep);
* fresh test points: ``[TEST_STREAM, seed]`` -- the same points for every T and data seed, so the
  test losses of a sweep are paired by test point.

A point with no active feature (probability ``sparsity ** n_features``: 4e-5 at 1,000 features and
sparsity 0.99) cannot be scaled to unit norm; it stays the zero vector, as it is drawn.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

TRAIN_STREAM = 0
TEST_STREAM = 1
# The scaled-down sweep's sparsity (about 10 active features a point at 1,000 features, as the paper's
# 10,000 x 0.001): the recipe's, and the check's default when a claim gives none.
DEFAULT_SPARSITY = 0.99


def sparse_points(
    count: int, n_features: int, sparsity: float, rng: np.random.Generator
) -> Float[np.ndarray, "points features"]:
    """``count`` points, float32: features active with probability ``1 - sparsity``, values uniform
    in [0, 1], every row with an active feature scaled to unit (Euclidean) norm."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1) (the probability that a feature is off), got {sparsity}")
    if count < 0 or n_features < 1:
        raise ValueError(f"need count >= 0 and n_features >= 1, got count={count}, n_features={n_features}")
    active = rng.random((count, n_features)) < 1.0 - sparsity
    points = np.where(active, rng.random((count, n_features)), 0.0)
    norms = np.linalg.norm(points, axis=1, keepdims=True)
    return (points / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def training_points(
    n_features: int, sparsity: float, dataset_size: int, data_seed: int
) -> Float[np.ndarray, "T features"]:
    """The training set of one run of the sweep: ``dataset_size`` points from ``(data_seed, T)``."""
    rng = np.random.default_rng([TRAIN_STREAM, int(data_seed), int(dataset_size)])
    return sparse_points(int(dataset_size), n_features, sparsity, rng)


def fresh_points(n_features: int, sparsity: float, count: int, seed: int) -> Float[np.ndarray, "points features"]:
    """``count`` fresh points from ``seed``, drawn apart from every training set."""
    rng = np.random.default_rng([TEST_STREAM, int(seed)])
    return sparse_points(int(count), n_features, sparsity, rng)

