"""ae-kimsathe: the autoencoder of Alahi, Sifringer & Stegmüller (2020, seed 001, Sec. IV-H), a content-loss network.

"The autoencoder network is in fact a generator without any skip-connection, and a smaller
number of blocks ``B_a = 4``" (Sec. IV-H): the inception U-Net of Kim & Sathe (2019) as
:mod:`.sr_hifigan` builds it (Sec. IV-D/E/F), with neither the U-Net's skips nor the additive
input skip, so that everything the output knows passes through the bottleneck. Its bottleneck
``phi(x)``, of shape ``C_ae x W_ae``, is the feature space of the content loss (eq. 17,
:func:`rtgan.losses.content_loss`); its output (the reconstruction) only serves training, on
``L_time`` (eq. 15, the per-sample MSE; Sec. V-A).

Architecture, with ``F_d = base_filters * 2**min(d, d_max)`` (Sec. IV-F's ``2**(6 + min(d,
d_max))`` for ``base_filters = 64``):

* encoder, :meth:`AEKimSathe.encode`: down block ``d = 0..B-1``: inception(``F_d``) -> leaky
  ReLU -> superpixel x2 (``2 F_d`` channels, stride ``2**(d+1)``); then the bottleneck
  inception(``F_B``) -> leaky ReLU: ``phi(x)`` is ``(batch, F_B, samples / 2**B)``;
* decoder, :meth:`AEKimSathe.decode`: up block ``d = B-1..0``: inception(``2 F_d``) -> leaky ReLU
  -> subpixel x2 (``F_d`` channels, stride ``2**d``); then a conv (``output_kernel``) to one
  channel, linear (no tanh, no input added).

Convs are bias-free (as sr-hifigan's: ``phi(a x) = a phi(x)``, so the content loss scales with
the level as the L2 loss beside it does) and He-initialised (PyTorch's default init left the
bottleneck blind to the input; see :meth:`AEKimSathe._init_weights`).

The model runs at one rate in and out: ``sample_rate`` (16 kHz for the sr16 family, whose
content loss it serves). It is a :class:`.base.Generator` (forward = reconstruction), so it
loads by name through the registry and streams like every registered generator.

How it is trained is at the end of this file: :class:`AEKimSatheRecipe` (``rtgan train
ae-kimsathe``) with :class:`AETrainConfig`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .base import Generator
from .layers import (Inception1d, PaddedConv1d, PixelShuffle1d, PixelUnshuffle1d, Reach, StateCursor, align_phase,
                     cached_conv, inception_unet)
from .recipe import Recipe, TrainConfig, resampled_length
from .registry import build, make_config, register, register_recipe


@dataclass(frozen=True)
class AEConfig:
    """Architecture of ae-kimsathe; every default in one place (Alahi et al. 2020, Sec. IV-D/E/F/H).

    Attributes:
        sample_rate: input and output rate in Hz (16 kHz: the sr16 family's).
        blocks: ``B_a``, down blocks and up blocks (Sec. IV-H: 4); total stride ``2**blocks``.
        base_filters: filters of the first inception module (Sec. IV-D: 64).
        d_max: filters double for the first ``d_max`` levels only (Sec. IV-F's capacity regulator).
        kernel_sizes: inception branch kernels (Sec. IV-D: 3, 9, 27, 81).
        filter_ratios: filter split over the branches (Sec. IV-D: 24/24/8/8).
        reduction: ``C_temp``, the 1x1 reduction width of each branch as a fraction of its
            filters (Sec. IV-D; sr-hifigan's ``bottleneck`` field).
        padding: ``"centered"`` or ``"causal"`` zero padding of every conv.
        output_kernel: kernel of the final conv.
        negative_slope: leaky ReLU slope.
        bias: conv biases. Off by default, as sr-hifigan's: a bias-free net of convs and leaky
            ReLUs is positively homogeneous, ``phi(a x) = a phi(x)`` for ``a > 0``, so the content
            loss scales with the signal level as the L2 loss it is added to does, and silence
            maps to a zero bottleneck. (With biases and PyTorch's default init the bottleneck
            was the biases' constant, blind to the input; see :meth:`AEKimSathe._init_weights`.)

    Raises:
        ValueError: ``blocks < 1``, an unknown padding, a non-positive rate, mismatched kernels
            and ratios.
    """

    sample_rate: int = 16000
    blocks: int = 4
    base_filters: int = 64
    d_max: int = 1
    kernel_sizes: tuple[int, ...] = (3, 9, 27, 81)
    filter_ratios: tuple[int, ...] = (24, 24, 8, 8)
    reduction: float = 0.5
    padding: str = "centered"
    output_kernel: int = 9
    negative_slope: float = 0.2
    bias: bool = False

    def __post_init__(self) -> None:
        # JSON round trips turn tuples into lists; normalise so configs compare equal.
        object.__setattr__(self, "kernel_sizes", tuple(self.kernel_sizes))
        object.__setattr__(self, "filter_ratios", tuple(self.filter_ratios))
        if self.blocks < 1:
            raise ValueError("blocks must be >= 1")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.padding not in ("causal", "centered"):
            raise ValueError(f"padding must be 'causal' or 'centered', got {self.padding!r}")
        if len(self.kernel_sizes) != len(self.filter_ratios):
            raise ValueError("kernel_sizes and filter_ratios must have the same length")

    def filters(self, d: int) -> int:
        """``F_d``: filters of level ``d`` (``d = blocks``: the bottleneck, ``C_ae``)."""
        return self.base_filters * 2 ** min(d, self.d_max)

    @property
    def bottleneck_channels(self) -> int:
        """``C_ae``: channels of ``phi(x)``."""
        return self.filters(self.blocks)


PRESETS = {
    # Sec. IV-D/H: B_a = 4, 64 filters in the first module, kernels 3/9/27/81 split 24/24/8/8;
    # d_max = 1 gives the C_ae = 128 of the bottleneck Sec. V-A reports (128 x 512: 8192 samples
    # at stride 16). 592 k parameters.
    "paper": AEConfig(),
    # CPU-sized (the paper's kernels, half its filters): C_ae = 64, 148 k parameters; a training
    # step of 16 x 0.5 s takes about 1.2 s on one CPU thread
    "small": AEConfig(base_filters=32, d_max=1),
    # for tests: 1.6 k parameters, still B_a = 4 (C_ae = 8)
    "tiny": AEConfig(base_filters=4, d_max=1, kernel_sizes=(3, 5, 9, 15), output_kernel=5),
}


@register("ae-kimsathe", AEConfig, PRESETS,
          description="16 kHz inception autoencoder without skips, for content losses (Alahi et al. 2020, Sec. IV-H)")
class AEKimSathe(Generator):
    """Kim & Sathe's inception U-Net without skips: ``(batch, 1, samples)`` -> the same shape (reconstruction).

    ``samples`` must be a multiple of :attr:`total_stride` (``2**blocks``). :meth:`encode` gives
    the bottleneck ``phi(x)``, ``(batch, C_ae, samples / 2**blocks)``; the output depends on the
    input only through it (``forward(x) == decode(encode(x))``).
    """

    def __init__(self, config: AEConfig = AEConfig()) -> None:
        super().__init__()
        self.config = c = config

        def inception(cin: int, cout: int) -> Inception1d:
            return Inception1d(cin, cout, c.kernel_sizes, c.filter_ratios, c.reduction, c.padding, c.negative_slope,
                               bias=c.bias)

        self.act = nn.LeakyReLU(c.negative_slope)
        self.unshuffle = PixelUnshuffle1d(2)
        self.shuffle = PixelShuffle1d(2)
        self.down, self.bottleneck, self.up = inception_unet(c.blocks, c.filters, inception, skips=False)
        cin = c.filters(0)
        self.out = PaddedConv1d(cin, 1, c.output_kernel, c.padding, bias=c.bias)
        self._init_weights()

    def _init_weights(self) -> None:
        """He (Kaiming) normal init of every conv (fan-in, leaky-ReLU gain; the linear output conv gain 1), zero biases.

        PyTorch's default conv init (uniform, variance ``1 / (3 fan_in)``) loses about a factor 3
        of signal per conv: through the encoder's ten convs a waveform of RMS 0.05 reached the
        bottleneck at RMS 6e-6 (small preset, measured), below the biases, so the bottleneck did
        not depend on its input and training stalled at 0 dB SNR. He init keeps the level
        (0.03 at the bottleneck for the same input).
        """
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                if m is self.out.conv:
                    nn.init.kaiming_normal_(m.weight, nonlinearity="linear")
                else:
                    nn.init.kaiming_normal_(m.weight, a=self.config.negative_slope, nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def total_stride(self) -> int:
        return 2 ** self.config.blocks

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``phi(x)``: the bottleneck of ``x`` ``(batch, 1, samples)``, ``(batch, C_ae, samples / 2**blocks)``.

        Raises:
            ValueError: see :meth:`Generator.check_input`.
        """
        self.check_input(x)
        h = x
        for block in self.down:
            h = self.unshuffle(self.act(block(h)))
        return self.act(self.bottleneck(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``(batch, 1, frames * 2**blocks)`` from a bottleneck ``(batch, C_ae, frames)``."""
        h = z
        for block in self.up:
            h = self.shuffle(self.act(block(h)))
        return self.out(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x`` ``(batch, 1, samples)``: ``decode(encode(x))``, the same shape.

        Raises:
            ValueError: see :meth:`Generator.check_input`.
        """
        return self.decode(self.encode(x))

    def stream_forward(self, x: torch.Tensor, cur: StateCursor) -> tuple[torch.Tensor, int]:
        """:meth:`forward` on one block with explicit caches (see :mod:`.layers.cached`).

        :meth:`.sr_hifigan.SRHiFiGANGenerator.stream_forward` without its skips: delays are in
        frames of each level; before each superpixel the delay is aligned to an even number
        of frames. Returns the output block and its delay in samples.
        """
        h, d = x, 0
        for block in self.down:
            h, d = block.stream(h, d, cur, act=self.act)
            h, d = align_phase(h, d, self.unshuffle.factor, cur)
            h, d = self.unshuffle(h), d // self.unshuffle.factor
        h, d = self.bottleneck.stream(h, d, cur, act=self.act)
        for block in self.up:
            h, d = block.stream(h, d, cur, act=self.act)
            h, d = self.shuffle(h), d * self.shuffle.factor
        return cached_conv(self.out, h, d, cur)

    def reach(self) -> Reach:
        r = Reach()
        for block in self.down:
            r = self.unshuffle.reach(block.reach(r))
        r = self.bottleneck.reach(r)
        for block in self.up:
            r = self.shuffle.reach(block.reach(r))
        return self.out.reach(r)


class BottleneckFeatures(nn.Module):
    """``phi``: a (frozen) :class:`AEKimSathe`'s bottleneck as a feature network for :func:`rtgan.losses.content_loss`.

    ``forward(x)`` is ``ae.encode(x)`` of ``x`` ``(batch, 1, samples)`` zero-padded at the end
    to a multiple of the autoencoder's stride (so any length is accepted; both signals of a
    content-loss pair get the same padding). Holds no parameters of its own; its mode follows
    :meth:`train`/:meth:`eval` like any module (``content_loss`` wants it in eval mode).
    """

    def __init__(self, ae: AEKimSathe) -> None:
        super().__init__()
        self.ae = ae

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = -x.shape[-1] % self.ae.total_stride
        return self.ae.encode(F.pad(x, (0, pad)) if pad else x)


# -- training (Alahi et al. 2020, Sec. V-A) ---------------------------------------------------
#
# The autoencoder is trained to reconstruct its input under L_time (eq. 15, the mean squared
# error per sample), with Adam at 1e-3 and the default betas (Sec. V: "All optimizations ...
# ADAM ... 1e-3 as learning rate and the default values for the two exponential decay rates").
# Examples are 16 kHz crops of the 48 kHz corpus, made as sr16's targets are (the corpus's own
# resampler), so the features it learns are those of the signals the sr16 content loss compares.
# scipy (the resampler) is imported on first use, so importing the model stays light.

@dataclass(frozen=True)
class AETrainConfig(TrainConfig):
    """Training of ae-kimsathe (Sec. V-A: ``L_time``; Sec. V: Adam, 1e-3, default betas), beside :class:`TrainConfig`'s.

    Examples: a corpus clip of ``segment_samples`` samples at ``corpus_rate`` Hz (0.5 s at 48
    kHz by default, as sr16's) resampled to the model's rate (:func:`rtgan.audio.io.resample`)
    and cropped to whole frames of the autoencoder's stride; validation clips are twice as long.

    Pair mode (``pairs_program`` set; seed 001 Sec. V-A, the autoencoder of xfer's ``L_ae``):
    ``--data`` is a pair set (:func:`rtgan.data.pairs.build_pairs`) at the model's rate, and
    examples are aligned ``(input crop, target crop)`` of ``segment_samples`` samples *at the
    model's rate* (a multiple of the stride; the seed's 8192) of its input program and
    ``pairs_program``; ``corpus_rate`` and ``min_bandwidth_hz`` are unused.

    Attributes:
        corpus_rate: the corpus's sample rate in Hz (clips are read at it).
        min_bandwidth_hz: clips narrower than the 16 kHz signal's 8 kHz band are left out.
        lr, betas: Adam (Sec. V: 1e-3 and Adam's defaults).
        pairs_program: ``None`` (default): corpus clips, as sr16's content loss wants. A GM
            program (0-based, e.g. 40 violin): train on a pair set's input and this target
            program alternately (even steps the input crops, odd steps the target crops).

    Raises:
        ValueError: a non-positive ``corpus_rate`` or ``lr``, a negative ``pairs_program``.
    """

    model: str = "ae-kimsathe"
    preset: str = "small"
    batch_size: int = 16
    segment_samples: int = 24000
    min_bandwidth_hz: float = 8000.0
    corpus_rate: int = 48000
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    pairs_program: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.pairs_program is not None and not 0 <= self.pairs_program < 128:
            raise ValueError(f"pairs_program must be a GM program 0..127 or None, got {self.pairs_program}")
        if self.corpus_rate <= 0:
            raise ValueError(f"corpus_rate must be positive, got {self.corpus_rate}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


@register_recipe("ae-kimsathe")
class AEKimSatheRecipe(Recipe):
    """ae-kimsathe's training: reconstruction of 16 kHz corpus crops under ``L_time``, Adam.

    Network ``generator`` (the preset's :class:`AEKimSathe`), no critic. Examples ``(y,)``,
    ``y (1, n)`` at the model's rate (see :class:`AETrainConfig`); the loss is
    ``L_time = mean (ae(y) - y)**2`` (eq. 15). Validation: the reconstruction's SNR (dB, eq. 24)
    and MSE (= the loss) on the fixed validation clips.

    Pair mode (``cfg.pairs_program`` set, Sec. V-A: "the input and target types of signals are
    passed separately and alternatively, i.e. backpropping the loss in-between"): examples
    ``(x, y)`` from a pair set (:meth:`data`); generator step ``s`` reconstructs ``x`` when ``s``
    is even and ``y`` when odd, each its own backward and Adam step (the forward runs in
    :meth:`generator_loss`, which knows the step; :meth:`generate` passes the batch on). The
    logged terms add ``gen_time_input`` or ``gen_time_target`` (the step's kind). Validation:
    SNR and MSE of both kinds (``snr_db_input``/``_target``, ``mse_input``/``_target``; ``loss``,
    ``mse`` and ``snr_db`` their means), and the bottleneck distance (eq. 17's ``1/(C W)
    ||phi(a) - phi(b)||^2``, mean over crops) between input and target of the same crop
    (``phi_pair``), input and target of different crops (``phi_cross``), two inputs and two
    targets of different crops (``phi_inputs``, ``phi_targets``), and ``phi_pair_ratio =
    phi_pair / phi_cross``: near 1 when the embedding tells inputs from targets more than it
    tells crops apart (the seed's Fig. 6 concern), well below 1 when it keeps the content.
    """

    config_cls: ClassVar[type[TrainConfig]] = AETrainConfig
    progress = ("gen_total", "snr_db")

    def __init__(self, cfg: AETrainConfig) -> None:
        """Raises: KeyError: ``cfg.preset`` is not a preset of ``cfg.model``; ValueError: clips too short."""
        super().__init__(cfg)
        c = make_config(cfg.model, cfg.preset)
        self.rate, self.unit = int(c.sample_rate), 2 ** int(c.blocks)
        self.samples = (cfg.segment_samples if cfg.pairs_program is not None
                        else self.target_length(cfg.segment_samples))
        if cfg.pairs_program is not None and (cfg.segment_samples < self.unit or cfg.segment_samples % self.unit):
            raise ValueError(f"pair mode: segment_samples {cfg.segment_samples} (samples at {self.rate} Hz) must be "
                             f"a positive multiple of the autoencoder's stride {self.unit}")
        if self.samples < self.unit:
            raise ValueError(f"segment_samples {cfg.segment_samples} at {cfg.corpus_rate} Hz gives fewer than "
                             f"{self.unit} samples at {self.rate} Hz, the least this autoencoder takes")

    @classmethod
    def presets(cls) -> dict[str, AETrainConfig]:
        """``tiny`` (seconds on a CPU: tests), ``small`` (CPU-sized), ``paper`` (the seed's sizes, a GPU job).

        The seed gives no batch size or step count for the autoencoder; ``paper`` takes 8192-sample
        examples (the 128 x 512 bottleneck of Sec. V-A) in batches of 64 (its Fig. 6: "64 pairs ...
        per batch").
        """
        return {
            "tiny": AETrainConfig(preset="tiny", steps=20, batch_size=4, val_items=4, val_every=10, ckpt_every=10,
                                  log_every=5, num_workers=0),
            "small": AETrainConfig(preset="small", steps=20000),
            "paper": AETrainConfig(preset="paper", batch_size=64, segment_samples=24576, steps=50000,
                                   val_every=1000, ckpt_every=1000),
        }

    def target_length(self, corpus_samples: int) -> int:
        """Samples at the model's rate made from ``corpus_samples`` corpus samples (resampled, whole frames)."""
        return resampled_length(corpus_samples, int(self.cfg.corpus_rate), int(self.rate), self.unit)

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": build(self.cfg.model, self.cfg.preset)}

    def optimisers(self, nets):
        return {"generator": torch.optim.Adam(nets["generator"].parameters(), lr=self.cfg.lr, betas=self.cfg.betas)}

    def sample_rate(self, nets) -> int:
        return int(self.cfg.corpus_rate)

    def example(self, clip: torch.Tensor) -> tuple[torch.Tensor]:
        """``(y,)`` from a corpus clip ``(1, samples)`` at ``corpus_rate``: at the model's rate, whole frames."""
        import numpy as np

        from ..audio.io import resample
        y = clip.numpy().astype(np.float64)
        if self.cfg.corpus_rate != self.rate:
            y = resample(y, self.cfg.corpus_rate, self.rate)
        y = y[..., : y.shape[-1] - y.shape[-1] % self.unit]
        return (torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)),)

    def train_example(self, clip):
        return self.example(clip)

    def val_example(self, clip):
        return self.example(clip)

    def adversarial(self, step: int) -> bool:
        return False

    # -- pair mode (seed 001 Sec. V-A) ---------------------------------------------------------
    @property
    def pair_mode(self) -> bool:
        return self.cfg.pairs_program is not None

    def data(self, corpus):
        """Corpus mode: ``None`` (the loop cuts corpus clips). Pair mode: ``(train, val)`` from the
        pair set ``corpus``: random ``(x (1, n), y (1, n))`` training crops and a fixed
        validation batch ``(x, y)`` of up to ``val_items`` grid crops spread over the val split.

        Raises:
            ValueError: no pair set, one at another rate than the model's, or without the program.
        """
        if not self.pair_mode:
            return super().data(corpus)
        from ..data.pairs import PairDataset, read_manifest
        from ..data.pairs import WithChannel
        if corpus is None:
            raise ValueError("ae-kimsathe with pairs_program trains on a pair set: give --data DIR "
                             "(built by 'rtgan data pairs')")
        rates = {int(r["sample_rate"]) for r in read_manifest(Path(corpus))}
        if rates != {self.rate}:
            raise ValueError(f"pair set {corpus} is at {sorted(rates)} Hz; this autoencoder runs at {self.rate} Hz")
        c = self.cfg
        train = PairDataset(corpus, "train", c.pairs_program, crop=self.samples, random_crop=True, seed=c.seed)
        val = PairDataset(corpus, "val", c.pairs_program, crop=self.samples, random_crop=False)
        idx = torch.linspace(0, len(val) - 1, min(c.val_items, len(val))).round().long().unique().tolist()
        items = [val[i] for i in idx]
        return WithChannel(train), tuple(torch.stack(parts)[:, None] for parts in zip(*items))

    def data_manifest(self, corpus):
        return Path(corpus) / "pairs.jsonl" if self.pair_mode else super().data_manifest(corpus)

    @staticmethod
    def kind(step: int) -> int:
        """Pair mode: which part of a batch ``(x, y)`` generator step ``step`` reconstructs (0 even, 1 odd)."""
        return step % 2

    # -- the steps -----------------------------------------------------------------------------
    def generate(self, nets, batch):
        if self.pair_mode:  # the step's kind is known in generator_loss only: the forward runs there
            return batch
        return nets["generator"](batch[0])

    def generator_loss(self, nets, batch, out, step):
        if self.pair_mode:
            k = self.kind(step)
            y = batch[k]
            loss = ((nets["generator"](y).float() - y) ** 2).mean()  # L_time of this step's kind
            v = float(loss.detach())
            return loss, {"gen_time": v, "gen_total": v, ("gen_time_input", "gen_time_target")[k]: v}
        loss = ((out.float() - batch[0]) ** 2).mean()  # L_time, eq. 15 (averaged over the batch)
        v = float(loss.detach())
        return loss, {"gen_time": v, "gen_total": v}

    def validate(self, nets, val, batch: int = 8) -> dict[str, float]:
        """Mean SNR (dB) of the reconstruction against its input, and its MSE (``loss`` = ``mse``, ``L_time``).

        Pair mode: see the class docstring."""
        if self.pair_mode:
            return self._validate_pairs(nets, val, batch)
        from ..metrics import snr
        g = nets["generator"]
        dev = next(g.parameters()).device
        rows = []
        for i in range(0, val[0].shape[0], batch):
            y = val[0][i:i + batch].to(dev)
            y_hat = g(y).float()
            rows.append(torch.stack([snr(y_hat[:, 0], y[:, 0]), ((y_hat - y) ** 2).mean(dim=(1, 2))], dim=1).cpu())
        m = torch.cat(rows).mean(dim=0).tolist()
        return {"snr_db": m[0], "mse": m[1], "loss": m[1]}

    def _validate_pairs(self, nets, val, batch: int) -> dict[str, float]:
        from ..metrics import snr
        g = nets["generator"]
        dev = next(g.parameters()).device
        rec: dict[str, list[torch.Tensor]] = {"snr_x": [], "mse_x": [], "snr_y": [], "mse_y": []}
        phis: list[list[torch.Tensor]] = [[], []]
        for i in range(0, val[0].shape[0], batch):
            for k, tag in ((0, "x"), (1, "y")):
                s = val[k][i:i + batch].to(dev)
                z = g.encode(s)
                s_hat = g.decode(z).float()
                rec[f"snr_{tag}"].append(snr(s_hat[:, 0], s[:, 0]).cpu())
                rec[f"mse_{tag}"].append(((s_hat - s) ** 2).mean(dim=(1, 2)).cpu())
                phis[k].append(z.float().cpu())
        m = {k: float(torch.cat(v).mean()) for k, v in rec.items()}
        zx, zy = torch.cat(phis[0]), torch.cat(phis[1])

        def dist(a: torch.Tensor, b: torch.Tensor) -> float:  # eq. 17 per crop, mean over crops
            return float(((a - b) ** 2).mean(dim=(1, 2)).mean())

        out = {"snr_db_input": m["snr_x"], "snr_db_target": m["snr_y"], "mse_input": m["mse_x"],
               "mse_target": m["mse_y"], "snr_db": (m["snr_x"] + m["snr_y"]) / 2, "mse": (m["mse_x"] + m["mse_y"]) / 2}
        out["loss"] = out["mse"]
        out["phi_pair"] = dist(zx, zy)
        if zx.shape[0] > 1:  # another crop: the next one, cyclically (a derangement)
            out["phi_cross"] = dist(zx, zy.roll(1, 0))
            out["phi_inputs"] = dist(zx, zx.roll(1, 0))
            out["phi_targets"] = dist(zy, zy.roll(1, 0))
            out["phi_pair_ratio"] = out["phi_pair"] / max(out["phi_cross"], 1e-30)
        return out
