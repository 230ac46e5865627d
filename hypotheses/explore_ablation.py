"""Exploration run for the bundled ablation claims (``hypotheses/ablation_attn_only_{2l,3l,4l}.claims.yaml``).

The claims are written from what this script prints and are then judged on data it never reads:

- repeated random tokens: this script uses input seed 100; the claim files use seed 0;
- stdlib text: this script reads the ``discovery`` half of the held-out documents; the claim files
  read the ``confirmation`` half (disjoint documents, by a salted hash of the name: see
  ``inputs.corpora``). Held-out, not train, on both sides so the claims are about text the zoo
  never trained on, and exploration and confirmation sample the same distribution.

Usage::

    python hypotheses/explore_ablation.py [--models 2l 3l 4l] [--n 32]

For every head of each model (each ablated alone, method mean, as in the claims) it prints the
total and the direct effect on next-token loss (nats per token: mean over sequences of the
per-sequence mean over tokens, with the 90% BCa interval), on the repeat half of repeated random
tokens and on every token of 700-character text windows, and each head's induction score. Every
number is the harness's own: the script runs ``ablation`` and ``induction_head`` claims through
the engine with wide expectations and reads the per-head estimates.

Decision rules (fixed before the first run):

- "the heads that matter most": the heads whose exploration lower bound exceeds the next head's
  upper bound are named; a rank claim ``rank <= k`` is stated for a head only if its lower bound
  is above the (k+1)-th head's upper bound on exploration data;
- a threshold claim ``loss_increase >= X`` uses X at most half the exploration estimate;
- "no head outside S raises the loss by more than X": X is at least twice the largest exploration
  upper bound outside S;
- a "matters though not an induction head" claim needs an exploration loss increase >= 0.1 and an
  induction score below 0.2;
- deliberately false twins sit far outside the exploration intervals.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Engine, Settings

INPUTS = {
    "repeat": ({"kind": "repeated_random_tokens", "seq_len": 32}, {"region": "repeat"}, 100),
    "text": ({"kind": "corpus", "source": "stdlib", "split": "discovery", "chars": 700}, None, 0),
}


def spec(model: str, check: str, inputs: dict, seed: int, expect: dict, **params) -> ClaimSpec:
    return ClaimSpec(
        id=f"explore-{check}", path=Path("hypotheses/explore.claims.yaml"), index=0, check=check, model=model,
        inputs=inputs, expect={k: parse_expectation(v) for k, v in expect.items()}, params=params, seed=seed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["2l", "3l", "4l"])
    parser.add_argument("--n", type=int, default=32)
    args = parser.parse_args()
    engine = Engine(Settings(null_draws=1, n_resamples=999))
    for size in args.models:
        model = f"zoo:attn-only-{size}"
        started = time.perf_counter()
        [scores] = engine.evaluate([spec(model, "induction_head", {"kind": "repeated_random_tokens", "seq_len": 32, "n": args.n}, 100, {"max_score": ">= 0"}, heads=_all_heads(engine, model))])
        induction = {m["member"]: m["estimate"] for m in scores.expectations[0].evaluation.members}
        for label, (inputs, where, seed) in INPUTS.items():
            inputs = dict(inputs, n=args.n)
            claims = [
                spec(model, "ablation", inputs, seed, {"max_loss_increase": ">= 0"}, heads="all", where=where),
            ]
            [total] = engine.evaluate(claims)
            if total.error:
                raise SystemExit(total.error)
            direct = _direct_means(total.notes)
            print(f"\n{model}, {label} ({inputs}, seed {seed}, where {where}), n = {total.n}:")
            print(f"  {'head':6} {'total':>8} {'90% interval':>18} {'direct':>8} {'induction':>9}")
            rows = sorted(total.expectations[0].evaluation.members, key=lambda m: -m["estimate"])
            for m in rows:
                low, high = m["ci"]
                print(f"  {m['member']:6} {m['estimate']:8.3f} [{low:7.3f}, {high:7.3f}] {direct.get(m['member'], float('nan')):8.3f} {induction[m['member']]:9.3f}")
        print(f"  ({time.perf_counter() - started:.1f} s)")


def _all_heads(engine: Engine, model: str) -> list[str]:
    from interp_checks.models.spec import parse_model_spec

    loaded = engine.models.get(parse_model_spec(model), "cpu")
    return [f"L{l}H{h}" for l in range(loaded.n_layers) for h in range(loaded.n_heads)]


def _direct_means(notes: list[str]) -> dict[str, float]:
    """Each head's direct effect, from the check's note (all heads: the note lists at most 8)."""
    out = {}
    for note in notes:
        if note.startswith("direct effect beside total effect"):
            for part in note.split(": ", 1)[1].split(". Direct")[0].split("; "):
                name, rest = part.split(" total ")
                out[name] = float(rest.split("direct ")[1])
    return out


if __name__ == "__main__":
    main()
