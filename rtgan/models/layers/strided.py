"""Strided and transposed 1-D convolutions, offline and cached for streaming.

Conv arithmetic follows Dumoulin & Visin (2016, "A guide to convolution arithmetic for deep
learning"): a conv with kernel ``k`` and stride ``f`` over ``n + pad`` frames gives
``floor((n + pad - k) / f) + 1`` frames, and its transpose gives ``(n - 1) * f + k``. Both
layers here are padded/trimmed so that lengths scale exactly by the stride (``n -> n / f``
and ``n -> n * f``), as a fully convolutional generator needs.

Streaming follows the cached convolutions of RAVE (Caillon & Esling 2021, "Streamable
neural audio synthesis with non-causal convolutions", the ``cached_conv`` package), with the
state lifted out of the modules into a :class:`.cached.StateCursor` (see :mod:`.cached` for
the ``(tensor, delay)`` bookkeeping):

* :func:`cached_strided_conv` keeps the last input frames the next block's first window
  needs; it also shifts its windows so that they fold the same input frames as offline (a
  strided conv's output frame ``t`` starts at input frame ``t*f - pad_left``, so the stream
  must see those frames at a block offset that is a multiple of ``f``);
* :func:`cached_transposed_conv` is an overlap-add: each block's transposed conv spills
  ``k - f`` frames of partial sums past its end, kept as state and added to the next block's
  first frames.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cached import StateCursor, with_history
from .conv import PADDING_MODES, conv_padding
from .reach import Reach


def strided_padding(kernel_size: int, stride: int, mode: str) -> tuple[int, int]:
    """Zero padding ``(left, right)`` in frames that makes a strided conv map ``n`` frames to ``n / stride``.

    The total is ``kernel_size - stride``: output frame ``t`` covers input frames
    ``t*stride .. t*stride + stride - 1`` (its granule) and reads ``pad_left`` frames before
    it and ``pad_right`` after it. ``causal``: all on the left (no frame after the granule);
    ``centered``: split as evenly as possible, the extra frame on the left (the window is
    centred on the granule).

    Raises:
        ValueError: an unknown mode, a stride < 1, or a kernel shorter than the stride
            (it would skip input frames).
    """
    if stride < 1:
        raise ValueError(f"a stride must be >= 1, got {stride}")
    if kernel_size < stride:
        raise ValueError(f"a strided conv needs kernel_size >= stride, got {kernel_size} < {stride}")
    return conv_padding(kernel_size - stride + 1, mode)


class StridedConv1d(nn.Module):
    """Conv with stride ``f``: ``(batch, in_channels, n)`` -> ``(batch, out_channels, n / f)``.

    Zero padding :func:`strided_padding` is applied explicitly (the conv itself has padding
    0), so the streaming form (:meth:`stream`, :func:`cached_strided_conv`) replaces it by a
    cache. Output frame ``t`` reads input frames ``t*f - pad_left .. t*f + f - 1 + pad_right``.

    Args:
        in_channels, out_channels: channels.
        kernel_size: ``k >= stride``.
        stride: ``f >= 1``, the downsampling factor.
        mode: ``"causal"`` or ``"centered"`` (see :func:`strided_padding`).
        bias: whether the conv has a bias.

    Raises:
        ValueError: from :func:`strided_padding`; from :meth:`forward` when ``n`` is not a
            multiple of ``f``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 mode: str = "centered", bias: bool = True) -> None:
        super().__init__()
        self.stride = stride
        self.padding = strided_padding(kernel_size, stride, mode)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.stride:
            raise ValueError(f"a conv with stride {self.stride} needs a length divisible by it, got {x.shape[-1]}")
        if self.padding != (0, 0):
            x = F.pad(x, self.padding)
        return self.conv(x)

    def reach(self, r: Reach) -> Reach:
        """Stride times ``f``; bounds grow by the padding times the input's stride."""
        return r.downsample(self.stride, *self.padding)

    def stream(self, x: torch.Tensor, delay: int, cur: StateCursor) -> tuple[torch.Tensor, int]:
        """Streaming form: :func:`cached_strided_conv`."""
        return cached_strided_conv(self, x, delay, cur)


def cached_strided_conv(layer: StridedConv1d, x: torch.Tensor, delay: int,
                        cur: StateCursor) -> tuple[torch.Tensor, int]:
    """Stream a :class:`StridedConv1d`: ``(batch, C_in, n)`` at ``delay`` -> ``(batch, C_out, n / f)``.

    ``n`` must be a multiple of ``f`` and blocks must start at multiples of ``f`` frames of
    the stream (consecutive blocks whose lengths are multiples of ``f``, from frame 0); see
    :func:`strided_windows`.

    Raises:
        ValueError: a block whose length is not a multiple of ``f``.
    """
    x, delay = strided_windows(x, delay, cur, layer.conv.kernel_size[0], layer.stride, layer.padding[1])
    return layer.conv(x), delay


def strided_windows(x: torch.Tensor, delay: int, cur: StateCursor, kernel_size: int, stride: int,
                    pad_right: int) -> tuple[torch.Tensor, int]:
    """The frames a stride-``f`` window op (a conv, an STFT) reads in one block, and its output delay.

    For any layer whose output frame ``t`` reads input frames ``t*f - pad_left .. t*f + f - 1 +
    pad_right`` (``kernel_size = pad_left + f + pad_right``). Offline output frame ``t`` reads
    input frames from ``t*f - pad_left``; streamed frame ``i`` is offline frame ``i - delay``. A
    window starting at block offset ``j*f`` therefore folds offline frames of the right phase
    only if ``delay + pad_right`` is a multiple of ``f``; the windows are read ``extra = -(delay
    + pad_right) mod f`` frames earlier (a phase alignment folded into the cache, so no separate
    delay line is needed). The cache holds ``k - f + extra`` frames.

    Returns:
        ``(frames, delay)``: the ``(batch, C, n + k - f)`` frames to run the layer on with no
        padding and stride ``f`` (``n / f`` windows), and the output's delay in output frames,
        ``(delay + extra + pad_right) / f``.

    Raises:
        ValueError: a block whose length is not a multiple of ``f``.
    """
    f = stride
    n = x.shape[-1]
    if n % f:
        raise ValueError(f"a streamed conv with stride {f} needs blocks of a multiple of {f} frames, got {n}")
    extra = -(delay + pad_right) % f
    memory = kernel_size - f + extra
    x = with_history(x, memory, cur)
    if extra:
        x = x[..., : x.shape[-1] - extra]
    return x, (delay + extra + pad_right) // f


def transposed_crop(kernel_size: int, stride: int, mode: str) -> int:
    """Frames cut from the start of a transposed conv's full output (``crop_left``).

    The full output of ``n`` frames has ``(n - 1) * f + k`` frames; ``k - f`` of them are cut,
    ``crop_left`` at the start and the rest at the end, leaving ``n * f``. Input frame ``u``
    then contributes to output frames ``u*f - crop_left .. u*f - crop_left + k - 1``.
    ``causal``: ``crop_left = 0``: output frame ``m`` sums only input frames up to the one
    whose granule holds it, ``floor(m / f)``. ``centered``: ``(k - f) // 2``: each input
    frame's contribution is centred on its granule, the odd frame towards the past.

    Raises:
        ValueError: an unknown mode, a stride < 1, or a kernel shorter than the stride
            (output frames that no input frame reaches).
    """
    if stride < 1:
        raise ValueError(f"a stride must be >= 1, got {stride}")
    if kernel_size < stride:
        raise ValueError(f"a transposed conv needs kernel_size >= stride, got {kernel_size} < {stride}")
    if mode == "causal":
        return 0
    if mode == "centered":
        return (kernel_size - stride) // 2
    raise ValueError(f"unknown padding mode {mode!r}; expected one of {PADDING_MODES}")


class TransposedConv1d(nn.Module):
    """Transposed conv with stride ``f``: ``(batch, in_channels, n)`` -> ``(batch, out_channels, n * f)``.

    ``nn.ConvTranspose1d`` (padding 0) whose full output is trimmed by ``crop_left``
    (:func:`transposed_crop`) frames at the start and ``k - f - crop_left`` at the end.
    Output frame ``m`` sums input frames ``u`` with ``0 <= m + crop_left - u*f < k``.
    The streaming form (:meth:`stream`, :func:`cached_transposed_conv`) is an overlap-add.

    Args:
        in_channels, out_channels: channels.
        kernel_size: ``k >= stride``, any ``k`` (not only multiples of the stride).
        stride: ``f >= 1``, the upsampling factor.
        mode: ``"causal"`` or ``"centered"`` (see :func:`transposed_crop`).
        bias: whether the conv has a bias.

    Raises:
        ValueError: from :func:`transposed_crop`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 mode: str = "centered", bias: bool = True) -> None:
        super().__init__()
        self.stride = stride
        self.crop_left = transposed_crop(kernel_size, stride, mode)
        self.conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y[..., self.crop_left: self.crop_left + self.stride * x.shape[-1]]

    def reach(self, r: Reach) -> Reach:
        """Stride divided by ``f`` (fractional above the input rate); see :meth:`Reach.upsample`."""
        return r.upsample(self.stride, self.conv.kernel_size[0], self.crop_left)

    def stream(self, x: torch.Tensor, delay: int, cur: StateCursor) -> tuple[torch.Tensor, int]:
        """Streaming form: :func:`cached_transposed_conv`."""
        return cached_transposed_conv(self, x, delay, cur)


def cached_transposed_conv(layer: TransposedConv1d, x: torch.Tensor, delay: int,
                           cur: StateCursor) -> tuple[torch.Tensor, int]:
    """Stream a :class:`TransposedConv1d`: ``(batch, C_in, n)`` at ``delay`` -> ``(batch, C_out, n * f)``.

    Overlap-add: the block's full transposed conv (no bias) has ``n*f + k - f`` frames; the
    first ``k - f`` get the previous block's spill added (the state, ``k - f`` frames of
    partial sums of ``C_out`` channels), the next spill is the last ``k - f`` frames, and the
    first ``n*f`` frames (plus the bias) are complete: no later input frame reaches them.
    Any block length ``n >= 1`` works and no phase alignment is needed; the output is late
    by ``delay * f + crop_left`` frames of the output tensor (the trimmed frames are still
    produced, so the stream runs ``crop_left`` frames behind offline).
    """
    f = layer.stride
    n = x.shape[-1]
    y = F.conv_transpose1d(x, layer.conv.weight, None, stride=f)
    spill = layer.conv.kernel_size[0] - f
    if spill:
        y = torch.cat([y[..., :spill] + cur.take(y.shape[1], spill), y[..., spill:]], dim=-1)
        cur.put(y[..., n * f:])
        y = y[..., : n * f]
    if layer.conv.bias is not None:
        y = y + layer.conv.bias[:, None]
    return y, delay * f + layer.crop_left
