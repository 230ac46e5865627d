"""check: composition on real weights: TransformerLens's numbers, a valid pooled null, the hand-built
model's known edge, dead heads as errors, and no bundled claim supported on random weights."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from interp_checks.checks.base import ModelShape
from interp_checks.checks.composition import MIN_TWINS, WEIGHTS, composition_score_grid, earlier_to_later_pairs, pair_scores
from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec, load_claim_file
from interp_checks.engine import Engine, Settings
from interp_checks.models.cache import ModelCache
from interp_checks.models.native import boot_random, save_native
from interp_checks.models.spec import parse_model_spec
from interp_checks.runner import read_weights
from interp_checks.zoo.handbuilt import build_induction_2l

HYPOTHESES = Path(__file__).resolve().parents[2] / "hypotheses"
FAST = Settings(n_resamples=999)


def claim(model: str, expect: str, **params) -> ClaimSpec:
    return ClaimSpec(
        id="c", path=HYPOTHESES / "x.claims.yaml", index=0, check="composition", model=model,
        inputs={}, expect={"z": parse_expectation(expect)}, params=params,
    )


@pytest.fixture(scope="module")
def cache() -> ModelCache:
    return ModelCache()


@pytest.mark.parametrize("kind", ["q", "k", "v"])
def test_scores_equal_transformer_lens_all_composition_scores(cache, kind):
    bridge = cache.get(parse_model_spec("zoo:attn-only-2l")).bridge
    ours = composition_score_grid(read_weights(bridge, WEIGHTS), kind)
    theirs = bridge.all_composition_scores(kind.upper()).scores
    layers = torch.arange(ours.shape[0])
    later = layers[:, None, None, None] < layers[None, None, :, None]
    assert torch.equal(torch.where(later, ours, torch.zeros_like(ours)), theirs)


def test_the_pooled_null_is_one_distribution_across_layer_pairs_with_mean_near_one_over_sqrt_d_model(cache):
    """Why pooling every earlier-to-later pair of a twin is valid: on random twins of the 3L model the
    layer pairs (0,1), (0,2), (1,2) give the same distribution of K-scores (two-sample KS), and its
    mean is 1/sqrt(d_model) (measured 0.124 against 0.125)."""
    spec = parse_model_spec("zoo:attn-only-3l")
    loaded = cache.get(spec)
    shape = ModelShape(loaded.n_layers, loaded.n_heads, loaded.d_vocab, loaded.n_ctx)
    pairs = earlier_to_later_pairs(shape)
    scores = np.stack([pair_scores(composition_score_grid(cache.random_weights(spec, "cpu", s, WEIGHTS), "k"), pairs) for s in range(20)])
    by_layers = {lp: scores[:, [i for i, p in enumerate(pairs) if (p[0][0], p[1][0]) == lp]].ravel() for lp in [(0, 1), (0, 2), (1, 2)]}
    for a, b in [((0, 1), (0, 2)), ((0, 1), (1, 2)), ((0, 2), (1, 2))]:
        assert stats.ks_2samp(by_layers[a], by_layers[b]).pvalue > 0.001, (a, b)
    assert scores.mean() == pytest.approx(1 / np.sqrt(loaded.bridge.cfg.d_model), rel=0.03)


@pytest.fixture(scope="module")
def handbuilt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("handbuilt") / "induction_2l"
    return build_induction_2l(folder)


def live(bridge, head: str, side: str) -> bool:
    """Whether the head's OV (side "source") or QK (side "dest") circuit is non-zero."""
    layer, index = int(head[1]), int(head[3])
    if side == "source":
        return bool(bridge.W_V[layer, index].abs().sum() > 0 and bridge.W_O[layer, index].abs().sum() > 0)
    return bool(bridge.W_Q[layer, index].abs().sum() > 0 and bridge.W_K[layer, index].abs().sum() > 0)


def test_the_hand_built_k_composition_edge_is_found_and_no_unused_pair_composes(handbuilt, cache):
    from interp_checks.models.native import load_native

    bridge = load_native(Path(handbuilt.spec.removeprefix("native:")))
    edges = {(s, d, k) for s, d, k in handbuilt.composition}
    specs, expected = [], []
    for kind in "qkv":
        for source in [f"L0H{h}" for h in range(4)]:
            for dest in [f"L1H{h}" for h in range(4)]:
                if live(bridge, source, "source") and live(bridge, dest, "dest" if kind != "v" else "source"):
                    specs.append(claim(handbuilt.spec, ">= 3", **{"from": source, "to": dest, "kind": kind}))
                    expected.append((source, dest, kind) in edges)
    assert sum(expected) == len(edges) == 1  # every edge of the answer key is a live pair
    results = Engine(FAST, models=cache).evaluate(specs)
    for spec, result, is_edge in zip(specs, results, expected):
        assert result.outcome == ("supported" if is_edge else "refuted") or (not is_edge and result.outcome == "inconclusive"), (
            spec.params, result.outcome, result.error, result.expectations and result.expectations[0].evaluation.note)
    found = next(r for r, e in zip(results, expected) if e)
    assert found.figures and found.figures[0].kind == "heatmap" and f"Null band: random-weights draws ({MIN_TWINS} draws" in found.figures[0].caption


def test_a_dead_heads_undefined_score_is_an_error_naming_it_never_a_verdict(handbuilt, cache):
    from interp_checks.models.native import load_native

    bridge = load_native(Path(handbuilt.spec.removeprefix("native:")))
    dead = next(f"L0H{h}" for h in range(4) if not live(bridge, f"L0H{h}", "source"))
    for expect in (">= 3", "< 3"):
        [result] = Engine(FAST, models=cache).evaluate([claim(handbuilt.spec, expect, **{"from": dead, "to": "L1H1", "kind": "k"})])
        assert result.outcome == "error" and f"undefined (0/0) for {dead}->L1H1" in result.error


def test_no_bundled_composition_claim_is_supported_on_a_random_weights_model(tmp_path, cache):
    """Every bundled composition claim, on random-weights models of the zoo's architectures: none
    supported (the family is all of them, Holm-adjusted, as in the main job)."""
    specs = []
    for size in ("2l", "3l", "4l"):
        loaded = cache.get(parse_model_spec(f"zoo:attn-only-{size}"))
        folder = save_native(boot_random(loaded.architecture["config"], seed=123), tmp_path / size)
        file = load_claim_file(HYPOTHESES / f"composition_attn_only_{size}.claims.yaml")
        specs += [dataclasses.replace(spec, model=f"native:{folder}") for spec in file.claims]
    results = Engine(FAST, models=cache).evaluate(specs)
    assert len(results) >= 12
    assert not [r.spec.id for r in results if r.outcome in ("supported", "error")], [(r.spec.id, r.outcome, r.error) for r in results]


def test_a_weight_null_twin_without_vocabulary_draws_block_weights_from_the_same_distribution():
    """``ModelCache.random_weights`` builds block-weight twins with a tiny vocabulary (fast); their
    attention weights must have the full twin's shapes and initial distribution."""
    from scipy import stats as scipy_stats

    from interp_checks.models.cache import ModelCache, _only_block_weights
    from interp_checks.models.load import load_random_twin
    from interp_checks.models.spec import parse_model_spec

    cache = ModelCache()
    spec = parse_model_spec("zoo:attn-only-2l")
    small = [cache.random_weights(spec, "cpu", seed, frozenset({"W_Q", "W_O"})) for seed in range(3)]
    full = [load_random_twin(cache.get(spec), seed=seed).bridge for seed in range(3)]
    for name in ("W_Q", "W_O"):
        assert small[0][name].shape == getattr(full[0], name).shape
        a = np.concatenate([w[name].flatten().numpy() for w in small])
        b = np.concatenate([getattr(bridge, name).detach().flatten().numpy() for bridge in full])
        assert not np.array_equal(a, b)  # other draws ...
        assert scipy_stats.ks_2samp(a, b).pvalue > 0.001  # ... of the same distribution
    assert not _only_block_weights(frozenset({"W_Q", "W_E"}))
