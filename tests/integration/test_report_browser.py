"""report.html in a real browser: headless Chromium opens it offline and finds nothing wrong;
the same check finds each kind of breakage on deliberately broken pages.

Needs Debian's ``chromium`` and Python ``playwright`` (``pip install -e '.[test]'``). Without them
the tests skip, unless ``INTERP_CHECKS_REQUIRE_BROWSER`` is set (``.ci/run`` sets it): then they
fail, so CI cannot pass by silently skipping the browser.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

from interp_checks.models.native import boot_random, save_native
from interp_checks.plugin import OPT_RESAMPLES
from interp_checks.report import render_html, write_reports
from interp_checks.report.html import claim_anchor
from tests.helpers.browser import REQUIRE_ENV, Expected, browser_missing, launch, page_problems
from tests.helpers.report_records import synthetic_claims, synthetic_report

TINY = dict(d_model=32, n_layers=2, n_heads=4, d_head=8, n_ctx=128, d_vocab=100, attn_only=True, normalization_type="LN", act_fn="gelu")
INPUTS = "inputs: {kind: repeated_random_tokens, seq_len: 16, n: 32}"
# On random weights: refuted (the test fails), refuted as expected (passes), supported, an error.
CLAIMS = f"""
model: native:./rand2l
seed: 0
claims:
  - id: L1H0-induction
    statement: Head L1H0 is an induction head
    check: induction_head
    head: L1H0
    {INPUTS}
    expect: {{score: ">= 0.4"}}
  - id: L0H1-previous-token-FALSE
    statement: Head L0H1 is a previous-token head
    check: previous_token_head
    head: L0H1
    {INPUTS}
    expect: {{score: ">= 0.4"}}
    expected: refuted
  - id: L1H0-not-induction
    statement: Head L1H0 is not an induction head
    check: induction_head
    head: L1H0
    {INPUTS}
    expect: {{score: "< 0.4"}}
  - id: head-outside
    statement: a head the model does not have
    check: induction_head
    head: L9H0
    {INPUTS}
    expect: {{score: ">= 0.4"}}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = browser_missing()
    if missing:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{missing}; {REQUIRE_ENV} is set, so the browser test must run (see .ci/run)", pytrace=False)
        pytest.skip(f"{missing} (set {REQUIRE_ENV}=1 to make this a failure)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


def expected_for(report: dict[str, Any]) -> Expected:
    claims = report["claims"]
    return Expected(
        anchors=[claim_anchor(c) for c in claims],
        outcomes=[c["outcome"] for c in claims],
        figures=sum(len(c.get("figures") or []) for c in claims),
        models=[c["model"] for c in claims],
    )


def test_report_of_real_claims_and_every_figure_kind_opens_offline_and_works(pytester: pytest.Pytester, browser: Any, tmp_path: Path) -> None:
    save_native(boot_random(TINY, seed=5), pytester.path / "rand2l")
    pytester.makefile(".claims.yaml", suite=textwrap.dedent(CLAIMS))
    result = pytester.runpytest_inprocess(f"{OPT_RESAMPLES}=999")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["reports: *report.json, *report.md and *report.html"])
    written = pytester.path / "reports"
    real = json.loads((written / "report.json").read_text(encoding="utf-8"))
    assert sorted(c["outcome"] for c in real["claims"]) == ["error", "refuted", "refuted", "supported"]

    # the page the plugin wrote, as it is
    check = page_problems(browser, written / "report.html", expected_for(real))
    assert check.problems == [], check.problems

    # the real claims plus synthetic ones carrying a figure of every kind, a baseline and hostile text
    folder = tmp_path / "combined"
    write_reports(real["claims"] + synthetic_claims(), folder, settings=real["settings"])
    combined = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    check = page_problems(browser, folder / "report.html", expected_for(combined))
    (tmp_path / "report.png").write_bytes(check.screenshot)  # to look at when this fails
    assert check.problems == [], check.problems
    assert check.requests == [(folder / "report.html").resolve().as_uri()]


def _drop_first_section(page: str) -> str:
    return re.sub(r'<section class="claim.*?</section>', "", page, count=1, flags=re.S)


def _drop_first_svg_figure(page: str) -> str:
    return re.sub(r'<figure class="fig fig-(heatmap|strip|line|bars)">.*?</figure>', "", page, count=1, flags=re.S)


BREAKAGES = {
    "script error": (lambda page: page.replace("</body>", "<script>notDefinedAnywhere();</script></body>"), "page error"),
    "missing section": (_drop_first_section, "claim sections"),
    "missing figure": (_drop_first_svg_figure, "figures drawn"),
    "figure error box": (lambda page: page.replace("<svg class=\"plot\"", '<div class="fig-error">x</div><svg class="plot"', 1), "'cannot draw figure' boxes"),
    "blank page": (lambda page: re.sub(r"<main>.*</main>", "<main></main>", page, flags=re.S), "looks blank"),
    "filter does nothing": (lambda page: page.replace("r.hidden = !ok;", ""), "filter outcome="),
    "no script": (lambda page: re.sub(r"<script>.*?</script>", "", page, flags=re.S), "filter controls are not shown"),
    "external image, blocked by the page's CSP": (lambda page: page.replace("<main>", '<main><img src="https://example.invalid/p.png" alt="">'), "Content Security Policy"),
    "external image, no CSP": (
        lambda page: re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page).replace("<main>", '<main><img src="https://example.invalid/p.png" alt="">'),
        "requests beyond the page itself: ['https://example.invalid/p.png']",
    ),
}


@pytest.fixture(scope="module")
def good_page() -> tuple[str, Expected]:
    report = synthetic_report()
    return render_html(report), expected_for(report)


def test_the_check_passes_the_unbroken_page(browser: Any, good_page: tuple[str, Expected], tmp_path: Path) -> None:
    page, expected = good_page
    (tmp_path / "report.html").write_text(page, encoding="utf-8")
    assert page_problems(browser, tmp_path / "report.html", expected).problems == []


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_the_check_fails_a_broken_page(browser: Any, good_page: tuple[str, Expected], tmp_path: Path, breakage: str) -> None:
    page, expected = good_page
    breaking, symptom = BREAKAGES[breakage]
    broken = breaking(page)
    assert broken != page, "the breakage changed nothing: fix the test"
    (tmp_path / "report.html").write_text(broken, encoding="utf-8")
    problems = page_problems(browser, tmp_path / "report.html", expected).problems
    assert any(symptom in problem for problem in problems), problems
