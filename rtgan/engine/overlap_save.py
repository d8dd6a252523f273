"""Block streaming by overlap-save, and the whole-file inference it reproduces exactly.

Each model call sees exactly the left context and lookahead the receptive field needs,
aligned to the model's total stride ``S``:

* ``left  = ceil(reach.left  / S) * S`` past input samples,
* ``right = ceil(reach.right / S) * S`` future input samples.

With blocks of ``N`` samples the engine can emit a block only once enough lookahead has
arrived, so output is delayed by ``latency = right + S - gcd(N, S)`` samples: ``right`` for
the lookahead and ``S - gcd(N, S)`` for the worst misalignment of block boundaries to
stride granules (0 when ``N`` is a multiple of ``S``). Streamed output then equals
:func:`offline` shifted by ``latency`` samples (exactly, up to float rounding).

Input and output may differ in rate (the model's ports): with ``r = model.rate_ratio`` a
block of ``N`` input frames gives ``N r`` output frames (``N r`` must be whole) and the
latency above is ``(right + S - gcd(N, S)) r`` output frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..models.base import Generator
from .runtime import compile_forward
from .blockstream import BlockStream


def _ceil_to(n: int, s: int) -> int:
    return -(-n // s) * s


def out_block_size(model: Generator, block_size: int) -> int:
    """Output frames for a block of ``block_size`` input frames.

    Raises:
        ValueError: ``block_size * model.rate_ratio`` is not whole (say which block sizes are).
    """
    m = block_size * model.rate_ratio
    if m.denominator != 1:
        q = model.rate_ratio.denominator
        raise ValueError(f"a block of {block_size} input frames gives {m} output frames at rate ratio "
                         f"{model.rate_ratio}; use a multiple of {q}")
    return int(m)


def context(model: Generator) -> tuple[int, int]:
    """``(left, right)`` context in input samples, aligned to the model's total stride."""
    r = model.reach().whole()
    s = model.total_stride
    return _ceil_to(r.left, s), _ceil_to(r.right, s)


@torch.no_grad()
def offline(model: Generator, x: torch.Tensor) -> torch.Tensor:
    """Whole-file inference in the framing the streaming engines reproduce.

    ``x`` of shape ``(batch, channels_in, frames)`` is zero-padded by the aligned left
    context, the aligned lookahead plus up to ``S - 1`` frames to reach a multiple of ``S``;
    the model runs once and the output is cropped to ``model.output_length(frames)``.

    Returns:
        ``(batch, channels_out, ceil(frames * rate_ratio))`` output at ``model.port_out.rate``.
    """
    left, right = context(model)
    t = x.shape[-1]
    tail = right + (_ceil_to(t, model.total_stride) - t)
    y = model(torch.nn.functional.pad(x, (left, tail)))
    start = model.output_length(left)
    return y[..., start:start + model.output_length(t)]


@dataclass
class OverlapSaveState:
    """Explicit state of :class:`OverlapSave`.

    Attributes:
        history: ``(batch, channels_in, H)`` input not yet consumed, starting ``left`` frames
            before the next output position to compute.
        pending: ``(batch, channels_out, P)`` computed output not yet emitted.
    """

    history: torch.Tensor
    pending: torch.Tensor


class OverlapSave(BlockStream):
    """Stream a generator over fixed-size blocks by overlap-save.

    Args:
        model: any registered generator (eval mode is set here).
        block_size: samples per block ``N`` (any positive integer).
        runtime: ``"eager"`` or ``"torchscript"`` (see :func:`rtgan.engine.runtime.compile_forward`).

    Attributes:
        left, right: aligned context and lookahead in input frames (see :func:`context`).
        out_block_size: output frames per block, ``block_size * rate_ratio``.
        latency_samples: output delay in output frames (lookahead + stride alignment).

    Raises:
        ValueError: block size < 1, or one whose output is not a whole number of frames, or a
            model whose output depends on the sample index (:attr:`Generator.index_period`).
    """

    def __init__(self, model: Generator, block_size: int, runtime: str = "eager") -> None:
        if block_size < 1:
            raise ValueError(f"block size must be >= 1, got {block_size}")
        if model.index_period > 1:
            raise ValueError(f"{model.name or type(model).__name__} depends on the sample index modulo "
                             f"{model.index_period} (a modulation), which overlap-save's calls do not carry; "
                             "stream it with the stateful engine")
        self.model = model.eval()
        self.block_size = block_size
        self.out_block_size = out_block_size(model, block_size)
        self.stride = model.total_stride
        self.left, self.right = context(model)
        self._left_out = model.output_length(self.left)
        self.latency_samples = model.output_length(self.right + self.stride - math.gcd(block_size, self.stride))
        self.runtime = runtime
        self._forward = compile_forward(self.model, runtime, self.samples_per_call)

    @property
    def latency_ms(self) -> float:
        """Output delay in milliseconds at the model's output rate."""
        return self.model.port_out.ms(self.latency_samples)

    @property
    def samples_per_call(self) -> int:
        """Input samples one model call processes for an ``N``-sample block (when ``S`` divides ``N``)."""
        return self.left + _ceil_to(self.block_size, self.stride) + self.right

    def init_state(self, batch: int = 1, dtype: torch.dtype = torch.float32,
                   device: torch.device | str = "cpu") -> OverlapSaveState:
        """Initial state: ``left`` zeros of history, ``latency`` zeros of pending output."""
        c_in, c_out = self.model.port_in.channels, self.model.port_out.channels
        return OverlapSaveState(torch.zeros(batch, c_in, self.left, dtype=dtype, device=device),
                                torch.zeros(batch, c_out, self.latency_samples, dtype=dtype, device=device))

    @torch.no_grad()
    def step(self, block: torch.Tensor, state: OverlapSaveState) -> tuple[torch.Tensor, OverlapSaveState]:
        """Process one block.

        Args:
            block: ``(batch, channels_in, block_size)`` input.
            state: from :meth:`init_state` or the previous step.

        Returns:
            ``(batch, channels_out, out_block_size)`` output delayed by :attr:`latency_samples`,
            new state.

        Raises:
            ValueError: on a block of the wrong size.
        """
        if block.shape[-1] != self.block_size:
            raise ValueError(f"expected blocks of {self.block_size} samples, got {block.shape[-1]}")
        history = torch.cat([state.history, block], dim=-1)
        pending = state.pending
        n = (history.shape[-1] - self.left - self.right) // self.stride * self.stride
        if n > 0:
            y = self._forward(history[..., : self.left + n + self.right])
            m = self.model.output_length(n)
            pending = torch.cat([pending, y[..., self._left_out: self._left_out + m]], dim=-1)
            history = history[..., n:]
        out = pending[..., : self.out_block_size]
        return out, OverlapSaveState(history, pending[..., self.out_block_size:])
