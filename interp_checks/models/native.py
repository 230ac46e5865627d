"""The project's own checkpoint format: a folder with ``config.json`` + ``model.safetensors``.

Why a format of our own: TransformerLens's native models have no HuggingFace config class, so a
checkpoint needs the ``TransformerBridgeConfig`` fields that rebuild the architecture, the weights,
and (optionally) the tokenizer. Weights are safetensors, so loading never executes code.

Layout::

    my-model/
      config.json        {"format": "interp-checks-native/1", "architecture": {...bridge config...},
                          "tokenizer": "tokenizer.json" | null, "meta": {...free-form...}}
      model.safetensors  the bridge's state_dict (TransformerLens parameter names)
      tokenizer.json     optional, a `tokenizers` file
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FORMAT = "interp-checks-native/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

# The TransformerBridgeConfig fields every native checkpoint records, default or not: the shape of the
# model at a glance, and all that checkpoints written before generic recording hold. Every other
# constructor field is recorded when its value differs from TransformerLens's default (see
# :func:`architecture_of`), so a field TransformerLens adds later is kept, not silently dropped.
ARCHITECTURE_FIELDS = (
    "d_model",
    "d_head",
    "n_layers",
    "n_ctx",
    "n_heads",
    "d_mlp",
    "d_vocab",
    "attn_only",
    "act_fn",
    "normalization_type",
    "positional_embedding_type",
    "eps",
    "default_prepend_bos",
)

# Constructor fields a checkpoint never records: where and how a model is run or was initialised,
# or what ``boot_native`` sets itself. None of them changes what the loaded weights compute.
NOT_RECORDED = {
    "device": "chosen when loading (--interp-device)",
    "dtype": "the weights load as float32, the dtype boot_native builds",
    "seed": "seeds the random init only, which the stored weights replace (twins take their own seed)",
    "architecture": "boot_native sets it to TransformerLensNative",
    "model_name": "boot_native sets it",
    "n_params": "derived from the shapes",
}


class NativeFormatError(ValueError):
    """A native checkpoint folder is missing a file, has a config or weights we cannot read, or a
    bridge has a config we cannot write."""


def config_fields() -> tuple[str, ...]:
    """The names ``TransformerBridgeConfig(...)`` accepts: its own parameters and its dataclass parent's.

    Only constructor fields can be recorded, because loading rebuilds the config by calling it."""
    import dataclasses
    import inspect

    from transformer_lens.config import TransformerBridgeConfig

    names = [
        name
        for name, parameter in inspect.signature(TransformerBridgeConfig).parameters.items()
        if parameter.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    ]
    names += [field.name for field in dataclasses.fields(TransformerBridgeConfig) if field.init and field.name not in names]
    return tuple(names)


def _json_value(value: Any) -> Any:
    """``value`` as plain JSON data (numpy scalars and tuples unwrapped), or raise TypeError."""
    if type(value).__module__ == "numpy":  # e.g. initializer_range, which TransformerLens computes with numpy
        value = value.item()
    if isinstance(value, tuple):
        value = list(value)
    json.dumps(value, allow_nan=False)
    return value


def architecture_of(bridge: Any) -> dict[str, Any]:
    """The config fields that rebuild ``bridge``'s architecture, as JSON-ready values.

    :data:`ARCHITECTURE_FIELDS` always, then every other constructor field whose value differs from
    the default of a config of the same size (defaults such as ``initializer_range`` and ``d_mlp``
    depend on ``d_model``), except :data:`NOT_RECORDED`. Generic rather than a hand-kept list: a
    hand-kept list is how ``attention_dir`` and ``d_vocab_out`` were lost. A field that differs but cannot be
    written as JSON is refused here, at save time, rather than lost at load time.
    """
    from transformer_lens.config import TransformerBridgeConfig

    cfg = bridge.cfg
    size = {name: getattr(cfg, name) for name in ("d_model", "d_head", "n_layers", "n_ctx", "n_heads")}
    default = TransformerBridgeConfig(**size)
    recorded: dict[str, Any] = {}
    for name in ARCHITECTURE_FIELDS + config_fields():
        if name in recorded or name in NOT_RECORDED or not hasattr(cfg, name):
            continue
        value = getattr(cfg, name)
        if name not in ARCHITECTURE_FIELDS and value == getattr(default, name, None):
            continue
        try:
            recorded[name] = _json_value(value)
        except (TypeError, ValueError) as error:
            raise NativeFormatError(
                f"cannot save the config field {name}={value!r} as JSON ({error}); a native checkpoint "
                f"records every TransformerBridgeConfig field that differs from its default"
            ) from None
    return recorded


def save_native(
    bridge: Any,
    folder: str | Path,
    *,
    tokenizer_json: str | Path | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``bridge`` (a TransformerBridge booted with ``boot_native``) as a native checkpoint."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in bridge.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    tokenizer_name = None
    if tokenizer_json is not None:
        tokenizer_name = "tokenizer.json"
        source = Path(tokenizer_json)
        if source.resolve() != (folder / tokenizer_name).resolve():
            (folder / tokenizer_name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    write_config(folder, architecture_of(bridge), tokenizer_name, meta)
    return folder


def write_config(folder: Path, architecture: dict[str, Any], tokenizer_name: str | None, meta: dict[str, Any] | None) -> None:
    """Write ``folder/config.json``: the one writer of the format's config, for bridges and toys alike."""
    config = {"format": FORMAT, "architecture": architecture, "tokenizer": tokenizer_name, "meta": meta or {}}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_native_config(folder: str | Path) -> dict[str, Any]:
    """Read and validate ``config.json`` of a native checkpoint, with errors that say what to fix."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NativeFormatError(f"native checkpoint folder not found: {folder}")
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise NativeFormatError(f"{config_path} is missing: a native checkpoint needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise NativeFormatError(f"{config_path} is not valid JSON: {error}") from error
    if not isinstance(config, dict):
        raise NativeFormatError(f"{config_path}: expected a JSON object with \"format\": \"{FORMAT}\"")
    if config.get("format") != FORMAT:
        raise NativeFormatError(f"{config_path}: expected \"format\": \"{FORMAT}\", found {config.get('format')!r}")
    if not isinstance(config.get("architecture"), dict):
        raise NativeFormatError(f"{config_path}: \"architecture\" must be an object of TransformerBridgeConfig fields")
    if not (folder / WEIGHTS_FILE).is_file():
        raise NativeFormatError(f"{folder / WEIGHTS_FILE} is missing")
    return config


def bridge_config(architecture: dict[str, Any], *, seed: int = 0) -> Any:
    """A ``TransformerBridgeConfig`` for a native architecture (``seed`` sets the random init)."""
    from transformer_lens.config import TransformerBridgeConfig

    return TransformerBridgeConfig(**architecture, seed=seed)


def boot_random(architecture: dict[str, Any], *, seed: int = 0, device: str | None = None, tokenizer: Any = None) -> Any:
    """A native bridge with freshly initialised (random) weights, in eval mode."""
    import transformer_lens.model_bridge.sources.native  # noqa: F401  (attaches boot_native)
    from transformer_lens.model_bridge import TransformerBridge

    bridge = TransformerBridge.boot_native(bridge_config(architecture, seed=seed), tokenizer=tokenizer, device=device)
    return bridge.eval()


def file_inside(folder: Path, name: Any, *, named_by: Path, key: str) -> Path:
    """The file ``name`` (as written in ``named_by``, under ``key``) of checkpoint ``folder``, which must
    stay inside the folder: a relative path, no ``..`` out of it, not a symlink to a file outside.

    A checkpoint is data from wherever it came from; a config that names ``../../etc/passwd`` or
    ``/home/me/.ssh/id_rsa`` must not make the loader read (and echo parts of) that file.
    """
    if not isinstance(name, str) or not name.strip():
        raise NativeFormatError(f"{named_by}: \"{key}\" must be a file name inside {folder} (e.g. \"tokenizer.json\"), got {name!r}")
    fix = f"put the file in {folder} and name it relative to it (e.g. \"tokenizer.json\")"
    if Path(name).is_absolute() or "\0" in name:
        raise NativeFormatError(f"{named_by}: \"{key}\" is {name!r}, an absolute path; refused: {fix}")
    root = folder.resolve()
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        how = "a symlink out of the checkpoint folder" if ".." not in Path(name).parts else "a path leading out of the checkpoint folder"
        raise NativeFormatError(f"{named_by}: \"{key}\" is {name!r}, {how} (resolves to {target}); refused: {fix}")
    return target


def load_tokenizer(path: str | Path) -> Any:
    """A transformers fast tokenizer from a ``tokenizers`` JSON file (no network).

    The one loader of tokenizer files: models, the miner, the tests and the zoo all use it. The
    special-token roles are set explicitly (and ``name_or_path``, which TransformerLens reads when it
    re-wraps a tokenizer with a BOS token), so every loader of the same file agrees on them. Code
    that needs the raw ``tokenizers.Tokenizer`` (``encode_batch``, training) takes
    ``.backend_tokenizer``; :func:`interp_checks.inputs.corpora.iter_token_batches` takes either.
    """
    from transformers import PreTrainedTokenizerFast

    probe = PreTrainedTokenizerFast(tokenizer_file=str(path))
    vocab = probe.get_vocab()
    roles: dict[str, str] = {}
    for role, name in (("bos_token", "<|bos|>"), ("eos_token", "<|eos|>"), ("pad_token", "<|pad|>")):
        if name in vocab:
            roles[role] = name
    if not roles and "<|endoftext|>" in vocab:
        roles = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    return PreTrainedTokenizerFast(
        tokenizer_file=str(path), name_or_path=str(path), add_bos_token="bos_token" in roles, **roles
    )


def load_native(folder: str | Path, *, device: str | None = None, tokenizer: Any = None) -> Any:
    """Load a native checkpoint as a TransformerBridge in eval mode. Never executes stored code.

    ``tokenizer``: used when the checkpoint names none of its own (the checkpoints of a series share
    one tokenizer file, ``models.series``)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_native_config(folder)
    if config.get("tokenizer"):
        tokenizer_path = file_inside(folder, config["tokenizer"], named_by=folder / CONFIG_FILE, key="tokenizer")
        if not tokenizer_path.is_file():
            raise NativeFormatError(f"{folder / CONFIG_FILE} names tokenizer {config['tokenizer']!r}, which is missing")
        try:
            tokenizer = load_tokenizer(tokenizer_path)
        except Exception as error:  # tokenizers' parser raises a bare Exception on malformed JSON
            raise NativeFormatError(
                f"{tokenizer_path} (named by {folder / CONFIG_FILE}) is not a tokenizers JSON file ({error}); "
                "write it with tokenizer.save(path) or set \"tokenizer\": null"
            ) from None
    try:
        bridge = boot_random(config["architecture"], seed=0, device=device, tokenizer=tokenizer)
    except (TypeError, ValueError, AssertionError) as error:
        raise NativeFormatError(
            f"{folder / CONFIG_FILE}: \"architecture\" does not describe a model TransformerLens can build "
            f"({error}); its keys are TransformerBridgeConfig arguments such as {', '.join(ARCHITECTURE_FIELDS)}"
        ) from error
    state = load_file(str(folder / WEIGHTS_FILE), device=str(device or "cpu"))
    check_weights_fit(bridge, state, folder)
    bridge.load_state_dict(state, strict=True)
    return bridge.eval()


def weight_mismatches(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]) -> list[str]:
    """What keeps ``found`` (tensor name -> shape) from loading into a model that needs ``expected``,
    one line per problem: wrong shapes first, then missing and unexpected tensors."""
    lines = [
        f"{name} has shape {list(found[name])}, the config needs {list(expected[name])}"
        for name in sorted(expected.keys() & found.keys())
        if tuple(found[name]) != tuple(expected[name])
    ]
    lines += [f"{name} {list(expected[name])} is missing" for name in sorted(expected.keys() - found.keys())]
    lines += [f"{name} {list(found[name])} is not part of this architecture" for name in sorted(found.keys() - expected.keys())]
    return lines


def check_weights_fit(bridge: Any, state: dict[str, Any], folder: Path, *, shown: int = 8) -> None:
    """Raise :class:`NativeFormatError` naming every tensor of ``state`` that does not fit ``bridge``.

    Why not let ``load_state_dict`` say it: its ``RuntimeError`` names neither the file nor the fix,
    and with ``strict=False`` it would load a model with some tensors left at their random init.
    """
    expected = {name: tuple(tensor.shape) for name, tensor in bridge.state_dict().items()}
    found = {name: tuple(tensor.shape) for name, tensor in state.items()}
    problems = weight_mismatches(expected, found)
    if not problems:
        return
    more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
    raise NativeFormatError(
        f"{folder / WEIGHTS_FILE} does not fit the architecture in {folder / CONFIG_FILE} "
        f"({len(problems)} problem(s)): {'; '.join(problems[:shown])}{more}. Fix: the weights and the config come "
        f"from different models; save both at once with interp_checks.models.native.save_native(bridge, folder), "
        f"or correct \"architecture\" in {CONFIG_FILE} (d_model, n_heads, d_head, d_mlp, d_vocab, d_vocab_out, "
        f"attn_only, normalization_type, positional_embedding_type) to the model the weights came from"
    )
