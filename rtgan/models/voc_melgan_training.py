"""Training of the music vocoders (seed 003): voc-melgan's recipe and the data and settings both vocoders share.

Examples (both vocoders): a corpus clip of the ``music`` domain, read at the corpus rate
(48 kHz), resampled to the vocoder's 22 050 Hz (:func:`rtgan.audio.io.resample`), cropped to
whole mel hops, peak-normalised to 0.95 as seed 003's data preparation does (``librosa.util.
normalize`` times 0.95) and then, for training only, scaled by a random gain in
``gain_db`` (so that live input at any level has been seen). The conditioning mel is computed
from the example by the generator's own front end (:class:`rtgan.models.layers.mel.LogMel1d`),
so training, inference and evaluation share one mel.

voc-melgan (:class:`VocMelGANRecipe`): MelGAN's objective (Kumar et al. 2019, Sec. 2.3,
eqs. 1-4): hinge losses against :class:`rtgan.models.discriminators.MelGANDiscriminator`,
plus feature matching with ``lambda = 10`` (the mean L1 distance between the discriminator's
hidden feature maps of real and generated audio, summed over layers and scales; the output
layer left out), Adam at 1e-4 with betas (0.5, 0.9) for both networks, weight norm on every
generator conv. Recipe ``paper`` is that; recipe ``fast`` (the CPU presets) adds HiFi-GAN's
mel-spectrogram L1 (Kong et al. 2020, eq. 3; weight 45) on the vocoder's own log10 mel and
starts the adversarial terms after a reconstruction warm-up, which reaches usable audio in far
fewer steps than the adversarial terms alone.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..losses import feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss, multi_resolution_stft_loss
from .discriminators import MelGANDiscriminator, MelGANDiscriminatorConfig
from .layers.weightnorm import apply_weight_norm
from .recipe import Recipe, TrainConfig
from .registry import build, make_config, register_recipe
from .voc_melgan import MelGANGenerator  # noqa: F401  (registers the model before its recipe)


@dataclass(frozen=True)
class VocoderLossWeights:
    """Weights of a vocoder's generator loss terms.

    Attributes:
        adv: the adversarial term (MelGAN: 1).
        feature_matching: feature matching (MelGAN, Kumar et al. 2019 eq. 4: ``lambda = 10``).
        mel: L1 between the log10 mels of output and target (HiFi-GAN eq. 3 uses 45 on natural-log
            mels); 0 in seed 003.
        stft: multi-resolution STFT loss ``L_sc + L_mag`` (Yamamoto et al. 2020); 0 in seed 003.

    Raises:
        ValueError: a weight that is negative or not finite.
    """

    adv: float = 1.0
    feature_matching: float = 10.0
    mel: float = 0.0
    stft: float = 0.0

    def __post_init__(self) -> None:
        for key, value in dataclasses.asdict(self).items():
            if not (float(value) >= 0.0 and math.isfinite(float(value))):
                raise ValueError(f"VocoderLossWeights.{key} must be a finite number >= 0, got {value!r}")


#: the vocoders' loss recipes: ``paper`` (seed 003: adversarial + feature matching) and ``fast``
#: (plus a mel L1 and a reconstruction warm-up, for CPU budgets)
VOCODER_RECIPES: dict[str, tuple[VocoderLossWeights, int]] = {
    "paper": (VocoderLossWeights(), 0),
    "fast": (VocoderLossWeights(mel=45.0), 1000),
}


@dataclass(frozen=True)
class VocoderTrainConfig(TrainConfig):
    """Settings shared by the vocoders' training (seed 003), beside :class:`TrainConfig`'s fields.

    Attributes:
        segment_samples: corpus samples (at ``corpus_rate``) cut for one example: 17 920 at
            48 kHz give the 8192 samples at 22 050 Hz (32 mel frames) seed 003 and MelGAN train on.
        corpus_rate: the corpus's sample rate in Hz.
        train_domain: corpus domain of the clips (``music``; ``None``: every clip).
        gain_db: range in dB of the random gain after peak normalisation (training only).
        lr, betas: Adam for both networks (seed 003's code and MelGAN: 1e-4, (0.5, 0.9)).
        weights: the generator loss weights (see :data:`VOCODER_RECIPES`).
        adversarial: train against the discriminator (False: reconstruction terms alone).
        adv_start_step: generator steps before the adversarial terms start.
        discriminator: the discriminator's sizes.

    Raises:
        ValueError: an unknown recipe, a gain range that is not ``low <= high <= 0``, a
            non-positive corpus rate, or no loss term at all.
    """

    model: str = "voc-melgan"
    preset: str = "live"
    recipe: str = "fast"
    steps: int = 100000
    batch_size: int = 16
    segment_samples: int = 17920
    corpus_rate: int = 48000
    train_domain: str | None = "music"
    gain_db: tuple[float, float] = (-18.0, 0.0)
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    weights: VocoderLossWeights = VOCODER_RECIPES["fast"][0]
    adversarial: bool = True
    adv_start_step: int = VOCODER_RECIPES["fast"][1]
    discriminator: MelGANDiscriminatorConfig = MelGANDiscriminatorConfig()

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "gain_db", tuple(float(g) for g in self.gain_db))
        if isinstance(self.weights, dict):
            object.__setattr__(self, "weights", VocoderLossWeights(**self.weights))
        if isinstance(self.discriminator, dict):
            object.__setattr__(self, "discriminator", self.disc_config_cls()(**self.discriminator))
        if self.recipe not in VOCODER_RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; vocoder recipes: {', '.join(VOCODER_RECIPES)}")
        lo, hi = self.gain_db
        if not lo <= hi <= 0:
            raise ValueError(f"gain_db must be (low, high) with low <= high <= 0 dB, got {self.gain_db}")
        if self.corpus_rate <= 0:
            raise ValueError(f"corpus_rate must be positive, got {self.corpus_rate}")
        w = self.weights
        if not (w.mel or w.stft or (self.adversarial and (w.adv or w.feature_matching))):
            raise ValueError("the generator loss has no term: give a mel, stft, adversarial or feature-matching weight")

    @classmethod
    def disc_config_cls(cls) -> type:
        """The discriminator config class (overridden by voc-multiscale)."""
        return MelGANDiscriminatorConfig

    @classmethod
    def discriminator_widths(cls) -> dict[str, object]:
        """``rtgan train --discriminator`` choices: the paper's, a CPU-sized one and a test-sized one."""
        return {"full": MelGANDiscriminatorConfig(), "small": MelGANDiscriminatorConfig(max_channels=256),
                "tiny": MelGANDiscriminatorConfig(base_channels=4, max_channels=16, n_layers=2)}

    @staticmethod
    def with_recipe(base: "VocoderTrainConfig", recipe: str, **extra) -> "VocoderTrainConfig":
        """``base`` with the loss weights and adversarial start of ``recipe`` (see :data:`VOCODER_RECIPES`).

        Raises:
            ValueError: an unknown recipe.
        """
        if recipe not in VOCODER_RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; vocoder recipes: {', '.join(VOCODER_RECIPES)}")
        weights, start = VOCODER_RECIPES[recipe]
        return dataclasses.replace(base, recipe=recipe, weights=weights, adv_start_step=start, **extra)


def vocoder_presets(cfg_cls: type, tiny: dict | None = None) -> dict[str, VocoderTrainConfig]:
    """The vocoders' training presets: ``tiny`` (CI: seconds on a CPU), ``live`` (CPU), ``paper`` (GPU)."""
    small = cfg_cls.discriminator_widths()
    return {
        "tiny": cfg_cls(preset="tiny", steps=16, batch_size=2, segment_samples=8960, val_items=2, val_every=8,
                        ckpt_every=8, log_every=4, num_workers=0, lr=1e-3, adv_start_step=8,
                        discriminator=small["tiny"], **(tiny or {})),
        "live": cfg_cls(preset="live", batch_size=8, discriminator=small["small"], val_items=16, val_every=250,
                        ckpt_every=50, log_every=25),
        "paper": cfg_cls.with_recipe(cfg_cls(preset="paper", batch_size=16, val_every=5000, ckpt_every=1000),
                                     "paper"),
    }


class VocoderData:
    """What the vocoders' recipes share (a mixin before :class:`Recipe`): presets, examples (see the
    module docstring), Adam on every trainable parameter, the adversarial schedule, validation."""

    cfg: VocoderTrainConfig
    config_cls: ClassVar[type[TrainConfig]]
    progress = ("gen_total", "mel_l1")

    @classmethod
    def presets(cls) -> dict[str, VocoderTrainConfig]:
        """``tiny`` (CI), ``live`` (CPU: causal, half or less of the paper's channels), ``paper`` (GPU)."""
        return vocoder_presets(cls.config_cls)

    def optimisers(self, nets):
        """Adam (``cfg.lr``, ``cfg.betas``) per network over its trainable parameters (frozen filter banks left out)."""
        return {name: torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=self.cfg.lr,
                                       betas=self.cfg.betas) for name, net in nets.items()}

    def adversarial(self, step: int) -> bool:
        return self.cfg.adversarial and step >= self.cfg.adv_start_step

    def domain(self) -> str | None:
        return self.cfg.train_domain

    def sample_rate(self, nets) -> int:
        return int(self.cfg.corpus_rate)

    def audio(self, clip: torch.Tensor, gain: bool) -> torch.Tensor:
        """``(1, n)`` at the vocoder's rate from a corpus clip ``(1, samples)``: resampled, whole hops, normalised."""
        import numpy as np

        from ..audio.io import resample
        c = make_config(self.cfg.model, self.cfg.preset)
        rate, hop = int(c.sample_rate), int(c.mel.hop_length)
        y = resample(clip.numpy().astype(np.float64), self.cfg.corpus_rate, rate)
        y = y[..., : y.shape[-1] - y.shape[-1] % hop]
        if y.shape[-1] < hop:
            raise ValueError(f"segment_samples {self.cfg.segment_samples} at {self.cfg.corpus_rate} Hz gives fewer "
                             f"than one hop ({hop} samples) at {rate} Hz")
        y = 0.95 * y / max(float(np.abs(y).max()), 1e-4)
        if gain:
            lo, hi = self.cfg.gain_db
            y = y * 10.0 ** (float(torch.empty(()).uniform_(lo, hi)) / 20.0)
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))

    def train_example(self, clip):
        return (self.audio(clip, gain=True),)

    def val_example(self, clip):
        return (self.audio(clip, gain=False),)

    def validate(self, nets, val, batch: int = 4) -> dict[str, float]:
        """Mean log10-mel L1 (``mel_l1``, also ``loss``) and MR-STFT distance (``mrstft``) of the resynthesis."""
        g = nets["generator"]
        dev = next(g.parameters()).device
        mels, stfts = [], []
        for i in range(0, val[0].shape[0], batch):
            y = val[0][i:i + batch].to(dev)
            y_hat = g(y).float()
            mels.append(mel_l1(g.mel, y_hat, y).cpu())
            sc, mag = multi_resolution_stft_loss(y_hat, y)
            stfts.append(float(sc + mag) * y.shape[0])
        m = float(torch.cat(mels).mean())
        return {"mel_l1": m, "loss": m, "mrstft": sum(stfts) / val[0].shape[0]}

    def reconstruction_loss(self, nets, y_hat: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted mel L1 and MR-STFT terms of the generator loss on the summed output ``(batch, 1, n)``."""
        w = self.cfg.weights
        loss, terms = y_hat.new_zeros(()), {}
        if w.mel:
            l_mel = mel_l1(nets["generator"].mel, y_hat, y).mean()
            loss, terms["mel_l1"] = loss + w.mel * l_mel, float(l_mel.detach())
        if w.stft:
            sc, mag = multi_resolution_stft_loss(y_hat, y)
            loss, terms["stft"] = loss + w.stft * (sc + mag), float((sc + mag).detach())
        return loss, terms


def mel_l1(mel: nn.Module, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the log10 mels of ``y_hat`` and ``y`` (both ``(batch, 1, n)``), per item ``(batch,)``.

    The vocoders' reconstruction term and their evaluation metric (the log-mel L1 of seed 003's
    mel): HiFi-GAN's mel loss (Kong et al. 2020, eq. 3) on log10 instead of natural-log mels.
    """
    return (mel(y_hat) - mel(y)).abs().mean(dim=(1, 2))


@register_recipe("voc-melgan")
class VocMelGANRecipe(VocoderData, Recipe):
    """voc-melgan's training: MelGAN's hinge + feature-matching objective (see the module docstring).

    Networks ``generator`` (the preset's :class:`MelGANGenerator`, weight-normalised) and
    ``discriminator`` (:class:`MelGANDiscriminator`). Examples ``(y,)``: audio ``(1, 8192)``.
    Validation: ``mel_l1`` (log10-mel L1, also ``loss``) and ``mrstft`` (``L_sc + L_mag``) of the
    resynthesis against ``y``.
    """

    config_cls: ClassVar[type[TrainConfig]] = VocoderTrainConfig

    def networks(self):
        nets = {"generator": apply_weight_norm(build(self.cfg.model, self.cfg.preset))}
        if self.cfg.adversarial:
            nets["discriminator"] = MelGANDiscriminator(self.cfg.discriminator)
        return nets

    def generate(self, nets, batch):
        g = nets["generator"]
        return g.vocode(g.mel(batch[0]), pad=False)  # forward() without its edge context: the same away from the edges

    def critic_loss(self, nets, batch, fake, step):
        d = nets["discriminator"]
        real, _ = d(batch[0])
        gen, _ = d(fake)
        loss = hinge_discriminator_loss([r.float() for r in real], [f.float() for f in gen])
        return loss, {"disc": float(loss.detach())}

    def generator_loss(self, nets, batch, out, step):
        y, y_hat, w = batch[0], out.float(), self.cfg.weights
        loss, terms = self.reconstruction_loss(nets, y_hat, y)
        if self.adversarial(step):
            d = nets["discriminator"]
            fake_logits, fake_feats = d(out)
            with torch.no_grad():
                _, real_feats = d(y)
            adv = hinge_generator_loss([f.float() for f in fake_logits])
            fm = feature_matching_loss([f[:-1] for f in real_feats], [f[:-1] for f in fake_feats])
            loss = loss + w.adv * adv + w.feature_matching * fm
            terms.update(gen_adv=float(adv.detach()), gen_fm=float(fm.detach()))
        terms["gen_total"] = float(loss.detach())
        return loss, terms
