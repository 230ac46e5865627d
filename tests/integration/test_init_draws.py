"""The weight null's cheap path: attention weights drawn directly from TransformerLens's native init
(``models.init_draws``) must be distributed as real twins' are, and the batched composition scores
of all draws must equal TransformerLens's own, draw by draw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from interp_checks.checks.composition import WEIGHTS, _score_grid, _score_grids_of_draws
from interp_checks.models.cache import ModelCache
from interp_checks.models.init_draws import can_draw_directly, draw_attention_weights
from interp_checks.models.native import boot_random
from interp_checks.runner import read_weights

SEEDS = range(4)
# A config with every shape case the init depends on: d_head * n_heads != d_model, grouped-query
# attention (k/v have fewer heads, so xavier's fans differ), 3 layers (gpt2's residual scale).
ODD = dict(d_model=48, d_head=8, n_heads=4, n_key_value_heads=2, n_layers=3, n_ctx=8, d_vocab=8, attn_only=True)


def twins(config: dict, seeds=SEEDS) -> list[dict[str, torch.Tensor]]:
    return [read_weights(boot_random(config, seed=s), WEIGHTS) for s in seeds]


def drawn(config: dict, seeds=SEEDS) -> list[dict[str, torch.Tensor]]:
    return [draw_attention_weights(config, WEIGHTS, 1000 + s) for s in seeds]


@pytest.mark.parametrize("init", [{}, {"init_mode": "xavier_uniform"}, {"init_mode": "kaiming_normal"}, {"initializer_range": 0.3}])
def test_directly_drawn_attention_weights_have_the_twins_shapes_and_distribution(init):
    """Per parameter: the same shape as a twin's, and the same distribution (two-sample KS over 4
    seeds of each, all layers pooled, p > 0.001); and per layer, the same sd within 5%."""
    config = {**ODD, **init}
    ours, theirs = drawn(config), twins(config)
    for name in sorted(WEIGHTS):
        assert ours[0][name].shape == theirs[0][name].shape, name
        a = np.concatenate([w[name].flatten().numpy() for w in ours])
        b = np.concatenate([w[name].flatten().numpy() for w in theirs])
        assert not np.array_equal(a, b)  # other draws ...
        assert stats.ks_2samp(a, b).pvalue > 0.001, (name, init)  # ... of the same distribution
        for layer in range(ODD["n_layers"]):
            sd_ours = torch.stack([w[name][layer] for w in ours]).std()
            sd_theirs = torch.stack([w[name][layer] for w in theirs]).std()
            assert float(sd_ours / sd_theirs) == pytest.approx(1.0, abs=0.05), (name, layer, init)


def test_a_draw_depends_on_its_seed_only():
    first = draw_attention_weights(ODD, WEIGHTS, 7)
    assert all(torch.equal(first[n], draw_attention_weights(ODD, WEIGHTS, 7)[n]) for n in WEIGHTS)
    assert not torch.equal(first["W_Q"], draw_attention_weights(ODD, WEIGHTS, 8)["W_Q"])


def test_what_cannot_be_drawn_directly_keeps_the_twin_path():
    native = {"source": "native", "config": ODD}
    assert can_draw_directly(native, frozenset({"W_Q", "W_O"}))
    assert not can_draw_directly(native, frozenset({"W_Q", "W_E"}))  # not an attention weight
    assert not can_draw_directly({"source": "native", "config": {**ODD, "init_weights": False}}, frozenset({"W_Q"}))
    assert not can_draw_directly({"source": "hf", "config": ODD}, frozenset({"W_Q"}))


@pytest.mark.parametrize("kind", ["q", "k", "v"])
def test_batched_scores_of_all_draws_equal_transformer_lens_per_draw(kind):
    """``_score_grids_of_draws`` (Gram matrices, all draws at once) against TransformerLens's
    ``composition_scores`` (``_score_grid``) on each draw, grouped-query attention included."""
    draws = drawn(ODD, range(3))
    stacked = {n: torch.stack([d[n] for d in draws]) for n in WEIGHTS}
    batched = _score_grids_of_draws(stacked, kind)
    for d, weights in enumerate(draws):
        torch.testing.assert_close(batched[d], _score_grid(weights, kind), rtol=1e-5, atol=1e-6)


def test_a_dead_heads_batched_score_is_undefined_as_in_transformer_lens():
    weights = draw_attention_weights(ODD, WEIGHTS, 0)
    weights["W_V"][0, 1] = 0.0  # kv head 1 of layer 0 feeds query heads 2 and 3
    batched = _score_grids_of_draws({n: t[None] for n, t in weights.items()}, "k")[0]
    reference = _score_grid(weights, "k")
    assert torch.isnan(batched[0, 2]).all() and torch.isnan(reference[0, 2]).all()
    torch.testing.assert_close(batched, reference, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_the_composition_null_of_direct_draws_agrees_with_real_twins():
    """The null itself: K-composition scores of every earlier-to-later pair of the 2L zoo model,
    per draw, from 200 direct draws and 60 real twins: the per-draw means agree within 3 standard
    errors of their difference, and so do the per-draw sds (each draw is the unit, as in the check)."""
    from interp_checks.models.spec import parse_model_spec

    cache = ModelCache()
    spec = parse_model_spec("zoo:attn-only-2l")
    assert can_draw_directly(cache.get(spec).architecture, WEIGHTS)
    direct = _score_grids_of_draws(cache.random_weights_draws(spec, "cpu", range(200), WEIGHTS), "k")[:, 0, :, 1, :]
    real = torch.stack([_score_grid(cache.random_weights(spec, "cpu", 5000 + s, WEIGHTS), "k")[0, :, 1, :] for s in range(60)])
    for summary in (lambda g: g.flatten(1).mean(1), lambda g: g.flatten(1).std(1)):
        a, b = summary(direct).double().numpy(), summary(real).double().numpy()
        se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        assert abs(a.mean() - b.mean()) < 3 * se, (a.mean(), b.mean(), se)
