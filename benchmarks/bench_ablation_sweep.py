"""Sweeping every head with an ablation: the naive per-head loop against the engine's path, in one run.

Per sequence, the change in loss (mean over the sequence's predicted tokens of -log p of the next
token) when one head's output (``hook_z``, its slice) is replaced, for every head of the model:

* naive: one clean ``run_with_hooks`` and one full ``run_with_hooks`` from the tokens per head;
* engine: ``runner.run_interventions`` with all heads' interventions, as ``Engine`` calls it on a
  chunk: one clean run, then per first changed layer stacked copies of the chunk resumed from the
  cached residual stream (the blocks below not run), logits reduced to log-probs per stacked run.

Both give the same per-sequence numbers (asserted to 1e-5); the script prints the wall time of each
(best of ``--repeats``) and their ratio, for ``zero`` and ``mean`` ablation, on repeated random
tokens and on held-out stdlib text. ``mean`` replaces a head's output with its per-position mean
over the same inputs; computing that mean is one more pass, timed apart (naive: ``run_with_cache``
of the heads' ``hook_z``; engine: ``engine._reference_means``, which stops after the last layer
needed). It also times what resuming saves (one head in the first vs the last layer, and
TransformerLens's own ``start_at_layer``, which runs the lower blocks anyway), the direct-effect
sweep (no block at all), and, with ``--budgets``, the sweep under several stack budgets.

Usage::

    python benchmarks/bench_ablation_sweep.py [--model zoo:attn-only-4l] [--n 64] [--seq-len 32] [--chars 700] [--repeats 3] [--budgets]
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import numpy as np
import torch

from interp_checks.checks.base import Needs
from interp_checks.engine import _reference_means
from interp_checks.inputs.generators import InputBatch, Vocabulary, generate
from interp_checks.interventions import Intervention, clean_key, head_site
from interp_checks.models.cache import ModelCache
from interp_checks.models.spec import parse_model_spec
from interp_checks import runner
from interp_checks.runner import next_token_logprobs, run_interventions


def loss_change(ablated: np.ndarray, clean: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per sequence: mean over its predicted, unpadded tokens of the rise in -log p."""
    mask = valid.copy()
    mask[:, 0] = False  # position 0 predicts nothing
    change = np.where(mask, -(ablated - clean), 0.0)
    return change.sum(1) / mask.sum(1)


def naive_sweep(bridge: Any, tokens: torch.Tensor, valid: np.ndarray, heads: list[tuple[int, int]], method: str, means: dict) -> np.ndarray:
    """[head, n]: one full run per head, the head's slice of hook_z overwritten in a hook."""
    with torch.inference_mode():
        clean = next_token_logprobs(bridge.run_with_hooks(tokens, fwd_hooks=[]), tokens)
        out = []
        for layer, head in heads:
            hook = f"blocks.{layer}.attn.hook_z"

            def ablate(z: torch.Tensor, hook: Any, head: int = head, name: str = hook) -> torch.Tensor:
                z = z.clone()
                z[:, :, head] = 0.0 if method == "zero" else means[name][: z.shape[1], head]
                return z

            logits = bridge.run_with_hooks(tokens, fwd_hooks=[(hook, ablate)])
            out.append(loss_change(next_token_logprobs(logits, tokens), clean, valid))
            del logits
    return np.stack(out)


def engine_sweep(bridge: Any, tokens: torch.Tensor, valid: np.ndarray, heads: list[tuple[int, int]], method: str, means: dict, **kwargs: Any) -> np.ndarray:
    """[head, n]: the same through ``run_interventions`` (what the engine runs on one chunk)."""
    interventions = [Intervention((head_site(layer, head),), method) for layer, head in heads]
    readings = run_interventions(bridge, tokens, interventions, means=means, **kwargs)
    clean = readings[clean_key("logprob")]
    return np.stack([loss_change(readings[i.key], clean, valid) for i in interventions])


def naive_means(bridge: Any, tokens: torch.Tensor, valid: np.ndarray, layers: list[int]) -> dict[str, torch.Tensor]:
    """Per-position mean of each layer's hook_z over the unpadded sequences, from ``run_with_cache``."""
    names = {f"blocks.{layer}.attn.hook_z" for layer in layers}
    with torch.inference_mode():
        _, cache = bridge.run_with_cache(tokens, names_filter=lambda name: name in names)
    weight = torch.as_tensor(valid, dtype=torch.float32)[:, :, None, None]
    return {name: (cache[name] * weight).sum(0) / weight.sum(0).clamp(min=1) for name in names}


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """(fastest wall time of ``repeats`` calls, the last result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def bench_inputs(name: str, bridge: Any, batch: InputBatch, heads: list[tuple[int, int]], repeats: int) -> None:
    tokens = torch.as_tensor(batch.tokens)
    valid = batch.valid if batch.valid is not None else np.ones(batch.tokens.shape, dtype=bool)
    layers = sorted({layer for layer, _ in heads})
    print(f"\n== {name}: {tokens.shape[0]} sequences x {tokens.shape[1]} tokens ({int(valid.sum())} unpadded), "
          f"{len(heads)} heads, best of {repeats}")
    t_naive_means, reference_naive = best_of(repeats, lambda: naive_means(bridge, tokens, valid, layers))
    needs = Needs(frozenset(), interventions=tuple(Intervention((head_site(l, h),), "mean") for l, h in heads))
    t_engine_means, reference = best_of(repeats, lambda: _reference_means(bridge, batch, needs, tokens.shape[0], "cpu"))
    for hook in reference:
        torch.testing.assert_close(reference[hook], reference_naive[hook], atol=1e-5, rtol=1e-5)
    for method in ("zero", "mean"):
        t_naive, naive = best_of(repeats, lambda: naive_sweep(bridge, tokens, valid, heads, method, reference_naive))
        t_engine, engine = best_of(repeats, lambda: engine_sweep(bridge, tokens, valid, heads, method, reference))
        np.testing.assert_allclose(engine, naive, atol=1e-5, rtol=0)
        top = np.argsort(-naive.mean(1))[:3]
        print(f"{method:>4} ablation, per-sequence loss change: naive {t_naive:.2f} s, engine {t_engine:.2f} s, "
              f"speed-up {t_naive / t_engine:.1f}x (max |difference| {np.abs(engine - naive).max():.1e}; "
              f"largest mean rises: {', '.join(f'L{heads[k][0]}H{heads[k][1]} {naive[k].mean():+.3f}' for k in top)} nats)")
    print(f"mean ablation's reference pass: naive run_with_cache {t_naive_means:.2f} s, engine _reference_means {t_engine_means:.2f} s "
          f"(the engine's sweep above excludes it; one clean pass that stops after layer {max(layers)})")
    direct = [Intervention((head_site(l, h),), "zero", path="direct") for l, h in heads]
    t_direct, _ = best_of(repeats, lambda: run_interventions(bridge, tokens, direct))
    print(f"direct effects of every head (zero, no block run, one stacked unembedding): {t_direct:.2f} s including the clean run")


def bench_resuming(bridge: Any, tokens: torch.Tensor, repeats: int) -> None:
    """What resuming at a layer costs, with and without running the lower blocks."""
    n_layers = bridge.cfg.n_layers
    with torch.inference_mode():
        _, cache = bridge.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_resid_pre"))
    print(f"\n== resuming ({tokens.shape[0]} x {tokens.shape[1]} tokens, best of {repeats})")
    t_full, _ = best_of(repeats, lambda: bridge.run_with_hooks(tokens, fwd_hooks=[]))
    print(f"full forward from tokens: {t_full:.3f} s")
    runner._skipping_is_exact(bridge, cache["blocks.1.hook_resid_pre"], 1)  # the once-per-bridge check, not timed
    for layer in (0, n_layers - 1):
        resid = cache[f"blocks.{layer}.hook_resid_pre"]
        with torch.inference_mode():
            t_tl, _ = best_of(repeats, lambda: bridge.run_with_hooks(resid, start_at_layer=layer, fwd_hooks=[]))
        t_ours, _ = best_of(repeats, lambda: runner._resumed_forward(bridge, resid, layer, []))
        print(f"resume at layer {layer}: TransformerLens start_at_layer {t_tl:.3f} s, lower blocks skipped {t_ours:.3f} s")
    for layer in (0, n_layers - 1):
        one = [Intervention((head_site(layer, 0),), "zero")]
        t_one, _ = best_of(repeats, lambda: run_interventions(bridge, tokens, one))
        print(f"run_interventions, one head in layer {layer} (clean run included): {t_one:.3f} s")


def bench_budgets(bridge: Any, batch: InputBatch, heads: list[tuple[int, int]], repeats: int) -> None:
    tokens = torch.as_tensor(batch.tokens)
    valid = np.ones(batch.tokens.shape, dtype=bool)
    per_copy = runner._bytes_per_copy(bridge, tuple(tokens.shape))
    print(f"\n== stack budget (one copy of the chunk is estimated at {per_copy / 2**20:.0f} MiB)")
    for copies in (1, 2, 4, 8, 16):
        budget = copies * per_copy
        t, _ = best_of(repeats, lambda: engine_sweep(bridge, tokens, valid, heads, "zero", {}, budget_bytes=budget))
        print(f"{copies:>2} copies per stacked run ({budget / 2**20:.0f} MiB): zero-ablation sweep {t:.2f} s")
    print(f"default budget {runner.STACK_BUDGET_BYTES / 2**20:.0f} MiB = {runner._copies_per_stack(bridge, tuple(tokens.shape), runner.STACK_BUDGET_BYTES)} copies")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="zoo:attn-only-4l")
    parser.add_argument("--n", type=int, default=64, help="sequences (one engine chunk at the default batch size)")
    parser.add_argument("--seq-len", type=int, default=32, help="repeated random tokens: half length (BOS + 2 x seq-len tokens)")
    parser.add_argument("--chars", type=int, default=700, help="text: characters per held-out stdlib window (as the bundled claims)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budgets", action="store_true", help="also time the sweep under several stack budgets")
    args = parser.parse_args()
    torch.set_num_threads(2)

    spec = parse_model_spec(args.model)
    model = ModelCache().get(spec, "cpu")
    bridge = model.bridge
    heads = [(layer, head) for layer in range(model.n_layers) for head in range(model.n_heads)]
    vocab = Vocabulary(model.d_vocab, model.n_ctx, model.bos_token_id, frozenset(model.special_token_ids), model.tokenizer)
    repeated = generate({"kind": "repeated_random_tokens", "seq_len": args.seq_len, "n": args.n}, vocab, seed=0)
    text = generate({"kind": "corpus", "source": "stdlib", "split": "heldout", "n": args.n, "chars": args.chars}, vocab, seed=0)
    print(f"model {spec} ({model.n_layers} layers x {model.n_heads} heads, d_vocab {model.d_vocab}), torch threads {torch.get_num_threads()}")
    bench_inputs("repeated random tokens", bridge, repeated, heads, args.repeats)
    bench_inputs("held-out stdlib text (corpus)", bridge, text, heads, args.repeats)
    bench_resuming(bridge, torch.as_tensor(repeated.tokens), args.repeats)
    if args.budgets:
        bench_budgets(bridge, repeated, heads, args.repeats)


if __name__ == "__main__":
    main()
