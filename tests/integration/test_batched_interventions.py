"""Stacked, resumed and direct interventions (``runner.run_interventions``) give what a naive full
run gives: one ``run_with_hooks`` from the tokens per intervention, hooks writing each site's value
into the activation the run computed. Tiny models built here: one with MLPs and layer norm, one
with rotary positions, one with no layer norm (where a last-layer head's direct effect is its total
effect), and a HuggingFace GPT-2 (another block loop for the skipped lower blocks)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from interp_checks.interventions import Intervention, Site, clean_key, head_site
from interp_checks.models.native import boot_random
from interp_checks import runner
from interp_checks.runner import capture, derangement, final_logits, metric_values, run_interventions
from interp_checks.checks.base import Needs

VOCAB = 50
MLP_ARCH = dict(d_model=32, n_layers=3, n_heads=2, d_head=16, n_ctx=80, d_vocab=VOCAB, d_mlp=64, attn_only=False,
                normalization_type="LN", act_fn="gelu")
ROTARY_ARCH = dict(d_model=32, n_layers=4, n_heads=2, d_head=16, n_ctx=80, d_vocab=VOCAB, attn_only=True,
                   normalization_type="LN", act_fn="gelu", positional_embedding_type="rotary")
NO_LN_ARCH = dict(d_model=32, n_layers=2, n_heads=2, d_head=16, n_ctx=80, d_vocab=VOCAB, attn_only=True,
                  normalization_type=None, act_fn="gelu")


def pairs(n: int = 6, half: int = 9, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeated random tokens and their corruption (first half fresh), as ``induction_pairs``."""
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(1, VOCAB, (n, half), generator=g)
    clean = torch.cat([first, first], 1)
    corrupted = torch.cat([torch.randint(1, VOCAB, (n, half), generator=g), first], 1)
    return clean, corrupted


def reference_means(bridge: Any, tokens: torch.Tensor, interventions: list[Intervention]) -> dict[str, torch.Tensor]:
    hooks = {site.hook for i in interventions if i.method == "mean" for site in i.sites}
    with torch.inference_mode():
        _, cache = bridge.run_with_cache(tokens)
    return {hook: cache[hook].mean(0) for hook in hooks}


def site_index(site: Site) -> tuple[Any, ...]:
    positions = slice(None) if site.positions is None else list(site.positions)
    return (slice(None), positions) if site.head is None else (slice(None), positions, site.head)


def naive_reading(bridge: Any, clean: torch.Tensor, corrupted: torch.Tensor, i: Intervention, means: dict) -> np.ndarray:
    """The unbatched, unresumed path: a full run from the tokens with hooks that write the sites."""
    with torch.inference_mode():
        _, clean_cache = bridge.run_with_cache(clean)
        _, corrupted_cache = bridge.run_with_cache(corrupted)
    base, other = (corrupted_cache, clean_cache) if i.direction == "denoise" else (clean_cache, corrupted_cache)
    perm = torch.as_tensor(derangement(clean.shape[0], i.seed))

    def value(site: Site) -> torch.Tensor:
        act = base[site.hook]
        return {
            "zero": lambda: torch.zeros_like(act),
            "mean": lambda: means.get(site.hook, act.mean(0))[: act.shape[1]].expand_as(act),
            "resample": lambda: act[perm],
            "patch": lambda: other[site.hook],
        }[i.method]()

    if i.path == "direct":
        final = base["ln_final.hook_in"].clone()
        for site in i.sites:
            change = torch.zeros_like(base[site.hook])
            index = site_index(site)
            change[index] = value(site)[index] - base[site.hook][index]
            if site.kind == "head":
                final += change[:, :, site.head] @ bridge.W_O[site.layer, site.head]
            else:
                final += change
        with torch.inference_mode():
            logits = final_logits(bridge, final, base["ln_final.hook_scale"] if "ln_final.hook_scale" in base else None)
        return metric_values(logits, i.metric, clean, corrupted)

    def writer(site: Site) -> Any:
        def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
            act = act.clone()
            act[site_index(site)] = value(site)[site_index(site)]
            return act

        return hook

    with torch.inference_mode():
        logits = bridge.run_with_hooks(
            corrupted if i.direction == "denoise" else clean, fwd_hooks=[(site.hook, writer(site)) for site in i.sites]
        )
    return metric_values(logits, i.metric, clean, corrupted)


def every_kind_of_intervention() -> list[Intervention]:
    """Every method, both directions and paths, position subsets, mixed first layers, both metrics,
    heads, their q/k/v inputs, MLPs and the residual stream (on a 3-layer model with MLPs)."""
    return [
        Intervention((head_site(0, 1),), "zero"),
        Intervention((head_site(2, 0),), "zero"),
        Intervention((head_site(1, 0),), "mean"),
        Intervention((Site("mlp", 1),), "mean"),
        Intervention((head_site(1, 1),), "resample", seed=3),
        Intervention((Site("mlp", 0, positions=(2, 5, 7)),), "resample", seed=5),
        Intervention((head_site(1, 0),), "patch"),
        Intervention((head_site(0, 1),), "patch", direction="denoise"),
        Intervention((head_site(2, 1),), "patch", metric="logit_diff", direction="denoise"),
        Intervention((head_site(1, 1),), "zero", metric="logit_diff"),
        Intervention((head_site(0, 0), head_site(2, 1)), "zero"),
        Intervention((Site("mlp", 0), Site("head", 1, 0, positions=(4, 9, 12))), "mean"),
        Intervention((Site("resid", 1, positions=(3, 4)),), "patch"),
        Intervention((Site("resid", 0),), "patch", direction="denoise", metric="logit_diff"),
        Intervention((head_site(0, 1), Site("resid", 2, positions=(5,))), "patch"),
        Intervention((Site("head_k", 1, 0),), "zero"),
        Intervention((Site("head_q", 2, 1, positions=(10, 11)),), "resample", seed=1),
        Intervention((Site("head_v", 2, 1),), "patch", direction="denoise"),
        Intervention((head_site(0, 0),), "zero", path="direct"),
        Intervention((Site("mlp", 1),), "mean", path="direct"),
        Intervention((head_site(2, 1),), "patch", metric="logit_diff", path="direct", direction="denoise"),
        Intervention((head_site(0, 1), Site("mlp", 1, positions=(1, 2))), "resample", seed=2, path="direct"),
        Intervention((head_site(1, 1),), "patch", path="direct", metric="logit_diff"),
    ]


@pytest.fixture(scope="module")
def mlp_model() -> Any:
    return boot_random(MLP_ARCH, seed=1)


@pytest.mark.parametrize("budget_bytes", [1, 3 * 4 * 6 * 18 * (2 * VOCAB + 16 * 32 + 2 * 2 * 18), 2**28],
                         ids=["one-copy-per-run", "three-copies-per-run", "default-budget"])
def test_stacked_runs_equal_one_naive_full_run_per_intervention(mlp_model, budget_bytes):
    clean, corrupted = pairs()
    interventions = every_kind_of_intervention()
    means = reference_means(mlp_model, clean, interventions)
    out = run_interventions(mlp_model, clean, interventions, corrupted=corrupted, means=means, budget_bytes=budget_bytes)
    for i in interventions:
        expected = naive_reading(mlp_model, clean, corrupted, i, means)
        np.testing.assert_allclose(out[i.key], expected, atol=1e-5, equal_nan=True, err_msg=i.key)
        assert np.isfinite(out[i.key][:, 1:]).mean() > 0.4, i.key  # not NaN everywhere (logit_diff is NaN on the repeat, where the tokens agree)


def test_every_head_of_a_rotary_model_resumes_and_stacks_exactly():
    bridge = boot_random(ROTARY_ARCH, seed=2)
    clean, corrupted = pairs(n=5, half=12, seed=1)
    interventions = [Intervention((head_site(layer, head),), method) for layer in range(4) for head in range(2) for method in ("zero", "mean")]
    means = reference_means(bridge, clean, interventions)
    out = run_interventions(bridge, clean, interventions, means=means)
    for i in interventions:
        np.testing.assert_allclose(out[i.key], naive_reading(bridge, clean, corrupted, i, means), atol=1e-5, equal_nan=True, err_msg=i.key)


def test_a_last_layer_heads_direct_effect_is_its_total_effect_without_layer_norm():
    """Ground truth for the direct path: with no layer norm and nothing after the last layer, the
    only path from a last-layer head to the logits is the direct one."""
    bridge = boot_random(NO_LN_ARCH, seed=3)
    clean, corrupted = pairs(seed=2)
    for method in ("zero", "patch"):
        total = Intervention((head_site(1, 0),), method)
        direct = Intervention((head_site(1, 0),), method, path="direct")
        out = run_interventions(bridge, clean, [total, direct], corrupted=corrupted)
        np.testing.assert_allclose(out[direct.key], out[total.key], atol=1e-5, equal_nan=True)
        assert np.nanmax(np.abs(out[total.key] - out[clean_key("logprob")])) > 1e-3  # the head does something
        # a first-layer head's total effect also flows through layer 1, which its direct effect leaves out
        early_total, early_direct = Intervention((head_site(0, 0),), method), Intervention((head_site(0, 0),), method, path="direct")
        early = run_interventions(bridge, clean, [early_total, early_direct], corrupted=corrupted)
        assert np.nanmax(np.abs(early[early_total.key] - early[early_direct.key])) > 1e-4


def test_the_clean_run_gives_the_hooks_and_logits_a_claim_reads(mlp_model):
    clean, _ = pairs()
    hooks = frozenset({"blocks.0.attn.hook_pattern", "blocks.2.hook_resid_pre"})
    out = run_interventions(mlp_model, clean, [Intervention((head_site(1, 0),), "zero")], hooks=hooks, logits=True)
    captured = capture(mlp_model, clean, Needs(hooks, logits=True))
    for name in (*hooks, "logits"):
        torch.testing.assert_close(out[name], captured[name])
    without = run_interventions(mlp_model, clean, [Intervention((head_site(1, 0),), "zero")])
    assert not any(isinstance(v, torch.Tensor) and v.shape[-1] == VOCAB for v in without.values())  # no logits kept


class _Counter:
    """Counts a bridge's runs from tokens and resumed runs, and the calls of block 0's wrapped module
    (its computation: the bridge's block itself is still called when it passes its input through)."""

    def __init__(self, bridge: Any, monkeypatch: Any):
        self.token_runs = self.block0_calls = 0
        self.starts: list[int] = []  # start_at_layer of each resumed run
        original = bridge.run_with_hooks

        def counted(inputs: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("start_at_layer") is None:
                self.token_runs += 1
            else:
                self.starts.append(kwargs["start_at_layer"])
            return original(inputs, *args, **kwargs)

        monkeypatch.setattr(bridge, "run_with_hooks", counted)
        bridge.blocks[0].original_component.register_forward_hook(lambda *a: setattr(self, "block0_calls", self.block0_calls + 1))


def test_interventions_from_one_layer_share_one_resumed_run_that_skips_the_blocks_below(monkeypatch):
    bridge = boot_random(ROTARY_ARCH, seed=4)
    clean, _ = pairs()
    interventions = [Intervention((head_site(1, h),), m) for h in range(2) for m in ("zero", "resample")]
    interventions += [Intervention((head_site(1, 0), head_site(3, 1)), "zero"), Intervention((Site("head_k", 1, 0),), "zero")]
    run_interventions(bridge, clean, interventions)  # the first resumed run checks skipping once
    counter = _Counter(bridge, monkeypatch)
    run_interventions(bridge, clean, interventions)
    assert counter.token_runs == 1  # the clean run, once
    # attention-only: a layer-1 head's output folds into the stream entering block 2; its key does not
    assert sorted(counter.starts) == [1, 2]
    assert counter.block0_calls == 1  # in the clean run only
    three_copies = 3 * runner._bytes_per_copy(bridge, tuple(clean.shape))
    counter.starts.clear()
    run_interventions(bridge, clean, interventions, budget_bytes=three_copies)
    assert sorted(counter.starts) == [1, 2, 2]  # from block 2: 5 interventions in stacks of 3 and 2


def test_with_mlps_a_heads_change_resumes_at_its_own_block(mlp_model, monkeypatch):
    clean, _ = pairs()
    interventions = [Intervention((head_site(1, 0),), "zero"), Intervention((head_site(2, 1),), "zero")]
    counter = _Counter(mlp_model, monkeypatch)
    run_interventions(mlp_model, clean, interventions)
    assert sorted(counter.starts) == [1, 2]


def test_the_engine_runs_the_clean_input_once_for_hooks_and_interventions(mlp_model, monkeypatch):
    from interp_checks.engine import _readings
    from interp_checks.inputs.generators import InputBatch

    clean, _ = pairs()
    counter = _Counter(mlp_model, monkeypatch)
    chunk = InputBatch(tokens=clean.numpy(), kind="repeated_random_tokens", params={}, seed=0)
    needs = Needs(frozenset({"blocks.1.attn.hook_pattern"}), interventions=(Intervention((head_site(1, 0),), "zero"),))
    out = _readings(mlp_model, chunk, needs, {}, {}, "cpu")
    assert counter.token_runs == 1
    assert "blocks.1.attn.hook_pattern" in out and clean_key("logprob") in out


def test_skipping_the_lower_blocks_is_exact_on_a_huggingface_gpt2(tmp_path):
    from interp_checks.models.load import load_model
    from interp_checks.models.spec import parse_model_spec
    from tests.helpers import tiny_models

    folder = tiny_models.write_tiny_hf_gpt2(tmp_path / "gpt2", n_layer=3, n_head=2, n_embd=32, vocab_size=300)
    bridge = load_model(parse_model_spec(f"hf:{folder}")).bridge
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(1, 250, (4, 14), generator=g)
    corrupted = torch.randint(1, 250, (4, 14), generator=g)
    interventions = [Intervention((head_site(l, h),), "patch") for l in (1, 2) for h in range(2)]
    with _no_warning():
        out = run_interventions(bridge, clean, interventions, corrupted=corrupted)
    for i in interventions:
        np.testing.assert_allclose(out[i.key], naive_reading(bridge, clean, corrupted, i, {}), atol=1e-5, equal_nan=True, err_msg=i.key)


class _no_warning:
    """Fails if the block that skips lower blocks had to fall back (it warns when it does)."""

    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self._seen = self._catch.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc: Any) -> None:
        self._catch.__exit__(*exc)
        fallbacks = [w for w in self._seen if "skipping the blocks" in str(w.message)]
        assert not fallbacks, fallbacks[0].message
