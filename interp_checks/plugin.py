"""The pytest plugin (``pytest11`` entry point): options, ``*.claims.yaml`` collection, items, reports.

Every pytest run in an environment with interp_checks installed imports this module, so it
imports nothing heavy: torch, transformer_lens, scipy and the claim machinery load only when a
claim file is collected or the ``interp`` fixture is used.

How a run goes: each claim of a ``*.claims.yaml`` file is a ``ClaimItem`` (node id
``path::claim-id``, so ``-k``, ``-m``, ``--lf``, ``-x`` and junit work as usual). The first claim
item to run evaluates every selected claim item of the session at once, so claims on the same
model and inputs share forward passes; each item then reports its own verdict. The multiplicity
family is fixed at collection, before ``-k``, ``-m`` or ``--lf`` deselect anything: every claim in
the claim files under the paths pytest was given, plus one slot per test that uses the ``interp``
fixture (claims not run count as p = 1; with ``--lf``, which skips collecting files, the size of
the last full run with the same paths, kept in pytest's cache), so a re-run of one failed claim is judged as strictly as
the full run, and Python claims join the same family. Results travel on ``user_properties`` (so they survive xdist and
land in junit XML), and the controller writes ``report.json``, ``report.md`` and ``report.html`` at the end, in
collected order.

With pytest-xdist (``-n N``) each worker, before its first item, measures the shares of the claims
that no other worker has claimed (``interp_checks.workers``); its first claim item then gathers
every share's raw results and decides all claims together, so verdicts and adjusted p-values are a
serial run's. Each worker pins torch to its share of the cores.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from interp_checks.progress import PROGRESS_CHOICES  # plain Python, light like this module

if TYPE_CHECKING:
    from interp_checks.claims.schema import ClaimSpec
    from interp_checks.engine import Engine, Settings
    from interp_checks.family import Family
    from interp_checks.results import ClaimResult

# Option names: the one place they are defined; tests and docs reuse these constants.
OPT_MODEL = "--interp-model"
OPT_DEVICE = "--interp-device"
OPT_ALPHA = "--interp-alpha"
OPT_ADJUST = "--interp-adjust"
OPT_INCONCLUSIVE = "--interp-inconclusive"
OPT_REPORT = "--interp-report"
OPT_RESAMPLES = "--interp-resamples"
OPT_BATCH_SIZE = "--interp-batch-size"
OPT_NULL_DRAWS = "--interp-null-draws"
OPT_MAX_INPUT_TOKENS = "--interp-max-input-tokens"  # = inputs.generators.MAX_INPUT_TOKENS_OPTION
OPT_PROGRESS = "--interp-progress"
DEFAULT_MAX_INPUT_TOKENS = 2**22  # = inputs.generators.DEFAULT_MAX_INPUT_TOKENS (not imported: it is heavy)
OPT_BASELINE = "--interp-baseline"
OPT_FAIL_ON = "--interp-fail-on"
OPT_XDIST_TIMEOUT = "--interp-xdist-timeout"
XDIST_FOLDER = "interp_checks_shares"  # workerinput key: the folder where xdist workers exchange measured shares

CLAIM_FILE_SUFFIX = ".claims.yaml"
RESULT_PROPERTY = "interp_claim"
POSITION_PROPERTY = "interp_position"  # the item's place in the collected order: report.json keeps it under xdist
FILE_ERROR_ITEM = "file-error"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("interp", "interp_checks: statistical claims about transformer models")
    group.addoption(
        OPT_MODEL,
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="bind NAME (used as 'model: NAME' in claim files, or a whole spec such as zoo:attn-only-2l) "
        "to SPEC (zoo:NAME, hf:PATH, gguf:PATH, native:PATH); repeatable. Default: no bindings.",
    )
    group.addoption(OPT_DEVICE, default="auto", help="torch device for models. Default: auto (cuda when available, else cpu).")
    group.addoption(OPT_ALPHA, type=float, default=0.05, help="significance level of every verdict. Default: 0.05.")
    group.addoption(
        OPT_ADJUST,
        choices=("holm", "bh", "none"),
        default="holm",
        help="multiplicity adjustment of p-values over the session's claims: holm (family-wise error), "
        "bh (Benjamini-Hochberg false discovery rate) or none. Default: holm.",
    )
    group.addoption(
        OPT_INCONCLUSIVE,
        choices=("fail", "skip"),
        default="fail",
        help="what an inconclusive claim does to its test. Default: fail.",
    )
    group.addoption(
        OPT_REPORT,
        default="reports",
        metavar="DIR",
        help="folder for report.json, report.md and report.html; 'none' writes no report. Default: reports (relative to rootdir).",
    )
    group.addoption(OPT_RESAMPLES, type=int, default=9999, help="bootstrap resamples per interval. Default: 9999.")
    group.addoption(OPT_BATCH_SIZE, type=int, default=64, help="sequences per forward pass. Default: 64.")
    group.addoption(
        OPT_NULL_DRAWS,
        type=int,
        default=5,
        help="random initialisations pooled into a random-weights null (each is one draw of the null). Default: 5.",
    )
    group.addoption(
        OPT_MAX_INPUT_TOKENS,
        type=int,
        default=DEFAULT_MAX_INPUT_TOKENS,
        metavar="N",
        help="the most tokens one claim's inputs may hold (n x sequence length; text: characters), checked "
        "before anything is allocated; a claim asking for more is an error. "
        f"Default: {DEFAULT_MAX_INPUT_TOKENS} (2**22).",
    )
    group.addoption(
        OPT_PROGRESS,
        choices=PROGRESS_CHOICES,
        default="auto",
        help="show what is being measured (models, inputs, sequences done of total): auto = a live status line on "
        "a terminal, one line per group in logs at -v or more, nothing in logs otherwise; on = also in logs without "
        "-v; off = never. Never on xdist workers. Default: auto.",
    )
    group.addoption(
        OPT_BASELINE,
        default=None,
        metavar="PATH",
        help="the report.json of an earlier run: each claim's record (report.json, report.md, junit) shows the "
        f"baseline's numbers beside the new ones, and {OPT_FAIL_ON} fails claims that drifted. Default: none.",
    )
    group.addoption(
        OPT_FAIL_ON,
        action="append",
        default=[],
        metavar="EXPR",
        help=f"with {OPT_BASELINE}: fail a claim that drifted from the baseline; repeatable and comma-separated. "
        "'verdict' (the verdict changed), 'effect_size:-20%%' / 'effect_size:-0.5' (the effect size fell by more than "
        "20%% of the baseline's, or by 0.5), 'estimate:-10%%' / 'estimate:-0.05' / 'estimate:-0.2nats' (the same for "
        "the estimate, in the statistic's unit; a unit restricts it to claims in that unit). 'Fell' means moved "
        "towards the claim's threshold (for a '<' claim, a rise). Default: none (the baseline is only shown).",
    )
    group.addoption(
        OPT_XDIST_TIMEOUT,
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="with pytest-xdist (-n N): how long a worker waits for another live worker to finish measuring "
        "its share of the claims before its own claims report an error naming that worker (a worker that died "
        "is not waited for: its share is measured again). Default: 3600.",
    )


@dataclass
class SessionState:
    """What one pytest session shares between its claim items: settings, engine, results."""

    config: pytest.Config
    engine: "Engine | None" = None
    family: "Family | None" = None
    results: dict[str, "ClaimResult"] = field(default_factory=dict)
    evaluated: bool = False
    reported: list[dict[str, Any]] = field(default_factory=list)
    baseline: "Baseline | None" = None  # read once per process (each xdist worker reads its own)
    shares_folder: Path | None = None  # xdist controller: made for this run, handed to every worker
    exchange: Any = None  # xdist worker: its workers.ShareExchange, once it has measured its shares
    positions: dict[str, int] | None = None  # node id -> index in session.items

    def position(self, item: pytest.Item) -> int:
        """Where ``item`` stands in the collected order (the order of a serial run's report)."""
        if self.positions is None:
            self.positions = {other.nodeid: index for index, other in enumerate(item.session.items)}
        return self.positions.get(item.nodeid, len(self.positions))

    def settings(self) -> "Settings":
        from interp_checks.engine import Settings
        from interp_checks.models.load import resolve_device
        from interp_checks.models.spec import parse_binding

        option = self.config.getoption
        bindings = dict(parse_binding(text) for text in option(OPT_MODEL))
        return Settings(
            device=resolve_device(option(OPT_DEVICE)),
            alpha=option(OPT_ALPHA),
            adjust=option(OPT_ADJUST),
            n_resamples=option(OPT_RESAMPLES),
            batch_size=option(OPT_BATCH_SIZE),
            null_draws=option(OPT_NULL_DRAWS),
            bindings=bindings,
            max_input_tokens=option(OPT_MAX_INPUT_TOKENS),
        )

    def get_engine(self) -> "Engine":
        if self.engine is None:
            from interp_checks.engine import Engine

            workerinput = getattr(self.config, "workerinput", None)
            if workerinput is not None:  # N xdist workers share the cores instead of each taking all
                from interp_checks.workers import pin_torch_threads

                pin_torch_threads(int(workerinput.get("workercount", 1)))
            self.engine = Engine(self.settings(), progress=self.progress_display())
        return self.engine

    def progress_display(self) -> Any:
        """A ``progress.TerminalProgress`` on pytest's terminal per ``--interp-progress``, or None."""
        from interp_checks.progress import TerminalProgress, choose_mode

        config = self.config
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:  # -p no:terminal
            return None
        isatty = bool(reporter.isatty()) and os.environ.get("TERM") != "dumb"
        worker = hasattr(config, "workerinput")
        mode = choose_mode(config.getoption(OPT_PROGRESS), isatty=isatty, verbosity=config.get_verbosity(), worker=worker)
        if mode is None:
            return None
        capture = config.pluginmanager.get_plugin("capturemanager")
        suspend = capture.global_and_fixture_disabled if capture is not None else None

        def reopen(saved: Any) -> None:
            """At the default verbosity pytest's line is the running test's file path and its dots: write
            the path again so the test's dot lands after it (at -v pytest rewrites the test's name itself)."""
            if isinstance(saved, Path):
                reporter.write_fspath_result(os.path.relpath(saved, config.rootpath), "")

        return TerminalProgress(
            mode, config.get_terminal_writer(), reporter=reporter, suspend=suspend,
            newline_after=config.get_verbosity() < 0, reopen=reopen,
        )

    def close_progress(self) -> None:
        """Leave the terminal clean after an evaluation, whatever happened in it."""
        display = getattr(self.engine, "progress", None)
        if display is not None and hasattr(display, "close"):
            display.close()

    def get_family(self) -> "Family":
        """The session's multiplicity family (sized at collection; see the module docstring)."""
        if self.family is None:
            from interp_checks.family import Family

            self.family = Family(name="session", size=0)
        return self.family

    def evaluate_session_claims(self, session: pytest.Session) -> None:
        """Evaluate all selected claim items together (shared passes, the session's family).

        In an xdist worker that has measured its shares (``measure_shares``), the other workers'
        shares are gathered first, then every claim is decided together as in a serial run."""
        if self.evaluated:
            return
        self.evaluated = True
        items = [item for item in session.items if isinstance(item, ClaimItem)]
        try:
            if self.exchange is not None:
                results = self.get_engine().decide(self.exchange.gather(), self.get_family())
            else:
                results = self.get_engine().evaluate([item.spec for item in items], family=self.get_family())
        except Exception as error:  # an engine bug: every claim reports it rather than a KeyError
            from interp_checks.results import ERROR, ClaimResult
            from interp_checks.workers import ShareTimeout

            message = f"internal error in the engine, please report it: {type(error).__name__}: {error}"
            if isinstance(error, ShareTimeout):  # not a bug: another xdist worker is still measuring
                message = str(error)
            results = [ClaimResult(item.spec, ERROR, error=message) for item in items]
        finally:
            self.close_progress()
        self.results = {item.nodeid: result for item, result in zip(items, results)}

    def measure_shares(self, session: pytest.Session, folder: Path) -> None:
        """An xdist worker's first act: measure the shares of the session's claims that no other
        worker has claimed (``interp_checks.workers``); deciding waits for the first claim item."""
        from interp_checks.engine import plan_shares
        from interp_checks.workers import ShareExchange

        items = [item for item in session.items if isinstance(item, ClaimItem)]
        if not items:
            return
        try:
            engine = self.get_engine()
            specs = [item.spec for item in items]
            exchange = ShareExchange(
                folder=folder,
                worker=str(self.config.workerinput.get("workerid", "worker")),  # type: ignore[attr-defined]
                shares=plan_shares(specs, engine.settings),
                specs=specs,
                keys=[item.nodeid for item in items],
                measure=lambda share: _measure_guarded(engine, [specs[i] for i in share.indices]),
                timeout_s=self.config.getoption(OPT_XDIST_TIMEOUT),
            )
            exchange.measure_unclaimed()
        except Exception:  # e.g. an unusable folder: this worker measures every claim, as without xdist,
            return  # and an error met again there is reported on each claim, not as a crash
        self.exchange = exchange


def _measure_guarded(engine: "Engine", specs: list["ClaimSpec"]) -> list["ClaimResult"]:
    """``engine.measure``, with an engine bug turned into an error on each of these claims."""
    try:
        return engine.measure(specs)
    except Exception as error:
        from interp_checks.results import ERROR, ClaimResult

        message = f"internal error in the engine, please report it: {type(error).__name__}: {error}"
        return [ClaimResult(spec, ERROR, error=message) for spec in specs]


STATE = pytest.StashKey[SessionState]()


@dataclass
class Baseline:
    """``--interp-baseline``'s report, read once per process, and ``--interp-fail-on``'s typed checks."""

    path: Path
    claims: list[dict[str, Any]]
    checks: list[Any]

    def annotate(self, record: dict[str, Any]) -> list[str]:
        """Put the baseline's numbers and the gate's messages on a claim record; return the messages."""
        from interp_checks.report.compare import baseline_record, match_claims

        ((_, old, _),) = [pair for pair in match_claims(self.claims, [record]) if pair[2] is not None]
        record["baseline"], record["drift"] = baseline_record(old, record, str(self.path), self.checks)
        return record["drift"]


def _read_baseline(config: pytest.Config) -> "Baseline | None":
    """Parse ``--interp-fail-on`` into checks and read ``--interp-baseline`` (UsageError naming the fix)."""
    path_text, expressions = config.getoption(OPT_BASELINE), config.getoption(OPT_FAIL_ON)
    if path_text is None:
        if expressions:
            raise pytest.UsageError(f"{OPT_FAIL_ON} compares with a baseline: also pass {OPT_BASELINE}=PATH (an earlier report.json)")
        return None
    from interp_checks.report.compare import BaselineError, FailOnSyntaxError, load_report, parse_fail_on

    try:
        checks = parse_fail_on(expressions)
    except FailOnSyntaxError as error:
        raise pytest.UsageError(f"{OPT_FAIL_ON}: {error}") from None
    path = Path(path_text)
    if not path.is_absolute():
        path = Path(config.invocation_params.dir) / path
    try:
        report = load_report(path)
    except BaselineError as error:
        raise pytest.UsageError(f"{OPT_BASELINE}: {error}") from None
    return Baseline(path, report["claims"], checks)


def pytest_configure(config: pytest.Config) -> None:
    state = SessionState(config)
    config.stash[STATE] = state
    config.pluginmanager.register(ReportCollector(state), "interp_checks_reporter")
    config.addinivalue_line("markers", "interp_claim: a claim from a *.claims.yaml file")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: give every worker (a replacement for a crashed one too) this run's folder
    for measured shares, made once, private to this user, removed at the end."""
    state = node.config.stash[STATE]
    if state.shares_folder is None:
        import tempfile

        state.shares_folder = Path(tempfile.mkdtemp(prefix="interp-checks-shares-"))
    node.workerinput[XDIST_FOLDER] = str(state.shares_folder)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """xdist worker: measure unclaimed shares of the claims before running any item (so a worker
    that xdist hands no claim item still does its part); the items then only decide and report."""
    folder = getattr(session.config, "workerinput", {}).get(XDIST_FOLDER)
    if folder is None or session.config.option.collectonly:
        return
    session.config.stash[STATE].measure_shares(session, Path(folder))


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash[STATE].shares_folder if STATE in config.stash else None
    if folder is not None:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def _validate_options(config: pytest.Config) -> None:
    alpha = config.getoption(OPT_ALPHA)
    if not 0 < alpha < 0.5:
        raise pytest.UsageError(f"{OPT_ALPHA} must be between 0 and 0.5, got {alpha}")
    if config.getoption(OPT_RESAMPLES) < 99:
        raise pytest.UsageError(f"{OPT_RESAMPLES} must be at least 99")
    if config.getoption(OPT_BATCH_SIZE) < 1:
        raise pytest.UsageError(f"{OPT_BATCH_SIZE} must be at least 1")
    if config.getoption(OPT_NULL_DRAWS) < 1:
        raise pytest.UsageError(f"{OPT_NULL_DRAWS} must be at least 1")
    if config.getoption(OPT_MAX_INPUT_TOKENS) < 1:
        raise pytest.UsageError(f"{OPT_MAX_INPUT_TOKENS} must be at least 1")
    if not config.getoption(OPT_XDIST_TIMEOUT) > 0:
        raise pytest.UsageError(f"{OPT_XDIST_TIMEOUT} must be a positive number of seconds")
    for text in config.getoption(OPT_MODEL):
        if "=" not in text:
            raise pytest.UsageError(f"{OPT_MODEL} expects NAME=SPEC (e.g. candidate=hf:./ckpt), got {text!r}")
    config.stash[STATE].baseline = _read_baseline(config)


def pytest_sessionstart(session: pytest.Session) -> None:
    _validate_options(session.config)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Size the multiplicity family before ``-k``, ``-m``, ``--lf`` or ``--deselect`` drop items."""
    state = config.stash[STATE]
    family = state.get_family()
    claim_files = {item.path for item in items if isinstance(item, ClaimItem)} | set(_claim_files_under(config))
    python_slots = sum(1 for item in items if "interp" in getattr(item, "fixturenames", ()))
    family.size = _count_claims(claim_files) + python_slots
    cache = getattr(config, "cache", None)
    if cache is not None:  # --lf and --ff skip collecting files: keep the size the full run had
        import hashlib  # the args hold slashes: as a key path, "tests" and "tests/unit" would collide

        digest = hashlib.sha1("|".join(sorted(map(str, config.args))).encode()).hexdigest()[:16]
        key = f"interp_checks/family_size/{digest}"
        if config.getoption("lf", False) or config.getoption("failedfirst", False):
            family.size = max(family.size, int(cache.get(key, 0)))
        else:
            cache.set(key, family.size)


def _claim_files_under(config: pytest.Config) -> Iterator[Path]:
    """Claim files under the paths pytest was given (also those ``--lf`` does not collect)."""
    for arg in config.args:
        path = Path(str(arg).split("::")[0])
        if not path.is_absolute():
            path = Path(config.invocation_params.dir) / path
        if path.is_file() and path.name.endswith(CLAIM_FILE_SUFFIX):
            yield path
        elif path.is_dir():
            for found in path.rglob(f"*{CLAIM_FILE_SUFFIX}"):
                if not any(part.startswith(".") for part in found.relative_to(path).parts):
                    yield found


def _count_claims(paths: set[Path]) -> int:
    """Claims in these files; an unreadable file counts as one (its error item)."""
    if not paths:
        return 0
    from interp_checks.claims.schema import load_claim_file

    return sum(max(1, len(load_claim_file(path).claims)) for path in {p.resolve() for p in paths})


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> "ClaimFile | None":
    if file_path.name.endswith(CLAIM_FILE_SUFFIX):
        return ClaimFile.from_parent(parent, path=file_path)
    return None


class ClaimFile(pytest.File):
    """A ``*.claims.yaml`` file: one item per claim, or one failing item if the file is unreadable."""

    def collect(self) -> Iterator[pytest.Item]:
        from interp_checks.claims.schema import ClaimSpec, load_claim_file

        try:
            parsed = load_claim_file(self.path)
        except Exception as error:  # a bug in the schema: this file fails, the session goes on
            from interp_checks.claims.schema import ClaimFile as ParsedFile, ClaimFileError

            message = f"internal error while reading the file ({type(error).__name__}: {error}); please report it"
            parsed = ParsedFile(self.path, [], ClaimFileError(self.path, message))
        if parsed.error is not None:
            spec = ClaimSpec(FILE_ERROR_ITEM, self.path, 0, error=parsed.error)
            yield ClaimItem.from_parent(self, name=FILE_ERROR_ITEM, spec=spec, file_error=True)
            return
        for spec in parsed.claims:
            item = ClaimItem.from_parent(self, name=spec.id, spec=spec)
            item.add_marker("interp_claim")
            for mark in spec.marks:
                item.add_marker(mark)
            yield item


class ClaimFailure(Exception):
    """A claim's verdict is not what the claim file expects, or it drifted from the baseline
    (``--interp-fail-on``); carries the result and the gate's messages for rendering."""

    def __init__(self, result: "ClaimResult", verdict: str, drift: list[str] | None = None, baseline: Path | None = None):
        self.result = result
        self.verdict = verdict
        self.drift = drift or []
        self.baseline = baseline
        super().__init__(verdict)


class ClaimItem(pytest.Item):
    """One claim of a claim file; or, with ``file_error``, the one failing item of an unreadable file."""

    def __init__(self, *, spec: "ClaimSpec", file_error: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.spec = spec
        self.file_error = file_error

    def runtest(self) -> None:
        state = self.config.stash[STATE]
        state.evaluate_session_claims(self.session)
        result = state.results[self.nodeid]
        _finish(self, result, self.config)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ClaimFailure):
            failure = excinfo.value
            return render_failure(failure.result, failure.verdict, drift=failure.drift, baseline=failure.baseline)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """The failure header's name: the claim and its statement, or the file that could not be read."""
        if self.file_error:
            return self.path, None, f"claim file {self.parent.nodeid} could not be read"
        return self.path, None, f"claim {self.spec.id}: {self.spec.statement or self.spec.check or 'no statement or check'}"


FIGURES = pytest.StashKey[dict[str, list[dict[str, Any]]]]()
FIGURES_ATTRIBUTE = "interp_figures"  # on test reports: nodeid -> figures (xdist serialises report attributes)


def _attach_record(node: pytest.Item, record: dict[str, Any], suffix: str = "") -> None:
    """Put a claim's record on its test item: the numbers as readable junit properties, the record as
    one JSON property the report collector reads, and its figures beside it on the test report
    (``pytest_runtest_makereport``) rather than in the property, where they would swell the junit XML
    (the figures of the bundled suite are about 0.7 MB)."""
    from interp_checks.report.junit import junit_properties

    node.stash.setdefault(FIGURES, {})[record["nodeid"]] = record.get("figures") or []
    slim = {**record, "figures": []}
    node.user_properties.append((RESULT_PROPERTY, json.dumps(slim, allow_nan=False)))
    node.user_properties.extend(junit_properties(record, suffix=suffix))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    figures = item.stash.get(FIGURES, None)
    if figures:
        setattr(report, FIGURES_ATTRIBUTE, figures)
    return report


def _finish(item: pytest.Item, result: "ClaimResult", config: pytest.Config) -> None:
    """Record a result on the item and turn its verdict (and any drift from the baseline) into
    pass / fail / skip: a claim that drifted fails even when its verdict is the expected one."""
    from interp_checks.engine import passes
    from interp_checks.report.schema import claim_record

    baseline = config.stash[STATE].baseline
    record = claim_record(result, item.nodeid)
    drift = baseline.annotate(record) if baseline is not None else []
    _attach_record(item, record)
    item.user_properties.append((POSITION_PROPERTY, config.stash[STATE].position(item)))
    verdict = passes(result, inconclusive=config.getoption(OPT_INCONCLUSIVE))
    if verdict == "failed" or drift:
        raise ClaimFailure(result, verdict, drift, baseline.path if baseline is not None else None)
    if verdict == "skipped":
        pytest.skip(f"inconclusive: {summary_line(result)}")


def summary_line(result: "ClaimResult") -> str:
    """The deciding expectation in one line (the one that made the verdict what it is)."""
    exp = result.deciding_expectation
    if exp is None or exp.evaluation is None:
        return result.error or result.outcome
    ev = exp.evaluation
    return (
        f"{exp.statistic}={ev.estimate:.3f} CI[{ev.ci[0]:.3f}, {ev.ci[1]:.3f}] {exp.comparison} "
        f"p_adj={result.p_value:.2g} ({'refutation' if result.outcome == 'refuted' else 'claim'} side)"
    )


def describe_effect(ev: Any) -> str:
    """The effect size with its sign spelled out, and the null it was measured against."""
    if ev.effect_size is None:
        return ""
    side = "above" if ev.effect_size > 0 else "below" if ev.effect_size < 0 else "equal to"
    text = f"effect size {ev.effect_size:.3g}: the statistic is {side} the null (null mean {ev.null_estimate:.4f}; {ev.effect_size_kind})"
    if ev.effect_size_range is not None:
        text += f"; against single null draws {ev.effect_size_range[0]:.3g} to {ev.effect_size_range[1]:.3g}"
    return text


def describe_margin(exp: Any) -> str:
    """How far the estimate sits inside (or outside) the claimed region, in units and in SDs."""
    ev = exp.evaluation
    if ev.margin is None:
        return ""
    where = "inside" if ev.margin > 0 else "outside" if ev.margin < 0 else "on the edge of"
    sd = f" ({abs(ev.margin_sd):.3g} SD)" if ev.margin_sd is not None and math.isfinite(ev.margin_sd) else ""
    return f"estimate is {abs(ev.margin):.4g}{sd} {where} the claimed region {exp.comparison}"



def render_failure(result: "ClaimResult", verdict: str, *, drift: list[str] | None = None, baseline: Path | None = None) -> str:
    """A failing claim's message: the numbers, not a bare assert (and the drift from the baseline)."""
    drifted = _render_drift(result, verdict, drift or [], baseline)
    return "\n".join(part for part in (drifted, _render_verdict(result)) if part)


def _render_drift(result: "ClaimResult", verdict: str, drift: list[str], baseline: Path | None) -> str:
    if not drift:
        return ""
    spec = result.spec
    why = {
        "passed": f"; its verdict, {result.outcome}, is as expected, but {OPT_FAIL_ON} fails it",
        "skipped": f"; it is inconclusive, which {OPT_INCONCLUSIVE}=skip would skip, but {OPT_FAIL_ON} fails it",
    }.get(verdict, "")
    lines = [f"claim {spec.id!r} drifted from the baseline {baseline}{why}:"]
    return "\n".join(lines + [f"  - {message}" for message in drift])


def _render_verdict(result: "ClaimResult") -> str:
    spec = result.spec
    if result.error:
        return f"claim could not be evaluated\n  {result.error}"
    want = "refuted" if spec.expected == "refuted" else "supported"
    lines = [
        f"claim {spec.id!r} ({spec.statement or spec.check}) on {result.model}: {result.outcome.upper()}, expected {want}",
        f"  inputs {result.inputs}, n={result.n} sequences, seed {spec.seed}; alpha {result.alpha}, "
        f"p adjusted by {result.adjust} over the {result.family} family of {result.family_size} claims",
    ]
    for index, exp in enumerate(result.expectations):
        ev = exp.evaluation
        if ev is None:
            continue
        mark = "* " if index == result.deciding else "  "
        unit = f" {exp.unit}" if exp.unit else ""
        lines.append(
            f"{mark}{exp.statistic} {exp.comparison}: estimate {ev.estimate:.4f}{unit}, "
            f"{ev.ci_level:.0%} CI [{ev.ci[0]:.4f}, {ev.ci[1]:.4f}], p={ev.p_value:.3g} (adj. {exp.p_adjusted:.3g}), "
            f"p_refute={ev.p_value_refute:.3g} (adj. {exp.p_adjusted_refute:.3g}) -> {exp.outcome}"
        )
        for detail in (describe_margin(exp), describe_effect(ev), f"note: {ev.note}" if ev.note else ""):
            if detail:
                lines.append(f"      {detail}")
    if len(result.expectations) > 1 and result.deciding is not None:
        lines.append("  (* the expectation that decided the verdict)")
    if result.outcome == "inconclusive":
        lines.append("  inconclusive: the interval straddles the threshold; use more inputs (n) or pass --interp-inconclusive=skip")
    return "\n".join(lines)


class ReportCollector:
    """Gathers result records from test reports and writes the reports at the end of the session.

    Registered as a plugin object so it sees reports on the xdist controller as well as in a plain
    run: records travel on ``user_properties``, which xdist serialises.
    """

    def __init__(self, state: SessionState):
        self.state = state
        self.paths: tuple[Path, ...] | None = None
        self.positions: dict[str, float] = {}  # record node id -> its item's collected position

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        position = dict(report.user_properties).get(POSITION_PROPERTY, math.inf)
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY and report.when in ("call", "setup"):
                record = json.loads(value)
                record["figures"] = getattr(report, FIGURES_ATTRIBUTE, {}).get(record["nodeid"], record.get("figures", []))
                if all(r["nodeid"] != record["nodeid"] for r in self.state.reported):
                    self.state.reported.append(record)
                    self.positions[record["nodeid"]] = position

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        if hasattr(config, "workerinput") or not self.state.reported:
            return
        # Collected order, as a serial run reports them (xdist delivers them as workers finish).
        self.state.reported.sort(key=lambda record: self.positions.get(record["nodeid"], math.inf))
        folder_option = str(config.getoption(OPT_REPORT))
        if folder_option.lower() == "none":
            return
        from interp_checks.report import write_reports

        folder = Path(folder_option)
        if not folder.is_absolute():
            folder = Path(config.rootpath) / folder
        settings = {
            "alpha": config.getoption(OPT_ALPHA),
            "adjust": config.getoption(OPT_ADJUST),
            "inconclusive": config.getoption(OPT_INCONCLUSIVE),
            "resamples": config.getoption(OPT_RESAMPLES),
            "device": config.getoption(OPT_DEVICE),
            "bindings": config.getoption(OPT_MODEL),
            "null_draws": config.getoption(OPT_NULL_DRAWS),
            "max_input_tokens": config.getoption(OPT_MAX_INPUT_TOKENS),
            "baseline": str(self.state.baseline.path) if self.state.baseline is not None else None,
            "fail_on": [str(check) for check in self.state.baseline.checks] if self.state.baseline is not None else [],
        }
        self.paths = write_reports(self.state.reported, folder, settings=settings)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.state.reported:
            return
        counts: dict[str, int] = {}
        for record in self.state.reported:
            counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
        terminalreporter.section("interp_checks")
        terminalreporter.write_line("claims: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())))
        if self.state.baseline is not None:
            drifted = [r["id"] for r in self.state.reported if r.get("drift")]
            terminalreporter.write_line(
                f"baseline {self.state.baseline.path}: {len(drifted)} claim(s) drifted"
                + (f" ({', '.join(drifted)})" if drifted else "")
            )
        if self.paths:
            terminalreporter.write_line(f"reports: {', '.join(map(str, self.paths[:-1]))} and {self.paths[-1]}")


class InterpFixture:
    """The ``interp`` fixture: claims from Python, for what YAML cannot say.

    ``interp.check(...)`` takes the same keys as a claim in a claim file, evaluates it now, records
    it in the session report and fails the test with the numbers unless the verdict is the expected
    one. ``interp.verify([...])`` evaluates several claims as one family (shared passes, p-values
    adjusted together). Python claims join the session's multiplicity family: each test that uses
    this fixture holds one slot in it from collection on (a test making more claims grows the family,
    which the report's ``family_size`` records). Under pytest-xdist a Python claim is measured in the
    worker that runs its test and adjusted with every claim file's claim (decided first in every
    worker) and the Python claims that worker judged before it; Python claims judged by other
    workers count as p = 1 (their slots). Against a serial run in which the claim files run first,
    that is never more lenient, and stricter when several Python claims are significant.
    """

    def __init__(self, request: pytest.FixtureRequest):
        self._request = request
        self._state = request.config.stash[STATE]

    def _spec(self, raw: dict[str, Any], index: int) -> "ClaimSpec":
        from interp_checks.claims.schema import _parse_claim

        path = Path(str(self._request.node.path))
        defaults = {"model": raw.get("model", ""), "seed": raw.get("seed", 0), "inputs": raw.get("inputs") or {}}
        return _parse_claim(path, index, raw, defaults)

    def verify(self, claims: list[dict[str, Any]], *, raise_on_failure: bool = True) -> list["ClaimResult"]:
        from interp_checks.engine import passes
        from interp_checks.report.schema import claim_record

        specs = [self._spec(raw, i) for i, raw in enumerate(claims)]
        if hasattr(self._request.config, "workerinput"):
            # xdist: the claim files' claims are decided first, as in every worker, so their verdicts
            # never depend on which Python claims this worker happened to run before them.
            self._state.evaluate_session_claims(self._request.session)
        try:
            results = self._state.get_engine().evaluate(specs, family=self._state.get_family())
        finally:
            self._state.close_progress()
        node = self._request.node
        baseline = self._state.baseline
        drifts = []
        for result in results:
            record = claim_record(result, f"{node.nodeid}::{result.spec.id}")
            drifts.append(baseline.annotate(record) if baseline is not None else [])
            _attach_record(node, record, suffix=f"[{result.spec.id}]")
        if all(name != POSITION_PROPERTY for name, _ in node.user_properties):
            node.user_properties.append((POSITION_PROPERTY, self._state.position(node)))
        if raise_on_failure:
            policy = self._request.config.getoption(OPT_INCONCLUSIVE)
            verdicts = [passes(r, inconclusive=policy) for r in results]
            path = baseline.path if baseline is not None else None
            failed = [
                render_failure(r, verdict, drift=drift, baseline=path)
                for r, verdict, drift in zip(results, verdicts, drifts)
                if verdict == "failed" or drift
            ]
            if failed:
                pytest.fail("\n\n".join(failed), pytrace=False)
            skipped = [r for r, verdict in zip(results, verdicts) if verdict == "skipped"]
            if skipped:
                pytest.skip("inconclusive: " + "; ".join(f"{r.spec.id}: {summary_line(r)}" for r in skipped))
        return results

    def check(self, **claim: Any) -> "ClaimResult":
        return self.verify([claim])[0]


@pytest.fixture
def interp(request: pytest.FixtureRequest) -> InterpFixture:
    """Evaluate claims from Python tests with the session's engine, models and report."""
    return InterpFixture(request)
