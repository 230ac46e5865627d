"""Samples that are not independent: several rows cut from one document.

Windows of one document share its topic, style and identifiers, so they are not independent draws;
treating them as such makes intervals too narrow and p-values too small. The honest unit is the
document: average each document's rows first, then run every statistic over documents.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["cluster_means"]


def cluster_means(values: np.ndarray, clusters: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Per-cluster means of ``values`` ([rows] or [rows, k]), NaN rows ignored, clusters in order of
    first appearance. A cluster whose rows are all NaN gets NaN (the caller drops it as undefined).
    """
    values = np.asarray(values, dtype=float)
    if values.shape[0] != len(clusters):
        raise ValueError(f"{values.shape[0]} rows but {len(clusters)} cluster labels")
    order: dict[str, list[int]] = {}
    for row, name in enumerate(clusters):
        order.setdefault(name, []).append(row)
    names = list(order)
    out = np.empty((len(names), *values.shape[1:]))
    for i, name in enumerate(names):
        block = values[order[name]]
        finite = np.isfinite(block)
        count = finite.sum(axis=0)
        total = np.where(finite, block, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out, names
