"""Model registry: build generators by name and preset; load shipped weights offline.

``register`` refuses duplicate names, so a model can never be silently replaced.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .base import Generator

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its generator class, config class and named presets."""

    name: str
    generator: type[Generator]
    config_cls: type
    presets: dict[str, Any]
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, config_cls: type, presets: dict[str, Any], description: str = "") -> Callable:
    """Class decorator adding a generator to the registry under ``name``.

    Raises:
        ValueError: if ``name`` is already registered or a preset is not a ``config_cls``.
    """

    def wrap(cls: type[Generator]) -> type[Generator]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered ({_REGISTRY[name].generator.__name__})")
        for key, cfg in presets.items():
            if not isinstance(cfg, config_cls):
                raise ValueError(f"preset {key!r} of {name!r} is not a {config_cls.__name__}")
        cls.name = name
        _REGISTRY[name] = ModelEntry(name, cls, config_cls, dict(presets), description or (cls.__doc__ or "").split("\n")[0])
        return cls

    return wrap


def _ensure_builtin() -> None:
    # importing the model modules runs their @register decorators
    from . import sr_hifigan  # noqa: F401


def available() -> list[str]:
    """Registered model names, sorted."""
    _ensure_builtin()
    return sorted(_REGISTRY)


def entry(name: str) -> ModelEntry:
    """The registry entry of ``name``.

    Raises:
        KeyError: for an unknown model, listing the known ones.
    """
    _ensure_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}") from None


def make_config(name: str, preset: str = "live", **overrides: Any) -> Any:
    """The config of ``name``'s ``preset`` with field ``overrides`` applied.

    Raises:
        KeyError: unknown model or preset.
        TypeError: an override names no config field.
    """
    e = entry(name)
    if preset not in e.presets:
        raise KeyError(f"model {name!r} has no preset {preset!r}; presets: {', '.join(e.presets)}")
    return dataclasses.replace(e.presets[preset], **overrides)


def build(name: str, preset: str = "live", **overrides: Any) -> Generator:
    """A freshly initialised generator ``name`` with the config of ``preset``."""
    return entry(name).generator(make_config(name, preset, **overrides))


def build_from_config(name: str, config: Any) -> Generator:
    """A generator ``name`` built from an explicit config instance."""
    return entry(name).generator(config)


def load_model(name: str, path: str | Path | None = None, device: str = "cpu") -> Generator:
    """Load a trained generator, strictly and offline.

    Args:
        name: registered model name; with ``path=None`` the weights shipped in
            ``rtgan/weights/NAME.safetensors`` (+ ``NAME.json``) are used.
        path: a ``.safetensors`` checkpoint (its ``.json`` metadata beside it).
        device: torch device for the model.

    Returns:
        the generator in eval mode, with ``.metadata`` holding the checkpoint's JSON.

    Raises:
        FileNotFoundError: no shipped weights for ``name``.
        rtgan.checkpoint.CheckpointError: corrupt, mismatched or incomplete checkpoint.
    """
    from ..checkpoint import load_generator

    if path is None:
        path = WEIGHTS_DIR / f"{name}.safetensors"
        if not path.exists():
            raise FileNotFoundError(f"no shipped weights for model {name!r} (looked for {path})")
    return load_generator(Path(path), expected_name=name, device=device)
