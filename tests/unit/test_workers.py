"""Splitting claims between xdist workers, without pytest or models: shares, the exchange, threads.

Two ``ShareExchange`` objects on one folder stand for two workers: ``flock`` locks belong to open
file descriptions, so two descriptors in one process contend exactly as two processes do.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Settings, Share, plan_shares
from interp_checks.results import ClaimResult
from interp_checks.workers import ShareExchange, ShareTimeout, threads_per_worker

RRT = {"kind": "repeated_random_tokens", "seq_len": 8, "n": 16}


def claim(claim_id: str, model: str = "zoo:attn-only-2l", *, inputs: dict | None = None, seed: int = 0, check: str = "induction_head", **params) -> ClaimSpec:
    return ClaimSpec(
        claim_id, Path("suite.claims.yaml").resolve(), 0, check=check, model=model, inputs=dict(inputs or RRT), seed=seed,
        expect={"score": parse_expectation(">= 0.5")}, params={"head": "L1H0", **params},
    )  # fmt: skip


def shares_by_id(specs: list[ClaimSpec]) -> list[set[str]]:
    return [{specs[i].id for i in share.indices} for share in plan_shares(specs, Settings())]


# -- shares ----------------------------------------------------------------------------------------


def test_claims_share_when_they_share_inputs_seed_and_a_model():
    specs = [
        claim("a"), claim("b"),                                # 2L, same inputs: one forward pass
        claim("c", "zoo:attn-only-3l"),                        # same inputs, other model: no pass in common
        claim("d", seed=1),                                    # other seed: other inputs
        claim("e", inputs={**RRT, "n": 32}),                   # other inputs
    ]  # fmt: skip
    assert shares_by_id(specs) == [{"a", "b"}, {"c"}, {"d"}, {"e"}]


def test_a_comparison_ties_its_two_models_passes_into_one_share():
    gain = dict(check="logprob_gain", baseline="zoo:attn-only-3l")
    specs = [claim("a"), claim("c", "zoo:attn-only-3l"), claim("x", "zoo:attn-only-4l"), claim("gain", **gain)]
    assert shares_by_id(specs) == [{"a", "c", "gain"}, {"x"}]


def test_a_claim_that_cannot_resolve_is_a_share_of_its_own_that_costs_nothing():
    specs = [claim("a"), claim("typo", check="inducton_head"), claim("nowhere", "native:/no/such/folder"), claim("b")]
    shares = plan_shares(specs, Settings())
    assert [share.indices for share in shares] == [(0, 3), (1,), (2,)]
    assert [share.cost for share in shares][1:] == [0.0, 0.0]


def test_cost_grows_with_the_sequences_and_the_null_draws():
    small, large = plan_shares([claim("a"), claim("b", inputs={**RRT, "n": 64})], Settings())
    assert large.cost == 4 * small.cost
    (one_draw,) = plan_shares([claim("a")], Settings(null_draws=1))
    assert one_draw.cost < small.cost


# -- the exchange ----------------------------------------------------------------------------------


class Worker:
    """A fake worker: its exchange over ``shares``, measuring a result whose ``notes`` say who measured it."""

    def __init__(self, name: str, folder: Path, shares: list[Share], keys: list[str], timeout_s: float = 5.0):
        self.specs = [ClaimSpec(key, Path(f"{key}.claims.yaml"), 0) for key in keys]
        self.exchange = ShareExchange(folder, name, shares, self.specs, keys, self.measure, timeout_s=timeout_s)
        self.during_measure = lambda share: None

    def measure(self, share: Share) -> list[ClaimResult]:
        self.during_measure(share)
        return [ClaimResult(self.specs[i], "inconclusive", notes=[f"measured by {self.exchange.worker}"]) for i in share.indices]


SHARES = [Share((0, 1), 10.0), Share((2,), 30.0), Share((3,), 20.0)]
KEYS = ["a", "b", "c", "d"]


def test_the_first_worker_to_claim_a_share_measures_it_and_the_others_read_its_file(tmp_path):
    first, second = Worker("gw0", tmp_path, SHARES, KEYS), Worker("gw1", tmp_path, SHARES, KEYS)
    first.exchange.measure_unclaimed()
    second.exchange.measure_unclaimed()
    assert first.exchange.measured == [1, 2, 0]  # largest estimated cost first
    assert second.exchange.measured == []
    results = second.exchange.gather()
    assert [r.notes for r in results] == [["measured by gw0"]] * 4
    assert [r.spec for r in results] == second.specs  # the reader's own specs, in its order
    assert second.exchange.measured == []


def test_workers_that_run_at_once_split_the_shares_between_them(tmp_path):
    first, second = Worker("gw0", tmp_path, SHARES, KEYS), Worker("gw1", tmp_path, SHARES, KEYS)
    # While gw0 measures its first share, gw1 starts and claims what is left.
    first.during_measure = lambda share: second.exchange.measure_unclaimed() if share is SHARES[1] else None
    first.exchange.measure_unclaimed()
    assert first.exchange.measured == [1]
    assert second.exchange.measured == [2, 0]
    expected = [["measured by gw1"]] * 2 + [["measured by gw0"], ["measured by gw1"]]
    assert [r.notes for r in first.exchange.gather()] == [r.notes for r in second.exchange.gather()] == expected


def test_a_share_whose_worker_died_holding_it_is_measured_by_the_next_one_who_needs_it(tmp_path):
    dead, alive = Worker("gw0", tmp_path, SHARES, KEYS), Worker("gw1", tmp_path, SHARES, KEYS)
    held = dead.exchange._claim(1)
    assert held is not None and alive.exchange._claim(1) is None  # held: nobody else may take it
    os.close(held)  # the process dies: the system releases its lock, no results were written
    alive.exchange.measure_unclaimed()
    assert alive.exchange.measured == [1, 2, 0]
    assert [r.notes for r in alive.exchange.gather()] == [["measured by gw1"]] * 4


def test_waiting_on_a_live_worker_ends_after_the_timeout_naming_it_and_the_claims(tmp_path):
    slow, waiting = Worker("gw3", tmp_path, SHARES, KEYS), Worker("gw1", tmp_path, SHARES, KEYS, timeout_s=0.3)
    held = slow.exchange._claim(2)  # measuring share 2 (claim "d"), for ever
    try:
        waiting.exchange.measure_unclaimed()
        with pytest.raises(ShareTimeout, match=rf"for worker gw3 pid {os.getpid()} to measure claims d; .*--interp-xdist-timeout"):
            waiting.exchange.gather()
    finally:
        os.close(held)
    assert waiting.exchange.measured == [1, 0]


def test_a_file_measured_for_other_claims_is_refused(tmp_path):
    Worker("gw0", tmp_path, SHARES, KEYS).exchange.measure_unclaimed()
    other = Worker("gw1", tmp_path, SHARES, ["a", "b", "c", "e"])
    with pytest.raises(RuntimeError, match="collected different claims"):
        other.exchange.gather()


def test_files_carry_results_without_specs(tmp_path):
    Worker("gw0", tmp_path, SHARES, KEYS).exchange.measure_unclaimed()
    payload = pickle.loads((tmp_path / "share-0.pkl").read_bytes())
    assert payload["keys"] == ["a", "b"] and payload["worker"] == "gw0"
    assert [r.spec for r in payload["results"]] == [None, None]


# -- threads ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("workers", "cores", "threads"), [(1, 8, 8), (2, 16, 8), (3, 16, 5), (2, 2, 1), (4, 2, 1), (2, 1, 1)])
def test_each_worker_gets_its_share_of_the_cores_and_at_least_one(workers, cores, threads):
    assert threads_per_worker(workers, cores) == threads
