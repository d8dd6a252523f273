"""Runtimes that execute a generator's forward pass inside the streaming engine.

On a small network the per-op overhead of eager PyTorch dominates a 256-sample block, so the
engine runs a frozen TorchScript graph by default (traced once, constants folded, the same
numbers as eager). ``eager`` stays available for models that cannot be traced.
"""
from __future__ import annotations

import logging
import warnings
from typing import Callable

import torch

from ..models.base import Generator

log = logging.getLogger(__name__)

RUNTIMES = ("torchscript", "eager")


def compile_forward(model: Generator, runtime: str, example_samples: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable computing ``model(x)`` for ``x`` of shape ``(batch, 1, samples)``.

    Args:
        runtime: ``"eager"`` (the module itself) or ``"torchscript"`` (``torch.jit.trace`` on an
            input of ``example_samples`` samples, then ``torch.jit.freeze`` and
            ``optimize_for_inference``; falls back to eager with a warning if tracing fails).
        example_samples: trace length; a multiple of the model's total stride.

    Raises:
        ValueError: unknown runtime.
    """
    if runtime == "eager":
        return model
    if runtime != "torchscript":
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {RUNTIMES}")
    example = torch.zeros(1, model.channels, example_samples, device=next(model.parameters()).device)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # optimize_for_inference is deprecated, still works
            traced = torch.jit.trace(model.eval(), example, check_trace=False)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    except Exception as e:  # noqa: BLE001 - any tracing failure means: run eagerly
        log.warning("TorchScript tracing of %s failed (%s); running eagerly", getattr(model, "name", model), e)
        return model
