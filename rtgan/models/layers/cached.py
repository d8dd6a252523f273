"""Stateful streaming primitives: cached convolutions, delay lines and phase alignment.

A generator streams by running the same layers as its offline ``forward`` on one block at a
time, with every piece of memory passed in and out explicitly (the scheme of cached_conv,
Caillon & Esling 2022, with the state lifted out of the modules so one traced step graph
exports to ONNX and TensorRT).

Bookkeeping: inside a stream, a tensor at stride ``s`` (input samples per frame) carries a
*delay* ``d`` in frames: streamed frame ``m`` equals offline frame ``m - d``. The primitives
below map ``(tensor, delay)`` to ``(tensor, delay)``:

* a stride-1 conv with offline padding ``(left, right)`` and dilation ``D`` runs with padding
  0 behind a cache of its last ``(k - 1) * D`` input frames; it becomes causal, so its
  output is late by ``right`` more frames (its lookahead);
* a delay line holds ``n`` frames: used to bring parallel branches and skips to the delay
  of the slowest one, and to align a tensor's delay to a multiple of a superpixel factor
  (pixel-unshuffle folds frames ``(r t, ..., r t + r - 1)``; a stream can only fold the same
  frames if its delay is a multiple of ``r``);
* pixel-unshuffle divides the delay by ``r``; pixel-shuffle multiplies it by ``r`` (a reshape);
* a conv with stride ``f`` aligns its phase inside its cache and divides the delay by ``f``; a
  transposed conv with stride ``f`` multiplies it by ``f`` (see :mod:`.strided`);
* per-frame layers (activations, per-channel affines) leave it unchanged (see :mod:`.pointwise`).

The delays are Python integers fixed by the architecture, so the control flow of a step is
static: tracing it records only tensor operations.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .conv import PaddedConv1d


class StateCursor:
    """Hands out a flat tuple of state tensors in order and collects their successors.

    In *init* mode (``state=None``) every :meth:`take` returns zeros of the requested shape,
    which is how :meth:`rtgan.models.base.Generator.init_state` discovers the state layout by
    running one step.

    Args:
        state: the state tuple of the previous step, or ``None`` for zeros.
        batch: batch size (used in init mode).
        like: a tensor whose dtype and device zero states take.

    Raises:
        ValueError: (from :meth:`take`) when a given state tensor has the wrong shape (its
            batch size included: it must be ``batch``), or from :meth:`finish` when states
            were left unread.
    """

    def __init__(self, state: Sequence[torch.Tensor] | None, batch: int, like: torch.Tensor) -> None:
        self.state = None if state is None else tuple(state)
        self.batch = batch
        self.like = like
        self.index = 0
        self.new: list[torch.Tensor] = []

    def take(self, channels: int, frames: int) -> torch.Tensor:
        """The next state tensor, ``(batch, channels, frames)``."""
        if self.state is None:
            return self.like.new_zeros(self.batch, channels, frames)
        if self.index >= len(self.state):
            raise ValueError(f"state has {len(self.state)} tensors; the model needs more")
        t = self.state[self.index]
        self.index += 1
        if t.dim() != 3 or t.shape[1] != channels or t.shape[2] != frames:
            raise ValueError(f"state tensor {self.index - 1} has shape {tuple(t.shape)}, "
                             f"expected (batch, {channels}, {frames})")
        if t.shape[0] != self.batch:
            raise ValueError(f"state tensor {self.index - 1} has shape {tuple(t.shape)}: a state for batch "
                             f"{t.shape[0]}, but the block has batch {self.batch} (make the state with "
                             f"init_state({self.batch}))")
        return t

    def put(self, t: torch.Tensor) -> None:
        """Record the successor of the tensor last taken."""
        self.new.append(t)

    def finish(self) -> tuple[torch.Tensor, ...]:
        """The new state tuple.

        Raises:
            ValueError: if the given state had tensors the step never read.
        """
        if self.state is not None and self.index != len(self.state):
            raise ValueError(f"state has {len(self.state)} tensors; the model used {self.index}")
        return tuple(self.new)


def cached_conv(conv: PaddedConv1d, x: torch.Tensor, delay: int, cur: StateCursor) -> tuple[torch.Tensor, int]:
    """Stream a :class:`PaddedConv1d`: ``(batch, C_in, n)`` -> ``(batch, C_out, n)``.

    The conv reads its cache of ``(k - 1) * dilation`` past frames and the block, with no
    padding; the output delay grows by the conv's right padding (its lookahead).
    """
    k = conv.conv.kernel_size[0]
    return conv.conv(with_history(x, (k - 1) * conv.conv.dilation[0], cur)), delay + conv.padding[1]


def with_history(x: torch.Tensor, memory: int, cur: StateCursor) -> torch.Tensor:
    """The block ``(batch, C, n)`` preceded by its ``memory`` past frames from the cache:
    ``(batch, C, memory + n)``; the cache then holds the last ``memory`` frames. What a causal
    filter of ``memory + 1`` taps reads, applied without padding (identity for 0)."""
    if memory:
        x = torch.cat([cur.take(x.shape[1], memory), x], dim=-1)
        cur.put(x[..., x.shape[-1] - memory:])
    return x


def delay_line(x: torch.Tensor, frames: int, cur: StateCursor) -> torch.Tensor:
    """Delay ``(batch, C, n)`` by ``frames`` frames (identity for 0)."""
    if frames == 0:
        return x
    n = x.shape[-1]
    x = torch.cat([cur.take(x.shape[1], frames), x], dim=-1)
    cur.put(x[..., n:])
    return x[..., :n]


def align(parts: Sequence[tuple[torch.Tensor, int]], cur: StateCursor) -> tuple[list[torch.Tensor], int]:
    """Delay every ``(tensor, delay)`` to the largest delay among them; returns tensors and that delay."""
    target = max(d for _, d in parts)
    return [delay_line(t, target - d, cur) for t, d in parts], target


def align_phase(x: torch.Tensor, delay: int, factor: int, cur: StateCursor) -> tuple[torch.Tensor, int]:
    """Delay ``x`` so its delay is a multiple of ``factor`` (needed before pixel-unshuffle)."""
    extra = -delay % factor
    return delay_line(x, extra, cur), delay + extra

