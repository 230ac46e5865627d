"""The bundled claims in hypotheses/ (the main job) must all get the verdict they state.

True claims carry the default ``expected: supported``, deliberately false ones ``expected: refuted``,
so "every item passed" means every true claim was supported and every false one refuted. This is
the same run as the README's main-job command, with fewer bootstrap resamples.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from interp_checks.plugin import OPT_RESAMPLES

HYPOTHESES = Path(__file__).resolve().parents[2] / "hypotheses"


def test_every_bundled_claim_gets_its_stated_verdict(pytester):
    files = sorted(HYPOTHESES.glob("*.claims.yaml"))
    assert files, "hypotheses/ has no claim files"
    for path in files:
        shutil.copy(path, pytester.path / path.name)
    result = pytester.runpytest_inprocess(f"{OPT_RESAMPLES}=1999", "-p", "no:randomly")
    claims = json.loads((pytester.path / "reports" / "report.json").read_text())["claims"]
    wrong = [(c["id"], c["outcome"], c["expected"], c.get("error")) for c in claims if c["outcome"] != c["expected"]]
    assert not wrong, wrong
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == len(claims) and not outcomes.get("failed")
    assert {c["expected"] for c in claims} == {"supported", "refuted"}, "the suite must show both verdicts"
