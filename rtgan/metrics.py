"""Objective evaluation metrics for audio super-resolution.

Signal-to-noise ratio and log-spectral distance as defined by Alahi,
Sifringer & Stegmüller (2020), "Audio enhancing with Wasserstein GANs",
Sec. V-B, eqs. (24) and (25) (the metrics of Kuleshov et al. 2017).

Both functions take an ``estimate`` (generated signal ``x_g``) and a
``target`` (reference ``x_t``) as ``(batch, samples)`` or ``(samples,)``
tensors and return one value per item. They also accept numpy arrays: then
the result is a numpy array for batched input and a Python ``float`` for
1-D input.
"""

from __future__ import annotations

from typing import Union

import numpy as np
import torch
from torch import Tensor

__all__ = ["snr", "lsd", "SNR_EPS"]

ArrayLike = Union[Tensor, np.ndarray]

#: Default energy floor (squared amplitude, summed over samples) added to the
#: numerator and denominator of the SNR so that silent targets and perfect
#: estimates give finite values.
SNR_EPS = 1e-12


def _prepare(estimate: ArrayLike, target: ArrayLike, fn: str) -> tuple[Tensor, Tensor, bool, bool]:
    """Convert to float tensors of shape (batch, samples); report whether the
    inputs were numpy and whether they were 1-D."""
    is_numpy = isinstance(estimate, np.ndarray) or isinstance(target, np.ndarray)
    est = torch.as_tensor(np.asarray(estimate)) if isinstance(estimate, np.ndarray) else estimate
    tgt = torch.as_tensor(np.asarray(target)) if isinstance(target, np.ndarray) else target
    if not isinstance(est, Tensor) or not isinstance(tgt, Tensor):
        raise TypeError(f"{fn}: estimate and target must be torch tensors or numpy arrays")
    if est.shape != tgt.shape:
        raise ValueError(
            f"{fn}: estimate shape {tuple(est.shape)} != target shape {tuple(tgt.shape)}"
        )
    if est.dim() not in (1, 2):
        raise ValueError(f"{fn}: expected (batch, samples) or (samples,), got {tuple(est.shape)}")
    if est.shape[-1] == 0:
        raise ValueError(f"{fn}: inputs have zero samples")
    if est.is_complex() or tgt.is_complex():
        raise ValueError(f"{fn}: inputs must be real-valued")
    one_d = est.dim() == 1
    if is_numpy:
        dtype = torch.float64  # numpy callers get double-precision metrics
    else:
        dtype = torch.promote_types(est.dtype, tgt.dtype)
        if not dtype.is_floating_point:
            dtype = torch.float32
    est = est.to(dtype)
    tgt = tgt.to(dtype=dtype, device=est.device)
    if one_d:
        est, tgt = est.unsqueeze(0), tgt.unsqueeze(0)
    return est, tgt, is_numpy, one_d


def _finish(values: Tensor, is_numpy: bool, one_d: bool) -> Union[Tensor, np.ndarray, float]:
    if one_d:
        values = values[0]
    if not is_numpy:
        return values
    if one_d:
        return float(values)
    return values.detach().cpu().numpy()


def snr(
    estimate: ArrayLike, target: ArrayLike, eps: float = SNR_EPS
) -> Union[Tensor, np.ndarray, float]:
    """Signal-to-noise ratio in dB, per item.

    Alahi et al. (2020) eq. (24):
    ``SNR(x_g, x_t) = 10 log10( ||x_t||_2^2 / ||x_t - x_g||_2^2 )``, computed as
    ``10 log10((||x_t||^2 + eps) / (||x_t - x_g||^2 + eps))``. The ``eps``
    floor (default 1e-12, in summed squared amplitude) keeps the result
    finite: an exact estimate gives ``10 log10(||x_t||^2 / eps + 1)`` instead
    of +inf, and a silent target with a silent estimate gives 0 dB. For
    signals with energy far above ``eps`` it changes nothing measurable.

    Args:
        estimate: generated signal ``x_g``, ``(batch, samples)`` or ``(samples,)``.
        target: reference ``x_t``, same shape.
        eps: non-negative energy floor.

    Returns:
        ``(batch,)`` tensor in dB for tensor input (0-d for 1-D input); for
        numpy input a ``(batch,)`` float64 array, or a ``float`` for 1-D input.
        Differentiable with respect to ``estimate``.

    Raises:
        ValueError: shapes differ, are not 1-D/2-D, are empty, or ``eps < 0``.
        TypeError: inputs are neither tensors nor numpy arrays.
    """
    if eps < 0:
        raise ValueError(f"snr: eps must be >= 0, got {eps}")
    est, tgt, is_numpy, one_d = _prepare(estimate, target, "snr")
    signal_energy = torch.sum(tgt**2, dim=-1)
    noise_energy = torch.sum((tgt - est) ** 2, dim=-1)
    values = 10.0 * torch.log10((signal_energy + eps) / (noise_energy + eps))
    return _finish(values, is_numpy, one_d)


def lsd(
    estimate: ArrayLike,
    target: ArrayLike,
    n_fft: int = 2048,
    hop_length: int = 512,
    eps: float = 1e-10,
    center: bool = True,
) -> Union[Tensor, np.ndarray, float]:
    """Log-spectral distance per item (dimensionless, log10 units).

    Alahi et al. (2020) eq. (25):
    ``LSD = 1/W sum_w sqrt( 1/K sum_k (log10(|X_g(w,k)|^2 + eps)
    - log10(|X_t(w,k)|^2 + eps))^2 )``, i.e. the root-mean-square over the
    ``K = n_fft // 2 + 1`` frequency bins of the difference of log10 power
    spectra, averaged over the ``W`` STFT frames. ``eps`` avoids ``log(0)``
    in silent bins.

    STFT: periodic Hann window of ``n_fft`` samples, hop ``hop_length``, no
    normalisation; with ``center=True`` (default) the signals are zero-padded
    by ``n_fft // 2`` samples on both sides (librosa's ``stft`` convention),
    giving ``W = 1 + samples // hop_length`` frames; with ``center=False``
    only full frames are used (needs ``samples >= n_fft``).

    Args:
        estimate: generated signal ``x_g``, ``(batch, samples)`` or ``(samples,)``.
        target: reference ``x_t``, same shape.
        n_fft: FFT size / window length in samples.
        hop_length: frame hop in samples.
        eps: power floor added inside the logarithms (> 0).
        center: centre the frames (see above).

    Returns:
        ``(batch,)`` tensor (0-d for 1-D input); for numpy input a float64
        array, or a ``float`` for 1-D input. 0 for identical signals. Meant
        for evaluation: the gradient is undefined (NaN) where a frame's
        spectra are identical (derivative of sqrt at 0).

    Raises:
        ValueError: shapes differ, are not 1-D/2-D, are empty, ``eps <= 0``,
            non-positive ``n_fft``/``hop_length``, or ``center=False`` with
            fewer than ``n_fft`` samples.
        TypeError: inputs are neither tensors nor numpy arrays.
    """
    if eps <= 0:
        raise ValueError(f"lsd: eps must be > 0, got {eps}")
    if n_fft <= 0 or hop_length <= 0:
        raise ValueError(f"lsd: n_fft and hop_length must be positive, got {n_fft}, {hop_length}")
    est, tgt, is_numpy, one_d = _prepare(estimate, target, "lsd")
    if not center and est.shape[-1] < n_fft:
        raise ValueError(
            f"lsd: center=False needs at least n_fft={n_fft} samples, got {est.shape[-1]}"
        )
    window = torch.hann_window(n_fft, periodic=True, dtype=est.dtype, device=est.device)

    def log_power(x: Tensor) -> Tensor:
        spec = torch.stft(
            x,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=n_fft,
            window=window,
            center=center,
            pad_mode="constant",
            normalized=False,
            onesided=True,
            return_complex=True,
        )  # (batch, n_fft // 2 + 1, frames)
        return torch.log10(spec.real**2 + spec.imag**2 + eps)

    diff = log_power(est) - log_power(tgt)
    per_frame = torch.sqrt(torch.mean(diff**2, dim=-2))  # (batch, frames)
    values = torch.mean(per_frame, dim=-1)
    return _finish(values, is_numpy, one_d)
