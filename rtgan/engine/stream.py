"""Run a whole signal through a block stream, compensating its latency."""
from __future__ import annotations

from typing import Callable, Union

import torch

from ..models.base import Generator
from ..models.ports import input_length, output_length
from .ola import OverlapAdd
from .overlap_save import OverlapSave
from .stateful import StatefulStream

Stream = Union[StatefulStream, OverlapSave, OverlapAdd]
MODES = ("stateful", "overlap-save", "ola")


def make_stream(model: Generator, block_size: int, mode: str = "stateful", runtime: str | None = None,
                threads: int | None = None) -> Stream:
    """A block stream for ``model``.

    Modes: ``"stateful"`` (cached-conv step, exact, cheapest), ``"overlap-save"`` (exact,
    recomputes the receptive field every block) or ``"ola"`` (50 % Hann overlap-add).

    ``runtime``: stateful: ``"onnxruntime"`` (default when installed), ``"torchscript"``,
    ``"eager"``; overlap-save: ``"torchscript"`` (default) or ``"eager"``; ignored by ola.
    ``threads``: ONNX Runtime intra-op threads.

    Raises:
        ValueError: unknown mode or runtime, or a block size < 1.
    """
    if mode == "stateful":
        return StatefulStream(model, block_size, runtime=runtime, threads=threads)
    if mode == "overlap-save":
        runtime = runtime or "torchscript"
        return OverlapSave(model, block_size, runtime=runtime)
    if mode == "ola":
        return OverlapAdd(model, block_size)
    raise ValueError(f"unknown streaming mode {mode!r}; expected one of {MODES}")


@torch.no_grad()
def stream_signal(stream: Stream, x: torch.Tensor, compensate: bool = True,
                  on_block: Callable[[int], None] | None = None) -> torch.Tensor:
    """Feed ``x`` of shape ``(batch, channels_in, frames)`` through ``stream`` block by block.

    With ``compensate=True`` the input is followed by zeros covering ``latency_samples``
    output frames (plus padding to whole blocks) and the first ``latency_samples`` output
    frames are dropped, so the result aligns with the input; otherwise the raw streamed
    output (delayed by the latency) is returned. Either way its length is
    ``model.output_length(frames)``.

    Args:
        on_block: called with the number of input frames consumed after each block (progress).

    Returns:
        ``(batch, channels_out, ceil(frames * rate_ratio))``.
    """
    n = stream.block_size
    t = x.shape[-1]
    ratio = stream.model.rate_ratio
    delay = stream.latency_samples if compensate else 0
    total = -(-(t + input_length(delay, ratio)) // n) * n
    padded = torch.nn.functional.pad(x, (0, total - t))
    state = stream.init_state(x.shape[0], dtype=x.dtype, device=x.device)
    outs = []
    for start in range(0, total, n):
        y, state = stream.step(padded[..., start:start + n], state)
        outs.append(y)
        if on_block is not None:
            on_block(min(n, max(0, t - start)))
    y = torch.cat(outs, dim=-1)
    return y[..., delay:delay + output_length(t, ratio)]
