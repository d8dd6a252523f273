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
from .overlap_save import out_block_size


def _run_frames(model: Generator, frames: torch.Tensor) -> torch.Tensor:
    """Model on ``(batch, channels_in, L)`` frames, zero-padded on the right to a multiple of the
    stride; returns ``(batch, channels_out, L * rate_ratio)``."""
    length = frames.shape[-1]
    pad = -length % model.total_stride
    y = model(torch.nn.functional.pad(frames, (0, pad)))
    return y[..., :model.output_length(length)]


@torch.no_grad()
def offline_ola(model: Generator, x: torch.Tensor, hop: int) -> torch.Tensor:
    """Whole-file 50 % Hann overlap-add: ``(batch, channels_in, frames)`` ->
    ``(batch, channels_out, ceil(frames * rate_ratio))``.

    Input frames of ``2 hop`` advance by ``hop``; the output frames (``2 hop r`` long,
    ``r = model.rate_ratio``) are windowed and overlap-added at ``hop r``.

    Raises:
        ValueError: ``hop < 1``, or ``hop * rate_ratio`` not whole.
    """
    if hop < 1:
        raise ValueError("hop must be >= 1")
    b, c, t = x.shape
    hop_out = out_block_size(model, hop)
    n_frames = -(-t // hop) + 1
    padded = torch.nn.functional.pad(x, (hop, n_frames * hop + hop - t - hop))
    window = torch.hann_window(2 * hop_out, periodic=True, dtype=x.dtype, device=x.device)
    frames = padded.unfold(-1, 2 * hop, hop)  # (batch, c, n_frames, 2*hop)
    frames = frames.permute(0, 2, 1, 3).reshape(-1, c, 2 * hop)
    y = _run_frames(model, frames) * window  # (batch * n_frames, c_out, 2*hop_out)
    c_out = y.shape[1]
    y = y.reshape(b, n_frames, c_out * 2 * hop_out).transpose(1, 2)
    out = torch.nn.functional.fold(y, output_size=(1, (n_frames + 1) * hop_out),
                                   kernel_size=(1, 2 * hop_out), stride=(1, hop_out))
    return out.reshape(b, c_out, -1)[..., hop_out:hop_out + model.output_length(t)]


@dataclass
class OLAState:
    """Explicit state of :class:`OverlapAdd`: the previous input block and the pending window tail."""

    previous: torch.Tensor  # (batch, channels_in, hop)
    tail: torch.Tensor  # (batch, channels_out, hop * rate_ratio)


class OverlapAdd(BlockStream):
    """Stream a generator by 50 % Hann overlap-add with ``hop = block_size``.

    Attributes:
        out_block_size: ``hop * rate_ratio`` output frames per block.
        latency_samples: one output block; output equals :func:`offline_ola` delayed by it.

    Raises:
        ValueError: block size < 1 or one whose output is not whole frames.
    """

    def __init__(self, model: Generator, block_size: int) -> None:
        if block_size < 1:
            raise ValueError(f"block size must be >= 1, got {block_size}")
        self.model = model.eval()
        self.block_size = block_size
        self.out_block_size = out_block_size(model, block_size)
        self.latency_samples = self.out_block_size
        self.window = torch.hann_window(2 * self.out_block_size, periodic=True)

    @property
    def latency_ms(self) -> float:
        """Output delay in milliseconds at the model's output rate."""
        return self.model.port_out.ms(self.latency_samples)

    def init_state(self, batch: int = 1, dtype: torch.dtype = torch.float32,
                   device: torch.device | str = "cpu") -> OLAState:
        """Initial state: silence before the first block."""
        return OLAState(torch.zeros(batch, self.model.port_in.channels, self.block_size, dtype=dtype, device=device),
                        torch.zeros(batch, self.model.port_out.channels, self.out_block_size, dtype=dtype,
                                    device=device))

    @torch.no_grad()
    def step(self, block: torch.Tensor, state: OLAState) -> tuple[torch.Tensor, OLAState]:
        """Process one ``(batch, channels_in, hop)`` block; returns ``(batch, channels_out, hop r)``
        output delayed by one block, and the new state."""
        if block.shape[-1] != self.block_size:
            raise ValueError(f"expected blocks of {self.block_size} samples, got {block.shape[-1]}")
        frame = torch.cat([state.previous, block], dim=-1)
        y = _run_frames(self.model, frame) * self.window.to(dtype=block.dtype, device=block.device)
        m = self.out_block_size
        return state.tail + y[..., :m], OLAState(block, y[..., m:])
