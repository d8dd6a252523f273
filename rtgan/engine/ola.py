"""Block streaming by 50 % Hann overlap-add (the frame-wise scheme of seed 001).

Frames of ``2 * hop`` samples advance by ``hop``; each frame runs through the generator on
its own (zero-padded inside the model, no shared context), is multiplied by a periodic Hann
window, and overlap-added. A periodic Hann window at 50 % overlap sums to exactly 1, so
an identity model passes audio unchanged. The input is preceded by ``hop`` zeros so the
first output sample already has two overlapping frames. Streaming with ``block_size = hop``
delays output by ``hop`` samples. Cheaper per sample than overlap-save when the receptive
field is long, at the price of frame-edge artefacts that overlap-save does not have.

:class:`LiveOverlapAdd` is the same overlap-add for an audio callback: any block size, each frame
computed by a worker thread while the callbacks go on, one hop more latency for it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models.base import Generator
from .blockstream import BlockStream
from .overlap_save import out_block_size
from .runtime import copy_into


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


@dataclass(frozen=True)
class LiveOLAState:
    """Explicit state of :class:`LiveOverlapAdd` (numpy, never modified in place).

    Attributes:
        waiting: ``(batch, channels_in, < hop)`` input not yet a whole hop.
        previous: ``(batch, channels_in, hop)`` the last whole hop (the next frame's first half).
        tail: ``(batch, channels_out, hop_out)`` the last frame's windowed second half.
        jobs: frames handed to the worker whose output is not yet collected, oldest first.
        pending: ``(batch, channels_out, n)`` output collected but not yet returned.
    """

    waiting: np.ndarray
    previous: np.ndarray
    tail: np.ndarray
    jobs: tuple
    pending: np.ndarray


class LiveOverlapAdd:
    """50 % Hann overlap-add for an audio callback: any block size, each frame computed by a worker
    thread while the callbacks go on.

    The output is :class:`OverlapAdd`'s with ``hop`` (so :func:`offline_ola`'s), delayed further by
    ``2 hop`` output frames of silence at the start. A frame (the last two hops) goes to the worker
    as soon as its second hop is in; its output is needed about one hop later, so a frame may take
    up to a hop of compute without the callback waiting (a callback that must wait for it is late,
    not wrong). Latency: ``3 hop`` output frames: one hop to gather the frame's second half, one of
    overlap (the window's second half waits for the next frame), one for the worker.

    Args:
        model: a generator whose frames run on their own (zero-padded inside, no shared context).
        block_size: input frames per :meth:`step_numpy` call (the callback's block at the model rate).
        hop: frame advance in input frames; frames are ``2 hop`` long (seed 001: 4096, frames of 8192).

    Attributes:
        latency_samples: ``3 * hop * rate_ratio`` output frames behind :func:`offline_ola`
            (``model_latency_samples`` one hop + ``fifo_latency_samples`` two).
        runtime: ``"eager (worker thread)"``.

    Raises:
        ValueError: a block size or hop < 1, or one whose output is not whole frames.
    """

    runtime = "eager (worker thread)"

    def __init__(self, model: Generator, block_size: int, hop: int = 4096) -> None:
        if block_size < 1 or hop < 1:
            raise ValueError(f"block size and hop must be >= 1, got {block_size} and {hop}")
        self.model = model.eval()
        self.block_size = block_size
        self.hop = hop
        self.out_block_size = out_block_size(model, block_size)
        self.hop_out = out_block_size(model, hop)
        self.latency_samples = 3 * self.hop_out
        #: the parts of the latency as the live engine reports them: the overlap (one hop) and the
        #: FIFO (a hop gathered, a hop for the worker)
        self.model_latency_samples = self.hop_out
        self.fifo_latency_samples = 2 * self.hop_out
        self._window = torch.hann_window(2 * self.hop_out, periodic=True)
        from concurrent.futures import ThreadPoolExecutor
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtgan-ola")

    @property
    def latency_ms(self) -> float:
        """Output delay in milliseconds at the model's output rate."""
        return self.model.port_out.ms(self.latency_samples)

    def init_state(self, batch: int = 1, dtype: torch.dtype = torch.float32,
                   device: torch.device | str = "cpu") -> LiveOLAState:
        """Silence before the first block, and ``2 hop`` output frames of it queued (float32 numpy
        arrays: ``dtype`` and ``device`` are accepted for :func:`~rtgan.engine.stream.stream_signal`
        and not used)."""
        c_in, c_out = self.model.port_in.channels, self.model.port_out.channels
        return LiveOLAState(np.zeros((batch, c_in, 0), np.float32), np.zeros((batch, c_in, self.hop), np.float32),
                            np.zeros((batch, c_out, self.hop_out), np.float32), (),
                            np.zeros((batch, c_out, 2 * self.hop_out), np.float32))

    def _frame(self, frame: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return (_run_frames(self.model, torch.from_numpy(frame)) * self._window).numpy()

    def step_numpy(self, block: np.ndarray, state: LiveOLAState,
                   out: np.ndarray | None = None) -> tuple[np.ndarray, LiveOLAState]:
        """One ``(batch, channels_in, block_size)`` float32 block in, ``(batch, channels_out,
        out_block_size)`` out (written into ``out`` when given), and the new state.

        Raises:
            ValueError: a block of another length, or of another batch than the state's.
        """
        if block.shape[-1] != self.block_size:
            raise ValueError(f"expected blocks of {self.block_size} samples, got {block.shape[-1]}")
        if block.shape[0] != state.previous.shape[0]:
            raise ValueError(f"the block has batch {block.shape[0]} but the state was made for batch "
                             f"{state.previous.shape[0]} (make it with init_state({block.shape[0]}))")
        x = np.concatenate([state.waiting, block.astype(np.float32, copy=False)], axis=-1)
        previous, jobs = state.previous, list(state.jobs)
        h = self.hop
        while x.shape[-1] >= h:
            hop = np.ascontiguousarray(x[..., :h])
            jobs.append(self._pool.submit(self._frame, np.concatenate([previous, hop], axis=-1)))
            previous, x = hop, x[..., h:]
        pending, tail, m = state.pending, state.tail, self.hop_out
        # collect finished frames in order; wait only when the output would run short
        while jobs and (jobs[0].done() or pending.shape[-1] < self.out_block_size):
            y = jobs.pop(0).result()
            pending = np.concatenate([pending, tail + y[..., :m]], axis=-1)
            tail = y[..., m:]
        n = self.out_block_size
        return copy_into(pending[..., :n], out), LiveOLAState(x, previous, tail, tuple(jobs), pending[..., n:])

    def step(self, block: torch.Tensor, state: LiveOLAState) -> tuple[torch.Tensor, LiveOLAState]:
        """:meth:`step_numpy` on a tensor (for :func:`rtgan.engine.stream.stream_signal`)."""
        y, state = self.step_numpy(block.detach().cpu().numpy(), state)
        return torch.from_numpy(y), state
