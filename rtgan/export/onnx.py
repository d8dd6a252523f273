"""Export a generator's streaming step to ONNX.

The exported graph is the model's :meth:`~rtgan.models.base.Generator.step`, with the state
as plain inputs and outputs::

    (x, state_0, ..., state_{k-1}) -> (y, new_state_0, ..., new_state_{k-1})

``x`` is ``(batch, channels_in, samples)`` (``samples`` a multiple of the model's stream
granule) and ``y`` is ``(batch, channels_out, samples * rate_ratio)``; each state is ``(batch, channels, frames)``. Shapes are fixed at export
(``dynamic=False``, the default) or batch and samples are dynamic: fixed shapes let ONNX
Runtime fold every reshape and run about 25 % faster at block 256, so the engine exports one
graph per block length it will run. ONNX Runtime runs this graph with about a microsecond of overhead per
operator, which is what makes a 256-sample stateful step as cheap as offline inference on a
small network (see README, bench).
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from ..fileio import atomic_write
from ..models.base import Generator

OPSET = 17


class StepModule(nn.Module):
    """``forward(x, *state) -> (y, *new_state)``: the step as a module with flat tensor I/O."""

    def __init__(self, model: Generator) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new = self.model.step(x, state)
        return (y,) + tuple(new)


def step_io_names(model: Generator) -> tuple[list[str], list[str]]:
    """Input and output names of the exported step: ``x, state_i`` and ``y, new_state_i``."""
    k = len(model.state_shapes())
    return ["x"] + [f"state_{i}" for i in range(k)], ["y"] + [f"new_state_{i}" for i in range(k)]


@torch.no_grad()
def export_step_onnx(model: Generator, path: str | Path | None = None, block_size: int | None = None,
                     batch: int = 1, dynamic: bool = False) -> bytes:
    """Export ``model.step`` to ONNX (opset 17, the TorchScript-based exporter).

    Args:
        model: generator in eval mode, on the CPU.
        path: where to write the ``.onnx`` file (atomically); ``None`` to only return the bytes.
        block_size: samples per step (default: 16 granules); a multiple of the granule.
        batch: streams per step.
        dynamic: make batch and samples dynamic axes (any batch, any multiple of the granule).

    Returns:
        The serialized ONNX model.
    """
    model = model.eval()
    g = model.stream_granule
    n = block_size or 16 * g
    x = torch.zeros(batch, model.port_in.channels, n)
    state = model.init_state(batch)
    inputs, outputs = step_io_names(model)
    axes = None
    if dynamic:
        axes = {"x": {0: "batch", 2: "samples"}, "y": {0: "batch", 2: "samples" if model.rate_ratio == 1 else "out_samples"}}
        for name in inputs[1:] + outputs[1:]:
            axes[name] = {0: "batch"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape checks, deprecation of the legacy exporter
        torch.onnx.export(StepModule(model), (x, *state), buf, dynamo=False, opset_version=OPSET,
                          input_names=inputs, output_names=outputs, dynamic_axes=axes)
    data = buf.getvalue()
    if path is not None:
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return data
