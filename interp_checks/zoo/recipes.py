"""The zoo's recipes: every hyperparameter of every model, in one frozen dataclass each.

Why frozen dataclasses rather than YAML: a recipe is code-reviewed with the trainer that reads it,
``dataclasses.asdict`` gives the exact record written into each checkpoint's ``meta``, and a typo is
an error at import time instead of a silently ignored key.

Shared choices, and why:

* **attention-only, LayerNorm, learned absolute positions** -- the setting of Elhage et al.,
  "A Mathematical Framework for Transformer Circuits" (2021), where 1L models provably cannot form
  induction heads (a key only sees its own token and position) and 2L models do, through K-composition
  with a previous-token head. Claims about these models can then be checked against known theory.
* **d_model 64, 4 heads of d_head 16** -- the same width in every model, so a 2L-vs-1L comparison
  isolates depth. Width is cheap to keep small: in these models the vocabulary, not the width,
  dominates the cost (see ``data.TOKENIZER_VOCAB_SIZE``).
* **n_ctx 256, trained on 256-token sequences** -- every position embedding is trained, so inputs of
  up to 2*64+1 tokens (and longer) are in distribution.
* **batch 16 x 256 tokens** -- measured fastest per token on 2 CPU cores (batch 24-32 spills the
  logits tensor out of cache and runs 2-3x slower per token).
* **AdamW, lr 1e-3, linear warmup then cosine to 10%, weight decay 0.05 (matrices only), clip 1.0**
  -- standard for tiny transformers; decay keeps the (huge, relative to the model) embedding from
  memorising rare tokens.
* **mixture: half synthetic copy sequences, half real stdlib text** (see ``data.Mixture``).
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
    steps: int
    seed: int
    d_model: int = 64
    n_heads: int = 4
    d_head: int = 16
    n_ctx: int = 256
    normalization_type: str = "LN"
    positional_embedding_type: str = "standard"
    d_vocab: int = TOKENIZER_VOCAB_SIZE
    seq_len: int = 256
    batch_size: int = 16
    lr: float = 1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    mixture: Mixture = field(default_factory=Mixture)
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

    def architecture(self) -> dict[str, Any]:
        """The TransformerBridgeConfig fields the native format records."""
        return {
            "d_model": self.d_model,
            "d_head": self.d_head,
            "n_layers": self.n_layers,
            "n_ctx": self.n_ctx,
            "n_heads": self.n_heads,
            "d_vocab": self.d_vocab,
            "attn_only": True,
            "normalization_type": self.normalization_type,
            "positional_embedding_type": self.positional_embedding_type,
            "default_prepend_bos": True,
        }

    def lr_at(self, step: int) -> float:
        """Linear warmup over ``warmup_steps``, then cosine decay to ``min_lr_ratio * lr`` at ``steps``."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    def with_steps(self, steps: int) -> "Recipe":
        """The same recipe, shortened or lengthened (the schedule stretches with it)."""
        return replace(self, steps=steps, warmup_steps=min(self.warmup_steps, max(1, steps // 10)))

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["betas"] = list(self.betas)
        return record


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            name="attn-only-1l",
            n_layers=1,
            steps=1200,
            seed=1,
            expect_induction=False,
            description="one attention layer: bigram + skip-trigram statistics, no induction (it cannot compose heads)",
        ),
        Recipe(
            name="attn-only-2l",
            n_layers=2,
            steps=1200,
            seed=2,
            description="two attention layers: the smallest model that forms induction heads (previous-token head + induction head)",
        ),
        Recipe(
            name="attn-only-3l",
            n_layers=3,
            steps=1200,
            seed=3,
            description="three attention layers",
        ),
        Recipe(
            name="attn-only-4l",
            n_layers=4,
            steps=1200,
            seed=4,
            description="four attention layers",
        ),
    )
}


def micro_recipe(**overrides: Any) -> Recipe:
    """A recipe that trains in about a second: for tests of the pipeline, not for claims."""
    base = Recipe(
        name="micro",
        n_layers=1,
        steps=30,
        seed=0,
        d_model=16,
        d_head=4,
        n_ctx=64,
        seq_len=64,
        batch_size=4,
        warmup_steps=5,
        log_every=10,
        eval_heldout_windows=4,
        eval_repeat_seq_len=8,
        eval_repeat_n=4,
        max_documents=3,
        expect_induction=False,
        description="pipeline test recipe",
    )
    return replace(base, **overrides)
