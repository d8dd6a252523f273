"""Two-tap hold after a subpixel layer: upsampling that maps a constant to a constant.

A subpixel (pixel-shuffle) layer interleaves ``r`` learned phases. Leaky ReLUs rectify, so
the features it reads carry a DC component proportional to the signal level; with phase
weights that differ, that DC comes out as a pattern repeating every ``r`` samples: a steady
tone at ``fs_level / r`` and its harmonics. Stacked stride-2 layers put it at fs/2, fs/4, ...
of the output (12 kHz at 48 kHz from the second layer). This is the *checkerboard artifact*
of sub-pixel and transposed convolutions (Odena et al. 2016; for audio, Pons et al. 2021,
"Upsampling artifacts in neural audio synthesis").

Sugawara et al. (2018, "Super-resolution using convolutional neural networks without any
checkerboard artifacts") make an upsampling layer structurally free of them by following it
with a zero-order hold: for factor 2 the kernel ``[1, 1] / 2``,
``y[n] = (x[n] + x[n - 1]) / 2``. Its response is zero at the Nyquist frequency of the
upsampled signal, and any period-2 pattern ``(a, b, a, b, ...)`` becomes the constant
``(a + b) / 2``: a DC at the low rate stays a DC at the high rate, so no tone is left for
later layers to carry.

The hold reads one past frame (causal, no lookahead) and streams behind a one-frame cache.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cached import StateCursor, with_history
from .reach import Reach


class Hold1d(nn.Module):
    """Zero-order hold of ``factor`` taps, ``y[n] = (x[n] + ... + x[n - factor + 1]) / factor``, on ``(batch, channels, frames)``.

    ``factor = 2`` (the default) is ``y[n] = (x[n] + x[n-1]) / 2``. After an upsampling layer of
    stride ``factor`` it maps any pattern repeating every ``factor`` samples (the layer's
    phases) to a constant: its response is zero at every multiple of the input rate, where the
    upsampling's images (and a rectified DC's tones) sit. Offline, frames before the first are
    zero (the zero padding every other layer uses); no parameters.

    Raises:
        ValueError: ``factor < 1``.
    """

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        if int(factor) != factor or factor < 1:
            raise ValueError(f"a hold needs factor >= 1, got {factor!r}")
        self.factor = int(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.factor == 2:
            return 0.5 * (x + F.pad(x, (1, 0))[..., :-1])
        return F.avg_pool1d(F.pad(x, (self.factor - 1, 0)), self.factor, stride=1)

    def stream(self, x: torch.Tensor, delay: int, cur: StateCursor) -> tuple[torch.Tensor, int]:
        """Streaming form: a cache of the previous ``factor - 1`` frames; the delay is unchanged."""
        if self.factor == 1:
            return x, delay
        x = with_history(x, self.factor - 1, cur)
        if self.factor == 2:
            return 0.5 * (x[..., 1:] + x[..., :-1]), delay
        return F.avg_pool1d(x, self.factor, stride=1), delay

    def reach(self, r: Reach) -> Reach:
        """``factor - 1`` past frames, no lookahead."""
        return r.conv(self.factor - 1, 0)
