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


def context(model: Generator) -> tuple[int, int]:
    """``(left, right)`` context in input samples, aligned to the model's total stride."""
    r = model.reach()
    s = model.total_stride
    return _ceil_to(r.left, s), _ceil_to(r.right, s)


@torch.no_grad()
def offline(model: Generator, x: torch.Tensor) -> torch.Tensor:
    """Whole-file inference in the framing the streaming engines reproduce.

    ``x`` of shape ``(batch, 1, samples)`` is zero-padded by the aligned left context,
    the aligned lookahead plus up to ``S - 1`` samples to reach a multiple of ``S``; the model
    runs once and the output is cropped back to ``samples``.

    Returns:
        ``(batch, 1, samples)`` output at ``model.sample_rate_out``.
    """
    left, right = context(model)
    t = x.shape[-1]
    tail = right + (_ceil_to(t, model.total_stride) - t)
    y = model(torch.nn.functional.pad(x, (left, tail)))
    return y[..., left:left + t]


@dataclass
class OverlapSaveState:
    """Explicit state of :class:`OverlapSave`.

    Attributes:
        history: ``(batch, 1, H)`` input not yet consumed, starting ``left`` samples before
            the next output position to compute.
        pending: ``(batch, 1, P)`` computed output not yet emitted.
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
        left, right: aligned context and lookahead in samples (see :func:`context`).
        latency_samples: output delay in samples (lookahead + stride alignment).
    """

    def __init__(self, model: Generator, block_size: int, runtime: str = "eager") -> None:
        if block_size < 1:
            raise ValueError(f"block size must be >= 1, got {block_size}")
        self.model = model.eval()
        self.block_size = block_size
        self.stride = model.total_stride
        self.left, self.right = context(model)
        self.latency_samples = self.right + self.stride - math.gcd(block_size, self.stride)
        self.runtime = runtime
        self._forward = compile_forward(self.model, runtime, self.samples_per_call)

    @property
    def latency_ms(self) -> float:
        """Output delay in milliseconds at the model's output rate."""
        return 1000.0 * self.latency_samples / self.model.sample_rate_out

    @property
    def samples_per_call(self) -> int:
        """Input samples one model call processes for an ``N``-sample block (when ``S`` divides ``N``)."""
        return self.left + _ceil_to(self.block_size, self.stride) + self.right

    def init_state(self, batch: int = 1, dtype: torch.dtype = torch.float32,
                   device: torch.device | str = "cpu") -> OverlapSaveState:
        """Initial state: ``left`` zeros of history, ``latency`` zeros of pending output."""
        return OverlapSaveState(torch.zeros(batch, 1, self.left, dtype=dtype, device=device),
                                torch.zeros(batch, 1, self.latency_samples, dtype=dtype, device=device))

    @torch.no_grad()
    def step(self, block: torch.Tensor, state: OverlapSaveState) -> tuple[torch.Tensor, OverlapSaveState]:
        """Process one block.

        Args:
            block: ``(batch, 1, block_size)`` input.
            state: from :meth:`init_state` or the previous step.

        Returns:
            ``(batch, 1, block_size)`` output delayed by :attr:`latency_samples`, new state.

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
            pending = torch.cat([pending, y[..., self.left: self.left + n]], dim=-1)
            history = history[..., n:]
        out = pending[..., : self.block_size]
        return out, OverlapSaveState(history, pending[..., self.block_size:])
