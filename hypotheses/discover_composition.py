"""Exploratory sweep (not a test): z of every earlier-to-later head pair's Q-, K- and V-composition
score against 20 random-weights twins, for the 2L, 3L and 4L zoo models. Run:

    python hypotheses/discover_composition.py

What it printed is quoted in composition_attn_only_{2l,3l,4l}.claims.yaml; the 2L model is the
exploration, the 3L and 4L models (independent models) the confirmation."""

from __future__ import annotations

import numpy as np

from interp_checks.checks.composition import WEIGHTS, composition_score_grid, earlier_to_later_pairs, pair_name, pair_scores
from interp_checks.checks.base import ModelShape
from interp_checks.models.cache import ModelCache
from interp_checks.models.spec import parse_model_spec
from interp_checks.runner import read_weights

TWINS = 20


def main() -> None:
    cache = ModelCache()
    for name in ("attn-only-2l", "attn-only-3l", "attn-only-4l"):
        spec = parse_model_spec(f"zoo:{name}")
        loaded = cache.get(spec)
        shape = ModelShape(loaded.n_layers, loaded.n_heads, loaded.d_vocab, loaded.n_ctx)
        pairs = earlier_to_later_pairs(shape)
        weights = read_weights(loaded.bridge, WEIGHTS)
        twins = [cache.random_weights(spec, "cpu", seed, WEIGHTS) for seed in range(TWINS)]
        for kind in "qkv":
            null = np.stack([pair_scores(composition_score_grid(t, kind), pairs) for t in twins])
            z = (pair_scores(composition_score_grid(weights, kind), pairs) - null.mean()) / null.std(ddof=1)
            print(f"{name} {kind.upper()}: null mean {null.mean():.4f} sd {null.std(ddof=1):.4f} (1/sqrt(d_model) = {1 / np.sqrt(loaded.bridge.cfg.d_model):.4f})")
            for dest_layer in range(1, shape.n_layers):
                rows = [(pair_name(p), zi) for p, zi in zip(pairs, z) if p[1][0] == dest_layer and p[1][1] == 2]
                print("   into L%dH2: " % dest_layer + ", ".join(f"{n.split('->')[0]} {zi:+.1f}" for n, zi in rows))


if __name__ == "__main__":
    main()
