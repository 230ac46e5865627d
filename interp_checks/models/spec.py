"""Model specs: the strings a claim file (or ``--interp-model``) uses to name a model.

Grammar::

    zoo:NAME      a checkpoint bundled with interp_checks (``<zoo dir>/NAME/``, native format)
    hf:PATH       a local HuggingFace model folder: config.json + weights + tokenizer files
    gguf:PATH     a local ``.gguf`` file (loaded through transformers' GGUF support)
    native:PATH   a folder in interp_checks' own format (see ``interp_checks.models.native``)
    series:PATH   a folder of checkpoints through training (``interp_checks.models.series``); PATH
                  may be a glob, each matching folder one run (``series:runs/modadd-40-s*``)
    NAME          a name bound on the command line with ``--interp-model NAME=SPEC``

Paths: ``~`` expands; a relative path resolves against ``base_dir`` (the claim file's folder), or
against the current directory when no ``base_dir`` is given. Paths inside a *binding*
(``--interp-model NAME=hf:./m``) resolve against ``bindings_base_dir`` (the directory pytest was
started from by default), because that is where the user typed them.

Bindings: a spec string that is *exactly* a key of ``bindings`` is replaced by the bound spec (one
level, bound specs are not looked up again). Keys are bare names (``small``) or, to swap a bundled
model for another one without editing claim files, a whole zoo spec (``zoo:attn-only-2l``).

Nothing here downloads anything or imports torch/transformers: missing files are errors.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from interp_checks.models.zoo_paths import KNOWN_ZOO_MODELS, available_zoo_models, zoo_dir

__all__ = [
    "PREFIXES",
    "ModelSpec",
    "ModelSpecError",
    "available_zoo_models",
    "parse_binding",
    "parse_model_spec",
    "zoo_dir",
]

SpecKind = Literal["zoo", "hf", "gguf", "native", "series"]
PREFIXES: tuple[str, ...] = ("zoo", "hf", "gguf", "native", "series")
_PREFIX_HELP = "zoo:NAME, hf:PATH, gguf:PATH, native:PATH, series:PATH"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_PREFIX_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_\-]*):(.*)$", re.DOTALL)

# Files that make a folder a loadable HF checkpoint.
HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


class ModelSpecError(ValueError):
    """A model spec is malformed or names something that is not there. The message says the fix."""


@dataclass(frozen=True)
class ModelSpec:
    """A parsed, resolved model spec.

    ``target`` is the zoo name for ``zoo`` specs and an absolute resolved path otherwise. ``text`` is
    the spec as the user wrote it after binding substitution (for reports); ``bound_from`` is the
    bound name it came from, if any. Two specs are equal when kind and target are equal.
    """

    kind: SpecKind
    target: str
    text: str = field(default="", compare=False)
    bound_from: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"

    @property
    def path(self) -> Path:
        """The folder or file this spec loads from (for zoo specs: ``<zoo dir>/NAME``)."""
        if self.kind == "zoo":
            return zoo_dir() / self.target
        return Path(self.target)

    def describe(self) -> str:
        """``text`` plus the resolved form when they differ, e.g. ``small (= hf:/abs/m)``."""
        shown = self.bound_from or self.text or str(self)
        return shown if shown == str(self) else f"{shown} (= {self})"


def parse_binding(text: str) -> tuple[str, str]:
    """Parse ``NAME=SPEC`` (the value of ``--interp-model``) into ``(NAME, SPEC)``.

    NAME is a bare name (letters, digits, ``_.-``) or ``zoo:NAME`` to override a bundled model.
    SPEC must carry one of the prefixes; it is checked for existence only when used.
    """
    usage = "expected NAME=SPEC, e.g. --interp-model small=hf:./models/small or zoo:attn-only-2l=native:./ckpt"
    if not isinstance(text, str) or "=" not in text:
        raise ModelSpecError(f"bad model binding {text!r}: {usage}")
    name, _, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not name:
        raise ModelSpecError(f"bad model binding {text!r}: the NAME before '=' is empty; {usage}")
    if not spec:
        raise ModelSpecError(f"bad model binding {text!r}: the SPEC after '=' is empty; {usage}")
    bare = name[4:] if name.startswith("zoo:") else name
    if not _NAME_RE.match(bare):
        raise ModelSpecError(
            f"bad model binding {text!r}: NAME {name!r} must be letters, digits, '_', '.', '-' "
            f"(or zoo:NAME to override a bundled model); {usage}"
        )
    match = _PREFIX_RE.match(spec)
    if match is None or match.group(1) not in PREFIXES:
        raise ModelSpecError(
            f"bad model binding {text!r}: SPEC {spec!r} needs one of the prefixes {_PREFIX_HELP} "
            f"(a binding cannot point at another bound name)"
        )
    return name, spec


def parse_model_spec(
    text: str,
    *,
    base_dir: str | Path | None = None,
    bindings: Mapping[str, str] | None = None,
    bindings_base_dir: str | Path | None = None,
) -> ModelSpec:
    """Parse and resolve a model spec, checking that what it names exists (nothing is downloaded)."""
    if not isinstance(text, str) or not text.strip():
        raise ModelSpecError(f"empty model spec {text!r}: write one of {_PREFIX_HELP}, or a name bound with --interp-model")
    raw = text.strip()
    bindings = bindings or {}
    bound_from = None
    spec_text = raw
    if raw in bindings:
        bound_from = raw
        spec_text = bindings[raw].strip()
        base = Path(bindings_base_dir) if bindings_base_dir is not None else Path.cwd()
    else:
        base = Path(base_dir) if base_dir is not None else Path.cwd()
    where = f"{raw} (bound to {spec_text})" if bound_from else raw

    match = _PREFIX_RE.match(spec_text)
    if match is None or len(match.group(1)) == 1:
        # No prefix (a one-letter "prefix" is a Windows drive letter, not a prefix).
        raise ModelSpecError(_bare_name_message(spec_text, bindings, bound=bound_from))
    prefix, rest = match.group(1), match.group(2).strip()
    if prefix not in PREFIXES:
        hint = difflib.get_close_matches(prefix.lower(), PREFIXES, n=1, cutoff=0.5)
        did_you_mean = f" (did you mean {hint[0]}:{rest}?)" if hint else ""
        raise ModelSpecError(f"{where}: unknown model prefix {prefix!r}{did_you_mean}; valid prefixes: {_PREFIX_HELP}")
    if not rest:
        example = "zoo:attn-only-2l" if prefix == "zoo" else f"{prefix}:./path"
        raise ModelSpecError(f"{where}: nothing after '{prefix}:'; write e.g. {example}")

    if prefix == "zoo":
        return ModelSpec("zoo", _check_zoo_name(rest, where), spec_text, bound_from)

    path = _resolve(rest, base)
    rel_note = (
        f" (relative paths resolve against {'the directory of the --interp-model binding' if bound_from else 'the claim file folder'} {base})"
        if not Path(os.path.expanduser(rest)).is_absolute()
        else ""
    )
    nothing = "nothing is downloaded: the spec must name a local"
    if prefix == "gguf":
        if path.is_dir():
            found = sorted(p.name for p in path.glob("*.gguf"))
            hint = f"; it holds {', '.join(found[:5])} -- write gguf:{path / found[0]}" if found else ""
            raise ModelSpecError(f"{where}: {path} is a folder, gguf: needs the .gguf file itself{hint}")
        if not path.is_file():
            raise ModelSpecError(f"{where}: file {path} not found{rel_note}; {nothing} .gguf file")
        return ModelSpec("gguf", str(path), spec_text, bound_from)

    if prefix == "series":
        return _series_spec(path, rest, spec_text, bound_from, where, rel_note)

    kind_label = {"hf": "HuggingFace model folder", "native": "native checkpoint folder"}[prefix]
    if not path.exists():
        raise ModelSpecError(f"{where}: folder {path} not found{rel_note}; {nothing} {kind_label}")
    if not path.is_dir():
        raise ModelSpecError(f"{where}: {path} is a file, {prefix}: needs a {kind_label}")
    if prefix == "hf":
        _check_hf_folder(path, where)
    else:
        if not (path / "config.json").is_file():
            raise ModelSpecError(
                f"{where}: {path} has no config.json, so it is not a native checkpoint "
                f"(write one with interp_checks.models.native.save_native; HF folders use hf:)"
            )
    return ModelSpec(prefix, str(path), spec_text, bound_from)  # type: ignore[arg-type]


def _series_spec(path: Path, rest: str, spec_text: str, bound_from: str | None, where: str, rel_note: str) -> ModelSpec:
    """``series:PATH``: a series folder, or a glob of them (one run each), that holds checkpoints."""
    from interp_checks.models.series import series_folders

    if not series_folders(path):
        what = "no folder matches" if any(ch in rest for ch in "*?[") and not list(path.parent.glob(path.name)) else "nothing with checkpoints at"
        raise ModelSpecError(
            f"{where}: {what} {path}{rel_note}; series: needs a folder (or a glob of folders) whose subfolders "
            "step-000100/ ... are checkpoints (interp_checks.models.series)"
        )
    return ModelSpec("series", str(path), spec_text, bound_from)


def _resolve(rest: str, base: Path) -> Path:
    path = Path(os.path.expanduser(rest))
    if not path.is_absolute():
        path = Path(os.path.expanduser(str(base))) / path
    return path.resolve()


def _check_hf_folder(path: Path, where: str) -> None:
    if not (path / "config.json").is_file():
        hint = " (it looks like a native checkpoint: use native:)" if (path / "model.safetensors").is_file() else ""
        raise ModelSpecError(f"{where}: {path} has no config.json{hint}; save the model with model.save_pretrained(folder)")
    names = set(os.listdir(path))
    has_weights = any(n in names for n in HF_WEIGHT_FILES) or any(
        n.endswith(".safetensors") or (n.startswith("pytorch_model") and n.endswith(".bin")) for n in names
    )
    if not has_weights:
        raise ModelSpecError(
            f"{where}: {path} has no weights (looked for {', '.join(HF_WEIGHT_FILES)}); "
            f"save them with model.save_pretrained(folder)"
        )
    if not any(n in names for n in HF_TOKENIZER_FILES):
        raise ModelSpecError(
            f"{where}: {path} has no tokenizer (looked for {', '.join(HF_TOKENIZER_FILES)}); "
            f"save it next to the weights with tokenizer.save_pretrained(folder)"
        )


def _check_zoo_name(name: str, where: str) -> str:
    available = available_zoo_models()
    if name in available:
        return name
    folder = zoo_dir()
    known = sorted(set(available) | set(KNOWN_ZOO_MODELS))
    if name in KNOWN_ZOO_MODELS:
        raise ModelSpecError(
            f"{where}: zoo model {name!r} is not built: {folder / name} has no config.json. "
            f"Build the zoo checkpoints into {folder} (or point INTERP_CHECKS_ZOO at a folder that has them)"
        )
    hint = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    did_you_mean = f" Did you mean zoo:{hint[0]}?" if hint else ""
    listed = ", ".join(available) if available else f"none built yet in {folder}"
    raise ModelSpecError(f"{where}: unknown zoo model {name!r}.{did_you_mean} Available zoo models: {listed}")


def _bare_name_message(text: str, bindings: Mapping[str, str], *, bound: str | None) -> str:
    if bound is not None:
        return f"{bound}: bound to {text!r}, which has no prefix; bind it to one of {_PREFIX_HELP}"
    message = f"{text!r} is not a model spec: it has no prefix ({_PREFIX_HELP}) and no --interp-model binding of that name"
    names = [k for k in bindings if not k.startswith("zoo:")]
    zoo_names = sorted(set(available_zoo_models()) | set(KNOWN_ZOO_MODELS))
    if text in zoo_names:
        return f"{message}. Did you mean zoo:{text}?"
    hint = difflib.get_close_matches(text, names, n=1, cutoff=0.6)
    if hint:
        return f"{message}. Did you mean the bound name {hint[0]!r}?"
    hint = difflib.get_close_matches(text, zoo_names, n=1, cutoff=0.6)
    if hint:
        return f"{message}. Did you mean zoo:{hint[0]}?"
    suffix = f" Bound names: {', '.join(sorted(names))}." if names else ""
    return f"{message}; bind it with --interp-model {text}=hf:PATH (or another spec).{suffix}"
