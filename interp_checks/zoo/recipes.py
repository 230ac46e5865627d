"""The zoo's recipes: every hyperparameter of every model, in one frozen dataclass each.

Why frozen dataclasses rather than YAML: a recipe is code-reviewed with the trainer that reads it,
``dataclasses.asdict`` gives the exact record written into each checkpoint's ``meta``, and a typo is
an error at import time instead of a silently ignored key.

Shared choices, and why (the "trials" are 2L/3L runs made while writing this; numbers in the
report that came with the zoo and in the model cards):

* **attention-only, LayerNorm** -- the setting of Elhage et al., "A Mathematical Framework for
  Transformer Circuits" (2021), where 1L models cannot form induction heads (a key only sees its own
  token and position) and 2L models do, through K-composition with a previous-token head. Claims
  about these models can then be checked against known theory.
* **rotary positions** rather than learned absolute ones: a previous-token head is then two bias
  vectors meeting the rotation at offset 1, instead of 256 position embeddings learning to line
  up. Measured: with absolute positions and the curriculum below, the 2L model built a *shifted*
  circuit instead (see below) or, with spans of 2-6 tokens, the standard one only at step ~1250
  (rotary: step 750). Cost: GPT-2 has no rotary positions, so ``interp_checks.models.export``
  refuses the zoo models (``tests/integration/test_formats_e2e.py`` checks the refusal).
* **d_model 64, 4 heads of d_head 16** -- the same width in every model, so a 2L-vs-1L comparison
  isolates depth. Width is cheap to keep small: in these models the vocabulary, not the width,
  dominates the cost (see ``data.TOKENIZER_VOCAB_SIZE``).
* **n_ctx 256; text rows of 256 tokens** -- inputs of 2*64+1 tokens (and longer) are in range.
* **4096 tokens per step** (16 x 256 equivalent) -- measured fastest per token on this CPU (bigger
  batches spill the [batch, pos, 2048] logits out of cache and run 2-3x slower per token).
* **AdamW, lr 3e-3, 100 warmup steps, flat, cosine to 10% over the last ``decay_steps``; weight
  decay 0.05 on matrices; clip 1.0** -- tiny models tolerate a high rate, and the induction phase
  change comes after a plateau that a decaying rate only lengthens.
* **curriculum, then mixture** (see ``data.Mixture`` and ``data.Batch``):

  1. synthetic copy rows only: 64 rows of 64 tokens, 1-4 copied spans of 2-16 tokens, loss only on
     the copied tokens -- until the best head's induction score (probed every ``log_every`` steps
     on repeated random tokens) reaches ``curriculum_until``, at most ``curriculum_steps`` steps;
  2. then ``mixture_steps`` of 1/4 synthetic (rows of 128, spans of 2-48, every token graded) and
     3/4 real stdlib text (rows of 256), by tokens. Every model gets the same number of mixture
     steps, so they have seen the same amount of text when compared on text.

  Why, from the trials: with text in every batch from step 0 (25-50% of tokens) no induction head
  formed in 1200-1500 steps -- heads went to text statistics and to an "in-context unigram"
  solution (attend everywhere, boost tokens seen before). On synthetic rows alone, 128 tokens
  long, none in 900 steps; 64 tokens long, the circuit formed at step ~450 (2L, spans of 8-31).
  At the start attention is spread evenly, so the signal that grows the circuit scales with one
  over the number of keys. Long spans let the copies be solved by a *shifted* circuit: the 3L
  model (spans of 8-31) grew layer-0 heads reading the tokens 8 and 9 back and a layer-1 head
  matching the current token against the 9-back one and copying the 8-back one -- an induction
  score of 0.00 on the standard definition. A shift of k only predicts copies longer than k, so
  with spans from 2 tokens the standard one-back circuit pays most; it formed at step 750 (2L,
  3L) and 850 (4L). The 1L model has no curriculum (``curriculum_steps=0``): it cannot form the
  circuit, and the comparison with it is about text, of which it sees the same amount.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from interp_checks.zoo.data import TOKENIZER_VOCAB_SIZE, Mixture


@dataclass(frozen=True)
class Recipe:
    """Everything needed to retrain one model bit-for-bit (on the same machine and library versions)."""

    name: str
    n_layers: int
    seed: int
    d_model: int = 64
    n_heads: int = 4
    d_head: int = 16
    n_ctx: int = 256
    # An MLP in every block when set (``act_fn`` e.g. "solu_ln"); None: attention-only.
    d_mlp: int | None = None
    act_fn: str | None = None
    normalization_type: str = "LN"
    positional_embedding_type: str = "rotary"
    d_vocab: int = TOKENIZER_VOCAB_SIZE
    seq_len: int = 256
    batch_size: int = 16
    lr: float = 3e-3
    warmup_steps: int = 100
    decay_steps: int = 500  # cosine decay over the last this-many steps of the run
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    # Phase 1: ``curriculum`` batches until the probed induction score reaches ``curriculum_until``
    # (None: never early), for at most ``curriculum_steps`` steps.
    curriculum_steps: int = 1200
    curriculum_until: float | None = 0.8
    curriculum: Mixture = field(
        default_factory=lambda: Mixture(
            synthetic_fraction=1.0,
            synthetic_seq_len=64,
            min_spans=1,
            max_spans=4,
            min_span_len=2,
            max_span_len=16,
            loss_on_fresh=False,
        )
    )
    # Phase 2: ``mixture_steps`` of ``mixture`` batches.
    mixture_steps: int = 900
    mixture: Mixture = field(
        default_factory=lambda: Mixture(
            synthetic_fraction=0.25,
            synthetic_seq_len=128,
            min_spans=1,
            max_spans=4,
            min_span_len=2,
            max_span_len=48,
            loss_on_fresh=True,
        )
    )
    log_every: int = 50
    # Evaluation (end of training).
    eval_seed: int = 1234
    eval_heldout_windows: int = 64
    eval_repeat_seq_len: int = 32
    eval_repeat_n: int = 64
    # First N documents of each split only (tests); None = the whole stdlib corpus.
    max_documents: int | None = None
    # What the model must show (checked after training and written to the card).
    expect_induction: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        if self.n_heads * self.d_head != self.d_model:
            raise ValueError(f"{self.name}: n_heads * d_head must equal d_model")
        if self.seq_len > self.n_ctx:
            raise ValueError(f"{self.name}: seq_len {self.seq_len} exceeds n_ctx {self.n_ctx}")
        if (self.d_mlp is None) != (self.act_fn is None):
            raise ValueError(f"{self.name}: give both d_mlp and act_fn (a model with MLPs) or neither (attention-only)")

    @property
    def attn_only(self) -> bool:
        return self.d_mlp is None

    def architecture(self) -> dict[str, Any]:
        """The TransformerBridgeConfig fields the native format records."""
        return {
            "d_model": self.d_model,
            "d_head": self.d_head,
            "n_layers": self.n_layers,
            "n_ctx": self.n_ctx,
            "n_heads": self.n_heads,
            "d_vocab": self.d_vocab,
            "attn_only": self.attn_only,
            "normalization_type": self.normalization_type,
            "positional_embedding_type": self.positional_embedding_type,
            "default_prepend_bos": True,
            **({} if self.attn_only else {"d_mlp": self.d_mlp, "act_fn": self.act_fn}),
        }

    @property
    def max_steps(self) -> int:
        return self.curriculum_steps + self.mixture_steps

    def lr_at(self, step: int, total_steps: int) -> float:
        """Linear warmup over ``warmup_steps``, full ``lr``, then a cosine decay to
        ``min_lr_ratio * lr`` over the last ``decay_steps`` of ``total_steps`` (the run's length is
        known once the curriculum has ended; the decay always falls in the mixture phase)."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        start = max(self.warmup_steps, total_steps - min(self.decay_steps, self.mixture_steps))
        if step < start:
            return self.lr
        progress = (step - start) / max(1, total_steps - start)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine)

    def tokens_per_step(self, mixture: Mixture | None = None) -> int:
        """Tokens in one batch of ``mixture`` (default: the phase-2 mixture)."""
        mixture = mixture or self.mixture
        n_syn, n_text = mixture.rows(self.batch_size, self.seq_len)
        return n_syn * min(mixture.synthetic_seq_len, self.seq_len) + n_text * self.seq_len

    def with_steps(self, steps: int) -> "Recipe":
        """A shortened (or lengthened) run: ``steps`` mixture steps, the curriculum capped at ``steps``."""
        return replace(
            self,
            mixture_steps=steps,
            curriculum_steps=min(self.curriculum_steps, steps),
            warmup_steps=min(self.warmup_steps, max(1, steps // 10)),
            decay_steps=min(self.decay_steps, steps),
        )

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["betas"] = list(self.betas)
        return record


SOLU_STEPS = 1200


def solu_recipe(name: str, *, d_mlp: int, seed: int, description: str) -> Recipe:
    """A one-layer language model with a SoLU MLP (``act_fn: solu_ln``, as in Elhage et al., "Softmax
    Linear Units", 2022), trained on stdlib text only: no curriculum, no synthetic rows (it cannot form
    induction heads, and its claims are about what its neurons read in text).

    Why these sizes: the vocabulary is the zoo's (2,048 tokens), d_model 128 and context rows of 128
    tokens keep a checkpoint under 5 MB; batch 32 x 128 and AdamW 2e-3 with a cosine decay over the
    whole run are the setting in which a 1-layer SoLU model (d_model 256, d_mlp 1024, 4,096 tokens)
    had `def` and indentation neurons after 400 steps on this machine (``shared/FACTS.md``); we train
    longer (``SOLU_STEPS``) because the model is narrower.
    """
    return Recipe(
        name=name,
        n_layers=1,
        seed=seed,
        d_model=128,
        n_heads=4,
        d_head=32,
        d_mlp=d_mlp,
        act_fn="solu_ln",
        seq_len=128,
        batch_size=32,
        lr=2e-3,
        warmup_steps=50,
        decay_steps=SOLU_STEPS,
        curriculum_steps=0,
        mixture_steps=SOLU_STEPS,
        mixture=Mixture(synthetic_fraction=0.0, synthetic_seq_len=128),
        log_every=100,
        expect_induction=False,
        description=description,
    )


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            name="attn-only-1l",
            n_layers=1,
            seed=1,
            curriculum_steps=0,
            expect_induction=False,
            description="one attention layer: bigram + skip-trigram statistics, no induction (it cannot compose heads)",
        ),
        Recipe(
            name="attn-only-2l",
            n_layers=2,
            seed=2,
            description="two attention layers: the smallest model that forms induction heads (previous-token head + induction head)",
        ),
        Recipe(
            name="attn-only-3l",
            n_layers=3,
            seed=3,
            description="three attention layers",
        ),
        Recipe(
            name="attn-only-4l",
            n_layers=4,
            seed=4,
            description="four attention layers",
        ),
        *(
            solu_recipe(name, d_mlp=d_mlp, seed=seed, description=description)
            for name, d_mlp, seed, description in (
                ("solu-1l", 512, 11, "one layer with a SoLU MLP of 512 neurons: for neuron and feature claims"),
                ("solu-1l-wide", 2048, 12, "one layer with a SoLU MLP of 2048 neurons (4x solu-1l): for feature-splitting claims"),
            )
        ),
    )
}


def micro_recipe(**overrides: Any) -> Recipe:
    """A recipe that trains in about a second: for tests of the pipeline, not for claims."""
    base = Recipe(
        name="micro",
        n_layers=1,
        seed=0,
        d_model=16,
        d_head=4,
        n_ctx=64,
        seq_len=64,
        batch_size=4,
        warmup_steps=5,
        decay_steps=10,
        curriculum_steps=10,
        curriculum_until=None,
        curriculum=Mixture(synthetic_fraction=1.0, synthetic_seq_len=32, min_span_len=2, max_span_len=8),
        mixture_steps=20,
        mixture=Mixture(synthetic_fraction=0.5, synthetic_seq_len=32, min_span_len=2, max_span_len=8, loss_on_fresh=True),
        log_every=10,
        eval_heldout_windows=4,
        eval_repeat_seq_len=8,
        eval_repeat_n=4,
        max_documents=3,
        expect_induction=False,
        description="pipeline test recipe",
    )
    return replace(base, **overrides)
