"""The bundled suite serially and with pytest-xdist (``-n N``), in one run, with the same verdicts.

Runs ``python -m pytest hypotheses/ -q -p no:cacheprovider`` once without xdist and once per
``--workers`` count, alternating over ``--repeats`` rounds so that a change in the machine's load
hits every variant alike; prints each run's wall time (the whole command: interpreter start,
imports, collection, models, measuring), the median per variant, its ratio to serial, and the
load average before and after (other processes on the machine slow every variant, not equally).
Each run writes its report to a temporary folder, and the script checks that every run's
``report.json`` has the serial run's verdicts and numbers (timing aside). Usage::

    python benchmarks/bench_xdist.py [--workers 2 4] [--repeats 1] [--path hypotheses/]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMING = ("duration_s", "load_s", "measure_s")
ROOT = Path(__file__).resolve().parents[1]


def run_suite(path: str, workers: int, report: Path) -> float:
    """Wall seconds of one pytest run of ``path`` (``workers`` 0: serial); fails loudly if pytest does."""
    command = [sys.executable, "-m", "pytest", path, "-q", "-p", "no:cacheprovider", f"--interp-report={report}"]
    if workers:
        command += ["-n", str(workers)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return elapsed


def claims(report: Path) -> list[dict]:
    """A report's claims without timing: what must not depend on the number of workers."""
    records = json.loads((report / "report.json").read_text())["claims"]
    return [{k: v for k, v in record.items() if k not in TIMING} for record in records]


def describe_shares(path: str) -> str:
    """How the claims under ``path`` split into shares (what -n can spread over workers)."""
    from interp_checks.claims.schema import load_claim_file
    from interp_checks.engine import Settings, plan_shares

    root = ROOT / path
    files = sorted(root.rglob("*.claims.yaml")) if root.is_dir() else [root]
    specs = [spec for file in files for spec in load_claim_file(file).claims]
    shares = plan_shares(specs, Settings())
    total = sum(share.cost for share in shares) or 1.0
    sizes = ", ".join(str(len(share.indices)) for share in shares)
    return (
        f"{len(specs)} claims in {len(shares)} shares (claims per share: {sizes}); the largest share is "
        f"{max(share.cost for share in shares) / total:.0%} of the estimated cost (tokens x forward passes)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[2], help="xdist worker counts to time. Default: 2.")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of every variant. Default: 1.")
    parser.add_argument("--path", default="hypotheses/", help="what pytest runs. Default: hypotheses/.")
    args = parser.parse_args()

    variants = [0, *args.workers]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{args.path}: {cores} usable cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"load average before {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(describe_shares(args.path))
    times: dict[int, list[float]] = {n: [] for n in variants}
    with tempfile.TemporaryDirectory() as folder:
        reference = None
        for round_ in range(args.repeats):
            for n in variants:
                report = Path(folder) / f"n{n}-{round_}"
                times[n].append(run_suite(args.path, n, report))
                label = "serial" if n == 0 else f"-n {n}"
                print(f"  round {round_ + 1}, {label}: {times[n][-1]:.1f} s", flush=True)
                if reference is None:
                    reference = claims(report)
                elif claims(report) != reference:
                    sys.exit(f"{label} reported other verdicts or numbers than serial: see {report}")
    print(f"load average after {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    serial = statistics.median(times[0])
    print(f"serial: {serial:.1f} s (median of {args.repeats})")
    for n in args.workers:
        median = statistics.median(times[n])
        print(f"-n {n}: {median:.1f} s (median of {args.repeats}), {serial / median:.2f}x serial's speed; same report")


if __name__ == "__main__":
    main()
