"""The toy model of superposition (Elhage et al. 2022, "ReLU output model"): x' = ReLU(W^T W x + b),
with ``W`` [d_hidden, n_features] and ``b`` [n_features]. Not a transformer, so not a TransformerBridge.

Why it lives beside the bridges: the training-dynamics claims (issue 14) read toy checkpoints through
the same model specs (``native:PATH``, ``series:PATH``) and the same weight path
(``runner.read_weights(model, {"W", "b"})``) as every other model. A toy checkpoint is a native
checkpoint (``config.json`` + ``model.safetensors``) whose ``architecture`` is
``{"family": "toy_superposition", "n_features": n, "d_hidden": m}``; ``models.load`` builds this
module for it instead of booting a bridge. Its ``cfg`` has the attributes the engine reads of every
model (``engine._shape_of``, ``load._describe``): no layers, heads, vocabulary or context, so a
transformer check's ``prepare`` refuses it with its own error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from jaxtyping import Float

FAMILY = "toy_superposition"
ARCHITECTURE_KEYS = ("family", "n_features", "d_hidden")


class ToyConfigError(ValueError):
    """A toy checkpoint's ``architecture`` or weights do not describe a toy model (the message says the fix)."""


@dataclass(frozen=True)
class ToyConfig:
    """The toy's shape, plus the transformer-shaped attributes the engine reads of every model's ``cfg``."""

    n_features: int
    d_hidden: int
    n_layers: int = 0
    n_heads: int = 0
    d_vocab: int = 0
    n_ctx: int = 0
    normalization_type: str | None = None
    attn_only: bool = True
    d_mlp: int | None = None
    act_fn: str | None = None

    def architecture(self) -> dict[str, Any]:
        """What a checkpoint's config.json records as ``architecture``."""
        return {"family": FAMILY, "n_features": self.n_features, "d_hidden": self.d_hidden}


class ToySuperposition(torch.nn.Module):
    """x' = ReLU(W^T W x + b): ``n_features`` sparse features through a ``d_hidden``-dimensional bottleneck."""

    def __init__(self, cfg: ToyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.W = torch.nn.Parameter(torch.zeros(cfg.d_hidden, cfg.n_features))
        self.b = torch.nn.Parameter(torch.zeros(cfg.n_features))
        self.tokenizer = None

    def hidden(self, x: Float[torch.Tensor, "... n_features"]) -> Float[torch.Tensor, "... d_hidden"]:
        """h = W x, each point's hidden vector (what data-point dimensionality is computed from)."""
        return x @ self.W.T

    def forward(self, x: Float[torch.Tensor, "... n_features"]) -> Float[torch.Tensor, "... n_features"]:
        return torch.relu(self.hidden(x) @ self.W + self.b)


def is_toy(architecture: Mapping[str, Any]) -> bool:
    """Whether a native checkpoint's ``architecture`` names the toy family (else it is a transformer's)."""
    return isinstance(architecture, Mapping) and "family" in architecture


def toy_config(architecture: Mapping[str, Any], config_path: Path | str) -> ToyConfig:
    """The :class:`ToyConfig` of an ``architecture`` read from ``config_path``, or an error naming the fix."""
    example = f'{{"family": "{FAMILY}", "n_features": 1000, "d_hidden": 2}}'
    if architecture.get("family") != FAMILY:
        raise ToyConfigError(
            f"{config_path}: \"architecture\" names the family {architecture.get('family')!r}; the only toy family is "
            f"{FAMILY!r} (write {example}), and a transformer's architecture has no \"family\" key"
        )
    unknown = sorted(set(architecture) - set(ARCHITECTURE_KEYS))
    if unknown:
        raise ToyConfigError(f"{config_path}: \"architecture\" has keys a {FAMILY} toy does not take: {', '.join(unknown)}; write {example}")
    sizes = {key: architecture.get(key) for key in ("n_features", "d_hidden")}
    bad = [key for key, value in sizes.items() if not isinstance(value, int) or isinstance(value, bool) or value < 1]
    if bad:
        raise ToyConfigError(
            f"{config_path}: \"architecture\" needs positive integers {' and '.join(bad)} "
            f"(got {', '.join(f'{k}={sizes[k]!r}' for k in bad)}); write {example}"
        )
    return ToyConfig(n_features=sizes["n_features"], d_hidden=sizes["d_hidden"])


def random_toy(cfg: ToyConfig, *, seed: int = 0, device: str | None = None) -> ToySuperposition:
    """A freshly initialised toy, in eval mode: W Xavier-normal (as Elhage et al.'s toy models), b zero.

    The one initialisation: the training recipe starts from it and the null of ``check:
    superposition`` is it ("a random-weights toy of the same shape"). Its own generator, so the
    caller's random stream is untouched and a draw depends only on ``seed``."""
    model = ToySuperposition(cfg)
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        torch.nn.init.xavier_normal_(model.W, generator=generator)
    return model.to(device or "cpu").eval()


def load_toy(folder: Path, architecture: Mapping[str, Any], *, device: str | None = None) -> ToySuperposition:
    """The toy of a native checkpoint ``folder`` (whose config.json gave ``architecture``), in eval mode."""
    from safetensors.torch import load_file

    from interp_checks.models.native import CONFIG_FILE, WEIGHTS_FILE, NativeFormatError, weight_mismatches

    cfg = toy_config(architecture, folder / CONFIG_FILE)
    model = ToySuperposition(cfg)
    state = load_file(str(folder / WEIGHTS_FILE), device="cpu")
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    problems = weight_mismatches(expected, {name: tuple(tensor.shape) for name, tensor in state.items()})
    if problems:
        raise NativeFormatError(
            f"{folder / WEIGHTS_FILE} does not fit the {FAMILY} architecture in {folder / CONFIG_FILE}: {'; '.join(problems)}. "
            f"Fix: W is [d_hidden, n_features] and b [n_features]; correct n_features/d_hidden in {CONFIG_FILE}, or save "
            f"both at once with interp_checks.models.toy.save_toy(model, folder)"
        )
    model.load_state_dict({name: tensor.float() for name, tensor in state.items()}, strict=True)
    return model.to(device or "cpu").eval()


def save_toy(model: ToySuperposition, folder: str | Path, *, meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` as a native toy checkpoint (float32; ``"tokenizer": null``)."""
    from safetensors.torch import save_file

    from interp_checks.models.native import WEIGHTS_FILE, write_config

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({name: tensor.detach().cpu().float().contiguous() for name, tensor in model.state_dict().items()}, str(folder / WEIGHTS_FILE))
    write_config(folder, model.cfg.architecture(), None, dict(meta or {}))
    return folder
