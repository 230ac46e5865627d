"""How a report shows a number, an interval, a p-value and an effect size: one place for
``report.md`` and ``report.html``, so the two always print the same digits."""

from __future__ import annotations

from typing import Any

from interp_checks.numbers import format_number

__all__ = ["deciding_p", "effect_text", "fmt", "interval_text"]


def fmt(value: Any, digits: int = 3) -> str:
    """A number for people: fixed digits, scientific when tiny or huge, "–" for missing."""
    return format_number(value, digits)


def interval_text(ci: Any) -> str:
    """``[low, high]``, or "–" when the record has no interval."""
    if not ci or ci[0] is None:
        return "–"
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def deciding_p(exp: dict[str, Any]) -> float | None:
    """The adjusted p on the side that decided: the refutation p for a refuted expectation."""
    return exp.get("p_adjusted_refute") if exp.get("outcome") == "refuted" else exp.get("p_adjusted")


def effect_text(exp: dict[str, Any]) -> str:
    """The effect size, with its range over the null draws when there were several."""
    text = fmt(exp.get("effect_size"), 2)
    spread = exp.get("effect_size_range")
    if spread and spread[0] is not None and exp.get("effect_size") is not None:
        text += f" ({fmt(spread[0], 2)}..{fmt(spread[1], 2)} over {exp.get('null_draws')} null draws)"
    return text
