"""check: composition_activations: the residual decomposition sums back to the hooks and matches
TransformerLens's own; the hand-built model's K-composition edge is found and nothing else is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from interp_checks.checks.base import MODEL, CheckError, ModelShape, Needs
from interp_checks.checks.composition_activations import (
    OTHER,
    CompositionActivationsCheck,
    destination_contributions,
    lead_over_others,
    needed_hooks,
    needed_weights,
)
from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Engine, Settings
from interp_checks.models.cache import ModelCache
from interp_checks.models.native import boot_random
from interp_checks.models.spec import parse_model_spec
from interp_checks.runner import capture, read_weights
from interp_checks.zoo.handbuilt import build_induction_2l

REPEAT = {"region": "repeat"}
INPUTS = {"kind": "repeated_random_tokens", "seq_len": 32, "n": 64}
CHECK = CompositionActivationsCheck()
SMALL = dict(d_model=32, n_layers=3, n_heads=2, d_head=8, n_ctx=40, d_vocab=50, act_fn="gelu", d_mlp=64)


def decompose(bridge, tokens: torch.Tensor, layer: int, kind: str):
    norm = bridge.cfg.normalization_type
    acts = capture(bridge, tokens, Needs(needed_hooks(layer, kind, norm)))
    acts.update(read_weights(bridge, needed_weights([layer], kind, norm)))
    return destination_contributions(acts, acts, layer, kind, norm, bridge.cfg.n_heads)


@pytest.fixture(scope="module")
def cache() -> ModelCache:
    return ModelCache()


@pytest.fixture(scope="module")
def handbuilt(tmp_path_factory):
    return build_induction_2l(tmp_path_factory.mktemp("handbuilt") / "induction_2l")


@pytest.mark.parametrize("normalization", ["LN", "LNPre", "RMS", None])
@pytest.mark.parametrize("attn_only", [True, False])
@pytest.mark.parametrize("kind", ["q", "k", "v"])
def test_the_components_sum_to_the_hook_minus_its_bias(normalization, attn_only, kind):
    """Embeddings + every earlier head's z @ W_O + biases (b_O, the norm's bias) + the rest, through
    the frozen scale and the destination's weights, is exactly hook_kind - b_kind; the rest is zero
    without MLPs. Random biases, so a dropped bias term shows."""
    torch.manual_seed(0)
    bridge = boot_random(SMALL | {"normalization_type": normalization, "attn_only": attn_only}, seed=1)
    with torch.no_grad():
        for name, parameter in bridge.named_parameters():
            if name.endswith("bias") or "ln" in name:
                parameter.add_(torch.randn_like(parameter) * 0.3)
    tokens = torch.randint(0, 50, (3, 20))
    names, contributions, total = decompose(bridge, tokens, 2, kind)
    assert torch.allclose(contributions.sum(0), total, atol=1e-4 * float(total.abs().max())), float((contributions.sum(0) - total).abs().max())
    rest = contributions[names.index(OTHER)].abs().max()
    assert (rest < 1e-4 * float(total.abs().max())) == attn_only


def test_each_heads_term_is_transformer_lenses_stack_head_results_through_apply_ln_to_stack(cache):
    """The per-head terms equal TransformerLens's ``stack_head_results`` + ``apply_ln_to_stack`` times
    the ln weight and W_K (the zoo 2L: LN, rotary, whose hook_k is before the rotation)."""
    bridge = cache.get(parse_model_spec("zoo:attn-only-2l")).bridge
    tokens = torch.randint(1, 2000, (4, 24))
    names, contributions, _ = decompose(bridge, tokens, 1, "k")
    _, tl_cache = bridge.run_with_cache(tokens)
    stack, labels = tl_cache.stack_head_results(layer=1, return_labels=True)
    normed = tl_cache.apply_ln_to_stack(stack, layer=1) * bridge.state_dict()["blocks.1.ln1.weight"]
    theirs = torch.einsum("cnpm,hmd->cnphd", normed, bridge.W_K[1])
    ours = contributions[[names.index(label) for label in labels]]
    assert torch.allclose(ours, theirs.detach(), atol=1e-5), float((ours - theirs).abs().max())


def test_hand_built_l0h0_is_l1h1s_whole_key_and_none_of_its_query_or_value_and_unused_heads_are_zero(handbuilt):
    from interp_checks.models.native import load_native

    bridge = load_native(Path(handbuilt.spec.removeprefix("native:")))
    tokens = torch.randint(1, 4096, (8, 33))
    tokens = torch.cat([tokens, tokens[:, 1:]], dim=1)
    shares = {}
    for kind in "qkv":
        names, contributions, total = decompose(bridge, tokens, 1, kind)
        norm = total[:, 33:, 1].norm(dim=-1)
        shares[kind] = {name: float((contributions[i, :, 33:, 1].norm(dim=-1) / norm).mean()) for i, name in enumerate(names)}
    assert shares["k"]["L0H0"] > 0.99
    assert shares["q"]["L0H0"] == 0.0 and shares["v"]["L0H0"] == 0.0
    for unused in ("L0H1", "L0H2", "L0H3"):
        assert all(shares[kind][unused] == 0.0 for kind in "qkv"), unused


def claim(model: str, stat: str, expect: str, **params) -> ClaimSpec:
    return ClaimSpec(
        id="c", path=Path("x.claims.yaml"), index=0, check="composition_activations", model=model,
        inputs=INPUTS, expect={stat: parse_expectation(expect)}, params=params,
    )


def test_hand_built_verdicts_find_the_edge_and_no_other(handbuilt, cache):
    """Through the engine: L0H0 -> L1H1 (k) has a large share and leads every other component; its
    query share is refuted; an unused head's share of the key is refuted, as is its lead."""
    edge = {"from": "L0H0", "to": "L1H1", "where": REPEAT}
    specs = [
        claim(handbuilt.spec, "share", ">= 0.5", kind="k", **edge),
        claim(handbuilt.spec, "lead", "> 0", kind="k", **edge),
        claim(handbuilt.spec, "share", ">= 0.5", kind="q", **edge),
        claim(handbuilt.spec, "share", ">= 0.5", kind="k", **(edge | {"from": "L0H3"})),
        claim(handbuilt.spec, "lead", "> 0", kind="k", **(edge | {"from": "L0H1"})),
    ]
    results = Engine(Settings(n_resamples=999), models=cache).evaluate(specs)
    outcomes = [r.outcome for r in results]
    assert outcomes == ["supported", "supported", "refuted", "refuted", "refuted"], [(r.outcome, r.error) for r in results]
    share = results[0].expectations[0].evaluation
    assert share.estimate > 0.99 and share.effect_size > 3 and "maximum over every (earlier head, later head) pair" in results[0].null


def test_the_null_is_the_maximum_over_every_pair(handbuilt, cache):
    """measure_null is, per sequence, at least the statistic of every (earlier, later) pair."""
    from interp_checks.inputs.generators import Vocabulary, generate

    loaded = cache.get(parse_model_spec(handbuilt.spec))
    shape = {MODEL: ModelShape(loaded.n_layers, loaded.n_heads, loaded.d_vocab, loaded.n_ctx, None)}
    batch = generate(INPUTS, Vocabulary(loaded.d_vocab, loaded.n_ctx, None), 0)
    for stat, expect in (("share", ">= 0.5"), ("lead", "> 0")):
        prepared = CHECK.prepare({"from": "L0H0", "to": "L1H1", "kind": "k", "where": REPEAT}, shape, {stat: parse_expectation(expect)})
        acts = capture(loaded.bridge, torch.as_tensor(batch.tokens), prepared.null_needs)
        acts.update(read_weights(loaded.bridge, prepared.null_needs.weights))
        null = CHECK.measure_null(prepared, acts, batch)
        for source in ("L0H0", "L0H1", "L0H3"):
            for dest in ("L1H0", "L1H1", "L1H2", "L1H3"):
                pair = CHECK.prepare({"from": source, "to": dest, "kind": "k", "where": REPEAT}, shape, {stat: parse_expectation(expect)})
                value = CHECK.measure(pair, {MODEL: acts}, {MODEL: batch})[stat]
                assert np.all((null >= value - 1e-12) | np.isnan(value)), (stat, source, dest)


def test_lead_is_the_source_minus_the_largest_other_component():
    shares = np.array([[0.5, 0.2], [0.4, 0.6], [0.1, 0.3]])
    assert lead_over_others(shares, 0) == pytest.approx([0.1, -0.4])
    assert lead_over_others(shares, 1) == pytest.approx([-0.1, 0.3])


@pytest.mark.parametrize(
    "params, expect, message",
    [
        ({"from": "L0H0", "to": "L1H1"}, {"share": ">= 0.5"}, "needs kind"),
        ({"from": "L1H0", "to": "L1H1", "kind": "k"}, {"share": ">= 0.5"}, "not in an earlier layer"),
        ({"to": "L1H1", "kind": "k"}, {"share": ">= 0.5"}, "needs from"),
        ({"from": "L0H0", "to": "L1H1", "kind": "k"}, {"share": ">= 0.5", "lead": "> 0"}, "one expectation"),
        ({"from": "L0H0", "to": "L1H1", "kind": "k", "where": {"regon": "repeat"}}, {"share": ">= 0.5"}, "where has no key"),
    ],
)
def test_bad_claims_are_check_errors_that_say_what_to_fix(params, expect, message):
    shape = {MODEL: ModelShape(2, 4, 100, 64)}
    with pytest.raises(CheckError, match=message):
        CHECK.prepare(params, shape, {k: parse_expectation(v) for k, v in expect.items()})


def test_the_figure_shows_every_component_into_every_destination_head_with_the_claim_outlined(handbuilt, cache):
    [result] = Engine(Settings(n_resamples=99, null_draws=1), models=cache).evaluate(
        [claim(handbuilt.spec, "share", ">= 0.5", kind="k", **{"from": "L0H0", "to": "L1H1", "where": REPEAT})]
    )
    heatmap = next(f for f in result.figures if f.kind == "heatmap")
    row, col = heatmap.data["marked"][0]
    assert heatmap.data["row_labels"][row] == "L0H0" and heatmap.data["col_labels"][col] == "L1H1"
    assert heatmap.data["values"][row][col] > 0.99 and "not a partition" in heatmap.caption
