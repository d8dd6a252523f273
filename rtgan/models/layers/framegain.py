"""Exact frame levels for mel-conditioned generators (the vocoders' ``frame_gain``).

A generator that maps log-mel to audio must learn an exponential map from the mel's log level
to its output amplitude; small networks trained briefly learn it with a slope well below one
(quiet frames too loud, loud ones too quiet). With frame gain the generator reads the mel with
each frame's level subtracted and its output is multiplied by that level's gain, interpolated
linearly from frame to frame (:class:`LevelInterpolator`), so the level is exact by
construction and the network only shapes a unit-level signal. Not in MelGAN or seed 003.
"""
from __future__ import annotations

import math

import torch

from .cached import StateCursor, align
from .strided import TransposedConv1d

__all__ = ["LevelInterpolator", "frame_level"]


def frame_level(mel: torch.Tensor, bins: torch.Tensor | None = None) -> torch.Tensor:
    """``L_t = 0.5 log10(mean_k 10**(2 mel_kt))``, the log10 RMS of a frame's mel magnitudes:
    ``(batch, 1, frames)`` from a log10 mel ``(batch, n_mels, frames)``, over the mel bins
    ``bins`` (an index tensor; ``None``: all)."""
    if bins is not None:
        mel = mel.index_select(1, bins)
    ln10 = math.log(10.0)
    return 0.5 * (torch.logsumexp(2.0 * ln10 * mel, dim=1, keepdim=True) - math.log(mel.shape[1])) / ln10


class LevelInterpolator(TransposedConv1d):
    """Frame levels to a sample-rate gain: a frozen transposed conv (stride ``factor``, kernel
    ``2 factor``, triangle weights that sum to one at every output sample), linear interpolation
    between consecutive frames, ``(batch, 1, frames)`` -> ``(batch, 1, frames * factor)``. Causal
    (``padding="causal"``): output hop ``t`` ramps from frame ``t - 1`` (0 before the first) to
    frame ``t``. :meth:`scale` and :meth:`stream_scale` multiply a generator's output by the gains
    ``10**L_t`` of its frame levels."""

    def __init__(self, factor: int, padding: str) -> None:
        super().__init__(1, 1, 2 * factor, factor, padding, bias=False)
        j = torch.arange(2 * factor, dtype=torch.float32)
        with torch.no_grad():
            self.conv.weight.copy_((torch.minimum(j + 1, 2 * factor - 1 - j) / factor).view(1, 1, -1))
        self.conv.weight.requires_grad_(False)

    def scale(self, h: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """``h (batch, 1, frames * factor)`` times the interpolated gains of ``level (batch, 1, frames)``."""
        return h * self(10.0 ** level)

    def stream_scale(self, h: torch.Tensor, delay: int, level: torch.Tensor, level_delay: int,
                     cur: StateCursor) -> tuple[torch.Tensor, int]:
        """:meth:`scale` on a stream: ``h`` at ``delay`` (its samples), ``level`` at ``level_delay``
        (frames); the two are aligned (:func:`.cached.align`) and the product's delay returned."""
        (h, gain), d = align([(h, delay), self.stream(10.0 ** level, level_delay, cur)], cur)
        return h * gain, d
