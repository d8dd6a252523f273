"""voc-multiscale: seed 003's multi-scale filter-bank music vocoder, streamable.

Vinyard (2020, "Music vocoder with conditional GANs", "An alternate architecture geared toward
music"; the ``FilterBankMultiScaleGenerator`` of its code) produces music from the same
128-bin log10 mel as voc-melgan with five *band generators*, each at the rate its band needs:

====  ==========  ===============  ===========================
band  rate (Hz)   content (Hz)     upsampling from the mel (x)
====  ==========  ===============  ===========================
0     1378.125    0 - 689          2, 2, 2, 2   (16)
1     2756.25     689 - 1378       4, 2, 2, 2   (32)
2     5512.5      1378 - 2756      4, 4, 2, 2   (64)
3     11025       2756 - 5512      4, 4, 4, 2   (128)
4     22050       5512 - 11025     4, 4, 4, 4   (256)
====  ==========  ===============  ===========================

Each band generator (all five read the same mel): a conv of kernel 7 (128 -> ``channels``),
leaky ReLU (0.2), four transposed convs (kernel ``2 f``, stride ``f``, no bias) each followed by
a leaky ReLU, the last one to ``filters`` channels, and a **frozen filter-bank layer**: a
transposed convolution (stride 1) of the ``filters`` excitations with ``filters`` fixed FIR
filters of ``taps`` taps, summed to one channel (:func:`filter_bank`: Morlet filters, linearly
spaced over ``[nyquist / 2, nyquist]`` of the band's rate, over ``[0, nyquist]`` for the lowest
band; seed 003 uses 128 filters of 128 taps). The band's samples are in seed 003's units: the
band's true amplitude times ``sqrt(22050 / rate)`` (its code splits audio with orthonormal FFTs
of different lengths, :func:`split_bands`).

Bands are summed only at inference (seed 003: "only during inference does each generated band
need to be resampled ... and summed"); here by a streaming **resample-and-sum**: band ``k``
divided by its unit gain and upsampled to 22 050 Hz by a frozen linear-phase interpolator
(Kaiser-windowed sinc, cutoff at the band's Nyquist, ``resample_half_width`` band samples each
side) run as a transposed conv of stride ``22050 / rate``, then the five are added. Its lookahead
(half the longest interpolator) is part of the model's latency. ``padding="causal"`` makes every
generator conv and the filter-bank layer causal (a live preset); ``centered`` is seed 003's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .layers import Hold1d, PaddedConv1d, Reach, StateCursor, TransposedConv1d, align, cached_conv
from .layers.framegain import LevelInterpolator, frame_level
from .layers.mel import LogMel1d, MelConfig
from .registry import register
from .vocoder import MelVocoder

#: seed 003's upsampling factors per band, lowest band first (their products: hop / 2**(4 - k))
SEED_FACTORS = ((2, 2, 2, 2), (4, 2, 2, 2), (4, 4, 2, 2), (4, 4, 4, 2), (4, 4, 4, 4))


@dataclass(frozen=True)
class MultiScaleConfig:
    """Architecture of voc-multiscale (seed 003's code; every default in one place).

    Attributes:
        mel: the log-mel front end (as voc-melgan's; seed 003: lookahead 768).
        factors: per band, lowest first, the upsampling factors of its four transposed convs;
            band ``k`` runs at ``sample_rate * prod(factors[k]) / hop`` Hz, and each band's rate
            is twice the one below it, the top band at the full rate.
        channels: channels of every band generator's hidden layers (seed: 128).
        filters: filter-bank channels (seed: 128).
        taps: filter-bank taps (seed: 128).
        morlet_scale: the Morlet filters' envelope scale ``s`` (seed: 0.05, a nearly flat envelope).
        embed_kernel: kernel of the first conv on the mel (seed: 7).
        padding: ``"centered"`` (seed 003) or ``"causal"`` (no lookahead in the generators).
        negative_slope: leaky ReLU slope (0.2).
        resample_half_width: band samples each side of the resample-and-sum interpolators.
        resample_beta: their Kaiser window's beta.
        upsample_hold: a zero-order hold of ``f`` taps after each transposed conv of stride ``f``
            (:class:`.layers.Hold1d`, Sugawara et al. 2018; not in seed 003): removes the buzz at
            the mel frame rate that the transposed convs' phases leave early in training.
        frame_gain: each band generator reads the mel with its band's frame level ``L_kt``
            subtracted (the log10 RMS of the mel bins whose centres lie in the band,
            :func:`.layers.framegain.frame_level`) and its band is multiplied by the gain
            ``10**L_kt`` interpolated linearly over the band samples of each frame
            (:class:`.layers.framegain.LevelInterpolator`; causal in the live preset, no added
            latency): the level of every band is exact instead of learnt. Not in seed 003.

    Raises:
        ValueError: factors that do not give rates doubling up to the full rate, sizes < 1, or
            an unknown padding.
    """

    mel: MelConfig = MelConfig()
    factors: tuple[tuple[int, ...], ...] = SEED_FACTORS
    channels: int = 128
    filters: int = 128
    taps: int = 128
    morlet_scale: float = 0.05
    embed_kernel: int = 7
    padding: str = "centered"
    negative_slope: float = 0.2
    resample_half_width: int = 8
    resample_beta: float = 8.0
    upsample_hold: bool = False
    frame_gain: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.mel, dict):
            object.__setattr__(self, "mel", MelConfig(**self.mel))
        object.__setattr__(self, "factors", tuple(tuple(int(f) for f in fs) for fs in self.factors))
        hop, n = self.mel.hop_length, len(self.factors)
        for k, fs in enumerate(self.factors):
            if not fs or any(f < 1 for f in fs) or math.prod(fs) * 2 ** (n - 1 - k) != hop:
                raise ValueError(f"band {k}: factors {fs} must multiply to hop / 2**{n - 1 - k} "
                                 f"= {hop / 2 ** (n - 1 - k):g}")
        if min(self.channels, self.filters, self.taps, self.embed_kernel, self.resample_half_width) < 1:
            raise ValueError("channels, filters, taps, embed_kernel and resample_half_width must be >= 1")
        if self.padding not in ("causal", "centered"):
            raise ValueError(f"padding must be 'causal' or 'centered', got {self.padding!r}")
        if not self.morlet_scale > 0:
            raise ValueError("morlet_scale must be positive")

    @property
    def sample_rate(self) -> int:
        """Output rate in Hz (the mel front end's)."""
        return self.mel.sample_rate

    @property
    def bands(self) -> int:
        """Number of bands."""
        return len(self.factors)

    def decimation(self, k: int) -> int:
        """Full-rate samples per sample of band ``k`` (16, 8, 4, 2, 1 for seed 003)."""
        return 2 ** (self.bands - 1 - k)

    def band_rate(self, k: int) -> float:
        """Sample rate of band ``k`` in Hz."""
        return self.sample_rate / self.decimation(k)

    def band_edges(self, k: int) -> tuple[float, float]:
        """The content of band ``k`` in Hz: ``[rate / 4, rate / 2)`` of its rate, from 0 for the lowest."""
        r = self.band_rate(k)
        return (0.0 if k == 0 else r / 4, r / 2)

    def band_gain(self, k: int) -> float:
        """Seed 003's unit of band ``k``: its true amplitude times ``sqrt(decimation)``."""
        return math.sqrt(self.decimation(k))


def morlet_filters(rate: float, low: float, high: float, filters: int, taps: int, scale: float) -> np.ndarray:
    """``filters`` Morlet FIR filters of ``taps`` taps, linearly spaced over ``[low, high)`` Hz: ``(filters, taps)``.

    Filter ``i`` has centre ``f_i = low + (i + 1/2) w`` with ``w = (high - low) / filters`` (the
    linear scale of seed 003's filter banks) and is the real part of a Morlet wavelet (Morlet
    et al. 1982; the formula of ``scipy.signal.morlet``, removed in SciPy 1.15, with its
    ``complete`` correction): ``(cos(w0 x) - exp(-w0^2 / 2)) exp(-x^2 / 2)`` on
    ``x = linspace(-2 pi s, 2 pi s, taps)`` with ``w0 = f_i taps / (2 s rate)``, so that it
    oscillates at ``f_i`` (times ``taps / (taps - 1)``); each is scaled to unit L2 norm.
    """
    width = (high - low) / filters
    centres = low + (np.arange(filters) + 0.5) * width
    x = np.linspace(-2 * np.pi * scale, 2 * np.pi * scale, taps)
    w0 = centres[:, None] * taps / (2 * scale * rate)
    bank = (np.cos(w0 * x[None]) - np.exp(-0.5 * w0 ** 2)) * np.exp(-0.5 * x[None] ** 2)
    return bank / (np.linalg.norm(bank, axis=1, keepdims=True) + 1e-8)


def filter_bank(config: MultiScaleConfig, k: int) -> np.ndarray:
    """Band ``k``'s frozen filters ``(filters, taps)``: over ``[nyquist / 2, nyquist]`` of its rate (lowest: ``[0, nyquist]``)."""
    return morlet_filters(config.band_rate(k), *config.band_edges(k), config.filters, config.taps, config.morlet_scale)


def split_bands(y: torch.Tensor, config: MultiScaleConfig) -> list[torch.Tensor]:
    """Seed 003's band decomposition of audio ``(batch, 1, n)`` (``n`` a multiple of the top decimation).

    The spectrum of the whole window (``torch.fft.rfft``) is cut into bands, full-rate bins
    ``[0, n / 2**(B+1))`` for band 0, then ``[n / 2**(B+1-k), n / 2**(B-k))`` for band ``k``, the top
    band with its Nyquist bin; band ``k`` is the inverse FFT of its bins at its own length
    ``n / decimation(k)`` (a downsampled signal), times :meth:`MultiScaleConfig.band_gain`.
    (Seed 003 does this with orthonormal FFTs, which gives the same gain; its bands share their
    edge bins, these partition them.) Upsampling each band ideally and adding them gives ``y``.

    Returns:
        per band, lowest first, ``(batch, 1, n / decimation(k))``.
    """
    n = y.shape[-1]
    spec = torch.fft.rfft(y.double(), dim=-1)
    out = []
    for k in range(config.bands):
        d = config.decimation(k)
        m = n // d
        lo = 0 if k == 0 else n // (2 * 2 * d)
        hi = m // 2 + 1 if k == config.bands - 1 else m // 2
        part = torch.zeros(*spec.shape[:-1], m // 2 + 1, dtype=spec.dtype, device=spec.device)
        part[..., lo:hi] = spec[..., lo:hi] / d
        out.append((torch.fft.irfft(part, n=m, dim=-1) * config.band_gain(k)).to(y.dtype))
    return out


def interpolator(factor: int, half_width: int, beta: float) -> np.ndarray:
    """Linear-phase interpolation filter for upsampling by ``factor``: ``2 * half_width * factor + 1`` taps.

    ``factor * firwin(taps, 1 / factor, window=("kaiser", beta))``: cutoff at the input's
    Nyquist, unit gain for the zero-stuffed input (``scipy.signal.firwin``); ``[1]`` for ``factor = 1``.
    """
    from scipy.signal import firwin
    if factor == 1:
        return np.ones(1)
    return factor * firwin(2 * half_width * factor + 1, 1.0 / factor, window=("kaiser", beta))


PRESETS = {
    # seed 003's sizes (128 channels, 128 Morlet filters of 128 taps) on its mel (lookahead 768)
    "paper": MultiScaleConfig(),
    # causal mel, generators and filter banks for one CPU thread: 64 channels; the interpolators'
    # lookahead (4 band samples of the lowest band: 64 samples, 2.9 ms) is the model's latency
    "live": MultiScaleConfig(mel=MelConfig(lookahead=0), channels=64, padding="causal", resample_half_width=4,
                             upsample_hold=True, frame_gain=True),
    # for tests: centred, small
    "tiny": MultiScaleConfig(mel=MelConfig(lookahead=384), channels=8, filters=16, taps=16, resample_half_width=2,
                             frame_gain=True),
}


def band_bins(config: MultiScaleConfig, k: int) -> torch.Tensor:
    """Indices of the mel bins whose centre frequencies lie in band ``k``
    (:meth:`MultiScaleConfig.band_edges`); the nearest bin where none does."""
    from ..dsp import mel_points_hz
    m = config.mel
    centres = mel_points_hz(m.n_mels, m.fmin, m.fmax if m.fmax is not None else m.sample_rate / 2)[1:-1]
    lo, hi = config.band_edges(k)
    idx = torch.nonzero((centres >= lo) & (centres < hi)).flatten()
    return idx if idx.numel() else torch.argmin((centres - (lo + hi) / 2).abs()).view(1)


class BandGenerator(nn.Module):
    """One band of voc-multiscale: mel ``(batch, n_mels, frames)`` -> band ``(batch, 1, frames * prod(factors))``."""

    def __init__(self, config: MultiScaleConfig, k: int) -> None:
        super().__init__()
        c = config
        self.act = nn.LeakyReLU(c.negative_slope)
        self.embed = PaddedConv1d(c.mel.n_mels, c.channels, c.embed_kernel, c.padding)
        chans = [c.channels] * len(c.factors[k]) + [c.filters]
        self.ups = nn.ModuleList(TransposedConv1d(chans[i], chans[i + 1], 2 * f, f, c.padding, bias=False)
                                 for i, f in enumerate(c.factors[k]))
        self.holds = nn.ModuleList(Hold1d(f) for f in c.factors[k]) if c.upsample_hold else None
        # the frozen filter bank: a transposed conv (stride 1) of the excitations, one output channel
        self.bank = TransposedConv1d(c.filters, 1, c.taps, 1, c.padding, bias=False)
        self.bank.conv.weight.data.copy_(torch.from_numpy(filter_bank(c, k)).float()[:, None, :])
        self.bank.conv.weight.requires_grad_(False)
        self.level_up = LevelInterpolator(math.prod(c.factors[k]), c.padding) if c.frame_gain else None
        self.register_buffer("level_bins", band_bins(c, k), persistent=False)

    def level(self, mel: torch.Tensor) -> torch.Tensor:
        """The band's frame levels ``L_kt``: ``(batch, 1, frames)``."""
        return frame_level(mel, self.level_bins)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        level = self.level(mel) if self.level_up is not None else None
        h = self.act(self.embed(mel if level is None else mel - level))
        for i, up in enumerate(self.ups):
            h = up(h)
            if self.holds is not None:
                h = self.holds[i](h)
            h = self.act(h)
        return self.bank(h) if level is None else self.level_up.scale(self.bank(h), level)

    def stream(self, mel: torch.Tensor, delay: int, cur: StateCursor) -> tuple[torch.Tensor, int]:
        level = self.level(mel) if self.level_up is not None else None
        h, d = cached_conv(self.embed, mel if level is None else mel - level, delay, cur)
        h = self.act(h)
        for i, up in enumerate(self.ups):
            h, d = up.stream(h, d, cur)
            if self.holds is not None:
                h, d = self.holds[i].stream(h, d, cur)
            h = self.act(h)
        b, d = self.bank.stream(h, d, cur)
        return (b, d) if level is None else self.level_up.stream_scale(b, d, level, delay, cur)

    def reach(self, r: Reach) -> Reach:
        r0, r = r, self.embed.reach(r)
        for i, up in enumerate(self.ups):
            r = up.reach(r)
            if self.holds is not None:
                r = self.holds[i].reach(r)
        r = self.bank.reach(r)
        return r if self.level_up is None else r.merge(self.level_up.reach(r0))


class Upsampler(nn.Module):
    """Frozen interpolator of band ``k`` to the full rate (divided by its unit gain): a transposed conv of stride ``d``."""

    def __init__(self, config: MultiScaleConfig, k: int) -> None:
        super().__init__()
        d = config.decimation(k)
        h = interpolator(d, config.resample_half_width, config.resample_beta) / config.band_gain(k)
        self.up = TransposedConv1d(1, 1, len(h), d, "centered", bias=False)
        self.up.crop_left = len(h) // 2  # the filter's centre on the input sample: zero phase
        self.up.conv.weight.data.copy_(torch.from_numpy(h).float()[None, None, :])
        self.up.conv.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)

    def stream(self, x: torch.Tensor, delay: int, cur: StateCursor) -> tuple[torch.Tensor, int]:
        return self.up.stream(x, delay, cur)

    def reach(self, r: Reach) -> Reach:
        return self.up.reach(r)


@register("voc-multiscale", MultiScaleConfig, PRESETS,
          description="seed 003's multi-scale filter-bank music vocoder from 128-bin log-mel at 22.05 kHz (Vinyard 2020)")
class MultiScaleGenerator(MelVocoder):
    """Mel front end, five band generators and the resample-and-sum: audio ``(batch, 1, n)`` -> ``(batch, 1, n)``.

    :meth:`bands` gives the five band signals a training step judges; :meth:`vocode` the summed
    audio of a mel. See the module docstring and :class:`.vocoder.MelVocoder`.
    """

    def __init__(self, config: MultiScaleConfig = MultiScaleConfig()) -> None:
        super().__init__()
        self.config = c = config
        self.mel = LogMel1d(c.mel)
        self.band_generators = nn.ModuleList(BandGenerator(c, k) for k in range(c.bands))
        self.upsamplers = nn.ModuleList(Upsampler(c, k) for k in range(c.bands))

    def bands(self, mel: torch.Tensor) -> list[torch.Tensor]:
        """The band signals of a log10 mel ``(batch, n_mels, frames)``: per band ``(batch, 1, frames * hop / decimation)``.

        Raises:
            ValueError: a mel that is not ``(batch, n_mels, frames)``.
        """
        self._check_mel(mel)
        return [g(mel) for g in self.band_generators]

    def combine(self, bands: list[torch.Tensor]) -> torch.Tensor:
        """Resample each band to the full rate (in true amplitude) and add them: ``(batch, 1, n)``."""
        return sum(up(b) for up, b in zip(self.upsamplers, bands))

    def synthesize(self, mel: torch.Tensor) -> torch.Tensor:
        """The bands of exactly these frames, resampled and summed: ``(batch, 1, frames * hop)``."""
        return self.combine(self.bands(mel))

    def stream_mel(self, mel: torch.Tensor, delay: int, cur: StateCursor) -> tuple[torch.Tensor, int]:
        """Every band streams from the same mel frames; the bands are resampled, aligned and added."""
        parts = []
        for g, up in zip(self.band_generators, self.upsamplers):
            b, db = g.stream(mel, delay, cur)
            parts.append(up.stream(b, db, cur))
        outs, d = align(parts, cur)
        return sum(outs), d

    def vocode_reach(self, r: Reach = Reach()) -> Reach:
        """The widest band path (generator, filter bank, interpolator) from ``r`` (default: in mel frames)."""
        out = None
        for g, up in zip(self.band_generators, self.upsamplers):
            b = up.reach(g.reach(r))
            out = b if out is None else out.merge(b)
        return out
