"""Spectral front ends shared by losses, metrics and models: STFT magnitude and mel.

One STFT convention everywhere (librosa's): periodic Hann window of ``win_length`` samples
centred in an ``n_fft`` frame, ``center=True`` with zero padding of ``n_fft // 2`` on each
side, no normalisation, one-sided spectrum. The mel filter bank is the Slaney design
(``librosa.filters.mel`` defaults: Slaney mel scale, area normalisation), written here in
torch so that training and inference need no librosa; a test compares it with librosa.
"""
from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

__all__ = ["stft_magnitude", "hz_to_mel", "mel_to_hz", "mel_filterbank", "log_mel"]


def stft_magnitude(x: Tensor, n_fft: int, hop_length: int, win_length: int | None = None,
                   floor: float = 0.0) -> Tensor:
    """Magnitude spectrogram ``|STFT(x)|``: ``(batch, samples)`` -> ``(batch, n_fft//2 + 1, frames)``.

    ``frames = 1 + samples // hop_length``. The magnitude is ``sqrt(max(re^2 + im^2, floor^2))``
    so the gradient stays finite where the spectrum is zero (``floor > 0``).

    Args:
        x: real waveform, ``(batch, samples)`` (a ``(batch, 1, samples)`` input is squeezed).
        n_fft: FFT size in samples.
        hop_length: hop in samples.
        win_length: Hann window length in samples (default ``n_fft``; must be <= ``n_fft``).
        floor: magnitude floor (same units as the spectrum).

    Raises:
        ValueError: bad shape or sizes.
    """
    if x.dim() == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 2:
        raise ValueError(f"expected (batch, samples) or (batch, 1, samples), got {tuple(x.shape)}")
    win_length = win_length or n_fft
    if not (0 < win_length <= n_fft) or hop_length <= 0:
        raise ValueError(f"bad STFT sizes n_fft={n_fft}, hop_length={hop_length}, win_length={win_length}")
    window = torch.hann_window(win_length, periodic=True, dtype=x.dtype, device=x.device)
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window,
                      center=True, pad_mode="constant", normalized=False, onesided=True, return_complex=True)
    power = spec.real ** 2 + spec.imag ** 2
    if floor > 0:
        power = torch.clamp(power, min=floor * floor)
    return torch.sqrt(power)


_F_SP = 200.0 / 3  # Slaney: Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = math.log(6.4) / 27.0


def hz_to_mel(f: Tensor) -> Tensor:
    """Slaney mel scale (Auditory Toolbox; librosa ``htk=False``): linear below 1 kHz, log above."""
    f = torch.as_tensor(f, dtype=torch.float64)
    lin = f / _F_SP
    log = _MIN_LOG_MEL + torch.log(torch.clamp(f, min=_MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return torch.where(f >= _MIN_LOG_HZ, log, lin)


def mel_to_hz(m: Tensor) -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    m = torch.as_tensor(m, dtype=torch.float64)
    lin = _F_SP * m
    log = _MIN_LOG_HZ * torch.exp(_LOG_STEP * (m - _MIN_LOG_MEL))
    return torch.where(m >= _MIN_LOG_MEL, log, lin)


@functools.lru_cache(maxsize=16)
def _mel_filterbank64(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> Tensor:
    fft_freqs = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    mel_pts = torch.linspace(float(hz_to_mel(torch.tensor(fmin))), float(hz_to_mel(torch.tensor(fmax))),
                             n_mels + 2, dtype=torch.float64)
    hz_pts = mel_to_hz(mel_pts)
    fdiff = hz_pts[1:] - hz_pts[:-1]
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    enorm = 2.0 / (hz_pts[2:n_mels + 2] - hz_pts[:n_mels])  # Slaney area normalisation
    return weights * enorm[:, None]


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = 128, fmin: float = 0.0,
                   fmax: float | None = None) -> Tensor:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)``, float32 (Slaney 1998; = librosa defaults).

    Raises:
        ValueError: ``fmax`` above Nyquist, ``fmin >= fmax`` or ``n_mels < 1``.
    """
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    if not (0.0 <= fmin < fmax <= sample_rate / 2.0) or n_mels < 1:
        raise ValueError(f"bad mel bank: fmin={fmin}, fmax={fmax}, n_mels={n_mels} at {sample_rate} Hz")
    return _mel_filterbank64(int(sample_rate), int(n_fft), int(n_mels), float(fmin), fmax).float()


def log_mel(x: Tensor, sample_rate: int, n_fft: int = 2048, hop_length: int = 512, n_mels: int = 128,
            fmin: float = 0.0, fmax: float | None = None, floor: float = 1e-5) -> Tensor:
    """Natural-log mel magnitude spectrogram ``log(max(M |STFT(x)|, floor))`` (HiFi-GAN's input and loss).

    Shapes: ``(batch, samples)`` -> ``(batch, n_mels, 1 + samples // hop_length)``.
    """
    mag = stft_magnitude(x, n_fft, hop_length, floor=1e-9)
    fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax).to(mag.device, mag.dtype)
    return torch.log(torch.clamp(fb @ mag, min=floor))
