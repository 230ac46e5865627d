"""The engine's intervention and weight seams, through test-only checks: what a check declares as
data (interventions, weights) reaches it measured exactly as a naive ``run_with_hooks`` would."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import pytest
import torch

from interp_checks.checks.base import MODEL, Needs, Prepared, register
from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Engine, Settings
from interp_checks.inputs.generators import Vocabulary, generate
from interp_checks.interventions import Intervention, Site, clean_key, head_site
from interp_checks.models.native import boot_random, save_native
from interp_checks.runner import next_token_logprobs, run_interventions

ARCH = dict(d_model=32, n_layers=3, n_heads=2, d_head=16, n_ctx=80, d_vocab=50, attn_only=True, normalization_type="LN", act_fn="gelu")
SEEN: dict[str, Any] = {}


class _AblateOne:
    """Test-only: per sequence, the mean change in log-prob when one head is zero-ablated."""

    name: ClassVar[str] = "_test_ablate_one"
    description: ClassVar[str] = "test only"
    statistics: ClassVar[tuple[str, ...]] = ("drop",)
    params: ClassVar[tuple[str, ...]] = ("layer", "head", "method")
    model_roles: ClassVar[tuple[str, ...]] = ()
    default_inputs: ClassVar[Mapping[str, Any] | None] = None

    def prepare(self, params, shapes, expect):
        intervention = Intervention((head_site(params["layer"], params["head"]),), params.get("method", "zero"))
        needs = Needs(frozenset(), interventions=(intervention,))
        return Prepared(needs={MODEL: needs}, null_needs=needs, statistics=["drop"], state={"i": intervention})

    def _drop(self, prepared, readings):
        change = np.asarray(readings[prepared.state["i"].key]) - np.asarray(readings[clean_key("logprob")])
        return np.nanmean(change[:, 1:], axis=1)

    def measure(self, prepared, activations, batches):
        SEEN.setdefault("chunks", []).append(activations[MODEL])
        return {"drop": self._drop(prepared, activations[MODEL])}

    def measure_null(self, prepared, activations, batch):
        return self._drop(prepared, activations)

    def null_description(self, prepared):
        return "random twin"


class _WeightNorm:
    """Test-only weight statistic: the Frobenius norm of one head's W_O."""

    name: ClassVar[str] = "_test_weight_norm"
    description: ClassVar[str] = "test only"
    statistics: ClassVar[tuple[str, ...]] = ("norm",)
    params: ClassVar[tuple[str, ...]] = ()
    model_roles: ClassVar[tuple[str, ...]] = ()
    default_inputs: ClassVar[Mapping[str, Any] | None] = {"kind": "random_tokens", "n": 2, "seq_len": 4}

    def prepare(self, params, shapes, expect):
        needs = Needs(frozenset(), weights=frozenset({"W_O"}))
        return Prepared(needs={MODEL: needs}, null_needs=needs, statistics=["norm"], sampling="weights", weight_null_draws=30)

    def measure(self, prepared, activations, batches):
        return {"norm": float(torch.linalg.norm(activations[MODEL]["W_O"][1, 0]))}

    def measure_null(self, prepared, activations, batch):
        return float(torch.linalg.norm(activations["W_O"][1, 0]))

    def null_description(self, prepared):
        return "the same norm on random-weights twins"


@pytest.fixture(scope="module", autouse=True)
def test_checks():
    """The test-only checks exist only while this module runs (other tests list every check)."""
    from interp_checks.checks import base

    checks = [register(_AblateOne()), register(_WeightNorm())]
    yield
    for check in checks:
        base._REGISTRY.pop(check.name, None)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("seam") / "m"
    save_native(boot_random(ARCH, seed=1), folder)
    return folder


def claim(model_dir: Path, check: str, expect: dict, inputs: dict | None = None, **params) -> ClaimSpec:
    return ClaimSpec(
        id=check, path=model_dir.parent / "x.claims.yaml", index=0, check=check, model=f"native:{model_dir}",
        inputs=inputs or {}, expect={k: parse_expectation(v) for k, v in expect.items()}, params=params,
    )


def naive_drop(bridge, tokens: torch.Tensor, layer: int, head: int) -> np.ndarray:
    def zero(z, hook):
        z = z.clone()
        z[:, :, head] = 0.0
        return z

    with torch.inference_mode():
        clean = next_token_logprobs(bridge(tokens), tokens)
        ablated = next_token_logprobs(bridge.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", zero)]), tokens)
    return np.nanmean((ablated - clean)[:, 1:], axis=1)


def test_an_intervention_reaches_the_check_as_a_naive_run_would_measure_it(model_dir):
    from interp_checks.models.native import load_native

    SEEN.clear()
    inputs = {"kind": "repeated_random_tokens", "seq_len": 8, "n": 20}
    engine = Engine(Settings(n_resamples=199, batch_size=8, null_draws=2))
    [result] = engine.evaluate([claim(model_dir, "_test_ablate_one", {"drop": "< 0"}, inputs, layer=1, head=0)])
    assert result.outcome != "error", result.error
    bridge = load_native(model_dir)
    batch = generate(inputs | {"bos": True}, Vocabulary(50, 80, None, frozenset(), None), 0)
    expected = naive_drop(bridge, torch.as_tensor(batch.tokens), 1, 0)
    measured = result.expectations[0].evaluation.estimate
    assert measured == pytest.approx(float(expected.mean()), abs=1e-5)
    assert len(SEEN["chunks"]) == 3  # 20 sequences in chunks of 8


def test_resumed_runs_equal_full_runs_for_every_method(model_dir):
    from interp_checks.models.native import load_native

    bridge = load_native(model_dir)
    g = torch.Generator().manual_seed(0)
    half = torch.randint(1, 50, (6, 10), generator=g)
    clean = torch.cat([half, half], 1)
    corrupted = torch.cat([torch.randint(1, 50, (6, 10), generator=g), half], 1)
    site = Site("head", 2, 1)
    for intervention in (Intervention((site,), "zero"), Intervention((site,), "patch"), Intervention((site,), "resample", seed=4)):
        out = run_interventions(bridge, clean, [intervention], corrupted=corrupted)
        _, cache = bridge.run_with_cache(corrupted)
        _, clean_cache = bridge.run_with_cache(clean)
        from interp_checks.runner import derangement

        perm = torch.as_tensor(derangement(6, 4))

        def replace(z, hook):
            z = z.clone()
            if intervention.method == "zero":
                z[:, :, 1] = 0
            elif intervention.method == "patch":
                z[:, :, 1] = cache["blocks.2.attn.hook_z"][:, :, 1]
            else:
                z[:, :, 1] = clean_cache["blocks.2.attn.hook_z"][perm][:, :, 1]
            return z

        with torch.inference_mode():
            expected = next_token_logprobs(bridge.run_with_hooks(clean, fwd_hooks=[("blocks.2.attn.hook_z", replace)]), clean)
        np.testing.assert_allclose(out[intervention.key], expected, atol=1e-5, equal_nan=True)


def test_a_weight_statistic_is_judged_against_its_draws_without_running_inputs(model_dir, monkeypatch):
    from interp_checks import engine as engine_module

    monkeypatch.setattr(engine_module, "capture", lambda *a, **k: pytest.fail("a weight statistic ran the model"))
    engine = Engine(Settings(n_resamples=499, null_draws=2))
    [result] = engine.evaluate([claim(model_dir, "_test_weight_norm", {"norm": "> 3"})])
    assert result.outcome != "error", result.error
    evaluation = result.expectations[0].evaluation
    assert evaluation.n == 30 and evaluation.null_draws == 30
    assert "empirical upper-tail p" in evaluation.note


def test_an_intervention_over_several_layers_lets_the_earlier_change_reach_the_kept_heads(model_dir):
    """Ablating a layer-0 head and a layer-2 head together must change what the kept heads of layers
    1 and 2 compute (they read the changed residual stream): the same as a naive run with both hooks."""
    from interp_checks.models.native import load_native

    bridge = load_native(model_dir)
    clean = torch.randint(1, 50, (5, 12), generator=torch.Generator().manual_seed(3))
    intervention = Intervention((Site("head", 0, 0), Site("head", 2, 1)), "zero")
    out = run_interventions(bridge, clean, [intervention])

    def zero(head):
        def hook(z, hook):
            z = z.clone()
            z[:, :, head] = 0.0
            return z

        return hook

    with torch.inference_mode():
        logits = bridge.run_with_hooks(clean, fwd_hooks=[("blocks.0.attn.hook_z", zero(0)), ("blocks.2.attn.hook_z", zero(1))])
    np.testing.assert_allclose(out[intervention.key], next_token_logprobs(logits, clean), atol=1e-5, equal_nan=True)
