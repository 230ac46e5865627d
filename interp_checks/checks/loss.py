"""How well one model predicts its inputs: next-token loss, accuracy, and the in-context-learning score.

The smallest claim family, and the reading most series claims take at every checkpoint ("the
loss on the test pairs", "the in-context-learning score"). Per sequence (the unit of sampling):

* ``loss``: the mean, over the tokens ``where:`` selects (default every predicted token), of
  -log p(actual next token), in nats. For inputs whose rows hold a task with a held-out answer
  (``InputBatch.answers``: modular addition's ``a b =``), the loss of the answer at the row's last
  token instead: the only prediction such a row asks for.
* ``accuracy``: the share of those predictions whose most likely token is the right one.
* ``icl_score``: Olsson et al. (2022)'s in-context-learning score, the loss at a late token minus
  the loss at an early one (``late``, ``early``: token positions, default the last and the 5th
  predicted token; negative means the model predicts better later in the context, i.e. it uses the
  context). They used tokens 500 and 50 of text; on the zoo's 65-token repeated sequences the
  late token sits in the repeated half.
* ``token_losses``: the loss at every predicted position, [sequences, positions] (the answer's
  alone, [sequences, 1], for rows with a held-out answer): what a logit-PCA trajectory reads at each
  checkpoint (``checks.dynamics``).

Null: the same statistic on a random-weights twin (a model that has learnt nothing: loss near
log(vocabulary)); the effect size is the estimate minus that.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from interp_checks.checks.base import MODEL, Activations, CheckError, ModelShape, Needs, Prepared, register
from interp_checks.checks.compare import mean_over
from interp_checks.inputs.generators import InputBatch
from interp_checks.inputs.token_sets import TokenSetError, parse_where, select
from interp_checks.runner import next_token_logprobs

__all__ = ["LossCheck"]


def _answer_losses(logits: torch.Tensor, batch: InputBatch) -> tuple[np.ndarray, np.ndarray]:
    """(loss, correct) of each row's held-out answer, read at its last valid token."""
    last = batch.valid.sum(axis=1) - 1
    rows = torch.arange(logits.shape[0])
    final = logits[rows, torch.as_tensor(last)].float()
    answers = torch.as_tensor(batch.answers, device=final.device)
    if int(answers.max()) >= final.shape[-1]:
        raise CheckError(f"an answer token ({int(answers.max())}) lies outside the model's {final.shape[-1]} output logits")
    loss = torch.logsumexp(final, dim=-1) - final.gather(-1, answers[:, None])[:, 0]
    return loss.cpu().double().numpy(), (final.argmax(-1) == answers).cpu().double().numpy()


def _token_losses(logits: torch.Tensor, batch: InputBatch) -> tuple[np.ndarray, np.ndarray]:
    """(loss, correct) at every position p (predicting token p from those before it); NaN at p = 0
    and on padding. The loss is ``runner.next_token_logprobs``'s, negated."""
    loss = -next_token_logprobs(logits, batch.tokens)
    target = torch.as_tensor(batch.tokens, device=logits.device)[:, 1:].long()
    correct = (logits[:, :-1].argmax(-1) == target).cpu().double().numpy()
    correct = np.concatenate([np.full((correct.shape[0], 1), np.nan), correct], axis=1)
    return np.where(batch.valid, loss, np.nan), np.where(batch.valid, correct, np.nan)


class LossCheck:
    """``check: loss``; keys ``where``, ``early``, ``late``."""

    name: ClassVar[str] = "loss"
    description: ClassVar[str] = (
        "per sequence, next-token loss (nats) and accuracy over the tokens where: selects (or each row's held-out answer), "
        "the in-context-learning score (loss at token late minus loss at token early), and per-position losses"
    )
    statistics: ClassVar[tuple[str, ...]] = ("loss", "accuracy", "icl_score", "token_losses")
    params: ClassVar[tuple[str, ...]] = ("where", "early", "late")
    model_roles: ClassVar[tuple[str, ...]] = ()
    default_inputs: ClassVar[Mapping[str, Any] | None] = {"kind": "repeated_random_tokens", "seq_len": 32, "n": 64}
    reads_series: ClassVar[bool] = False

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        try:
            where = parse_where(params.get("where"))
        except TokenSetError as error:
            raise CheckError(str(error)) from None
        early, late = params.get("early", 5), params.get("late", -1)
        for key, value in (("early", early), ("late", late)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise CheckError(f"{key} must be a token position (an integer; negative counts from the end), got {value!r}")
        stats = [s for s in self.statistics if s in expect]
        needs = Needs(frozenset(), logits=True)
        units = {"loss": "nats", "accuracy": "share", "icl_score": "nats", "token_losses": "nats"}
        notes = [
            f"loss and accuracy over {where.describe()} (or each row's held-out answer where the inputs have one); "
            f"icl_score = loss at token {late} minus loss at token {early}"
        ]
        return Prepared(
            needs={MODEL: needs}, null_needs=needs, statistics=stats, notes=notes, units={s: units[s] for s in stats},
            members={"token_losses": []} if "token_losses" in stats else {},
            state={"where": where, "early": early, "late": late, "null_statistic": stats[0] if stats else "loss"},
        )

    def _values(self, prepared: Prepared, logits: torch.Tensor, batch: InputBatch) -> dict[str, np.ndarray]:
        state = prepared.state
        out: dict[str, np.ndarray] = {}
        if batch.answers is not None:
            loss, correct = _answer_losses(logits, batch)
            out["loss"], out["accuracy"], out["token_losses"] = loss, correct, loss[:, None]
            if "icl_score" in prepared.statistics:
                raise CheckError("icl_score compares an early and a late position; these inputs ask one held-out answer per row")
            return out
        losses, correct = _token_losses(logits, batch)
        try:
            mask = select(state["where"], batch)
        except TokenSetError as error:
            raise CheckError(str(error)) from None
        out["loss"], out["accuracy"] = mean_over(losses, mask), mean_over(correct, mask)
        n_pos = losses.shape[1]
        early, late = (p if p >= 0 else n_pos + p for p in (state["early"], state["late"]))
        if not 1 <= early < n_pos or not 1 <= late < n_pos:
            raise CheckError(f"early {state['early']} and late {state['late']} must be predicted positions (1..{n_pos - 1}) of these {n_pos}-token rows")
        out["icl_score"] = losses[:, late] - losses[:, early]
        out["token_losses"] = losses[:, 1:]
        return out

    def measure(self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]) -> dict[str, np.ndarray]:
        values = self._values(prepared, activations[MODEL]["logits"], batches[MODEL])
        return {stat: values[stat] for stat in prepared.statistics}

    def measure_null(self, prepared: Prepared, activations: Activations, batch: InputBatch) -> np.ndarray:
        values = self._values(prepared, activations["logits"], batch)
        stat = prepared.state["null_statistic"]
        return values[stat].mean(axis=1) if values[stat].ndim > 1 else values[stat]

    def null_description(self, prepared: Prepared) -> str:
        return f"{prepared.state['null_statistic']} of a random-weights model of the same architecture"


register(LossCheck())
