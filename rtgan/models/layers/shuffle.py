"""Superpixel / subpixel layers for 1-D signals (Shi et al. 2016; Kim & Sathe 2019).

Chaining :class:`PixelShuffle1d` after :class:`PixelUnshuffle1d` with the same factor is the
identity, as Alahi, Sifringer & Stegmüller (2020, Sec. IV-E, Fig. 3) require.
"""
from __future__ import annotations

import torch
from torch import nn

from .reach import Reach


class PixelUnshuffle1d(nn.Module):
    """Superpixel: ``(batch, C, r*W)`` -> ``(batch, r*C, W)``.

    Output channel ``c*r + j`` at frame ``t`` holds input channel ``c`` at frame ``t*r + j``.

    Raises:
        ValueError: if the number of frames is not a multiple of the factor.
    """

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, w = x.shape
        r = self.factor
        if w % r:
            raise ValueError(f"superpixel needs a length divisible by {r}, got {w}")
        return x.reshape(b, c, w // r, r).permute(0, 1, 3, 2).reshape(b, c * r, w // r)

    def reach(self, r: Reach) -> Reach:
        return r.unshuffle(self.factor)


class PixelShuffle1d(nn.Module):
    """Subpixel: ``(batch, r*C, W)`` -> ``(batch, C, r*W)``; inverse of :class:`PixelUnshuffle1d`.

    Raises:
        ValueError: if the channel count is not a multiple of the factor.
    """

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, w = x.shape
        r = self.factor
        if c % r:
            raise ValueError(f"subpixel needs channels divisible by {r}, got {c}")
        return x.reshape(b, c // r, r, w).permute(0, 1, 3, 2).reshape(b, c // r, w * r)

    def reach(self, r: Reach) -> Reach:
        return r.shuffle(self.factor)
