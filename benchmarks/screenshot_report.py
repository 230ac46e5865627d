"""Screenshot report.html in headless Chromium: the README's picture of the report.

Re-renders ``report.html`` from a ``report.json`` with the current code, opens it offline (every
request other than the page itself is aborted) and saves a PNG. Needs the test extra
(``pip install -e '.[test]'``: playwright) and Debian's ``chromium``. Usage::

    python -m pytest hypotheses/ -q                      # writes reports/report.json
    python benchmarks/screenshot_report.py [reports/report.json] [--out reports/report-screenshot.png]
                                          [--width 1280] [--height 1000] [--full-page] [--scale 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from interp_checks.report import render_html  # noqa: E402
from tests.helpers.browser import browser_missing, launch  # noqa: E402


def screenshot(report_json: Path, out: Path, *, width: int, height: int, full_page: bool, scale: float) -> list[str]:
    """Save the screenshot; return what went wrong in the page (console errors, requests)."""
    from playwright.sync_api import sync_playwright

    report = json.loads(report_json.read_text(encoding="utf-8"))
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        page_path = Path(folder) / "report.html"
        page_path.write_text(render_html(report), encoding="utf-8")
        url = page_path.as_uri()
        browser = launch(p)
        context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=scale)
        context.route("**/*", lambda r: r.continue_() if r.request.url == url else (problems.append(f"request: {r.request.url}"), r.abort()))
        page = context.new_page()
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.goto(url, wait_until="load")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=full_page)
        browser.close()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", nargs="?", default="reports/report.json", help="a report.json (default reports/report.json)")
    parser.add_argument("--out", default="reports/report-screenshot.png", help="PNG to write (default reports/report-screenshot.png)")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in CSS pixels (default 1280, a laptop)")
    parser.add_argument("--height", type=int, default=1000, help="viewport height (default 1000)")
    parser.add_argument("--full-page", action="store_true", help="the whole page, not just the first screen")
    parser.add_argument("--scale", type=float, default=1.0, help="device pixel ratio (default 1)")
    args = parser.parse_args()
    missing = browser_missing()
    if missing:
        print(f"screenshot_report: {missing}", file=sys.stderr)
        return 2
    problems = screenshot(Path(args.report), Path(args.out), width=args.width, height=args.height, full_page=args.full_page, scale=args.scale)
    print(f"wrote {args.out}")
    for problem in problems:
        print(f"  problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
