"""Pieces every intervention family reads the same way (ablation, patching, faithfulness).

An intervention's reading (``runner.run_interventions``) is a [sequences, positions] metric aligned
with the tokens; a family turns it into one number per sequence. What "loss" means must not differ
between families, so it is defined once here:

* :func:`loss_increase` -- per sequence, the mean over the selected tokens of the next-token loss
  of the changed run minus that of the clean run (nats per token): ``clean logp - changed logp``.
  Positive: the change made the model worse at predicting those tokens.

Nothing here runs a model: it works on readings a check was handed.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from jaxtyping import Bool, Float

from interp_checks.checks.compare import mean_over
from interp_checks.interventions import Intervention, clean_key

__all__ = ["LOSS_UNIT", "loss_increase", "token_loss_increase"]

LOSS_UNIT = "nats per token"


def token_loss_increase(readings: Mapping[str, np.ndarray], intervention: Intervention) -> Float[np.ndarray, "n pos"]:
    """Per token: the changed run's next-token loss minus the clean run's (NaN at position 0)."""
    if intervention.metric != "logprob":
        raise ValueError(f"a loss is read from the logprob metric, not {intervention.metric}")
    clean = np.asarray(readings[clean_key("logprob")], dtype=float)
    changed = np.asarray(readings[intervention.key], dtype=float)
    return clean - changed


def loss_increase(
    readings: Mapping[str, np.ndarray], intervention: Intervention, selected: Bool[np.ndarray, "n pos"]
) -> Float[np.ndarray, " n"]:
    """Per sequence: mean over the selected tokens of the loss increase the intervention causes
    (NaN for a sequence where nothing is selected). Sequences, not tokens, are the unit of
    sampling: a model that has locked onto a repeated span gets its tokens right together."""
    change = token_loss_increase(readings, intervention)
    return mean_over(change, selected & np.isfinite(change))
