"""The versioned JSON record of a claim result: the contract between the engine, CI and readers.

Schema ``interp-checks/2``. Within a version, keys are added, never renamed or dropped. Version 2
changed the meaning of ``effect_size`` (version 1: the smallest |d| over a claim's expectations;
now: the effect size of the expectation that decided the verdict) and added ``p_value``,
``deciding_statistic``, ``family_size``, ``load_s``, ``measure_s`` and, per expectation,
``unit``, ``estimand``, ``margin``, ``margin_sd``, ``null_draws``, ``effect_size_range`` and ``members``; later
``figures`` (plot-ready pictures, ``interp_checks.figures``); later ``baseline`` and ``drift``
(``--interp-baseline``: the baseline run's numbers for the same claim and statistic, and the
``--interp-fail-on`` gate's messages; see ``report.compare.baseline_record``; ``None`` and ``[]``
without a baseline).
"""

from __future__ import annotations

from typing import Any

from interp_checks.numbers import finite_or_none
from interp_checks.results import ClaimResult, ExpectationResult

SCHEMA = "interp-checks/2"

__all__ = ["SCHEMA", "claim_record", "expectation_record"]


def expectation_record(expectation: ExpectationResult) -> dict[str, Any]:
    ev = expectation.evaluation.to_dict() if expectation.evaluation else {}
    return {
        "statistic": expectation.statistic,
        "comparison": expectation.comparison,
        "estimand": ev.get("estimand"),
        "unit": expectation.unit,
        "estimate": ev.get("estimate"),
        "ci": ev.get("ci"),
        "ci_level": ev.get("ci_level"),
        "ci_method": ev.get("ci_method"),
        "test": ev.get("test"),
        "p_value": ev.get("p_value"),
        "p_adjusted": finite_or_none(expectation.p_adjusted),
        "p_value_refute": ev.get("p_value_refute"),
        "p_adjusted_refute": finite_or_none(expectation.p_adjusted_refute),
        "margin": ev.get("margin"),
        "margin_sd": ev.get("margin_sd"),
        "effect_size": ev.get("effect_size"),
        "effect_size_kind": ev.get("effect_size_kind"),
        "effect_size_range": ev.get("effect_size_range"),
        "null_estimate": ev.get("null_estimate"),
        "null_draws": ev.get("null_draws"),
        "members": ev.get("members"),
        "deciding_member": ev.get("deciding_member"),
        "n": ev.get("n"),
        "note": ev.get("note"),
        "outcome": expectation.outcome,
    }


def claim_record(result: ClaimResult, nodeid: str = "") -> dict[str, Any]:
    """The JSON-ready record of one claim (strict JSON: non-finite numbers become null)."""
    spec = result.spec
    deciding = result.deciding_expectation
    evaluation = deciding.evaluation if deciding else None
    return {
        "id": spec.id,
        "nodeid": nodeid,
        "file": str(spec.path),
        "statement": spec.statement,
        "check": spec.check,
        "model": result.model or spec.model,
        "outcome": result.outcome,
        "expected": spec.expected,
        "deciding_statistic": deciding.statistic if deciding else None,
        "p_value": finite_or_none(result.p_value),
        "effect_size": finite_or_none(evaluation.effect_size) if evaluation and evaluation.effect_size is not None else None,
        "effect_size_kind": evaluation.effect_size_kind if evaluation else None,
        "null": result.null,
        "n": result.n,
        "seed": spec.seed,
        "inputs": result.inputs or spec.inputs,
        "duration_s": round(result.duration_s, 4),
        "load_s": round(result.load_s, 4),
        "measure_s": round(result.measure_s, 4),
        "family": result.family,
        "family_size": result.family_size,
        "adjust": result.adjust,
        "alpha": result.alpha,
        "error": result.error,
        "notes": result.notes,
        "expectations": [expectation_record(e) for e in result.expectations],
        "figures": [figure.to_dict() for figure in result.figures],
        "baseline": None,  # filled by the plugin under --interp-baseline (report.compare.baseline_record)
        "drift": [],
    }
