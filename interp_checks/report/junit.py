"""A claim's numbers as JUnit ``<property>`` elements, so a CI system's test view shows them.

pytest writes each ``(name, value)`` of an item's ``user_properties`` as a ``<property>`` of its
testcase in ``--junitxml`` output (and xdist carries them to the controller). Besides the full JSON
record (``interp_claim``, which the report collector reads back), each claim gets one readable
property per number, built here from the claim record so that the names and the record's keys
cannot drift apart. Numbers are written with 6 significant digits; a missing number is left out
rather than written as an empty string.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

__all__ = ["OUTCOME_PROPERTY", "junit_properties"]

OUTCOME_PROPERTY = "interp_outcome"  # the verdict; the name predates the others and CI may use it


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else None
    return str(value)


def _deciding(record: Mapping[str, Any]) -> Mapping[str, Any]:
    name = record.get("deciding_statistic")
    return next((e for e in record.get("expectations") or [] if e.get("statistic") == name), {})


def junit_properties(record: Mapping[str, Any], *, suffix: str = "") -> list[tuple[str, str]]:
    """``(name, value)`` pairs for one claim record: verdict, expected verdict, the deciding
    statistic's estimate, interval (with its level), adjusted p-value, effect size (and kind), unit
    and model; with a baseline, its numbers (``interp_baseline_*``) and one ``interp_drift`` per
    message of the gate. ``suffix`` tells apart several claims of one Python test (``[claim-id]``)."""
    exp = _deciding(record)
    ci = exp.get("ci") or (None, None)
    pairs: list[tuple[str, Any]] = [
        (OUTCOME_PROPERTY, record.get("outcome")),
        ("interp_expected", record.get("expected")),
        ("interp_model", record.get("model")),
        ("interp_statistic", record.get("deciding_statistic")),
        ("interp_comparison", exp.get("comparison")),
        ("interp_estimate", exp.get("estimate")),
        ("interp_unit", exp.get("unit")),
        ("interp_ci_low", ci[0]),
        ("interp_ci_high", ci[1]),
        ("interp_ci_level", exp.get("ci_level")),
        ("interp_p_adjusted", record.get("p_value")),
        ("interp_effect_size", record.get("effect_size")),
        ("interp_effect_size_kind", record.get("effect_size_kind")),
        ("interp_error", record.get("error")),
    ]
    baseline = record.get("baseline")
    if isinstance(baseline, Mapping):
        base_ci = baseline.get("ci") or (None, None)
        pairs += [
            ("interp_baseline_file", baseline.get("file")),
            ("interp_baseline_status", baseline.get("status")),
            ("interp_baseline_outcome", baseline.get("outcome")),
            ("interp_baseline_statistic", baseline.get("statistic")),
            ("interp_baseline_estimate", baseline.get("estimate")),
            ("interp_baseline_ci_low", base_ci[0]),
            ("interp_baseline_ci_high", base_ci[1]),
            ("interp_baseline_p_adjusted", baseline.get("p_value")),
            ("interp_baseline_effect_size", baseline.get("effect_size")),
        ]
        pairs += [("interp_drift", message) for message in record.get("drift") or []]
    return [(name + suffix, text) for name, value in pairs if (text := _text(value)) is not None]
