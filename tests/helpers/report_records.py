"""Synthetic ``report.json`` records for testing the report pages: every figure kind, every outcome.

Real records come from running claims (tests run them on tiny models); these fill in what a real
run may not have yet: a figure of each kind, an errored claim, a claim whose verdict differs from
the expected one, a baseline with drift, and text that must be escaped.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from interp_checks.figures import KINDS, Figure, rounded

HOSTILE = '<script>alert("x")</script> & "quotes"'  # text the page must escape, never run


def figure_of_each_kind() -> list[dict[str, Any]]:
    """One valid figure record per kind in ``interp_checks.figures.KINDS`` (in that order)."""
    n = 12
    pattern = [[(1.0 if c == r - 5 else 0.02) if c <= r else 0.0 for c in range(n)] for r in range(n)]
    tokens = ["<bos>", "def", " f", "(x", "):", "\n", "\t", "return", " x", " <", " 1", "&"]
    figures = {
        "heatmap": Figure(
            "heatmap",
            "L1H0 attention pattern",
            {
                "values": pattern,
                "row_labels": tokens,
                "col_labels": tokens,
                "marked": [[r, r - 5] for r in range(5, n)],
                "x_label": "key",
                "y_label": "query",
                "value_label": "attention",
                "vmin": 0.0,
                "vmax": 1.0,
            },
            "the first sequence of the inputs; outlined: the keys an induction head attends to",
            "induction_head",
        ),
        "strip": Figure(
            "strip",
            "per-sequence score, model and null",
            {
                "groups": [
                    {"label": "model", "values": [0.8 + 0.01 * math.sin(i) for i in range(40)]},
                    {"label": "random weights", "values": [0.05 + 0.02 * math.cos(i) for i in range(40)]},
                ],
                "lines": [{"value": 0.5, "label": "threshold 0.5"}],
                "intervals": [{"group": "model", "estimate": 0.8, "low": 0.79, "high": 0.81, "label": "mean, 90% CI"}],
                "value_label": "induction score",
            },
            "each point is one sequence",
            "engine",
        ),
        "tokens": Figure(
            "tokens",
            "largest gains",
            {
                "rows": [
                    {"label": "sequence 3", "tokens": tokens, "values": [None] + [0.5 * (i - 6) for i in range(1, n)], "focus": 8},
                    {"label": HOSTILE, "tokens": ["<b>bold?</b>", " ", "\n\n", "x"], "values": [2.0, -1.0, 0.0, None]},
                ],
                "value_label": "gain (nats)",
                "center": 0.0,
            },
            "the 2 contexts with the largest gain among the first 16 sequences",
            "logprob_gain",
        ),
        "line": Figure(
            "line",
            "score over training",
            {
                "series": [
                    {
                        "label": "L1H0",
                        "x": [0, 100, 200, 400, 800],
                        "y": [0.01, 0.02, 0.3, 0.7, 0.8],
                        "low": [0.0, 0.01, 0.25, 0.65, 0.78],
                        "high": [0.02, 0.03, 0.35, 0.75, 0.82],
                    }
                ],
                "x_label": "step",
                "y_label": "induction score",
                "markers": [{"x": 200, "label": "formed", "low": 150, "high": 300}],
                "lines": [{"value": 0.5, "label": "threshold"}],
            },
            "checkpoints of the series",
            "series",
        ),
        "bars": Figure(
            "bars",
            "loss increase when each head is ablated",
            {
                "labels": ["L0H0", "L0H1", "L1H0", "L1H1"],
                "values": [0.1, 0.05, 1.2, 0.9],
                "low": [0.05, 0.0, 1.0, 0.7],
                "high": [0.15, 0.1, 1.4, 1.1],
                "highlight": ["L1H0"],
                "value_label": "nats",
                "lines": [{"value": 0.5, "label": "threshold"}],
            },
            "",
            "circuit",
        ),
        "histogram": Figure(
            "histogram",
            "L0N216 activation on matching and other tokens",
            {
                "edges": [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
                "series": [
                    {"label": "does not match", "counts": [120, 4000, 3100, 600, 90, 12, 3, 0]},
                    {"label": "matches \\bthe\\b", "counts": [0, 1, 2, 3, 8, 20, 40, 26]},
                ],
                "x_label": "activation (before SoLU's layer norm)",
                "lines": [{"value": 1.4, "label": "firing threshold"}],
                "log_y": False,
            },
            "every token of the corpus, binned",
            "neuron_regex",
        ),
    }
    assert tuple(figures) == KINDS, "add the new kind here"
    return [rounded(f.to_dict()) for f in figures.values()]


def expectation(statistic: str = "score", **overrides: Any) -> dict[str, Any]:
    record = {
        "statistic": statistic,
        "comparison": ">= 0.5",
        "estimand": "mean over sequences of the head's induction score",
        "unit": "attention",
        "estimate": 0.8,
        "ci": [0.79, 0.81],
        "ci_level": 0.9,
        "ci_method": "BCa bootstrap",
        "test": "one-sided t-test",
        "p_value": 1e-12,
        "p_adjusted": 4e-12,
        "p_value_refute": 1.0,
        "p_adjusted_refute": 1.0,
        "margin": 0.3,
        "margin_sd": 12.0,
        "effect_size": 9.5,
        "effect_size_kind": "Cohen's d against the null",
        "effect_size_range": [8.9, 10.1],
        "null_estimate": 0.05,
        "null_draws": 5,
        "members": None,
        "deciding_member": None,
        "n": 64,
        "note": None,
        "outcome": "supported",
    }
    record.update(overrides)
    return record


def claim(claim_id: str, outcome: str = "supported", **overrides: Any) -> dict[str, Any]:
    """A claim record shaped like ``report.schema.claim_record``'s."""
    record = {
        "id": claim_id,
        "nodeid": f"hypotheses/synthetic.claims.yaml::{claim_id}",
        "file": "hypotheses/synthetic.claims.yaml",
        "statement": f"Synthetic claim {claim_id}",
        "check": "induction_head",
        "model": "zoo:attn-only-2l",
        "outcome": outcome,
        "expected": "supported",
        "deciding_statistic": "score",
        "p_value": 4e-12,
        "effect_size": 9.5,
        "effect_size_kind": "Cohen's d against the null",
        "null": "random-weights twins of the model",
        "n": 64,
        "seed": 0,
        "inputs": {"kind": "repeated_random_tokens", "seq_len": 32, "n": 64},
        "duration_s": 0.5,
        "load_s": 0.1,
        "measure_s": 0.4,
        "family": "session",
        "family_size": 4,
        "adjust": "holm",
        "alpha": 0.05,
        "error": None,
        "notes": ["score: the mean attention from each repeated token to the token after its earlier copy"],
        "expectations": [expectation(outcome=outcome if outcome != "error" else None)],
        "figures": [],
    }
    record.update(overrides)
    return record


def synthetic_claims() -> list[dict[str, Any]]:
    """Four claims, one per outcome, with every figure kind, a baseline, an error and hostile text."""
    figures = figure_of_each_kind()
    return [
        claim(
            "all-kinds",
            figures=figures,
            baseline={
                "file": "baseline/report.json",
                "status": "matched",
                "outcome": "supported",
                "deciding_statistic": "score",
                "estimate": 0.9,
                "ci": [0.89, 0.91],
                "p_value": 1e-12,
                "effect_size": 12.0,
            },
            drift=["effect size fell by 21% (12.00 -> 9.50)"],
        ),
        claim(
            "refuted-as-expected",
            "refuted",
            expected="refuted",
            check="previous_token_head",
            model="zoo:attn-only-1l",
            statement=HOSTILE,
            expectations=[expectation(outcome="refuted", estimate=0.02, ci=[0.01, 0.03]), expectation("max_score", outcome="refuted", comparison="< 0.2", estimate=0.08)],
            figures=[figures[1]],
        ),
        claim("unsure", "inconclusive", expectations=[expectation(outcome="inconclusive", ci=[0.45, 0.55], estimate=0.5)], figures=[figures[2]]),
        claim("broken", "error", error="ValueError: head L9H0 is out of range (the model has 2 layers)\n  in hypotheses/synthetic.claims.yaml", expectations=[], figures=[]),
    ]


def synthetic_report(claims: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A whole ``report.json`` dict around ``claims`` (default ``synthetic_claims()``)."""
    claims = copy.deepcopy(claims if claims is not None else synthetic_claims())
    summary: dict[str, int] = {}
    for record in claims:
        summary[record["outcome"]] = summary.get(record["outcome"], 0) + 1
    return {
        "schema": "interp-checks/2",
        "created": "2025-01-01T00:00:00+00:00",
        "git_revision": "0123456789abcdef0123456789abcdef01234567",
        "python": "3.11.7",
        "settings": {"alpha": 0.05, "adjust": "holm", "resamples": 999, "null_draws": 5},
        "summary": summary,
        "claims": claims,
    }
