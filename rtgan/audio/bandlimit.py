"""Named band-limiters for evaluation: what a super-resolution model is given.

Each limiter turns a full-band 48 kHz target ``y`` (1-D, float) into

* ``x48``: the model input, at 48 kHz, the same length as ``y`` and time-aligned with it
  sample-exactly (the lag of the cross-correlation peak between white noise and its
  band-limited version is 0; a test checks it), and
* ``x16``: the 16 kHz signal the cubic-spline baseline interpolates
  (:func:`rtgan.audio.degrade.spline_upsample` ``(x16, 3)``), whose sample ``i`` lies at
  48 kHz sample ``3 i`` of ``y``.

The limiters differ in the filter that removes the band above 8 kHz, so that an evaluation
does not reward a model for learning one filter's transition band (Sulun & Davies 2020):

``soxr`` (the default)
    ``x16 = soxr.resample(y, 48000, 16000, quality="VHQ")``, then
    ``x48 = rtgan.audio.io.resample(x16, 16000, 48000)``: a very-high-quality linear-phase
    decimation as a real 16 kHz file would have had, brought back to 48 kHz exactly as
    ``rtgan render`` brings a 16 kHz file to the model rate. Training never uses soxr.
``kaiser``
    The project's previous evaluation degradation: ``resample_poly(y, 1, 3)`` and
    ``resample_poly(., 3, 1)``, both with a Kaiser window of beta 5.0 (scipy's default).
``butter4``
    A single-pass (causal, non-linear-phase) 4th-order Butterworth low-pass at 7.5 kHz at
    48 kHz: a gentle analog-style filter that leaves energy above 8 kHz (-4.6 dB at 8 kHz,
    -22 dB at 12 kHz, -41 dB at 16 kHz). Its bulk delay, ``BUTTER4_DELAY`` = 3 samples (the peak of its
    impulse response, i.e. the lag of maximum cross-correlation with white noise), is
    removed; the frequency-dependent part of the group delay (2.4 samples at DC, 4.5 at
    7 kHz) is not. ``x16 = resample_poly(x48, 1, 3)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

# scipy.signal (and soxr) are imported where used: the CLI builds its parser from
# BAND_LIMITERS, and scipy.signal costs about a second to import.

__all__ = ["BandLimiter", "BAND_LIMITERS", "DEFAULT_LIMITER", "BUTTER4_DELAY", "band_limit", "butter4_sos",
           "butter4_delay"]

#: The only sample rate (Hz) of the target these limiters accept.
SAMPLE_RATE = 48000
#: Rate (Hz) of the band-limited signal the spline baseline interpolates.
LOW_RATE = 16000
_RATIO = SAMPLE_RATE // LOW_RATE


@functools.lru_cache(maxsize=1)
def butter4_sos() -> np.ndarray:
    """The ``butter4`` limiter's filter: 4th-order Butterworth low-pass, -3 dB at 7.5 kHz at
    48 kHz, second-order sections ``(2, 6)``."""
    from scipy import signal

    return signal.butter(4, 7500.0, fs=SAMPLE_RATE, output="sos")


@functools.lru_cache(maxsize=1)
def butter4_delay() -> int:
    """Bulk delay in samples removed from the ``butter4`` limiter's output: the index of the
    peak of the filter's impulse response (3), which is the lag of maximum cross-correlation
    between white noise and its filtered version. Computed from the filter."""
    from scipy import signal

    impulse = np.zeros(256)
    impulse[0] = 1.0
    return int(np.argmax(signal.sosfilt(butter4_sos(), impulse)))


def __getattr__(name: str):
    if name == "BUTTER4_DELAY":  # module constant computed on first use (see butter4_delay)
        return butter4_delay()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_KAISER = ("kaiser", 5.0)


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad the last axis of ``x`` to ``n`` samples."""
    if len(x) >= n:
        return x[:n]
    return np.pad(x, (0, n - len(x)))


def _soxr(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        import soxr
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the 'soxr' band-limiter needs soxr: pip install 'rtgan[eval]'") from exc
    from .io import resample

    n = len(y)
    # soxr's one-shot resample is delay-compensated (output sample i at input time 3 i) but
    # returns floor(n / 3) samples: pad to a multiple of 3 so the tail is not dropped.
    padded = np.pad(y, (0, -n % _RATIO))
    x16 = soxr.resample(padded, SAMPLE_RATE, LOW_RATE, quality="VHQ")
    x48 = _fit(resample(x16, LOW_RATE, SAMPLE_RATE), n)
    return x48, x16


def _kaiser(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy import signal

    x16 = signal.resample_poly(y, 1, _RATIO, window=_KAISER)
    x48 = _fit(signal.resample_poly(x16, _RATIO, 1, window=_KAISER), len(y))
    return x48, x16


def _butter4(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy import signal

    d = butter4_delay()
    x48 = signal.sosfilt(butter4_sos(), np.pad(y, (0, d)))[d:]
    x16 = signal.resample_poly(x48, 1, _RATIO)
    return x48, x16


@dataclass(frozen=True)
class BandLimiter:
    """One named band-limiter: a one-line ``description`` and ``func(y) -> (x48, x16)``
    (float64 arrays; see :func:`band_limit`)."""

    name: str
    description: str
    func: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


#: The registry: name -> :class:`BandLimiter`, in the order evaluations report them.
BAND_LIMITERS: dict[str, BandLimiter] = {
    b.name: b
    for b in (
        BandLimiter("soxr", "soxr VHQ 48->16 kHz, back to 48 kHz with rtgan's resampler (as `rtgan render` "
                    "does with a 16 kHz file)", _soxr),
        BandLimiter("kaiser", "resample_poly 48->16->48 kHz, Kaiser window beta 5 (the previous evaluation "
                    "degradation)", _kaiser),
        BandLimiter("butter4", "causal 4th-order Butterworth low-pass at 7.5 kHz (sosfilt; its bulk delay, "
                    "the impulse response's peak, removed), resample_poly to 16 kHz for the spline", _butter4),
    )
}

#: The limiter evaluations use by default (training never uses soxr).
DEFAULT_LIMITER = "soxr"


def band_limit(name: str, y: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Band-limit a full-band target to what a 16 kHz source carries (0-8 kHz).

    Args:
        name: a key of :data:`BAND_LIMITERS` (``"soxr"``, ``"kaiser"``, ``"butter4"``).
        y: full-band target, 1-D ``(samples,)``, real, finite, nominally in [-1, 1].
        sample_rate: rate of ``y`` in Hz; must be 48000.

    Returns:
        ``(x48, x16)``, both ``float32``: ``x48`` is the model input at 48 kHz, shape
        ``(samples,)`` (same length as ``y``, time-aligned with it: lag 0); ``x16`` is the
        band-limited signal at 16 kHz, shape ``(ceil(samples / 3),)``, whose sample ``i``
        lies at ``y[3 i]`` (the knots of :func:`rtgan.audio.degrade.spline_upsample`).

    Raises:
        ValueError: unknown ``name`` (the message lists the known ones), ``sample_rate`` other
            than 48000, or ``y`` not a non-empty finite real 1-D array.
        ImportError: ``"soxr"`` without the soxr package.
    """
    if name not in BAND_LIMITERS:
        raise ValueError(f"unknown band-limiter {name!r}; known: {', '.join(BAND_LIMITERS)}")
    if isinstance(sample_rate, bool) or sample_rate != SAMPLE_RATE:
        raise ValueError(f"band-limiters work on {SAMPLE_RATE} Hz targets, got sample_rate={sample_rate!r}")
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"band_limit: y must be 1-D (samples,), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("band_limit: y has zero samples")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"band_limit: y must be real-valued, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("band_limit: y contains NaN or infinite samples")
    x48, x16 = BAND_LIMITERS[name].func(arr)
    return np.ascontiguousarray(x48, dtype=np.float32), np.ascontiguousarray(x16, dtype=np.float32)
