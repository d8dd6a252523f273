"""Weight normalisation for training, folded away for inference, checkpoints and export.

Weight norm (Salimans & Kingma 2016) writes a conv's weight as ``w = g v / ||v||`` (norm over
every axis but the first); MelGAN (Kumar et al. 2019) and HiFi-GAN train their generators
with it. It changes how the optimiser sees the weight, not what the layer computes, so rtgan
keeps it out of the models' definitions: a recipe wraps the generator's convs with
:func:`apply_weight_norm` for training, snapshots and release checkpoints hold the folded
weight ``w`` (:func:`folded_state_dict`), the registered model loads them as plain convs, and a
warm start loads folded weights back into a wrapped network (:func:`load_folded`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from ...checkpoint import folded_state_dict  # noqa: F401  (re-exported: checkpoints fold weight norm)

CONVS = (nn.Conv1d, nn.ConvTranspose1d)


def _wrapped(module: nn.Module) -> list[str]:
    return [name for name, m in module.named_modules() if parametrize.is_parametrized(m, "weight")]


def apply_weight_norm(module: nn.Module) -> nn.Module:
    """Wrap every trainable ``Conv1d``/``ConvTranspose1d`` weight of ``module`` with weight norm (in place; returned).

    ``g`` is initialised to ``||w||`` and ``v`` to ``w``, so the module computes the same
    function before and after. Convs already wrapped, and frozen ones (a weight that does not
    require grad, e.g. a fixed filter bank), are left alone.
    """
    for m in module.modules():
        if isinstance(m, CONVS) and m.weight.requires_grad and not parametrize.is_parametrized(m, "weight"):
            weight_norm(m, "weight", dim=0)
    return module


def has_weight_norm(module: nn.Module) -> bool:
    """Whether any weight of ``module`` is parametrised (weight norm)."""
    return bool(_wrapped(module))


def fold_weight_norm(module: nn.Module) -> nn.Module:
    """Replace every parametrised weight by its value ``g v / ||v||`` (in place; returned)."""
    for name in _wrapped(module):
        parametrize.remove_parametrizations(module.get_submodule(name), "weight", leave_parametrized=True)
    return module


def folded_keys(module: nn.Module) -> set[str]:
    """The state-dict keys ``module`` has with its weight norm folded (what checkpoints hold)."""
    names = _wrapped(module)
    fold_weight_norm(module)
    keys = set(module.state_dict())
    for name in names:
        weight_norm(module.get_submodule(name), "weight", dim=0)
    return keys


def load_folded(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load folded weights strictly into ``module``, whether or not it is wrapped with weight norm.

    Wrapped convs are unwrapped, loaded and wrapped again (``g = ||w||``, ``v = w``).

    Raises:
        RuntimeError: from ``load_state_dict(strict=True)`` (missing, unexpected or mis-shaped keys).
    """
    names = _wrapped(module)
    fold_weight_norm(module)
    module.load_state_dict(state, strict=True)
    for name in names:
        weight_norm(module.get_submodule(name), "weight", dim=0)
