"""Training state and its checkpoint (safetensors + JSON; optimiser state flattened, no pickle)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import CheckpointError, config_to_dict, read_checkpoint, save_checkpoint


@dataclass
class TrainState:
    """Everything that changes while training; the loop functions take and update it.

    Attributes:
        generator, discriminator: the networks (discriminator ``None`` when not adversarial).
        opt_g, opt_d: AdamW optimisers; sched_g, sched_d: ExponentialLR schedulers.
        step: optimiser steps done.
        history: validation records ``{"step", "snr_db", "lsd", "loss"}``.
    """

    generator: torch.nn.Module
    discriminator: torch.nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    sched_g: Any
    sched_d: Any
    step: int = 0
    history: list[dict] = field(default_factory=list)


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
    """Write a resumable training checkpoint (generator, discriminator, optimisers, schedulers)."""
    tensors = {f"generator.{k}": v for k, v in state.generator.state_dict().items()}
    meta = dict(metadata)
    meta.update(step=state.step, history=state.history, model=state.generator.name,
                config=config_to_dict(state.generator.config),
                sched_g=state.sched_g.state_dict())
    t, m = _flatten_optimizer("optim_g", state.opt_g)
    tensors.update(t)
    meta["optim_g"] = m
    if state.discriminator is not None:
        tensors.update({f"discriminator.{k}": v for k, v in state.discriminator.state_dict().items()})
        t, m = _flatten_optimizer("optim_d", state.opt_d)
        tensors.update(t)
        meta["optim_d"] = m
        meta["sched_d"] = state.sched_d.state_dict()
    return save_checkpoint(path, tensors, meta)


def load_train_state(path: Path, state: TrainState) -> dict[str, Any]:
    """Restore ``state`` in place from :func:`save_train_state`'s files, strictly.

    Raises:
        CheckpointError: corrupt files or weights that do not fit the networks.
    """
    tensors, meta = read_checkpoint(path)
    try:
        state.generator.load_state_dict(
            {k[10:]: v for k, v in tensors.items() if k.startswith("generator.")}, strict=True)
        state.opt_g.load_state_dict(_unflatten_optimizer("optim_g", tensors, meta["optim_g"]))
        state.sched_g.load_state_dict(meta["sched_g"])
        if state.discriminator is not None:
            state.discriminator.load_state_dict(
                {k[14:]: v for k, v in tensors.items() if k.startswith("discriminator.")}, strict=True)
            state.opt_d.load_state_dict(_unflatten_optimizer("optim_d", tensors, meta["optim_d"]))
            state.sched_d.load_state_dict(meta["sched_d"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"cannot resume from {path}: {e}") from None
    state.step = int(meta["step"])
    state.history = list(meta.get("history", []))
    return meta
