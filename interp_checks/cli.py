"""``interp-checks`` / ``python -m interp_checks``: the commands around the pytest plugin.

    interp-checks checks                  list claim families (checks) and input generators
    interp-checks report DIR              re-render report.md and report.html beside DIR/report.json (or a
                                          report.json's path; --out FILE writes one file, .html or .md);
                                          a mine.json's mine.md goes to standard output or --out
    interp-checks compare OLD.json NEW.json [--fail-on EXPR] [--format text|md|json]
                                          each claim's verdict and numbers in two runs, side by side;
                                          exit 1 when a --fail-on expression finds a claim that drifted
    interp-checks mine --model SPEC --baseline SPEC [--corpus stdlib|PATH] ...
                                          where two models' per-token log-probs differ, by pattern;
                                          writes mine.md, mine.json and a draft.claims.yaml
    interp-checks zoo ...                 the bundled toy models (same as python -m interp_checks.zoo)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _list_checks(_: argparse.Namespace) -> int:
    from interp_checks.checks.base import available_checks
    from interp_checks.inputs.generators import available_generators, describe_inputs

    print("checks (claim families):")
    for name, check in sorted(available_checks().items()):
        keys = ", ".join(tuple(check.model_roles) + tuple(check.params))
        print(f"  {name:24} {check.description}; keys: {keys}; statistics: {', '.join(check.statistics)}")
        defaults = getattr(check, "default_inputs", None)
        shown = describe_inputs(defaults) if defaults else "none (claims must give inputs:)"
        print(f"  {'':24} default inputs: {shown}")
    print("inputs kinds:")
    for name, generator in sorted(available_generators().items()):
        defaults = ", ".join(f"{k}={v}" for k, v in generator.defaults.items())
        print(f"  {name:24} {generator.description} ({defaults})")
    return 0


def _report_json(path: Path) -> Path:
    """The JSON file to render: ``path`` itself, or the report.json (else mine.json) in a folder."""
    if path.is_dir():
        for name in ("report.json", "mine.json"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path} has no report.json or mine.json; pass the folder pytest wrote (--interp-report, default reports/) or a JSON file")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; pass a report folder (e.g. reports/) or its report.json")
    return path


def _render_report(args: argparse.Namespace) -> int:
    from interp_checks.report import MINE_SCHEMA, render_html, render_markdown, render_mine_markdown, render_reports

    try:
        path = _report_json(Path(args.report))
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        print(f"interp-checks report: error: {error}", file=sys.stderr)
        return 2
    if not isinstance(report, dict) or not (report.get("schema") == MINE_SCHEMA or isinstance(report.get("claims"), list)):
        print(f"interp-checks report: error: {path} is neither a report.json (no 'claims' list) nor a mine.json", file=sys.stderr)
        return 2
    if report.get("schema") == MINE_SCHEMA:  # mine.md, to standard output or --out, as before
        text = render_mine_markdown(report)
    elif args.out:  # one file: HTML for .html/.htm, else Markdown
        text = render_html(report) if Path(args.out).suffix.lower() in (".html", ".htm") else render_markdown(report)
    else:
        for written in render_reports(report, path.parent):
            print(f"wrote {written}")
        return 0
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from interp_checks.report.compare import BaselineError, FailOnSyntaxError, compare_reports, load_report, parse_fail_on, render_compare

    try:
        checks = parse_fail_on(args.fail_on)
        old, new = load_report(args.old), load_report(args.new)
    except (BaselineError, FailOnSyntaxError) as error:
        print(f"interp-checks compare: error: {error}", file=sys.stderr)
        return 2
    diffs = compare_reports(old, new, checks)
    text = render_compare(diffs, fmt=args.format, old_label=args.old, new_label=args.new, checks=checks, id_width=args.id_width)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 1 if any(d.violations for d in diffs) else 0


def _add_compare_parser(commands: Any) -> None:
    from interp_checks.report.compare import GRAMMAR

    compare = commands.add_parser(
        "compare",
        help="each claim's verdict and numbers in two report.json files, side by side; gate on drift",
        description=(
            "Match the claims of two report.json files (by node id, else file and id) and show per claim the "
            "verdict, the deciding statistic's estimate and interval, the effect size and its change, and the "
            "adjusted p-value, baseline -> new. Exit status 1 when a --fail-on expression finds a claim that "
            "drifted (they are listed), 2 when a file or expression cannot be read, else 0."
        ),
    )
    compare.add_argument("old", metavar="OLD.json", help="the baseline report.json")
    compare.add_argument("new", metavar="NEW.json", help="the report.json to compare with it")
    compare.add_argument(
        "--fail-on", action="append", default=[], metavar="EXPR",
        help=f"fail (exit 1) on drift; repeatable and comma-separated: {GRAMMAR}. 'fell' = moved towards the "
        "claim's threshold (a rise for a '<' claim). Default: none (exit 0).".replace("%", "%%"),
    )
    compare.add_argument("--format", choices=["text", "md", "json"], default="text", help="output format (default text)")
    compare.add_argument("--out", help="write here instead of standard output")
    compare.add_argument("--id-width", type=int, default=36, help="text format: longest claim id shown before it is shortened (default 36)")
    compare.set_defaults(run=_compare)


def _mine(args: argparse.Namespace) -> int:
    from interp_checks.mine import OTHER, MineError, mine, write_mine_report

    try:
        result = mine(
            args.model,
            args.baseline,
            corpus=args.corpus,
            split=args.split,
            max_tokens=None if args.max_tokens == 0 else args.max_tokens,
            seq_len=args.seq_len,
            batch_size=args.batch_size,
            floor=args.floor,
            top_k=args.top_k,
            context_chars=args.context_chars,
            device=args.device,
            progress=not args.quiet,
            threads=args.threads,
        )
    except (MineError, ValueError) as error:  # ModelSpecError and CorpusError are ValueErrors
        print(f"interp-checks mine: error: {error}", file=sys.stderr)
        return 2
    paths = write_mine_report(result, args.out)
    print(
        f"mined {result.tokens_seen:,} tokens of {result.corpus_label} (split {result.split}, "
        f"{result.windows:,} windows) in {result.seconds:.1f} s ({result.tokens_per_second:,.0f} tokens/s on {result.device})"
    )
    for label, path in paths.items():
        print(f"  {label:9} {path}")
    total = result.overall.gain_sum
    print(f"top patterns by total gain of {result.model} over {result.baseline} (nats; sequence-level = per window, 95% CI):")
    print(f"  {'pattern':20} {'tokens':>10} {'total gain':>11} {'of all':>7} {'per token':>9}  per window [95% CI]")
    for stats in result.ranked()[:5]:
        lo, hi = stats.window_ci
        share = f"{100 * stats.gain_sum / total:6.1f}%" if total else "      -"
        print(
            f"  {stats.name:20} {stats.tokens:>10,} {stats.gain_sum:>+11,.1f} {share} {stats.token_mean:>+9.3f}"
            f"  {stats.window_mean:+.3f} [{lo:+.3f}, {hi:+.3f}]" + ("  (matches no pattern)" if stats.name == OTHER else "")
        )
    if "claims" in paths:
        print(f"run the draft claims with: python -m pytest {paths['claims']}")
    return 0


def _add_mine_parser(commands: Any) -> None:
    miner = commands.add_parser(
        "mine",
        help="find where two models' per-token log-probs differ, grouped by pattern; draft claims",
        description=(
            "Run MODEL and BASELINE (same tokenizer) over a corpus; report per pattern how much better MODEL "
            "predicts the tokens (gain = max(logp_model, floor) - max(logp_baseline, floor)), the contexts with "
            "the largest gains each way, and a draft claims file. Memory does not grow with the corpus."
        ),
    )
    miner.add_argument("--model", required=True, help="the model whose gains are measured (zoo:, hf:, gguf:, native:)")
    miner.add_argument("--baseline", required=True, help="the model it is compared with (same tokenizer)")
    miner.add_argument("--corpus", default="stdlib", help="stdlib, stdlib-docs, stdlib-code, or a .txt/.jsonl file or folder (default stdlib)")
    miner.add_argument(
        "--split", default="train", choices=["train", "all", "heldout", "discovery", "confirmation"],
        help="documents to read (default train: the draft claims then test on held-out documents the miner did not read)",
    )
    miner.add_argument("--max-tokens", type=int, default=1_000_000, help="stop after this many tokens; 0 = the whole corpus (default 1000000)")
    miner.add_argument("--seq-len", type=int, default=None, help="window length (default: the smaller context of the two models)")
    miner.add_argument("--batch-size", type=int, default=16, help="windows per forward pass (default 16)")
    miner.add_argument("--floor", type=float, default=-5.0, help="log-prob floor of the gain (default -5)")
    miner.add_argument("--top-k", type=int, default=50, help="contexts listed each way (default 50)")
    miner.add_argument("--context-chars", type=int, default=60, help="characters of context before a listed token (default 60)")
    miner.add_argument("--out", default="reports/mine", help="output folder (default reports/mine)")
    miner.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    miner.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's; 1 is faster when the cores are busy)")
    miner.add_argument("--quiet", action="store_true", help="no progress bar")
    miner.set_defaults(run=_mine)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["zoo"]:
        from interp_checks.zoo.__main__ import main as zoo_main

        return zoo_main(argv[1:])
    parser = argparse.ArgumentParser(prog="interp-checks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("checks", help="list claim families and input generators").set_defaults(run=_list_checks)
    render = commands.add_parser(
        "report",
        help="re-render report.md and report.html from a report.json (or mine.md from a mine.json)",
        description="Re-render report.md and report.html next to DIR/report.json (or the report.json given).",
    )
    render.add_argument("report", metavar="DIR", help="a report folder (default written by pytest: reports/), a report.json or a mine.json")
    render.add_argument("--out", help="write one file instead: report.html for a .html/.htm name, else the Markdown; for a mine.json, mine.md (default: standard output)")
    render.set_defaults(run=_render_report)
    commands.add_parser("zoo", help="train or list the bundled toy models (see: interp-checks zoo --help)")
    _add_compare_parser(commands)
    _add_mine_parser(commands)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
