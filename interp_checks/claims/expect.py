"""Expectation strings from claim files (``">= 0.4"``, ``"between 0.2 0.5"``) -> ``Comparison``."""

from __future__ import annotations

import math
import re

from interp_checks.stats import Comparison

_ONE_SIDED = re.compile(r"^\s*(>=|<=|>|<)\s*([-+0-9.eE]+|[-+]?inf)\s*$")
_BETWEEN = re.compile(r"^\s*between\s+(\S+)\s+(?:and\s+)?(\S+)\s*$", re.IGNORECASE)

SYNTAX_HELP = 'write ">= 0.4", "> 0.4", "<= 0.1", "< 0.1" or "between 0.2 0.5"'


class ExpectationSyntaxError(ValueError):
    """An expectation string does not parse."""


def _number(text: str, original: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ExpectationSyntaxError(f"{original!r}: {text!r} is not a number; {SYNTAX_HELP}") from None
    if not math.isfinite(value):
        raise ExpectationSyntaxError(f"{original!r}: the threshold must be a finite number; {SYNTAX_HELP}")
    return value


def parse_expectation(text: object) -> Comparison:
    """Parse one expectation. Numbers alone are refused: a claim must say which side it is on."""
    if not isinstance(text, str):
        raise ExpectationSyntaxError(f"{text!r} is not a comparison string; {SYNTAX_HELP}")
    one_sided = _ONE_SIDED.match(text)
    if one_sided:
        return Comparison(one_sided.group(1), _number(one_sided.group(2), text))
    between = _BETWEEN.match(text)
    if between:
        low, high = _number(between.group(1), text), _number(between.group(2), text)
        if not low < high:
            raise ExpectationSyntaxError(f"{text!r}: the lower bound must be below the upper bound")
        return Comparison("between", low, high)
    raise ExpectationSyntaxError(f"cannot parse expectation {text!r}; {SYNTAX_HELP}")


def negate(comparison: Comparison) -> Comparison:
    """The complementary one-sided comparison (used for "no other head has the role")."""
    flipped = {">=": "<", ">": "<=", "<=": ">", "<": ">="}
    if comparison.op not in flipped:
        raise ExpectationSyntaxError(f"{comparison} has no one-sided negation; use a one-sided expectation")
    return Comparison(flipped[comparison.op], comparison.threshold)
