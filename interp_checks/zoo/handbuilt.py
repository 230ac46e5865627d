"""Models whose circuits are known by construction: weights set by hand, saved as ``native:`` checkpoints.

Why: a check that claims to find "the heads that matter" (head roles, composition scores, ablation,
patching, faithfulness) can only be trusted if, on a model where the answer is known exactly, it
finds every component that is used and calls none of the unused ones important. Trained models
(the zoo) have no such answer key; these do. Each builder returns a :class:`KnownCircuit`, the
answer key as data, which later checks are tested against.

``induction_2l`` -- a 2-layer attention-only model without layer norm and with learned (absolute)
positions, whose residual stream is cut into named subspaces (:class:`Layout`):

* ``tok``: the current token's identity, a random unit vector per token (``token_dim`` of them in
  superposition; the vocabulary is larger than the subspace, as in real models);
* ``pos``: the position as ``(cos, sin)`` pairs at a few frequencies (so a previous-token head needs a
  ``d_head`` of ``2 * n_frequencies``, not ``n_ctx``);
* ``prev``: written by the previous-token head L0H0 -- the previous token's identity;
* ``out``: written by the induction head L1H1 -- the predicted next token, read by the unembedding;
* ``first``: one dimension, 1 at position 0 only.

L0H0 attends from position p to p-1 (its query is the position rotated back by one step, its key the
position) and its OV copies ``tok`` into ``prev``. L1H1's key reads ``prev`` (K-composition with
L0H0), its query reads ``tok``: it attends to the position after an earlier occurrence of the
current token, and its OV copies that position's ``tok`` into ``out``. Position 0 has no previous
token, so L0H0 attends to itself there and writes position 0's own token into ``prev``; L1H1's key
also reads ``first`` against a constant query (its query bias) to refuse that key, as trained
models refuse a BOS token. Every other head writes
nothing: two have all four matrices zero, two have sharp attention (to themselves, to the first
position) but ``W_O = 0`` ("distractors"), two have random ``W_Q, W_K, W_V`` and ``W_O = 0``.
All biases are zero except a distractor's query bias, and the unembedding has no bias.

``token_neurons_1l`` (:func:`build_token_neurons`) -- a 1-layer model with an MLP (SoLU or GELU)
whose neuron i fires exactly on a chosen set of token strings of the zoo tokenizer and reads 0 on
every other token, in any context; optionally with a planted exception (a token a claim's regex
matches but the neuron leaves out). Its answer key is a :class:`KnownNeurons`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
from jaxtyping import Float

Variant = Literal["narrow", "square"]
VARIANTS: tuple[str, ...] = ("narrow", "square")


@dataclass(frozen=True)
class KnownCircuit:
    """The answer key of a hand-built model: what is used, how, and on which inputs it matters.

    ``roles`` maps a head to the ``interp_checks`` head-role check it should pass (and no other head
    should). ``composition`` lists ``(from_head, to_head, kind)`` with kind ``q``, ``k`` or ``v``:
    the edges the behaviour runs through. Other pairs carry no behaviour, but a weight statistic
    may still see them: a head with random ``W_Q``/``W_K`` that writes nothing reads L0H0's output
    at the level of random weights (TL's K-score about 1/sqrt(d_model)). ``silenced`` says how each
    unused head is kept from mattering. ``metric`` is the behaviour the circuit carries, measured on
    ``inputs`` (an input-generator spec).
    """

    name: str
    spec: str
    used_heads: tuple[str, ...]
    unused_heads: tuple[str, ...]
    roles: dict[str, str]
    composition: tuple[tuple[str, str, str], ...]
    silenced: dict[str, str]
    metric: str
    inputs: dict[str, Any]
    architecture: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples as lists), as written into the checkpoint's ``meta["known_circuit"]``."""
        return asdict(self)


@dataclass(frozen=True)
class Layout:
    """Where each named subspace of the residual stream lives (``slice`` of ``d_model``)."""

    token_dim: int
    n_frequencies: int
    spare: int = 0  # unused trailing dimensions (the "square" variant pads d_model with them)

    @property
    def tok(self) -> slice:
        return slice(0, self.token_dim)

    @property
    def prev(self) -> slice:
        return slice(self.token_dim, 2 * self.token_dim)

    @property
    def out(self) -> slice:
        return slice(2 * self.token_dim, 3 * self.token_dim)

    @property
    def pos(self) -> slice:
        start = 3 * self.token_dim
        return slice(start, start + 2 * self.n_frequencies)

    @property
    def first(self) -> int:
        """The one dimension set only at position 0 (so the induction head can refuse that key)."""
        return self.pos.stop

    @property
    def d_model(self) -> int:
        return 3 * self.token_dim + 2 * self.n_frequencies + 1 + self.spare


# The induction model's sizes. d_vocab is large beside the 31 other tokens of a sequence so that a
# token rarely repeats inside the first half: each repeat makes the induction head split its
# attention between two continuations, costing log 2 nats or more at those positions. Measured mean
# loss on the repeat (128 sequences of 32 tokens, seed 0): 0.13 with d_vocab 1024 (about half the
# sequences have a repeat), 0.087 with 2048; 4096 keeps it well under 0.1.
# TOKEN_DIM leaves a spare dimension of d_head for the induction head's position-0 gate.
D_VOCAB = 4096
TOKEN_DIM = 60
N_FREQUENCIES = 4
N_CTX = 128
N_HEADS = 4
D_HEAD = 64
# Logit gaps, in nats, between the key a sharp head should attend to and the best other key, and
# between the copied token's logit and the typical other token's. Large enough that attention and
# predictions are near one-hot; small enough that float32 scores stay exact to ~1e-3.
ATTENTION_GAP = 20.0
INDUCTION_MATCH = 40.0
FIRST_POSITION_PENALTY = 60.0
UNEMBED_SCALE = 30.0
RANDOM_QK_STD = 0.02


def head_label(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


def token_vectors(d_vocab: int, dim: int, generator: torch.Generator) -> Float[torch.Tensor, "vocab dim"]:
    """One random unit vector per token: near-orthogonal (|cos| ~ 1/sqrt(dim)), as many as we like."""
    vectors = torch.randn(d_vocab, dim, generator=generator, dtype=torch.float64)
    return (vectors / vectors.norm(dim=-1, keepdim=True)).float()


def frequencies(n_ctx: int, n_frequencies: int) -> Float[torch.Tensor, "freq"]:
    """Angles per position step, the slowest with period 2 * n_ctx so no two offsets look alike."""
    return torch.tensor([math.pi * 2**f / n_ctx for f in range(n_frequencies)], dtype=torch.float64)


def position_features(n_ctx: int, n_frequencies: int) -> Float[torch.Tensor, "pos two_freq"]:
    """Position p as (cos theta_f p, sin theta_f p) for each frequency, interleaved."""
    angles = torch.arange(n_ctx, dtype=torch.float64)[:, None] * frequencies(n_ctx, n_frequencies)[None, :]
    return torch.stack([angles.cos(), angles.sin()], dim=-1).reshape(n_ctx, 2 * n_frequencies)


def offset_scale(n_ctx: int, n_frequencies: int, gap: float) -> float:
    """The factor on ``sum_f cos(theta_f * delta)`` that puts ``gap`` nats between delta = 0 and every
    other offset a causal head can see (delta = -1 .. n_ctx - 1)."""
    deltas = torch.arange(-1, n_ctx, dtype=torch.float64)
    deltas = deltas[deltas != 0]
    thetas = frequencies(n_ctx, n_frequencies)
    shortfall = (1 - torch.cos(deltas[:, None] * thetas[None, :])).sum(-1).min().item()
    return gap / shortfall


def rotation_back(n_ctx: int, n_frequencies: int, steps: int) -> Float[torch.Tensor, "two_freq two_freq"]:
    """The linear map taking position features of p to those of p - steps (block-diagonal rotations)."""
    blocks = []
    for theta in frequencies(n_ctx, n_frequencies) * steps:
        c, s = math.cos(theta), math.sin(theta)
        blocks.append(torch.tensor([[c, -s], [s, c]], dtype=torch.float64))  # row vector x @ R rotates by -theta
    return torch.block_diag(*blocks)


@dataclass
class HeadWeights:
    """One head's matrices in TransformerLens's convention (``q = x @ W_Q + b_Q``, ``out = z @ W_O``)."""

    W_Q: Float[torch.Tensor, "d_model d_head"]
    W_K: Float[torch.Tensor, "d_model d_head"]
    W_V: Float[torch.Tensor, "d_model d_head"]
    W_O: Float[torch.Tensor, "d_head d_model"]
    b_Q: Float[torch.Tensor, "d_head"]

    @classmethod
    def zeros(cls, d_model: int, d_head: int) -> "HeadWeights":
        z = lambda *shape: torch.zeros(*shape, dtype=torch.float64)  # noqa: E731
        return cls(z(d_model, d_head), z(d_model, d_head), z(d_model, d_head), z(d_head, d_model), z(d_head))


def copy_into(rows: slice, cols: slice, size: int, d_in: int, d_out: int, scale: float = 1.0) -> torch.Tensor:
    """A ``[d_in, d_out]`` matrix that copies ``size`` dimensions from ``rows`` to ``cols`` (times ``scale``)."""
    matrix = torch.zeros(d_in, d_out, dtype=torch.float64)
    matrix[rows, cols] = scale * torch.eye(size, dtype=torch.float64)
    return matrix


def previous_token_head(layout: Layout, d_head: int, n_ctx: int) -> HeadWeights:
    """Attends from p to p - 1 by position alone; writes the attended token's ``tok`` into ``prev``."""
    head = HeadWeights.zeros(layout.d_model, d_head)
    n_pos = 2 * layout.n_frequencies
    scale = offset_scale(n_ctx, layout.n_frequencies, ATTENTION_GAP) * math.sqrt(d_head)
    head.W_Q[layout.pos, :n_pos] = scale * rotation_back(n_ctx, layout.n_frequencies, 1)
    head.W_K[layout.pos, :n_pos] = torch.eye(n_pos, dtype=torch.float64)
    head.W_V[layout.tok, : layout.token_dim] = torch.eye(layout.token_dim, dtype=torch.float64)
    head.W_O[: layout.token_dim, layout.prev] = torch.eye(layout.token_dim, dtype=torch.float64)
    return head


def induction_head(layout: Layout, d_head: int) -> HeadWeights:
    """Query: the current token (``tok``). Key: the previous token (``prev``, written by L0H0). So it
    attends to the position after an earlier occurrence of the current token, and copies that
    position's ``tok`` into ``out``."""
    head = HeadWeights.zeros(layout.d_model, d_head)
    m = layout.token_dim
    head.W_Q[layout.tok, :m] = INDUCTION_MATCH * math.sqrt(d_head) * torch.eye(m, dtype=torch.float64)
    head.W_K[layout.prev, :m] = torch.eye(m, dtype=torch.float64)
    head.W_V[layout.tok, :m] = torch.eye(m, dtype=torch.float64)
    head.W_O[:m, layout.out] = torch.eye(m, dtype=torch.float64)
    head.W_K[layout.first, m] = -1.0
    head.b_Q[m] = FIRST_POSITION_PENALTY * math.sqrt(d_head)
    return head


def self_attending_distractor(layout: Layout, d_head: int, n_ctx: int) -> HeadWeights:
    """Sharp attention to its own position (no head-role mask rewards that), reads ``tok``, writes nothing."""
    head = HeadWeights.zeros(layout.d_model, d_head)
    n_pos = 2 * layout.n_frequencies
    scale = offset_scale(n_ctx, layout.n_frequencies, ATTENTION_GAP) * math.sqrt(d_head)
    head.W_Q[layout.pos, :n_pos] = scale * torch.eye(n_pos, dtype=torch.float64)
    head.W_K[layout.pos, :n_pos] = torch.eye(n_pos, dtype=torch.float64)
    head.W_V[layout.tok, : layout.token_dim] = torch.eye(layout.token_dim, dtype=torch.float64)
    return head


def first_position_distractor(layout: Layout, d_head: int, n_ctx: int) -> HeadWeights:
    """Sharp attention to position 0 through a constant query (its bias), reads ``tok``, writes nothing."""
    head = HeadWeights.zeros(layout.d_model, d_head)
    n_pos = 2 * layout.n_frequencies
    scale = offset_scale(n_ctx, layout.n_frequencies, ATTENTION_GAP) * math.sqrt(d_head)
    head.b_Q[:n_pos] = scale * position_features(n_ctx, layout.n_frequencies)[0]
    head.W_K[layout.pos, :n_pos] = torch.eye(n_pos, dtype=torch.float64)
    head.W_V[layout.tok, : layout.token_dim] = torch.eye(layout.token_dim, dtype=torch.float64)
    return head


def random_reader(layout: Layout, d_head: int, generator: torch.Generator) -> HeadWeights:
    """Random small W_Q, W_K, W_V (diffuse attention over everything) and W_O = 0: reads, writes nothing."""
    head = HeadWeights.zeros(layout.d_model, d_head)
    for matrix in (head.W_Q, head.W_K, head.W_V):
        matrix.copy_(RANDOM_QK_STD * torch.randn(matrix.shape, generator=generator, dtype=torch.float64))
    return head


def attention_state(heads: list[HeadWeights], d_model: int, d_head: int, layer: int) -> dict[str, torch.Tensor]:
    """One layer's heads as the native model's fused ``q/k/v/o`` Linear weights (``[out, in]``)."""
    prefix = f"blocks.{layer}.attn"
    n = len(heads)
    state = {f"{prefix}.{name}.bias": torch.zeros(n * d_head if name != "o" else d_model) for name in "qkvo"}
    for name, attribute in (("q", "W_Q"), ("k", "W_K"), ("v", "W_V")):
        state[f"{prefix}.{name}.weight"] = torch.cat([getattr(h, attribute).T for h in heads], dim=0).float()
    state[f"{prefix}.q.bias"] = torch.cat([h.b_Q for h in heads]).float()
    state[f"{prefix}.o.weight"] = torch.cat([h.W_O.T for h in heads], dim=1).float()
    return state


def induction_architecture(variant: Variant) -> tuple[dict[str, Any], Layout]:
    """The TransformerBridgeConfig fields and residual layout of ``induction_2l``'s variants:
    ``narrow`` has ``n_heads * d_head`` (256) != ``d_model`` (189); ``square`` pads ``d_model`` to 256."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    layout = Layout(TOKEN_DIM, N_FREQUENCIES)
    if variant == "square":
        layout = Layout(TOKEN_DIM, N_FREQUENCIES, spare=N_HEADS * D_HEAD - layout.d_model)
    architecture = dict(
        d_model=layout.d_model,
        d_head=D_HEAD,
        n_heads=N_HEADS,
        n_layers=2,
        n_ctx=N_CTX,
        d_vocab=D_VOCAB,
        attn_only=True,
        normalization_type=None,
        positional_embedding_type="standard",
        original_architecture=f"handbuilt-induction-2l-{variant}",
    )
    return architecture, layout


def induction_state(layout: Layout, seed: int) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every weight of ``induction_2l`` and, for each unused head, how it is silenced."""
    generator = torch.Generator().manual_seed(seed)
    d_model = layout.d_model
    tokens = token_vectors(D_VOCAB, TOKEN_DIM, generator)
    embed = torch.zeros(D_VOCAB, d_model)
    embed[:, layout.tok] = tokens
    pos_embed = torch.zeros(N_CTX, d_model)
    pos_embed[:, layout.pos] = position_features(N_CTX, N_FREQUENCIES).float()
    pos_embed[0, layout.first] = 1.0
    unembed = torch.zeros(D_VOCAB, d_model)
    unembed[:, layout.out] = UNEMBED_SCALE * tokens
    zero = HeadWeights.zeros(d_model, D_HEAD)
    layers = [
        [previous_token_head(layout, D_HEAD, N_CTX), self_attending_distractor(layout, D_HEAD, N_CTX), zero, random_reader(layout, D_HEAD, generator)],
        [zero, induction_head(layout, D_HEAD), first_position_distractor(layout, D_HEAD, N_CTX), random_reader(layout, D_HEAD, generator)],
    ]
    silenced = {
        "L0H1": "W_O = 0; sharp attention to its own position",
        "L0H2": "W_Q = W_K = W_V = W_O = 0",
        "L0H3": "W_O = 0; random W_Q, W_K, W_V",
        "L1H0": "W_Q = W_K = W_V = W_O = 0",
        "L1H2": "W_O = 0; sharp attention to position 0 (query bias)",
        "L1H3": "W_O = 0; random W_Q, W_K, W_V",
    }
    state = {"embed.weight": embed, "pos_embed.weight": pos_embed, "unembed.weight": unembed, "unembed.bias": torch.zeros(D_VOCAB)}
    for layer, heads in enumerate(layers):
        state.update(attention_state(heads, d_model, D_HEAD, layer))
    return state, silenced


def build_induction_2l(folder: str | Path, *, variant: Variant = "narrow", seed: int = 0) -> KnownCircuit:
    """Write the hand-built induction model to ``folder`` (a ``native:`` checkpoint) and return its
    answer key. Deterministic for a given ``variant`` and ``seed`` (the token vectors and the random
    readers' weights)."""
    from interp_checks.models.native import boot_random, save_native

    architecture, layout = induction_architecture(variant)
    bridge = boot_random(architecture, seed=seed)
    state, silenced = induction_state(layout, seed)
    bridge.load_state_dict(state, strict=True)
    folder = Path(folder)
    all_heads = [head_label(layer, head) for layer in range(2) for head in range(N_HEADS)]
    used = ("L0H0", "L1H1")
    circuit = KnownCircuit(
        name=f"induction_2l/{variant}",
        spec=f"native:{folder}",
        used_heads=used,
        unused_heads=tuple(h for h in all_heads if h not in used),
        roles={"L0H0": "previous_token_head", "L1H1": "induction_head"},
        composition=(("L0H0", "L1H1", "k"),),
        silenced=silenced,
        metric="per-sequence mean loss (nats) on the repeated half of repeated random tokens, every repeated token but the first",
        inputs={"kind": "repeated_random_tokens", "seq_len": 32, "n": 64},
        architecture=architecture,
    )
    meta = {"description": __doc__.split("\n\n")[0], "builder": "interp_checks.zoo.handbuilt.build_induction_2l", "variant": variant, "seed": seed, "known_circuit": circuit.to_dict()}
    save_native(bridge, folder, meta=meta)
    return circuit


# -- token neurons ---------------------------------------------------------------------------------
#
# ``token_neurons_1l`` -- a 1-layer model whose MLP neuron i fires exactly on a chosen set of token
# strings: the answer key for neuron claims ("L0N0 mimics \d", "L0N0 fires on every digit").
#
# The residual stream at a position is its token's embedding and nothing else: rotary positions
# add nothing to the residual, and the attention writes nothing (W_O = 0, b_O = 0). Every embedding
# has mean 0 over d_model and norm sqrt(d_model), so the layer norm before the MLP (weight 1, bias
# 0) only divides it by sqrt(1 + eps). The zero-mean subspace is cut by an orthonormal basis into
# one direction u_i per neuron and a rest: a token of neuron i's set has component 1 along u_i (a
# token of several sets, 1 along each), a token of none has no component along any u_j, and the
# rest of its norm is a random vector in the rest. W_in[:, i] = PRE_ACTIVATION * u_i and b_in = 0,
# so neuron i's pre-activation is PRE_ACTIVATION / sqrt(1 + eps) on its tokens and exactly 0 on
# every other token, in any context.

PRE_ACTIVATION = 4.0  # a neuron's pre-activation on its tokens (0 on every other token)
TOKEN_NEURONS_D_MODEL = 64
TOKEN_NEURONS_N_CTX = 128
TOKEN_NEURONS_N_HEADS = 4
TOKEN_NEURON_ACTIVATIONS = ("solu_ln", "gelu")
# Where a neuron is read: for SoLU before its extra layer norm (as the SoLU paper and Neuroscope read
# neurons, and as ``checks.neurons`` reads them by default); for GELU the MLP's activation.
TOKEN_NEURON_HOOKS = {"solu_ln": "blocks.0.mlp.ln.hook_in", "gelu": "blocks.0.mlp.hook_post"}


@dataclass(frozen=True)
class KnownNeurons:
    """The answer key of :func:`build_token_neurons`: which token strings each neuron fires on.

    ``fires_on[i]``: the token strings (as the tokenizer decodes them) on which neuron ``L0N{i}``
    fires, in any context; ``token_ids[i]`` their ids. ``exceptions[i]``: token strings left out of
    neuron i's set on purpose (a claim whose regex matches them is false, with the exception as its
    minimal counterexample). ``hook``: where the neurons are read. ``pre_activation``: a neuron's
    pre-activation on its tokens (0 on every other token); ``threshold``: halfway between 0 (what
    every neuron reads off its tokens) and the smallest activation of a neuron on one of its tokens.
    """

    name: str
    spec: str
    act_fn: str
    d_mlp: int
    hook: str
    fires_on: dict[int, tuple[str, ...]]
    token_ids: dict[int, tuple[int, ...]]
    exceptions: dict[int, tuple[str, ...]]
    pre_activation: float
    threshold: float
    eps: float
    architecture: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as written into the checkpoint's ``meta["known_neurons"]`` (neuron keys as strings)."""
        data = asdict(self)
        for key in ("fires_on", "token_ids", "exceptions"):
            data[key] = {str(i): list(v) for i, v in data[key].items()}
        return data

    def membership(self, d_vocab: int) -> np.ndarray:
        """[d_vocab, d_mlp] bool: whether each token is in each neuron's set."""
        member = np.zeros((d_vocab, self.d_mlp), dtype=bool)
        for neuron, ids in self.token_ids.items():
            member[list(ids), neuron] = True
        return member

    def expected(self, token_ids: Any) -> np.ndarray:
        """[..., d_mlp] the activations at ``hook`` that the construction implies for these tokens,
        whatever their context (float64): SoLU's x * softmax(x) over the layer's neurons before its
        layer norm, or GELU (the exact, erf form) of the pre-activation."""
        from scipy.special import erf, softmax

        ids = np.asarray(token_ids, dtype=np.int64)
        pre = self.membership(int(self.architecture["d_vocab"]))[ids] * (self.pre_activation / math.sqrt(1.0 + self.eps))
        if self.act_fn == "solu_ln":
            return pre * softmax(pre, axis=-1)
        return 0.5 * pre * (1.0 + erf(pre / math.sqrt(2.0)))


def zoo_token_strings() -> list[str]:
    """Every id of the zoo tokenizer (fixtures/zoo/tokenizer.json) decoded on its own ("" for
    special tokens): the strings :func:`build_token_neurons` names tokens by."""
    from interp_checks.inputs.streams import token_strings
    from interp_checks.models.native import load_tokenizer
    from interp_checks.zoo import zoo_tokenizer_path

    return [str(s) for s in token_strings(load_tokenizer(zoo_tokenizer_path()))]


def token_strings_matching(pattern: str) -> tuple[str, ...]:
    """The zoo tokenizer's token strings in which ``pattern`` finds a match (``re.search``), each once.

    For a one-character pattern such as ``\\d`` these are exactly the tokens that overlap a match of
    the pattern in any text (the ``where: {regex}`` rule), so a neuron built on them fires on every
    match of the pattern and on no other token.
    """
    import re

    compiled = re.compile(pattern)
    return tuple(dict.fromkeys(s for s in zoo_token_strings() if s and compiled.search(s)))


def _zero_mean_basis(d_model: int, generator: torch.Generator) -> torch.Tensor:
    """[d_model, d_model - 1] orthonormal columns spanning the vectors of mean 0 (what layer norm keeps)."""
    random = torch.randn(d_model, d_model - 1, generator=generator, dtype=torch.float64)
    random -= random.mean(dim=0, keepdim=True)
    basis, _ = torch.linalg.qr(random)
    return basis


def token_neuron_embeddings(member: np.ndarray, d_model: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings [d_vocab, d_model], neuron directions [d_model, d_mlp]) for a membership matrix
    [d_vocab, d_mlp]: each embedding of mean 0 and norm sqrt(d_model), component 1 along the
    direction of each neuron whose set holds the token, none along the others."""
    member_t = torch.as_tensor(member, dtype=torch.float64)
    d_vocab, d_mlp = member_t.shape
    if d_model - 1 - d_mlp < 1:
        raise ValueError(f"d_model {d_model} leaves no room for {d_mlp} neuron directions and a token identity")
    basis = _zero_mean_basis(d_model, generator)
    directions, rest = basis[:, :d_mlp], basis[:, d_mlp:]
    memberships = member_t.sum(dim=1, keepdim=True)
    if float(memberships.max()) >= d_model:
        raise ValueError("a token belongs to too many neurons' sets for the embedding norm")
    identity = torch.randn(d_vocab, rest.shape[1], generator=generator, dtype=torch.float64)
    identity = identity / identity.norm(dim=1, keepdim=True) * torch.sqrt(d_model - memberships)
    embed = member_t @ directions.T + identity @ rest.T
    return embed, directions


def token_neurons_architecture(d_mlp: int, act_fn: str, d_vocab: int) -> dict[str, Any]:
    """The TransformerBridgeConfig fields of ``token_neurons_1l`` (d_model grows with d_mlp)."""
    if act_fn not in TOKEN_NEURON_ACTIVATIONS:
        raise ValueError(f"act_fn must be one of {', '.join(TOKEN_NEURON_ACTIVATIONS)}, got {act_fn!r}")
    d_model = max(TOKEN_NEURONS_D_MODEL, TOKEN_NEURONS_N_HEADS * math.ceil((d_mlp + 16) / TOKEN_NEURONS_N_HEADS))
    return dict(
        d_model=d_model,
        d_head=d_model // TOKEN_NEURONS_N_HEADS,
        n_heads=TOKEN_NEURONS_N_HEADS,
        n_layers=1,
        n_ctx=TOKEN_NEURONS_N_CTX,
        d_vocab=d_vocab,
        d_mlp=d_mlp,
        act_fn=act_fn,
        normalization_type="LN",
        positional_embedding_type="rotary",
        default_prepend_bos=True,
        original_architecture=f"handbuilt-token-neurons-1l-{act_fn}",
    )


def _token_sets(
    neurons: Mapping[int, Sequence[str]], exceptions: Mapping[int, Sequence[str]], strings: list[str], d_mlp: int
) -> tuple[dict[int, tuple[str, ...]], dict[int, tuple[int, ...]], dict[int, tuple[str, ...]]]:
    """(strings, ids, exceptions) per neuron, checked: known strings, neurons inside the layer, each
    exception one of the neuron's given strings (it is then left out of the set)."""
    ids_of: dict[str, list[int]] = {}
    for i, text in enumerate(strings):
        if text:
            ids_of.setdefault(text, []).append(i)
    fires_on, token_ids, left_out = {}, {}, {}
    for neuron, texts in neurons.items():
        if not isinstance(neuron, int) or not 0 <= neuron < d_mlp:
            raise ValueError(f"neuron {neuron!r} is outside the layer of {d_mlp} neurons")
        if isinstance(texts, str):
            raise ValueError(f"neuron {neuron}: give a sequence of token strings, not the string {texts!r}")
        unknown = [t for t in texts if t not in ids_of]
        if unknown:
            raise ValueError(f"neuron {neuron}: {unknown[:5]!r} are not token strings of the tokenizer")
        out = tuple(dict.fromkeys(exceptions.get(neuron, ())))
        missing = [t for t in out if t not in texts]
        if missing:
            raise ValueError(f"neuron {neuron}: exception(s) {missing!r} are not among its token strings")
        kept = tuple(t for t in dict.fromkeys(texts) if t not in out)
        fires_on[neuron] = kept
        token_ids[neuron] = tuple(sorted(i for t in kept for i in ids_of[t]))
        left_out[neuron] = out
    extra = sorted(set(exceptions) - set(neurons))
    if extra:
        raise ValueError(f"exceptions name neuron(s) {extra} that have no token set")
    return fires_on, token_ids, left_out


def build_token_neurons(
    folder: str | Path,
    neurons: Mapping[int, Sequence[str]],
    *,
    d_mlp: int = 16,
    act_fn: str = "solu_ln",
    seed: int = 0,
    exceptions: Mapping[int, Sequence[str]] | None = None,
) -> KnownNeurons:
    """Write ``token_neurons_1l`` to ``folder`` (a ``native:`` checkpoint with the zoo tokenizer) and
    return its answer key: neuron i (``L0N{i}``) fires on the token strings ``neurons[i]`` and on no
    other token, in any context (see the section comment above). ``exceptions[i]``: strings of
    ``neurons[i]`` to leave out of the set, e.g. ``{0: ["7"]}`` with ``neurons[0]`` every token
    holding a digit: "L0N0 fires on every match of \\d" is then false, and ``7`` is its minimal
    counterexample. Neurons not named fire on nothing. Deterministic for a given ``seed``."""
    from interp_checks.models.native import boot_random, save_native
    from interp_checks.zoo import zoo_tokenizer_path

    strings = zoo_token_strings()
    architecture = token_neurons_architecture(d_mlp, act_fn, len(strings))
    fires_on, token_ids, left_out = _token_sets(neurons, exceptions or {}, strings, d_mlp)
    bridge = boot_random(architecture, seed=seed)
    eps = float(bridge.cfg.eps)
    key = KnownNeurons(
        name=f"token_neurons_1l/{act_fn}", spec=f"native:{Path(folder)}", act_fn=act_fn, d_mlp=d_mlp,
        hook=TOKEN_NEURON_HOOKS[act_fn], fires_on=fires_on, token_ids=token_ids, exceptions=left_out,
        pre_activation=PRE_ACTIVATION, threshold=0.0, eps=eps, architecture=architecture,
    )
    member = key.membership(len(strings))
    firing = key.expected(np.arange(len(strings)))[member] if member.any() else np.zeros(1)
    key = replace(key, threshold=0.5 * float(firing.min()))
    generator = torch.Generator().manual_seed(seed)
    embed, directions = token_neuron_embeddings(member, architecture["d_model"], generator)
    state = {name: tensor.clone() for name, tensor in bridge.state_dict().items()}
    d_model = architecture["d_model"]
    state.update({
        "embed.weight": embed.float(),
        "blocks.0.attn.o.weight": torch.zeros(d_model, d_model),  # the attention writes nothing
        "blocks.0.attn.o.bias": torch.zeros(d_model),
        "blocks.0.ln2.weight": torch.ones(d_model),
        "blocks.0.ln2.bias": torch.zeros(d_model),
        "blocks.0.mlp.in.weight": (PRE_ACTIVATION * directions.T).float(),
        "blocks.0.mlp.in.bias": torch.zeros(d_mlp),
    })
    bridge.load_state_dict(state, strict=True)
    meta = {
        "description": "a 1-layer model whose MLP neuron i fires exactly on a chosen set of token strings",
        "builder": "interp_checks.zoo.handbuilt.build_token_neurons", "seed": seed, "known_neurons": key.to_dict(),
    }
    save_native(bridge, folder, tokenizer_json=zoo_tokenizer_path(), meta=meta)
    return key
