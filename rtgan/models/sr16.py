"""sr16-unet: audio super-resolution to 16 kHz by ``r = 2`` or ``4`` (Kuleshov, Enam & Ermon 2017).

The U-Net of Kuleshov, Enam & Ermon (2017, "Audio super resolution using neural networks",
Sec. 3, Fig. 2), which Retzlöff (seed 002, "Deep Learning Audio Super Resolution", Sec. II-A
and III) trains with the L2 loss at 16 kHz for ratios ``r = 2`` and ``4`` (and as the
generator of its GAN and WGAN).

* **Front end** (part of the graph, streamed with it): the low-rate input (``16000 / r`` Hz)
  is upsampled to 16 kHz by cubic-spline interpolation, as Kuleshov's ``splrep``/``splev``
  preprocessing does, here as a fixed FIR: the cardinal cubic spline truncated to
  ``spline_half_width`` input samples each side (:class:`.layers.spline.SplineUpsample1d`;
  within 1e-6 of scipy's interpolating spline away from the ends of a clip).
* **Down blocks** ``b = 1..B`` on the spline output: a conv with stride 2 of
  ``min(2**(6 + b), 512)`` filters of length ``max(2**(7 - b) + 1, 9)`` (Kuleshov Sec. 3: 128,
  256, 512, 512 filters of length 65, 33, 17, 9 for ``B = 4``), then a leaky ReLU (0.2).
* **Bottleneck**: built like a down block at ``b = B + 1`` (stride 2 again), then dropout
  and the leaky ReLU.
* **Up blocks** ``b = B..1``: a conv (stride 1) of ``2 * F_b`` filters of length ``K_b``,
  dropout, ReLU, subpixel by 2 (``F_b`` channels), then *stacking*: concatenated with the
  output of down block ``b`` (same length).
* **Output**: a conv to 2 channels (length 9), subpixel by 2 back to the output rate, plus
  the spline-upsampled input (the additive skip): ``y = spline(x) + f(spline(x))``. The
  output conv starts at zero, so an untrained model *is* the spline baseline.

The network therefore runs at the output rate and downsamples by ``2**(B + 1)``; input
lengths (in input frames) must be multiples of :attr:`SR16UNet.total_stride`, the fewest
input frames whose ``r`` -fold length is a multiple of ``2**(B + 1)``.

Sizes (filters and kernels) follow the rules above with their exponents in the config
(``filter_exp``, ``kernel_exp``) so small presets scale them down. ``padding="causal"``
gives convs no lookahead (the stream's latency is then the spline's lookahead and the
stride alignment); ``"centered"`` is Kuleshov's "same" padding. Dropout (Kuleshov: 0.5) acts
only in training mode; the streaming form, which is inference, leaves it out.

Training is in :mod:`.sr16_training` and :mod:`.sr16_content_training`: seed 002's three
models share this generator, registered here under three names (``sr16-unet``; ``sr16-gan``
and ``sr16-wgan``, :class:`SR16GAN` and :class:`SR16WGAN`, subclasses that change nothing:
same configs, presets and weights layout), each with its recipe in :mod:`.sr16_training`:
``SR16UNetRecipe`` (the L2 loss alone), ``SR16GANRecipe`` (plus ``0.01 * -log D(G(x))``
against WaveGAN's discriminator, :mod:`.wavegan`, trained with the cross-entropy) and
``SR16WGANRecipe`` (plus ``0.01 * -C(G(x))`` against the same network as a weight-clipped
Wasserstein critic, 5 critic steps per generator step). The content-loss variants
``sr16-unet-c``, ``sr16-gan-c`` and ``sr16-wgan-c`` (seed 002's "-C" models) are registered
here too; their recipes are in :mod:`.sr16_content_training`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .base import Generator
from .layers import (Hold1d, PaddedConv1d, PixelShuffle1d, Reach, SplineUpsample1d, StateCursor, StridedConv1d, align,
                     cached_conv, delay_line)
from .registry import register


@dataclass(frozen=True)
class SR16Config:
    """Architecture of the sr16-unet generator; every default in one place (Kuleshov et al. 2017).

    Attributes:
        ratio: ``r``, output samples per input sample (the seed: 2 and 4); the input runs
            at ``sample_rate / ratio`` Hz.
        sample_rate: output sample rate in Hz (the seed: 16 kHz).
        blocks: ``B``, down blocks (and up blocks); the bottleneck adds one more stride 2, so
            the U-Net's stride is ``2**(B + 1)`` output samples.
        filter_exp: filters of level ``b`` are ``min(2**(filter_exp + b), max_filters)``
            (Kuleshov: 6, i.e. 128, 256, 512, ...).
        max_filters: the cap on filters (Kuleshov: 512).
        kernel_exp: kernel length of level ``b`` is ``max(2**(kernel_exp - b) + 1, min_kernel)``
            (Kuleshov: 7, i.e. 65, 33, 17, 9, ...).
        min_kernel: the floor on kernel lengths (Kuleshov: 9).
        output_kernel: length of the output conv (Kuleshov's code: 9).
        padding: ``"centered"`` (Kuleshov's "same" padding) or ``"causal"`` (no lookahead in
            the U-Net).
        negative_slope: leaky ReLU slope of the down blocks and the bottleneck (0.2).
        up_negative_slope: slope of the up blocks' activation (Kuleshov: ReLU, 0).
        dropout: dropout rate after the bottleneck and up-block convs (Kuleshov: 0.5), in
            training mode only.
        spline_half_width: ``K``, input samples each side of the cubic-spline FIR (error
            against an exact spline about ``0.268**K``; its lookahead is ``K`` input samples).
        bias: conv biases (Kuleshov: yes).
        upsample_hold: a two-tap hold ``[1, 1] / 2`` (:class:`.layers.Hold1d`) after the
            subpixel layer of every up block (not after the output's: at the output rate
            the band it would null is the band the model generates). Off in the seed;
            on in the live presets (see "Steady tones" in the module docstring).
        dc_free_output: the output conv has no bias and kernels that sum to zero
            (:class:`.layers.conv.ZeroDCConv1d`): no DC, hence no pattern of period 2 from
            the output's subpixel layer.

    Raises:
        ValueError: a ratio < 2 or one that does not divide ``sample_rate``, ``blocks < 1``,
            an unknown padding, a dropout outside ``[0, 1)``, a kernel below 2 or
            ``spline_half_width < 1``.
    """

    ratio: int = 2
    sample_rate: int = 16000
    blocks: int = 4
    filter_exp: int = 6
    max_filters: int = 512
    kernel_exp: int = 7
    min_kernel: int = 9
    output_kernel: int = 9
    padding: str = "centered"
    negative_slope: float = 0.2
    up_negative_slope: float = 0.0
    dropout: float = 0.0
    spline_half_width: int = 12
    bias: bool = True
    upsample_hold: bool = False
    dc_free_output: bool = False

    def __post_init__(self) -> None:
        if self.ratio < 2 or self.sample_rate % self.ratio:
            raise ValueError(f"ratio must be >= 2 and divide sample_rate {self.sample_rate}, got {self.ratio}")
        if self.blocks < 1:
            raise ValueError("blocks must be >= 1")
        if self.padding not in ("causal", "centered"):
            raise ValueError(f"padding must be 'causal' or 'centered', got {self.padding!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.min_kernel < 2 or self.output_kernel < 1:
            raise ValueError("kernels must be >= 2 (strided convs) and the output kernel >= 1")
        if self.spline_half_width < 1:
            raise ValueError("spline_half_width must be >= 1")

    def filters(self, b: int) -> int:
        """``F_b`` for level ``b = 1..B+1`` (``B + 1``: the bottleneck)."""
        return min(2 ** (self.filter_exp + b), self.max_filters)

    def kernel(self, b: int) -> int:
        """``K_b`` for level ``b = 1..B+1``."""
        return max(2 ** max(self.kernel_exp - b, 0) + 1, self.min_kernel)

    @property
    def input_rate(self) -> int:
        """Input sample rate in Hz."""
        return self.sample_rate // self.ratio


PRESETS = {
    # Kuleshov et al. (2017) as the seed trains it: B = 4, 128-256-512-512 filters of length
    # 65-33-17-9, bottleneck 512 x 9, dropout 0.5; about 56 M parameters (a GPU model).
    "paper-r2": SR16Config(ratio=2, dropout=0.5),
    "paper-r4": SR16Config(ratio=4, dropout=0.5),
    # causal, 16-32-64-64 filters of length 17-9-5-5, 289 k parameters: one CPU thread steps a
    # block of 256 output samples (16 ms) in 0.36 ms in ONNX Runtime (1.5 ms eager), measured
    # on a shared 2-core machine; latency 2 ms (r = 2) / 4 ms (r = 4). Holds after the up
    # blocks' subpixels and a DC-free output conv keep steady tones out (module docstring).
    "live-r2": SR16Config(ratio=2, blocks=4, filter_exp=3, max_filters=64, kernel_exp=5, min_kernel=5,
                          padding="causal", upsample_hold=True, dc_free_output=True),
    "live-r4": SR16Config(ratio=4, blocks=4, filter_exp=3, max_filters=64, kernel_exp=5, min_kernel=5,
                          padding="causal", upsample_hold=True, dc_free_output=True),
    # for tests: a few thousand parameters, centered (lookahead in every conv)
    "tiny": SR16Config(ratio=2, blocks=2, filter_exp=2, max_filters=16, kernel_exp=3, min_kernel=3,
                       output_kernel=5, spline_half_width=6),
    # tiny-r4 carries the tone-free options too, so the tests stream both variants
    "tiny-r4": SR16Config(ratio=4, blocks=2, filter_exp=2, max_filters=16, kernel_exp=3, min_kernel=3,
                          output_kernel=5, spline_half_width=6, upsample_hold=True, dc_free_output=True),
}
# the names without a ratio take the seed's first ratio, 2
PRESETS["paper"] = PRESETS["paper-r2"]
PRESETS["live"] = PRESETS["live-r2"]


@register("sr16-unet", SR16Config, PRESETS,
          description="16 kHz speech/audio super-resolution from 8 or 4 kHz, spline + U-Net (Kuleshov et al. 2017)")
class SR16UNet(Generator):
    """Spline front end plus Kuleshov's U-Net: ``(batch, 1, n)`` at ``16000 / r`` Hz -> ``(batch, 1, n * r)``.

    ``n`` must be a multiple of :attr:`total_stride`. See the module docstring for the
    architecture and its sources.
    """

    def __init__(self, config: SR16Config = SR16Config()) -> None:
        super().__init__()
        self.config = c = config
        self.spline = SplineUpsample1d(c.ratio, c.spline_half_width)
        self.act_down = nn.LeakyReLU(c.negative_slope)
        self.act_up = nn.LeakyReLU(c.up_negative_slope) if c.up_negative_slope else nn.ReLU()
        self.drop = nn.Dropout(c.dropout)
        self.shuffle = PixelShuffle1d(2)
        self.down = nn.ModuleList()
        cin = 1
        for b in range(1, c.blocks + 1):
            self.down.append(StridedConv1d(cin, c.filters(b), c.kernel(b), 2, c.padding, bias=c.bias))
            cin = c.filters(b)
        top = c.blocks + 1
        self.bottleneck = StridedConv1d(cin, c.filters(top), c.kernel(top), 2, c.padding, bias=c.bias)
        cin = c.filters(top)
        self.up = nn.ModuleList()
        for b in range(c.blocks, 0, -1):
            self.up.append(PaddedConv1d(cin, 2 * c.filters(b), c.kernel(b), c.padding, bias=c.bias))
            cin = 2 * c.filters(b)  # F_b after the subpixel, stacked with the F_b of down block b
        self.hold = Hold1d() if c.upsample_hold else None
        self.out = PaddedConv1d(cin, 2, c.output_kernel, c.padding, bias=c.bias and not c.dc_free_output,
                                dc_free=c.dc_free_output)
        # zero-initialised output conv: an untrained model is the spline baseline y = spline(x)
        nn.init.zeros_(self.out.conv.weight)
        if self.out.conv.bias is not None:
            nn.init.zeros_(self.out.conv.bias)

    @property
    def sample_rate_in(self) -> int:
        return self.config.input_rate

    @property
    def sample_rate_out(self) -> int:
        return int(self.config.sample_rate)

    @property
    def unet_stride(self) -> int:
        """Output samples per frame at the U-Net's deepest level, ``2**(B + 1)``."""
        return 2 ** (self.config.blocks + 1)

    @property
    def total_stride(self) -> int:
        """Fewest input frames whose ``ratio``-fold length is a multiple of :attr:`unet_stride`."""
        s, r = self.unet_stride, self.config.ratio
        return s // math.gcd(s, r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` ``(batch, 1, n)`` at the input rate to ``(batch, 1, n * ratio)``.

        Raises:
            ValueError: see :meth:`Generator.check_input`.
        """
        self.check_input(x)
        s = self.spline(x)
        h, skips = s, []
        for conv in self.down:
            h = self.act_down(conv(h))
            skips.append(h)
        h = self.act_down(self.drop(self.bottleneck(h)))
        for conv, skip in zip(self.up, reversed(skips)):
            h = self.shuffle(self.act_up(self.drop(conv(h))))
            if self.hold is not None:
                h = self.hold(h)
            h = torch.cat([h, skip], dim=1)
        return s + self.shuffle(self.out(h))

    def stream_forward(self, x: torch.Tensor, cur: StateCursor) -> tuple[torch.Tensor, int]:
        """:meth:`forward` on one block with explicit caches (see :mod:`.layers.cached`).

        Delays are in frames of each level (output samples at the spline's output): the
        strided convs align their own phase, subpixel layers double the delay, skips wait
        for the up path and the spline output waits for the U-Net. Dropout is left out
        (inference). Returns the output block and its delay in output samples.
        """
        s, ds = self.spline.stream(x, 0, cur)
        h, d, skips = s, ds, []
        for conv in self.down:
            h, d = conv.stream(h, d, cur)
            h = self.act_down(h)
            skips.append((h, d))
        h, d = self.bottleneck.stream(h, d, cur)
        h = self.act_down(h)
        for conv, skip in zip(self.up, reversed(skips)):
            h, d = cached_conv(conv, h, d, cur)
            h, d = self.shuffle(self.act_up(h)), d * self.shuffle.factor
            if self.hold is not None:
                h, d = self.hold.stream(h, d, cur)
            (h, k), d = align([(h, d), skip], cur)
            h = torch.cat([h, k], dim=1)
        h, d = cached_conv(self.out, h, d, cur)
        h, d = self.shuffle(h), d * self.shuffle.factor
        return delay_line(s, d - ds, cur) + h, d

    def reach(self) -> Reach:
        """The composition of the layers' rules, at the output's stride ``1 / ratio``.

        An upper bound (the rules bound the worst output phase of each layer; the worst phases
        of the spline and of the U-Net do not coincide): measured by perturbation, the tiny
        and live presets depend on at most one input frame less on either side.
        """
        r0 = self.spline.reach(Reach())
        r, skips = r0, []
        for conv in self.down:
            r = conv.reach(r)
            skips.append(r)
        r = self.bottleneck.reach(r)
        for conv, skip in zip(self.up, reversed(skips)):
            r = self.shuffle.reach(conv.reach(r))
            if self.hold is not None:
                r = self.hold.reach(r)
            r = r.merge(skip)
        r = self.shuffle.reach(self.out.reach(r))
        return r.merge(r0)  # the additive spline skip


# -- the GAN and WGAN of seed 002: the same generator under their own names -----------------

@register("sr16-gan", SR16Config, PRESETS,
          description="sr16-unet trained as a GAN against WaveGAN's discriminator (Retzlöff, seed 002)")
class SR16GAN(SR16UNet):
    """:class:`SR16UNet` as the generator of seed 002's GAN (same network, configs and presets)."""


@register("sr16-wgan", SR16Config, PRESETS,
          description="sr16-unet trained as a WGAN against WaveGAN's critic, weight clipping (Retzlöff, seed 002)")
class SR16WGAN(SR16UNet):
    """:class:`SR16UNet` as the generator of seed 002's WGAN (same network, configs and presets)."""


# -- seed 002's "-C" variants: the same generator under the content-loss models' names -----
#
# Trained with a content loss on a pretrained ae-kimsathe's bottleneck; their training configs
# and recipes are in :mod:`.sr16_content_training`.


@register("sr16-unet-c", SR16Config, PRESETS,
          description="sr16-unet trained with a content loss on a pretrained ae-kimsathe's bottleneck (seed 002's -C)")
class SR16UNetC(SR16UNet):
    """:class:`SR16UNet` as seed 002's UNet-C (same network, configs and presets)."""


@register("sr16-gan-c", SR16Config, PRESETS,
          description="sr16-gan trained with a content loss on a pretrained ae-kimsathe's bottleneck (seed 002's -C)")
class SR16GANC(SR16UNet):
    """:class:`SR16UNet` as the generator of seed 002's GAN-C (same network, configs and presets)."""


@register("sr16-wgan-c", SR16Config, PRESETS,
          description="sr16-wgan trained with a content loss on a pretrained ae-kimsathe's bottleneck (seed 002's -C)")
class SR16WGANC(SR16UNet):
    """:class:`SR16UNet` as the generator of seed 002's WGAN-C (same network, configs and presets)."""
