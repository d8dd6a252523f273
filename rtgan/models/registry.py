"""Model registry: build generators by name and preset; load checkpoints and shipped weights offline.

Every module in :mod:`rtgan.models` (other than the infrastructure in :data:`NOT_MODELS` and
private ``_modules``) is imported on first use, and its ``@register`` decorators add its
generators: a new model registers by existing as a file in ``rtgan/models/``.
``register`` refuses duplicate names, so a model can never be silently replaced. A model's file,
or a module of its own beside it (``sr16_training``, ``sr_hifigan_training``: discovered and
imported the same way), may also register how to train it (:func:`register_recipe`, a
:class:`rtgan.models.recipe.Recipe` subclass), which ``rtgan train MODEL`` looks up with :func:`recipe`.

The registry owns loading a generator from a checkpoint (:func:`load_generator`);
:mod:`rtgan.checkpoint` only reads and writes tensors and metadata.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..checkpoint import CheckpointError, config_from_dict, generator_state, read_checkpoint
from .base import Generator

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its generator class, config class, named presets and training recipe."""

    name: str
    generator: type[Generator]
    config_cls: type
    presets: dict[str, Any]
    description: str
    #: the :class:`rtgan.models.recipe.Recipe` subclass that trains it (None: not trainable here)
    recipe: type | None = None


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


def register_recipe(name: str) -> Callable:
    """Class decorator registering a :class:`rtgan.models.recipe.Recipe` subclass as model ``name``'s.

    Use it in the model's file after the model's ``@register``, or in a training module of
    :mod:`rtgan.models` that imports the model's module first.

    Raises:
        ValueError: ``name`` is not registered (yet), or already has a recipe.
    """

    def wrap(cls: type) -> type:
        e = _REGISTRY.get(name)
        if e is None:
            raise ValueError(f"cannot register a recipe for {name!r}: no such model (register the model first)")
        if e.recipe is not None:
            raise ValueError(f"model {name!r} already has a recipe ({e.recipe.__name__})")
        _REGISTRY[name] = dataclasses.replace(e, recipe=cls)
        return cls

    return wrap


def recipe(name: str) -> type:
    """The training recipe class registered with model ``name``.

    Raises:
        KeyError: unknown model (listing the known ones), or a model without a recipe.
    """
    e = entry(name)
    if e.recipe is None:
        trainable = [n for n, m in sorted(_REGISTRY.items()) if m.recipe is not None]
        raise KeyError(f"model {name!r} has no training recipe; trainable: {', '.join(trainable) or 'none'}")
    return e.recipe


#: Modules of :mod:`rtgan.models` that register neither a model nor a recipe (private ``_modules`` are skipped too).
NOT_MODELS = frozenset({"base", "ports", "registry", "discriminators", "wavegan", "layers", "recipe", "params"})


def model_modules() -> list[str]:
    """Full names of the model modules in :mod:`rtgan.models`, sorted (see :data:`NOT_MODELS`).

    Model modules are those registering models or their training recipes (e.g. ``sr16`` and
    ``sr16_training``); :func:`discover` imports them all.
    """
    package = importlib.import_module(__name__.rpartition(".")[0])
    return sorted(f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)
                  if m.name not in NOT_MODELS and not m.name.startswith("_"))


def discover() -> list[str]:
    """Import every model module (:func:`model_modules`): their ``@register`` decorators run.

    Idempotent: a module already imported is not run again. Returns the module names.

    Raises:
        ValueError: a model module registers a name that another one already took.
    """
    names = model_modules()
    for name in names:
        importlib.import_module(name)
    return names


_discovered = False


def _ensure_builtin() -> None:
    global _discovered
    if not _discovered:
        discover()
        _discovered = True


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


def load_generator(path: str | Path, expected_name: str | None = None, device: str = "cpu") -> Generator:
    """Build the generator named in a checkpoint and load its weights strictly.

    Raises:
        rtgan.checkpoint.CheckpointError: corrupt files, a different model than ``expected_name``,
            a config that does not fit, or missing/unexpected/mis-shaped weights.
    """
    tensors, meta = read_checkpoint(path)
    name = meta.get("model")
    if expected_name is not None and name != expected_name:
        raise CheckpointError(f"{path} holds model {name!r}, not {expected_name!r}")
    try:
        e = entry(name)
    except KeyError as err:
        raise CheckpointError(str(err)) from None
    config = config_from_dict(e.config_cls, meta.get("config", {}))
    model = e.generator(config)
    try:
        model.load_state_dict(generator_state(tensors), strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not match {name} {config}: {err}") from None
    model.metadata = meta
    return model.to(device).eval()


#: separates a model name from the tag of one of its shipped weights: ``sr16-unet@r4``
TAG_SEP = "@"


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"NAME"`` or ``"NAME@TAG"`` -> ``(NAME, TAG or None)``.

    A model may ship several trained weights (``sr16-unet`` at ratio 2 and 4): the untagged
    ``rtgan/weights/NAME.safetensors`` and tagged ``rtgan/weights/NAME@TAG.safetensors``.

    Raises:
        KeyError: ``NAME`` is not registered (the message lists the models).
        ValueError: an empty tag or one with characters other than letters, digits, ``-``, ``_``.
    """
    name, sep, tag = ref.partition(TAG_SEP)
    entry(name)
    if not sep:
        return name, None
    if not tag or not all(ch.isalnum() or ch in "-_" for ch in tag):
        raise ValueError(f"model {ref!r}: a weights tag after {TAG_SEP!r} is letters, digits, '-' or '_'")
    return name, tag


def shipped_weights(name: str) -> list[str]:
    """The references (``NAME``, ``NAME@TAG``) of the weights shipped for model ``name``, sorted."""
    refs = [p.name[:-len(".safetensors")] for p in WEIGHTS_DIR.glob(f"{name}*.safetensors")]
    return sorted(r for r in refs if r == name or r.startswith(name + TAG_SEP))


def load_model(name: str, path: str | Path | None = None, device: str = "cpu") -> Generator:
    """Load a trained generator, strictly and offline.

    Args:
        name: registered model name, or ``NAME@TAG`` for one of several shipped weights
            (:func:`split_ref`); with ``path=None`` the weights shipped in
            ``rtgan/weights/NAME[@TAG].safetensors`` (+ ``.json``) are used.
        path: a ``.safetensors`` checkpoint (its ``.json`` metadata beside it).
        device: torch device for the model.

    Returns:
        the generator in eval mode, with ``.metadata`` holding the checkpoint's JSON.

    Raises:
        KeyError: an unregistered model name.
        ValueError: a malformed tag, or a tag together with ``path``.
        FileNotFoundError: no shipped weights for ``name`` (the message lists those there are).
        rtgan.checkpoint.CheckpointError: corrupt, mismatched or incomplete checkpoint.
    """
    model, tag = split_ref(name)
    if path is None:
        path = WEIGHTS_DIR / f"{name}.safetensors"
        if not path.exists():
            there = shipped_weights(model)
            raise FileNotFoundError(f"no shipped weights for model {name!r} (looked for {path}; shipped: "
                                    f"{', '.join(there) or 'none'})")
    elif tag is not None:
        raise ValueError(f"model {name!r}: a weights tag names shipped weights; give the model name alone "
                         f"with a checkpoint ({path})")
    return load_generator(Path(path), expected_name=model, device=device)
