"""Open a report.html in headless Chromium and list what is wrong with it.

Debian's ``chromium`` driven by Python ``playwright`` (its own browser download does not work
offline; FACTS.md has the flags). ``page_problems`` returns a list of problems rather than
asserting, so a test can show that it finds each problem on a deliberately broken page.
"""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("INTERP_CHECKS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
REQUIRE_ENV = "INTERP_CHECKS_REQUIRE_BROWSER"
MIN_COLOURS = 16  # a blank or single-colour page has 1-2; text alone anti-aliases into dozens


def browser_missing() -> str | None:
    """Why the browser test cannot run here (None when it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python playwright is not installed (pip install -e '.[test]')"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"chromium is not installed at {CHROMIUM} (apt-get install -y chromium, or set INTERP_CHECKS_CHROMIUM)"
    return None


def launch(playwright: Any) -> Any:
    """Headless Debian Chromium, with the flags that keep it off the (closed) network."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@dataclass
class Expected:
    """What the page must show: its claims' anchors and outcomes, and how many figures."""

    anchors: list[str]
    outcomes: list[str]
    figures: int
    figure_errors: int = 0
    models: list[str] = field(default_factory=list)


@dataclass
class PageCheck:
    problems: list[str]
    screenshot: bytes = b""
    requests: list[str] = field(default_factory=list)


def distinct_colours(png: bytes) -> int:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours) if colours is not None else 1 << 20


def _visible_rows(page: Any) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        "#claims-table tbody tr",
        "rows => rows.filter(r => r.offsetParent !== null).map(r => ({outcome: r.dataset.outcome, model: r.dataset.model}))",
    )


def _check_filters(page: Any, expected: Expected) -> list[str]:
    problems = []
    if not page.is_visible("#filters"):
        return ["the filter controls are not shown (did the inline script run?)"]
    total = len(expected.outcomes)
    for outcome in sorted(set(expected.outcomes)):
        page.select_option("#filter-outcome", outcome)
        rows = _visible_rows(page)
        want = expected.outcomes.count(outcome)
        if len(rows) != want or any(r["outcome"] != outcome for r in rows):
            problems.append(f"filter outcome={outcome}: {len(rows)} rows visible ({sorted({r['outcome'] for r in rows})}), expected {want}")
    page.select_option("#filter-outcome", "")
    if len(_visible_rows(page)) != total:
        problems.append(f"filter outcome=all: {len(_visible_rows(page))} rows visible, expected {total}")
    for model in sorted(set(expected.models))[:2]:
        page.select_option("#filter-model", model)
        rows = _visible_rows(page)
        if len(rows) != expected.models.count(model) or any(r["model"] != model for r in rows):
            problems.append(f"filter model={model}: {len(rows)} rows visible, expected {expected.models.count(model)}")
        page.select_option("#filter-model", "")
    return problems


def page_problems(browser: Any, path: Path, expected: Expected, *, full_page: bool = False) -> PageCheck:
    """Open ``path`` (file://) with every other request aborted and recorded; list what is wrong.

    The blank-page check reads the first screen (``full_page`` takes the whole page: slower)."""
    url = Path(path).resolve().as_uri()
    problems: list[str] = []
    requests: list[str] = []
    shot = b""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=True)
    try:

        def route(r: Any) -> None:
            if r.request.url == url:
                r.continue_()
            else:
                r.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}") if message.type in ("error", "warning") else None)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.goto(url, wait_until="load")
        shot = page.screenshot(full_page=full_page)
        colours = distinct_colours(shot)
        if colours < MIN_COLOURS:
            problems.append(f"the page looks blank: {colours} distinct colours in the screenshot")
        sections = page.eval_on_selector_all("section.claim", "els => els.map(e => e.id)")
        if sections != expected.anchors:
            missing = [a for a in expected.anchors if a not in sections]
            extra = [s for s in sections if s not in expected.anchors]
            problems.append(f"claim sections {len(sections)} (expected {len(expected.anchors)}): missing {missing}, unexpected {extra}")
        links = page.eval_on_selector_all("#claims-table tbody a", "els => els.map(e => e.getAttribute('href'))")
        if links != [f"#{a}" for a in expected.anchors]:
            problems.append(f"table links {links} do not point at the claim sections")
        drawn = page.eval_on_selector_all(
            "section.claim figure.fig", "els => els.filter(f => f.querySelector('svg.plot, .tokens')).length"
        )
        if drawn != expected.figures:
            problems.append(f"{drawn} figures drawn (SVG or token block), expected {expected.figures}")
        boxes = page.eval_on_selector_all(".fig-error", "els => els.length")
        if boxes != expected.figure_errors:
            problems.append(f"{boxes} 'cannot draw figure' boxes, expected {expected.figure_errors}")
        problems += _check_filters(page, expected)
    finally:
        context.close()
    others = [r for r in requests if r != url]
    if others:
        problems.append(f"requests beyond the page itself: {others}")
    return PageCheck(problems=problems, screenshot=shot, requests=requests)
