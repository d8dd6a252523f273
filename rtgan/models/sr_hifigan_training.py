"""Training of sr-hifigan (Coldenhoff & Ren 2021, Sec. V and VII).

The generator is in :mod:`.sr_hifigan`; this module registers its recipe (found by the
registry's discovery of ``rtgan/models``): :class:`SRHiFiGANRecipe` (run by
:func:`rtgan.training.loop.train`) with its settings :class:`SRHiFiGANTrainConfig`, the loss
:data:`RECIPES` ``bwe`` and ``paper``, the band-limiters of :func:`train_degradations`, and
:func:`discriminator_view`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..losses import LossWeights
from .discriminators import DiscriminatorConfig, HiFiGANDiscriminator
from .recipe import Recipe, TrainConfig, tuples
from .registry import build, make_config, register_recipe
from .sr_hifigan import SRHiFiGANGenerator  # noqa: F401  (registers the model before its recipe below)

if TYPE_CHECKING:
    from ..audio.degrade import DegradationConfig


# -- training -----------------------------------------------------------------------------
#
# How sr-hifigan is trained (Coldenhoff & Ren 2021, Sec. V): the HiFi-GAN discriminators take
# an LSGAN step on (y, G(x)), then the generator minimises the recipe's weighted loss
# (rtgan.losses.generator_loss). Everything that needs scipy (the band-limiters that make
# training inputs, the discriminators' high-pass) is imported on first use, so importing the
# model for inference stays light.

#: Generator loss recipes (weights of :func:`rtgan.losses.generator_loss`).
#:
#: ``paper``: the seed, Coldenhoff & Ren (2021) Sec. V and VII-C:
#: ``L_G = 1e-3 L_adv + 1e-3 L_flat + L_time``.
#:
#: ``bwe``: what bandwidth-extension and vocoder GANs that sound good train with, beside the
#: seed's terms: the multi-resolution STFT loss (spectral convergence + log magnitude,
#: Yamamoto et al. 2020, eqs. 1-4) as the main reconstruction term, HiFi-GAN's feature
#: matching (Kong et al. 2020, eq. 4, weight 2) and LSGAN adversarial term (weight 1, eq. 2),
#: the seed's ``L_time`` and ``L_flat`` kept. The MR-STFT weight puts reconstruction at
#: several times the adversarial terms, as HiFi-GAN's mel weight of 45 does. Training items
#: are levelled to ``SRHiFiGANTrainConfig.item_rms_dbfs``, so ``L_time`` (an MSE,
#: level-dependent) has a fixed scale: the band above 8 kHz carries about 1 % of the energy,
#: so at -20 dBFS the band-limited input's MSE is ~1e-4, and weight 1000 makes it ~0.1 against
#: ~1-3 for the MR-STFT term: a pull towards the waveform (and SNR) without dulling the band.
RECIPES: dict[str, LossWeights] = {
    "paper": LossWeights(adv=1e-3, flat=1e-3, time=1.0),
    "bwe": LossWeights(adv=1.0, flat=1.0, time=1000.0, feature_matching=2.0, stft=10.0),
}


def train_degradations() -> tuple[DegradationConfig, ...]:
    """The band-limiters training draws from (one per item, Sulun & Davies 2020).

    None of them is used by evaluation: no Butterworth filter, no soxr resampler, no Kaiser
    beta of 5. No Bessel either: its passband droop (-1.2 dB at 4 kHz after filtfilt) would
    make the kept band's target ambiguous.
    """
    from ..audio.degrade import DECIMATE_KAISER_BETAS, DegradationConfig
    return (
        # steep IIR low-passes (zero phase) with a guard filter: the band is silent
        DegradationConfig(kind="lowpass", cutoff_hz=8000.0, cutoff_jitter=0.1, filters=("cheby1", "ellip"),
                          orders=(6, 8)),
        # gentle ones without the guard: part of the band is left, attenuated (as real filters do)
        DegradationConfig(kind="lowpass", cutoff_hz=7500.0, cutoff_jitter=0.15, filters=("cheby1", "ellip"),
                          orders=(2, 3, 4), guard=False),
        # decimation by 3 (16 kHz) with resample_poly, Kaiser betas other than the evaluation's
        DegradationConfig(kind="decimate", ratio=3, kaiser_betas=DECIMATE_KAISER_BETAS),
        # what rtgan render does with a 16 kHz file (the project's own resampler)
        DegradationConfig(kind="resample", ratio=3),
    )


def _eval_degradation() -> DegradationConfig:
    from ..audio.degrade import DegradationConfig
    return DegradationConfig()


@dataclass(frozen=True)
class SRHiFiGANTrainConfig(TrainConfig):
    """Everything a training run of sr-hifigan needs, with its defaults (beside :class:`TrainConfig`'s).

    Optimiser defaults follow Coldenhoff & Ren (2021, Sec. VII-B): AdamW with betas
    (0.8, 0.99), learning rate 2e-4, exponential decay gamma 0.999 (applied every
    ``lr_decay_every`` steps, HiFi-GAN's per-epoch decay). Loss weights: the ``bwe``
    recipe of :data:`RECIPES` by default; ``paper`` is Sec. V's
    ``lambda_adv = lambda_flat = 1e-3`` with ``L_time`` at weight 1.

    Attributes:
        recipe: name of the loss recipe in :data:`RECIPES` that ``weights`` came from
            (recorded; ``weights`` is what is used).
        train_domain: train (and validate) on the corpus clips of this domain only,
            ``"music"`` or ``"speech"``; ``None`` (default): every clip.
        lr, betas, lr_gamma, lr_decay_every: AdamW and ExponentialLR settings (generator and
            discriminators alike).
        weights: loss weights (see :class:`rtgan.losses.LossWeights`).
        item_rms_dbfs: each training item (target and input alike) is scaled so the target's
            RMS is this level in dBFS, by at most ``item_max_gain_db``; ``None`` keeps levels.
            The generator is bias-free (level-equivariant), so this only fixes the scale of
            the level-dependent loss terms.
        adversarial: train with the discriminators (False: reconstruction terms only, and no
            discriminators are built).
        adv_start_step: steps of pure reconstruction training before the GAN terms start.
        disc_warmup_steps: of those, the last this many also train the discriminators (their
            gradient does not yet reach the generator): fresh discriminators facing a
            warm-started generator (``--init-from``) learn to judge it before it is judged.
        disc_highpass_hz: the discriminators see only the band above this (Hz; 0: the whole
            waveform, as in the seed), scaled by ``disc_input_gain``; see :func:`discriminator_view`.
        disc_input_gain: gain on what the discriminators see.
        time_lowpass_hz: ``L_time`` (the MSE) on the band below this (Hz; linear-phase FIR
            low-pass, see :func:`fir_view`); 0: on the whole waveform, as in the seed.
            Above the input's band the original's phase is mostly unpredictable, so an MSE
            there pulls the generated band toward silence in proportion to its level and
            compresses its dynamics; the MR-STFT and adversarial terms set that band instead.
        discriminator: HiFi-GAN MPD + MSD widths.
        degradations: how band-limited inputs are made from targets in training; each item
            draws one of them (and its filter shape) at random, so the model does not learn
            a single filter (Sulun & Davies, "On filter generalization for music bandwidth
            extension"). Default :func:`train_degradations`.
        eval_degradation: the degradation used for validation and ``rtgan eval``.

    Raises:
        ValueError: an unknown ``recipe``; a negative ``disc_warmup_steps``; a ``train_domain``
            other than ``"music"``, ``"speech"`` or ``None``.
    """

    model: str = "sr-hifigan"
    recipe: str = "bwe"
    min_bandwidth_hz: float = 16000.0
    train_domain: str | None = None
    lr: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.99)
    lr_gamma: float = 0.999
    lr_decay_every: int = 1000
    weights: LossWeights = RECIPES["bwe"]
    item_rms_dbfs: float | None = -20.0
    item_max_gain_db: float = 30.0
    adversarial: bool = True
    adv_start_step: int = 1000
    disc_warmup_steps: int = 0
    disc_highpass_hz: float = 6000.0
    disc_input_gain: float = 10.0
    time_lowpass_hz: float = 0.0
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    degradations: tuple[DegradationConfig, ...] = field(default_factory=train_degradations)
    eval_degradation: DegradationConfig = field(default_factory=_eval_degradation)

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; recipes: {', '.join(RECIPES)}")
        if self.disc_warmup_steps < 0:
            raise ValueError(f"disc_warmup_steps must be >= 0, got {self.disc_warmup_steps}")
        if self.time_lowpass_hz < 0:
            raise ValueError(f"time_lowpass_hz must be >= 0, got {self.time_lowpass_hz}")
        if self.train_domain not in (None, "music", "speech"):
            raise ValueError(f"train_domain must be 'music', 'speech' or None (every clip), got {self.train_domain!r}")

    @classmethod
    def with_recipe(cls, base: "SRHiFiGANTrainConfig", recipe: str) -> "SRHiFiGANTrainConfig":
        """``base`` with the loss weights (and, for ``paper``, the schedule) of ``recipe``.

        Raises:
            ValueError: unknown recipe.
        """
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; recipes: {', '.join(RECIPES)}")
        extra = {"adv_start_step": 0, "disc_highpass_hz": 0.0, "disc_input_gain": 1.0} if recipe == "paper" else {}
        return dataclasses.replace(base, recipe=recipe, weights=RECIPES[recipe], **extra)

    @classmethod
    def from_dict(cls, d: dict) -> "SRHiFiGANTrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``TypeError``."""
        from ..audio.degrade import DegradationConfig
        d = tuples(d)
        d["weights"] = LossWeights(**d.get("weights", {}))
        d["discriminator"] = DiscriminatorConfig(**d.get("discriminator", {}))
        d["degradations"] = tuple(DegradationConfig(**g) for g in d.get("degradations", ()))
        d["eval_degradation"] = DegradationConfig(**d.get("eval_degradation", {}))
        d["betas"] = tuple(d.get("betas", (0.8, 0.99)))
        return cls(**d)


def discriminator_view(cfg: SRHiFiGANTrainConfig, sample_rate: int, device: torch.device):
    """What the discriminators see of a waveform ``(batch, 1, samples)``: a function to the same shape.

    With ``cfg.disc_highpass_hz`` > 0: the band above that frequency (zero-phase linear-phase
    FIR high-pass, 127 taps, Kaiser window, at ``sample_rate`` Hz), times ``cfg.disc_input_gain``.
    The band below it is the input itself in real and generated audio alike, and the band the
    generator makes carries ~1 % of the energy: on the raw waveform the discriminators sit at
    chance (LSGAN loss 0.5 per sub-discriminator) and give the generator nothing to learn from.
    Otherwise the identity (the seed's discriminators see the waveform).
    """
    if cfg.disc_highpass_hz <= 0:
        return lambda w: w
    return fir_view(cfg.disc_highpass_hz, sample_rate, device, highpass=True, gain=cfg.disc_input_gain)


def fir_view(cutoff_hz: float, sample_rate: int, device: torch.device, taps: int = 127,
                 highpass: bool = False, gain: float = 1.0):
    """A zero-phase linear-phase FIR low-pass (``highpass``: high-pass) at ``cutoff_hz``
    (``taps`` taps, Kaiser window, beta 8), times ``gain``, as a function from
    ``(batch, 1, samples)`` to the same shape.

    Raises:
        ValueError: ``cutoff_hz`` not in (0, sample_rate / 2).
    """
    if not 0 < cutoff_hz < sample_rate / 2:
        raise ValueError(f"FIR cutoff must be in (0, {sample_rate / 2:g}) Hz, got {cutoff_hz:g}")
    from scipy.signal import firwin

    h = torch.tensor(firwin(taps, cutoff_hz, fs=sample_rate, pass_zero=not highpass, window=("kaiser", 8.0)),
                     dtype=torch.float32, device=device).view(1, 1, taps) * gain
    return lambda w: torch.nn.functional.conv1d(w, h.to(w.dtype), padding=taps // 2)


class HiFiGANAdversary:
    """The adversarial half of a recipe whose generator faces HiFi-GAN's MPD + MSD (Kong et al.
    2020) as an LSGAN with feature matching (eqs. 2 and 4), from ``cfg.adv_start_step`` on.

    Mixed into a :class:`~rtgan.models.recipe.Recipe` whose config has ``model``, ``preset``,
    ``adversarial``, ``adv_start_step``, ``disc_warmup_steps`` (the discriminators alone train
    for that many steps before ``adv_start_step``), ``discriminator`` (:class:`DiscriminatorConfig`) and
    ``weights`` (:class:`LossWeights`; :func:`rtgan.losses.generator_loss` combines the terms).
    Batches are ``(x, y, ...)``, the target ``y`` second. :meth:`_view` maps a waveform to
    what the discriminators judge (identity here; sr-hifigan judges the generated band).
    """

    def _view(self, device: torch.device):
        return lambda t: t

    def _time_view(self, device: torch.device):
        """The filter ``L_time`` sees both waveforms through (``None``: the waveform itself)."""
        return None

    def networks(self) -> dict[str, nn.Module]:
        nets: dict[str, nn.Module] = {"generator": build(self.cfg.model, self.cfg.preset)}
        if self.cfg.adversarial:
            nets["discriminator"] = HiFiGANDiscriminator(self.cfg.discriminator)
        return nets

    def adversarial(self, step: int) -> bool:
        return self.cfg.adversarial and step >= self.cfg.adv_start_step

    def critic_trains(self, step: int) -> bool:
        return self.cfg.adversarial and step >= self.cfg.adv_start_step - self.cfg.disc_warmup_steps

    def critic_loss(self, nets, batch, fake, step):
        from ..losses import lsgan_discriminator_loss
        d, view, y = nets["discriminator"], self._view(batch[1].device), batch[1]
        real_logits, _ = d(view(y))
        fake_logits, _ = d(view(fake))
        loss = lsgan_discriminator_loss(real_logits, fake_logits)
        return loss, {"disc": float(loss.detach())}

    def generator_loss(self, nets, batch, y_hat, step):
        from ..losses import generator_loss
        y, w = batch[1], self.cfg.weights
        adv = self.adversarial(step)
        fake_logits = fake_feats = real_feats = None
        if adv:
            d, view = nets["discriminator"], self._view(y.device)
            fake_logits, fake_feats = d(view(y_hat))
            if w.feature_matching > 0:
                with torch.no_grad():
                    _, real_feats = d(view(y))
            else:
                fake_feats = None
        else:
            w = dataclasses.replace(w, adv=0.0, feature_matching=0.0)
        loss, terms = generator_loss(y_hat.float(), y, fake_logits, w, fake_feats=fake_feats,
                                     real_feats=real_feats, time_view=self._time_view(y.device))
        return loss, {f"gen_{k}": v for k, v in terms.items()}


@register_recipe("sr-hifigan")
class SRHiFiGANRecipe(HiFiGANAdversary, Recipe):
    """sr-hifigan's training: band-limited/full-band pairs, HiFi-GAN MPD + MSD, LSGAN.

    Networks ``generator`` (the preset's :class:`SRHiFiGANGenerator`) and, when
    ``cfg.adversarial``, ``discriminator`` (:class:`rtgan.models.discriminators.HiFiGANDiscriminator`),
    each with AdamW and an ExponentialLR stepped every ``cfg.lr_decay_every`` steps. Examples are
    ``(x, y)``, both ``(1, samples)``: ``y`` a corpus clip (levelled to ``cfg.item_rms_dbfs``)
    and ``x`` the same clip band-limited by one of ``cfg.degradations`` drawn at random.
    Adversarial from ``cfg.adv_start_step`` on; the discriminators see
    :func:`discriminator_view` of the audio. Validation: SNR (dB), LSD, MSE and the
    reconstruction loss of the offline output on the fixed validation pairs, beside the
    band-limited input's SNR and LSD.
    """

    config_cls = SRHiFiGANTrainConfig
    progress = ("gen_total", "snr_db", "lsd")

    def __init__(self, cfg: SRHiFiGANTrainConfig) -> None:
        """Raises: KeyError: ``cfg.preset`` is not a preset of ``cfg.model``."""
        super().__init__(cfg)
        self.rate = int(make_config(cfg.model, cfg.preset).sample_rate)  # Hz, in and out
        self._views: dict = {}

    @classmethod
    def presets(cls) -> dict[str, SRHiFiGANTrainConfig]:
        """``tiny`` (seconds on a CPU: tests and CI), ``live`` (the shipped model), ``paper`` (B = 8, a GPU job)."""
        return {
            "tiny": SRHiFiGANTrainConfig(preset="tiny", steps=60, batch_size=4, segment_samples=4096, val_items=4,
                                         val_every=20, ckpt_every=30, log_every=10, lr=1e-3, num_workers=0,
                                         adv_start_step=0, discriminator=DiscriminatorConfig.tiny()),
            "live": SRHiFiGANTrainConfig(preset="live"),
            "paper": SRHiFiGANTrainConfig(preset="paper", batch_size=16, segment_samples=32768),
        }

    def domain(self) -> str | None:
        """``cfg.train_domain``: the corpus domain trained on (``None``: every clip)."""
        return self.cfg.train_domain

    def optimisers(self, nets):
        return {name: torch.optim.AdamW(nets[name].parameters(), lr=self.cfg.lr, betas=self.cfg.betas)
                for name in ("generator", "discriminator") if name in nets}

    def schedulers(self, optimisers):
        return {name: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=self.cfg.lr_gamma)
                for name, opt in optimisers.items()}

    def step_schedulers(self, step: int) -> bool:
        return step % self.cfg.lr_decay_every == 0

    def train_example(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` from ``clip``: a random one of ``cfg.degradations`` and the item level."""
        import numpy as np

        from ..audio.degrade import degrade
        cfg, y = self.cfg, clip
        y_np = y.numpy()
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
        x = degrade(y_np, self.rate, cfg.degradations[int(rng.integers(len(cfg.degradations)))], rng=rng)
        if cfg.item_rms_dbfs is not None:
            rms = float(np.sqrt(np.mean(y_np.astype(np.float64) ** 2)))
            gain = min(10 ** (cfg.item_rms_dbfs / 20) / max(rms, 1e-12), 10 ** (cfg.item_max_gain_db / 20))
            x, y = x * gain, y * gain
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), y

    def val_example(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` from ``clip``: ``cfg.eval_degradation`` with its first filter, levels kept."""
        import numpy as np

        from ..audio.degrade import degrade
        x = degrade(clip.numpy(), self.rate, self.cfg.eval_degradation, rng=None)
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), clip

    def _view(self, device: torch.device):
        if device not in self._views:
            self._views[device] = discriminator_view(self.cfg, self.rate, device)
        return self._views[device]

    def _time_view(self, device: torch.device):
        if self.cfg.time_lowpass_hz <= 0:
            return None
        key = ("time", device)
        if key not in self._views:
            self._views[key] = fir_view(self.cfg.time_lowpass_hz, self.rate, device)
        return self._views[key]

    def generate(self, nets, batch):
        return nets["generator"](batch[0])

    def validate(self, nets, val, batch: int = 8) -> dict[str, float]:
        """Mean SNR (dB), LSD, time-domain MSE and reconstruction loss on the validation pairs.

        ``loss`` is ``cfg.weights``' generator loss without its adversarial and feature-matching
        terms, averaged over batches of ``batch``; ``input_snr_db`` and ``input_lsd`` score the
        band-limited input itself.
        """
        from ..engine.overlap_save import offline
        from ..losses import generator_loss
        from ..metrics import lsd, snr
        g = nets["generator"]
        recon = dataclasses.replace(self.cfg.weights, adv=0.0, feature_matching=0.0)
        dev = next(g.parameters()).device
        rows, losses = [], []
        for i in range(0, val[0].shape[0], batch):
            x, y = val[0][i:i + batch].to(dev), val[1][i:i + batch].to(dev)
            y_hat = offline(g, x)
            rows.append(torch.stack([snr(y_hat[:, 0], y[:, 0]), lsd(y_hat[:, 0], y[:, 0]),
                                     ((y_hat - y) ** 2).mean(dim=(1, 2)), snr(x[:, 0], y[:, 0]),
                                     lsd(x[:, 0], y[:, 0])], dim=1).cpu())
            losses.append(generator_loss(y_hat, y, None, recon)[0].item())
        m = torch.cat(rows).mean(dim=0).tolist()
        return {"snr_db": m[0], "lsd": m[1], "mse": m[2], "loss": sum(losses) / len(losses),
                "input_snr_db": m[3], "input_lsd": m[4]}
