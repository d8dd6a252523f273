"""Convolution with explicit, mode-dependent padding."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .reach import Reach

PADDING_MODES = ("causal", "centered")


def conv_padding(kernel_size: int, mode: str, dilation: int = 1) -> tuple[int, int]:
    """Zero padding ``(left, right)`` in frames that keeps a conv's length unchanged.

    ``causal``: all ``(k - 1) * dilation`` frames on the left (no lookahead).
    ``centered``: split as evenly as possible, the extra frame on the left.

    Raises:
        ValueError: for an unknown mode.
    """
    total = (kernel_size - 1) * dilation
    if mode == "causal":
        return total, 0
    if mode == "centered":
        return total - total // 2, total // 2
    raise ValueError(f"unknown padding mode {mode!r}; expected one of {PADDING_MODES}")


class ZeroDCConv1d(nn.Conv1d):
    """``nn.Conv1d`` whose kernels sum to zero over time, so it has no response at DC.

    The kernel used is ``w - mean_t(w)`` (per output and input channel); the stored
    parameter is unconstrained. A bias-free net of convs and leaky ReLUs turns any input into
    features with a DC component (rectification); a DC-free output layer keeps that offset
    out of the generated signal.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight - self.weight.mean(dim=-1, keepdim=True), self.bias)


class PaddedConv1d(nn.Module):
    """1-D convolution, stride 1, zero-padded on the left/right by :func:`conv_padding`.

    Input ``(batch, in_channels, frames)`` -> output ``(batch, out_channels, frames)``.
    The padding is applied explicitly (the conv itself has padding 0), so a streaming
    form can replace the pad by a cache of the same size. ``dc_free=True`` uses a
    :class:`ZeroDCConv1d` (kernels that sum to zero; no bias allowed).

    Raises:
        ValueError: ``dc_free`` with ``bias``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mode: str = "centered",
                 dilation: int = 1, bias: bool = True, dc_free: bool = False) -> None:
        super().__init__()
        if dc_free and bias:
            raise ValueError("a DC-free conv cannot have a bias")
        self.padding = conv_padding(kernel_size, mode, dilation)
        cls = ZeroDCConv1d if dc_free else nn.Conv1d
        self.conv = cls(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding != (0, 0):
            x = F.pad(x, self.padding)
        return self.conv(x)

    def reach(self, r: Reach) -> Reach:
        """Receptive-field bounds after this layer (see :class:`Reach`)."""
        return r.conv(*self.padding)
