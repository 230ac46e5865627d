"""pytest-xdist: ``-n 2`` splits the measuring and reports exactly what a serial run reports.

The suite has five shares of work (claims that share a forward pass): two models on one input
spec (two shares: a pass is shared per model), a comparison of the two models on other inputs, a
claim on a third input spec, another seed; and a Python claim (the ``interp`` fixture) that runs
last, as it does serially. A ``conftest.py`` written beside the claims logs every claim the engine
prepares, with the process that prepared it: the evidence that each claim is measured once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from interp_checks.models.native import boot_random, load_tokenizer, save_native
from interp_checks.plugin import OPT_NULL_DRAWS, OPT_REPORT, OPT_RESAMPLES, OPT_XDIST_TIMEOUT

pytest.importorskip("xdist", reason="pytest-xdist is in the test extra: pip install -e '.[test]'")

ZOO_TOKENIZER = Path(__file__).resolve().parents[2] / "fixtures" / "zoo" / "tokenizer.json"
FAST = (f"{OPT_RESAMPLES}=999", f"{OPT_NULL_DRAWS}=2", "-p", "no:cacheprovider")
TIMING = ("duration_s", "load_s", "measure_s")
RUN_LIMIT_S = 600  # a hang fails the test instead of the test run

# Logs each claim the engine prepares (= measures): "<xdist worker or serial> <pid> <file>::<claim>".
LOGGING_CONFTEST = """
import os
from pathlib import Path

from interp_checks.engine import Engine

LOG = Path(__file__).parent / "prepared.log"
_prepare = Engine.prepare


def prepare(self, spec):
    with LOG.open("a") as log:
        log.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'serial')} {os.getpid()} {spec.path.name}::{spec.id}\\n")
    return _prepare(self, spec)


Engine.prepare = prepare
"""


def arch(n_layers: int) -> dict:
    return dict(d_model=32, n_layers=n_layers, n_heads=4, d_head=8, n_ctx=128, d_vocab=2048, attn_only=True, normalization_type="LN", act_fn="gelu")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("xdist-models")
    tokenizer = load_tokenizer(ZOO_TOKENIZER)
    return {
        name: save_native(boot_random(arch(layers), seed=seed, tokenizer=tokenizer), root / name, tokenizer_json=ZOO_TOKENIZER)
        for name, layers, seed in (("two", 2, 1), ("one", 1, 2))
    }


def write_suite(folder: Path, models: dict[str, Path], conftest_extra: str = "") -> None:
    """Claim files with five shares, a Python claim, and the logging conftest (plus ``conftest_extra``)."""
    two, one = f"native:{models['two']}", f"native:{models['one']}"
    files = {
        "a_two.claims.yaml": f"""
            model: {two}
            seed: 0
            inputs: {{kind: repeated_random_tokens, seq_len: 16, n: 32}}
            claims:
              - {{id: two-L1H0-induction, check: induction_head, head: L1H0, expect: {{score: ">= 0.4"}}, expected: refuted}}
              - {{id: two-L0H1-previous, check: previous_token_head, head: L0H1, expect: {{score: "< 0.9"}}}}
              - {{id: two-layer1-none, check: induction_head, layer: 1, expect: {{max_score: "< 0.5"}}}}
              - id: two-short-inputs
                check: duplicate_token_head
                head: L0H2
                inputs: {{kind: repeated_random_tokens, seq_len: 12, n: 24}}
                expect: {{score: "< 0.9"}}
            """,
        "b_one.claims.yaml": f"""
            model: {one}
            seed: 0
            inputs: {{kind: repeated_random_tokens, seq_len: 16, n: 32}}
            claims:
              - {{id: one-L0H0-induction, check: induction_head, head: L0H0, expect: {{score: ">= 0.4"}}, expected: refuted}}
              - {{id: one-layer0-none, check: previous_token_head, layer: 0, expect: {{max_score: "< 0.5"}}}}
              - {{id: one-other-seed, seed: 3, check: induction_head, head: L0H1, expect: {{score: "< 0.9"}}}}
            """,
        "c_compare.claims.yaml": f"""
            model: {two}
            seed: 0
            claims:
              - id: two-vs-one-repeats
                check: logprob_gain
                baseline: {one}
                inputs: {{kind: repeated_random_tokens, seq_len: 16, n: 24}}
                where: {{region: repeat}}
                expect: {{mean_gain: ">= 1.0"}}
                expected: refuted
            """,
    }
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    (folder / "test_zz_python_claim.py").write_text(
        textwrap.dedent(
            f"""
            import os

            import torch

            from interp_checks.workers import threads_per_worker


            def test_python_claim(interp):
                interp.check(
                    id="py-two-L0H3", model="{two}", check="previous_token_head", head="L0H3",
                    inputs={{"kind": "repeated_random_tokens", "seq_len": 16, "n": 32}}, expect={{"score": "< 0.9"}},
                )
                if "PYTEST_XDIST_WORKER_COUNT" in os.environ:  # each worker uses its share of the cores
                    assert torch.get_num_threads() == threads_per_worker(int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
            """
        )
    )
    (folder / "conftest.py").write_text(LOGGING_CONFTEST + textwrap.dedent(conftest_extra))


YAML_CLAIMS = {
    "two-L1H0-induction", "two-L0H1-previous", "two-layer1-none", "two-short-inputs",
    "one-L0H0-induction", "one-layer0-none", "one-other-seed", "two-vs-one-repeats",
}  # fmt: skip


def comparable(report: dict) -> list[dict]:
    """The report's claims in order, without what may differ between runs: timing and the folder."""
    return [
        {**{k: v for k, v in claim.items() if k not in TIMING}, "file": Path(claim["file"]).name}
        for claim in report["claims"]
    ]


def prepared(folder: Path) -> list[tuple[str, str, str]]:
    """(worker, pid, claim id) for each claim the engine prepared in the run in ``folder``."""
    lines = (folder / "prepared.log").read_text().split()
    rows = [tuple(lines[i : i + 3]) for i in range(0, len(lines), 3)]
    return [(worker, pid, claim.split("::")[1]) for worker, pid, claim in rows]


@pytest.fixture(scope="module")
def serial(tmp_path_factory, models) -> dict:
    """The same suite run without xdist: the report every -n run must reproduce."""
    folder = tmp_path_factory.mktemp("xdist-serial")
    write_suite(folder, models)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *FAST, f"{OPT_REPORT}=out", "-q"],
        cwd=folder, capture_output=True, text=True, timeout=RUN_LIMIT_S,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert Counter(claim for _, _, claim in prepared(folder)) == Counter(YAML_CLAIMS | {"py-two-L0H3"})
    return json.loads((folder / "out" / "report.json").read_text())


def test_claims_measured_share_by_share_in_separate_engines_and_decided_together_match_evaluate(models, tmp_path):
    from interp_checks.claims.schema import load_claim_file
    from interp_checks.engine import Engine, Family, Settings, plan_shares
    from interp_checks.report.schema import claim_record

    write_suite(tmp_path, models)
    specs = [c for path in sorted(tmp_path.glob("*.claims.yaml")) for c in load_claim_file(path).claims]
    settings = Settings(n_resamples=999, null_draws=2)
    whole = Engine(settings).evaluate(specs, family=Family(size=len(specs)))
    shares = plan_shares(specs, settings)
    assert len(shares) == 5
    apart: list = [None] * len(specs)
    for share in reversed(shares):  # another order, each share in a process of its own
        for index, result in zip(share.indices, Engine(settings).measure([specs[i] for i in share.indices])):
            apart[index] = result
    decided = Engine(settings).decide(apart, Family(size=len(specs)))

    def records(results: list) -> list[dict]:
        return [{k: v for k, v in claim_record(r).items() if k not in TIMING} for r in results]

    assert records(decided) == records(whole)
    assert {r.outcome for r in decided} == {"supported", "refuted"}


def run_two_workers(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    result = pytester.runpytest_subprocess("-n", "2", *FAST, f"{OPT_REPORT}=out", *args, timeout=RUN_LIMIT_S)
    return result, json.loads((pytester.path / "out" / "report.json").read_text())


def test_two_workers_report_what_one_process_reports_measuring_each_claim_once(pytester, models, serial, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # torch's default: every core (what pinning must undo)
    write_suite(pytester.path, models)
    result, report = run_two_workers(pytester)
    result.assert_outcomes(passed=len(YAML_CLAIMS) + 1)

    assert comparable(report) == comparable(serial)  # verdicts, estimates, intervals, adjusted p, family, order
    assert {c["family_size"] for c in report["claims"]} == {len(YAML_CLAIMS) + 1}
    log = prepared(pytester.path)
    yaml_measured = Counter(claim for _, _, claim in log if claim in YAML_CLAIMS)
    assert yaml_measured == Counter(YAML_CLAIMS), f"each claim measured once across the workers, got {yaml_measured}"
    assert {worker for worker, _, _ in log} <= {"gw0", "gw1"}


# The first worker to claim the share holding "two-L1H0-induction" dies holding it (once).
DYING_CONFTEST = """
import os
from interp_checks.engine import Engine

_measure = Engine.measure


def measure(self, specs):
    specs = list(specs)
    if any(spec.id == "two-L1H0-induction" for spec in specs):
        try:
            os.close(os.open(Path(__file__).parent / "died", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            os._exit(3)
    return _measure(self, specs)


Engine.measure = measure
"""


def test_a_worker_that_dies_while_measuring_is_not_waited_for(pytester, models, serial):
    write_suite(pytester.path, models, DYING_CONFTEST)
    result, report = run_two_workers(pytester)  # a hang would fail here, at RUN_LIMIT_S

    assert (pytester.path / "died").exists()
    assert "crashed" in result.stdout.str()  # xdist saw it die (and started a replacement)
    by_id = {c["id"]: c for c in comparable(serial)}
    reported = comparable(report)
    assert len(reported) >= len(by_id) - 1  # at most the item the dead worker was running is lost
    assert all(claim == by_id[claim["id"]] for claim in reported)
    measured = Counter(claim for _, _, claim in prepared(pytester.path) if claim in YAML_CLAIMS)
    assert measured == Counter(YAML_CLAIMS)  # the dead worker's share too, by a live one


# The worker that measures the share holding "two-L1H0-induction" stays alive but does not finish
# until another worker has reported a claim as timed out (or 120 s).
SLOW_CONFTEST = """
import time

from interp_checks.engine import Engine

_measure = Engine.measure
TIMED_OUT = Path(__file__).parent / "timed-out"


def measure(self, specs):
    specs = list(specs)
    if any(spec.id == "two-L1H0-induction" for spec in specs):
        deadline = time.monotonic() + 120
        while not TIMED_OUT.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    return _measure(self, specs)


Engine.measure = measure


def pytest_runtest_logreport(report):
    if report.failed and "--interp-xdist-timeout" in str(report.longrepr):
        TIMED_OUT.touch()
"""


def test_a_live_worker_slower_than_the_timeout_is_named_in_the_error(pytester, models):
    write_suite(pytester.path, models, SLOW_CONFTEST)
    result, report = run_two_workers(pytester, f"{OPT_XDIST_TIMEOUT}=2")

    assert (pytester.path / "timed-out").exists()  # the error came while the slow worker was still measuring
    errors = [c["error"] for c in report["claims"] if c["outcome"] == "error"]
    assert errors
    assert all(" s for worker gw" in e and " pid " in e and OPT_XDIST_TIMEOUT in e for e in errors), errors
    assert any("two-L1H0-induction" in e for e in errors)
