"""The miner: where do two models' per-token log-probs differ most, and which patterns explain it?

A standard way to find circuits is to run two models over a lot of text and look at the tokens
one predicts much better than the other (a 2-layer model beating a 1-layer one on tokens that
repeat an earlier bigram points at induction heads). ``mine`` does that over a whole corpus and
``write_mine_report`` turns the result into

* ``mine.md`` / ``mine.json``: per named pattern of :data:`interp_checks.inputs.token_sets.PATTERNS`
  (plus ``other``, the tokens no pattern matches) how many tokens, their mean gain, and how much of
  the total gain they carry; then the contexts with the largest gains each way;
* ``draft.claims.yaml``: a ``logprob_gain`` claim per pattern whose gain is clearly positive, with
  conservative thresholds, runnable as is (``python -m pytest draft.claims.yaml``).

The gain of a token is that of the ``logprob_gain`` check: ``max(logp_model, floor) -
max(logp_baseline, floor)`` in nats, and patterns are the same functions a claim's
``where: {pattern: NAME}`` uses, so a mined pattern pasted into a claim means the same tokens.

The package, one idea per module:

* :mod:`~interp_checks.mine.run`: :func:`mine` streams the corpus (:func:`iter_token_batches`) through
  both models (:func:`interp_checks.runner.capture`) and :func:`score_batch` turns logits into gains;
* :mod:`~interp_checks.mine.aggregate`: the bounded aggregates (:class:`PatternStats`,
  :class:`MineAggregator`, the top-k :class:`Context` heaps); memory does not grow with the corpus;
* :mod:`~interp_checks.mine.result`: :class:`MineResult`, whose ``to_dict()`` is ``mine.json``;
* :mod:`~interp_checks.mine.draft`: the draft claims, written with ``yaml.safe_dump``;
* :mod:`~interp_checks.mine.write`: the files; ``mine.md`` is rendered from ``mine.json`` by
  :mod:`interp_checks.report.mine_markdown`.

Statistics: tokens of one window are not independent, so the unit is the window (a row of
``seq_len`` tokens), as in claims. The report gives both the token-level mean (pooled over tokens:
what the pattern contributes to the total) and the sequence-level mean (the mean over windows of
each window's mean gain on the pattern's tokens -- what a claim measures) with a normal-approx 95%
interval. Windows cut from the same document are correlated too, so that interval is optimistic;
the draft's thresholds are therefore half its lower end, and the claims sample held-out text,
which the miner does not read by default (it mines the ``train`` split).
"""

from interp_checks.mine.aggregate import ALL, OTHER, Context, MineAggregator, MineError, PatternStats, token_strings
from interp_checks.mine.draft import Draft, draft_claims
from interp_checks.mine.result import SCHEMA, MineResult
from interp_checks.mine.run import mine, score_batch
from interp_checks.mine.write import write_mine_report

__all__ = [
    "ALL",
    "OTHER",
    "SCHEMA",
    "Context",
    "Draft",
    "MineAggregator",
    "MineError",
    "MineResult",
    "PatternStats",
    "draft_claims",
    "mine",
    "score_batch",
    "token_strings",
    "write_mine_report",
]
