"""Exact frame levels for mel-conditioned generators (the vocoders' ``frame_gain``).

A generator that maps log-mel to audio must learn an exponential map from the mel's log level
to its output amplitude; small networks trained briefly learn it with a slope well below one
(quiet frames too loud, loud ones too quiet). With frame gain the generator reads the mel with
each frame's level subtracted and its output is multiplied by that level's gain, interpolated
linearly from frame to frame (:func:`linear_interpolator`), so the level is exact by
construction and the network only shapes a unit-level signal. Not in MelGAN or seed 003.
"""
from __future__ import annotations

import math

import torch

from .strided import TransposedConv1d

__all__ = ["frame_level", "linear_interpolator"]


def frame_level(mel: torch.Tensor, bins: torch.Tensor | None = None) -> torch.Tensor:
    """``L_t = 0.5 log10(mean_k 10**(2 mel_kt))``, the log10 RMS of a frame's mel magnitudes:
    ``(batch, 1, frames)`` from a log10 mel ``(batch, n_mels, frames)``, over the mel bins
    ``bins`` (an index tensor; ``None``: all)."""
    if bins is not None:
        mel = mel.index_select(1, bins)
    ln10 = math.log(10.0)
    return 0.5 * (torch.logsumexp(2.0 * ln10 * mel, dim=1, keepdim=True) - math.log(mel.shape[1])) / ln10


def linear_interpolator(factor: int, padding: str) -> TransposedConv1d:
    """A frozen transposed conv (stride ``factor``, kernel ``2 factor``, triangle weights that sum
    to one at every output sample): linear interpolation between consecutive frames,
    ``(batch, 1, frames)`` -> ``(batch, 1, frames * factor)``. Causal (``padding="causal"``):
    output hop ``t`` ramps from frame ``t - 1`` (0 before the first) to frame ``t``."""
    up = TransposedConv1d(1, 1, 2 * factor, factor, padding, bias=False)
    j = torch.arange(2 * factor, dtype=torch.float32)
    with torch.no_grad():
        up.conv.weight.copy_((torch.minimum(j + 1, 2 * factor - 1 - j) / factor).view(1, 1, -1))
    up.conv.weight.requires_grad_(False)
    return up
