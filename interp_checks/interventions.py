"""Interventions as data: what a check asks the engine to change in a run, and what to read from it.

A check never runs a model. When a claim is about what happens if part of the model is removed or
replaced (ablation, patching, faithfulness), its ``prepare`` declares :class:`Intervention` objects
in ``Needs.interventions``; the engine runs them on the claim's inputs (sharing the clean run,
resuming from its cached residual stream at the first changed layer, batching interventions) and
hands the check one :data:`Reading` per intervention and sequence, under ``intervention.key``.

Vocabulary (TransformerLens's, so a hook name means the same here as in a notebook):

* a :class:`Site` is one component of the model: a head's output (``hook_z``, the head's slice,
  before ``W_O``), a head's query, key or value (``hook_q``/``hook_k``/``hook_v``), an MLP's output
  (``hook_mlp_out``), one MLP neuron (its column of ``hook_post``, the activation ``W_out`` reads)
  or the residual stream entering a block (``hook_resid_pre``), optionally only at some positions;
* a **method** says what the site's activation is replaced with:

  - ``zero``: zeros;
  - ``mean``: its mean over the claim's inputs (every sequence, position by position; one extra
    clean pass over the inputs computes it before any ablation);
  - ``resample``: its value on another sequence of the same chunk of inputs (a seeded derangement,
    so no sequence keeps its own value);
  - ``patch``: its value on the paired corrupted input (``InputBatch.corrupted``, same shape): with
    a clean batch this is *noising* (corrupted into clean: is the component necessary?); the
    reverse, *denoising* (clean into corrupted: is it sufficient?), is ``direction: denoise``;

* a **path** says where the change may go: ``total`` (the change flows through every later layer:
  the total effect) or ``direct`` (only straight to the logits, through the final layer norm with
  its scale frozen at the clean run's: the direct effect; what later components would do about the
  change, such as self-repair, is left out);
* a **metric** is what is read from the changed run, one number per position, aligned with the
  tokens (value ``[:, p]`` is about the prediction of token ``p``; position 0 is NaN):

  - ``logprob``: log-probability of the clean input's next token (``logit - logsumexp``; nothing
    of size [n, pos, vocab] is kept), whichever input the run was on;
  - ``logit_diff``: logit of the clean next token minus logit of the corrupted input's next token
    (a continuous metric that, unlike a probability, shows components that push the wrong way);
    positions where the two are the same token are NaN.

The clean run's metric is read under :func:`clean_key` (the engine always gives it with any
intervention), so a check reports changes relative to the unchanged model.
"""

from __future__ import annotations

import re

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DIRECTIONS",
    "METHODS",
    "METRICS",
    "PATHS",
    "SITE_KINDS",
    "Intervention",
    "Site",
    "SiteNameError",
    "clean_key",
    "head_site",
]

SiteKind = Literal["head", "head_q", "head_k", "head_v", "mlp", "neuron", "resid"]
SITE_KINDS: tuple[str, ...] = ("head", "head_q", "head_k", "head_v", "mlp", "neuron", "resid")
METHODS: tuple[str, ...] = ("zero", "mean", "resample", "patch")
PATHS: tuple[str, ...] = ("total", "direct")
METRICS: tuple[str, ...] = ("logprob", "logit_diff")
DIRECTIONS: tuple[str, ...] = ("noise", "denoise")

_HOOKS = {
    "head": "blocks.{layer}.attn.hook_z",
    "head_q": "blocks.{layer}.attn.hook_q",
    "head_k": "blocks.{layer}.attn.hook_k",
    "head_v": "blocks.{layer}.attn.hook_v",
    "mlp": "blocks.{layer}.hook_mlp_out",
    "neuron": "blocks.{layer}.mlp.hook_post",
    "resid": "blocks.{layer}.hook_resid_pre",
}


_SITE_NAME = re.compile(r"^L(\d+)(?:H(\d+)(?:\.([qkv]))?|N(\d+)|\.(mlp|resid))$")
_FORMS = {
    "head": ("L<layer>H<head>", "L1H0"),
    "head_q": ("L<layer>H<head>.q", "L1H0.q"),
    "head_k": ("L<layer>H<head>.k", "L1H0.k"),
    "head_v": ("L<layer>H<head>.v", "L1H0.v"),
    "mlp": ("L<layer>.mlp", "L0.mlp"),
    "neuron": ("L<layer>N<neuron>", "L0N123"),
    "resid": ("L<layer>.resid", "L1.resid"),
}


class SiteNameError(ValueError):
    """A component name that is not of an accepted form, or names a component the model lacks."""


@dataclass(frozen=True, order=True)
class Site:
    """One component of the model. ``head`` is set for the head kinds only, ``neuron`` for the
    ``neuron`` kind only; ``positions`` limits the change to those positions (None: every position)."""

    kind: str
    layer: int
    head: int | None = None
    positions: tuple[int, ...] | None = None
    neuron: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in SITE_KINDS:
            raise ValueError(f"site kind {self.kind!r} is not one of {', '.join(SITE_KINDS)}")
        if self.kind.startswith("head") != (self.head is not None):
            raise ValueError(f"a {self.kind} site {'needs' if self.kind.startswith('head') else 'takes no'} head")
        if (self.kind == "neuron") != (self.neuron is not None):
            raise ValueError(f"a {self.kind} site {'needs' if self.kind == 'neuron' else 'takes no'} neuron")

    @property
    def hook(self) -> str:
        """The TransformerLens hook whose output the intervention changes."""
        return _HOOKS[self.kind].format(layer=self.layer)

    @property
    def name(self) -> str:
        """``L1H0``, ``L1H0.k``, ``L2.mlp``, ``L0N123``, ``L3.resid`` (``@3,4`` for some positions only)."""
        base = {
            "head": f"L{self.layer}H{self.head}",
            "head_q": f"L{self.layer}H{self.head}.q",
            "head_k": f"L{self.layer}H{self.head}.k",
            "head_v": f"L{self.layer}H{self.head}.v",
            "mlp": f"L{self.layer}.mlp",
            "neuron": f"L{self.layer}N{self.neuron}",
            "resid": f"L{self.layer}.resid",
        }[self.kind]
        return base if self.positions is None else f"{base}@{','.join(map(str, self.positions))}"

    @classmethod
    def parse(
        cls, text: Any, shape: Any, *, kinds: tuple[str, ...] = SITE_KINDS, what: str = "site", positions: tuple[int, ...] | None = None
    ) -> "Site":
        """The one reader of component names (the inverse of :attr:`name`, without positions):
        ``L1H0``, ``L1H0.k``, ``L0N123``, ``L2.mlp``, ``L3.resid``, restricted to ``kinds`` and checked
        against ``shape`` (``n_layers``, ``n_heads``, ``d_mlp``: a ``checks.base.ModelShape``). Raises
        SiteNameError naming ``what`` the claim called it, the forms accepted and the model's range."""
        match = _SITE_NAME.match(str(text).strip())
        layer, head, qkv, neuron, block = match.groups() if match else (None,) * 5
        kind = block or ("neuron" if neuron is not None else "head" if qkv is None else f"head_{qkv}")
        if match is None or kind not in kinds:
            forms = " or ".join(_FORMS[k][0] for k in kinds)
            raise SiteNameError(f"{what} {text!r} is not of the form {forms}, e.g. {_FORMS[kinds[0]][1]}")
        layer = int(layer)
        if kind == "neuron" and getattr(shape, "d_mlp", None) is None:
            raise SiteNameError(f"{what} {text} names an MLP neuron, but the model is attention-only (it has no MLP)")
        layers = f"{shape.n_layers} layer(s) (L0..L{shape.n_layers - 1})"
        if layer >= shape.n_layers:
            raise SiteNameError(f"{what} {text} is outside the model, which has {layers}")
        if head is not None and int(head) >= shape.n_heads:
            raise SiteNameError(f"{what} {text} is outside the model, which has {layers} and {shape.n_heads} heads per layer (H0..H{shape.n_heads - 1})")
        if neuron is not None and int(neuron) >= shape.d_mlp:
            raise SiteNameError(f"{what} {text} is outside the model, which has {layers} and {shape.d_mlp} neurons per MLP (N0..N{shape.d_mlp - 1})")
        return cls(kind, layer, None if head is None else int(head), positions, None if neuron is None else int(neuron))


def head_site(layer: int, head: int) -> Site:
    """A head's output (``hook_z``, its slice): what "ablate the head" changes."""
    return Site("head", layer, head)


@dataclass(frozen=True)
class Intervention:
    """One changed run: every site in ``sites`` is changed together by ``method`` along ``path``,
    and ``metric`` is read from the result. Equal interventions asked for by several claims run
    once. ``seed`` fixes the ``resample`` derangement."""

    sites: tuple[Site, ...]
    method: str
    metric: str = "logprob"
    path: str = "total"
    direction: str = "noise"
    seed: int = 0

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.method, METHODS, "method"),
            (self.metric, METRICS, "metric"),
            (self.path, PATHS, "path"),
            (self.direction, DIRECTIONS, "direction"),
        ):
            if value not in allowed:
                raise ValueError(f"intervention {what} {value!r} is not one of {', '.join(allowed)}")
        if not self.sites:
            raise ValueError("an intervention changes at least one site (an empty one is the clean run: clean_key)")
        if self.direction == "denoise" and self.method != "patch":
            raise ValueError("direction: denoise patches clean activations into the corrupted run; it needs method patch")
        if self.path == "direct" and any(site.kind not in ("head", "mlp") for site in self.sites):
            raise ValueError("a direct effect is defined for head and MLP outputs (what they write to the residual stream)")
        object.__setattr__(self, "sites", tuple(sorted(self.sites)))

    @property
    def first_layer(self) -> int:
        """The first block the change touches: layers below it are the clean run's, resumed from."""
        return min(site.layer for site in self.sites)

    @property
    def key(self) -> str:
        """Where the engine puts this intervention's reading in the check's activations."""
        sites = "+".join(site.name for site in self.sites)
        extra = "" if self.method != "resample" else f",seed={self.seed}"
        return f"intervention:{self.method}{extra}:{self.path}:{self.direction}:{self.metric}:{sites}"

    @property
    def needs_corrupted(self) -> bool:
        """Whether the run needs the paired corrupted input (patching, or a logit difference)."""
        return self.method == "patch" or self.metric == "logit_diff"


def clean_key(metric: str, *, corrupted: bool = False) -> str:
    """Where the engine puts the unchanged model's metric (on the corrupted input if ``corrupted``)."""
    return f"intervention:clean:{'corrupted' if corrupted else 'clean'}:{metric}"
