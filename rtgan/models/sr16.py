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

Training (the end of this file): seed 002's three models share this generator, registered
under three names (``sr16-unet``; ``sr16-gan`` and ``sr16-wgan``, :class:`SR16GAN` and
:class:`SR16WGAN`, subclasses that change nothing: same configs, presets and weights layout),
each with its recipe: :class:`SR16UNetRecipe` (the L2 loss alone), :class:`SR16GANRecipe`
(plus ``0.01 * -log D(G(x))`` against WaveGAN's discriminator, :mod:`.wavegan`, trained with
the cross-entropy) and :class:`SR16WGANRecipe` (plus ``0.01 * -C(G(x))`` against the same
network as a weight-clipped Wasserstein critic, 5 critic steps per generator step).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..losses import (clip_weights_, nonsaturating_discriminator_loss, nonsaturating_generator_loss,
                      wasserstein_critic_loss, wasserstein_generator_loss)
from .base import Generator
from .layers import (PaddedConv1d, PixelShuffle1d, Reach, SplineUpsample1d, StateCursor, StridedConv1d, align,
                     cached_conv, delay_line)
from .recipe import Recipe, TrainConfig
from .registry import build, make_config, register, register_recipe
from .wavegan import WaveGANConfig, WaveGANDiscriminator


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
    # on a shared 2-core machine; latency 2 ms (r = 2) / 4 ms (r = 4)
    "live-r2": SR16Config(ratio=2, blocks=4, filter_exp=3, max_filters=64, kernel_exp=5, min_kernel=5,
                          padding="causal"),
    "live-r4": SR16Config(ratio=4, blocks=4, filter_exp=3, max_filters=64, kernel_exp=5, min_kernel=5,
                          padding="causal"),
    # for tests: a few thousand parameters, centered (lookahead in every conv)
    "tiny": SR16Config(ratio=2, blocks=2, filter_exp=2, max_filters=16, kernel_exp=3, min_kernel=3,
                       output_kernel=5, spline_half_width=6),
    "tiny-r4": SR16Config(ratio=4, blocks=2, filter_exp=2, max_filters=16, kernel_exp=3, min_kernel=3,
                          output_kernel=5, spline_half_width=6),
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
        self.out = PaddedConv1d(cin, 2, c.output_kernel, c.padding, bias=c.bias)
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
            r = self.shuffle.reach(conv.reach(r)).merge(skip)
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


# -- training (Retzlöff, seed 002, Sec. III-IV) -----------------------------------------------
#
# Three recipes share the data and the generator: sr16-unet (the L2 loss alone), sr16-gan (L2
# plus 0.01 times the non-saturating loss against WaveGAN's discriminator, which takes the
# cross-entropy loss) and sr16-wgan (L2 plus 0.01 times the Wasserstein loss against WaveGAN's
# discriminator as the critic: linear output, weight clipping, n_critic critic steps per
# generator step). scipy (the anti-alias filter, the resampler, the spline baseline) is
# imported on first use, so importing the model stays light.

def l2_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Seed 002's ``L_2 = 1/W sum_i ||x_hr_i - x_pred_i||_2^2`` over the ``W`` examples of a batch.

    The squared error is summed over each example's samples and averaged over the batch (the
    adversarial weight ``lambda_adv = 0.01`` is relative to this sum, not to a per-sample mean:
    for a 0.5 s clip at 16 kHz it is 8000 times :func:`rtgan.losses.time_mse`).

    Raises:
        ValueError: shapes differ.
    """
    if y_hat.shape != y.shape:
        raise ValueError(f"y_hat shape {tuple(y_hat.shape)} != y shape {tuple(y.shape)}")
    return ((y_hat - y) ** 2).flatten(1).sum(dim=1).mean()


#: anti-alias filters for making the low-rate input (see :attr:`SR16TrainConfig.anti_alias`)
ANTI_ALIAS = ("cheby1", "kaiser")


@dataclass(frozen=True)
class SR16TrainConfig(TrainConfig):
    """Training of sr16-unet (seed 002 Sec. III: the L2 loss, Adam at 1e-4), beside :class:`TrainConfig`'s fields.

    Examples: a corpus clip of ``segment_samples`` samples at ``corpus_rate`` Hz (0.5 s at 48 kHz
    by default: seed 002 Sec. IV trains on half-second clips) is resampled to 16 kHz
    (:func:`rtgan.audio.io.resample`, the corpus's own resampler) and cropped to whole U-Net
    frames: that is the target ``y``; the input ``x`` is ``y`` low-passed and decimated by the
    preset's ratio ``r`` (``16000 / r`` Hz). The model spline-upsamples ``x`` itself.

    Attributes:
        segment_samples: corpus samples (at ``corpus_rate``) cut for one example; validation
            clips are twice as long (1 s).
        min_bandwidth_hz: clips narrower than the 16 kHz target's 8 kHz band are left out.
        corpus_rate: the corpus's sample rate in Hz (clips are read at it).
        lr, betas: Adam for every network; seed 002 Sec. III: Adam (Kingma & Ba 2014) at
            ``1e-4``; the seed gives no betas, so Adam's own defaults ``(0.9, 0.999)``.
        anti_alias: the low-pass before decimation. ``"cheby1"``: :func:`scipy.signal.decimate`
            as Kuleshov et al.'s data preparation (``prep_vctk.py --low-pass``) calls it, an
            order-8 Chebyshev type I IIR with cutoff ``0.8 * 8000 / r`` Hz, applied forwards and
            backwards (zero phase), then every ``r``-th sample; ``"kaiser"``:
            :func:`rtgan.audio.degrade.decimate` (``resample_poly``, Kaiser-window FIR, beta 5).
            Both keep input sample ``i`` at target sample ``r * i`` (the spline's knots).

    Raises:
        ValueError: an unknown ``anti_alias`` or a non-positive ``corpus_rate``.
    """

    model: str = "sr16-unet"
    preset: str = "live"
    batch_size: int = 16
    segment_samples: int = 24000
    min_bandwidth_hz: float = 8000.0
    corpus_rate: int = 48000
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    anti_alias: str = "cheby1"

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.anti_alias not in ANTI_ALIAS:
            raise ValueError(f"anti_alias must be one of {ANTI_ALIAS}, got {self.anti_alias!r}")
        if self.corpus_rate <= 0:
            raise ValueError(f"corpus_rate must be positive, got {self.corpus_rate}")


@dataclass(frozen=True)
class SR16GANTrainConfig(SR16TrainConfig):
    """Training of sr16-gan (seed 002 Sec. III): ``L_G = L_2 + lambda_adv (-log D(G(x)))``, D by cross-entropy.

    Attributes:
        adversarial: train against the discriminator (False: the L2 loss alone, no discriminator built).
        adv_start_step: generator steps before the adversarial terms start (seed: 0).
        adv_weight: ``lambda_adv`` (seed 002 Sec. III: 0.01).
        disc_width: ``d`` of :class:`rtgan.models.wavegan.WaveGANConfig` (WaveGAN: 64).
        disc_layers: its strided convolutions (seed 002 Sec. III: four).
        phase_shuffle: its phase-shuffle radius ``n`` (WaveGAN: 2).
    """

    model: str = "sr16-gan"
    adversarial: bool = True
    adv_start_step: int = 0
    adv_weight: float = 0.01
    disc_width: int = 64
    disc_layers: int = 4
    phase_shuffle: int = 2


@dataclass(frozen=True)
class SR16WGANTrainConfig(SR16GANTrainConfig):
    """Training of sr16-wgan (seed 002 Sec. II-C, III): Wasserstein losses, weight clipping, ``n_critic``.

    ``L_G = L_2 + lambda_adv (-C(G(x)))`` (the seed: "defined similarly as in the GAN", so the
    same ``lambda_adv = 0.01``); the critic minimises ``mean C(G(x)) - mean C(y)`` and is
    clipped to ``[-clip, clip]`` after every update. The seed gives neither constant; these
    are Arjovsky, Chintala & Bottou (2017), Algorithm 1's defaults. The optimiser stays the
    seed's Adam at 1e-4 for every model (Sec. III), not WGAN's RMSprop.

    Attributes:
        clip: the weight-clipping bound ``c`` (Arjovsky et al.: 0.01).
        n_critic: critic steps per generator step (Arjovsky et al.: 5).
    """

    model: str = "sr16-wgan"
    clip: float = 0.01
    n_critic: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.clip < float("inf"):
            raise ValueError(f"clip must be a finite positive number, got {self.clip}")
        if self.n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {self.n_critic}")


#: Training presets, the same names for the three models: ``name: (model preset, settings)``;
#: settings a model's config does not have (the discriminator's, for sr16-unet) are left out.
#: ``paper``: batch 64 (the seed gives none; Kuleshov et al.'s README trains with 64) and 50
#: epochs of the seed's 50 000 clips (Sec. III-IV): 50 * 50000 / 64 steps. ``live``: the
#: causal CPU-sized generator and a WaveGAN of half width. ``tiny``: seconds on a CPU (tests
#: and CI), learning rate 1e-3 (as sr-hifigan's tiny preset) and a WaveGAN of width 2.
_TRAIN_PRESETS: dict[str, tuple[str, dict]] = {
    **{name: (name, dict(steps=20, batch_size=4, val_items=4, val_every=10, ckpt_every=10, log_every=5, lr=1e-3,
                         num_workers=0, disc_width=2)) for name in ("tiny", "tiny-r4")},
    **{f"live{r}": (f"live{r}", dict(batch_size=16, steps=20000, disc_width=32)) for r in ("", "-r2", "-r4")},
    **{f"paper{r}": (f"paper{r}", dict(batch_size=64, steps=39063, val_every=1000, ckpt_every=1000, disc_width=64))
       for r in ("", "-r2", "-r4")},
}


@register_recipe("sr16-unet")
class SR16UNetRecipe(Recipe):
    """sr16-unet's training (seed 002 Sec. III): the L2 loss alone, Adam at 1e-4, no discriminator.

    Network ``generator`` (the preset's :class:`SR16UNet`). Examples ``(x, y)``: ``x (1, n / r)``
    at ``16000 / r`` Hz, ``y (1, n)`` at 16 kHz (see :class:`SR16TrainConfig`). Validation: SNR
    (dB) and LSD (:mod:`rtgan.metrics`, 2048-point frames at 16 kHz as Kuleshov et al.'s) of the
    model's output against ``y``, and of scipy's not-a-knot cubic spline through ``x``
    (:func:`rtgan.audio.degrade.spline_upsample`, the seed's "Spline" baseline) against ``y``;
    the per-sample MSE and the L2 loss of the output.
    """

    config_cls: ClassVar[type[TrainConfig]] = SR16TrainConfig
    progress = ("gen_total", "snr_db", "lsd")

    def __init__(self, cfg: SR16TrainConfig) -> None:
        """Raises: KeyError: ``cfg.preset`` is not a preset of ``cfg.model``; ValueError: clips too short."""
        super().__init__(cfg)
        c = make_config(cfg.model, cfg.preset)
        self.ratio, self.rate = int(c.ratio), int(c.sample_rate)
        # target lengths are whole input frames, and those a multiple of the U-Net's stride
        self.unit = math.lcm(2 ** (c.blocks + 1), self.ratio)
        self.samples = self.target_length(cfg.segment_samples)
        if self.samples < self.unit:
            raise ValueError(f"segment_samples {cfg.segment_samples} at {cfg.corpus_rate} Hz gives fewer than "
                             f"{self.unit} samples at {self.rate} Hz, the least this generator takes")

    @classmethod
    def presets(cls) -> dict[str, SR16TrainConfig]:
        """``tiny``/``tiny-r4`` (CI), ``live``/``live-r2``/``live-r4``, ``paper``/``paper-r2``/``paper-r4`` (GPU)."""
        fields = {f.name for f in dataclasses.fields(cls.config_cls)}
        return {name: cls.config_cls(preset=preset, **{k: v for k, v in kw.items() if k in fields})
                for name, (preset, kw) in _TRAIN_PRESETS.items()}

    def target_length(self, corpus_samples: int) -> int:
        """Samples of ``y`` made from ``corpus_samples`` corpus samples: resampled, cropped to whole frames."""
        n = math.ceil(corpus_samples * self.rate / self.cfg.corpus_rate)
        return n - n % self.unit

    # -- networks -------------------------------------------------------------------------

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": build(self.cfg.model, self.cfg.preset)}

    def optimisers(self, nets):
        return {name: torch.optim.Adam(net.parameters(), lr=self.cfg.lr, betas=self.cfg.betas)
                for name, net in nets.items()}

    # -- data -----------------------------------------------------------------------------

    def sample_rate(self, nets) -> int:
        return int(self.cfg.corpus_rate)

    def pair(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` from a corpus clip ``(1, samples)`` at ``corpus_rate``: see :class:`SR16TrainConfig`."""
        import numpy as np

        from ..audio.io import resample
        y = resample(clip.numpy().astype(np.float64), self.cfg.corpus_rate, self.rate)
        y = y[..., : y.shape[-1] - y.shape[-1] % self.unit]
        if self.cfg.anti_alias == "cheby1":
            from scipy.signal import decimate
            x = decimate(y, self.ratio, ftype="iir", zero_phase=True, axis=-1)
        else:
            from ..audio.degrade import decimate
            x = decimate(y, self.ratio)
        return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)))

    def train_example(self, clip):
        return self.pair(clip)

    def val_example(self, clip):
        """``(x, y, spline)``: the pair and the cubic-spline baseline through ``x``, ``(1, n)``."""
        from ..audio.degrade import spline_upsample
        x, y = self.pair(clip)
        return x, y, torch.from_numpy(spline_upsample(x.numpy(), self.ratio))

    # -- the steps ------------------------------------------------------------------------

    def adversarial(self, step: int) -> bool:
        return False

    def generate(self, nets, batch):
        return nets["generator"](batch[0])

    def adversarial_loss(self, nets, y_hat: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial term (none here)."""
        raise NotImplementedError

    def generator_loss(self, nets, batch, out, step):
        y_hat, y = out.float(), batch[1]
        l2 = l2_loss(y_hat, y)
        loss, terms = l2, {"gen_l2": float(l2.detach()), "gen_mse": float(((y_hat - y) ** 2).mean().detach())}
        if self.adversarial(step):
            adv = self.adversarial_loss(nets, out)
            loss = loss + self.cfg.adv_weight * adv
            terms["gen_adv"] = float(adv.detach())
        terms["gen_total"] = float(loss.detach())
        return loss, terms

    def validate(self, nets, val, batch: int = 8) -> dict[str, float]:
        """Mean SNR (dB) and LSD of the output and of the spline baseline against ``y``; MSE and L2 of the output."""
        from ..metrics import lsd, snr
        g = nets["generator"]
        dev = next(g.parameters()).device
        rows = []
        for i in range(0, val[0].shape[0], batch):
            x, y, s = (t[i:i + batch].to(dev) for t in val)
            y_hat = g(x).float()
            err = (y_hat - y) ** 2
            rows.append(torch.stack([snr(y_hat[:, 0], y[:, 0]), lsd(y_hat[:, 0], y[:, 0]), snr(s[:, 0], y[:, 0]),
                                     lsd(s[:, 0], y[:, 0]), err.mean(dim=(1, 2)), err.sum(dim=(1, 2))], dim=1).cpu())
        m = torch.cat(rows).mean(dim=0).tolist()
        return {"snr_db": m[0], "lsd": m[1], "spline_snr_db": m[2], "spline_lsd": m[3], "mse": m[4], "loss": m[5]}


@register_recipe("sr16-gan")
class SR16GANRecipe(SR16UNetRecipe):
    """sr16-gan's training (seed 002 Sec. III): WaveGAN's discriminator ``discriminator`` beside the generator.

    The discriminator (:class:`rtgan.models.wavegan.WaveGANDiscriminator`, a logit per example)
    minimises the cross-entropy ``-log D(y) - log(1 - D(G(x)))``
    (:func:`rtgan.losses.nonsaturating_discriminator_loss`; the seed's ``L_D``), one step per
    generator step; the generator minimises ``L_2 + lambda_adv (-log D(G(x)))``
    (:func:`rtgan.losses.nonsaturating_generator_loss`). Both with Adam at ``cfg.lr``.
    """

    config_cls = SR16GANTrainConfig
    #: name of the adversary in ``nets``
    adversary: ClassVar[str] = "discriminator"

    def disc_config(self) -> WaveGANConfig:
        """The discriminator's config: the examples' length, ``cfg``'s width, layers and phase shuffle."""
        c = self.cfg
        return WaveGANConfig(samples=self.samples, width=c.disc_width, layers=c.disc_layers,
                             phase_shuffle=c.phase_shuffle)

    def networks(self):
        nets = super().networks()
        if self.cfg.adversarial:
            nets[self.adversary] = WaveGANDiscriminator(self.disc_config())
        return nets

    def adversarial(self, step: int) -> bool:
        return self.cfg.adversarial and step >= self.cfg.adv_start_step

    def critic_loss(self, nets, batch, fake, step):
        d = nets[self.adversary]
        real_logits, fake_logits = d(batch[1]).float(), d(fake).float()
        loss = nonsaturating_discriminator_loss(real_logits, fake_logits)
        return loss, {"disc": float(loss.detach()), "d_real": float(torch.sigmoid(real_logits.detach()).mean()),
                      "d_fake": float(torch.sigmoid(fake_logits.detach()).mean())}

    def adversarial_loss(self, nets, y_hat):
        return nonsaturating_generator_loss(nets[self.adversary](y_hat).float())


@register_recipe("sr16-wgan")
class SR16WGANRecipe(SR16GANRecipe):
    """sr16-wgan's training (seed 002 Sec. II-C, III): WaveGAN's discriminator as the critic ``critic``.

    The critic's linear output is its value ``C``; it minimises ``mean C(G(x)) - mean C(y)``
    (:func:`rtgan.losses.wasserstein_critic_loss`) for ``cfg.n_critic`` steps per generator
    step (a fresh batch each), each followed by clipping every critic parameter to
    ``[-cfg.clip, cfg.clip]`` (:func:`rtgan.losses.clip_weights_`); the generator minimises
    ``L_2 + lambda_adv (-mean C(G(x)))`` (:func:`rtgan.losses.wasserstein_generator_loss`).
    """

    config_cls = SR16WGANTrainConfig
    adversary = "critic"
    n_critic = 5

    def __init__(self, cfg: SR16WGANTrainConfig) -> None:
        super().__init__(cfg)
        self.n_critic = int(cfg.n_critic)

    def critic_loss(self, nets, batch, fake, step):
        c = nets[self.adversary]
        loss = wasserstein_critic_loss(c(batch[1]).float(), c(fake).float())
        return loss, {"critic": float(loss.detach()), "wasserstein": -float(loss.detach())}

    def after_critic_step(self, nets, step):
        clip_weights_(nets[self.adversary], self.cfg.clip)

    def adversarial_loss(self, nets, y_hat):
        return wasserstein_generator_loss(nets[self.adversary](y_hat).float())


# -- seed 002's "-C" variants: the same three models with a content loss -----------------------
#
# Seed 002 (Sec. III) trains each of its models a second time with a feature ("content") loss
# added to the generator's: the L2 distance of VGGish features (Hershey et al. 2017) of output
# and target. VGGish's weights cannot be fetched here, so the feature network is the project's
# own: the autoencoder of seed 001 (Alahi et al. 2020, Sec. IV-H, :mod:`.autoencoder`,
# ``ae-kimsathe``) pretrained on the corpus, whose bottleneck gives seed 001's content loss
# (eq. 17, :func:`rtgan.losses.content_loss`). The autoencoder is a frozen network of the recipe
# (:attr:`.recipe.Recipe.frozen`): loaded by registered name and content hash, never trained.

#: name of the frozen content network in the recipes' ``nets``
CONTENT_NET = "content"


@dataclass(frozen=True)
class ContentLossSettings:
    """The content-loss fields of the ``-c`` training configs (mixed into the sr16 ones).

    Attributes:
        content_net: registered model name of the frozen feature network (an :class:`.autoencoder.AEKimSathe`).
        content_net_sha256: :func:`rtgan.training.frozen.content_hash` of its checkpoint, which
            the training loop loads from ``WEIGHTS_DIR/<content_net>.safetensors`` (the shipped
            weights, or the ``weights_dir`` given to :func:`rtgan.training.loop.train`, e.g. the
            run directory the autoencoder was trained in). Empty: none yet; the recipe refuses
            to start.
        content_weight: ``lambda_c`` on the content term. Seed 002 gives no weight for its
            content term ("take the L_2 loss between them, finally add it to the generator
            loss term", Sec. III), so seed 001's ``lambda_ae = 0.1`` (Sec. V-B, eq. 22).

    Raises:
        ValueError: a negative or non-finite ``content_weight``, a ``content_net_sha256`` that
            is neither empty nor 64 hex digits.
    """

    content_net: str = "ae-kimsathe"
    content_net_sha256: str = ""
    content_weight: float = 0.1

    def __post_init__(self) -> None:
        post = getattr(super(), "__post_init__", None)
        if post is not None:
            post()
        if not 0.0 <= self.content_weight < float("inf"):
            raise ValueError(f"content_weight must be a finite number >= 0, got {self.content_weight}")
        sha = self.content_net_sha256
        if sha and not (len(sha) == 64 and all(ch in "0123456789abcdef" for ch in sha)):
            raise ValueError(f"content_net_sha256 must be 64 lowercase hex digits (or empty), got {sha!r}")


@dataclass(frozen=True)
class SR16UNetCTrainConfig(ContentLossSettings, SR16TrainConfig):
    """Training of sr16-unet-c: :class:`SR16TrainConfig` and :class:`ContentLossSettings`."""

    model: str = "sr16-unet-c"


@dataclass(frozen=True)
class SR16GANCTrainConfig(ContentLossSettings, SR16GANTrainConfig):
    """Training of sr16-gan-c: :class:`SR16GANTrainConfig` and :class:`ContentLossSettings`."""

    model: str = "sr16-gan-c"


@dataclass(frozen=True)
class SR16WGANCTrainConfig(ContentLossSettings, SR16WGANTrainConfig):
    """Training of sr16-wgan-c: :class:`SR16WGANTrainConfig` and :class:`ContentLossSettings`."""

    model: str = "sr16-wgan-c"


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


class ContentLossMixin:
    """The content term of the ``-c`` recipes, mixed in before an sr16 recipe.

    The frozen network ``content`` (:data:`CONTENT_NET`) is ``cfg.content_net`` checked against
    ``cfg.content_net_sha256`` (:attr:`.recipe.Recipe.frozen`, set per run from the config); it
    gets no optimiser. The generator loss becomes the base recipe's plus
    ``cfg.content_weight * L_ae(y_hat, y)``, ``L_ae`` the mean squared difference of the
    autoencoder's bottlenecks (seed 001 eq. 17, :func:`rtgan.losses.content_loss`), logged as
    ``gen_content``; validation adds ``content`` (``L_ae`` of the output) beside the base metrics.
    """

    cfg: ContentLossSettings

    def __init__(self, cfg) -> None:
        """Raises: ValueError: no ``content_net_sha256`` (no trained autoencoder named yet)."""
        super().__init__(cfg)
        if not cfg.content_net_sha256:
            net = cfg.content_net
            raise ValueError(
                f"{cfg.model} needs a trained {net} as its frozen content network, and content_net_sha256 is "
                f"empty: train {net} first: rtgan train {net} --data CORPUS --preset small --run-dir runs/{net}; "
                f"then set content_net_sha256 to rtgan.training.frozen.content_hash('runs/{net}/{net}.safetensors') "
                f"and load it from where it is (rtgan.training.loop.train(..., weights_dir='runs/{net}')) or put "
                f"{net}.safetensors and {net}.json in the shipped weights directory")
        self.frozen = {CONTENT_NET: (cfg.content_net, cfg.content_net_sha256)}
        self._phi: nn.Module | None = None

    def optimisers(self, nets):
        trainable = {name: net for name, net in nets.items() if name not in self.frozen}
        return super().optimisers(trainable)

    def content_features(self, nets) -> nn.Module:
        """``phi``: the frozen autoencoder's bottleneck (:class:`.autoencoder.BottleneckFeatures`), in eval mode.

        Raises:
            ValueError: the content network runs at another rate than the targets, or has no ``encode``.
        """
        from .autoencoder import BottleneckFeatures
        ae = nets[CONTENT_NET]
        if self._phi is None or self._phi.ae is not ae:
            if not hasattr(ae, "encode"):
                raise ValueError(f"content network {self.cfg.content_net!r} has no encode() (a bottleneck)")
            if int(ae.sample_rate_in) != self.rate:
                raise ValueError(f"content network {self.cfg.content_net!r} runs at {ae.sample_rate_in} Hz; "
                                 f"{self.cfg.model}'s targets are at {self.rate} Hz")
            self._phi = BottleneckFeatures(ae)
        return self._phi.eval()

    def generator_loss(self, nets, batch, out, step):
        from ..losses import content_loss
        loss, terms = super().generator_loss(nets, batch, out, step)
        c = content_loss(self.content_features(nets), out.float(), batch[1])
        loss = loss + self.cfg.content_weight * c
        terms["gen_content"] = float(c.detach())
        terms["gen_total"] = float(loss.detach())
        return loss, terms

    def validate(self, nets, val, batch: int = 8) -> dict[str, float]:
        """The base recipe's metrics and ``content``, the mean ``L_ae`` of the output against ``y``."""
        from ..losses import content_loss
        m = super().validate(nets, val, batch)
        g, phi = nets["generator"], self.content_features(nets)
        dev = next(g.parameters()).device
        total, count = 0.0, 0
        for i in range(0, val[0].shape[0], batch):
            x, y = val[0][i:i + batch].to(dev), val[1][i:i + batch].to(dev)
            total += float(content_loss(phi, g(x).float(), y)) * x.shape[0]
            count += x.shape[0]
        m["content"] = total / count
        return m


@register_recipe("sr16-unet-c")
class SR16UNetCRecipe(ContentLossMixin, SR16UNetRecipe):
    """sr16-unet-c's training: :class:`SR16UNetRecipe` plus the content term (:class:`ContentLossMixin`)."""

    config_cls = SR16UNetCTrainConfig


@register_recipe("sr16-gan-c")
class SR16GANCRecipe(ContentLossMixin, SR16GANRecipe):
    """sr16-gan-c's training: :class:`SR16GANRecipe` plus the content term (:class:`ContentLossMixin`)."""

    config_cls = SR16GANCTrainConfig


@register_recipe("sr16-wgan-c")
class SR16WGANCRecipe(ContentLossMixin, SR16WGANRecipe):
    """sr16-wgan-c's training: :class:`SR16WGANRecipe` plus the content term (:class:`ContentLossMixin`)."""

    config_cls = SR16WGANCTrainConfig
