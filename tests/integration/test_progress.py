"""Progress end to end: the engine's events on a tiny model, and what pytest's terminal shows.

The TTY case replays the raw terminal output on a small screen emulator (carriage returns, line
clears, cursor up and right) and compares the final screen with a run without progress: the live
status line must leave nothing behind, and pytest's dots and percentages must be where they were.
"""

from __future__ import annotations

import re
import textwrap
import warnings
from pathlib import Path

import pytest

from interp_checks import engine as engine_module
from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import ERROR, Engine, Settings
from interp_checks.models.native import boot_random, save_native
from interp_checks.plugin import OPT_PROGRESS, OPT_RESAMPLES
from interp_checks.progress import ChunkDone, GroupDone, GroupStarted

TINY = dict(d_model=16, n_layers=2, n_heads=2, d_head=8, n_ctx=64, d_vocab=60, attn_only=True, normalization_type="LN", act_fn="gelu")
FAST = f"{OPT_RESAMPLES}=999"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("progress")
    return {name: save_native(boot_random(TINY, seed=seed), root / name) for name, seed in (("model", 1), ("base", 2))}


def spec(models: dict[str, Path], claim_id: str, inputs: dict, check: str = "induction_head", **params) -> ClaimSpec:
    expect = {"mean_gain": "> -5"} if check == "logprob_gain" else {"score": "< 0.99"}
    return ClaimSpec(
        id=claim_id, path=models["model"].parent / "x.claims.yaml", index=0, check=check, model=f"native:{models['model']}",
        inputs=inputs, expect={k: parse_expectation(v) for k, v in expect.items()}, params=params,
    )


HEADS = {"kind": "repeated_random_tokens", "seq_len": 6, "n": 10}
GAIN = {"kind": "random_tokens", "seq_len": 8, "n": 6}


def test_the_engine_reports_each_group_its_chunks_and_totals_including_the_null_twins(models):
    events: list = []
    claims = [
        spec(models, "a", HEADS, head="L1H0"),
        spec(models, "b", HEADS, check="previous_token_head", head="L0H1"),
        spec(models, "gain", GAIN, check="logprob_gain", baseline=f"native:{models['base']}"),
    ]
    results = Engine(Settings(n_resamples=99, null_draws=2, batch_size=4), progress=events.append).evaluate(claims)
    assert all(r.outcome != ERROR for r in results), [r.error for r in results]
    starts = [e for e in events if isinstance(e, GroupStarted)]
    assert [(s.index, s.groups, s.claims, s.sequences, s.twins, s.total) for s in starts] == [
        (1, 2, 2, 10, 2, 30),  # 10 sequences through the model and its 2 random twins
        (2, 2, 1, 6, 0, 12),  # 6 sequences through the model and the baseline; zero gain needs no twin
    ]
    assert starts[0].models == (f"native:{models['model']}",) and "repeated_random_tokens" in starts[0].inputs and "seed 0" in starts[0].inputs
    assert starts[1].models == (f"native:{models['model']}", f"native:{models['base']}")
    # chunks of 4, 4 and 2 sequences: the model's pass, then each twin's
    first = [e.done for e in events if isinstance(e, ChunkDone) and e.index == 1]
    assert first == [4, 8, 12, 16, 20, 24, 26, 28, 30]
    assert [e.done for e in events if isinstance(e, ChunkDone) and e.index == 2] == [8, 12]  # 4 then 2 rows, both models
    assert all(e.total == (30 if e.index == 1 else 12) for e in events if isinstance(e, ChunkDone))
    # each group: started, its chunks, done; in that order
    kinds = [(type(e).__name__, e.index) for e in events]
    assert kinds == [("GroupStarted", 1)] + [("ChunkDone", 1)] * 9 + [("GroupDone", 1), ("GroupStarted", 2)] + [("ChunkDone", 2)] * 2 + [("GroupDone", 2)]
    done = [e for e in events if isinstance(e, GroupDone)]
    assert all(d.completed and d.seconds > 0 for d in done) and [d.claims for d in done] == [2, 1]


def test_a_group_whose_run_fails_still_ends(models, monkeypatch):
    real, calls = engine_module.capture, []

    def failing_twin(bridge, tokens, needs):
        calls.append(1)
        if len(calls) == 2:  # the first random twin's pass
            raise RuntimeError("out of device memory")
        return real(bridge, tokens, needs)

    monkeypatch.setattr(engine_module, "capture", failing_twin)
    events: list = []
    (result,) = Engine(Settings(n_resamples=99, null_draws=2), progress=events.append).evaluate([spec(models, "a", HEADS, head="L1H0")])
    assert result.outcome == ERROR and "out of device memory" in result.error
    assert [type(e).__name__ for e in events] == ["GroupStarted", "ChunkDone", "GroupDone"]
    assert events[-1].completed is False


def test_a_failing_progress_callback_never_costs_a_verdict(models):
    def broken(event):
        raise OSError("the terminal went away")

    engine = Engine(Settings(n_resamples=99, null_draws=1), progress=broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (result,) = engine.evaluate([spec(models, "a", HEADS, head="L1H0")])
    assert result.outcome != ERROR, result.error
    assert engine.progress is None and any("the progress callback failed" in str(w.message) for w in caught)


# --- through pytest ----------------------------------------------------------------------------------

CLAIMS = """\
model: native:./model
seed: 0
claims:
  - {id: a, check: induction_head, head: L1H0, inputs: {kind: repeated_random_tokens, seq_len: 6, n: 12}, expect: {score: "< 0.99"}}
  - {id: b, check: previous_token_head, head: L0H1, inputs: {kind: repeated_random_tokens, seq_len: 6, n: 12}, expect: {score: "< 0.99"}}
  - {id: c, check: induction_head, layer: 0, inputs: {kind: random_tokens, seq_len: 8, n: 12}, expect: {max_score: "< 0.99"}}
"""
TIMING = re.compile(r" in \d+\.\d+s")
# a terminal that shows what a TTY would, and keeps the raw bytes (pytester splits output on \r)
TTY_CONFTEST = """
import pytest
from _pytest.terminal import TerminalReporter

class Terminal:
    encoding = "utf-8"
    def __init__(self, path):
        self.raw = open(path, "w", encoding="utf-8", newline="")
    def write(self, text):
        self.raw.write(text)
        self.raw.flush()
        return len(text)
    def flush(self):
        pass
    def isatty(self):
        return True

@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    config.pluginmanager.unregister(name="terminalreporter")
    config.pluginmanager.register(TerminalReporter(config, Terminal("raw.txt")), "terminalreporter")
"""


@pytest.fixture
def suite(pytester, models) -> pytest.Pytester:
    (pytester.path / "model").symlink_to(models["model"], target_is_directory=True)
    pytester.makefile(".claims.yaml", suite=CLAIMS)
    return pytester


def screen(raw: str) -> list[str]:
    """The lines a terminal shows after ``raw``: text, \\n, \\r, ESC[K, ESC[2K, ESC[nA, ESC[nC (colours ignored)."""
    rows: list[list[str]] = [[]]
    row = col = 0
    for token in re.findall(r"\x1b\[\d*[A-Za-z]|.|\n", raw, flags=re.S):
        if token.startswith("\x1b["):
            count, code = int(token[2:-1] or 1), token[-1]
            if code == "A":
                row = max(0, row - count)
            elif code == "C":
                col += count
            elif code == "K":
                del rows[row][col if token == "\x1b[K" else 0 :]
            continue
        if token == "\n":
            row, col = row + 1, 0
            rows.extend([] for _ in range(row + 1 - len(rows)))
        elif token == "\r":
            col = 0
        else:
            line = rows[row]
            line.extend(" " for _ in range(col + 1 - len(line)))
            line[col] = token
            col += 1
    return ["".join(line).rstrip() for line in rows]


def run_tty(pytester: pytest.Pytester, *args: str) -> tuple[str, list[str]]:
    pytester.makeconftest(TTY_CONFTEST)
    assert pytester.runpytest_inprocess(FAST, "-p", "no:cacheprovider", *args).ret == 0
    with open(pytester.path / "raw.txt", encoding="utf-8", newline="") as file:  # keep each \r
        raw = file.read()
    shown = [re.sub("=+", "=", TIMING.sub(" in T", line)) for line in screen(raw)]  # the time changes the padding
    assert [line for line in shown if line][-1] == "= 3 passed in T =", shown  # the summary is intact
    return raw, shown


@pytest.mark.parametrize("verbosity", [[], ["-v"]])
def test_on_a_tty_the_live_line_shows_then_leaves_the_screen_as_pytest_left_it(suite, monkeypatch, verbosity):
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("TERM", raising=False)
    raw, shown = run_tty(suite, *verbosity)  # auto: a TTY gets the live line
    assert "interp 1/2 [" in raw and "/72 | native:" in raw and "72/72" in raw  # 12 sequences x (model + 5 random twins)
    _, plain = run_tty(suite, f"{OPT_PROGRESS}=off", *verbosity)
    assert shown == plain, "\n".join(shown)
    assert not any("interp 1/2" in line or "interp 2/2" in line for line in shown)
    if not verbosity:
        assert any(re.fullmatch(r"suite\.claims\.yaml \.\.\. +\[100%\]", line) for line in shown), shown


def test_in_a_log_with_on_each_group_gets_a_line_and_the_summary_is_intact(suite):
    result = suite.runpytest_inprocess(FAST, f"{OPT_PROGRESS}=on")
    result.assert_outcomes(passed=3)
    lines = result.outlines
    start = [i for i, line in enumerate(lines) if line.startswith("interp: group 1/2: native:")]
    assert start and "random twins on {kind: repeated_random_tokens, seq_len: 6, n: 12, bos: True}, seed 0: 2 claims, 12 sequences" in lines[start[0]]
    assert re.fullmatch(r"interp: group 1/2 done in \d+\.\d s \(2 claims\)", lines[start[0] + 1])
    assert lines[start[0] + 2].startswith("interp: group 2/2: ") and lines[start[0] + 3].startswith("interp: group 2/2 done in ")
    # pytest's own line for the file comes back whole, on a line of its own, after the progress lines
    assert re.fullmatch(r"suite\.claims\.yaml \.\.\. +\[100%\]", lines[start[0] + 4]), lines
    assert not any("\r" in line or "\x1b" in line for line in lines)
    assert re.fullmatch(r"=+ 3 passed in .* =+", lines[-1])


def test_in_a_log_at_v_the_lines_come_before_pytest_s_own_verbose_line(suite):
    result = suite.runpytest_inprocess(FAST, "-v")  # auto at -v: lines
    lines = result.outlines
    first = next(i for i, line in enumerate(lines) if line.startswith("interp: group 1/2: "))
    assert lines[first - 1].rstrip() == "suite.claims.yaml::a"  # pytest had begun the item's line
    assert re.fullmatch(r"suite\.claims\.yaml::a PASSED +\[ 33%\]", lines[first + 4]), lines


@pytest.mark.parametrize("args", [["-q"], []])
def test_in_a_log_without_v_nothing_extra_appears(suite, args):
    quiet = suite.runpytest_inprocess(FAST, "-p", "no:cacheprovider", *args).outlines
    off = suite.runpytest_inprocess(FAST, "-p", "no:cacheprovider", f"{OPT_PROGRESS}=off", *args).outlines
    assert [TIMING.sub("", line) for line in quiet] == [TIMING.sub("", line) for line in off]
    assert not any("interp: group" in line or "sequence passes" in line for line in quiet)


def test_an_unreadable_claim_file_is_named_in_the_failure_header(pytester):
    pytester.makefile(".claims.yaml", broken="model: x\nclaims:\n  - id: a\n    check: [unclosed\n")
    result = pytester.runpytest_inprocess(FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*_ claim file broken.claims.yaml could not be read _*", "*broken.claims.yaml: malformed YAML at line*"])
    assert not any(re.search(r"claim file-error: +_", line) for line in result.outlines)
