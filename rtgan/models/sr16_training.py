"""Training of sr16-unet, sr16-gan and sr16-wgan (Retzlöff, seed 002, Sec. III-IV).

The generator and the three registered names are in :mod:`.sr16`; this module registers their
recipes (found by the registry's discovery of ``rtgan/models``): :class:`SR16UNetRecipe` (the
L2 loss alone), :class:`SR16GANRecipe` (plus ``0.01 * -log D(G(x))`` against WaveGAN's
discriminator, :mod:`.wavegan`, trained with the cross-entropy) and :class:`SR16WGANRecipe`
(plus ``0.01 * -C(G(x))`` against the same network as a weight-clipped Wasserstein critic, 5
critic steps per generator step), with their settings :class:`SR16TrainConfig`,
:class:`SR16GANTrainConfig` and :class:`SR16WGANTrainConfig`. The content-loss variants
(seed 002's "-C") build on these in :mod:`.sr16_content_training`.
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
from .recipe import Recipe, TrainConfig, resampled_length
from .registry import build, make_config, register_recipe
from .sr16 import SR16UNet  # noqa: F401  (registers the models before their recipes below)
from .wavegan import WaveGANConfig, WaveGANDiscriminator


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
        return resampled_length(corpus_samples, int(self.cfg.corpus_rate), int(self.rate), self.unit)

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
