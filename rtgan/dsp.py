"""Spectral front ends shared by losses, metrics and models: STFT magnitude and mel.

One STFT convention everywhere (librosa's): periodic Hann window of ``win_length`` samples
centred in an ``n_fft`` frame, ``center=True`` with zero padding of ``n_fft // 2`` on each
side, no normalisation, one-sided spectrum. The mel filter bank is the Slaney design
(``librosa.filters.mel`` defaults: Slaney mel scale, area normalisation), written here in
torch so that training and inference need no librosa; a test compares it with librosa.

The exception is GANSynth's IF-Mel representation (:func:`ifmel`, :func:`ifmel_to_audio`) at the
end of the file, which keeps GANSynth's own STFT framing and HTK mel matrix.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["stft_magnitude", "hz_to_mel", "mel_to_hz", "mel_points_hz", "mel_filterbank", "log_mel",
           "IFMelSpec", "ifmel", "ifmel_to_audio", "gansynth_mel_matrix", "gansynth_mel_to_linear_matrix"]


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
def mel_points_hz(n_mels: int, fmin: float, fmax: float) -> Tensor:
    """The ``n_mels + 2`` Slaney-mel-spaced frequencies (Hz, float64) of the triangular filters: filter
    ``k`` rises from point ``k``, peaks at ``k + 1`` (its centre) and ends at ``k + 2``."""
    mel_pts = torch.linspace(float(hz_to_mel(torch.tensor(fmin))), float(hz_to_mel(torch.tensor(fmax))),
                             n_mels + 2, dtype=torch.float64)
    return mel_to_hz(mel_pts)


def _mel_filterbank64(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> Tensor:
    fft_freqs = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    hz_pts = mel_points_hz(n_mels, fmin, fmax)
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


# ---------------------------------------------------------------------------------------------
# GANSynth IF-Mel representation (Engel et al. 2019, "GANSynth: Adversarial Neural Audio
# Synthesis", ICLR, Sec. 2-3) and its approximate inverse.
#
# The conventions below follow magenta's reference implementation, which the paper's numbers come
# from (magenta/models/gansynth/lib/specgrams_helper.py and spectral_ops.py; SpecgramsHelper as
# built by data_helpers.DataSTFTHelper: overlap 0.75, mel_downscale 1, ifreq=True, discard_dc
# left at its default True). They are reimplemented here in torch; the deliberate quirks of the
# reference (all padding on the left, the DC bin dropped, an additive log floor, a mel grid of
# 1024 points spanning 0..Nyquist) are kept so that tensors match GANSynth's.
# ---------------------------------------------------------------------------------------------

_HTK_BREAK_HZ = 700.0  # HTK mel: m = 1127 ln(1 + f / 700)
_HTK_Q = 1127.0


@dataclass(frozen=True)
class IFMelSpec:
    """Sizes of GANSynth's IF-Mel spectrogram; the defaults are the paper's 16 kHz NSynth setup.

    Attributes:
        sample_rate: Hz.
        n_fft: FFT size = Hann window length (2048: 1024 kept bins, the paper's "high frequency
            resolution" variant).
        hop_length: frame hop (512 = 75 % overlap).
        n_mels: mel bins (1024 = magenta's ``mel_downscale=1``: as many mel bins as linear bins).
        fmin, fmax: edges of the mel bank in Hz (GANSynth: 0 and Nyquist).
        frames: STFT frames (128 for the paper's 4 s notes).
        audio_length: samples the spectrogram stands for (64000 = 4 s). The audio is zero padded
            on the left to ``(frames - 1) * hop_length + n_fft`` samples (67072 for the defaults,
            a 3072-sample pad) so the un-centred STFT gives exactly ``frames`` frames.
        eps: additive floor of the natural logs, ``log(x + eps)`` (magenta's ``_safe_log``).
        discard_dc: drop the DC bin (GANSynth's setting, the default) or else the Nyquist bin;
            the dropped bin is resynthesised as zero.

    Raises:
        ValueError: a field out of range, or ``audio_length`` longer than the frames cover.
    """

    sample_rate: int = 16000
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 1024
    fmin: float = 0.0
    fmax: float = 8000.0
    frames: int = 128
    audio_length: int = 64000
    eps: float = 1e-6
    discard_dc: bool = True

    def __post_init__(self):
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels", "frames", "audio_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"IFMelSpec.{name} must be a positive int, got {value!r}")
        if self.n_fft % 2 or self.hop_length > self.n_fft:
            raise ValueError(f"IFMelSpec needs an even n_fft >= hop_length, got n_fft={self.n_fft}, "
                             f"hop_length={self.hop_length}")
        if not (0.0 <= self.fmin < self.fmax <= self.sample_rate / 2.0):
            raise ValueError(f"IFMelSpec needs 0 <= fmin < fmax <= {self.sample_rate / 2.0}, "
                             f"got fmin={self.fmin}, fmax={self.fmax}")
        if not (self.eps > 0.0 and math.isfinite(self.eps)):
            raise ValueError(f"IFMelSpec.eps must be a positive finite float, got {self.eps!r}")
        if self.padding < 0:
            raise ValueError(f"IFMelSpec: {self.frames} frames of hop {self.hop_length} and n_fft {self.n_fft} "
                             f"cover {self.padded_length} samples < audio_length {self.audio_length}")

    @property
    def samples(self) -> int:
        """Audio length in samples that one spectrogram covers (64000 for the defaults)."""
        return self.audio_length

    @property
    def padded_length(self) -> int:
        """``(frames - 1) * hop_length + n_fft``: samples the STFT frames span (67072)."""
        return (self.frames - 1) * self.hop_length + self.n_fft

    @property
    def padding(self) -> int:
        """Zeros put in front of the audio before the STFT (3072 for the defaults)."""
        return self.padded_length - self.audio_length

    @property
    def n_bins(self) -> int:
        """Linear bins kept, ``n_fft // 2`` (1024)."""
        return self.n_fft // 2


def _htk_hz_to_mel(f):
    return _HTK_Q * torch.log1p(torch.as_tensor(f, dtype=torch.float64) / _HTK_BREAK_HZ)


def _htk_mel_to_hz(m):
    return _HTK_BREAK_HZ * torch.expm1(torch.as_tensor(m, dtype=torch.float64) / _HTK_Q)


def _mel_key(spec: IFMelSpec) -> tuple:
    return spec.n_bins, spec.n_mels, spec.sample_rate, float(spec.fmin), float(spec.fmax)


@functools.lru_cache(maxsize=8)
def _gansynth_mel64(n_bins: int, n_mels: int, sample_rate: int, fmin: float, fmax: float) -> Tensor:
    nyquist = sample_rate / 2.0
    # magenta places the n_bins kept bins on linspace(0, Nyquist, n_bins) and zeroes the first
    # row ("HTK excludes the DC bin"), whichever bin the STFT actually dropped.
    lin_hz = torch.linspace(0.0, nyquist, n_bins, dtype=torch.float64)[1:, None]
    edges = torch.linspace(float(_htk_hz_to_mel(fmin)), float(_htk_hz_to_mel(fmax)), n_mels + 2,
                           dtype=torch.float64)
    lo, centre, hi = edges[:-2].clone(), edges[1:-1], edges[2:].clone()
    # Bands narrower than 1.5 bin widths (nyquist / n_bins) are widened symmetrically in mel to
    # exactly that width in Hz: solve hz(c + d) - hz(c - d) = th for d, i.e.
    # 2 (700 + hz(c)) sinh(d / 1127) = th  =>  d = 1127 asinh(th / (2 (700 + hz(c)))).
    threshold = 1.5 * nyquist / n_bins
    narrow = (_htk_mel_to_hz(hi) - _htk_mel_to_hz(lo)) < threshold
    half = _HTK_Q * torch.asinh(0.5 * threshold / (_htk_mel_to_hz(centre) + _HTK_BREAK_HZ))
    lo = torch.where(narrow, centre - half, lo)
    hi = torch.where(narrow, centre + half, hi)
    lo_hz, c_hz, hi_hz = _htk_mel_to_hz(lo)[None], _htk_mel_to_hz(centre)[None], _htk_mel_to_hz(hi)[None]
    # Triangles whose sides are straight lines in Hz between the mel-spaced edges, peak 1, no
    # area normalisation.
    rising = (lin_hz - lo_hz) / (c_hz - lo_hz)
    falling = (hi_hz - lin_hz) / (hi_hz - c_hz)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return torch.cat([torch.zeros(1, n_mels, dtype=torch.float64), weights], dim=0)


def gansynth_mel_matrix(spec: IFMelSpec = IFMelSpec()) -> Tensor:
    """GANSynth's linear-to-mel matrix ``W``, ``(n_bins, n_mels)`` float64: ``mel = lin @ W``.

    HTK mel scale ``m = 1127 ln(1 + f / 700)``; ``n_mels + 2`` edges equally spaced in mel on
    ``[fmin, fmax]``; triangles of peak 1 evaluated on ``n_bins`` points ``linspace(0, Nyquist,
    n_bins)``, the first row (0 Hz) zero; bands narrower than 1.5 bin widths widened to that
    width (magenta ``spectral_ops.linear_to_mel_weight_matrix``).
    """
    return _gansynth_mel64(*_mel_key(spec)).clone()


@functools.lru_cache(maxsize=8)
def _gansynth_inv64(n_bins: int, n_mels: int, sample_rate: int, fmin: float, fmax: float) -> Tensor:
    w = _gansynth_mel64(n_bins, n_mels, sample_rate, fmin, fmax)  # (n_bins, n_mels)
    col = (w @ w.T).sum(dim=0)                       # (n_bins,)
    d = torch.where(col.abs() > 1e-8, 1.0 / torch.where(col.abs() > 1e-8, col, torch.ones_like(col)), col)
    return w.T * d[None, :]                          # (n_mels, n_bins)


def gansynth_mel_to_linear_matrix(spec: IFMelSpec = IFMelSpec()) -> Tensor:
    """GANSynth's mel-to-linear matrix ``V = W^T diag(1 / colsum(W W^T))``, ``(n_mels, n_bins)`` float64.

    Not a pseudo-inverse: each linear bin gets the transposed mel weights, scaled so that a flat
    linear spectrum comes back flat (magenta ``SpecgramsHelper._mel_to_linear_matrix``); rows of
    zero weight (the 0 Hz row) stay zero.
    """
    return _gansynth_inv64(*_mel_key(spec)).clone()


def _unwrap(p: Tensor, dim: int) -> Tensor:
    """``numpy.unwrap`` along ``dim`` (discont pi), as magenta's ``spectral_ops.unwrap``."""
    dd = torch.diff(p, dim=dim)
    ddmod = torch.remainder(dd + math.pi, 2.0 * math.pi) - math.pi
    ddmod = torch.where((ddmod == -math.pi) & (dd > 0), torch.full_like(ddmod, math.pi), ddmod)
    correct = torch.where(dd.abs() < math.pi, torch.zeros_like(dd), ddmod - dd)
    return p + torch.cat([torch.zeros_like(p.narrow(dim, 0, 1)), torch.cumsum(correct, dim=dim)], dim=dim)


def _instantaneous_frequency(phase: Tensor, dim: int) -> Tensor:
    """``[phase_0, diff(unwrap(phase))] / pi`` along ``dim`` (magenta ``instantaneous_frequency``)."""
    dphase = torch.diff(_unwrap(phase, dim), dim=dim)
    return torch.cat([phase.narrow(dim, 0, 1), dphase], dim=dim) / math.pi


def _check_finite(x: Tensor, what: str) -> None:
    if not torch.is_floating_point(x):
        raise ValueError(f"{what} must be a float tensor, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{what} contains NaN or Inf")


def _inverse_stft_window(n_fft: int, hop: int, dtype, device) -> Tensor:
    """Hann window divided by the sum of squared Hann windows overlapping at each sample
    (``tf.signal.inverse_stft_window_fn``, which magenta uses): 2/3 Hann at 75 % overlap."""
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    overlaps = -(-n_fft // hop)
    denom = F.pad(window ** 2, (0, overlaps * hop - n_fft)).reshape(overlaps, hop).sum(dim=0)
    return (window / denom.repeat(overlaps)[:n_fft]).to(device=device, dtype=dtype)


def _gansynth_stft(audio: Tensor, spec: IFMelSpec) -> Tensor:
    """GANSynth's STFT (steps 1-2 of :func:`ifmel`): ``(B, samples)`` -> complex ``(B, frames, n_bins)``."""
    x = F.pad(audio, (spec.padding, 0))
    window = torch.hann_window(spec.n_fft, periodic=True, dtype=audio.dtype, device=audio.device)
    stft = torch.stft(x, n_fft=spec.n_fft, hop_length=spec.hop_length, window=window, center=False,
                      normalized=False, onesided=True, return_complex=True)        # (B, n_fft/2+1, T)
    stft = stft[:, 1:] if spec.discard_dc else stft[:, :-1]
    if stft.shape[-1] != spec.frames:  # cannot happen for a valid spec; guards the framing maths
        raise ValueError(f"ifmel framing gave {stft.shape[-1]} frames, expected {spec.frames}")
    return stft.transpose(1, 2)


def _gansynth_istft(stft: Tensor, spec: IFMelSpec) -> Tensor:
    """GANSynth's inverse STFT (steps 3-4 of :func:`ifmel_to_audio`): complex ``(B, frames, n_bins)``
    -> ``(B, samples)``."""
    stft = F.pad(stft, (1, 0) if spec.discard_dc else (0, 1))                  # (B, T, n_fft/2+1)
    frames = torch.fft.irfft(stft, n=spec.n_fft, dim=-1)                         # (B, T, n_fft)
    frames = frames * _inverse_stft_window(spec.n_fft, spec.hop_length, frames.dtype, frames.device)
    audio = F.fold(frames.transpose(1, 2), output_size=(1, spec.padded_length),
                   kernel_size=(1, spec.n_fft), stride=(1, spec.hop_length))     # (B, 1, 1, L)
    return audio[:, 0, 0, spec.padding:]


def ifmel(audio: Tensor, spec: IFMelSpec = IFMelSpec()) -> Tensor:
    """GANSynth IF-Mel spectrogram: ``(batch, samples)`` -> ``(batch, 2, frames, n_mels)``.

    Channel 0 is the log mel *power*, channel 1 the mel instantaneous frequency (IF) divided by
    pi (Engel et al. 2019, Sec. 2-3, "IF-Mel"; magenta ``waves_to_melspecgrams``). Shapes are
    those of the defaults (B = batch):

    1. Pad ``spec.padding`` (3072) zeros on the left only: ``(B, 64000)`` -> ``(B, 67072)``.
       GANSynth puts all of the pad in front, so the first frames are silent and the last frame
       ends on the last sample.
    2. STFT, not centred: periodic Hann window of ``n_fft`` (2048), hop 512 (75 % overlap),
       ``X[t, k] = sum_n w[n] x[512 t + n] exp(-2 pi i k n / 2048)``; 1 + (67072 - 2048) / 512
       = 128 frames; 1025 bins -> 1024 by dropping the DC bin (``discard_dc``, the default) or
       the Nyquist bin: ``(B, 128, 1024)`` complex.
    3. Log magnitude ``log(|X| + eps)``, then mel power
       ``P = log(((|X| + eps)^2) @ W + eps)`` with ``W = gansynth_mel_matrix(spec)``
       ``(1024, n_mels)``: ``(B, 128, n_mels)``.
    4. Phase ``phi = angle(X)`` (0 where ``X == 0``), unwrapped along time: ``(B, 128, 1024)``.
       (magenta goes through the linear IF and back by a cumulative sum, which gives this same
       unwrapped phase.)
    5. Mel phase ``phi_mel = unwrap(phi) @ W``: ``(B, 128, n_mels)``.
    6. Mel IF (paper Sec. 3: IF is the time derivative of the unwrapped phase):
       ``IF[0] = phi_mel[0] / pi`` and ``IF[t] = wrap(phi_mel[t] - phi_mel[t-1]) / pi`` for
       t >= 1, the mel phase being unwrapped again before differencing, so frames t >= 1 lie in
       [-1, 1]. Frame 0 is the mel phase itself (up to ``max(colsum(W))`` in magnitude); with the
       defaults it is exactly 0, frame 0 covering only the left pad.
    7. Stack ``[P, IF]`` on dim 1: ``(B, 2, 128, n_mels)``.

    Computed in the input's dtype (float32 or float64) on its device.

    Raises:
        ValueError: not ``(batch, spec.samples)`` (a ``(batch, 1, samples)`` input is accepted),
            not floating point, or NaN/Inf.
    """
    if audio.dim() == 3 and audio.shape[1] == 1:
        audio = audio[:, 0]
    if audio.dim() != 2 or audio.shape[1] != spec.samples:
        raise ValueError(f"ifmel expects (batch, {spec.samples}) audio, got {tuple(audio.shape)}")
    _check_finite(audio, "ifmel audio")
    stft = _gansynth_stft(audio, spec)                                               # (B, T, n_bins)
    w = _gansynth_mel64(*_mel_key(spec)).to(device=audio.device, dtype=audio.dtype)
    mag2 = (stft.abs() + spec.eps) ** 2
    log_mel_power = torch.log(mag2 @ w + spec.eps)
    # angle(0) is taken as 0: the FFT of the all-zero padded frames returns signed zeros, whose
    # atan2 would be +-pi depending on the FFT library's rounding.
    phase = torch.where(stft == 0, torch.zeros((), dtype=audio.dtype, device=audio.device), torch.angle(stft))
    mel_phase = _unwrap(phase, dim=1) @ w
    mel_if = _instantaneous_frequency(mel_phase, dim=1)
    return torch.stack([log_mel_power, mel_if], dim=1)


def ifmel_to_audio(spec_tensor: Tensor, spec: IFMelSpec = IFMelSpec()) -> Tensor:
    """Resynthesis from a GANSynth IF-Mel spectrogram: ``(batch, 2, frames, n_mels)`` -> ``(batch, samples)``.

    magenta's ``melspecgrams_to_waves``, step by step (shapes of the defaults):

    1. Linear power ``|X|^2 ~ exp(P) @ V`` with ``V = gansynth_mel_to_linear_matrix(spec)``
       ``(n_mels, 1024)``; magnitude ``sqrt(|X|^2 + eps)`` (= ``exp(0.5 log(|X|^2 + eps))``):
       ``(B, 128, 1024)``.
    2. Mel phase by integrating the IF: ``phi_mel = pi * cumsum_t(IF)``; linear phase
       ``phi = phi_mel @ V``. (magenta then converts ``phi`` to IF and integrates again, which
       only unwraps it: the same complex spectrum.)
    3. ``X = |X| exp(i phi)``; the dropped bin (DC by default) put back as zero:
       ``(B, 128, 1025)``.
    4. Inverse STFT as ``tf.signal.inverse_stft``: inverse real FFT of each frame, times
       ``Hann / sum of overlapping Hann^2`` (2/3 Hann at 75 % overlap), overlap-add with hop 512
       into ``(frames - 1) * hop + n_fft`` (67072) samples, without edge renormalisation; the
       left pad (3072) cut off: ``(B, 64000)``. ``torch.istft`` is not used because it insists
       on a non-zero window envelope at every sample (the un-centred periodic Hann is zero at
       sample 0) and renormalises the edges, which GANSynth does not.

    The mel steps are lossy (mel power and mel phase do not determine the linear ones, and the
    mel IF is wrapped to [-1, 1] where a mel band spans several bins), so this inverts ``ifmel``
    only approximately; see ``tests/test_ifmel.py`` for measured errors.

    Raises:
        ValueError: not ``(batch, 2, spec.frames, spec.n_mels)``, not floating point, or NaN/Inf.
    """
    expected = (2, spec.frames, spec.n_mels)
    if spec_tensor.dim() != 4 or tuple(spec_tensor.shape[1:]) != expected:
        raise ValueError(f"ifmel_to_audio expects (batch, {', '.join(map(str, expected))}), "
                         f"got {tuple(spec_tensor.shape)}")
    _check_finite(spec_tensor, "ifmel_to_audio input")
    dtype, device = spec_tensor.dtype, spec_tensor.device
    v = _gansynth_inv64(*_mel_key(spec)).to(device=device, dtype=dtype)
    mag = torch.sqrt(torch.exp(spec_tensor[:, 0]) @ v + spec.eps)                # (B, T, n_bins)
    phase = (math.pi * torch.cumsum(spec_tensor[:, 1], dim=1)) @ v               # (B, T, n_bins)
    return _gansynth_istft(torch.polar(mag, phase), spec)


def minimum_phase_eq(points, sample_rate: int, taps: int = 127) -> np.ndarray:
    """A causal minimum-phase FIR whose magnitude follows a piecewise-linear gain curve.

    The curve is given by ``(frequency Hz, linear gain)`` points, increasing in frequency,
    interpolated linearly between points and held flat outside them. The linear-phase
    design is :func:`scipy.signal.firwin2` (frequency sampling, Hamming window); its
    minimum-phase version, of the same magnitude, is :func:`scipy.signal.minimum_phase`
    (homomorphic method, ``half=False``). Being minimum phase, it adds no latency: its energy
    lies in the first few taps, where a linear-phase filter would delay by ``(taps - 1) / 2``.

    Args:
        points: ``((f_0, g_0), (f_1, g_1), ...)`` with ``0 <= f_0 < f_1 < ... <= sample_rate / 2``
            and gains ``>= 0``.
        sample_rate: Hz.
        taps: filter length, odd.

    Returns:
        ``(taps,)`` float64 impulse response.

    Raises:
        ValueError: fewer than two points, frequencies not increasing or outside
            ``[0, sample_rate / 2]``, negative gains, an even or tiny ``taps``.
    """
    from scipy import signal

    pts = [(float(f), float(g)) for f, g in points]
    nyq = sample_rate / 2
    if len(pts) < 2:
        raise ValueError("an EQ curve needs at least two (frequency, gain) points")
    fs = [f for f, _ in pts]
    if any(b <= a for a, b in zip(fs, fs[1:])) or fs[0] < 0 or fs[-1] > nyq:
        raise ValueError(f"EQ frequencies must increase within [0, {nyq:g}] Hz, got {fs}")
    if any(g < 0 or not np.isfinite(g) for _, g in pts):
        raise ValueError("EQ gains must be finite and >= 0")
    if taps < 3 or taps % 2 == 0:
        raise ValueError(f"taps must be odd and >= 3, got {taps}")
    if fs[0] > 0:
        pts = [(0.0, pts[0][1])] + pts
    if pts[-1][0] < nyq:
        pts = pts + [(nyq, pts[-1][1])]
    h = signal.firwin2(taps, [f for f, _ in pts], [g for _, g in pts], fs=sample_rate)
    return signal.minimum_phase(h, method="homomorphic", n_fft=2 ** max(14, int(np.ceil(np.log2(8 * taps)))),
                                half=False)
