"""Modular-addition inputs: ``a b =`` rows with the answer ``(a + b) mod p`` held out.

The one definition of the task's data, shared by the training recipe (``zoo.modular``) and the
claims that read it (inputs kind ``modular_pairs``): a claim about "the test pairs" must mean the
pairs the model was not trained on, so the split is a function of (p, train_fraction, split_seed)
only, never of the model's seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from interp_checks.inputs.generators import InputSpecError, Vocabulary, register_generator

__all__ = ["all_pairs", "answers", "split_pairs"]


def all_pairs(p: int) -> np.ndarray:
    """Every input ``a b =`` as token ids, [p * p, 3], in (a, b) order (``=`` is token p)."""
    a, b = np.divmod(np.arange(p * p), p)
    return np.stack([a, b, np.full(p * p, p)], axis=1).astype(np.int64)


def split_pairs(p: int, train_fraction: float, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices) into :func:`all_pairs`: a seeded permutation cut at the fraction."""
    order = np.random.default_rng(split_seed).permutation(p * p)
    cut = int(round(train_fraction * order.size))
    return np.sort(order[:cut]), np.sort(order[cut:])


def answers(inputs: np.ndarray, p: int) -> np.ndarray:
    return (inputs[:, 0] + inputs[:, 1]) % p


@register_generator(
    "modular_pairs",
    defaults={"p": 113, "train_fraction": 0.4, "split": "test", "split_seed": 0, "n": 0},
    size=lambda params: 3 * params["p"] ** 2,
    description=(
        "modular addition 'a b =' rows (token p is '='), the answer (a + b) mod p held out as each row's answer: "
        "the train or test pairs of the split (p, train_fraction, split_seed) that zoo.modular trains on, all of them "
        "(n: 0) or a seeded sample of n"
    ),
)
def modular_pairs(params: dict[str, Any], vocab: Vocabulary, rng: np.random.Generator):
    p, fraction, split = params["p"], params["train_fraction"], params["split"]
    if split not in ("train", "test", "all"):
        raise InputSpecError(f"modular_pairs: split must be train, test or all, got {split!r}")
    if not 0.0 < fraction < 1.0:
        raise InputSpecError(f"modular_pairs: train_fraction must lie in (0, 1), got {fraction}")
    if vocab.d_vocab < p + 1:
        raise InputSpecError(f"modular_pairs: p = {p} needs a vocabulary of p + 1 tokens (a, b and '='); the model has {vocab.d_vocab}")
    rows = all_pairs(p)
    train, test = split_pairs(p, fraction, params["split_seed"])
    chosen = {"train": train, "test": test, "all": np.arange(p * p)}[split]
    if params["n"]:
        if params["n"] > chosen.size:
            raise InputSpecError(f"modular_pairs: n = {params['n']} but the {split} split has {chosen.size} pairs")
        chosen = np.sort(rng.choice(chosen, size=params["n"], replace=False))
    tokens = rows[chosen]
    return tokens, {"answers": answers(tokens, p)}
