"""How the xfer-* models train: seed 001's composite losses L_g1..L_g4 on piano / instrument pairs.

Alahi, Sifringer & Stegmüller (2020), Sec. IV-I and V-B. Per example (``x_i`` the piano input,
``x_t`` the target instrument, ``x_g = G(x_i)``):

* ``L_time = 1/W ||x_t - x_g||^2`` (eq. 15, :func:`rtgan.losses.time_mse`);
* ``L_freq = 1/(KW) || |X_t|^2 - |X_g|^2 ||_F^2`` (eq. 16, :func:`rtgan.losses.power_spectrogram_loss`);
* ``L_ae = 1/(C W) ||phi(x_t) - phi(x_g)||_F^2`` (eq. 17, :func:`rtgan.losses.content_loss`) on
  the bottleneck of a frozen autoencoder (:mod:`.autoencoder`, loaded by name and hash);
* ``L_adv = -D(G(x_i))`` (eq. 18) against a critic trained with ``L_disc = -[D(x_t) - D(x_g)]
  + lambda_p (||grad D(x_hat)|| - 1)^2`` (eq. 19, WGAN-GP: Gulrajani et al. 2017, eq. 3 and
  :func:`rtgan.losses.gradient_penalty`), ``n_critic`` critic steps per generator step.

Composite losses (eqs. 20-23, config ``loss``): ``g1 = L_time``; ``g2 = L_time + lambda_f
L_freq``; ``g3 = L_time + lambda_ae L_ae``; ``g4 = L_time + lambda_adv L_adv``; ``lambda_f = 10``,
``lambda_ae = 0.1`` (Sec. V-B), Adam at 1e-3 with its default betas (Sec. V).

The critic (:class:`InceptionCritic`, Sec. IV-G after Kim & Sathe 2019): inception modules,
each followed by layer normalisation (per example over channels and time: the gradient penalty
treats examples independently, so no batch normalisation) and leaky ReLU, with superpixel
downsampling; then two fully connected layers.

Data (:meth:`XferRecipe.data`): the pair set of :func:`rtgan.data.pairs.build_pairs` (``--data``),
8192-sample rectangular crops (Sec. III-B) of the input program and the model's target program.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..losses import (FREQ_SCALES, content_loss, gradient_penalty, multi_resolution_stft_loss,
                      power_spectrogram_loss, time_mse)
from .layers import Inception1d, PixelUnshuffle1d
from .recipe import Batch, Nets, Recipe, TrainConfig
from .registry import make_config, register_recipe
from .xfer import TARGETS, XferGenerator

__all__ = ["InceptionCritic", "XferTrainConfig", "XferRecipe", "COMPOSITE_LOSSES"]

#: Table I's composite losses (eqs. 20-23): the terms each adds to L_time
COMPOSITE_LOSSES = {"g1": (), "g2": ("freq",), "g3": ("ae",), "g4": ("adv",)}


class InceptionCritic(nn.Module):
    """Seed 001's critic (Sec. IV-G): inception + layer norm + leaky ReLU + superpixel, then two FC layers.

    ``(batch, 1, samples)`` -> ``(batch,)`` scores; ``samples`` must be ``crop`` (the fully
    connected layers see ``channels * crop / 2**blocks`` features).

    Args:
        crop: input length in samples (8192).
        blocks: inception stages, each halving the length.
        base_filters, d_max: filters ``base_filters * 2**min(d, d_max)`` at stage ``d``.
        kernel_sizes, filter_ratios: the inception branches (3/9/27/81, 24/24/8/8).
        hidden: width of the first fully connected layer.
        negative_slope: leaky ReLU slope.

    Raises:
        ValueError: ``crop`` not a multiple of ``2**blocks``.
    """

    def __init__(self, crop: int = 8192, blocks: int = 7, base_filters: int = 16, d_max: int = 3,
                 kernel_sizes: tuple[int, ...] = (3, 9, 27, 81), filter_ratios: tuple[int, ...] = (24, 24, 8, 8),
                 hidden: int = 256, negative_slope: float = 0.2) -> None:
        super().__init__()
        if crop % 2 ** blocks:
            raise ValueError(f"critic: crop {crop} is not a multiple of 2**blocks = {2 ** blocks}")
        self.crop = crop
        layers: list[nn.Module] = []
        cin = 1
        for d in range(blocks):
            f = base_filters * 2 ** min(d, d_max)
            layers += [Inception1d(cin, f, kernel_sizes, filter_ratios, 0.5, "centered", negative_slope, bias=True),
                       nn.GroupNorm(1, f), nn.LeakyReLU(negative_slope), PixelUnshuffle1d(2)]
            cin = 2 * f
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(cin * (crop // 2 ** blocks), hidden), nn.LeakyReLU(negative_slope),
                                nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[-1] != self.crop:
            raise ValueError(f"critic: expected (batch, 1, {self.crop}), got {tuple(x.shape)}")
        return self.fc(self.features(x).flatten(1))[:, 0]


@dataclass(frozen=True)
class XferTrainConfig(TrainConfig):
    """Training settings of the xfer-* models (defaults: seed 001's).

    Attributes:
        model_preset: the generator preset (``paper``, ``live``, ``tiny``).
        loss: composite loss ``g1``..``g4`` (eqs. 20-23, :data:`COMPOSITE_LOSSES`).
        lr: Adam learning rate (1e-3, default betas).
        lambda_f, lambda_ae, lambda_adv: weights of L_freq (10), L_ae (0.1), L_adv (1: the seed's
            value is not given).
        lambda_stft: beyond the seed (0: off): weight of Parallel WaveGAN's multi-resolution STFT
            loss (spectral convergence + log magnitude, Yamamoto et al. 2020, eqs. 1-4;
            :func:`rtgan.losses.multi_resolution_stft_loss`) added to any composite loss: a
            level-invariant log-spectral term, which L_time and the power-domain L_freq are not
            (LSD, eq. 25, is log-spectral).
        gp_weight: WGAN-GP lambda_p (10).
        n_critic: critic steps per generator step (the seed: "increasing [it] seems to be the
            most beneficial"; WGAN-GP's 5).
        critic_blocks, critic_filters, critic_hidden: critic sizes.
        content_net, content_net_sha256: the frozen autoencoder of L_ae (g3) by registered name and
            content hash (:func:`rtgan.training.frozen.content_hash`).
        input_program: the pair set's input program (0: piano).
        freq_scale: the STFT scaling of L_freq (g2; ``scale`` of
            :func:`rtgan.losses.power_spectrogram_loss`). ``"none"`` (the unnormalised STFT) leaves ``lambda_f L_freq`` ~10^5 times ``L_time``, so the seed's
            ``lambda_f = 10`` does not give the "comparable level of importance" of Sec. V-B.
            Measured on /work/pairs (300 train grid crops of 8192 samples, piano vs violin,
            program 40; input RMS 0.011, target RMS 0.023), ``10 L_freq / L_time`` as a ratio of
            the means over crops (median of per-crop ratios in brackets):

            ========  ==================  ==================
            scale     silent output       input as output
            ========  ==================  ==================
            none      8.0e5 (2.6e5)       5.4e5 (1.7e5)
            window    7.2e-7 (2.4e-7)     4.9e-7 (1.6e-7)
            energy    1.35 (0.44)         0.91 (0.29)
            fft       0.19 (0.06)         0.13 (0.04)
            ========  ==================  ==================

            (``L_time`` 5.2e-4 silent, 6.8e-4 input.) ``"energy"`` (STFT divided by
            ``sqrt(sum w^2)``) is the scaling under which ``lambda_f = 10`` makes the two terms
            comparable, so it is the default. The ratio still grows with the level squared.
    """

    model: str = "xfer-violin"
    preset: str = "paper"
    model_preset: str = "paper"
    loss: str = "g1"
    steps: int = 20000
    batch_size: int = 16
    segment_samples: int = 8192
    lr: float = 1e-3
    lambda_f: float = 10.0
    lambda_ae: float = 0.1
    lambda_adv: float = 1.0
    lambda_stft: float = 0.0
    gp_weight: float = 10.0
    n_critic: int = 5
    critic_blocks: int = 7
    critic_filters: int = 16
    critic_hidden: int = 256
    content_net: str = "ae-kimsathe"
    content_net_sha256: str = ""
    input_program: int = 0
    freq_scale: str = "energy"

    def __post_init__(self) -> None:
        if self.freq_scale not in FREQ_SCALES:
            raise ValueError(f"xfer: freq_scale must be one of {', '.join(FREQ_SCALES)}, got {self.freq_scale!r}")
        if self.loss not in COMPOSITE_LOSSES:
            raise ValueError(f"xfer: loss must be one of {', '.join(COMPOSITE_LOSSES)}, got {self.loss!r}")
        if self.n_critic < 1:
            raise ValueError(f"xfer: n_critic must be >= 1, got {self.n_critic}")
        for name in ("lr", "lambda_f", "lambda_ae", "lambda_adv", "lambda_stft", "gp_weight"):
            v = getattr(self, name)
            if not (v >= 0.0 and v < float("inf")):
                raise ValueError(f"xfer: {name} must be a finite number >= 0, got {v!r}")


def _presets(model: str) -> dict[str, XferTrainConfig]:
    return {
        "paper": XferTrainConfig(model=model),
        "live": XferTrainConfig(model=model, preset="live", model_preset="live", batch_size=8, critic_filters=8,
                                critic_hidden=128, num_workers=0),
        # tests: lr 1e-2 so that two dozen steps move the (zero-initialised) output
        "tiny": XferTrainConfig(model=model, preset="tiny", model_preset="tiny", steps=16, batch_size=4, lr=1e-2,
                                segment_samples=1024, val_items=4, val_every=8, ckpt_every=8, log_every=4,
                                critic_blocks=3, critic_filters=4, critic_hidden=16, n_critic=2, num_workers=0),
    }


class XferRecipe(Recipe):
    """Seed 001's training of one xfer model (module docstring); networks ``generator`` and, for g4, ``critic``."""

    config_cls: ClassVar[type[TrainConfig]] = XferTrainConfig
    progress: ClassVar[tuple[str, ...]] = ("time",)

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self.terms = COMPOSITE_LOSSES[cfg.loss]
        self.n_critic = int(cfg.n_critic)
        if "ae" in self.terms:
            if not cfg.content_net_sha256:
                raise ValueError(f"{cfg.model} with loss g3 needs a trained {cfg.content_net} (seed 001 Sec. V-A: "
                                 f"trained on input and target crops alternately) and its content_net_sha256")
            self.frozen = {"content": (cfg.content_net, cfg.content_net_sha256)}
        self._phi: nn.Module | None = None

    @classmethod
    def presets(cls) -> dict[str, TrainConfig]:
        return _presets(cls.model_name)

    model_name: ClassVar[str] = "xfer-violin"

    @property
    def target_program(self) -> int:
        return make_config(self.cfg.model, self.cfg.model_preset).target_program

    def networks(self) -> Nets:
        nets: Nets = {"generator": XferGenerator(make_config(self.cfg.model, self.cfg.model_preset))}
        if "adv" in self.terms:
            c = self.cfg
            nets["critic"] = InceptionCritic(c.segment_samples, c.critic_blocks, c.critic_filters,
                                             hidden=c.critic_hidden)
        return nets

    def optimisers(self, nets: Nets) -> dict[str, torch.optim.Optimizer]:
        return {name: torch.optim.Adam(nets[name].parameters(), lr=self.cfg.lr)
                for name in ("generator", "critic") if name in nets}

    def adversarial(self, step: int) -> bool:
        return "adv" in self.terms

    # -- data ----------------------------------------------------------------------------------
    def data(self, corpus: Any) -> tuple[torch.utils.data.Dataset, Batch]:
        """Training crops and a fixed validation batch from the pair set in ``corpus``.

        Raises:
            ValueError: no pair set given, or one without this model's target program.
        """
        from ..data.pairs import PairDataset
        if corpus is None:
            raise ValueError(f"{self.cfg.model} trains on a pair set: give --data DIR (built by 'rtgan data pairs')")
        c = self.cfg
        train = PairDataset(corpus, "train", self.target_program, crop=c.segment_samples, random_crop=True,
                            seed=c.seed)
        val = PairDataset(corpus, "val", self.target_program, crop=c.segment_samples, random_crop=False)
        idx = torch.linspace(0, len(val) - 1, min(c.val_items, len(val))).round().long().unique().tolist()
        items = [val[i] for i in idx]
        from ..data.pairs import WithChannel
        as_item = WithChannel(train)
        return as_item, tuple(torch.stack(parts)[:, None] for parts in zip(*items))

    def data_manifest(self, corpus: Any) -> Path:
        return Path(corpus) / "pairs.jsonl"

    # -- the steps -----------------------------------------------------------------------------
    def generate(self, nets: Nets, batch: Batch) -> Any:
        return nets["generator"](batch[0])

    def critic_loss(self, nets: Nets, batch: Batch, fake: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        critic = nets["critic"]
        real = batch[1]
        w = critic(real).float().mean() - critic(fake).float().mean()
        gp = gradient_penalty(critic, real, fake, self.cfg.gp_weight)
        return gp - w, {"w_dist": float(w.detach()), "gp": float(gp.detach())}

    def _content(self, nets: Nets) -> nn.Module:
        from .autoencoder import BottleneckFeatures
        ae = nets["content"]
        if self._phi is None or self._phi.ae is not ae:
            self._phi = BottleneckFeatures(ae)
        return self._phi.eval()

    def generator_loss(self, nets: Nets, batch: Batch, out: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        c, y, y_hat = self.cfg, batch[1], out.float()
        loss = time_mse(y_hat, y)
        terms = {"time": float(loss.detach())}
        if "freq" in self.terms:
            f = power_spectrogram_loss(y_hat, y, scale=c.freq_scale)
            loss = loss + c.lambda_f * f
            terms["freq"] = float(f.detach())
        if "ae" in self.terms:
            a = content_loss(self._content(nets), y_hat, y)
            loss = loss + c.lambda_ae * a
            terms["ae"] = float(a.detach())
        if c.lambda_stft:
            sc, mag = multi_resolution_stft_loss(y_hat, y)
            loss = loss + c.lambda_stft * (sc + mag)
            terms["stft_sc"], terms["stft_mag"] = float(sc.detach()), float(mag.detach())
        if "adv" in self.terms:
            adv = -nets["critic"](y_hat).float().mean()
            loss = loss + c.lambda_adv * adv
            terms["adv"] = float(adv.detach())
        terms["total"] = float(loss.detach())
        return loss, terms

    def validate(self, nets: Nets, val: Batch) -> dict[str, float]:
        """``snr_db`` and ``lsd`` of the output against the target (eqs. 24-25; means over the
        validation crops), ``loss`` (L_time) and ``composite`` (the composite loss but its
        adversarial term); the input's SNR against the target beside them."""
        from ..metrics import lsd, snr
        x, y = val
        y_hat = nets["generator"](x).float()
        composite = time_mse(y_hat, y)
        if "freq" in self.terms:
            composite = composite + self.cfg.lambda_f * power_spectrogram_loss(y_hat, y, scale=self.cfg.freq_scale)
        if "ae" in self.terms:
            composite = composite + self.cfg.lambda_ae * content_loss(self._content(nets), y_hat, y)
        if self.cfg.lambda_stft:
            composite = composite + self.cfg.lambda_stft * sum(multi_resolution_stft_loss(y_hat, y))
        return {"loss": float(time_mse(y_hat, y)), "composite": float(composite),
                "snr_db": float(snr(y_hat[:, 0], y[:, 0]).mean()),
                "lsd": float(lsd(y_hat[:, 0], y[:, 0]).mean()), "input_snr_db": float(snr(x[:, 0], y[:, 0]).mean())}


for _name in TARGETS:  # one recipe class per registered name, each with its own presets
    register_recipe(_name)(type(f"XferRecipe_{_name.split('-')[1]}", (XferRecipe,), {"model_name": _name,
                                                                                     "__module__": __name__}))
