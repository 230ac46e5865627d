"""Train one zoo model from its recipe, evaluate the mechanism, and write checkpoint + model card.

Why evaluate the mechanism and not just the loss: the zoo exists so that claims like "L1H2 is an
induction head" have a model where they are true (2L+) and one where they are false (1L). A model
with a good loss but no induction head would make every such test meaningless, so the trainer
measures, on the same ``repeated_random_tokens`` inputs claims use:

* held-out loss on real stdlib text (documents never trained on);
* the loss on the first vs the repeated half of BOS + 32 random tokens + the same 32 again -- an
  induction head makes the repeat nearly free, a model without one pays ~log(vocab) on both;
* every head's induction, previous-token and duplicate-token score, with the scoring function the
  checks use (``interp_checks.checks.heads.scores_by_layer``).

Evaluation runs go through the engine's runner (``interp_checks.runner.capture``) and its
``next_token_logprobs``, so a loss on the card means what a claim's log-prob means; training keeps
its differentiable cross-entropy.

Determinism: ``torch.manual_seed(recipe.seed)``, the model's init seed, and the data
``numpy.random.Generator`` seed are all the recipe's seed; the thread count is fixed (float sums
can differ between thread counts). Same recipe + same machine/library versions -> same weights.

Threads: one by default. Measured on the 2-core build machine (2L, batch 16 x 256): one thread
costs 0.16 CPU-s per step, two threads 0.19 uncontended (~1.7x the wall speed) but 0.29 when
another process holds a core -- OpenMP workers then spin waiting for each other and CPU time
triples for nothing. CPU time is the zoo's budget, so one thread it is; ``--threads 2`` for speed
on a quiet machine (the weights then differ in the last bits).

Series (issue 14): with ``save_every`` the run also writes a checkpoint series into ``series_dir``
(``zoo.series_writer``): the initialisation (step 0), every ``save_every`` steps, the step the
curriculum ends and the last step, and ``series.json`` with the training log as its curve. Saving
reads the weights and draws no random numbers, so a run with saving ends with the same weights as
one without (``tests/integration/test_attn_series.py``).

Speed: the optimiser steps the bridge's parameters but the forward pass calls
``bridge.original_model`` -- the same modules and parameters, without the bridge's input
handling, ~1.7x faster on CPU. The trainer checks both give the same logits before it saves.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from interp_checks.zoo.data import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    BatchSampler,
    heldout_windows,
    tokenize_corpus,
)
from interp_checks.models.native import load_tokenizer
from interp_checks.numbers import finite_or_none
from interp_checks.zoo.recipes import Recipe

DEFAULT_THREADS = 1
# Requirements the card reports on (``Recipe.expect_induction`` says which side a model must be on).
INDUCTION_THRESHOLD = 0.5  # some head must reach this (2L+)
NO_INDUCTION_CEILING = 0.3  # every head must stay below this (1L)


@dataclass
class TrainResult:
    folder: Path | None  # the final checkpoint (None when ``out_dir`` was None)
    meta: dict[str, Any]
    series: Path | None = None  # the series folder, when checkpoints were saved along the way


def _optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices (embeddings, projections) but not on biases or LN gains."""
    decay, no_decay = [], []
    for _, param in sorted(model.named_parameters(), key=lambda item: item[0]):
        if not param.requires_grad:
            continue
        (decay if param.dim() >= 2 else no_decay).append(param)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr,
        betas=recipe.betas,
    )


def _next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Per-position next-token loss, [batch, pos-1]."""
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), tokens[:, 1:].reshape(-1), reduction="none"
    ).view(tokens.shape[0], -1)


def _run(bridge: Any, tokens: torch.Tensor, n_layers: int = 0, *, logits: bool = True) -> tuple[np.ndarray | None, dict[str, torch.Tensor]]:
    """Evaluation runs, through the engine's runner: next-token log-probs ([n, pos], NaN at 0; None
    without ``logits``) and the attention patterns of the first ``n_layers`` layers."""
    from interp_checks.checks.base import Needs
    from interp_checks.checks.heads import PATTERN_HOOK
    from interp_checks.runner import capture, next_token_logprobs

    bridge.eval()
    store = capture(bridge, tokens, Needs(frozenset(PATTERN_HOOK.format(layer=l) for l in range(n_layers)), logits=logits))
    logp = next_token_logprobs(store.pop("logits"), tokens) if logits else None
    return logp, store


def _head_scores(patterns: dict[str, torch.Tensor], mask: torch.Tensor, n_layers: int) -> dict[str, float]:
    """{"L0H0": score, ...}: each head's role score (the checks' ``scores_by_layer``), averaged over sequences."""
    from interp_checks.checks.heads import head_name, scores_by_layer

    by_layer = scores_by_layer(patterns, list(range(n_layers)), mask)
    return {
        head_name(layer, head): float(score)
        for layer in range(n_layers)
        for head, score in enumerate(np.nanmean(by_layer[layer], axis=0))
    }


@torch.no_grad()
def evaluate(bridge: Any, recipe: Recipe, heldout_stream: np.ndarray) -> dict[str, Any]:
    """The numbers on the model card: held-out text loss, repeated-token losses, head scores."""
    from interp_checks.checks.heads import duplicate_token_mask, induction_mask, previous_token_mask
    from interp_checks.inputs.generators import Vocabulary, generate

    out: dict[str, Any] = {}

    windows = torch.as_tensor(heldout_windows(heldout_stream, recipe.eval_heldout_windows, recipe.seq_len))
    logp = np.concatenate([_run(bridge, chunk)[0] for chunk in windows.split(16)])
    out["heldout_loss"] = float(-logp[:, 1:].mean())
    out["heldout_tokens"] = int(windows.shape[0] * (windows.shape[1] - 1))

    vocab = Vocabulary(recipe.d_vocab, recipe.n_ctx, BOS_ID, frozenset({BOS_ID, EOS_ID, PAD_ID}))
    spec = {"kind": "repeated_random_tokens", "seq_len": recipe.eval_repeat_seq_len, "n": recipe.eval_repeat_n}
    batch = generate(spec, vocab, recipe.eval_seed)
    tokens = torch.as_tensor(batch.tokens)
    logp, patterns = _run(bridge, tokens, recipe.n_layers)
    loss = -logp[:, 1:]  # loss[:, t] predicts tokens[:, t + 1]
    start, seq = batch.meta["repeat_start"], recipe.eval_repeat_seq_len
    # First half: the seq random tokens after BOS (positions start-seq .. start-1).
    out["first_half_loss"] = float(loss[:, start - seq - 1 : start - 1].mean())
    # Repeated half: tokens start+1 .. end. The repeat's first token (position ``start``) is left
    # out: nothing earlier in the sequence predicts it, with or without an induction head.
    out["repeated_half_loss"] = float(loss[:, start:].mean())
    out["eval_inputs"] = {**spec, "seed": recipe.eval_seed}

    masks = {
        "induction": induction_mask(tokens),
        "previous_token": previous_token_mask(tokens),
        "duplicate_token": duplicate_token_mask(tokens),
    }
    scores = {
        role: {head: round(score, 4) for head, score in _head_scores(patterns, mask, recipe.n_layers).items()}
        for role, mask in masks.items()
    }
    out["head_scores"] = scores
    for role in masks:
        best = max(scores[role], key=scores[role].get)
        out[f"best_{role}_head"] = {"head": best, "score": scores[role][best]}
    return out


def _column_means(rows: list[tuple[float, float, float]]) -> list[float]:
    """Mean of each column ignoring NaN (a column that is all NaN stays NaN, without a warning)."""
    array = np.array(rows, dtype=float)
    out = []
    for column in array.T:
        finite = column[~np.isnan(column)]
        out.append(float(finite.mean()) if finite.size else float("nan"))
    return out


def _repeated_tokens(recipe: Recipe, *, n: int, seed: int) -> torch.Tensor:
    """BOS + seq random tokens + the same again, from the generator claims use."""
    from interp_checks.inputs.generators import Vocabulary, generate

    vocab = Vocabulary(recipe.d_vocab, recipe.n_ctx, BOS_ID, frozenset({BOS_ID, EOS_ID, PAD_ID}))
    spec = {"kind": "repeated_random_tokens", "seq_len": recipe.eval_repeat_seq_len, "n": n}
    return torch.as_tensor(generate(spec, vocab, seed).tokens)


@torch.no_grad()
def _best_induction(bridge: Any, tokens: torch.Tensor, n_layers: int) -> tuple[str, float]:
    """The highest induction score of any head (logged during training to show the phase change)."""
    from interp_checks.checks.heads import induction_mask

    _, patterns = _run(bridge, tokens, n_layers, logits=False)
    scores = _head_scores(patterns, induction_mask(tokens), n_layers)
    best = max(scores, key=scores.get)  # the first of equal scores, as before
    return best, scores[best]


def requirement_checks(recipe: Recipe, results: dict[str, Any]) -> dict[str, Any]:
    """Whether the model shows (2L+) or lacks (1L) induction heads, as the zoo promises."""
    best = results["best_induction_head"]["score"]
    if recipe.expect_induction:
        ok = best >= INDUCTION_THRESHOLD
        rule = f"some head has induction score >= {INDUCTION_THRESHOLD}"
    else:
        ok = best < NO_INDUCTION_CEILING
        rule = f"every head has induction score < {NO_INDUCTION_CEILING}"
    return {"rule": rule, "best_induction_score": best, "passed": bool(ok)}


def series_retrain_command(recipe: Recipe, save_every: int) -> str:
    """The command that rewrites a series (``series.json``'s "retrain")."""
    return f"python -m interp_checks.zoo series {recipe.name} --save-every {save_every}"


def _series_writer(recipe: Recipe, series_dir: str | Path | None, save_every: int | None, tokenizer_path: Path,
                   threads: int) -> Any:
    """A :class:`~interp_checks.zoo.series_writer.SeriesWriter` when the run saves a series, else None."""
    if save_every is None and series_dir is None:
        return None
    if save_every is None or series_dir is None or save_every < 1:
        raise ValueError(f"{recipe.name}: a series needs both series_dir and save_every >= 1 "
                         f"(got series_dir={series_dir!r}, save_every={save_every!r})")
    from interp_checks.zoo.series_writer import SeriesWriter

    header = {"series": recipe.name, "recipe": recipe.as_record(), "retrain": series_retrain_command(recipe, save_every),
              "save_every": save_every, "threads": threads}
    return SeriesWriter(series_dir, header, tokenizer=tokenizer_path)


def train(
    recipe: Recipe,
    out_dir: str | Path | None,
    *,
    tokenizer_path: str | Path,
    threads: int = DEFAULT_THREADS,
    log: Callable[[str], None] = print,
    write_card: bool = True,
    save_every: int | None = None,
    series_dir: str | Path | None = None,
) -> TrainResult:
    """Train ``recipe`` and write ``out_dir/<recipe.name>/`` (native checkpoint + README.md; nothing
    when ``out_dir`` is None); with ``save_every`` and ``series_dir``, also a checkpoint series."""
    from interp_checks.models.native import boot_random, save_native

    torch.set_num_threads(threads)
    torch.manual_seed(recipe.seed)
    tokenizer_path = Path(tokenizer_path)
    tokenizer_vocab = load_tokenizer(tokenizer_path).backend_tokenizer.get_vocab_size()
    if tokenizer_vocab != recipe.d_vocab:
        raise ValueError(f"{recipe.name}: d_vocab {recipe.d_vocab} but {tokenizer_path} has {tokenizer_vocab} tokens")

    t0 = time.perf_counter()
    corpus = tokenize_corpus(tokenizer_path, recipe.max_documents)
    log(f"[{recipe.name}] corpus: {corpus.train.size} train / {corpus.heldout.size} held-out tokens "
        f"({time.perf_counter() - t0:.1f}s)")

    # No tokenizer object: training feeds token ids; the tokenizer file is copied in by save_native.
    bridge = boot_random(recipe.architecture(), seed=recipe.seed)
    bridge.train()
    model = bridge.original_model  # same parameters, faster forward (see module docstring)
    optimizer = _optimizer(bridge, recipe)
    sampler = BatchSampler(corpus.train, recipe.d_vocab, recipe.seq_len, recipe.batch_size, recipe.mixture, recipe.seed)
    tokens_seen = 0

    probe_tokens = _repeated_tokens(recipe, n=8, seed=recipe.eval_seed + 1)
    curve: list[dict[str, Any]] = []
    window: list[tuple[float, float, float]] = []
    curriculum_end = recipe.curriculum_steps  # moved earlier once the circuit has formed
    total_steps = curriculum_end + recipe.mixture_steps
    series = _series_writer(recipe, series_dir, save_every, tokenizer_path, threads)
    if series is not None:
        series.save(bridge, 0, {"series": recipe.name, "phase": "init"})
        series.write(curve=curve, complete=False)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    step = 0
    while step < total_steps:
        lr = recipe.lr_at(step, total_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        in_curriculum = step < curriculum_end
        batch = sampler.sample(recipe.curriculum if in_curriculum else recipe.mixture)
        tokens_seen += batch.synthetic.size + batch.text.size
        # Two forward passes (synthetic rows are shorter than text rows); one loss: the mean over
        # every target that carries loss, so each counted token weighs the same.
        losses, counts = [], []
        if batch.synthetic.shape[0]:
            syn_tokens = torch.as_tensor(batch.synthetic)
            syn_loss = _next_token_loss(model(syn_tokens), syn_tokens)[torch.as_tensor(batch.synthetic_mask)]
            losses.append(syn_loss.sum())
            counts.append(syn_loss.numel())
        if batch.text.shape[0]:
            text_tokens = torch.as_tensor(batch.text)
            text_loss = _next_token_loss(model(text_tokens), text_tokens)
            losses.append(text_loss.sum())
            counts.append(text_loss.numel())
        loss = torch.stack(losses).sum() / max(1, sum(counts))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(bridge.parameters(), recipe.grad_clip)
        optimizer.step()
        with torch.no_grad():
            syn = float(syn_loss.mean()) if batch.synthetic.shape[0] else float("nan")
            real = float(text_loss.mean()) if batch.text.shape[0] else float("nan")
        window.append((loss.item(), syn, real))
        step += 1
        at_phase_end = step == curriculum_end
        if step % recipe.log_every == 0 or step == total_steps or at_phase_end:
            mean = _column_means(window)
            elapsed = time.perf_counter() - wall0
            best_head, best_score = _best_induction(bridge, probe_tokens, recipe.n_layers)
            bridge.train()
            point = {
                "step": step,
                "phase": "curriculum" if in_curriculum else "mixture",
                "loss": round(float(mean[0]), 4),
                # None, not NaN, where a stretch had no such rows: config.json must stay strict JSON.
                "synthetic_loss": _rounded(mean[1]),
                "text_loss": _rounded(mean[2]),
                "lr": lr,
                "best_induction_score": round(best_score, 3),
            }
            curve.append(point)
            window.clear()
            log(f"[{recipe.name}] step {step}/{total_steps} ({point['phase']}) loss {point['loss']:.3f} "
                f"(synthetic {_num(point['synthetic_loss'])}, text {_num(point['text_loss'])}) "
                f"induction {best_head} {best_score:.2f} lr {lr:.2e} {tokens_seen / elapsed:,.0f} tok/s")
            if (
                in_curriculum
                and not at_phase_end
                and recipe.curriculum_until is not None
                and best_score >= recipe.curriculum_until
            ):
                curriculum_end = step  # the circuit exists: on to the mixture
                total_steps = curriculum_end + recipe.mixture_steps
                log(f"[{recipe.name}] induction score {best_score:.2f} >= {recipe.curriculum_until}: "
                    f"curriculum ends at step {step}")
        if series is not None and (step % save_every == 0 or step == curriculum_end or step == total_steps):
            series.save(bridge, step, {"series": recipe.name, "phase": "curriculum" if in_curriculum else "mixture"})
            series.write(curve=curve, complete=False)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0

    bridge.eval()
    probe = torch.as_tensor(batch.text[:2]) if batch.text.shape[0] else probe_tokens[:2]
    with torch.no_grad():
        if not torch.allclose(bridge(probe), model(probe), atol=1e-4):
            raise RuntimeError("bridge and original_model disagree: the fast training path is not the bridge")
    results = evaluate(bridge, recipe, corpus.heldout)
    checks = requirement_checks(recipe, results)
    log(f"[{recipe.name}] held-out {results['heldout_loss']:.3f}, first half {results['first_half_loss']:.3f}, "
        f"repeated half {results['repeated_half_loss']:.3f}, best induction {results['best_induction_head']}, "
        f"best prev-token {results['best_previous_token_head']}, requirement passed: {checks['passed']}")

    meta = {
        "zoo_model": recipe.name,
        "description": recipe.description,
        "recipe": recipe.as_record(),
        "data": {
            **corpus.describe(),
            "curriculum": {
                "steps": curriculum_end,
                "max_steps": recipe.curriculum_steps,
                "ended_early": curriculum_end < recipe.curriculum_steps,
                "batch": sampler.shape(recipe.curriculum),
            },
            "mixture": {
                "steps": recipe.mixture_steps,
                "batch": sampler.shape(recipe.mixture),
            },
        },
        "tokenizer": {"file": "tokenizer.json", "vocab_size": tokenizer_vocab, "special_tokens": {"<|bos|>": BOS_ID, "<|eos|>": EOS_ID, "<|pad|>": PAD_ID}},
        "training": {
            "steps": total_steps,
            "tokens_seen": tokens_seen,
            "wall_time_s": round(wall, 1),
            "cpu_time_s": round(cpu, 1),
            "tokens_per_s": round(tokens_seen / wall),
            "threads": threads,
            "final_train_loss": curve[-1]["loss"] if curve else None,
            "loss_curve": curve,
        },
        "evaluation": results,
        "requirements": checks,
        "environment": {
            "torch": torch.__version__,
            "transformer_lens": _version("transformer_lens"),
            "tokenizers": _version("tokenizers"),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "retrain": f"python -m interp_checks.zoo train {recipe.name}",
    }
    folder = None
    if out_dir is not None:
        folder = save_native(bridge, Path(out_dir) / recipe.name, tokenizer_json=tokenizer_path, meta=meta)
        if write_card:
            (folder / "README.md").write_text(model_card(recipe, meta), encoding="utf-8")
        log(f"[{recipe.name}] wrote {folder} ({wall:.0f}s wall, {cpu:.0f}s CPU)")
    if series is not None:
        series.write(curve=curve, complete=True, **_series_summary(meta))
        log(f"[{recipe.name}] wrote series {series.folder}: {len(series.checkpoints)} checkpoints")
    return TrainResult(folder, meta, series.folder if series is not None else None)


def _series_summary(meta: dict[str, Any]) -> dict[str, Any]:
    """What ``series.json`` adds at the end: where the phases fall on the axis, the run's own
    timing, and the final model's evaluation (the numbers of a zoo model card)."""
    curriculum, steps = meta["data"]["curriculum"]["steps"], meta["training"]["steps"]
    return {
        "phases": {"curriculum": [1, curriculum] if curriculum else None, "mixture": [curriculum + 1, steps]},
        "training": {key: value for key, value in meta["training"].items() if key != "loss_curve"},
        "evaluation": meta["evaluation"],
        "requirements": meta["requirements"],
        "environment": meta["environment"],
        "data": meta["data"],
        "date": meta["date"],
    }


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _score_table(recipe: Recipe, scores: dict[str, dict[str, float]]) -> str:
    lines = ["| head | induction | previous-token | duplicate-token |", "|---|---|---|---|"]
    for layer in range(recipe.n_layers):
        for head in range(recipe.n_heads):
            name = f"L{layer}H{head}"
            lines.append(
                f"| {name} | {scores['induction'][name]:.3f} | {scores['previous_token'][name]:.3f} "
                f"| {scores['duplicate_token'][name]:.3f} |"
            )
    return "\n".join(lines)


def _rounded(value: float) -> float | None:
    value = finite_or_none(value)
    return None if value is None else round(value, 4)


def _num(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"  # no such rows in that stretch


def _heads_over(scores: dict[str, float], threshold: float = 0.5) -> str:
    heads = [f"{head} ({score:.2f})" for head, score in scores.items() if score >= threshold]
    return ", ".join(heads) if heads else "none"


def _curriculum_text(recipe: Recipe, info: dict[str, Any]) -> str:
    if not info["steps"]:
        return "none (this model cannot form the circuit it is for; it sees the same text as the others)"
    if info.get("ended_early"):
        why = f"ended when the best induction score reached {recipe.curriculum_until}"
    elif recipe.curriculum_until is None:
        why = "a fixed length"
    else:
        why = f"the maximum: the induction score never reached {recipe.curriculum_until}"
    return f"steps 1-{info['steps']} are synthetic only ({why})"


def _mixture_text(mix: Any) -> str:
    graded = "every token graded" if mix.loss_on_fresh else "loss only on copied tokens after each copy's first"
    return f"{mix.min_spans}-{mix.max_spans} spans of {mix.min_span_len}-{mix.max_span_len} tokens per row, {graded}"


def _batch_text(shape: dict[str, int]) -> str:
    parts = []
    if shape["synthetic_rows"]:
        parts.append(f"{shape['synthetic_rows']} synthetic rows x {shape['synthetic_row_len']}")
    if shape["text_rows"]:
        parts.append(f"{shape['text_rows']} text rows x {shape['text_row_len']}")
    return " + ".join(parts) + f" = {shape['tokens']:,} tokens per step"


def _kind_of(recipe: Recipe) -> str:
    if recipe.attn_only:
        return "An attention-only transformer"
    return f"A transformer with an MLP of {recipe.d_mlp} neurons ({recipe.act_fn}) in each block"


def model_card(recipe: Recipe, meta: dict[str, Any]) -> str:
    """A README.md for the checkpoint folder: what it is, how it was made, what it measurably does."""
    ev, tr, data = meta["evaluation"], meta["training"], meta["data"]
    rec = meta["recipe"]
    mix = recipe.mixture
    recipe_rows = "\n".join(
        f"| {key} | {json.dumps(value) if isinstance(value, (dict, list)) else value} |"
        for key, value in rec.items()
        if key not in ("description",)
    )
    curve = tr["loss_curve"]
    picks = curve if len(curve) <= 8 else [curve[i] for i in np.linspace(0, len(curve) - 1, 8).astype(int)]
    curve_rows = "\n".join(
        f"| {p['step']} | {p['loss']:.3f} | {_num(p['synthetic_loss'])} | {_num(p['text_loss'])} "
        f"| {p['best_induction_score']:.3f} |"
        for p in picks
    )
    req = meta["requirements"]
    return f"""# {recipe.name}

{recipe.description}.

{_kind_of(recipe)} ({recipe.n_layers} layer{'s' if recipe.n_layers > 1 else ''}, d_model {recipe.d_model},
{recipe.n_heads} heads of d_head {recipe.d_head}, {recipe.normalization_type} normalization, {recipe.positional_embedding_type} positions,
n_ctx {recipe.n_ctx}, vocabulary {recipe.d_vocab}) trained on CPU by `interp_checks.zoo` for the tests of
`interp_checks`. Native checkpoint format (`config.json` + `model.safetensors` + `tokenizer.json`); load it with
`interp_checks.models.native.load_native(folder)`. All numbers below are also in `config.json` under `meta`.

Retrain: `{meta['retrain']}` (the recipe is `interp_checks/zoo/recipes.py`).

## Data

* Real text: the standard library of the Python that trained it ({data['python_version']}), read at run time:
  `pydoc_data.topics.topics` and the `.py` sources under `sysconfig.get_paths()["stdlib"]` (no test suites,
  no site-packages). {data['documents']['train']} training / {data['documents']['heldout']} held-out documents,
  split by `{data['heldout_rule']}`; {data['tokens']['train']:,} / {data['tokens']['heldout']:,} tokens.
  Corpus SHA-256: `{data['fingerprint_sha256']}`.
* Synthetic: BOS + uniformly random non-special tokens in which spans are copied from a random source
  offset to a random later offset (never a fixed offset, which would teach a positional shortcut instead of
  induction).
* Curriculum: {_curriculum_text(recipe, data['curriculum'])} ({_batch_text(data['curriculum']['batch'])};
  {_mixture_text(recipe.curriculum)}). The remaining {data['mixture']['steps']} steps mix synthetic rows and text
  ({_batch_text(data['mixture']['batch'])}; {_mixture_text(mix)}; synthetic fraction of tokens
  {mix.synthetic_fraction}). Every text token carries loss.
* Tokenizer: byte-level BPE, {meta['tokenizer']['vocab_size']} tokens, trained on the training documents;
  `<|bos|>`=0, `<|eos|>`=1 (between documents), `<|pad|>`=2. Every training row starts with `<|bos|>`.

## Recipe

| field | value |
|---|---|
{recipe_rows}

## Training

{tr['steps']} steps, {tr['tokens_seen']:,} tokens, {tr['wall_time_s']} s wall / {tr['cpu_time_s']} s CPU on
{tr['threads']} thread(s) ({tr['tokens_per_s']:,} tokens/s). torch {meta['environment']['torch']},
transformer_lens {meta['environment']['transformer_lens']}, Python {meta['environment']['python']}, {meta['date']}.

| step | loss | synthetic rows (graded tokens) | text rows | best induction score |
|---|---|---|---|---|
{curve_rows}

## Evaluation

* Held-out stdlib text loss: **{ev['heldout_loss']:.3f}** nats/token ({ev['heldout_tokens']:,} tokens in
  {recipe.eval_heldout_windows} evenly spaced windows).
* Repeated random tokens (`{json.dumps(ev['eval_inputs'])}`): first half **{ev['first_half_loss']:.3f}**,
  repeated half **{ev['repeated_half_loss']:.3f}** nats/token (the repeat's first token, which nothing predicts,
  is left out).
* Best induction head: **{ev['best_induction_head']['head']}** ({ev['best_induction_head']['score']:.3f});
  best previous-token head: **{ev['best_previous_token_head']['head']}** ({ev['best_previous_token_head']['score']:.3f}).
* Heads with induction score >= 0.5: {_heads_over(ev['head_scores']['induction'])};
  with previous-token score >= 0.5: {_heads_over(ev['head_scores']['previous_token'])}.
* Requirement ({req['rule']}): **{'passed' if req['passed'] else 'FAILED'}**.

Head scores: mean attention on the role's keys over the query rows where the role is defined
(`interp_checks.checks.heads.role_scores`), averaged over the {recipe.eval_repeat_n} sequences above.

{_score_table(recipe, ev['head_scores'])}
"""
