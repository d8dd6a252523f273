"""sr-hifigan: music super-resolution generator (Coldenhoff & Ren 2021).

The generator is the inception U-Net of Kim & Sathe (2019) as implemented by Alahi,
Sifringer & Stegmüller (2020, Sec. IV-D/E/F), which Coldenhoff & Ren (2021, Sec. III-C) train
against HiFi-GAN discriminators (see :mod:`rtgan.models.discriminators`) with the loss
``L_total(G; D) = lambda_adv L_adv + lambda_flat L_flat + L_time`` (Sec. V, see
:mod:`rtgan.losses`).

Architecture, with ``F_d = base_filters * 2**min(d, d_max)`` (Alahi et al. Sec. IV-F:
``2**(6 + min(d, d_max))`` filters for ``base_filters = 64``):

* down block ``d = 0..B-1``: inception(``F_d``) -> leaky ReLU -> superpixel x2
  (``2 F_d`` channels, stride ``2**(d+1)``); its output is also the skip of level ``d``;
* bottleneck: inception(``F_B``) -> leaky ReLU at stride ``2**B``;
* up block ``d = B-1..0``: concat(previous, skip ``d``) -> inception(``2 F_d``) -> leaky ReLU
  -> subpixel x2 (``F_d`` channels, stride ``2**d``);
* output: conv(``output_kernel``) -> tanh, plus the input (additive skip), so the network
  only has to learn the missing band: ``y = x + tanh(f(x))``.

Two changes to the seed's generator, both on by default (config ``upsample_hold`` and
``dc_free_output``), remove the steady tone at fs/4 (12 kHz at 48 kHz) that a trained seed
generator adds. Its cause: leaky ReLUs rectify, so every feature map carries a DC component
proportional to the signal level; a subpixel layer interleaves two learned phases, and where
their weights differ that DC becomes a pattern of period 2 at the layer's output rate, i.e.
a tone at that rate's Nyquist frequency (24 kHz from the last up block, 12 kHz from the one
before). Measured on the first shipped model with band-limited white noise in, the residual
``y - x`` averaged per output phase modulo 4 was ``(-43, -82, -99, +108) * 1e-6`` at an
input RMS of 0.1, scaling with the input level. The fixes:

* a two-tap hold after every subpixel layer (:class:`.layers.Hold1d`, Sugawara et al. 2018):
  a constant at the low rate stays a constant at the high rate, so no phase pattern forms;
* a DC-free output conv (:class:`.layers.conv.ZeroDCConv1d`): the constant that remains
  does not reach the output as an offset.

The model runs at one sample rate in and out: the band-limited input is first brought to
``sample_rate`` by a resampler (see :mod:`rtgan.engine.render`).

How it is trained is in :mod:`.sr_hifigan_training`: ``SRHiFiGANRecipe`` (run by
:func:`rtgan.training.loop.train`) with its settings ``SRHiFiGANTrainConfig``, the loss
recipes ``RECIPES`` ``bwe`` and ``paper``, and ``discriminator_view``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import nn

from .base import Generator
from .layers.envelope import EnvelopeGain
from .layers.mirror import BandMirror
from .layers import (Hold1d, Inception1d, PaddedConv1d, PixelShuffle1d, PixelUnshuffle1d, Reach, StateCursor, align,
                     align_phase, cached_conv, delay_line, inception_unet, with_history)
from .registry import register


@dataclass(frozen=True)
class SRHiFiGANConfig:
    """Architecture of the sr-hifigan generator; every default in one place.

    Attributes:
        sample_rate: input and output sample rate in Hz.
        input_bandwidth_hz: bandwidth of the input the model is trained for, in Hz.
        blocks: ``B``, number of down and of up blocks; total stride ``2**B``.
        base_filters: filters of the first inception module (paper: 64).
        d_max: filters double for the first ``d_max`` levels only (capacity regulator).
        kernel_sizes: inception branch kernels (paper: 3, 9, 27, 81).
        filter_ratios: filter split over branches (paper: 24/24/8/8).
        bottleneck: 1x1 reduction width as a fraction of each branch's filters.
        padding: ``"causal"`` (no lookahead beyond stride alignment) or ``"centered"``.
        output_kernel: kernel of the final conv.
        negative_slope: leaky ReLU slope.
        upsample_hold: a two-tap hold ``[1, 1] / 2`` after every subpixel layer (no
            checkerboard tones; Sugawara et al. 2018). ``False``: the seed's bare subpixel.
        dc_free_output: the output conv's kernels sum to zero (no DC offset in the output).
        residual_gain: ``g`` in ``y = x + g tanh(f(x))``: the level of the generated band
            relative to what the network makes. 1 in training; a shipped model may carry a
            value calibrated on the validation split (the band's uncorrelated part costs SNR:
            a band of the right level and random phase doubles the error energy there).
        residual_eq: an equaliser on the generated band, ``y = x + g EQ(tanh(f(x)))``:
            ``(frequency Hz, linear gain)`` points of a piecewise-linear magnitude curve,
            realised as a causal minimum-phase FIR of ``residual_eq_taps`` taps
            (:func:`rtgan.dsp.minimum_phase_eq`; no added latency). Empty (default): no EQ.
            A shipped model may carry a curve measured on the validation split that brings
            the generated band's long-term spectrum to the original's shape
            (:func:`rtgan.calibrate.match_residual_eq`): a trained network's band is not
            equally short in every part, and one gain for all of it leaves the quietest
            parts (16-24 kHz) inaudible where the same SNR buys more level there.
        residual_eq_taps: length of that FIR (odd).
        envelope_hidden: width of a learned envelope head (0, the default: none):
            ``y = x + g G EQ(tanh(f(x)))``, where ``G(t)`` is a causal gain estimated from the
            input's spectral shape and the generated band's level
            (:class:`.layers.envelope.EnvelopeGain`; the envelope-estimation stage of classic
            bandwidth extension, Jax & Vary 2003). Its weights are fitted after training on the
            train split (:func:`rtgan.calibrate.fit_envelope`, ``rtgan calibrate --envelope``);
            no added latency.
        envelope_max_gain: ceiling of ``G``.
        mirror_gain: level ``a`` of the input's mirror about its band edge added to the output,
            ``y = x + g G EQ(tanh(f(x))) + a M(x)`` (:class:`.layers.mirror.BandMirror`: the top
            quarter of the input's band mirrored into the quarter above it, the copy-up of
            spectral folding, Makhoul & Berouti 1979; causal, no added latency). 0 (default):
            none. Needs ``sample_rate / (2 input_bandwidth_hz)`` whole (3 at 48 kHz and 8 kHz);
            the output then depends on the sample index modulo that (:attr:`Generator.index_period`).
        bias: conv biases. Off by default: a bias-free net of convs and leaky ReLUs is
            positively homogeneous, ``f(a x) = a f(x)`` for ``a > 0`` (up to the final tanh,
            which is near-linear for the small residuals it produces), so the generated band
            follows the input level and silence stays silent (cf. Mohan et al. 2020,
            bias-free CNNs generalise across signal levels). With biases, a trained model
            added a residual of constant level, costing SNR on quiet passages.
    """

    sample_rate: int = 48000
    input_bandwidth_hz: float = 8000.0
    blocks: int = 8
    base_filters: int = 64
    d_max: int = 3
    kernel_sizes: tuple[int, ...] = (3, 9, 27, 81)
    filter_ratios: tuple[int, ...] = (24, 24, 8, 8)
    bottleneck: float = 0.5
    padding: str = "centered"
    output_kernel: int = 9
    negative_slope: float = 0.2
    upsample_hold: bool = True
    dc_free_output: bool = True
    residual_gain: float = 1.0
    residual_eq: tuple[tuple[float, float], ...] = ()
    residual_eq_taps: int = 127
    envelope_hidden: int = 0
    envelope_max_gain: float = 8.0
    mirror_gain: float = 0.0
    bias: bool = False

    def __post_init__(self) -> None:
        # JSON round trips turn tuples into lists; normalise so configs compare equal.
        object.__setattr__(self, "kernel_sizes", tuple(self.kernel_sizes))
        object.__setattr__(self, "filter_ratios", tuple(self.filter_ratios))
        object.__setattr__(self, "residual_eq", tuple((float(f), float(g)) for f, g in self.residual_eq))
        if self.residual_eq:
            from ..dsp import minimum_phase_eq

            minimum_phase_eq(self.residual_eq, self.sample_rate, self.residual_eq_taps)  # raises on a bad curve
        if self.blocks < 1:
            raise ValueError("blocks must be >= 1")
        if self.padding not in ("causal", "centered"):
            raise ValueError(f"padding must be 'causal' or 'centered', got {self.padding!r}")
        if not 0.0 <= self.residual_gain <= 4.0:
            raise ValueError(f"residual_gain must be in [0, 4], got {self.residual_gain}")
        if not 0.0 <= self.mirror_gain <= 4.0:
            raise ValueError(f"mirror_gain must be in [0, 4], got {self.mirror_gain}")
        if self.mirror_gain:
            from .layers.mirror import mirror_period

            mirror_period(self.sample_rate, self.input_bandwidth_hz)  # raises where the mirror has no whole period
        if self.envelope_hidden < 0 or not 0 < self.envelope_max_gain <= 64:
            raise ValueError(f"envelope_hidden must be >= 0 and envelope_max_gain in (0, 64], got "
                             f"{self.envelope_hidden}, {self.envelope_max_gain}")
        if self.bias and self.dc_free_output:
            raise ValueError("dc_free_output needs bias=False (a bias is a DC offset)")

    def filters(self, d: int) -> int:
        """``F_d``: filters of level ``d`` (Alahi et al. Sec. IV-F)."""
        return self.base_filters * 2 ** min(d, self.d_max)


PRESETS = {
    # B = 8 as in the seed, for GPU training and offline rendering.
    "paper": SRHiFiGANConfig(),
    # causal (latency: one block), sized to the live budget of one CPU thread (RTF <= 0.25 at
    # block 256): B = 5 and the paper's kernels give a 10 102-sample (210 ms) receptive field
    "live": SRHiFiGANConfig(blocks=5, base_filters=24, d_max=2, kernel_sizes=(3, 9, 27, 81),
                            padding="causal", output_kernel=9),
    # for tests: a few thousand parameters.
    "tiny": SRHiFiGANConfig(blocks=2, base_filters=8, d_max=1, kernel_sizes=(3, 5, 9, 15),
                            padding="centered", output_kernel=5),
}


@register("sr-hifigan", SRHiFiGANConfig, PRESETS,
          description="48 kHz music/speech super-resolution (Coldenhoff & Ren 2021)")
class SRHiFiGANGenerator(Generator):
    """Inception U-Net super-resolution generator; ``(batch, 1, samples)`` -> same shape.

    ``samples`` must be a multiple of :attr:`total_stride` (``2**blocks``). See the module
    docstring for the architecture and sources.
    """

    def __init__(self, config: SRHiFiGANConfig = SRHiFiGANConfig()) -> None:
        super().__init__()
        self.config = c = config

        def inception(cin: int, cout: int) -> Inception1d:
            return Inception1d(cin, cout, c.kernel_sizes, c.filter_ratios, c.bottleneck, c.padding, c.negative_slope,
                               bias=c.bias)

        self.act = nn.LeakyReLU(c.negative_slope)
        self.unshuffle = PixelUnshuffle1d(2)
        self.shuffle = PixelShuffle1d(2)
        self.down, self.bottleneck, self.up = inception_unet(c.blocks, c.filters, inception, skips=True)
        cin = c.filters(0)
        self.hold = Hold1d() if c.upsample_hold else None
        self.out = PaddedConv1d(cin, 1, c.output_kernel, c.padding, bias=c.bias, dc_free=c.dc_free_output)
        # zero-initialised output conv: an untrained model is the identity y = x, so
        # training starts from the input's SNR instead of from random noise
        nn.init.zeros_(self.out.conv.weight)
        if self.out.conv.bias is not None:
            nn.init.zeros_(self.out.conv.bias)
        eq = None
        if c.residual_eq:
            from ..dsp import minimum_phase_eq

            # conv1d correlates: flip the impulse response; not a parameter, not in checkpoints
            taps = minimum_phase_eq(c.residual_eq, c.sample_rate, c.residual_eq_taps)
            eq = torch.tensor(taps[::-1].copy(), dtype=torch.float32).view(1, 1, -1)
        self.register_buffer("eq", eq, persistent=False)
        self.envelope = (EnvelopeGain(c.sample_rate, c.input_bandwidth_hz, c.envelope_hidden, self.total_stride,
                                      c.envelope_max_gain) if c.envelope_hidden else None)
        self.mirror = BandMirror(c.sample_rate, c.input_bandwidth_hz) if c.mirror_gain else None

    @property
    def total_stride(self) -> int:
        return 2 ** self.config.blocks

    @property
    def index_period(self) -> int:
        """The mirror's carrier period (3 at 48 kHz) when it has one, else 1."""
        return self.mirror.period if self.mirror is not None else 1

    @cached_property
    def _mirror_origin(self) -> int:
        """Index of the first sample a stream's step sees, in :meth:`forward`'s count, modulo the
        mirror's period: :meth:`init_state` primes the step with :attr:`prime_frames` zeros,
        :func:`rtgan.engine.overlap_save.offline` pads the aligned left context, where
        :meth:`forward` counts from."""
        s = self.total_stride
        return (-(-self.left_context // s) * s - self.prime_frames) % self.mirror.period

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` of shape ``(batch, 1, samples)``; returns the same shape.

        Raises:
            ValueError: see :meth:`Generator.check_input`.
        """
        self.check_input(x)
        return self._combine(x, self.out(self.body(x)))

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The U-Net without its output conv: ``(batch, 1, samples)`` -> ``(batch, F_0, samples)``."""
        skips = []
        h = x
        for block in self.down:
            h = self.unshuffle(self.act(block(h)))
            skips.append(h)
        h = self.act(self.bottleneck(h))
        for block, skip in zip(self.up, reversed(skips)):
            h = self.shuffle(self.act(block(torch.cat([h, skip], dim=1))))
            if self.hold is not None:
                h = self.hold(h)
        return h

    def _combine(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Output from the input and the output conv's ``h``: the additive input skip ``x + g G EQ(tanh(h))``."""
        t = torch.tanh(h)
        r = self._scale(t)
        if self.eq is not None:
            r = F.conv1d(F.pad(r, (self.eq.shape[-1] - 1, 0)), self.eq)
        if self.envelope is not None:
            r = r * self.envelope(x, t)
        if self.mirror is not None:
            r = r + self.config.mirror_gain * self.mirror(x)
        return x + r

    def stream_forward(self, x: torch.Tensor, cur: StateCursor) -> tuple[torch.Tensor, int]:
        """:meth:`forward` on one block with explicit caches (see :mod:`.layers.cached`).

        Delays are tracked in frames of each level; before each superpixel the delay is
        aligned to an even number of frames, skips wait for the up path, and the additive
        input skip waits for the output conv. Returns the output block and its delay in samples.
        """
        skips = []
        h, d = x, 0
        for block in self.down:
            h, d = block.stream(h, d, cur, act=self.act)
            h, d = align_phase(h, d, self.unshuffle.factor, cur)
            h, d = self.unshuffle(h), d // self.unshuffle.factor
            skips.append((h, d))
        h, d = self.bottleneck.stream(h, d, cur, act=self.act)
        for block, skip in zip(self.up, reversed(skips)):
            (h, s), d = align([(h, d), skip], cur)
            h, d = block.stream(torch.cat([h, s], dim=1), d, cur, act=self.act)
            h, d = self.shuffle(h), d * self.shuffle.factor
            if self.hold is not None:
                h, d = self.hold.stream(h, d, cur)
        h, d = cached_conv(self.out, h, d, cur)
        return self._combine_stream(x, h, d, cur), d

    def _combine_stream(self, x: torch.Tensor, h: torch.Tensor, d: int, cur: StateCursor) -> torch.Tensor:
        """:meth:`_combine` in streaming: the input waits ``d`` samples in a delay line for ``h``."""
        t = torch.tanh(h)
        r = self._scale(t)
        if self.eq is not None:
            r = F.conv1d(with_history(r, self.eq.shape[-1] - 1, cur), self.eq)
        xd = delay_line(x, d, cur)
        if self.envelope is not None:
            r = r * self.envelope.stream(x, xd, t, d, cur)
        if self.mirror is not None:
            origin = 0 if cur.state is None else self._mirror_origin  # init mode only lays out the state
            r = r + self.config.mirror_gain * delay_line(self.mirror.stream(x, origin, cur), d, cur)
        return xd + r

    def _scale(self, t: torch.Tensor) -> torch.Tensor:
        """``g t`` (``g``: ``residual_gain``; no multiply at 1)."""
        g = self.config.residual_gain
        return t if g == 1.0 else g * t

    def _residual(self, h: torch.Tensor) -> torch.Tensor:
        return self._scale(torch.tanh(h))

    def reach(self) -> Reach:
        r = Reach()
        skips = []
        for block in self.down:
            r = self.unshuffle.reach(block.reach(r))
            skips.append(r)
        r = self.bottleneck.reach(r)
        for block, skip in zip(self.up, reversed(skips)):
            r = self.shuffle.reach(block.reach(r.merge(skip)))
            if self.hold is not None:
                r = self.hold.reach(r)
        return self._combine_reach(self.out.reach(r))

    def _combine_reach(self, r: Reach) -> Reach:
        """:meth:`reach` of :meth:`_combine`: the EQ (causal) reads ``taps - 1`` past samples of
        the residual; the additive input skip reads the current sample only."""
        if self.eq is not None:
            r = r.conv(self.eq.shape[-1] - 1, 0)
        if self.envelope is not None:
            r = self.envelope.reach(r)
        if self.mirror is not None:
            r = r.merge(self.mirror.reach())
        return r.merge(Reach())
