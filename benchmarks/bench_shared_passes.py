"""How much the engine's planning saves over the naive way, in one run.

Naive: each claim runs its own forward pass on the model and on each random-weights twin (the
engine's default of 5 null draws) with
``run_with_cache()`` and no filter (every hook cached, through the unembedding).
Engine: claims on the same model and inputs share one pass per model, caching only the hooks they
need (``capture`` with the union of their hooks) and stopping once the last one has fired.

Both produce the same per-sequence scores (checked below); the script prints the wall time of the
activation phase of each and their ratio. Usage::

    python benchmarks/bench_shared_passes.py [--model zoo:attn-only-2l] [--claims 12] [--n 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from interp_checks.checks.base import get_check
from interp_checks.claims.expect import parse_expectation
from interp_checks.runner import capture
from interp_checks.checks.base import ModelShape, Needs
from interp_checks.inputs.generators import Vocabulary, generate
from interp_checks.models.cache import ModelCache
from interp_checks.models.spec import parse_model_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="zoo:attn-only-2l")
    parser.add_argument("--claims", type=int, default=12, help="head-role claims, spread over heads and roles")
    parser.add_argument("--n", type=int, default=256, help="sequences")
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--null-draws", type=int, default=5, help="random-weights twins, as --interp-null-draws")
    args = parser.parse_args()
    torch.set_num_threads(2)

    models = ModelCache()
    spec = parse_model_spec(args.model)
    model = models.get(spec, "cpu")
    twins = [models.random_twin(spec, "cpu", seed) for seed in range(args.null_draws)]
    shape = ModelShape(model.n_layers, model.n_heads, model.d_vocab, model.n_ctx)
    roles = ["induction_head", "previous_token_head", "duplicate_token_head"]
    heads = [(layer, head) for layer in range(shape.n_layers) for head in range(shape.n_heads)]
    claims = []
    for i in range(args.claims):
        check = get_check(roles[i % len(roles)])
        layer, head = heads[i % len(heads)]
        expect = {"score": parse_expectation(">= 0.4")}
        claims.append((check, check.prepare({"head": f"L{layer}H{head}"}, {"model": shape}, expect)))
    vocab = Vocabulary(model.d_vocab, model.n_ctx, model.bos_token_id, frozenset(model.special_token_ids))
    batch = generate({"kind": "repeated_random_tokens", "seq_len": args.seq_len, "n": args.n}, vocab, seed=0)
    tokens = torch.as_tensor(batch.tokens)

    def naive() -> list[np.ndarray]:
        out = []
        with torch.inference_mode():
            for check, prepared in claims:
                _, cache = model.bridge.run_with_cache(tokens)
                out.append(check.measure(prepared, {"model": cache}, {"model": batch})["score"])
                for twin in twins:
                    _, null_cache = twin.bridge.run_with_cache(tokens)
                    check.measure_null(prepared, null_cache, batch)
        return out

    def planned() -> list[np.ndarray]:
        needs = Needs(frozenset().union(*(p.needs["model"].hooks for _, p in claims)))
        null_needs = Needs(frozenset().union(*(p.null_needs.hooks for _, p in claims)))
        acts = capture(model.bridge, tokens, needs)
        out = [check.measure(prepared, {"model": acts}, {"model": batch})["score"] for check, prepared in claims]
        for twin in twins:
            null_acts = capture(twin.bridge, tokens, null_needs)
            for check, prepared in claims:
                check.measure_null(prepared, null_acts, batch)
        return out

    for a, b in zip(naive(), planned()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    def best_of(fn) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    t_naive, t_planned = best_of(naive), best_of(planned)
    print(f"model {spec} ({shape.n_layers} layers, d_vocab {shape.d_vocab}), {args.claims} head-role claims, "
          f"{args.n} sequences of {tokens.shape[1]} tokens, torch threads {torch.get_num_threads()}, best of {args.repeats}")
    print(f"naive (a full cached pass per claim, model + {args.null_draws} twins): {t_naive:.3f} s")
    print(f"engine (one shared pass per model, needed hooks only, early stop): {t_planned:.3f} s")
    print(f"speed-up: {t_naive / t_planned:.1f}x")


if __name__ == "__main__":
    main()
