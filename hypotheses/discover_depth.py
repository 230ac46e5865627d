"""Discovery run for the depth comparisons (2L vs 1L, 3L vs 2L, 4L vs 3L), on the discovery half.

The claims in ``hypotheses/compare_*.claims.yaml`` are written from what this script prints and
from nothing else: they sample the *confirmation* half of the held-out stdlib documents (and input
seed 0 for random tokens), which this script never reads. Usage::

    python hypotheses/discover_depth.py [--seeds 100 101 102] [--n 64] [--resamples 9999]

What it measures, per pair (model over baseline; per-token gains floored at -5 nats, averaged per
sequence, exactly as the ``logprob_gain`` check does, because it *is* that check run by the
harness's engine on claims with the wide expectation ``> 0`` so every number is the engine's own):

- ``text``: every token of a 700-character window of held-out (discovery) stdlib text;
- ``first``: tokens seen for the first time in the window (``where: {seen_before: false}``);
- ``induction``: induction-like tokens (``where: {pattern: induction_like}``);
- ``random``: the repeated half of repeated random token sequences (seq_len 64);
- ``span`` (2L vs 1L only): the copy of a span of real text planted again later in the text.

Text comes from ``split: discovery``; every measurement is repeated for each discovery seed
(100, 101, 102 by default; the bundled claims use 0 and the stability test 1, 2, 3, so random
tokens are fresh too). For each it prints the window-level estimate, its 90% BCa interval, the
one-sided p of "gain > 0" and "gain < 0" (unadjusted), Cohen's d_z and n; and, for text, the same
at the *document* level: windows are grouped by the document they were cut from (20
discovery documents, so the 64 windows are ~3 per document and not independent), and a t-test
runs over the documents' mean gains. A finding that holds only window by window and not document
by document is about these few documents, not about stdlib text.

Decision rules, fixed before this script was first run (see the commit that added it):

- a directional claim (``> 0`` or ``< 0``) is stated when, on every discovery seed, the window-level
  one-sided p is below 5e-4 (it would survive the suite's Holm adjustment over ~70 expectations) and,
  for text, the document-level one-sided p is below 0.01;
- a quantitative claim (``>= X``) uses the largest X among 0.1, 0.2, 0.5, 1, 2 that is at most half
  of the smallest discovery estimate and below every document-level 90% lower bound;
- an equivalence claim uses a margin of 0.1 nats per token, fixed in advance (not fitted to an
  estimate), and is stated only if every discovery seed's 90% interval lies within +-0.05 (half the
  margin, leaving room for the confirmation sample) and the document-level interval within +-0.1;
- a deliberately false claim (``expected: refuted``) is kept only if the claimed value lies far
  outside every discovery interval (at least 5 interval half-widths away);
- anything else is not a finding: no claim, and the claim file's header says so.
- confirmation sizes: n so that the expected t (discovery d_z times sqrt(n)) is at least 6, in
  multiples of 64, at most 256.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

from interp_checks.checks.base import MODEL
from interp_checks.claims.schema import load_claim_file
from interp_checks.engine import Engine, Settings
from interp_checks.inputs.corpora import filter_split, stdlib_documents

PAIRS = (
    ("zoo:attn-only-2l", "zoo:attn-only-1l"),
    ("zoo:attn-only-3l", "zoo:attn-only-2l"),
    ("zoo:attn-only-4l", "zoo:attn-only-3l"),
)
SPLIT = "discovery"


def measurements(n: int) -> dict[str, dict]:
    text = {"kind": "corpus", "source": "stdlib", "split": SPLIT, "n": n, "chars": 700}
    return {
        "text": {"inputs": text},
        "first": {"inputs": text, "where": {"seen_before": False}},
        "induction": {"inputs": text, "where": {"pattern": "induction_like"}},
        "random": {"inputs": {"kind": "repeated_random_tokens", "seq_len": 64, "n": 128}, "where": {"region": "repeat"}},
        "span": {"inputs": {"kind": "repeated_span_text", "source": "stdlib", "split": SPLIT, "n": n}, "where": {"region": "repeat"}},
    }


def claim_file(folder: Path, seed: int, n: int) -> Path:
    """One claim file with every measurement of every pair, each expecting ``> 0`` (only to get the numbers)."""
    claims = []
    for model, baseline in PAIRS:
        for name, spec in measurements(n).items():
            if name == "span" and model != "zoo:attn-only-2l":
                continue
            claims.append(
                {
                    "id": f"{_short(model)}-vs-{_short(baseline)}-{name}",
                    "check": "logprob_gain",
                    "model": model,
                    "baseline": baseline,
                    **spec,
                    "expect": {"mean_gain": "> 0"},
                }
            )
    path = folder / f"discovery_seed{seed}.claims.yaml"
    path.write_text(yaml.safe_dump({"seed": seed, "claims": claims}, sort_keys=False), encoding="utf-8")
    return path


def _short(spec: str) -> str:
    return spec.rsplit("-", 1)[-1].upper()


class RecordingEngine(Engine):
    """The harness's engine, also keeping each claim's per-sequence values and inputs (for the
    document-level view). Nothing is re-implemented: the numbers are the engine's."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.values: dict[str, np.ndarray] = {}
        self.batches: dict[str, object] = {}

    def _evaluate_claim(self, claim):
        self.values[claim.spec.id] = np.concatenate(claim.measurements["mean_gain"])
        self.batches[claim.spec.id] = self._batch_for(claim.models[MODEL], claim)
        return super()._evaluate_claim(claim)


def document_of(texts: list[str], documents) -> list[str | None]:
    """The discovery document each window was cut from (by its first 60 characters), None if unsure."""
    names = []
    for text in texts:
        head = text[:60]
        found = [doc.name for doc in documents if head in doc.text]
        names.append(found[0] if len(found) == 1 else None)
    return names


def document_level(values: np.ndarray, names: list[str | None]) -> dict:
    groups: dict[str, list[float]] = {}
    for value, name in zip(values, names):
        if name is not None and np.isfinite(value):
            groups.setdefault(name, []).append(float(value))
    means = np.array([np.mean(v) for v in groups.values()])
    if len(means) < 3:
        return {"docs": len(means)}
    greater = stats.ttest_1samp(means, 0.0, alternative="greater")
    less = stats.ttest_1samp(means, 0.0, alternative="less")
    ci = stats.ttest_1samp(means, 0.0).confidence_interval(0.90)
    return {"docs": len(means), "mean": means.mean(), "ci": (ci.low, ci.high), "p_gt": greater.pvalue, "p_lt": less.pvalue,
            "windows_per_doc": np.mean([len(v) for v in groups.values()])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102])
    parser.add_argument("--n", type=int, default=64, help="text windows per measurement (default 64)")
    parser.add_argument("--resamples", type=int, default=9999)
    args = parser.parse_args(argv)
    if set(args.seeds) & {0, 1, 2, 3}:
        parser.error("seeds 0-3 are the bundled claims' and the stability test's; discovery uses others")

    documents = list(filter_split(stdlib_documents(), SPLIT))
    print(f"split {SPLIT}: {len(documents)} documents (of the held-out stdlib); seeds {args.seeds}; text n={args.n}")
    print("window level: estimate [90% BCa] p(>0) p(<0) d_z n  |  document level: mean [90% t] p(>0) p(<0) docs")
    engine = RecordingEngine(Settings(n_resamples=args.resamples, adjust="none"))
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            start = time.perf_counter()
            specs = load_claim_file(claim_file(Path(folder), seed, args.n)).claims
            results = engine.evaluate(specs, family=f"discovery seed {seed}")
            print(f"\n-- seed {seed} ({time.perf_counter() - start:.1f} s)")
            for result in results:
                if result.outcome == "error":
                    print(f"{result.spec.id:22s} ERROR {result.error}")
                    continue
                ev = result.expectations[0].evaluation
                line = (
                    f"{result.spec.id:22s} {ev.estimate:+.3f} [{ev.ci[0]:+.3f}, {ev.ci[1]:+.3f}] "
                    f"p>0 {ev.p_value:.1e} p<0 {ev.p_value_refute:.1e} d_z {ev.effect_size:+.2f} n {ev.n}"
                )
                batch = engine.batches[result.spec.id]
                if batch.texts is not None:
                    doc = document_level(engine.values[result.spec.id], document_of(batch.texts, documents))
                    if "mean" in doc:
                        line += (
                            f"  | doc {doc['mean']:+.3f} [{doc['ci'][0]:+.3f}, {doc['ci'][1]:+.3f}] "
                            f"p>0 {doc['p_gt']:.1e} p<0 {doc['p_lt']:.1e} docs {doc['docs']} ({doc['windows_per_doc']:.1f} windows each)"
                        )
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
