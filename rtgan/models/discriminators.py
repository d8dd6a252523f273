"""HiFi-GAN discriminators: multi-period (MPD) and multi-scale (MSD).

Kong, Kim & Bae (2020), "HiFi-GAN: Generative Adversarial Networks for
Efficient and High Fidelity Speech Synthesis", Sec. 2.2-2.3, as used for
music super-resolution by Coldenhoff & Ren (2021), Sec. III-A (MPD) and
III-B (MSD, originally from MelGAN, Kumar et al. 2019).

Every discriminator takes a waveform of shape ``(batch, 1, samples)`` and
returns its raw (unbounded, least-squares GAN) scores together with the
intermediate feature maps used by the feature-matching loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

__all__ = [
    "PeriodDiscriminator",
    "MultiPeriodDiscriminator",
    "ScaleDiscriminator",
    "MultiScaleDiscriminator",
    "DiscriminatorConfig",
    "HiFiGANDiscriminator",
    "MelGANDiscriminatorConfig",
    "MelGANDiscriminator",
]

DiscriminatorOutput = tuple[list[Tensor], list[list[Tensor]]]


def _check_waveform(y: Tensor, who: str) -> None:
    if y.dim() != 3 or y.shape[1] != 1:
        raise ValueError(f"{who} expects a waveform of shape (batch, 1, samples), got {tuple(y.shape)}")
    if y.shape[-1] == 0:
        raise ValueError(f"{who} got a waveform with zero samples")


def _check_channels(channels: Sequence[int], name: str) -> tuple[int, ...]:
    channels = tuple(int(c) for c in channels)
    if len(channels) == 0 or any(c <= 0 for c in channels):
        raise ValueError(f"{name} must be a non-empty sequence of positive integers, got {channels}")
    return channels


def _conv_stack(x: Tensor, convs: nn.ModuleList, conv_post: nn.Module, leaky: float) -> tuple[Tensor, list[Tensor]]:
    """Run a sub-discriminator's convs (each followed by leaky ReLU) and its output conv.

    Returns the flattened logits ``(batch, n)`` and every layer's output (the feature maps
    of HiFi-GAN's feature-matching loss), the output conv's included.
    """
    feats: list[Tensor] = []
    for conv in convs:
        x = F.leaky_relu(conv(x), leaky)
        feats.append(x)
    x = conv_post(x)
    feats.append(x)
    return torch.flatten(x, 1, -1), feats


class PeriodDiscriminator(nn.Module):
    """One MPD sub-discriminator (Kong et al. 2020 Sec. 2.2; Coldenhoff & Ren
    2021 Sec. III-A).

    The input ``(batch, 1, T)`` is reflect-padded at the end to a multiple of
    ``period`` and reshaped to ``(batch, 1, T/p, p)``, so each 2-D convolution
    with kernel ``(kernel_size, 1)`` only mixes samples that are ``period``
    apart. Layers: ``len(channels)`` weight-normalised convolutions with
    stride ``(stride, 1)`` (the last one stride 1), each followed by a leaky
    ReLU, then a ``(3, 1)`` convolution to one channel.

    Args:
        period: reshaping period ``p`` in samples (>= 1).
        channels: output channels of the hidden convolutions
            (HiFi-GAN: 32, 128, 512, 1024, 1024).
        kernel_size: temporal kernel size (odd, HiFi-GAN: 5).
        stride: temporal stride of all hidden convolutions but the last (3).
        leaky: negative slope of the leaky ReLU (0.1).
        use_spectral_norm: spectral instead of weight normalisation.

    Shapes:
        forward ``y``: ``(batch, 1, T)`` ->
        ``(logits (batch, n), [len(channels) + 1 feature maps (batch, C, T', p)])``.

    Raises:
        ValueError: invalid constructor arguments or input shape.
    """

    def __init__(
        self,
        period: int,
        channels: Sequence[int] = (32, 128, 512, 1024, 1024),
        kernel_size: int = 5,
        stride: int = 3,
        leaky: float = 0.1,
        use_spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if int(period) != period or period < 1:
            raise ValueError(f"period must be a positive integer, got {period!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        channels = _check_channels(channels, "channels")
        norm = spectral_norm if use_spectral_norm else weight_norm
        self.period = int(period)
        self.leaky = float(leaky)
        pad = (kernel_size - 1) // 2
        layers = []
        in_ch = 1
        for i, out_ch in enumerate(channels):
            s = stride if i < len(channels) - 1 else 1
            layers.append(
                norm(nn.Conv2d(in_ch, out_ch, (kernel_size, 1), (s, 1), padding=(pad, 0)))
            )
            in_ch = out_ch
        self.convs = nn.ModuleList(layers)
        self.conv_post = norm(nn.Conv2d(in_ch, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, y: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Score ``y`` ``(batch, 1, T)``; returns ``(logits (batch, n), feature maps)``."""
        _check_waveform(y, type(self).__name__)
        batch, ch, t = y.shape
        n_pad = (-t) % self.period
        if n_pad:
            # Reflect as in HiFi-GAN; zero padding only when T is too short to reflect.
            y = F.pad(y, (0, n_pad), mode="reflect" if n_pad < t else "constant")
            t = t + n_pad
        x = y.view(batch, ch, t // self.period, self.period)
        return _conv_stack(x, self.convs, self.conv_post, self.leaky)


class MultiPeriodDiscriminator(nn.Module):
    """Multi-period discriminator: one :class:`PeriodDiscriminator` per period
    (Kong et al. 2020 Sec. 2.2; prime periods 2, 3, 5, 7, 11 to limit overlap,
    Coldenhoff & Ren 2021 Sec. III-A).

    Args:
        periods: the periods in samples.
        channels, kernel_size, stride, leaky: see :class:`PeriodDiscriminator`.

    Shapes:
        forward ``y``: ``(batch, 1, T)`` -> ``(list of len(periods) logits
        (batch, n_k), list of len(periods) feature-map lists)``.

    Raises:
        ValueError: empty ``periods`` or invalid sub-discriminator arguments.
    """

    def __init__(
        self,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        channels: Sequence[int] = (32, 128, 512, 1024, 1024),
        kernel_size: int = 5,
        stride: int = 3,
        leaky: float = 0.1,
    ) -> None:
        super().__init__()
        if len(periods) == 0:
            raise ValueError("periods must not be empty")
        self.periods = tuple(int(p) for p in periods)
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(p, channels, kernel_size, stride, leaky) for p in self.periods
        )

    def forward(self, y: Tensor) -> DiscriminatorOutput:
        """Score ``y`` ``(batch, 1, T)`` with every period sub-discriminator."""
        logits, feats = [], []
        for disc in self.discriminators:
            score, fmap = disc(y)
            logits.append(score)
            feats.append(fmap)
        return logits, feats


class ScaleDiscriminator(nn.Module):
    """One MSD sub-discriminator (MelGAN, Kumar et al. 2019; HiFi-GAN, Kong et
    al. 2020 Sec. 2.3; Coldenhoff & Ren 2021 Sec. III-B).

    A stack of 1-D convolutions on the waveform: kernel 15, then grouped
    strided kernel-41 convolutions, then kernel 5, each followed by a leaky
    ReLU, and a kernel-3 convolution to one channel. With the HiFi-GAN
    defaults the total stride is 64.

    Args:
        channels: output channels of the hidden convolutions
            (HiFi-GAN: 128, 128, 256, 512, 1024, 1024, 1024).
        kernel_sizes: kernel size per hidden convolution (odd).
        strides: stride per hidden convolution.
        groups: groups per hidden convolution; each must divide both the
            input and output channel count of its layer.
        leaky: negative slope of the leaky ReLU (0.1).
        use_spectral_norm: spectral normalisation (HiFi-GAN uses it on the
            raw-audio scale) instead of weight normalisation.

    Shapes:
        forward ``y``: ``(batch, 1, T)`` ->
        ``(logits (batch, T'), [len(channels) + 1 feature maps (batch, C, T'')])``.

    Raises:
        ValueError: length mismatch between ``channels``/``kernel_sizes``/
            ``strides``/``groups``, even kernels, or groups that do not divide
            the channel counts; invalid input shape in ``forward``.
    """

    def __init__(
        self,
        channels: Sequence[int] = (128, 128, 256, 512, 1024, 1024, 1024),
        kernel_sizes: Sequence[int] = (15, 41, 41, 41, 41, 41, 5),
        strides: Sequence[int] = (1, 2, 2, 4, 4, 1, 1),
        groups: Sequence[int] = (1, 4, 16, 16, 16, 16, 1),
        leaky: float = 0.1,
        use_spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        channels = _check_channels(channels, "channels")
        n = len(channels)
        if not (len(kernel_sizes) == len(strides) == len(groups) == n):
            raise ValueError(
                f"channels, kernel_sizes, strides and groups must have the same length, got "
                f"{n}, {len(kernel_sizes)}, {len(strides)}, {len(groups)}"
            )
        norm = spectral_norm if use_spectral_norm else weight_norm
        self.leaky = float(leaky)
        layers = []
        in_ch = 1
        for i, (out_ch, k, s, g) in enumerate(zip(channels, kernel_sizes, strides, groups)):
            if k < 1 or k % 2 == 0:
                raise ValueError(f"layer {i}: kernel size must be a positive odd integer, got {k}")
            if s < 1:
                raise ValueError(f"layer {i}: stride must be >= 1, got {s}")
            if g < 1 or in_ch % g or out_ch % g:
                raise ValueError(
                    f"layer {i}: groups={g} must divide in_channels={in_ch} and out_channels={out_ch}"
                )
            layers.append(norm(nn.Conv1d(in_ch, out_ch, k, s, groups=g, padding=(k - 1) // 2)))
            in_ch = out_ch
        self.convs = nn.ModuleList(layers)
        self.conv_post = norm(nn.Conv1d(in_ch, 1, 3, 1, padding=1))

    def forward(self, y: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Score ``y`` ``(batch, 1, T)``; returns ``(logits (batch, n), feature maps)``."""
        _check_waveform(y, type(self).__name__)
        return _conv_stack(y, self.convs, self.conv_post, self.leaky)


class MultiScaleDiscriminator(nn.Module):
    """Multi-scale discriminator (Kong et al. 2020 Sec. 2.3; Coldenhoff & Ren
    2021 Sec. III-B): :class:`ScaleDiscriminator` s on the raw waveform and on
    waveforms smoothed by repeated ``AvgPool1d(4, 2, padding=2)`` (x2, x4
    average pooling). The raw-audio one uses spectral normalisation, the
    others weight normalisation, as in HiFi-GAN.

    Args:
        n_scales: number of sub-discriminators (>= 1; HiFi-GAN: 3).
        channels: hidden channels of each :class:`ScaleDiscriminator`.
        leaky: negative slope of the leaky ReLU.

    Shapes:
        forward ``y``: ``(batch, 1, T)`` -> ``(list of n_scales logits
        (batch, n_k), list of n_scales feature-map lists)``.

    Raises:
        ValueError: ``n_scales < 1`` or invalid sub-discriminator arguments.
    """

    def __init__(
        self,
        n_scales: int = 3,
        channels: Sequence[int] = (128, 128, 256, 512, 1024, 1024, 1024),
        leaky: float = 0.1,
    ) -> None:
        super().__init__()
        if int(n_scales) != n_scales or n_scales < 1:
            raise ValueError(f"n_scales must be a positive integer, got {n_scales!r}")
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(channels, leaky=leaky, use_spectral_norm=(i == 0))
            for i in range(int(n_scales))
        )
        self.pools = nn.ModuleList(
            nn.AvgPool1d(4, 2, padding=2) for _ in range(int(n_scales) - 1)
        )

    def forward(self, y: Tensor) -> DiscriminatorOutput:
        """Score ``y`` ``(batch, 1, T)`` at every scale."""
        _check_waveform(y, type(self).__name__)
        logits, feats = [], []
        x = y
        for i, disc in enumerate(self.discriminators):
            if i > 0:
                x = self.pools[i - 1](x)
            score, fmap = disc(x)
            logits.append(score)
            feats.append(fmap)
        return logits, feats


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Hyper-parameters of :class:`HiFiGANDiscriminator`.

    Defaults are the HiFi-GAN V1 discriminators (Kong et al. 2020) as listed
    by Coldenhoff & Ren (2021) Sec. III-A/B.

    Attributes:
        periods: MPD periods in samples.
        mpd_channels: hidden channels of each period sub-discriminator.
        msd_channels: hidden channels of each scale sub-discriminator (7
            layers, see :class:`ScaleDiscriminator` for the kernel/stride/group
            pattern; groups must divide these).
        n_scales: number of MSD scales (raw, x2, x4 pooled ...).
        leaky: leaky-ReLU negative slope.

    Raises:
        ValueError: empty or non-positive entries, ``n_scales < 1``, or
            ``msd_channels`` not of length 7.
    """

    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    mpd_channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)
    msd_channels: tuple[int, ...] = (128, 128, 256, 512, 1024, 1024, 1024)
    n_scales: int = 3
    leaky: float = 0.1

    def __post_init__(self) -> None:
        if len(self.periods) == 0 or any(int(p) != p or p < 1 for p in self.periods):
            raise ValueError(f"periods must be non-empty positive integers, got {self.periods}")
        _check_channels(self.mpd_channels, "mpd_channels")
        _check_channels(self.msd_channels, "msd_channels")
        if len(self.msd_channels) != 7:
            raise ValueError(
                f"msd_channels must have 7 entries (one per MSD layer), got {len(self.msd_channels)}"
            )
        if int(self.n_scales) != self.n_scales or self.n_scales < 1:
            raise ValueError(f"n_scales must be a positive integer, got {self.n_scales!r}")

    @classmethod
    def tiny(cls) -> "DiscriminatorConfig":
        """A very small configuration for tests and smoke runs (same topology:
        5 periods and 3 scales, ~100x fewer channels)."""
        return cls(
            mpd_channels=(8, 16, 32, 32, 32),
            msd_channels=(8, 16, 16, 32, 32, 32, 32),
        )

    @classmethod
    def small(cls) -> "DiscriminatorConfig":
        """Same topology at 1/8 of the paper's widths (~1/64 of its multiply-adds):
        for CPU training runs where the full 70 M-parameter discriminators are too slow."""
        return cls(
            mpd_channels=(16, 32, 64, 128, 128),
            msd_channels=(16, 16, 32, 64, 128, 128, 128),
        )


class HiFiGANDiscriminator(nn.Module):
    """MPD + MSD combined (Kong et al. 2020; Coldenhoff & Ren 2021 Sec. III).

    Args:
        config: :class:`DiscriminatorConfig` (HiFi-GAN V1 sizes by default).

    Shapes:
        forward ``y``: ``(batch, 1, T)`` -> ``(logits, feats)`` where
        ``logits`` is a list of ``len(periods) + n_scales`` tensors
        ``(batch, n_k)`` (period sub-discriminators first, then scales) and
        ``feats`` the matching list of feature-map lists.

    Raises:
        ValueError: invalid input shape in ``forward``.
    """

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()) -> None:
        super().__init__()
        self.config = config
        self.mpd = MultiPeriodDiscriminator(
            config.periods, config.mpd_channels, leaky=config.leaky
        )
        self.msd = MultiScaleDiscriminator(config.n_scales, config.msd_channels, leaky=config.leaky)

    @property
    def n_discriminators(self) -> int:
        """Number of sub-discriminators, ``len(periods) + n_scales``."""
        return len(self.config.periods) + self.config.n_scales

    def forward(self, y: Tensor) -> DiscriminatorOutput:
        """Score ``y`` ``(batch, 1, T)`` with all sub-discriminators."""
        _check_waveform(y, type(self).__name__)
        mpd_logits, mpd_feats = self.mpd(y)
        msd_logits, msd_feats = self.msd(y)
        return mpd_logits + msd_logits, mpd_feats + msd_feats


@dataclass(frozen=True)
class MelGANDiscriminatorConfig:
    """Hyper-parameters of :class:`MelGANDiscriminator` (Kumar et al. 2019, Appendix A, Table 5).

    Attributes:
        n_scales: sub-discriminators on the raw audio and on ``n_scales - 1`` successively
            average-pooled copies (MelGAN: 3).
        base_channels: channels of the first conv (MelGAN: 16).
        max_channels: the cap on channels (MelGAN: 1024).
        n_layers: grouped strided convs (MelGAN: 4; stride 4, kernel 41, ``C_in / 4`` groups,
            channels times 4 up to the cap).
        leaky: leaky-ReLU slope (0.2).

    Raises:
        ValueError: non-positive sizes, or a cap that the groups do not divide.
    """

    n_scales: int = 3
    base_channels: int = 16
    max_channels: int = 1024
    n_layers: int = 4
    leaky: float = 0.2

    def __post_init__(self) -> None:
        if min(self.n_scales, self.base_channels, self.max_channels, self.n_layers) < 1:
            raise ValueError(f"MelGAN discriminator sizes must be >= 1: {self}")
        if self.base_channels % 4 or self.max_channels < self.base_channels:
            raise ValueError("base_channels must be a multiple of 4 and at most max_channels")

    def layers(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """``(channels, kernel_sizes, strides, groups)`` of one :class:`ScaleDiscriminator`."""
        ch, k, s, g = [self.base_channels], [15], [1], [1]
        for _ in range(self.n_layers):
            c_in = ch[-1]
            ch.append(min(c_in * 4, self.max_channels))
            k.append(41)
            s.append(4)
            g.append(c_in // 4)
        ch.append(min(ch[-1] * 2, self.max_channels))
        k.append(5)
        s.append(1)
        g.append(1)
        return tuple(ch), tuple(k), tuple(s), tuple(g)


class MelGANDiscriminator(nn.Module):
    """MelGAN's multi-scale discriminator (Kumar et al. 2019, Sec. 2.2 and Table 5).

    ``n_scales`` :class:`ScaleDiscriminator` s with weight norm, on the waveform and on copies
    smoothed by ``AvgPool1d(4, stride 2, padding 1, count_include_pad=False)`` (x2, x4): each a
    conv of kernel 15, grouped strided convs (kernel 41, stride 4), a conv of kernel 5 and an
    output conv of kernel 3 to one channel, whose outputs are patch logits (windows of the
    waveform). MelGAN's reflection padding of the first conv is zero padding here.

    Shapes:
        forward ``y``: ``(batch, 1, T)`` -> ``(list of n_scales logits (batch, n_k), list of
        n_scales feature-map lists)``; every layer's output is a feature map (the last one is the
        logits before flattening).

    Raises:
        ValueError: invalid input shape in ``forward``.
    """

    def __init__(self, config: MelGANDiscriminatorConfig = MelGANDiscriminatorConfig()) -> None:
        super().__init__()
        self.config = config
        ch, k, s, g = config.layers()
        self.discriminators = nn.ModuleList(ScaleDiscriminator(ch, k, s, g, leaky=config.leaky)
                                            for _ in range(config.n_scales))
        self.pool = nn.AvgPool1d(4, 2, padding=1, count_include_pad=False)

    def forward(self, y: Tensor) -> DiscriminatorOutput:
        """Score ``y`` ``(batch, 1, T)`` at every scale."""
        _check_waveform(y, type(self).__name__)
        logits, feats = [], []
        x = y
        for i, disc in enumerate(self.discriminators):
            if i:
                x = self.pool(x)
            score, fmap = disc(x)
            logits.append(score)
            feats.append(fmap)
        return logits, feats
