"""Universal neuron claims: "neuron N fires above t on every match of R" (``tokens: match``) and "never
fires above t off R" (``tokens: nonmatch``), ``check: neuron_universal``.

What is read: the neuron's activation on every token of the claim's corpus streams, as
``checks.neurons`` reads it (``neuron``, ``read``, ``regex`` and the in-context match rule are
that module's). ``threshold`` (t) is an activation. The *selected* tokens are the matches (``tokens:
match``) or the non-matching tokens (``tokens: nonmatch``); a selected token *violates* when its
activation is <= t (``tokens: match``: the neuron does not fire on a match) or > t (``tokens: nonmatch``: it
fires off the regex). Every token of a match counts: a match of two tokens asks both to fire.

One statistic, ``violation_rate``: the share of selected tokens that violate. Two forms of claim:

* ``violation_rate: "<= 0.01"`` (any threshold above 0): a statistical claim, pooled over the
  corpus's tokens with the document the unit (``stats.pooled.share_statistic``), judged as every
  pooled statistic. Its null, beside it in the report, is the share that would violate if the
  neuron fired independently of the regex (its own firing rate over every token, or one minus it).
* ``violation_rate: "<= 0"``: the **universal** claim. No sample supports it, one counterexample
  refutes it (``stats.universal``). After the stream, the check searches for one with the model
  (``search``, through the engine's probe): ``hypothesis.find`` over texts made of a slice of a
  real context from the stream (a bounded sample of rows, shortest first, with the windows around
  the corpus's own violations first of all) with, for ``tokens: match``, up to 8 strings drawn from
  ``st.from_regex(R, fullmatch=True)`` inserted into it, or for ``tokens: nonmatch`` a short random
  string. The search is deterministic (``derandomize``, no example database) and **shrinks** the
  counterexample: hypothesis's shrinking (the shortest slice of context, the fewest and simplest
  inserted strings), then a last pass that drops single characters while the text still violates.
  Violations in the corpus stream count too (the shortest window around one is kept and shown).
  Found: refuted, deterministically; none found: inconclusive, "no counterexample in N corpus tokens
  and M generated inputs; not a proof".

Generated text is drawn from printable ASCII (with tab and newline) and the characters of the kept
contexts, so a claim about ``\\d`` is searched over ASCII digits and any other digit the corpus shows.
"""

from __future__ import annotations

import heapq
import math
import string
from typing import Any, ClassVar, Mapping

import numpy as np

from interp_checks.checks.base import (
    MODEL,
    Activations,
    CheckError,
    CorpusMeasurement,
    CorpusPass,
    ModelShape,
    Needs,
    Prepared,
    Probe,
    SearchOutcome,
    register,
)
from interp_checks.checks.neurons import (
    DEFAULT_INPUTS,
    TOKENS_AFTER,
    TOKENS_BEFORE,
    NeuronAggregate,
    compile_regex,
    neuron_name,
    parse_neuron,
    positive_int,
    reading,
)
from interp_checks.figures import Figure, rounded
from interp_checks.inputs.generators import InputBatch
from interp_checks.inputs.token_sets import regex_mask

ON = ("match", "nonmatch")
STATISTIC = "violation_rate"
DEFAULT_SEARCH_EXAMPLES = 200  # generated inputs before shrinking (hypothesis's max_examples)
MAX_SEARCH_EXAMPLES = 100_000
MAX_CONTEXTS = 64  # real contexts kept from the stream for the search (a reservoir sample of rows)
CONTEXT_CHARS = 160  # characters of a row kept as one context
VIOLATING_CONTEXTS = 8  # windows around the corpus's violations kept (the shortest), tried first
MAX_INSERTED = 12  # characters of random text inserted for tokens: nonmatch
MAX_INSERTS = 8  # strings matching the regex inserted per input for tokens: match
MAX_TRIM_RUNS = 1_000  # model runs of the last shrinking pass (removing single characters)
ALPHABET = string.ascii_letters + string.digits + string.punctuation + " \t\n"


def _threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CheckError(f"threshold must be a finite number (an activation of the neuron), got {value!r}")
    return float(value)


def _on(value: Any) -> str:
    if value not in ON:
        raise CheckError(f"tokens must be one of {', '.join(ON)} (fires on every match / never fires off it), got {value!r}")
    return value


def violations(on: str, activation: np.ndarray, threshold: float, selected: np.ndarray) -> np.ndarray:
    """Which selected tokens violate: activation <= t on a match (``tokens: match``), > t off it."""
    return selected & ((activation <= threshold) if on == "match" else (activation > threshold))


def selection(on: str, match: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """The tokens a claim is about: the matches, or the scored tokens that do not match."""
    return (match & scored) if on == "match" else (scored & ~match)


# -- the aggregate ---------------------------------------------------------------------------------


class UniversalAggregate(NeuronAggregate):
    """``NeuronAggregate``'s per-token arrays (activation, match, document) of the claimed neuron, plus
    what the search needs: a seeded reservoir sample of ``MAX_CONTEXTS`` contexts (``CONTEXT_CHARS``
    characters of a row each), the count of the stream's violating tokens, and the windows around the
    ``VIOLATING_CONTEXTS`` shortest of them (``TOKENS_BEFORE`` tokens before, ``TOKENS_AFTER`` after),
    shortest by characters. ``outcome`` is where ``search`` leaves its ``SearchOutcome``."""

    def __init__(self, hook: str, neuron: int, regex: str, on: str, threshold: float, role: str, seed: int = 0):
        super().__init__(hook, neuron, regex, null_tokens=0, role=role, examples=0)
        self.on, self.threshold = on, threshold
        self.contexts: list[str] = []
        self.rows_seen = 0
        self.rng = np.random.default_rng(seed)
        self.violations = 0
        self.violating: list[tuple[int, int, dict]] = []  # heap of (-characters, -order, window): the shortest kept
        self.outcome: SearchOutcome | None = None

    def update(self, activations: Activations, rows: InputBatch) -> None:
        before = self.activation.size
        super().update(activations, rows)
        if self.role != MODEL:
            return
        scored = rows.valid.copy()
        scored[:, 0] = False  # BOS, as the parent scores tokens
        value = np.full(scored.shape, np.nan)
        match = np.zeros(scored.shape, dtype=bool)
        value[scored] = self.activation.array()[before:]  # the parent appended the batch's tokens row-major
        match[scored] = self.match.array()[before:]
        selected = selection(self.on, match, scored)
        bad = violations(self.on, value, self.threshold, selected)
        self.violations += int(bad.sum())
        self._offer_violations(np.argwhere(bad), rows, value, selected, bad)
        self._sample_contexts(rows)

    def _offer_violations(self, positions: np.ndarray, rows: InputBatch, value: np.ndarray, selected: np.ndarray, bad: np.ndarray) -> None:
        """Keep the windows of the ``VIOLATING_CONTEXTS`` shortest (in characters) violations seen."""
        if not len(positions):
            return
        i, p = positions[:, 0], positions[:, 1]
        starts = np.maximum(1, p - TOKENS_BEFORE)
        stops = np.minimum(rows.valid.sum(axis=1)[i], p + TOKENS_AFTER + 1)
        lengths = rows.offsets[i, stops - 1, 1] - rows.offsets[i, starts, 0]
        for k in np.argsort(lengths, kind="stable")[:VIOLATING_CONTEXTS]:
            self.order += 1
            entry = (-int(lengths[k]), -self.order)
            if len(self.violating) == VIOLATING_CONTEXTS and entry <= self.violating[0][:2]:
                break
            row, start, stop = int(i[k]), int(starts[k]), int(stops[k])
            window = {
                "text": rows.texts[row][int(rows.offsets[row, start, 0]) : int(rows.offsets[row, stop - 1, 1])],
                "tokens": rows.token_strings(row, start, stop),
                "values": [float(v) for v in value[row, start:stop]],
                "focus": int(p[k]) - start,
                "share": float(bad[row, start:stop].sum() / selected[row, start:stop].sum()),
                "source": rows.sources[row] if rows.sources else "",
            }
            (heapq.heappush if len(self.violating) < VIOLATING_CONTEXTS else heapq.heapreplace)(self.violating, (*entry, window))

    def _sample_contexts(self, rows: InputBatch) -> None:
        """Reservoir sampling of rows (seeded: the same stream keeps the same contexts), a random
        ``CONTEXT_CHARS`` slice of each."""
        for text in rows.texts or []:
            self.rows_seen += 1
            slot = self.rows_seen - 1 if len(self.contexts) < MAX_CONTEXTS else int(self.rng.integers(self.rows_seen))
            if slot >= MAX_CONTEXTS:
                continue
            start = int(self.rng.integers(max(1, len(text) - CONTEXT_CHARS + 1)))
            context = text[start : start + CONTEXT_CHARS]
            if slot == len(self.contexts):
                self.contexts.append(context)
            else:
                self.contexts[slot] = context

    def violating_windows(self) -> list[dict]:
        """The kept windows around the stream's violations, shortest first (then first seen)."""
        return [window for _, _, window in sorted(self.violating, reverse=True)] if self.violating else []


# -- judging one probed text ----------------------------------------------------------------------


def _text_start(batch: InputBatch) -> int:
    """Index of the first token with text: 1 after the BOS the probe puts first (its span is empty), else 0."""
    return 1 if batch.offsets is not None and batch.valid[0, 0] and batch.offsets[0, 0, 1] == 0 else 0


def probe_violations(probe: Probe, text: str, state: Mapping[str, Any]) -> tuple[InputBatch, np.ndarray, np.ndarray, np.ndarray]:
    """Run ``text`` through the model: (batch, the neuron's activation per position, selected, violating)."""
    batch, activations = probe([text])
    values = activations[state["hook"]][0, :, state["neuron"]].float().cpu().numpy().astype(float)
    scored = batch.valid[0].copy()
    scored[: _text_start(batch)] = False
    selected = selection(state["on"], regex_mask(batch, state["regex"])[0], scored)
    return batch, values, selected, violations(state["on"], values, state["threshold"], selected)


def counterexample_strategy(contexts: list[str], regex: str, on: str) -> Any:
    """Texts for the search: a slice of a real context (``contexts[i]``, tried first to last) with, for
    ``tokens: match``, up to ``MAX_INSERTS`` strings fully matching ``regex`` inserted (space-separated),
    or for ``tokens: nonmatch`` a short random string. Every choice shrinks towards less text: the
    first context, an empty slice, fewer and simpler inserted strings. The insert may be empty, so
    a violation inside the context shrinks to the context's own text (the slice ``7``, not ``0``
    inserted before it). hypothesis's generation favours repeating earlier values (its search for
    edge cases), so several matches per input are what make it try many of them."""
    from hypothesis import strategies as st

    alphabet = sorted(set(ALPHABET) | set("".join(contexts)))
    if on == "match":  # several matches, space-separated, per input: more of the regex's strings tried per model run
        inserted = st.lists(st.from_regex(regex, fullmatch=True, alphabet=alphabet), max_size=MAX_INSERTS).map(" ".join)
    else:
        inserted = st.text(alphabet, max_size=MAX_INSERTED)

    @st.composite
    def texts(draw: Any) -> str:
        context = draw(st.sampled_from(contexts))
        length = draw(st.integers(0, len(context)))
        start = draw(st.integers(0, len(context) - length))
        piece = context[start : start + length]
        at = draw(st.integers(0, len(piece)))
        return piece[:at] + draw(inserted) + piece[at:]

    return texts()


def search_counterexample(probe: Probe, contexts: list[str], state: Mapping[str, Any], max_examples: int) -> tuple[str | None, int]:
    """(the minimal violating text, or None; how many texts were run), by ``hypothesis.find``,
    reproducibly (``derandomize``, no example database, no deadline), then
    :func:`without_spare_characters`."""
    from hypothesis import HealthCheck, find, settings
    from hypothesis.errors import NoSuchExample

    tried = 0

    def violates(text: str) -> bool:
        nonlocal tried
        tried += 1
        return bool(probe_violations(probe, text, state)[3].any())

    rules = settings(database=None, derandomize=True, max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck))
    try:
        found = find(counterexample_strategy(contexts, state["regex"], state["on"]), violates, settings=rules)
    except NoSuchExample:
        return None, tried
    return without_spare_characters(found, violates, MAX_TRIM_RUNS), tried


def without_spare_characters(text: str, violates: Any, budget: int) -> str:
    """``text`` with single characters removed, left to right and again, while it still violates: no
    one character of the result can go. hypothesis shrinks one choice at a time, so a slice of
    context whose start and length must move together (``'ze * 08\\ndef0'`` for ``'def0'``) stays
    long; this last pass, at most ``budget`` model runs, takes what it left."""
    changed = True
    while changed and budget > 0:
        changed, i = False, 0
        while i < len(text) and budget > 0:
            candidate = text[:i] + text[i + 1 :]
            budget -= 1
            if violates(candidate):
                text, changed = candidate, True
            else:
                i += 1
    return text


def describe_counterexample(probe: Probe, text: str, state: Mapping[str, Any], outcome: SearchOutcome) -> None:
    """Fill ``outcome`` with ``text``'s tokens (BOS left out), activations, the most violating token
    (the lowest activation on a match, the highest off it) and its share of violating tokens."""
    batch, values, selected, bad = probe_violations(probe, text, state)
    violating = np.flatnonzero(bad)
    worst = violating[np.argmin(values[violating]) if state["on"] == "match" else np.argmax(values[violating])]
    first, stop = _text_start(batch), int(batch.valid[0].sum())
    outcome.text, outcome.position = text, int(worst) - first
    outcome.tokens = batch.token_strings(0, first, stop)
    outcome.activations = [float(v) for v in values[first:stop]]
    outcome.share = float(bad.sum() / selected.sum())


# -- the check -------------------------------------------------------------------------------------


class NeuronUniversalCheck:
    """``check: neuron_universal``: ``neuron: L0N3``, ``regex: '\\d'``, ``tokens: match`` (or ``nonmatch``),
    ``threshold: 1.5``, optional ``read`` and ``search_examples`` (generated inputs, default 200). The key is
    ``tokens``, not ``on``: YAML 1.1 (PyYAML) reads a key ``on`` as the boolean true."""

    name: ClassVar[str] = "neuron_universal"
    description: ClassVar[str] = (
        "does a neuron fire above a threshold on every match of a regex (tokens: match), or never off it (tokens: nonmatch)? "
        "violation_rate <= 0 is refuted by a counterexample (searched with hypothesis, shrunk), never supported; "
        "other thresholds are judged pooled over a streamed corpus"
    )
    statistics: ClassVar[tuple[str, ...]] = (STATISTIC,)
    params: ClassVar[tuple[str, ...]] = ("neuron", "regex", "read", "tokens", "threshold", "search_examples")
    model_roles: ClassVar[tuple[str, ...]] = ()
    default_inputs: ClassVar[Mapping[str, Any]] = DEFAULT_INPUTS

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        from interp_checks.stats.universal import is_universal

        shape = shapes[MODEL]
        layer, index = parse_neuron(params.get("neuron"), shape)
        hook, read_words = reading(params.get("read"), layer, shape)
        regex = compile_regex(params.get("regex"))
        on = _on(params.get("tokens", "match"))
        if "threshold" not in params:
            raise CheckError("threshold is required: the activation above which the neuron fires (e.g. threshold: 1.5)")
        threshold = _threshold(params["threshold"])
        examples = positive_int(params, "search_examples", DEFAULT_SEARCH_EXAMPLES, MAX_SEARCH_EXAMPLES)
        universal = STATISTIC in expect and is_universal(expect[STATISTIC])
        name = neuron_name(layer, index)
        claim = f"{name} fires above {threshold:g} on every match of {regex!r}" if on == "match" else f"{name} never fires above {threshold:g} off {regex!r}"
        notes = [read_words, f"a token matches when its characters overlap a match of {regex!r} in its text; the claim: {claim}"]
        if universal:
            notes.append(f"universal claim: judged by a counterexample search (hypothesis, up to {examples} generated inputs, shrunk)")
        return Prepared(
            needs={MODEL: Needs(frozenset({hook}))},
            null_needs=None,
            statistics=[STATISTIC] if STATISTIC in expect else [],
            expectation_source={STATISTIC: STATISTIC},
            sampling="corpus",
            state={"hook": hook, "neuron": index, "name": name, "regex": regex, "on": on, "threshold": threshold,
                   "search_examples": examples, "universal": universal},
            notes=notes,
            units={STATISTIC: "share of tokens"},
            evaluators={STATISTIC: "universal" if universal else "pooled"},
        )

    def aggregate(self, prepared: Prepared, corpus: CorpusPass, role: str) -> UniversalAggregate:
        s = prepared.state
        return UniversalAggregate(s["hook"], s["neuron"], s["regex"], s["on"], s["threshold"], role)

    def search(self, prepared: Prepared, corpus: CorpusPass, model_aggregate: UniversalAggregate, probe: Probe) -> SearchOutcome | None:
        """The universal form only: search for a counterexample (the stream's violating windows first,
        then its sampled contexts, shortest first) and keep the outcome in the aggregate."""
        state = prepared.state
        if not state["universal"]:
            return None
        windows = [window["text"] for window in model_aggregate.violating_windows()]
        sampled = sorted(model_aggregate.contexts, key=lambda c: (len(c), c))
        contexts = list(dict.fromkeys(windows + sampled)) or [""]
        text, tried = search_counterexample(probe, contexts, state, state["search_examples"])
        outcome = SearchOutcome(found=text is not None or model_aggregate.violations > 0, tried=tried, corpus_violations=model_aggregate.violations)
        inserted = "strings fully matching the regex" if state["on"] == "match" else f"random strings of up to {MAX_INSERTED} characters"
        outcome.notes.append(
            f"counterexample search: {tried:,} inputs run through the model (hypothesis's generation and shrinking, derandomized, "
            f"then single characters dropped): slices of {len(contexts)} real contexts ({len(windows)} around the stream's "
            f"violations) with {inserted} inserted"
        )
        if text is not None:
            describe_counterexample(probe, text, state, outcome)
        model_aggregate.outcome = outcome
        return outcome

    def conclude(self, prepared: Prepared, corpus: CorpusPass, model: UniversalAggregate, nulls: list[Any]) -> CorpusMeasurement:
        s = prepared.state
        activation, match = model.activation.array(), model.match.array()
        selected = selection(s["on"], match, np.ones_like(match))
        bad = violations(s["on"], activation, s["threshold"], selected)
        what = "matching" if s["on"] == "match" else "non-matching"
        notes = [
            f"{activation.size:,} tokens of {len(model.documents)} documents ({corpus.label}); {int(selected.sum()):,} {what}, "
            f"of which {int(bad.sum()):,} violate ({_share(bad, selected):.2%})"
        ]
        windows = model.violating_windows()
        if s["universal"]:
            outcome = model.outcome or SearchOutcome(found=model.violations > 0, tried=0, corpus_violations=model.violations)
            notes.extend(outcome.notes)
            value = self._evidence(outcome, windows, int(selected.sum()), int(bad.sum()), len(model.documents))
        else:
            value = self._pooled(s, model, activation, selected, bad, what)
        if model.outcome is not None and model.outcome.text is not None:
            o = model.outcome
            notes.append(
                f"minimal counterexample: {o.text!r} (token {o.tokens[o.position]!r}, activation {o.activations[o.position]:.4g}, "
                f"threshold {s['threshold']:g})"
            )
        if windows:
            notes.append(f"shortest violation in the corpus: {windows[0]['text']!r} (token {windows[0]['tokens'][windows[0]['focus']]!r}; {windows[0]['source']})")
        statistics = {STATISTIC: value} if STATISTIC in prepared.statistics else {}
        return CorpusMeasurement(statistics, self._figures(prepared, corpus, model.outcome, windows), notes)

    @staticmethod
    def _evidence(outcome: SearchOutcome, windows: list[dict], corpus_tokens: int, corpus_violations: int, documents: int) -> Any:
        """The universal form's evidence: the counterexample shown is the search's, else the corpus's shortest."""
        from interp_checks.stats.universal import UniversalEvidence

        share = outcome.share if outcome.text is not None else (windows[0]["share"] if windows else 0.0)
        return UniversalEvidence(
            found=outcome.found, tried=outcome.tried, counterexample_share=float(share or 0.0), corpus_tokens=corpus_tokens,
            corpus_violations=corpus_violations, n_documents=documents,
        )

    @staticmethod
    def _pooled(state: Mapping[str, Any], model: UniversalAggregate, activation: np.ndarray, selected: np.ndarray, bad: np.ndarray, what: str) -> Any:
        """The statistical form: the violating share of the selected tokens, pooled over documents, with
        the chance null (the neuron's firing rate over every token, or one minus it)."""
        from interp_checks.stats.pooled import share_statistic

        fires = activation > state["threshold"]
        chance = float(np.mean(~fires if state["on"] == "match" else fires)) if activation.size else math.nan
        side = "<=" if state["on"] == "match" else ">"
        return share_statistic(
            bad, model.document.array(), among=selected, n_documents=len(model.documents),
            estimand=f"share of {what} tokens that violate (activation {side} {state['threshold']:g}), tokens pooled over documents",
            nulls={"chance: the share violating if the neuron fired independently of the regex (from its firing rate over all tokens)": chance},
        )

    @staticmethod
    def _figures(prepared: Prepared, corpus: CorpusPass, outcome: SearchOutcome | None, windows: list[dict]) -> list[Figure]:
        """The minimal counterexample (and the corpus's shortest violation) as shaded tokens, centred on t."""
        s = prepared.state
        name, t = s["name"], s["threshold"]
        side = "<=" if s["on"] == "match" else ">"
        rows = []
        if outcome is not None and outcome.text is not None:
            rows.append({
                "label": f"minimal counterexample {outcome.text!r}: activation {outcome.activations[outcome.position]:.3g} {side} threshold {t:g}",
                "tokens": outcome.tokens, "values": outcome.activations, "focus": outcome.position,
            })
        if windows:
            w = windows[0]
            rows.append({
                "label": f"shortest violation in {corpus.label} ({w['source']}): activation {w['values'][w['focus']]:.3g} {side} threshold {t:g}",
                "tokens": w["tokens"], "values": w["values"], "focus": w["focus"],
            })
        if not rows:
            return []
        where = "a match" if s["on"] == "match" else "a token off the matches"
        return [Figure(
            "tokens",
            f"{name}: counterexamples",
            {"rows": rounded(rows), "value_label": f"{name} activation (centred on the threshold {t:g})", "center": t},
            f"Inputs on which {name} violates the claim: the search's minimal counterexample (hypothesis's shrunk input) and the "
            f"shortest window around a violation in the corpus stream (up to {TOKENS_BEFORE} tokens before, {TOKENS_AFTER} after), "
            f"where there are such; every token shaded by the activation relative to the threshold {t:g}, the outlined token "
            f"violating (activation {side} {t:g} on {where} of {s['regex']!r}).",
        )]

    def null_description(self, prepared: Prepared) -> str:
        if prepared.state["universal"]:
            return "none: a counterexample refutes a universal claim without a null, and no null could support it"
        return "chance: the share of tokens that would violate if the neuron fired independently of the regex"


def _share(mask: np.ndarray, among: np.ndarray) -> float:
    total = int(among.sum())
    return float(mask.sum() / total) if total else float("nan")


register(NeuronUniversalCheck())
