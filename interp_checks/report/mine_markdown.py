"""``mine.md``: the miner's findings for people, rendered from ``mine.json`` (schema ``interp-checks-mine/1``).

Works on the JSON dict only, so ``interp-checks report mine.json`` re-renders a saved run and this
module knows the miner's results, not its code.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from interp_checks.numbers import ratio_or_none

__all__ = ["MINE_SCHEMA", "render_mine_markdown"]

MINE_SCHEMA = "interp-checks-mine/1"  # mine.json; add keys, never rename or drop them within a version
NO_PATTERN = "other"  # mine.json's name for the tokens that match no pattern
MARKS = "⟦ ⟧"  # how mine.json's contexts mark the scored token


def _fmt(x: float | None, digits: int = 3, sign: bool = True) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "⏎")


def _code(text: str) -> str:
    shown = text.replace("\r", "").replace("\n", "⏎").replace("\t", "⇥").replace("|", "\\|")
    fence = "``" if "`" in shown else "`"
    pad = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def _rate(tokens_per_second: float | None) -> str:
    return "–" if tokens_per_second is None else f"{tokens_per_second:,.0f}"


def render_mine_markdown(data: Mapping[str, Any]) -> str:
    """``mine.md`` from ``mine.json``'s dict."""
    overall = data["overall"]
    total_tokens, total_gain = overall["tokens"], overall["gain_sum"]
    lo, hi = overall["sequence_ci95"]
    model, baseline, floor = data["model"], data["baseline"], data["floor"]
    out = [
        f"# Miner: {model} vs {baseline}",
        "",
        f"Corpus `{data['corpus_label']}` (split {data['split']}): {data['tokens_seen']:,} tokens read in "
        f"{data['windows']:,} windows of up to {data['seq_len']} tokens from {data['documents']:,} documents; "
        f"{total_tokens:,} tokens scored. {data['seconds']:.1f} s on {data['device']} "
        f"({_rate(data['tokens_per_second'])} tokens/s). Mined {data['created']}.",
        "",
        f"**Gain** of a token = max(logp_model, {floor:g}) − max(logp_baseline, {floor:g}), in nats: "
        f"positive where `{model}` predicts the token better than `{baseline}`. Over all scored "
        f"tokens: token-level mean {_fmt(overall['token_mean_gain'])}; sequence-level mean "
        f"{_fmt(overall['sequence_mean_gain'])} [{_fmt(lo)}, {_fmt(hi)}].",
        "",
        "## Patterns",
        "",
        "Sorted by each pattern's total gain (the sum of its tokens' gains). A token can match several "
        f"patterns, so the shares add up to more than 100%; `{NO_PATTERN}` is the tokens that match none."
        + (
            " The total over all tokens is negative here, so a pattern with a positive total shows a negative share."
            if total_gain < 0
            else ""
        ),
        "",
        "- **token-level mean**: over the pattern's tokens, pooled — what the pattern contributes to the total;",
        "- **sequence-level mean**: the mean over windows of each window's mean gain on the pattern's tokens, "
        "with a normal-approximation 95% interval. The window is the unit for statistics (tokens of one window "
        "are not independent) and this is what a `logprob_gain` claim measures. Windows cut from the same "
        "document are not independent either, so read the interval as optimistic.",
        "",
        "| pattern | description | tokens | share of tokens | token-level mean gain | gain > 1 nat | "
        "sequence-level mean gain [95% CI] (windows) | share of total gain |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for stats in data["patterns"]:
        slo, shi = stats["sequence_ci95"]
        out.append(
            f"| `{stats['pattern']}` | {stats['description']} | {stats['tokens']:,} | {_pct(stats['share_of_tokens'])} | "
            f"{_fmt(stats['token_mean_gain'])} | {_pct(ratio_or_none(stats['tokens_gain_above_1_nat'], stats['tokens']))} | "
            f"{_fmt(stats['sequence_mean_gain'])} [{_fmt(slo)}, {_fmt(shi)}] ({stats['windows']:,}) | "
            f"{_pct(stats['share_of_total_gain'])} |"
        )
    for title, key, sign in (
        (f"Largest gains ({model} better)", "top_gains", "gain"),
        (f"Largest losses ({baseline} better)", "top_losses", "loss"),
    ):
        contexts = data[key]
        out += ["", f"## {title}", ""]
        if not contexts:
            out.append(f"No token with a {sign}.")
            continue
        counts = data[f"{key}_by_pattern"]
        listed = ", ".join(f"`{name}` {n}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n)
        out += [
            f"Of these {len(contexts)} tokens: {listed}. The token is marked {MARKS}; ⏎ is a newline.",
            "",
            "| # | gain | logp model | logp baseline | patterns | document @ token | context |",
            "|--:|--:|--:|--:|---|---|---|",
        ]
        for i, c in enumerate(contexts, start=1):
            out.append(
                f"| {i} | {_fmt(c['gain'])} | {_fmt(c['model_logp'], 2, sign=False)} | "
                f"{_fmt(c['baseline_logp'], 2, sign=False)} | {', '.join(c['patterns']) or NO_PATTERN} | "
                f"{_cell(c['document'])} @ {c['position']} | {_code(c['context'])} |"
            )
    out += ["", "## Draft claims", ""]
    draft = data.get("draft_claims")
    if draft is None:
        out.append("None: the corpus was given as documents in memory, which a claim file cannot name.")
    else:
        claims = draft["claims"]
        with_pattern = [c for c in claims if "where" in c]
        out.append(
            f"`{draft['file']}`: {len(with_pattern)} pattern claim(s) ({draft['rule']}) and one over all tokens. "
            f"{draft['note']} Run it as is with `python -m pytest {draft['file']}`; "
            "move the claims you keep into `hypotheses/`."
        )
        out.append("")
        for claim in claims:
            out.append(f"- `{claim['id']}`: {claim['expect']['mean_gain']} — {claim['statement']}")
    return "\n".join(out) + "\n"
