"""Splitting a session's claims between pytest-xdist workers, with the verdicts of a serial run.

With ``pytest -n N`` every worker collects the same claim items, and xdist hands each item to one
worker in an order nobody controls. Measuring is therefore split by *share*, not by item: a share
is the set of claims that must be measured in one process for their forward passes to stay shared
(``engine.plan_shares``: same inputs and seed, a model in common). Every worker computes the same
shares from the same collected items, and, before running any test, measures every share that no
other worker has claimed yet, largest estimated cost first (a shared queue, so the work balances
itself whatever the estimate's errors and however late a worker starts). Each share's raw results
(measured, not decided) go to a file in a folder the controller made for this run. A worker then
decides its claims only once it has every share's results: p-values are adjusted over the whole
session's family, in collected order, exactly as a serial run does, so every worker reaches the
same verdicts as a serial run would.

Why this cannot deadlock: measuring a share never waits for anything, and a worker waits only for
shares that another live process is measuring. A share is claimed by holding an exclusive
``flock`` on its lock file while measuring it; the operating system releases the lock when the
holder dies, so a waiting worker that finds a share unlocked and still without results measures
it itself. Waiting on a live holder is bounded by a timeout (an error naming the worker that
holds the share). Without ``fcntl`` (Windows) a worker measures every share itself: slower, the
same numbers.

Results travel as pickles of ``ClaimResult`` without their ``ClaimSpec`` (each worker reattaches
its own spec for the same node id, and refuses a file whose node ids differ from its own share);
only files named ``share-K.pkl`` in this run's folder are read, and the controller made that folder
(``mkdtemp``, readable by this user only) and removes it at the end.

Light at import: torch and the engine are imported only when used.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: every worker measures every share
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from interp_checks.engine import Share
    from interp_checks.results import ClaimResult

__all__ = ["ShareExchange", "ShareTimeout", "pin_torch_threads", "threads_per_worker"]

POLL_S = 0.05  # how often a waiting worker looks for a share's results


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for one of ``workers`` processes on this machine: its usable cores (CPU
    affinity, where the system has it) shared evenly, at least one, so N workers don't fight."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def pin_torch_threads(workers: int) -> int:
    """Set torch's intra-op threads to this worker's share of the cores; returns the number."""
    import torch

    threads = threads_per_worker(workers)
    torch.set_num_threads(threads)
    return threads


class ShareTimeout(RuntimeError):
    """A live worker held a share longer than the timeout allows."""


@dataclass
class ShareExchange:
    """One worker's end of the exchange of measured shares (see the module docstring).

    ``shares`` are ``engine.plan_shares``' for the session's claim items, ``specs[i]`` and
    ``keys[i]`` claim ``i``'s spec and node id (every worker has the same lists), and
    ``measure(share)`` measures one share's claims in this process and returns their raw results (it
    must not raise: an error is a result).
    """

    folder: Path
    worker: str
    shares: Sequence["Share"]
    specs: Sequence[Any]
    keys: Sequence[str]
    measure: Callable[["Share"], list["ClaimResult"]]
    timeout_s: float = 3600.0
    measured: list[int] = dataclasses.field(default_factory=list)  # shares this process measured

    def measure_unclaimed(self) -> None:
        """Measure every share no other process has claimed, largest estimated cost first."""
        order = sorted(range(len(self.shares)), key=lambda k: (-self.shares[k].cost, k))
        for k in order:
            lock = self._claim(k)
            if lock is not None:
                self._measure_and_release(k, lock)

    def gather(self) -> list["ClaimResult"]:
        """Every claim's raw result, in the order of ``keys``: read from the other workers' files,
        measured here for shares whose holder died or that nobody claimed, waited for while a live
        worker measures them. Raises ShareTimeout after ``timeout_s`` of waiting on one share."""
        results: list[Any] = [None] * len(self.keys)
        for k, share in enumerate(self.shares):
            for index, result in zip(share.indices, self._results_of(k)):
                results[index] = result
        return results

    # -- one share -------------------------------------------------------------------------------

    def _results_of(self, k: int) -> list["ClaimResult"]:
        started = time.monotonic()
        while True:
            found = self._read(k)
            if found is not None:
                return found
            lock = self._claim(k)
            if lock is not None:  # nobody holds it and nobody delivered: its holder died, or none started
                return self._measure_and_release(k, lock)
            waited = time.monotonic() - started
            if waited > self.timeout_s:
                raise ShareTimeout(self._timeout_message(k, waited))
            time.sleep(POLL_S)

    def _measure_and_release(self, k: int, lock: int) -> list["ClaimResult"]:
        try:
            results = self.measure(self.shares[k])
            self.measured.append(k)
            self._write(k, results)
            return results
        finally:
            if lock >= 0:  # -1: no lock (no fcntl)
                os.close(lock)  # releases the flock

    def _claim(self, k: int) -> int | None:
        """Hold share k's lock (an open file descriptor) if it is free and the share has no results
        yet; None when another live process holds it or it is done. Without fcntl: always claim."""
        if fcntl is None:
            return None if self._path(k, "pkl").exists() else -1
        fd = os.open(self._path(k, "lock"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        if self._path(k, "pkl").exists():  # delivered between our look and our lock
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.worker} pid {os.getpid()}".encode())
        return fd

    def _write(self, k: int, results: list["ClaimResult"]) -> None:
        """Results without their specs, atomically (a reader sees the whole file or none)."""
        payload = {
            "keys": [self.keys[i] for i in self.shares[k].indices],
            "worker": self.worker,
            "results": [dataclasses.replace(result, spec=None) for result in results],
        }
        temporary = self._path(k, f"{os.getpid()}.tmp")
        temporary.write_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(temporary, self._path(k, "pkl"))

    def _read(self, k: int) -> list["ClaimResult"] | None:
        path = self._path(k, "pkl")
        if not path.exists():
            return None
        payload = pickle.loads(path.read_bytes())  # our own file, written by a worker of this run
        share = self.shares[k]
        expected = [self.keys[i] for i in share.indices]
        if payload["keys"] != expected:
            raise RuntimeError(
                f"worker {payload['worker']} measured share {k} as claims {payload['keys']}, this worker "
                f"({self.worker}) planned {expected}: the workers collected different claims"
            )
        return [dataclasses.replace(result, spec=self.specs[i]) for result, i in zip(payload["results"], share.indices)]

    def _timeout_message(self, k: int, waited: float) -> str:
        holder = self._path(k, "lock").read_text(errors="replace").strip() or "another worker"
        ids = [self.keys[i] for i in self.shares[k].indices]
        shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        return (
            f"waited {waited:.0f} s for worker {holder} to measure claims {shown}; it is still running. "
            "Every claim's verdict needs every claim's p-value, so this worker cannot decide without them. "
            "If those models are that slow, raise the limit with --interp-xdist-timeout=SECONDS, or run without -n"
        )

    def _path(self, k: int, suffix: str) -> Path:
        return self.folder / f"share-{k}.{suffix}"
