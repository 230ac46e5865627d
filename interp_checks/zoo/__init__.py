"""The model zoo: small transformers (attention-only, and 1-layer SoLU language models) trained offline, by documented seeded recipes.

Why a zoo of our own: tests of interpretability claims need models where the claim is known to be
true (induction heads in 2L+ attention-only models) and known to be false (a 1L model cannot form
one), small enough to run in CI on two CPU cores, and reproducible without downloading anything.

* :mod:`interp_checks.zoo.data` -- the corpus (the running Python's stdlib), tokenizer, batch sampler.
* :mod:`interp_checks.zoo.recipes` -- one frozen ``Recipe`` per model (``RECIPES``).
* :mod:`interp_checks.zoo.train` -- the training loop, the evaluation and the model card.
* :mod:`interp_checks.zoo.handbuilt` -- models with weights set by hand, whose circuits are known
  (``build_induction_2l`` and its ``KnownCircuit`` answer key), for testing checks against.
* ``python -m interp_checks.zoo list|train|tokenizer`` -- the command line.

The trained checkpoints live in ``fixtures/zoo/<name>/`` (see :func:`zoo_dir`).
"""

from __future__ import annotations

from pathlib import Path

ZOO_NAMES = ("attn-only-1l", "attn-only-2l", "attn-only-3l", "attn-only-4l", "solu-1l", "solu-1l-wide")


def zoo_dir() -> Path:
    """The repository's ``fixtures/zoo`` folder (the default output of ``train``)."""
    return Path(__file__).resolve().parents[2] / "fixtures" / "zoo"


def zoo_tokenizer_path() -> Path:
    return zoo_dir() / "tokenizer.json"


def model_path(name: str) -> Path:
    """Folder of a committed zoo model, e.g. ``model_path("attn-only-2l")``."""
    if name not in ZOO_NAMES:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(ZOO_NAMES)}")
    return zoo_dir() / name
