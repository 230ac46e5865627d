"""Load a :class:`ModelSpec` as a TransformerLens ``TransformerBridge`` (eval mode), and build its
"same architecture, random weights" twin.

Safety: nothing here downloads anything or executes code stored in a checkpoint. safetensors,
GGUF and our native format are plain data. A HuggingFace folder with only pickled weights
(``pytorch_model*.bin``) is scanned first, and refused with :class:`UnsafeCheckpointError` when the
pickle references anything beyond tensors and plain containers (the same allow-list as
``torch.load(weights_only=True)``, which transformers also uses). ``trust_remote_code`` is never set
and a ``config.json`` with an ``auto_map`` (custom modelling code) is refused.

HF folders are loaded with ``from_pretrained(local_files_only=True, output_loading_info=True)`` and
then wrapped with ``TransformerBridge.boot_transformers(path, hf_model=...)``; GGUF files with
``from_pretrained(folder, gguf_file=name)`` and ``build_bridge_from_module``. Either way a checkpoint
whose tensors do not cover the model (which transformers would fill with random init, and which
TransformerLens's silencing of the transformers logger would hide) is an error.

torch / transformers / transformer_lens are imported inside the functions, so importing this
module stays cheap.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from interp_checks.models.spec import ModelSpec, ModelSpecError

__all__ = [
    "LoadedModel",
    "UnsafeCheckpointError",
    "load_model",
    "load_random_twin",
    "resolve_device",
]

# Architectures whose GGUF files this project has loaded end to end (transformers' GGUF reader ->
# HF model -> TransformerLens adapter), checked against the same model loaded from safetensors.
GGUF_TESTED_ARCHITECTURES = ("gpt2",)


class UnsafeCheckpointError(ModelSpecError):
    """A checkpoint would execute code when loaded (a pickle with non-tensor globals)."""


@dataclass
class LoadedModel:
    """A loaded model and the facts about it that checks need."""

    bridge: Any
    spec: ModelSpec
    n_layers: int
    n_heads: int
    d_vocab: int
    n_ctx: int
    bos_token_id: int | None
    special_token_ids: frozenset[int]
    tokenizer: Any | None
    architecture: dict[str, Any]
    device: str
    is_random_twin: bool = False
    seed: int | None = None  # the random twin's seed
    meta: dict[str, Any] = field(default_factory=dict)  # a native checkpoint's free-form "meta"

    def __repr__(self) -> str:
        twin = f", random twin seed={self.seed}" if self.is_random_twin else ""
        return (
            f"LoadedModel({self.spec}, n_layers={self.n_layers}, n_heads={self.n_heads}, "
            f"d_vocab={self.d_vocab}, n_ctx={self.n_ctx}, device={self.device!r}{twin})"
        )


# --------------------------------------------------------------------------------------------
# devices


def resolve_device(requested: str | None) -> str:
    """``None``/``"auto"`` -> ``"cuda"`` when available else ``"cpu"``; validate explicit devices."""
    import torch

    text = (requested or "auto").strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return "cpu"
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ModelSpecError(
                f"device {requested!r} requested but CUDA is not available here "
                f"(torch {torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA); "
                f"use --interp-device cpu or auto"
            )
        if ":" in text:
            index_text = text.split(":", 1)[1]
            if not index_text.isdigit() or int(index_text) >= torch.cuda.device_count():
                raise ModelSpecError(
                    f"device {requested!r}: there are {torch.cuda.device_count()} CUDA device(s), "
                    f"use cuda:0..cuda:{torch.cuda.device_count() - 1}"
                )
        return text
    if text == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ModelSpecError("device 'mps' requested but MPS is not available here; use cpu or auto")
        return "mps"
    raise ModelSpecError(f"unknown device {requested!r}; use auto, cpu, cuda, cuda:N or mps")


# --------------------------------------------------------------------------------------------
# loading


def load_model(spec: ModelSpec, *, device: str | None = "cpu", tokenizer: Any = None) -> LoadedModel:
    """Load ``spec`` as a bridge in eval mode on ``device`` (``"auto"`` picks CUDA when present).

    ``tokenizer``: for a native checkpoint that names none of its own (a series' checkpoints share one).
    A ``series:`` spec loads as its first checkpoint, its runs in ``meta["series"]`` (``models.series``)."""
    device = resolve_device(device)
    if spec.kind in ("zoo", "native"):
        return _load_native(spec, device, tokenizer)
    if spec.kind == "series":
        from interp_checks.models.series import load_first

        return load_first(spec, device)
    if spec.kind == "hf":
        return _load_hf(spec, device)
    if spec.kind == "gguf":
        return _load_gguf(spec, device)
    raise ModelSpecError(f"{spec}: unknown spec kind {spec.kind!r}")  # pragma: no cover


def load_random_twin(loaded: LoadedModel, *, seed: int = 0) -> LoadedModel:
    """The same architecture with freshly initialised weights (the null "same architecture, random
    weights"), deterministic for a given ``seed``, sharing ``loaded``'s tokenizer."""
    import torch

    from interp_checks.models import toy

    source = loaded.architecture.get("source")
    if source == "native" and toy.is_toy(loaded.architecture["config"]):
        bridge = toy.random_toy(toy.toy_config(loaded.architecture["config"], loaded.spec.describe()), seed=seed, device=loaded.device)
    elif source == "native":
        from interp_checks.models import native

        bridge = native.boot_random(
            loaded.architecture["config"], seed=seed, device=loaded.device, tokenizer=loaded.tokenizer
        )
    elif source == "hf":
        from transformers import AutoModelForCausalLM

        hf_config = _hf_config_from_dict(loaded.architecture["hf_config"])
        # Everything inside fork_rng: bridge construction draws from the global RNG too, and the
        # caller's RNG stream must not depend on whether a twin was built.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(hf_config, attn_implementation="eager", dtype=torch.float32)
            model = model.to(loaded.device).eval()
            bridge = _bridge_from_hf_module(model, loaded.tokenizer, loaded.device, loaded.spec)
    else:
        raise ModelSpecError(f"{loaded.spec}: cannot build a random twin of architecture source {source!r}")
    twin = _describe(bridge.eval(), loaded.spec, loaded.tokenizer, loaded.architecture, loaded.device)
    return replace(twin, is_random_twin=True, seed=seed)


def _describe(bridge: Any, spec: ModelSpec, tokenizer: Any, architecture: dict[str, Any], device: str) -> LoadedModel:
    cfg = bridge.cfg
    d_vocab = int(cfg.d_vocab)
    bos = getattr(tokenizer, "bos_token_id", None) if tokenizer is not None else None
    return LoadedModel(
        bridge=bridge,
        spec=spec,
        n_layers=int(cfg.n_layers),
        n_heads=int(cfg.n_heads),
        d_vocab=d_vocab,
        n_ctx=int(cfg.n_ctx),
        bos_token_id=bos if isinstance(bos, int) else None,
        special_token_ids=_special_token_ids(tokenizer, architecture, d_vocab),
        tokenizer=tokenizer,
        architecture=architecture,
        device=device,
    )


def _special_token_ids(tokenizer: Any, architecture: dict[str, Any], d_vocab: int) -> frozenset[int]:
    ids: set[int] = set()
    if tokenizer is not None:
        for attr in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "sep_token_id", "cls_token_id", "mask_token_id"):
            try:
                value = getattr(tokenizer, attr, None)
            except Exception:  # some tokenizers raise for unset roles
                value = None
            if isinstance(value, int):
                ids.add(value)
        try:
            ids.update(int(i) for i in (tokenizer.all_special_ids or []))
        except Exception:
            pass
        for index, token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items():
            if getattr(token, "special", False):
                ids.add(int(index))
    hf_config = architecture.get("hf_config") or {}
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = hf_config.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, int):
                ids.add(item)
    return frozenset(i for i in ids if 0 <= i < d_vocab)


# --- native / zoo ----------------------------------------------------------------------------


def _load_native(spec: ModelSpec, device: str, tokenizer: Any = None) -> LoadedModel:
    from interp_checks.models import native, toy

    folder = spec.path
    if spec.kind == "zoo" and not (folder / native.CONFIG_FILE).is_file():
        raise ModelSpecError(
            f"{spec.describe()}: zoo checkpoint {folder} is missing (no {native.CONFIG_FILE}); "
            f"build the zoo or set INTERP_CHECKS_ZOO"
        )
    try:
        config = native.read_native_config(folder)
        if toy.is_toy(config["architecture"]):
            return _loaded_toy(spec, toy.load_toy(folder, config["architecture"], device=device), config, device)
        bridge = native.load_native(folder, device=device, tokenizer=tokenizer)
    except (native.NativeFormatError, toy.ToyConfigError) as error:
        raise ModelSpecError(f"{spec.describe()}: {error}") from error
    architecture = {"source": "native", "config": dict(config["architecture"])}
    loaded = _describe(bridge.eval(), spec, bridge.tokenizer, architecture, device)
    loaded.meta = dict(config.get("meta") or {})
    return loaded


def _loaded_toy(spec: ModelSpec, model: Any, config: dict[str, Any], device: str) -> LoadedModel:
    """A toy of superposition (``models.toy``) as a LoadedModel: no tokenizer, no vocabulary."""
    architecture = {"source": "native", "config": dict(config["architecture"])}
    loaded = _describe(model, spec, None, architecture, device)
    loaded.meta = dict(config.get("meta") or {})
    return loaded


# --- HuggingFace folder ----------------------------------------------------------------------


def _load_hf(spec: ModelSpec, device: str) -> LoadedModel:
    import torch
    from transformer_lens.model_bridge import TransformerBridge

    folder = spec.path
    if not (folder / "config.json").is_file():
        # Re-checked here: a missing folder must never reach transformers, which would take the
        # string for a Hub repo id.
        raise ModelSpecError(f"{spec.describe()}: {folder / 'config.json'} not found; nothing is downloaded")
    _refuse_remote_code(folder, spec)
    _refuse_files_outside(folder, spec)
    _refuse_unsafe_pickles(folder)
    # We load the HF model ourselves (local files only, no remote code, eager attention) rather
    # than letting boot_transformers do it, to see transformers' loading report: TransformerLens
    # silences the transformers logger, so a checkpoint whose tensors do not match config.json
    # would otherwise load as a silently *partly random* model.
    model = _from_pretrained_checked(folder, spec, device)
    try:
        bridge = TransformerBridge.boot_transformers(str(folder), hf_model=model, device=device, dtype=torch.float32)
    except Exception as error:
        raise ModelSpecError(f"{spec.describe()}: could not wrap {folder} in a TransformerBridge: {error}") from error
    bridge = bridge.eval()
    return _describe(bridge, spec, bridge.tokenizer, _hf_architecture(model), device)


def _from_pretrained_checked(folder: Path, spec: ModelSpec, device: str) -> Any:
    import torch
    from transformers import AutoConfig
    from transformer_lens.model_bridge.sources._hf_format import determine_architecture_from_hf_config
    from transformer_lens.model_bridge.sources.transformers.helpers import get_hf_model_class_for_architecture

    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
        model_class = get_hf_model_class_for_architecture(determine_architecture_from_hf_config(config))
        model, info = model_class.from_pretrained(
            str(folder),
            config=config,
            local_files_only=True,
            trust_remote_code=False,
            dtype=torch.float32,
            attn_implementation="eager",
            output_loading_info=True,
        )
    except Exception as error:
        _reraise_unsafe(error, folder)
        raise ModelSpecError(f"{spec.describe()}: could not load the HuggingFace folder {folder}: {error}") from error
    _check_loading_info(
        info, spec, f"the weights in {folder} do not match its config.json", "Re-save it with model.save_pretrained(folder)"
    )
    return model.to(device).eval()


def _check_loading_info(info: dict[str, Any], spec: ModelSpec, what: str, fix: str) -> None:
    """Refuse a load that left parameters at their random init; warn about ignored stored tensors."""

    def names(key: str) -> list[str]:
        return sorted(str(n if isinstance(n, str) else n[0]) for n in (info.get(key) or []))

    def listed(items: list[str]) -> str:
        return ", ".join(items[:5]) + (" ..." if len(items) > 5 else "")

    problems = [f"{label}: {listed(names(key))}" for key, label in (("missing_keys", "missing"), ("mismatched_keys", "wrong shape")) if names(key)]
    if problems:
        raise ModelSpecError(
            f"{spec.describe()}: {what} ({'; '.join(problems)}); loading it would give a partly random "
            f"model. {fix}"
        )
    unexpected = names("unexpected_keys")
    if unexpected:  # harmless for the forward pass (e.g. stale buffers), but worth knowing
        warnings.warn(f"{spec.describe()}: ignored stored tensors the model does not use: {listed(unexpected)}", stacklevel=3)


def _refuse_remote_code(folder: Path, spec: ModelSpec) -> None:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelSpecError(f"{spec.describe()}: {folder / 'config.json'} is not valid JSON: {error}") from error
    if isinstance(config, dict) and config.get("auto_map"):
        raise UnsafeCheckpointError(
            f"{spec.describe()}: {folder / 'config.json'} has an auto_map (custom modelling code); "
            f"refused: loading it would execute code from the checkpoint folder. Use a model whose "
            f"architecture transformers ships"
        )


# Index files whose "weight_map" names the weight shards transformers opens (folder + name).
HF_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def _refuse_files_outside(folder: Path, spec: ModelSpec) -> None:
    """Refuse a sharded checkpoint whose index names shards outside its folder.

    transformers opens ``folder / name`` for every shard its index names, so ``"../../x"`` or an
    absolute path would make it read (and report on) any file. Names must be relative and must not
    climb out with ``..``. Symlinks are allowed here, unlike in native checkpoints: the Hugging Face
    cache stores every file of a snapshot folder as a symlink into a shared ``blobs`` folder.
    """
    for index_name in HF_INDEX_FILES:
        index_path = folder / index_name
        if not index_path.is_file():
            continue
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelSpecError(f"{spec.describe()}: {index_path} is not valid JSON: {error}") from error
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict):
            raise ModelSpecError(f"{spec.describe()}: {index_path} has no \"weight_map\" object; re-save the model with model.save_pretrained(folder)")
        for name in sorted({value for value in weight_map.values() if isinstance(value, str)}):
            path = Path(name)
            if path.is_absolute() or ".." in path.parts or "\0" in name:
                raise ModelSpecError(
                    f"{spec.describe()}: {index_path} names the weight file {name!r}, outside {folder}; refused: "
                    "shards must sit in the checkpoint folder and be named relative to it (re-save the model with "
                    "model.save_pretrained(folder))"
                )
        bad = [value for value in weight_map.values() if not isinstance(value, str)]
        if bad:
            raise ModelSpecError(f"{spec.describe()}: {index_path}: every \"weight_map\" value must be a file name, got {bad[0]!r}")


def _pickle_weight_files(folder: Path) -> list[Path]:
    """The pickled weight files transformers would load from ``folder`` (none if safetensors exist)."""
    names = os.listdir(folder)
    if any(name.endswith(".safetensors") for name in names) or "model.safetensors.index.json" in names:
        return []
    return sorted(folder / n for n in names if n.startswith("pytorch_model") and n.endswith(".bin"))


def _refuse_unsafe_pickles(folder: Path) -> None:
    import pickle

    import torch

    for path in _pickle_weight_files(folder):
        unsafe: list[str] = []
        if zipfile.is_zipfile(path):
            try:
                unsafe = list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
            except Exception as error:  # unreadable: let the weights-only loader decide
                unsafe = [f"<unreadable: {error}>"]
        else:
            try:  # legacy (non-zip) format: the weights-only unpickler never executes code
                torch.load(str(path), map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as error:
                unsafe = [str(error).splitlines()[0]]
        if unsafe:
            raise UnsafeCheckpointError(_unsafe_message(path, unsafe))


def _unsafe_message(path: Path, unsafe: list[str]) -> str:
    return (
        f"{path}: refused: this pickle would execute code (it references {', '.join(unsafe[:5])}); "
        f"convert it to safetensors (load it once somewhere you trust it and re-save it with "
        f"model.save_pretrained(folder), which writes model.safetensors)"
    )


def _reraise_unsafe(error: BaseException, folder: Path) -> None:
    import pickle

    chain: BaseException | None = error
    while chain is not None:
        if isinstance(chain, pickle.UnpicklingError):
            files = _pickle_weight_files(folder) or [folder]
            raise UnsafeCheckpointError(_unsafe_message(files[0], [str(chain).splitlines()[0]])) from error
        chain = chain.__cause__ or chain.__context__


def _hf_architecture(hf_model: Any) -> dict[str, Any]:
    config = hf_model.config
    return {
        "source": "hf",
        "model_type": config.model_type,
        "hf_class": type(hf_model).__name__,
        "hf_config": config.to_dict(),
    }


def _hf_config_from_dict(data: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    data = dict(data)
    model_type = data.pop("model_type")
    return AutoConfig.for_model(model_type, **data)


def _bridge_from_hf_module(model: Any, tokenizer: Any, device: str, spec: ModelSpec) -> Any:
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module
    from transformer_lens.model_bridge.sources._hf_format import determine_architecture_from_hf_config
    from transformer_lens.utilities.attn_implementation import force_eager_attention

    try:
        architecture = determine_architecture_from_hf_config(model.config)
    except ValueError:
        architecture = type(model).__name__
    force_eager_attention(model)  # hook_pattern needs the attention weights
    try:
        bridge = build_bridge_from_module(
            model, architecture, hf_config=model.config, tokenizer=tokenizer, device=device, model_name=str(spec)
        )
    except ValueError as error:
        raise ModelSpecError(
            f"{spec.describe()}: TransformerLens has no adapter for {architecture} ({error})"
        ) from error
    return bridge.eval()


# --- GGUF ------------------------------------------------------------------------------------


def gguf_readable_architectures() -> list[str]:
    """GGUF ``general.architecture`` values the installed transformers can dequantize."""
    try:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
    except ImportError:  # pragma: no cover
        return []
    return sorted(a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer"))


def _gguf_architecture(path: Path, spec: ModelSpec) -> str:
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise ModelSpecError(f"{spec.describe()}: {path} is not a GGUF file (it does not start with b'GGUF')")
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
        fld = reader.fields["general.architecture"]
        return bytes(fld.parts[fld.data[0]]).decode("utf-8")
    except Exception as error:
        raise ModelSpecError(f"{spec.describe()}: cannot read GGUF metadata of {path}: {error}") from error


def _gguf_unsupported(spec: ModelSpec, arch: str, reason: Any) -> ModelSpecError:
    import transformers

    return ModelSpecError(
        f"{spec.describe()}: cannot load GGUF architecture {arch!r}: {reason}. "
        f"transformers {transformers.__version__} can dequantize GGUF files of architecture "
        f"{', '.join(gguf_readable_architectures())} (TransformerLens must also have an adapter for the "
        f"resulting model; tested here: {', '.join(GGUF_TESTED_ARCHITECTURES)}). Otherwise convert the model "
        f"to a HuggingFace folder and use hf:PATH"
    )


def _fix_gguf_config(config: Any) -> None:
    """Undo gaps in transformers' GGUF -> config mapping (checked on transformers 5.x).

    gpt2: the GGUF ``context_length`` lands in ``n_ctx`` but the position-embedding size is
    ``n_positions`` (left at 1024), and ``feed_forward_length`` is not mapped to ``n_inner``.
    """
    if getattr(config, "model_type", None) == "gpt2":
        n_ctx = getattr(config, "n_ctx", None)
        if isinstance(n_ctx, int) and n_ctx != config.n_positions:
            config.n_positions = n_ctx
        ffn = getattr(config, "feed_forward_length", None)
        if isinstance(ffn, int) and config.n_inner is None and ffn != 4 * config.n_embd:
            config.n_inner = ffn


def _load_gguf(spec: ModelSpec, device: str) -> LoadedModel:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = spec.path
    if not path.is_file():
        raise ModelSpecError(f"{spec.describe()}: file {path} not found; nothing is downloaded")
    arch = _gguf_architecture(path, spec)
    folder, filename = str(path.parent), path.name
    try:
        config = AutoConfig.from_pretrained(folder, gguf_file=filename, local_files_only=True)
        _fix_gguf_config(config)
        model, info = AutoModelForCausalLM.from_pretrained(
            folder,
            gguf_file=filename,
            config=config,
            dtype=torch.float32,
            attn_implementation="eager",
            local_files_only=True,
            output_loading_info=True,
        )
    except (ValueError, NotImplementedError, KeyError, RuntimeError, TypeError) as error:
        raise _gguf_unsupported(spec, arch, error) from error
    _check_loading_info(
        info,
        spec,
        f"the tensors in {path} do not match the model its metadata describes",
        "Re-convert the model (llama.cpp's convert_hf_to_gguf.py) or load its HF folder with hf:PATH",
    )
    model = model.to(device).eval()
    tokenizer = None
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename, local_files_only=True)
    except Exception as error:  # the weights are still usable with token ids
        warnings.warn(f"{spec.describe()}: could not build a tokenizer from the GGUF metadata ({error}); "
                      f"the model is loaded without one", stacklevel=2)
    bridge = _bridge_from_hf_module(model, tokenizer, device, spec)
    architecture = _hf_architecture(model)
    architecture["gguf_architecture"] = arch
    return _describe(bridge, spec, bridge.tokenizer, architecture, device)
