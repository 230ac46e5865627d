"""Series claims: what sharing a checkpoint walk saves, against the naive way, in one run.

Three claims on the 2L zoo series (14 checkpoints): the induction phase change, the ICL phase
change, and their coincidence (which reads both again). Prints:

* loading: every checkpoint loaded as a new model (``load_checkpoint``, what a loop over
  ``native:`` specs does) against one model per run with each checkpoint's weights copied in
  (``CheckpointWalker``);
* measuring: the three claims evaluated together (one walk, each input set run once per checkpoint
  for every reading on it) against one at a time.

    python benchmarks/bench_series.py [--threads 1] [--resamples 999]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERIES = ROOT / "fixtures" / "series" / "attn-only-2l"


def claims() -> list:
    from interp_checks.claims.expect import parse_expectation
    from interp_checks.claims.schema import ClaimSpec

    rep = {"kind": "repeated_random_tokens", "seq_len": 32, "n": 64}
    induction = {"check": "induction_head", "statistic": "max_score", "layer": 1, "inputs": rep}
    icl = {"check": "loss", "statistic": "icl_score", "early": 5, "late": 40, "inputs": rep}

    def spec(name: str, check: str, expect: dict, **params) -> ClaimSpec:
        return ClaimSpec(id=name, path=ROOT / "bench.claims.yaml", index=0, check=check, model=f"series:{SERIES}", inputs={},
                         expect={k: parse_expectation(v) for k, v in expect.items()}, params=params)

    return [
        spec("induction", "phase_change", {"midpoint": "between 600 900"}, reading=induction),
        spec("icl", "phase_change", {"midpoint": "between 600 900"}, reading=icl, direction="down"),
        spec("together", "coincide", {"gap": "<= 75"},
             first={"check": "phase_change", "statistic": "midpoint", "reading": induction},
             second={"check": "phase_change", "statistic": "midpoint", "reading": icl, "direction": "down"}),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resamples", type=int, default=999)
    args = parser.parse_args()
    import torch

    from interp_checks.engine import Engine, Settings
    from interp_checks.models.series import CheckpointWalker, load_checkpoint, read_series

    torch.set_num_threads(args.threads)
    run = read_series(SERIES)
    load_checkpoint(run, run.checkpoints[0], "cpu")  # imports and TransformerLens set-up, outside both timings
    start = time.perf_counter()
    for checkpoint in run.checkpoints:
        load_checkpoint(run, checkpoint, "cpu")
    fresh = time.perf_counter() - start
    start = time.perf_counter()
    for _ in CheckpointWalker(run, "cpu"):
        pass
    walked = time.perf_counter() - start
    print(f"loading {len(run.checkpoints)} checkpoints: each as a new model {fresh:.2f} s, weights copied into one model {walked:.2f} s ({fresh / walked:.1f}x)")

    settings = Settings(n_resamples=args.resamples)
    Engine(settings).evaluate(claims()[:1])  # warm imports and caches before timing
    start = time.perf_counter()
    for claim in claims():
        Engine(settings).evaluate([claim])
    apart = time.perf_counter() - start
    start = time.perf_counter()
    together = Engine(settings).evaluate(claims())
    shared = time.perf_counter() - start
    assert all(r.outcome == "supported" for r in together), [(r.spec.id, r.outcome, r.error) for r in together]
    print(f"3 claims (4 readings of 2 input sets) at {args.resamples} resamples: one at a time {apart:.2f} s, "
          f"together {shared:.2f} s ({apart / shared:.1f}x); {args.threads} thread(s)")


if __name__ == "__main__":
    main()
