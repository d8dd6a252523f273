"""Training state and its checkpoint (safetensors + JSON; optimiser state flattened, no pickle).

A resumable checkpoint holds every trainable network (one with an optimiser) and its optimiser
and scheduler, never the frozen ones (those are reloaded by content hash, which the metadata
records under ``frozen``). Names in the files, for a network ``NAME``:

* weights: tensors ``NAME.<state-dict key>``;
* optimiser: tensors ``optim_N.<param index>.<key>`` and metadata ``optim_N``
  (``{"param_groups": ..., "scalars": ...}``);
* scheduler: metadata ``sched_N`` (its ``state_dict()``);

with ``N = g`` for ``generator``, ``N = d`` for ``discriminator`` and ``N = NAME`` otherwise.
The two short forms are the names sr-hifigan's checkpoints were written with before the
training recipe existed (``generator.``/``discriminator.``, ``optim_g``/``optim_d``,
``sched_g``/``sched_d``), so those checkpoints resume as they are, without conversion.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import CheckpointError, config_to_dict, read_checkpoint, save_checkpoint
from ..models.recipe import Recipe

#: networks whose checkpoint keys keep the short names of the pre-recipe sr-hifigan format
_SHORT = {"generator": "g", "discriminator": "d"}


def optim_key(name: str) -> str:
    """Prefix of network ``name``'s optimiser tensors and its metadata key (``optim_g`` for the generator)."""
    return f"optim_{_SHORT.get(name, name)}"


def sched_key(name: str) -> str:
    """Metadata key of network ``name``'s scheduler state (``sched_g`` for the generator)."""
    return f"sched_{_SHORT.get(name, name)}"


def check_names(names) -> None:
    """Network names must make unambiguous checkpoint keys.

    Raises:
        ValueError: an empty name, one with a dot, one starting ``optim_`` or ``sched_``, or
            two names with the same optimiser key (e.g. ``g`` beside ``generator``).
    """
    seen: dict[str, str] = {}
    for name in names:
        if not name or "." in name or name.startswith(("optim_", "sched_")):
            raise ValueError(f"network name {name!r}: must be non-empty, without '.', not starting optim_/sched_")
        if optim_key(name) in seen:
            raise ValueError(f"networks {seen[optim_key(name)]!r} and {name!r} share checkpoint key {optim_key(name)}")
        seen[optim_key(name)] = name


@dataclass
class TrainState:
    """Everything that changes while training; the loop functions take and update it.

    Attributes:
        recipe: the model's :class:`rtgan.models.recipe.Recipe`, built from the run's config.
        nets: every network by name, on the training device (trainable and frozen).
        optimisers: one per trainable network, by its name.
        schedulers: learning-rate schedulers by network name (a subset of ``optimisers``).
        step: generator steps done.
        history: validation records ``{"step", <the recipe's metrics>}``.
        frozen: provenance of the frozen networks, ``{name: {"model", "sha256"}}``.
        wrapped: in a distributed run, the DistributedDataParallel wrappers of the trainable
            networks by name (:mod:`.distributed`); empty otherwise. ``nets`` keeps the plain
            networks (what checkpoints, snapshots and validation use).
    """

    recipe: Recipe
    nets: dict[str, nn.Module]
    optimisers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, Any]
    step: int = 0
    history: list[dict] = field(default_factory=list)
    frozen: dict[str, dict] = field(default_factory=dict)
    wrapped: dict[str, nn.Module] = field(default_factory=dict)

    @property
    def step_nets(self) -> dict[str, nn.Module]:
        """What the recipe's training steps run: ``nets`` with each network in ``wrapped`` replaced by its wrapper."""
        return {**self.nets, **self.wrapped} if self.wrapped else self.nets

    @property
    def generator(self) -> nn.Module:
        """``nets["generator"]``: what release checkpoints and snapshots hold."""
        return self.nets["generator"]


def _flatten_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    # JSON turned tuples (betas) into lists
    groups = [{k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()}
              for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_train_state(path: Path, state: TrainState, metadata: dict[str, Any]) -> Path:
    """Write a resumable checkpoint: trainable networks, optimisers, schedulers, step, history.

    ``metadata`` is stored too; ``model`` and ``config`` are the generator's, ``networks`` lists
    the trainable networks and ``frozen`` the frozen ones' provenance.
    """
    g = state.generator
    meta = dict(metadata)
    meta.update(step=state.step, history=state.history, model=g.name, config=config_to_dict(g.config),
                networks=sorted(state.optimisers))
    if state.frozen:
        meta["frozen"] = state.frozen
    tensors: dict[str, torch.Tensor] = {}
    for name, opt in state.optimisers.items():
        tensors.update({f"{name}.{k}": v for k, v in state.nets[name].state_dict().items()})
        t, m = _flatten_optimizer(optim_key(name), opt)
        tensors.update(t)
        meta[optim_key(name)] = m
    for name, sched in state.schedulers.items():
        meta[sched_key(name)] = sched.state_dict()
    return save_checkpoint(path, tensors, meta)


def load_train_state(path: Path, state: TrainState) -> dict[str, Any]:
    """Restore ``state`` in place from :func:`save_train_state`'s files, strictly; returns the metadata.

    Every trainable network of ``state`` must be in the checkpoint with exactly its keys and
    shapes, with its optimiser and scheduler. Checkpoints written before the training recipe
    (sr-hifigan's, see the module docstring) load the same way.

    Raises:
        CheckpointError: corrupt files; weights or optimiser state that do not fit; a checkpoint
            that trained other networks, or other frozen networks, than ``state``.
    """
    tensors, meta = read_checkpoint(path)
    if "networks" in meta and sorted(meta["networks"]) != sorted(state.optimisers):
        raise CheckpointError(f"cannot resume from {path}: it trained networks {sorted(meta['networks'])}, "
                              f"this run trains {sorted(state.optimisers)}")
    if meta.get("frozen", {}) != state.frozen:
        raise CheckpointError(f"cannot resume from {path}: it used frozen networks {meta.get('frozen', {})}, "
                              f"this run uses {state.frozen}")
    try:
        for name, opt in state.optimisers.items():
            prefix = name + "."
            state.nets[name].load_state_dict(
                {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
            opt.load_state_dict(_unflatten_optimizer(optim_key(name), tensors, meta[optim_key(name)]))
        for name, sched in state.schedulers.items():
            sched.load_state_dict(meta[sched_key(name)])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"cannot resume from {path}: {e}") from None
    state.step = int(meta["step"])
    state.history = list(meta.get("history", []))
    return meta
