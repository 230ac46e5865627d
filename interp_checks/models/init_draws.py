"""Random-weights draws of a native model's attention weights, without building a twin bridge.

Why: a weight statistic's null (``check: composition``) needs hundreds of random-weights draws, and
only ``W_Q, W_K, W_V, W_O`` of each. Building a twin bridge costs 0.1-0.3 s a draw; the weights
alone cost microseconds. A fresh native model's weights are what TransformerLens 4.3's
``boot_native`` initialises (``model_bridge/sources/native/init.py``, ``initialize_native_model``):

* ``init_mode: gpt2`` (the default): every q, k, v projection weight iid Normal(0, std) and the
  output projection iid Normal(0, std / sqrt(2 n_layers)), with std = ``initializer_range`` (the
  config resolves it to 0.8 / sqrt(d_model) when unset);
* ``xavier_uniform|xavier_normal|kaiming_uniform|kaiming_normal``: TransformerLens's own
  ``nn.init`` call on each ``nn.Linear`` weight (fans from its [out, in] shape: q [n_heads d_head,
  d_model], k and v [n_key_value_heads d_head, d_model], o [d_model, n_heads d_head]), with
  ``initializer_range`` as the gain when positive; the same rule for every projection.

Layer norms start at weight 1 and bias 0, so nothing is folded into these weights at init. The draws
here have the twins' distribution (``tests/integration/test_init_draws.py`` checks it by KS test
against real twins per parameter), not the twins' exact values: draw ``d`` uses its own
``torch.Generator`` seeded by ``seed``, so a draw never depends on how many others are drawn.
Anything else (an HF model, ``init_weights: false``, other parameters) keeps the twin path
(``ModelCache.random_weights``).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from jaxtyping import Float

DRAWABLE = frozenset({"W_Q", "W_K", "W_V", "W_O"})


def can_draw_directly(architecture: Mapping[str, Any], names: frozenset[str]) -> bool:
    """Whether ``names`` of a model with this ``LoadedModel.architecture`` can be drawn here."""
    if architecture.get("source") != "native" or not names or not names <= DRAWABLE:
        return False
    cfg = _bridge_config(architecture["config"])
    return bool(cfg.init_weights) and (cfg.init_mode or "gpt2").lower() in _modes()


def draw_attention_weights(
    config: Mapping[str, Any], names: frozenset[str], seed: int
) -> dict[str, Float[torch.Tensor, "layer head a b"]]:
    """One fresh model's ``names`` (of :data:`DRAWABLE`), stacked [layer, head, ...] as the bridge's
    ``W_Q`` [layer, head, d_model, d_head], ``W_K``/``W_V`` [layer, kv_head, d_model, d_head] and
    ``W_O`` [layer, head, d_head, d_model] are, float32 on the CPU."""
    cfg = _bridge_config(config)
    generator = torch.Generator().manual_seed(int(seed))
    n_kv = int(cfg.n_key_value_heads or cfg.n_heads)
    heads = {"W_Q": int(cfg.n_heads), "W_K": n_kv, "W_V": n_kv, "W_O": int(cfg.n_heads)}
    out: dict[str, torch.Tensor] = {}
    for name in sorted(names):
        layers = [_linear_weight(cfg, name, heads[name], generator) for _ in range(int(cfg.n_layers))]
        out[name] = torch.stack([_stacked_per_head(w, name, heads[name], int(cfg.d_head)) for w in layers])
    return out


def _linear_weight(cfg: Any, name: str, n_heads: int, generator: torch.Generator) -> Float[torch.Tensor, "out inp"]:
    """The ``nn.Linear`` weight [out, in] of one layer's projection, initialised as TransformerLens does."""
    d_model, width = int(cfg.d_model), n_heads * int(cfg.d_head)
    weight = torch.empty((d_model, width) if name == "W_O" else (width, d_model), dtype=torch.float32)
    mode = (cfg.init_mode or "gpt2").lower()
    if mode == "gpt2":
        std = cfg.initializer_range if cfg.initializer_range > 0 else 0.8 / math.sqrt(cfg.d_model)
        if name == "W_O":  # residual scaling of output projections (gpt2 mode only)
            std = std / math.sqrt(2 * cfg.n_layers)
        return torch.nn.init.normal_(weight, mean=0.0, std=std, generator=generator)
    gain = cfg.initializer_range if cfg.initializer_range > 0 else 1.0
    return _modes()[mode](weight, generator, gain)


def _stacked_per_head(weight: torch.Tensor, name: str, n_heads: int, d_head: int) -> torch.Tensor:
    """[out, in] -> the bridge's per-head layout: q/k/v [head, d_model, d_head], o [head, d_head, d_model]."""
    if name == "W_O":  # [d_model, head * d_head]
        return weight.T.reshape(n_heads, d_head, -1)
    return weight.reshape(n_heads, d_head, -1).transpose(-2, -1)  # [head * d_head, d_model]


def _bridge_config(config: Mapping[str, Any]) -> Any:
    from interp_checks.models.native import bridge_config

    return bridge_config(dict(config))


def _modes() -> Mapping[str, Any]:
    """``gpt2`` plus TransformerLens's own table of the other init modes (its ``nn.init`` calls)."""
    from transformer_lens.model_bridge.sources.native.init import _NON_RESIDUAL_MODES

    return {"gpt2": None, **_NON_RESIDUAL_MODES}
