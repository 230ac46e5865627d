"""``interp-checks`` / ``python -m interp_checks``: the commands around the pytest plugin.

    interp-checks checks                  list claim families (checks) and input generators
    interp-checks report report.json      re-render report.md from a report.json
    interp-checks zoo ...                 the bundled toy models (same as python -m interp_checks.zoo)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _list_checks(_: argparse.Namespace) -> int:
    from interp_checks.checks.base import available_checks
    from interp_checks.inputs.generators import available_generators

    print("checks (claim families):")
    for name, check in sorted(available_checks().items()):
        print(f"  {name:24} {check.description}; keys: {', '.join(check.params)}; statistics: {', '.join(check.statistics)}")
    print("inputs kinds:")
    for name, generator in sorted(available_generators().items()):
        defaults = ", ".join(f"{k}={v}" for k, v in generator.defaults.items())
        print(f"  {name:24} {generator.description} ({defaults})")
    return 0


def _render_report(args: argparse.Namespace) -> int:
    from interp_checks.report import render_markdown

    report = json.loads(Path(args.report).read_text(encoding="utf-8"))
    text = render_markdown(report)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["zoo"]:
        from interp_checks.zoo.__main__ import main as zoo_main

        return zoo_main(argv[1:])
    parser = argparse.ArgumentParser(prog="interp-checks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("checks", help="list claim families and input generators").set_defaults(run=_list_checks)
    render = commands.add_parser("report", help="render report.md from report.json")
    render.add_argument("report")
    render.add_argument("--out", help="write here instead of standard output")
    render.set_defaults(run=_render_report)
    commands.add_parser("zoo", help="train or list the bundled toy models (see: interp-checks zoo --help)")
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
