"""Exploration run for the bundled patching and faithfulness claims about the deeper zoo models
(``hypotheses/patching_attn_only_{3l,4l}.claims.yaml``, ``hypotheses/faithfulness_attn_only_{3l,4l}.claims.yaml``).

The claims are written from what this script prints and then judged on data it never reads:

- repeated random tokens (and their corrupted twins): this script uses input seed 100; the claim
  files use seed 0, and ``tests/integration/test_bundled_suite.py`` reruns them with seeds 1, 2, 3;
- stdlib text: this script reads the held-out ``discovery`` half; the claim files the ``confirmation``
  half (disjoint documents; see ``inputs.corpora``).

Usage::

    python hypotheses/explore_deeper.py [--models 3l 4l] [--n 64]

The circuit is fixed from the confirmed head-role claims (``heads_attn_only_{3l,4l}``, and the
zoo's model cards) before anything here was run: previous-token heads P (3L: L0H2, L0H3; 4L: L0H0),
induction heads I (L1H0-L1H3 in both), the extra layers' heads E (3L: layer 2; 4L: layers 2-3), and
the one non-induction head S that the ablation files found to matter on text (3L: L2H3; 4L: L3H1).
Every number is the harness's own: the script writes the candidate claims, with expectations wide
enough to be uninformative, into a temporary claim file and runs it through the engine.

Decision rules (fixed before the first run):

- faithfulness: "f >= 0.8" (the issue's a-priori threshold) is stated as true if the exploration
  90% interval lies above 0.8, as a deliberately false claim if it lies below; otherwise a lower
  threshold by the next rule;
- any other "at least X" claim (normalized, effect, f, drop_without): X is the largest of 0.01,
  0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.8 that is at most half the exploration estimate (for
  drop_without: half the smallest component's estimate); no claim if the lower bound is <= 0;
- an "at most X" claim (a component that does little): X is the smallest of 0.02, 0.05, 0.1, 0.2,
  0.25, 0.5 that is at least twice the exploration interval's largest absolute end;
- "beats random circuits": stated only if at least 100 random circuits cost under 10 s for the file;
- deliberately false twins: a threshold at least twice as far from the exploration estimate as its
  interval is wide, on the side the data says is false.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from interp_checks.claims.schema import load_claim_file
from interp_checks.engine import Engine, Settings

EXPLORATION_SEED = 100
TEXT = {"kind": "corpus", "source": "stdlib", "split": "discovery", "chars": 700}
REPEAT = {"region": "repeat"}

ROLES = {
    "3l": {"P": ["L0H2", "L0H3"], "I": ["L1H0", "L1H1", "L1H2", "L1H3"], "E": [[f"L2H{h}" for h in range(4)]], "S": "L2H3"},
    "4l": {"P": ["L0H0"], "I": ["L1H0", "L1H1", "L1H2", "L1H3"], "E": [[f"L2H{h}" for h in range(4)], [f"L3H{h}" for h in range(4)]], "S": "L3H1"},
}


def patching_candidates(roles: dict, n: int) -> list[dict]:
    """Denoise/noise the circuit's parts and the extra layers' heads, total and direct."""
    pairs = {"kind": "induction_pairs", "seq_len": 32, "n": n}
    extra = [head for layer in roles["E"] for head in layer]
    rows: list[tuple[str, list[str], str, str]] = [
        ("induction", roles["I"], "denoise", "total"),
        ("induction", roles["I"], "denoise", "direct"),
        ("induction", roles["I"], "noise", "total"),
        ("previous-token", roles["P"], "noise", "total"),
        ("previous-token", roles["P"], "noise", "direct"),
        ("extra layers", extra, "denoise", "total"),
        ("extra layers", extra, "noise", "total"),
        ("extra layers", extra, "denoise", "direct"),
        ("extra layers", extra, "noise", "direct"),
        ("S", [roles["S"]], "denoise", "total"),
        ("S", [roles["S"]], "noise", "total"),
    ]
    if len(roles["E"]) > 1:
        rows += [(f"layer {layer[0][1]}", layer, direction, "total") for layer in roles["E"] for direction in ("denoise", "noise")]
    return [
        {"id": f"patch {name} {direction} {path}", "check": "patching", "sites": sites, "direction": direction, "path": path,
         "where": REPEAT, "inputs": pairs, "expect": {"normalized": ">= -100", "effect": ">= -100"}}
        for name, sites, direction, path in rows
    ]


def faithfulness_candidates(roles: dict, n: int, random_circuits: int) -> list[dict]:
    """f of the induction circuit, with and without the extra layers and S, on the repeat and on text."""
    circuit = roles["P"] + roles["I"]
    first_two = [f"L{layer}H{head}" for layer in (0, 1) for head in range(4)]
    extra = [head for layer in roles["E"] for head in layer]
    repeat = {"kind": "repeated_random_tokens", "seq_len": 32, "n": n}
    text = dict(TEXT, n=min(n, 32))
    common = {"check": "faithfulness", "ablation": "mean"}
    out = [
        dict(common, id="f circuit repeat", circuit=circuit, where=REPEAT, inputs=repeat,
             expect={"faithfulness": ">= -100", "drop_without": ">= -100"}),
        dict(common, id="f layers 0-1 repeat", circuit=first_two, where=REPEAT, inputs=repeat,
             expect={"faithfulness": ">= -100", "drop_without": ">= -100"}),
        dict(common, id="f circuit + extra layers repeat", circuit=circuit + extra, where=REPEAT, inputs=repeat, expect={"faithfulness": ">= -100"}),
        dict(common, id="f circuit + S repeat", circuit=circuit + [roles["S"]], where=REPEAT, inputs=repeat, expect={"faithfulness": ">= -100"}),
        dict(common, id="f previous-token only repeat", circuit=roles["P"], where=REPEAT, inputs=repeat, expect={"faithfulness": ">= -100"}),
        dict(common, id="f circuit text", circuit=circuit, inputs=text, expect={"faithfulness": ">= -100"}),
        dict(common, id="f circuit + S text", circuit=circuit + [roles["S"]], inputs=text,
             expect={"faithfulness": ">= -100", "drop_without": ">= -100"}),
        dict(common, id="f circuit + extra layers text", circuit=circuit + extra, inputs=text, expect={"faithfulness": ">= -100"}),
    ]
    if random_circuits:
        out.append(dict(common, id="f circuit beats random repeat", circuit=circuit, where=REPEAT, inputs=repeat,
                        random_circuits=random_circuits, expect={"beats_random": ">= 0"}))
    return out


def run(model: str, claims: list[dict]) -> None:
    claims = [dict(claim, id=f"c{i}", label=claim["id"]) for i, claim in enumerate(claims)]
    data = {"model": model, "seed": EXPLORATION_SEED, "claims": [{k: v for k, v in c.items() if k != "label"} for c in claims]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "explore.claims.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        specs = load_claim_file(path).claims
        labels = {spec.id: claim["label"] for spec, claim in zip(specs, claims)}
        engine = Engine(Settings(null_draws=1, n_resamples=1999))
        for spec in specs:
            started = time.perf_counter()
            [result] = engine.evaluate([spec])
            if result.error:
                print(f"  {labels[spec.id]}: ERROR {result.error}")
                continue
            print(f"  {labels[spec.id]} (n {result.n}, {time.perf_counter() - started:.1f} s)")
            for e in result.expectations:
                ev = e.evaluation
                if ev is None:
                    print(f"    {e.statistic:28} undefined")
                    continue
                low, high = ev.ci
                print(f"    {e.statistic:28} {ev.estimate:9.4f} [{low:9.4f}, {high:9.4f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["3l", "4l"])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--random-circuits", type=int, default=100)
    parser.add_argument("--only", choices=["patching", "faithfulness"], default=None)
    args = parser.parse_args()
    for size in args.models:
        model = f"zoo:attn-only-{size}"
        roles = ROLES[size]
        print(f"\n{model}: P {roles['P']}, I {roles['I']}, E {roles['E']}, S {roles['S']}; input seed {EXPLORATION_SEED}, text split discovery; 90% intervals")
        if args.only in (None, "patching"):
            run(model, patching_candidates(roles, args.n))
        if args.only in (None, "faithfulness"):
            run(model, faithfulness_candidates(roles, args.n, args.random_circuits))


if __name__ == "__main__":
    main()
