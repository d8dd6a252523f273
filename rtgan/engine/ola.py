"""Block streaming by 50 % Hann overlap-add (the frame-wise scheme of seed 001).

Frames of ``2 * hop`` samples advance by ``hop``; each frame runs through the generator on
its own (zero-padded inside the model, no shared context), is multiplied by a periodic Hann
window, and overlap-added. A periodic Hann window at 50 % overlap sums to exactly 1, so
an identity model passes audio unchanged. The input is preceded by ``hop`` zeros so the
first output sample already has two overlapping frames. Streaming with ``block_size = hop``
delays output by ``hop`` samples. Cheaper per sample than overlap-save when the receptive
field is long, at the price of frame-edge artefacts that overlap-save does not have.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.base import Generator
from .blockstream import BlockStream


def _run_frames(model: Generator, frames: torch.Tensor) -> torch.Tensor:
    """Model on ``(batch, 1, L)`` frames, zero-padded on the right to a multiple of the stride."""
    length = frames.shape[-1]
    pad = -length % model.total_stride
    y = model(torch.nn.functional.pad(frames, (0, pad)))
    return y[..., :length]


@torch.no_grad()
def offline_ola(model: Generator, x: torch.Tensor, hop: int) -> torch.Tensor:
    """Whole-file 50 % Hann overlap-add; ``(batch, 1, samples)`` -> same shape.

    Raises:
        ValueError: if ``hop < 1``.
    """
    if hop < 1:
        raise ValueError("hop must be >= 1")
    b, _, t = x.shape
    n_frames = -(-t // hop) + 1
    padded = torch.nn.functional.pad(x, (hop, n_frames * hop + hop - t - hop))
    window = torch.hann_window(2 * hop, periodic=True, dtype=x.dtype, device=x.device)
    frames = padded.unfold(-1, 2 * hop, hop)[:, 0]  # (batch, n_frames, 2*hop)
    y = _run_frames(model, frames.reshape(-1, 1, 2 * hop)).reshape(b, -1, 2 * hop) * window
    out = torch.nn.functional.fold(y.transpose(1, 2), output_size=(1, (n_frames + 1) * hop),
                                   kernel_size=(1, 2 * hop), stride=(1, hop))
    return out.reshape(b, 1, -1)[..., hop:hop + t]


@dataclass
class OLAState:
    """Explicit state of :class:`OverlapAdd`: the previous input block and the pending window tail."""

    previous: torch.Tensor  # (batch, 1, hop)
    tail: torch.Tensor  # (batch, 1, hop)


class OverlapAdd(BlockStream):
    """Stream a generator by 50 % Hann overlap-add with ``hop = block_size``.

    Attributes:
        latency_samples: ``hop``; output equals :func:`offline_ola` delayed by it.
    """

    def __init__(self, model: Generator, block_size: int) -> None:
        if block_size < 1:
            raise ValueError(f"block size must be >= 1, got {block_size}")
        self.model = model.eval()
        self.block_size = block_size
        self.latency_samples = block_size
        self.window = torch.hann_window(2 * block_size, periodic=True)

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.model.sample_rate_out

    def init_state(self, batch: int = 1, dtype: torch.dtype = torch.float32,
                   device: torch.device | str = "cpu") -> OLAState:
        """Initial state: silence before the first block."""
        z = torch.zeros(batch, 1, self.block_size, dtype=dtype, device=device)
        return OLAState(z, z.clone())

    @torch.no_grad()
    def step(self, block: torch.Tensor, state: OLAState) -> tuple[torch.Tensor, OLAState]:
        """Process one ``(batch, 1, hop)`` block; returns output delayed by ``hop`` and new state."""
        if block.shape[-1] != self.block_size:
            raise ValueError(f"expected blocks of {self.block_size} samples, got {block.shape[-1]}")
        frame = torch.cat([state.previous, block], dim=-1)
        y = _run_frames(self.model, frame) * self.window.to(dtype=block.dtype, device=block.device)
        out = state.tail + y[..., : self.block_size]
        return out, OLAState(block, y[..., self.block_size:])
