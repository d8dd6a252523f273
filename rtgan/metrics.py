"""Objective evaluation metrics for audio super-resolution.

Signal-to-noise ratio and log-spectral distance as defined by Alahi,
Sifringer & Stegmüller (2020), "Audio enhancing with Wasserstein GANs",
Sec. V-B, eqs. (24) and (25) (the metrics of Kuleshov et al. 2017).

Both functions take an ``estimate`` (generated signal ``x_g``) and a
``target`` (reference ``x_t``) as ``(batch, samples)`` or ``(samples,)``
tensors and return one value per item. They also accept numpy arrays: then
the result is a numpy array for batched input and a Python ``float`` for
1-D input.

What a listener hears is measured by :func:`visqol` (ViSQOL v3 audio mode,
MOS-LQO 1..5, needs the ``eval`` extra) and by the tonal-artifact figures
:func:`tonal_peak_db` / :func:`tonal_peak_db_global` / :func:`tonal_artifact`
(narrow spectral lines in the generated band, such as the steady fs/4 tone
that stride-2 subpixel layers can leave).
"""

from __future__ import annotations

import importlib.util
from typing import Union

import numpy as np
import torch
from scipy import ndimage
from scipy import signal as sps
from torch import Tensor

__all__ = ["snr", "lsd", "SNR_EPS", "visqol", "visqol_bands", "tonal_peak_db", "tonal_peak_db_global", "tonal_artifact",
           "TONAL_BAND_HZ", "energy_decay_curve", "decay_time", "decay_times", "mrstft_distance",
           "DECAY_RANGES_DB"]

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


# --------------------------------------------------------------------------- ViSQOL

#: Sample rate (Hz) ViSQOL's audio mode is defined at.
VISQOL_SAMPLE_RATE = 48000
#: Sample rate (Hz) of each ViSQOL mode: audio (music, full band) and speech (wide band).
VISQOL_MODE_RATES = {"audio": VISQOL_SAMPLE_RATE, "speech": 16000}
#: Shortest signal (samples at 48 kHz) ViSQOL's audio mode scores: its patches are 45
#: frames of its gammatone spectrogram, ~1 s. Shorter pairs are tiled (see :func:`visqol`).
VISQOL_MIN_SAMPLES = 48000 * 5 // 4
_VISQOL_APIS: dict = {}


def _visqol_api(mode: str = "audio"):
    """The process's ViSQOL v3 instance for ``mode``, created on first use (loading the model
    takes about a second); speech mode uses the deep-lattice mapping when ai-edge-litert is
    installed (see :func:`visqol_mapping`).

    Raises:
        ImportError: visqol-python is not installed.
    """
    if mode not in _VISQOL_APIS:
        try:
            from visqol import VisqolApi
        except ImportError as exc:
            raise ImportError(
                "visqol() needs visqol-python: pip install 'rtgan[eval]' (or pip install visqol-python)"
            ) from exc
        api = VisqolApi()
        if mode == "speech":
            try:
                api.create(mode="speech", use_lattice_model=_has_lattice())
            except TypeError:  # an older API without the lattice switch
                api.create(mode="speech")
        else:
            api.create(mode=mode)
        _VISQOL_APIS[mode] = api
    return _VISQOL_APIS[mode]


def _has_lattice() -> bool:
    return importlib.util.find_spec("ai_edge_litert") is not None


def visqol_mapping(mode: str) -> str:
    """How ``mode``'s similarities become a MOS: ``"SVR"`` (audio), the deep-lattice model, or
    visqol-python's polynomial fallback (speech without ai-edge-litert; it warns that this may
    over-predict MOS by 1-2 points against the C++ default)."""
    if mode == "audio":
        return "SVR mapping"
    return ("deep-lattice mapping" if _has_lattice() else
            "polynomial mapping (ai-edge-litert not installed; visqol-python warns it may over-predict "
            "MOS by 1-2 points against the C++ default)")


def visqol_version() -> str | None:
    """Installed visqol-python version, or ``None`` when it is not installed."""
    try:
        import visqol
    except ImportError:
        return None
    return str(getattr(visqol, "__version__", "unknown"))


def _as_mono_float64(x, name: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (samples,), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} has zero samples")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real-valued, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return arr


def visqol(estimate: ArrayLike, target: ArrayLike, sample_rate: int = VISQOL_SAMPLE_RATE,
           mode: str = "audio") -> float:
    """ViSQOL v3 MOS-LQO of ``estimate`` against the reference ``target``, audio or speech mode.

    ViSQOL (Hines, Skoglund, Kokaram & Harte 2015, "ViSQOL: an objective speech quality
    model", EURASIP J. Audio Speech Music Process.; v3: Chinen, Lim, Skoglund, Gureev,
    O'Gorman & Kokaram 2020, "ViSQOL v3: an open source production ready objective speech
    and audio metric", QoMEX) compares gammatone spectrograms of the two signals patch by
    patch (NSIM similarity) and maps the similarities to a mean-opinion score with an SVR
    trained on listening tests. Audio mode, the one for music and full-band audio, is
    defined at 48 kHz; speech mode (wide-band speech) at 16 kHz. Here: visqol-python's
    ``VisqolApi`` (``create(mode=...)`` once per process and mode, reused), on float64 arrays.

    Cost: numba compiles the kernels on the first call of a fresh install (~10 s; the
    compiled code is cached on disk), then about 0.1 s per second of audio on one core
    (~1 s for a 10 s clip).

    Short signals: ViSQOL needs at least ~1 s (45 spectrogram frames per patch). A pair
    shorter than 1.25 s (:data:`VISQOL_MIN_SAMPLES` at 48 kHz) is tiled, estimate and reference
    alike, to that length, so a 0.6 s spoken word is scored as the same word said back to
    back (the score of identical signals stays at the maximum).

    Args:
        estimate: degraded / processed signal, 1-D ``(samples,)``, numpy or tensor.
        target: reference signal, 1-D, the same length.
        sample_rate: rate of both in Hz; must be the mode's (:data:`VISQOL_MODE_RATES`).
        mode: ``"audio"`` (48 kHz) or ``"speech"`` (16 kHz).

    Returns:
        MOS-LQO, a float in about [1, 5] (identical signals give ~4.7, the maximum the
        mapping reaches).

    Raises:
        ValueError: an unknown mode, ``sample_rate`` not the mode's, an input that is not 1-D,
            is empty, non-real or non-finite, or lengths that differ.
        ImportError: visqol-python is not installed (``pip install 'rtgan[eval]'``).
    """
    return visqol_bands(estimate, target, sample_rate, mode)["moslqo"]


def visqol_bands(estimate: ArrayLike, target: ArrayLike, sample_rate: int = VISQOL_SAMPLE_RATE,
                 mode: str = "audio") -> dict:
    """:func:`visqol` with the per-band similarities its score is mapped from.

    ViSQOL v3 (Chinen et al. 2020, Sec. 2) averages the NSIM similarity of matched
    spectrogram patches per gammatone band (``fvnsim``: 32 bands from 50 Hz to half the sample
    rate, ERB-spaced, in audio mode; 0..1, 1 where the estimate's band looks like the
    reference's) and maps that vector to MOS-LQO (an SVR in audio mode). The vector says
    where an estimate loses, e.g. which bands above a band-limited input's edge.

    Args, raises: as :func:`visqol` (the same tiling of short signals).

    Returns:
        ``{"moslqo": float, "band_nsim": (bands,) float64 array, "band_centres_hz": (bands,)
        float64 array}``.
    """
    if mode not in VISQOL_MODE_RATES:
        raise ValueError(f"visqol: unknown mode {mode!r}; expected one of {sorted(VISQOL_MODE_RATES)}")
    rate = VISQOL_MODE_RATES[mode]
    if isinstance(sample_rate, bool) or sample_rate != rate:
        raise ValueError(f"visqol: {mode} mode needs {rate} Hz signals, got sample_rate={sample_rate!r}")
    est = _as_mono_float64(estimate, "visqol: estimate")
    ref = _as_mono_float64(target, "visqol: target")
    if est.shape != ref.shape:
        raise ValueError(f"visqol: estimate has {est.size} samples, target {ref.size}")
    least = -(-VISQOL_MIN_SAMPLES * rate // VISQOL_SAMPLE_RATE)
    if est.size < least:
        reps = -(-least // est.size)
        est, ref = np.tile(est, reps), np.tile(ref, reps)
    result = _visqol_api(mode).measure_from_arrays(ref, est, rate)
    return {"moslqo": float(result.moslqo), "band_nsim": np.asarray(result.fvnsim, dtype=np.float64),
            "band_centres_hz": np.asarray(result.center_freq_bands, dtype=np.float64)}


# --------------------------------------------------------------------------- tonal artifacts

#: Default band (Hz) in which tonal peaks are looked for: the band a 16 kHz -> 48 kHz model
#: generates, with 500 Hz margins (the input's transition band below, Nyquist above).
TONAL_BAND_HZ: tuple[float, float] = (8500.0, 23500.0)


def _welch_band(audio, sample_rate: int, band: tuple[float, float], nperseg: int):
    """Welch PSD (Hann, 50 % overlap, density) and the mask of the bins inside ``band``."""
    x = _as_mono_float64(audio, "tonal_peak_db: audio")
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"tonal_peak_db: sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    if isinstance(nperseg, bool) or int(nperseg) != nperseg or nperseg < 16:
        raise ValueError(f"tonal_peak_db: nperseg must be an integer >= 16, got {nperseg!r}")
    if x.size < nperseg:
        raise ValueError(f"tonal_peak_db: need at least nperseg={nperseg} samples, got {x.size}")
    lo, hi = float(band[0]), float(band[1])
    if not 0.0 <= lo < hi <= sample_rate / 2.0:
        raise ValueError(f"tonal_peak_db: band {band} Hz must satisfy 0 <= low < high <= {sample_rate / 2} Hz")
    f, p = sps.welch(x, fs=sample_rate, window="hann", nperseg=int(nperseg), noverlap=int(nperseg) // 2,
                     detrend=False, scaling="density")
    mask = (f >= lo) & (f <= hi)
    if not mask.any():
        raise ValueError(f"tonal_peak_db: no spectral bin inside the band {band} Hz (bin width "
                         f"{sample_rate / nperseg:.1f} Hz)")
    return f, p, mask


# Power floor added to spectrum and median (PSD units, 1/Hz for signals in [-1, 1]): silent
# bins give 0 dB instead of 0/0. About -300 dB below full scale.
_PSD_FLOOR = 1e-30


def _peak(f: np.ndarray, p: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    ratio_db = 10.0 * np.log10((p[mask] + _PSD_FLOOR) / (ref + _PSD_FLOOR))
    i = int(np.argmax(ratio_db))
    return float(ratio_db[i]), float(f[mask][i])


def tonal_peak_db(audio: ArrayLike, sample_rate: int = 48000, band: tuple[float, float] = TONAL_BAND_HZ,
                  nperseg: int = 8192, median_hz: float = 1000.0) -> tuple[float, float]:
    """Height of the strongest narrow spectral peak in ``band`` above its neighbourhood (dB).

    ``P(f)``: Welch power spectral density of ``audio`` (periodic Hann window of
    ``nperseg`` samples, 50 % overlap, no detrending; bin width ``sample_rate / nperseg``,
    5.9 Hz by default). ``M(f)``: running median of ``P`` over a window of ``median_hz``
    centred on ``f`` (``round(median_hz / bin width)`` bins, made odd: 171 bins by default;
    computed over the whole spectrum, so the windows at the band's edges reach outside it).
    The result is ``max over f in band of 10 log10(P(f) / M(f))`` and the ``f`` where it
    occurs. A narrow tone stands out of its local median by its height above the noise
    floor around it; a smooth spectrum, however steep (a spectral slope, a low-pass), stays
    near 0 dB, so the figure measures tonal artifacts, e.g. the steady fs/4 = 12 kHz tone of
    stride-2 subpixel layers, and not how much energy a model puts in the band. Gaussian
    white noise gives 1-2 dB (the largest of ~2500 bin-wise estimates' fluctuations).

    Args:
        audio: 1-D ``(samples,)`` signal (numpy or tensor), at least ``nperseg`` samples.
        sample_rate: its rate in Hz.
        band: ``(low, high)`` in Hz, the frequencies searched (default 8.5-23.5 kHz, the band
            a 16 kHz -> 48 kHz model generates).
        nperseg: Welch segment length in samples.
        median_hz: width of the running-median window in Hz.

    Returns:
        ``(peak_db, freq_hz)``: the peak's height above the local median in dB, and its
        frequency in Hz (a Welch bin centre).

    Raises:
        ValueError: bad ``audio`` (not 1-D, empty, non-finite, shorter than ``nperseg``),
            sample rate, ``nperseg``, ``band`` or ``median_hz``.
    """
    f, p, mask = _welch_band(audio, sample_rate, band, nperseg)
    if not np.isfinite(median_hz) or median_hz <= 0:
        raise ValueError(f"tonal_peak_db: median_hz must be > 0, got {median_hz!r}")
    bins = max(3, int(round(median_hz / (f[1] - f[0]))) | 1)
    local = ndimage.median_filter(p, size=bins, mode="nearest")
    return _peak(f, p, local[mask], mask)


def tonal_peak_db_global(audio: ArrayLike, sample_rate: int = 48000, band: tuple[float, float] = TONAL_BAND_HZ,
                         nperseg: int = 8192) -> tuple[float, float]:
    """Peak-to-median ratio (dB) of the power spectrum over ``band``, and where the peak is.

    As :func:`tonal_peak_db` but against one reference, the median of ``P`` over all bins
    in ``band`` (the issue's first wording: "peak-to-median ratio (dB) of the output's power
    spectrum over the generated band"). Unlike the local figure it also grows with the
    spectral slope across the band (white noise through a first-order low-pass at 1 kHz,
    falling 6 dB/octave, scores ~10 dB with no tone at all), so read it beside
    :func:`tonal_peak_db`.

    Returns:
        ``(peak_db, freq_hz)``.

    Raises:
        ValueError: as :func:`tonal_peak_db`.
    """
    f, p, mask = _welch_band(audio, sample_rate, band, nperseg)
    return _peak(f, p, np.median(p[mask]), mask)


def tonal_artifact(model, seconds: float = 10.0, seed: int = 0, limiter: str = "soxr",
                   rms_dbfs: float = -20.0) -> dict:
    """Tonal figure of a super-resolution model: band-limited white noise in, peaks out.

    Gaussian white noise of ``seconds`` at the model's output rate and ``rms_dbfs`` dBFS RMS
    (seed ``seed``) is band-limited to the model's input and run through ``model`` offline
    (:func:`rtgan.engine.overlap_save.offline`, no gradients, eval mode, the model's device;
    its training flag is restored). The output's (and, for reference, the input's)
    :func:`tonal_peak_db` and :func:`tonal_peak_db_global` over the band the model generates
    are returned. A model that fills the band with noise-like content scores 1-2 dB; a steady
    tone scores its height above the generated noise floor.

    Two kinds of model, as the project's SR models are trained:

    * 48 kHz -> 48 kHz (sr-hifigan): :func:`rtgan.audio.bandlimit.band_limit` ``(limiter, .)``
      makes the input; the band is :data:`TONAL_BAND_HZ` (8.5-23.5 kHz).
    * ``16000 / r`` Hz -> 16 kHz, ``r`` in 2, 4 (the sr16 family, seed 002): the input is the
      noise decimated as the sr16 recipes decimate, :func:`scipy.signal.decimate` (order-8
      Chebyshev I, cutoff ``0.8 * 8000 / r`` Hz, zero phase; ``limiter`` is not used); the
      band runs from 250 Hz above that cutoff to 250 Hz below 8 kHz (3.45-7.75 kHz at
      ``r = 2``, 1.85-7.75 kHz at ``r = 4``). The U-Net's stride-2 levels could leave tones at
      multiples of ``16000 / 2**k`` Hz.

    Args:
        model: a :class:`rtgan.models.base.Generator` of one of the two kinds.
        seconds: length of the noise in seconds (>= 1).
        seed: seed of the noise (``numpy.random.default_rng``).
        limiter: name in :data:`rtgan.audio.bandlimit.BAND_LIMITERS` (48 kHz models).
        rms_dbfs: noise level in dB re full scale (RMS).

    Returns:
        dict with ``peak_db``, ``freq_hz`` (output, against the local median),
        ``global_peak_db``, ``global_freq_hz`` (output, against the band's median), the same
        four for the input prefixed ``input_`` (for 16 kHz models the input is brought to
        16 kHz by :func:`scipy.signal.resample_poly`, so its figure is over the same band), and ``limiter`` (``"cheby1"`` for 16 kHz models), ``seconds``, ``seed``,
        ``rms_dbfs``, ``band_hz``, ``nperseg``, ``median_hz``.

    Raises:
        ValueError: a model of neither kind, unknown limiter, ``seconds < 1``.
    """
    from scipy.signal import decimate, resample_poly

    from .audio.bandlimit import band_limit
    from .engine.overlap_save import offline

    sr_in, sr = int(model.sample_rate_in), int(model.sample_rate_out)
    ratio = sr // sr_in if sr_in and sr % sr_in == 0 else 0
    if not ((sr_in, sr) == (48000, 48000) or (sr == 16000 and ratio in (2, 4))):
        raise ValueError(f"tonal_artifact needs a 48 kHz -> 48 kHz or 8/4 kHz -> 16 kHz model, "
                         f"got {sr_in} -> {sr} Hz")
    if not np.isfinite(seconds) or seconds < 1.0:
        raise ValueError(f"tonal_artifact: seconds must be >= 1, got {seconds!r}")
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(int(round(seconds * sr))) * 10.0 ** (rms_dbfs / 20.0)
    if sr == 48000:
        x, _ = band_limit(limiter, noise, sr)
        reference, band = x, TONAL_BAND_HZ
    else:
        noise = noise[: noise.size - noise.size % ratio]
        x = decimate(noise, ratio, ftype="iir", zero_phase=True)
        reference = resample_poly(x, ratio, 1)
        band = (0.8 * sr_in / 2 + 250.0, sr / 2 - 250.0)
        limiter = "cheby1"
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = offline(model, torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)[None, None])
            out = out[0, 0].float().cpu().numpy()
    finally:
        model.train(was_training)
    res: dict = {"limiter": limiter, "seconds": float(seconds), "seed": int(seed), "rms_dbfs": float(rms_dbfs),
                 "band_hz": list(band), "nperseg": 8192, "median_hz": 1000.0}
    for prefix, sig in (("", out), ("input_", reference)):
        res[prefix + "peak_db"], res[prefix + "freq_hz"] = tonal_peak_db(sig, sr, band)
        res[prefix + "global_peak_db"], res[prefix + "global_freq_hz"] = tonal_peak_db_global(sig, sr, band)
    return res


# -- reverberation: energy decay by Schroeder backward integration -------------------------

#: fitting ranges of the EDC (dB below its start) of each decay figure (ISO 3382-1:2009, Sec. A.2)
DECAY_RANGES_DB = {"edt": (0.0, -10.0), "t20": (-5.0, -25.0), "t30": (-5.0, -35.0)}


def energy_decay_curve(ir: ArrayLike) -> np.ndarray:
    """Schroeder's energy decay curve of an impulse response, in dB re its start.

    ``EDC(t) = 10 log10( sum_{tau >= t} h(tau)^2 / sum_tau h(tau)^2 )`` (Schroeder 1965, "New
    method of measuring reverberation time", eq. 2: backward integration of the squared
    response). ``ir``: ``(samples,)``; returns ``(samples,)`` float64, 0 dB at the start and
    decreasing, ``-inf`` past the last non-zero sample.

    Raises:
        ValueError: not 1-D, empty, non-finite, or all zeros.
    """
    h = np.asarray(ir.detach().cpu() if isinstance(ir, Tensor) else ir, dtype=np.float64)
    if h.ndim != 1 or h.size == 0:
        raise ValueError(f"an impulse response must be 1-D and non-empty, got shape {h.shape}")
    if not np.isfinite(h).all():
        raise ValueError("the impulse response has NaN or Inf samples")
    e = np.cumsum((h ** 2)[::-1])[::-1]
    if e[0] <= 0:
        raise ValueError("the impulse response is all zeros")
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(e / e[0])


def decay_time(ir: ArrayLike, sample_rate: int, kind: str = "t30", max_nonlinearity: float | None = 10.0) -> float:
    """Reverberation time (s) from the slope of the energy decay curve, extrapolated to 60 dB.

    A least-squares line is fitted to :func:`energy_decay_curve` between the levels of
    :data:`DECAY_RANGES_DB` ``[kind]`` (``t30``: -5 to -35 dB, ``t20``: -5 to -25 dB, ``edt``:
    0 to -10 dB, the early decay time; ISO 3382-1 Sec. 3 and A.2) and ``-60 / slope`` is
    returned: the RT60 that decay rate gives.

    A response cut off before its decay ends has a backward integral that bends down to
    ``-inf`` at the cut, and a line through the bend is steeper than the decay: the fit's
    non-linearity ``xi = 1000 (1 - r^2)`` (per mille, ``r`` the correlation coefficient of the
    fitted range; ISO 3382-2:2008 Annex B, where more than 10 per mille marks a curved decay)
    is checked against ``max_nonlinearity`` (``None``: not checked) for T20 and T30; the EDT
    is the slope of the first 10 dB whatever their shape (a reverb's build-up bends them).

    Raises:
        ValueError: a bad ``ir`` (see :func:`energy_decay_curve`), an unknown ``kind``, a
            curve that does not fall to the range's lower level, or one too curved over the
            range to give one decay rate (a response cut off early, a double slope).
    """
    if kind not in DECAY_RANGES_DB:
        raise ValueError(f"unknown decay figure {kind!r}; expected one of {sorted(DECAY_RANGES_DB)}")
    hi, lo = DECAY_RANGES_DB[kind]
    edc = energy_decay_curve(ir)
    sel = np.flatnonzero((edc <= hi) & (edc >= lo))
    if edc[-1] > lo or sel.size < 2:
        raise ValueError(f"the energy decay curve ends at {edc[-1]:.1f} dB: it does not reach {lo:g} dB for {kind}")
    t = sel / float(sample_rate)
    slope = np.polyfit(t, edc[sel], 1)[0]  # dB/s
    xi = 1000.0 * (1.0 - np.corrcoef(t, edc[sel])[0, 1] ** 2)
    if max_nonlinearity is not None and kind != "edt" and xi > max_nonlinearity:
        raise ValueError(f"the energy decay curve is curved over {hi:g}..{lo:g} dB (non-linearity {xi:.0f} per mille "
                         f"> {max_nonlinearity:g}): a response cut off before its decay ends, or a double slope")
    if slope >= 0:
        raise ValueError(f"the energy decay curve does not decay over {hi:g}..{lo:g} dB")
    return float(-60.0 / slope)


def decay_times(ir: ArrayLike, sample_rate: int, max_nonlinearity: float | None = 10.0) -> dict[str, float]:
    """``{"edt", "t20", "t30"}`` of :func:`decay_time` (s; NaN where the curve does not give one)."""
    out = {}
    for kind in DECAY_RANGES_DB:
        try:
            out[kind] = decay_time(ir, sample_rate, kind, max_nonlinearity)
        except ValueError:
            out[kind] = float("nan")
    return out


def mrstft_distance(estimate: ArrayLike, target: ArrayLike) -> float:
    """Multi-resolution STFT distance ``L_sc + L_mag`` (Yamamoto et al. 2020, eqs. 2-4).

    The value of :func:`rtgan.losses.multi_resolution_stft_loss` (its default resolutions) for
    one pair of waveforms ``(samples,)``: 0 for identical signals, dimensionless.

    Raises:
        ValueError: shapes differ.
    """
    from .losses import multi_resolution_stft_loss
    e = torch.as_tensor(np.asarray(estimate, dtype=np.float32)).reshape(1, -1)
    t = torch.as_tensor(np.asarray(target, dtype=np.float32)).reshape(1, -1)
    with torch.no_grad():
        sc, mag = multi_resolution_stft_loss(e, t)
    return float(sc + mag)


# -- note models: pitch (CREPE), release decay, diversity --------------------------------------
#
# The note metrics of ``rtgan eval`` for note models (:mod:`rtgan.evaluate_notes`). Pitch uses
# torchcrepe, a PyTorch port of CREPE (Kim, Salamon, Li & Bello 2018, "CREPE: A Convolutional
# Representation for Pitch Estimation", ICASSP), imported lazily by :func:`load_torchcrepe`:
# importing this module never imports torchcrepe or torchaudio.

#: How to install torchcrepe without its torchaudio requirement (which would pull another torch).
TORCHCREPE_PIP = "pip install --no-deps torchcrepe==0.0.24 resampy==0.4.3"
#: CREPE's pitch bins start at 1997.38 cents above 10 Hz (31.7 Hz). torchcrepe masks the bins below
#: ``fmin`` with ``probabilities[:, :bin(fmin)]``: a bin index that goes negative (fmin under 31.7 Hz)
#: masks all but the top bins, and every frame decodes to the wrong end of the range. C1 (32.70 Hz),
#: the note set's lower limit (:data:`rtgan.data.notes.MIN_PITCH`), is the bound: ``fmin`` must lie above it.
CREPE_FMIN_LIMIT_HZ = 32.70
#: Default search range of :func:`note_pitch`, Hz: the bass range MIDI 28..64 is 41.2..329.6 Hz; 35 Hz
#: leaves 2.8 semitones below E1, 1000 Hz more than an octave and a half above E4 (octave errors of the
#: top notes are still seen as errors, not clipped into the range).
NOTE_PITCH_FMIN_HZ = 35.0
NOTE_PITCH_FMAX_HZ = 1000.0
#: Analysis window of :func:`note_pitch`, seconds after the note's start: the sustain of a note held 3 s
#: (the note set's ``note_seconds``), past the attack transient and before the release.
NOTE_PITCH_WINDOW_S = (0.1, 2.5)
#: CREPE periodicity (the decoded bin's probability, 0..1) above which a frame counts as voiced.
NOTE_PERIODICITY_THRESHOLD = 0.5


def load_torchcrepe():
    """The ``torchcrepe`` module, imported on first use.

    torchcrepe 0.0.24 imports torchaudio at import time (``torchcrepe/load.py``) only to read
    files (``torchcrepe.load.audio``), and the torchaudio on the package index may not match the
    pinned torch. rtgan never loads files through torchcrepe (it passes tensors), so when
    ``import torchaudio`` fails a placeholder module stands in for it in
    ``sys.modules["torchaudio"]`` during torchcrepe's import only (removed afterwards; anything
    that touches the placeholder raises ImportError). A torchaudio that imports is used as is.

    Raises:
        ImportError: torchcrepe (or its resampy / librosa dependency) is not installed; one line
            with the pip command (:data:`TORCHCREPE_PIP`).
    """
    import sys
    if "torchcrepe" in sys.modules:
        return sys.modules["torchcrepe"]
    if importlib.util.find_spec("torchcrepe") is None:
        raise ImportError(f"pitch accuracy needs torchcrepe: {TORCHCREPE_PIP}")
    placeholder = None
    before = set(sys.modules)
    try:
        import torchaudio  # noqa: F401
    except Exception:  # noqa: BLE001 - missing, or built for another torch (ImportError, OSError, ...)
        for name in set(sys.modules) - before:  # a half-imported torchaudio leaves nothing behind
            if name == "torchaudio" or name.startswith("torchaudio."):
                del sys.modules[name]
        import types

        def _missing(name):
            if name.startswith("__"):  # probes such as __path__ or __file__: an ordinary missing attribute
                raise AttributeError(name)
            raise ImportError(f"torchaudio is not installed (rtgan's placeholder: torchaudio.{name} is not "
                              "available; rtgan never loads files through torchcrepe)")

        placeholder = types.ModuleType("torchaudio")
        placeholder.__doc__ = "rtgan placeholder: torchcrepe imports torchaudio only to load files"
        placeholder.__getattr__ = _missing
        sys.modules["torchaudio"] = placeholder
    try:
        import torchcrepe
    except ImportError as exc:
        for name in set(sys.modules) - before:  # leave no half-imported torchcrepe
            if name == "torchcrepe" or name.startswith("torchcrepe."):
                del sys.modules[name]
        raise ImportError(f"torchcrepe could not be imported ({exc}): {TORCHCREPE_PIP} "
                          "(and librosa for its decoders)") from exc
    finally:
        if placeholder is not None and sys.modules.get("torchaudio") is placeholder:
            del sys.modules["torchaudio"]
    return torchcrepe


def _mono_1d(audio, name: str) -> np.ndarray:
    x = np.asarray(audio.detach().cpu() if isinstance(audio, Tensor) else audio, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name}: audio must be 1-D (samples,) and non-empty, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: audio has NaN or Inf samples")
    return x


def note_pitch(audio: ArrayLike, sample_rate: int, fmin: float = NOTE_PITCH_FMIN_HZ,
               fmax: float = NOTE_PITCH_FMAX_HZ, model: str = "full",
               window_s: tuple[float, float] = NOTE_PITCH_WINDOW_S, hop_s: float = 0.05,
               threshold: float = NOTE_PERIODICITY_THRESHOLD, device: str = "cpu",
               batch_size: int = 512) -> tuple[float, float]:
    """Fundamental frequency of one held note: CREPE's median f0 over the voiced frames of its sustain.

    CREPE (Kim et al. 2018) through torchcrepe (:func:`load_torchcrepe`): frames of 1024 samples at
    16 kHz (torchcrepe resamples other rates with resampy) every ``hop_s`` seconds (50 ms), each mean-removed and
    scaled to unit variance, give probabilities over 360 pitch bins of 20 cents; bins outside
    ``[fmin, fmax]`` are masked, and torchcrepe's ``weighted_argmax`` decoder gives each frame's f0
    (probability-weighted mean of the 9 bins around the best one: no random dither, unlike its
    ``viterbi`` decoder) and its periodicity (the best bin's probability). Frames whose periodicity is
    at least ``threshold`` are voiced; the result is the median f0 of the voiced frames.

    Only ``audio[window_s[0] : window_s[1]]`` (seconds, clipped to the note) is analysed, frames
    centred on its samples (zero-padded by half a frame at its ends): by default 0.1 to 2.5 s, the
    sustain of a note held 3 s. When less than one CREPE frame (64 ms) of the window lies inside the
    note, the whole note is analysed.

    ``model``: torchcrepe's capacity, ``"full"`` (default; about 3.4 s per note at the default 50 ms hop
    on one CPU thread) or ``"tiny"`` (about 15 times faster). Measured on the test split of the bass
    note set (``rtgan data notes``: 128 notes, FluidSynth GM basses 32..39, MIDI 30..62, dry and
    reverberant): ``full`` put all 128 within 50 cents of their MIDI pitch (median error 6.9 cents);
    ``tiny`` (10 ms hop) 112 (dry 0.91, reverb 0.84), its misses octave and twelfth errors on
    slap-bass (programs 36, 37) and fretless (34) notes.

    Args:
        audio: ``(samples,)`` tensor or array, one note starting at sample 0.
        sample_rate: Hz.
        fmin, fmax: search range, Hz; ``fmin`` above :data:`CREPE_FMIN_LIMIT_HZ` (32.70 Hz),
            ``fmax`` at most torchcrepe's 2006 Hz.
        threshold: periodicity (0..1) a frame needs to count as voiced (default 0.5).
        device, batch_size: torchcrepe's (frames per forward pass).

    Returns:
        ``(f0_hz, voiced_fraction)``: the median f0 in Hz (``nan`` when no frame is voiced) and the
        share of analysed frames that are voiced (0..1).

    Raises:
        ValueError: ``fmin`` at or below 32.70 Hz, ``fmax`` not above ``fmin`` or above 2006 Hz, a bad
            window, hop or threshold, audio that is not 1-D, empty or non-finite.
        ImportError: torchcrepe is not installed (:data:`TORCHCREPE_PIP`).
    """
    if not fmin > CREPE_FMIN_LIMIT_HZ:
        raise ValueError(f"note_pitch: fmin must be above {CREPE_FMIN_LIMIT_HZ} Hz (CREPE's lowest bin is 31.7 Hz; "
                         f"below it torchcrepe decodes every frame to the edge of the range), got {fmin}")
    if not fmin < fmax <= 2006.0:
        raise ValueError(f"note_pitch: need fmin < fmax <= 2006 Hz (torchcrepe's top), got {fmin}, {fmax}")
    if not (0.0 <= window_s[0] < window_s[1]) or not hop_s > 0 or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"note_pitch: bad window {window_s}, hop {hop_s} or threshold {threshold}")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"note_pitch: sample_rate must be a positive integer, got {sample_rate}")
    x = _mono_1d(audio, "note_pitch")
    torchcrepe = load_torchcrepe()
    sr = int(sample_rate)
    i0, i1 = int(round(window_s[0] * sr)), min(int(round(window_s[1] * sr)), x.size)
    if i1 - i0 < int(np.ceil(torchcrepe.WINDOW_SIZE * sr / torchcrepe.SAMPLE_RATE)):
        i0, i1 = 0, x.size
    seg = torch.from_numpy(np.ascontiguousarray(x[i0:i1], dtype=np.float32))[None]
    hop = max(1, int(round(hop_s * sr)))
    f0, periodicity = torchcrepe.predict(seg, sr, hop_length=hop, fmin=float(fmin), fmax=float(fmax), model=model,
                                         decoder=torchcrepe.decode.weighted_argmax, return_periodicity=True,
                                         batch_size=batch_size, device=device, pad=True)
    f0 = f0[0].double().cpu().numpy()
    voiced = periodicity[0].cpu().numpy() >= threshold
    frac = float(voiced.mean()) if voiced.size else 0.0
    return (float(np.median(f0[voiced])) if voiced.any() else float("nan")), frac


def pitch_accuracy(estimated_hz, target_midi, tolerance_cents: float = 50.0) -> float:
    """Share of notes whose estimated f0 lies within ``tolerance_cents`` of their target MIDI pitch.

    ``cents = 1200 log2(f0 / (440 * 2 ** ((midi - 69) / 12)))``; a note is right when
    ``|cents| <= tolerance_cents`` (50: the nearest semitone is the target's). An unvoiced note (f0
    NaN, or not positive) counts as wrong.

    The estimate comes from CREPE (:func:`note_pitch`, Kim et al. 2018), a pitch tracker trained on
    other data, which measures f0 in Hz. GANSynth (Engel et al. 2019, Sec. 4.1) reported "pitch
    accuracy" from a pitch *classifier* (an Inception-style network trained on NSynth to name the
    MIDI pitch, the same net as its Inception Score): that classifier is not available for this data,
    and one trained here would share the generator's training set and its biases. CREPE needs no
    training on it but can make octave errors on notes with a weak fundamental, so the evaluation
    also reports its accuracy on the real notes (its ceiling).

    Args:
        estimated_hz: f0 estimates, Hz, any shape.
        target_midi: MIDI pitches, the same shape.

    Returns:
        the fraction (0..1).

    Raises:
        ValueError: shapes differ, no notes, or a negative tolerance.
    """
    f = np.asarray(estimated_hz, dtype=np.float64)
    m = np.asarray(target_midi, dtype=np.float64)
    if f.shape != m.shape or f.size == 0:
        raise ValueError(f"pitch_accuracy: need the same non-empty shape, got {f.shape} and {m.shape}")
    if not tolerance_cents >= 0:
        raise ValueError(f"pitch_accuracy: tolerance must be >= 0 cents, got {tolerance_cents}")
    ok = np.isfinite(f) & (f > 0)
    cents = np.full(f.shape, np.inf)
    cents[ok] = 1200.0 * np.log2(f[ok] / (440.0 * 2.0 ** ((m[ok] - 69.0) / 12.0)))
    return float(np.mean(np.abs(cents) <= tolerance_cents))


#: :func:`decay_rate_db_per_s` defaults: note-off at 3 s (the note set's ``note_seconds``), frames of
#: 20 ms every 10 ms, the held level over the 100 ms before the note-off, the fit down to 30 dB below it.
DECAY_NOTE_OFF_S = 3.0
DECAY_FRAME_S = 0.02
DECAY_HOP_S = 0.01
DECAY_REFERENCE_S = 0.1
DECAY_DROP_DB = 30.0


def decay_rate_db_per_s(audio: ArrayLike, sample_rate: int, note_off_s: float = DECAY_NOTE_OFF_S,
                        frame_s: float = DECAY_FRAME_S, hop_s: float = DECAY_HOP_S,
                        reference_s: float = DECAY_REFERENCE_S, drop_db: float = DECAY_DROP_DB) -> float:
    """Release decay rate of a note after its note-off, in dB/s (positive: the energy falls).

    1. Reference level: ``10 log10`` of the mean square of the ``reference_s`` (100 ms) before the
       note-off (``note_off_s``, 3 s: the note set's notes are held 3 s of 4).
    2. Frame levels: mean square of rectangular frames of ``frame_s`` (20 ms) centred every
       ``hop_s`` (10 ms) from the note-off on (frames that fit in the note), in dB re the reference.
    3. The fit range runs from the note-off to the first frame more than ``drop_db`` (30 dB) below
       the reference, inclusive, or to the end of the note.
    4. The rate is minus the least-squares slope of level against time over that range.

    Why the release: in the note set (FluidSynth GM basses, ``/work/notes``) the reverberant notes
    differ from the dry ones mainly after the note-off, where the dry note stops within a few tens of
    ms and the reverb's tail rings on; during the held part both decay alike. Measured on its test
    split (64 dry, 64 reverb notes): this rate has median 459 dB/s (mean 507, range 158..1467) for dry
    notes and 23.3 dB/s (mean 24.3, range 16.4..45.5) for reverberant ones; train and val agree
    (medians 458 / 457 dry, 22.6 / 22.4 reverb). The same line fitted from the peak frame between
    -5 and -35 dB before the note-off (the held part) gave medians 3.7 (dry) and 3.6 (reverb) dB/s on
    the test split: no separation. A dry release faster than the frames resolve reads as a rate of a
    few hundred dB/s: the number says "stops", not how fast.

    Args:
        audio: ``(samples,)`` tensor or array, the note from its start.
        sample_rate: Hz.

    Returns:
        the decay rate, dB/s (negative if the level rises after the note-off).

    Raises:
        ValueError: non-positive sizes; audio that is not 1-D, empty or non-finite; a note too short for
            the reference and three frames after the note-off; silence before the note-off.
    """
    if not (note_off_s > 0 and frame_s > 0 and hop_s > 0 and reference_s > 0 and drop_db > 0):
        raise ValueError(f"decay_rate_db_per_s: note_off_s, frame_s, hop_s, reference_s and drop_db must be "
                         f"positive, got {note_off_s}, {frame_s}, {hop_s}, {reference_s}, {drop_db}")
    x = _mono_1d(audio, "decay_rate_db_per_s")
    sr = float(sample_rate)
    off = int(round(note_off_s * sr))
    ref_n = max(1, int(round(reference_s * sr)))
    frame = max(1, int(round(frame_s * sr)))
    hop = max(1, int(round(hop_s * sr)))
    half = frame // 2
    n_frames = (x.size - (off + frame - half)) // hop + 1 if x.size >= off + frame - half else 0
    if off - ref_n < 0 or off - half < 0 or n_frames < 3:
        raise ValueError(f"decay_rate_db_per_s: a note of {x.size / sr:.3f} s is too short for a note-off at "
                         f"{note_off_s} s ({reference_s} s before it, three {frame_s} s frames after it)")
    ref = float(np.mean(x[off - ref_n:off] ** 2))
    if not ref > 0:
        raise ValueError("decay_rate_db_per_s: the note is silent before its note-off")
    starts = off - half + hop * np.arange(n_frames)
    e = np.mean(x[starts[:, None] + np.arange(frame)[None, :]] ** 2, axis=1)
    level = 10.0 * np.log10(np.maximum(e, 1e-30) / ref)
    below = np.flatnonzero(level < -drop_db)
    end = int(below[0]) + 1 if below.size else n_frames
    end = max(end, 2)
    t = hop * np.arange(end) / sr
    return float(-np.polyfit(t, level[:end], 1)[0])


#: :func:`mean_pairwise_logmel_distance` defaults: Hann STFT of 1024 samples, hop 256, 80 Slaney mel
#: bands over 0..Nyquist (:func:`rtgan.dsp.log_mel`), each note scaled to an RMS of 0.1 (-20 dBFS) first.
DIVERSITY_N_FFT = 1024
DIVERSITY_HOP = 256
DIVERSITY_N_MELS = 80
DIVERSITY_RMS = 0.1


def mean_pairwise_logmel_distance(notes, sample_rate: int, n_fft: int = DIVERSITY_N_FFT,
                                  hop_length: int = DIVERSITY_HOP, n_mels: int = DIVERSITY_N_MELS,
                                  normalize: bool = True) -> float:
    """Diversity of a set of notes: the mean over all pairs of their mean absolute log-mel difference.

    Each note ``(samples,)`` -> :func:`rtgan.dsp.log_mel` (natural log of the Slaney mel magnitude,
    floor 1e-5; ``n_fft``, ``hop_length``, ``n_mels``, 0 Hz..Nyquist) after scaling it to an RMS of
    :data:`DIVERSITY_RMS` (``normalize``: so that level, e.g. a real note's velocity, does not count,
    only spectral and temporal shape); the distance of two notes is the mean of ``|A - B|`` over
    bands and frames (nats), and the result the mean over the ``n (n - 1) / 2`` pairs. 0 for identical
    notes. Compare sets of equal-length notes (generated with generated, real with real).

    Args:
        notes: a sequence of ``(samples,)`` arrays or tensors of one length, or an ``(n, samples)``
            array or tensor; ``n >= 2``.
        sample_rate: Hz.

    Returns:
        the mean pairwise distance, nats (>= 0).

    Raises:
        ValueError: fewer than two notes, notes of different lengths or shorter than ``n_fft``,
            non-finite samples, a silent note (with ``normalize``).
    """
    from .dsp import log_mel
    arrs = [_mono_1d(n, "mean_pairwise_logmel_distance") for n in notes]
    if len(arrs) < 2:
        raise ValueError(f"mean_pairwise_logmel_distance: need at least 2 notes, got {len(arrs)}")
    lengths = {a.size for a in arrs}
    if len(lengths) != 1:
        raise ValueError(f"mean_pairwise_logmel_distance: notes differ in length: {sorted(lengths)} samples")
    if arrs[0].size < n_fft:
        raise ValueError(f"mean_pairwise_logmel_distance: notes of {arrs[0].size} samples are shorter than "
                         f"n_fft {n_fft}")
    x = np.stack(arrs)
    if normalize:
        rms = np.sqrt(np.mean(x ** 2, axis=1, keepdims=True))
        if not (rms > 0).all():
            raise ValueError("mean_pairwise_logmel_distance: a note is silent (cannot be normalised)")
        x = x * (DIVERSITY_RMS / rms)
    with torch.no_grad():
        m = log_mel(torch.from_numpy(x).float(), int(sample_rate), n_fft=n_fft, hop_length=hop_length,
                    n_mels=n_mels).double()
    i, j = np.triu_indices(len(arrs), k=1)
    d = (m[torch.from_numpy(i)] - m[torch.from_numpy(j)]).abs().mean(dim=(1, 2))
    return float(d.mean())


__all__ += ["TORCHCREPE_PIP", "CREPE_FMIN_LIMIT_HZ", "load_torchcrepe", "note_pitch", "pitch_accuracy",
            "decay_rate_db_per_s", "mean_pairwise_logmel_distance"]
