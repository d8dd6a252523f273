"""Synthetic band-limiting of full-band audio (numpy/scipy only, no torch).

Training pairs for audio super-resolution are made by degrading a full-band
target ``y`` into a band-limited input ``x``. Two degradations are offered:

``"lowpass"``
    The "EQ silencing" of Coldenhoff & Ren (2021), Sec. VI-A: the high
    frequencies are silenced by a zero-phase low-pass filter while the sample
    rate is kept. With a random generator the IIR filter family and order are
    drawn per call, so that a model does not overfit to the transition band of
    one particular filter (Sulun & Davies, "On filter generalization for music
    bandwidth extension using deep neural networks", 2020).

``"decimate"``
    The classic super-resolution setting of Kuleshov et al. (2017): decimate by
    an integer ``ratio`` and resample back to the original rate, so that
    everything above ``sample_rate / (2 * ratio)`` is removed.

``"resample"``
    The path a low-rate file takes through ``rtgan render``: down by ``ratio`` and
    back up with :func:`rtgan.audio.io.resample` (the project's own Kaiser FIR).

It also has the cubic-spline baseline of Kuleshov et al. (2017)
(:func:`spline_upsample`) and the :func:`decimate` helper it needs.

Every signal here is laid out as ``(..., samples)``: the time axis is the last
axis and all leading axes (channels, batch) are processed independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import interpolate, signal

__all__ = [
    "LOWPASS_FILTERS",
    "DECIMATE_KAISER_BETAS",
    "DegradationConfig",
    "lowpass_sos",
    "degrade",
    "decimate",
    "spline_upsample",
]

#: IIR families accepted in :attr:`DegradationConfig.filters`.
LOWPASS_FILTERS: tuple[str, ...] = ("cheby1", "butter", "ellip", "bessel")

#: Kaiser-window betas that training draws for the ``resample_poly`` anti-aliasing filter
#: of the ``"decimate"`` degradation. scipy's default, 5.0, is left out: evaluation uses it
#: (:class:`DegradationConfig`'s default), so it stays a filter training never saw. Every
#: one keeps white noise above ``fs/(2*ratio) + 1 kHz`` below -45 dB at 48 kHz, ratio 3.
DECIMATE_KAISER_BETAS: tuple[float, ...] = (4.0, 6.0, 7.0, 8.0)

# Design constants of the low-pass "shaping" filters (single pass; filtfilt
# squares the magnitude response, i.e. doubles these numbers in dB).
_CHEBY1_RIPPLE_DB = 0.05
_ELLIP_RIPPLE_DB = 0.05
_ELLIP_STOP_DB = 60.0
# Design constants of the steep elliptic "guard" filter (single pass).
_GUARD_RIPPLE_DB = 0.05
_GUARD_STOP_DB = 60.0


@dataclass(frozen=True)
class DegradationConfig:
    """How a full-band signal is band-limited to make a model input.

    Attributes:
        kind: ``"lowpass"`` (EQ silencing at the original rate, Coldenhoff &
            Ren 2021 Sec. VI-A), ``"decimate"`` (down by ``ratio`` and back
            up, Kuleshov et al. 2017) or ``"resample"`` (down by ``ratio`` and back up
            with :func:`rtgan.audio.io.resample`, as ``rtgan render`` does).
        cutoff_hz: ``"lowpass"`` only. Corner frequency in Hz of the IIR
            low-pass (the -3 dB point of the single-pass design for
            butter/bessel, the passband edge for cheby1/ellip). Must lie in
            ``(0, sample_rate/2)`` together with ``cutoff_hz + transition_hz``.
        ratio: ``"decimate"``/``"resample"`` only. Integer decimation factor (>= 2);
            the remaining bandwidth is ``sample_rate / (2 * ratio)`` Hz.
        kaiser_betas: ``"decimate"`` only. Kaiser-window betas of ``resample_poly``'s
            filter; without a random generator the first is used, with one a beta is drawn
            (training uses :data:`DECIMATE_KAISER_BETAS`; the default, 5.0, is scipy's).
        filters: ``"lowpass"`` only. IIR families to draw from, a non-empty
            subset of :data:`LOWPASS_FILTERS`. Without a random generator the
            first entry is used.
        orders: ``"lowpass"`` only. Filter orders (each 1..16) to draw from;
            without a random generator the first entry is used.
        cutoff_jitter: ``"lowpass"`` only. With a random generator the cutoff
            is drawn uniformly from ``cutoff_hz * [1 - j, 1 + j]``; must be in
            ``[0, 1)``. Ignored without a generator.
        transition_hz: ``"lowpass"`` only. Width in Hz of the band above the
            cutoff after which a fixed steep elliptic "guard" low-pass
            guarantees silence (>= 100 dB attenuation after the forward and
            backward passes), whatever the randomly drawn filter is. This is
            what makes a gentle filter such as a 4th-order Bessel still
            "silence" the high band as in Coldenhoff & Ren Sec. VI-A. Must be
            > 0.
        guard: ``"lowpass"`` only. Apply the guard filter. ``False`` leaves what a
            gentle filter lets through above the cutoff (a partly present band, as
            from real low-pass filters).

    Raises:
        ValueError: on an unknown ``kind`` or filter family, empty ``filters``
            or ``orders``, a non-positive cutoff or transition, ``ratio < 2``,
            an order outside 1..16 or a jitter outside ``[0, 1)``. Checks that
            depend on the sample rate (Nyquist) happen in :func:`degrade`.
    """

    kind: str = "decimate"
    cutoff_hz: float = 8000.0
    ratio: int = 3
    kaiser_betas: tuple[float, ...] = (5.0,)
    filters: tuple[str, ...] = ("cheby1", "butter", "ellip", "bessel")
    orders: tuple[int, ...] = (4, 6, 8)
    cutoff_jitter: float = 0.0
    transition_hz: float = 1000.0
    guard: bool = True

    def __post_init__(self) -> None:
        # JSON round trips turn tuples into lists
        for name in ("kaiser_betas", "filters", "orders"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.kind not in ("lowpass", "decimate", "resample"):
            raise ValueError(
                f"DegradationConfig.kind must be 'lowpass', 'decimate' or 'resample', got {self.kind!r}"
            )
        if len(self.kaiser_betas) == 0 or any(not 0 <= float(b) < 50 for b in self.kaiser_betas):
            raise ValueError(f"DegradationConfig.kaiser_betas must be non-empty, each in [0, 50), got {self.kaiser_betas!r}")
        if isinstance(self.filters, str):
            raise ValueError("DegradationConfig.filters must be a tuple of names, not a string")
        if len(self.filters) == 0:
            raise ValueError("DegradationConfig.filters must not be empty")
        for name in self.filters:
            if name not in LOWPASS_FILTERS:
                raise ValueError(
                    f"unknown filter {name!r} in DegradationConfig.filters; "
                    f"expected one of {LOWPASS_FILTERS}"
                )
        if len(self.orders) == 0:
            raise ValueError("DegradationConfig.orders must not be empty")
        for order in self.orders:
            if isinstance(order, bool) or int(order) != order or not 1 <= order <= 16:
                raise ValueError(f"filter order must be an integer in 1..16, got {order!r}")
        if isinstance(self.ratio, bool) or int(self.ratio) != self.ratio or self.ratio < 2:
            raise ValueError(f"DegradationConfig.ratio must be an integer >= 2, got {self.ratio!r}")
        if not np.isfinite(self.cutoff_hz) or self.cutoff_hz <= 0:
            raise ValueError(f"DegradationConfig.cutoff_hz must be > 0 Hz, got {self.cutoff_hz!r}")
        if not np.isfinite(self.transition_hz) or self.transition_hz <= 0:
            raise ValueError(
                f"DegradationConfig.transition_hz must be > 0 Hz, got {self.transition_hz!r}"
            )
        if not 0.0 <= self.cutoff_jitter < 1.0:
            raise ValueError(
                f"DegradationConfig.cutoff_jitter must be in [0, 1), got {self.cutoff_jitter!r}"
            )


def lowpass_sos(
    kind: str, order: int, cutoff_hz: float, sample_rate: int
) -> np.ndarray:
    """Design one IIR low-pass "shaping" filter in second-order sections.

    Args:
        kind: ``"cheby1"`` (0.05 dB ripple), ``"butter"``, ``"ellip"``
            (0.05 dB ripple, 60 dB stopband) or ``"bessel"`` (``norm="mag"``,
            -3 dB at the cutoff).
        order: filter order, 1..16.
        cutoff_hz: corner frequency in Hz, ``0 < cutoff_hz < sample_rate/2``.
        sample_rate: sampling rate in Hz.

    Returns:
        ``sos`` array of shape ``(n_sections, 6)`` for
        :func:`scipy.signal.sosfiltfilt`.

    Raises:
        ValueError: unknown ``kind`` or cutoff not strictly inside
            ``(0, sample_rate/2)``.
    """
    nyquist = sample_rate / 2.0
    if not 0 < cutoff_hz < nyquist:
        raise ValueError(
            f"low-pass cutoff {cutoff_hz} Hz must lie strictly between 0 and the "
            f"Nyquist frequency {nyquist} Hz"
        )
    if kind == "cheby1":
        return _unit_dc(signal.cheby1(order, _CHEBY1_RIPPLE_DB, cutoff_hz, fs=sample_rate, output="sos"))
    if kind == "butter":
        return signal.butter(order, cutoff_hz, fs=sample_rate, output="sos")
    if kind == "ellip":
        return _unit_dc(signal.ellip(
            order, _ELLIP_RIPPLE_DB, _ELLIP_STOP_DB, cutoff_hz, fs=sample_rate, output="sos"
        ))
    if kind == "bessel":
        return signal.bessel(order, cutoff_hz, fs=sample_rate, output="sos", norm="mag")
    raise ValueError(f"unknown filter kind {kind!r}; expected one of {LOWPASS_FILTERS}")


def _guard_sos(pass_hz: float, stop_hz: float, sample_rate: int) -> np.ndarray:
    """Minimum-order elliptic low-pass: <= 0.05 dB ripple up to ``pass_hz``,
    >= 60 dB attenuation from ``stop_hz`` (single pass)."""
    order, wn = signal.ellipord(pass_hz, stop_hz, _GUARD_RIPPLE_DB, _GUARD_STOP_DB, fs=sample_rate)
    return _unit_dc(signal.ellip(order, _GUARD_RIPPLE_DB, _GUARD_STOP_DB, wn, fs=sample_rate, output="sos"))


def _unit_dc(sos: np.ndarray) -> np.ndarray:
    """Scale ``sos`` to exactly 0 dB at DC.

    Even-order Chebyshev-I and elliptic designs sit at ``-ripple`` dB at DC; a degradation
    must leave the kept band untouched (the model's job there is the identity), so the
    gain is normalised. The ripple is kept small (0.05 dB) for the same reason.
    """
    sos = np.array(sos, dtype=np.float64)
    dc = np.prod(sos[:, :3].sum(axis=1) / sos[:, 3:].sum(axis=1))
    sos[0, :3] /= dc
    return sos


def _sosfiltfilt(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Zero-phase filtering along the last axis that also works on signals
    shorter than scipy's default edge padding."""
    n = x.shape[-1]
    n_zero_b = int((sos[:, 2] == 0).sum())
    n_zero_a = int((sos[:, 5] == 0).sum())
    default_padlen = 3 * (2 * len(sos) + 1 - min(n_zero_b, n_zero_a))
    padlen = min(default_padlen, n - 1)
    return signal.sosfiltfilt(sos, x, axis=-1, padlen=padlen)


def _as_signal(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have a time axis (..., samples), got a scalar")
    if arr.shape[-1] == 0:
        raise ValueError(f"{name} has zero samples")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name} must be a real-valued numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _check_ratio(ratio: int) -> int:
    if isinstance(ratio, bool) or int(ratio) != ratio or ratio < 1:
        raise ValueError(f"ratio must be a positive integer, got {ratio!r}")
    return int(ratio)


def degrade(
    x: np.ndarray,
    sample_rate: int,
    config: DegradationConfig = DegradationConfig(),
    rng: Optional[np.random.Generator] = None,
) -> np.ndarray:
    """Band-limit ``x`` at its own sample rate (make a super-resolution input).

    ``kind="lowpass"`` (Coldenhoff & Ren 2021, Sec. VI-A "EQ silencing"):
    ``y = filtfilt(guard, filtfilt(H, x))`` where ``H`` is a
    :func:`lowpass_sos` filter at ``cutoff_hz`` and ``guard`` a fixed elliptic
    low-pass with passband edge ``cutoff_hz`` and stopband edge ``cutoff_hz +
    transition_hz``. Both passes are zero-phase (forward-backward), so the
    output stays time-aligned with the target. With ``rng`` the family of
    ``H`` is drawn from ``config.filters``, its order from ``config.orders``
    and the cutoff jittered by ``config.cutoff_jitter`` (Sulun & Davies 2020);
    without it the first family/order and the nominal cutoff are used, so the
    result is deterministic.

    ``kind="decimate"`` (Kuleshov et al. 2017): ``resample_poly(x, 1, ratio)``
    followed by ``resample_poly(., ratio, 1)`` with the same Kaiser window,
    cropped (or zero-padded) to the input length. With ``rng`` the Kaiser beta
    is drawn from ``config.kaiser_betas``, else the first. ``kind="resample"``:
    the same with :func:`rtgan.audio.io.resample` both ways (no randomness).
    ``config.guard=False`` skips the guard filter of ``"lowpass"``.

    Args:
        x: signal of shape ``(..., samples)``; leading axes are independent.
        sample_rate: sampling rate of ``x`` in Hz (> 0).
        config: the degradation to apply.
        rng: optional ``numpy.random.Generator`` for training-time variety.

    Returns:
        ``float32`` array with the same shape as ``x``.

    Raises:
        ValueError: zero-length or non-numeric ``x``, non-positive
            ``sample_rate``, or (``"lowpass"``) a possibly jittered cutoff with
            ``cutoff + transition_hz >= sample_rate / 2`` (Nyquist).
        TypeError: ``config`` is not a :class:`DegradationConfig`.
    """
    if not isinstance(config, DegradationConfig):
        raise TypeError(f"config must be a DegradationConfig, got {type(config).__name__}")
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    sample_rate = int(sample_rate)
    xf = _as_signal(x, "x")
    n = xf.shape[-1]

    if config.kind == "lowpass":
        nyquist = sample_rate / 2.0
        if config.cutoff_hz * (1.0 + config.cutoff_jitter) + config.transition_hz >= nyquist:
            raise ValueError(
                f"low-pass cutoff {config.cutoff_hz} Hz (jitter {config.cutoff_jitter}) plus "
                f"transition {config.transition_hz} Hz must stay below the Nyquist "
                f"frequency {nyquist} Hz of sample_rate={sample_rate}"
            )
        if rng is None:
            family, order, cutoff = config.filters[0], int(config.orders[0]), config.cutoff_hz
        else:
            family = config.filters[int(rng.integers(len(config.filters)))]
            order = int(config.orders[int(rng.integers(len(config.orders)))])
            cutoff = config.cutoff_hz
            if config.cutoff_jitter > 0:
                cutoff *= 1.0 + rng.uniform(-config.cutoff_jitter, config.cutoff_jitter)
        y = _sosfiltfilt(lowpass_sos(family, order, cutoff, sample_rate), xf)
        if config.guard:
            y = _sosfiltfilt(_guard_sos(cutoff, cutoff + config.transition_hz, sample_rate), y)
    else:  # "decimate", "resample"
        ratio = int(config.ratio)
        if config.kind == "resample":
            from .io import resample

            if sample_rate % ratio:
                raise ValueError(f"sample_rate {sample_rate} is not a multiple of ratio {ratio}")
            y = resample(resample(xf, sample_rate, sample_rate // ratio), sample_rate // ratio, sample_rate)
        else:
            betas = config.kaiser_betas
            beta = betas[0] if rng is None else betas[int(rng.integers(len(betas)))]
            window = ("kaiser", float(beta))
            low = signal.resample_poly(xf, 1, ratio, axis=-1, window=window)
            y = signal.resample_poly(low, ratio, 1, axis=-1, window=window)
        if y.shape[-1] >= n:
            y = y[..., :n]
        else:
            pad = [(0, 0)] * (y.ndim - 1) + [(0, n - y.shape[-1])]
            y = np.pad(y, pad)
    return np.ascontiguousarray(y, dtype=np.float32)


def decimate(x: np.ndarray, ratio: int) -> np.ndarray:
    """Anti-aliased integer down-sampling, ``resample_poly(x, 1, ratio)``.

    The polyphase FIR (Kaiser window, beta 5) low-passes at the new Nyquist
    ``sample_rate / (2 * ratio)`` before keeping every ``ratio``-th sample, as
    in the data preparation of Kuleshov et al. (2017).

    Args:
        x: signal ``(..., samples)`` at the high rate.
        ratio: integer factor >= 1 (1 returns a float32 copy).

    Returns:
        ``float32`` array ``(..., ceil(samples / ratio))`` at the low rate.

    Raises:
        ValueError: non-integer or non-positive ``ratio``, or empty ``x``.
    """
    ratio = _check_ratio(ratio)
    xf = _as_signal(x, "x")
    if ratio == 1:
        return xf.astype(np.float32, copy=True)
    return np.ascontiguousarray(signal.resample_poly(xf, 1, ratio, axis=-1), dtype=np.float32)


def spline_upsample(x_low: np.ndarray, ratio: int) -> np.ndarray:
    """Cubic-spline interpolation baseline of Kuleshov et al. (2017).

    Low-rate sample ``i`` is placed at high-rate index ``i * ratio`` and a
    not-a-knot cubic spline (:class:`scipy.interpolate.CubicSpline`) through
    those knots is evaluated at every high-rate index ``0 .. n_low*ratio - 1``;
    the last ``ratio - 1`` samples are extrapolated with the last cubic piece.
    The spline reproduces any cubic polynomial exactly (with >= 4 knots) and
    passes through the low-rate samples. With 1 knot the output is constant,
    with 2 or 3 knots the spline degenerates to the line/parabola through them.

    Typical baseline: ``spline_upsample(decimate(target, 3), 3)``.

    Args:
        x_low: low-rate signal ``(..., samples_low)``.
        ratio: integer up-sampling factor >= 1.

    Returns:
        ``float32`` array ``(..., samples_low * ratio)``.

    Raises:
        ValueError: non-integer or non-positive ``ratio``, or empty ``x_low``.
    """
    ratio = _check_ratio(ratio)
    xf = _as_signal(x_low, "x_low")
    n_low = xf.shape[-1]
    if ratio == 1:
        return xf.astype(np.float32, copy=True)
    if n_low == 1:
        return np.repeat(xf, ratio, axis=-1).astype(np.float32)
    knots = np.arange(n_low, dtype=np.float64) * ratio
    spline = interpolate.CubicSpline(knots, xf, axis=-1, bc_type="not-a-knot", extrapolate=True)
    out = spline(np.arange(n_low * ratio, dtype=np.float64))
    return np.ascontiguousarray(out, dtype=np.float32)
