"""Measurements of a clip written to the manifest: bandwidth (two definitions) and RMS level."""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import welch

__all__ = ["measure_bandwidth", "measure_energy_bandwidth", "rms_dbfs", "BANDWIDTH_REL_DB",
           "BANDWIDTH_FLOOR_DB", "BANDWIDTH_ENERGY_FRACTION"]

#: ``bandwidth_hz``: content = smoothed PSD within this many dB of its maximum...
BANDWIDTH_REL_DB: float = 60.0
#: ... and above this absolute PSD floor (dB re full-scale^2/Hz).
BANDWIDTH_FLOOR_DB: float = -130.0
#: ``energy_bandwidth_hz``: fraction of the spectral energy below it.
BANDWIDTH_ENERGY_FRACTION: float = 0.999


def _welch_psd(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    nperseg = int(min(x.size, 2048))
    return welch(x, fs=sample_rate, window="blackmanharris", nperseg=nperseg, detrend="constant")


def measure_bandwidth(x: np.ndarray, sample_rate: int, rel_db: float = BANDWIDTH_REL_DB,
                      floor_db: float = BANDWIDTH_FLOOR_DB) -> float:
    """Measured bandwidth of a mono signal: the highest frequency with content, in Hz.

    Definition (this is the manifest's ``bandwidth_hz``): the Welch power
    spectral density of ``x`` is computed (Blackman-Harris window, -92 dB side lobes,
    ``nperseg = min(len(x), 2048)``, 50% overlap, mean removed; in units of
    full-scale^2 / Hz) and smoothed with a 9-bin moving average (~210 Hz at
    48 kHz). The bandwidth is the highest frequency whose smoothed PSD is at
    most ``rel_db`` (60 dB) below the smoothed PSD's maximum *and* above the
    absolute floor ``floor_db`` (-130 dB re 1/Hz, above 16-bit quantisation
    noise, about -145 dB/Hz). So a clip from a 22.05 kHz source measures at
    most ~11 kHz (the resampler stops at the source's Nyquist), a 44.1 kHz Vorbis file
    about 16-21 kHz (the encoder's low-pass), and low-passed noise its cutoff
    (for a steep filter). It lies in [0, sample_rate / 2]; 0 if no bin
    qualifies (silence).

    Args:
        x: float array, shape (num_samples,), full scale = 1.0.
        sample_rate: Hz.
        rel_db: dB below the PSD maximum still counted as content.
        floor_db: absolute PSD floor in dB re 1/Hz.

    See :func:`measure_energy_bandwidth` for the 99.9%-energy variant.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < 16:
        return 0.0
    f, p = _welch_psd(x, sample_rate)
    k = min(9, p.size)
    ps = np.convolve(p, np.ones(k) / k, mode="same")
    peak = float(ps.max())
    if not np.isfinite(peak) or peak <= 0.0:
        return 0.0
    thr = max(peak * 10.0 ** (-rel_db / 10.0), 10.0 ** (floor_db / 10.0))
    idx = np.nonzero(ps >= thr)[0]
    return float(round(f[idx[-1]], 3)) if idx.size else 0.0


def measure_energy_bandwidth(x: np.ndarray, sample_rate: int,
                             fraction: float = BANDWIDTH_ENERGY_FRACTION) -> float:
    """Frequency below which ``fraction`` (99.9%) of the spectral energy lies, in Hz.

    Definition (the manifest's ``energy_bandwidth_hz``): same Welch PSD as
    :func:`measure_bandwidth` (unsmoothed); the lowest bin frequency ``f`` with
    ``sum(PSD[<= f]) >= fraction * sum(PSD)``. Quantised to ``sample_rate /
    2048``. Real music and speech have steep spectral tilt, so this is usually
    far below the band limit (median ~6 kHz for the 44.1 kHz orchestral
    tracks); use ``bandwidth_hz`` to select full-band clips. 0 for silence.

    Args:
        x: float array, shape (num_samples,).
        sample_rate: Hz.
        fraction: energy fraction in (0, 1].
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < 16:
        return 0.0
    f, p = _welch_psd(x, sample_rate)
    total = float(p.sum())
    if not np.isfinite(total) or total <= 0.0:
        return 0.0
    c = np.cumsum(p) / total
    i = int(np.searchsorted(c, fraction - 1e-12, side="left"))
    return float(round(f[min(i, f.size - 1)], 3))


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level of ``x`` in dB re full scale 1.0 (-inf for silence or an empty array)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf
