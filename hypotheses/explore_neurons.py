"""Exploration run for the bundled neuron claims (``hypotheses/neurons_solu_1l.claims.yaml``).

The claims are written from what this script prints and are judged on documents it never reads:
this script streams the ``discovery`` half of the stdlib's held-out documents; the claim files
stream the ``confirmation`` half (disjoint documents, by a salted hash of the name; see
``inputs.corpora``). A neuron found here by looking at all 512 is a hypothesis until then.

Usage::

    python hypotheses/explore_neurons.py [--model zoo:solu-1l] [--tokens 60000]

For each candidate regex it prints the three neurons with the largest AUROC (tokens pooled), each
with the share of its top 1% of activations that match, its precision and recall when it fires
(half its max) and its correlation with the match: every number from ``stats.pooled
.column_statistics``, on activations read where the claims read them (SoLU: before the extra
layer norm). Then, per neuron, the regexes it is among the best three for (polysemantic candidates).

Decision rules (fixed before the first run):

- a regex claim states ``auroc >= X`` with X at most the exploration AUROC minus 0.02, and a
  ``top_share`` claim at most 0.1 below the exploration share;
- a band claim ("monosemantic only at the top") needs an exploration top-1% share >= 0.8 and a
  20-50% band share <= 0.3, and states thresholds halfway to the observed values;
- a polysemantic claim names a neuron among the best three for two regexes of disjoint characters,
  each at AUROC >= 0.9;
- deliberately false twins state another regex's neuron, or a threshold far outside the estimate.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np

REGEXES = {
    "digit": r"\d",
    "def": r"\bdef\b",
    "indent": r"(?m)^ {4,}",
    "open_paren": r"\(",
    "close_paren": r"\)",
    "quote": r"[\"']",
    "self": r"\bself\b",
    "import": r"\b(?:import|from)\b",
    "comment": r"#",
    "equals": r"(?<![=!<>])=(?!=)",
    "dot": r"\.",
    "comma": r",",
    "colon": r":",
    "return": r"\breturn\b",
    "if": r"\bif\b",
    "upper_name": r"\b[A-Z][A-Z_]+\b",
    "newline": r"\n",
    "underscore_name": r"\b_\w+",
    "the": r"\bthe\b",
    "bracket": r"[\[\]]",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="zoo:solu-1l")
    parser.add_argument("--tokens", type=int, default=60_000)
    parser.add_argument("--split", default="discovery")
    parser.add_argument("--source", default="stdlib", help="stdlib, stdlib-docs, stdlib-code or a path")
    args = parser.parse_args()

    import torch

    from interp_checks.checks.base import ModelShape, Needs
    from interp_checks.checks.neurons import reading
    from interp_checks.inputs.streams import corpus_rows
    from interp_checks.inputs.token_sets import regex_mask
    from interp_checks.models.cache import ModelCache
    from interp_checks.models.spec import parse_model_spec
    from interp_checks.runner import capture
    from interp_checks.stats.pooled import column_statistics

    torch.set_num_threads(1)
    model = ModelCache().get(parse_model_spec(args.model), "cpu")
    cfg = model.bridge.cfg
    hook, words = reading(None, 0, ModelShape(model.n_layers, model.n_heads, model.d_vocab, model.n_ctx, d_mlp=cfg.d_mlp, act_fn=cfg.act_fn))
    start = time.perf_counter()
    acts, matches = [], defaultdict(list)
    for rows, batch in corpus_rows(args.source, model, seq_len=128, batch_size=64, max_tokens=args.tokens, split=args.split):
        activation = capture(model.bridge, torch.as_tensor(rows.tokens), Needs(frozenset({hook})))[hook].numpy()
        scored = batch.valid.copy()
        scored[:, 0] = False
        acts.append(activation[scored])
        for name, regex in REGEXES.items():
            matches[name].append(regex_mask(batch, regex)[scored])
    activations = np.concatenate(acts)
    print(f"{args.model}, {words}; {activations.shape[0]:,} tokens of {args.source}/{args.split} in {time.perf_counter() - start:.0f} s\n")
    among_best = defaultdict(list)
    for name, regex in REGEXES.items():
        match = np.concatenate(matches[name])
        if not match.any():
            continue
        k = max(1, activations.shape[0] // 100)
        columns = column_statistics(activations, match, k)
        best = np.argsort(-np.nan_to_num(columns["auroc"], nan=-1))[:3]
        cells = []
        for n in best:
            among_best[int(n)].append(name)
            cells.append(
                f"N{n} auroc {columns['auroc'][n]:.3f} top1% {columns['top_share'][n]:.2f} "
                f"prec {columns['precision'][n]:.2f} rec {columns['recall'][n]:.2f} r {columns['correlation'][n]:.2f}"
            )
        print(f"{name:16s} {regex!r:24s} freq {match.mean():.4f} | " + " | ".join(cells))
        band = activations[:, best[0]]
        order = np.argsort(-band)
        shares = [match[order[int(len(order) * lo / 100) : int(len(order) * hi / 100)]].mean() for lo, hi in ((0, 1), (1, 5), (5, 20), (20, 50))]
        print(f"{'':16s} bands of N{best[0]}: top 1% {shares[0]:.2f}, 1-5% {shares[1]:.2f}, 5-20% {shares[2]:.2f}, 20-50% {shares[3]:.2f}")
    print("\nneurons among the best three for several regexes (polysemantic candidates):")
    for neuron, names in sorted(among_best.items(), key=lambda item: -len(item[1])):
        if len(names) > 1:
            print(f"  L0N{neuron}: {', '.join(names)}")


if __name__ == "__main__":
    main()
