"""Checkpoints: safetensors weights + JSON metadata, loaded strictly, never with pickle.

A checkpoint is two files side by side: ``NAME.safetensors`` (tensors only) and ``NAME.json``::

    {"format_version": 1, "model": "sr-hifigan", "preset": "live", "config": {...},
     "corpus_manifest_hash": "...", "steps": 12000, "command": "rtgan train ...",
     "metrics": {...}, ...}

Generator weights live under the key prefix ``generator.``; training checkpoints add other
prefixes (``discriminator.``, optimizer state) that
:func:`rtgan.models.registry.load_generator` ignores by prefix, but within the generator prefix
every key must match exactly.

This module only reads and writes tensors and metadata; it knows no model classes. Building
the generator a checkpoint names is the registry's job (:mod:`rtgan.models.registry` imports
this module, never the other way round).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils import parametrize
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .fileio import atomic_write, atomic_write_text

FORMAT_VERSION = 1
GENERATOR_PREFIX = "generator."


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not match the model it claims to hold."""


def metadata_path(weights: Path) -> Path:
    """The JSON metadata file beside a ``.safetensors`` file."""
    return Path(weights).with_suffix(".json")


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Write ``tensors`` to ``path`` (.safetensors) and ``metadata`` to the .json beside it.

    Both files are written to temporary names and renamed, so a crash never leaves a
    half-written checkpoint. ``format_version`` is added to the metadata.
    """
    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {"format_version": FORMAT_VERSION, **metadata}
    text = json.dumps(meta, indent=2, sort_keys=True, default=_json_default)
    atomic_write(path, lambda tmp: save_file(tensors, tmp))
    atomic_write_text(metadata_path(path), text + "\n")
    return path


def _json_default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read tensors and metadata.

    Raises:
        CheckpointError: missing files, unreadable safetensors or JSON, or a format version
            this code does not know.
    """
    path = Path(path)
    meta_file = metadata_path(path)
    for f in (path, meta_file):
        if not f.exists():
            raise CheckpointError(f"checkpoint file missing: {f}")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"corrupt checkpoint metadata {meta_file}: {e}") from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{meta_file}: unsupported format_version {meta.get('format_version') if isinstance(meta, dict) else None!r}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"corrupt checkpoint weights {path}: {e}") from None
    return tensors, meta


def config_to_dict(config: Any) -> dict[str, Any]:
    """A model config dataclass as a JSON-ready dict."""
    return dataclasses.asdict(config)


def config_from_dict(config_cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass; unknown and missing keys are both errors.

    A missing key is not filled with today's default: a checkpoint written before a field
    existed was trained without what the field switches on, and a default could silently
    build a different network around its weights.

    Raises:
        CheckpointError: keys that the config class does not have, or fields the data lacks.
    """
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(data) - names
    if unknown:
        raise CheckpointError(f"config has unknown fields {sorted(unknown)} for {config_cls.__name__}")
    missing = names - set(data)
    if missing:
        raise CheckpointError(f"config lacks fields {sorted(missing)} of {config_cls.__name__} "
                              f"(written by an older rtgan? add them with the values it was trained with)")
    return config_cls(**data)


def folded_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` with weight norm folded; ``module`` is unchanged.

    Each wrapped conv's ``parametrizations.weight.original0/1`` (``g``, ``v``) become its
    ``weight`` (``g v / ||v||``), in the conv's place in the key order. (Not by folding a deep
    copy: a parametrised module's class is shared with its copies, and unwrapping one removes
    the ``weight`` property from the others.)
    """
    wrapped = [name for name, m in module.named_modules() if parametrize.is_parametrized(m, "weight")]
    if not wrapped:
        return module.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in module.state_dict().items():
        for name in wrapped:
            prefix = f"{name}.parametrizations.weight." if name else "parametrizations.weight."
            if key.startswith(prefix):
                if key.endswith("original0"):
                    out[f"{name}.weight" if name else "weight"] = module.get_submodule(name).weight.detach().clone()
                break
        else:
            out[key] = value
    return out


def generator_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The generator's state dict under the ``generator.`` prefix, weight norm folded
    (:func:`folded_state_dict`: checkpoints hold plain weights)."""
    return {GENERATOR_PREFIX + k: v for k, v in folded_state_dict(model).items()}


def save_generator(path: str | Path, model: Any, metadata: dict[str, Any]) -> Path:
    """Save a generator alone (a release checkpoint) with its name and config in the metadata."""
    meta = {"model": model.name, "config": config_to_dict(model.config), **metadata}
    return save_checkpoint(path, generator_tensors(model), meta)


def generator_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The generator's state dict from a checkpoint's tensors: the ``generator.`` keys, prefix removed.

    Tensors under other prefixes (discriminator, optimizer state) are left out.
    """
    return {k[len(GENERATOR_PREFIX):]: v for k, v in tensors.items() if k.startswith(GENERATOR_PREFIX)}
