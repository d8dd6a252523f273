"""Training configuration: one frozen dataclass, presets as named instances."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..audio.degrade import DECIMATE_KAISER_BETAS, DegradationConfig
from ..losses import LossWeights
from ..models.discriminators import DiscriminatorConfig

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
#: are levelled to ``TrainConfig.item_rms_dbfs``, so ``L_time`` (an MSE, level-dependent) has
#: a fixed scale: the band above 8 kHz carries about 1 % of the energy, so at -20 dBFS the
#: band-limited input's MSE is ~1e-4, and weight 1000 makes it ~0.1 against ~1-3 for the
#: MR-STFT term: a pull towards the waveform (and SNR) without dulling the band.
RECIPES: dict[str, LossWeights] = {
    "paper": LossWeights(adv=1e-3, flat=1e-3, time=1.0),
    "bwe": LossWeights(adv=1.0, flat=1.0, time=1000.0, feature_matching=2.0, stft=10.0),
}

#: The band-limiters training draws from (one per item, Sulun & Davies 2020). None of them is
#: used by evaluation: no Butterworth filter, no soxr resampler, no Kaiser beta of 5.
TRAIN_DEGRADATIONS: tuple[DegradationConfig, ...] = (
    # steep IIR low-passes (zero phase) with a guard filter: the band is silent
    DegradationConfig(kind="lowpass", cutoff_hz=8000.0, cutoff_jitter=0.1, filters=("cheby1", "ellip"), orders=(6, 8)),
    # gentle ones without the guard: part of the band is left, attenuated (as real filters do)
    DegradationConfig(kind="lowpass", cutoff_hz=7500.0, cutoff_jitter=0.15, filters=("cheby1", "ellip"),
                      orders=(2, 3, 4), guard=False),
    # decimation by 3 (16 kHz) with resample_poly, Kaiser betas other than the evaluation's
    DegradationConfig(kind="decimate", ratio=3, kaiser_betas=DECIMATE_KAISER_BETAS),
    # what rtgan render does with a 16 kHz file (the project's own resampler)
    DegradationConfig(kind="resample", ratio=3),
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run of a super-resolution GAN needs, with its defaults.

    Optimiser defaults follow Coldenhoff & Ren (2021, Sec. VII-B): AdamW with betas
    (0.8, 0.99), learning rate 2e-4, exponential decay gamma 0.999 (applied every
    ``lr_decay_every`` steps, HiFi-GAN's per-epoch decay). Loss weights: the ``bwe``
    recipe of :data:`RECIPES` by default; ``paper`` is Sec. V's
    ``lambda_adv = lambda_flat = 1e-3`` with ``L_time`` at weight 1.

    Attributes:
        model: registered generator name.
        preset: generator preset (``tiny``, ``live``, ``paper``).
        recipe: name of the loss recipe in :data:`RECIPES` that ``weights`` came from
            (recorded; ``weights`` is what is used).
        steps: optimiser steps to train (in total, counting resumed steps).
        batch_size: items per step.
        segment_samples: training segment length in samples at the model rate.
        lr, betas, lr_gamma, lr_decay_every: AdamW and ExponentialLR settings.
        weights: loss weights (see :class:`rtgan.losses.LossWeights`).
        item_rms_dbfs: each training item (target and input alike) is scaled so the target's
            RMS is this level in dBFS, by at most ``item_max_gain_db``; ``None`` keeps levels.
            The generator is bias-free (level-equivariant), so this only fixes the scale of
            the level-dependent loss terms.
        adversarial: train with the discriminators (False: ``L_time`` + ``L_flat`` only).
        adv_start_step: steps of pure reconstruction training before the GAN terms start.
        disc_highpass_hz: the discriminators see only the band above this (Hz; 0: the whole
            waveform, as in the seed), scaled by ``disc_input_gain``; see
            :func:`rtgan.training.loop.discriminator_view`.
        disc_input_gain: gain on what the discriminators see.
        discriminator: HiFi-GAN MPD + MSD widths.
        degradations: how band-limited inputs are made from targets in training; each item
            draws one of them (and its filter shape) at random, so the model does not learn
            a single filter (Sulun & Davies, "On filter generalization for music bandwidth
            extension").
        eval_degradation: the degradation used for validation and ``rtgan eval``.
        min_bandwidth_hz: clips whose measured bandwidth is lower are not used as targets.
        val_items, val_every, ckpt_every, log_every: validation and checkpoint cadence in steps.
        num_workers: data-loader worker processes.
        seed: seeds torch, numpy and the data order.
        amp: mixed precision on CUDA (ignored on CPU).
    """

    model: str = "sr-hifigan"
    preset: str = "live"
    recipe: str = "bwe"
    steps: int = 20000
    batch_size: int = 8
    segment_samples: int = 16384
    lr: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.99)
    lr_gamma: float = 0.999
    lr_decay_every: int = 1000
    weights: LossWeights = RECIPES["bwe"]
    item_rms_dbfs: float | None = -20.0
    item_max_gain_db: float = 30.0
    adversarial: bool = True
    adv_start_step: int = 1000
    disc_highpass_hz: float = 6000.0
    disc_input_gain: float = 10.0
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    # no Bessel: its passband droop (-1.2 dB at 4 kHz after filtfilt) would make the kept
    # band's target ambiguous
    degradations: tuple[DegradationConfig, ...] = TRAIN_DEGRADATIONS
    eval_degradation: DegradationConfig = field(default_factory=DegradationConfig)
    min_bandwidth_hz: float = 16000.0
    val_items: int = 32
    val_every: int = 500
    ckpt_every: int = 500
    log_every: int = 50
    num_workers: int = 1
    seed: int = 0
    amp: bool = True

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; recipes: {', '.join(RECIPES)}")

    @classmethod
    def with_recipe(cls, base: "TrainConfig", recipe: str) -> "TrainConfig":
        """``base`` with the loss weights (and, for ``paper``, the schedule) of ``recipe``.

        Raises:
            ValueError: unknown recipe.
        """
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; recipes: {', '.join(RECIPES)}")
        extra = {"adv_start_step": 0, "disc_highpass_hz": 0.0, "disc_input_gain": 1.0} if recipe == "paper" else {}
        return dataclasses.replace(base, recipe=recipe, weights=RECIPES[recipe], **extra)

    def to_dict(self) -> dict:
        """JSON-ready dict (nested dataclasses become dicts)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``TypeError``."""
        d = _tuples(d)
        d["weights"] = LossWeights(**d.get("weights", {}))
        d["discriminator"] = DiscriminatorConfig(**d.get("discriminator", {}))
        d["degradations"] = tuple(DegradationConfig(**g) for g in d.get("degradations", ()))
        d["eval_degradation"] = DegradationConfig(**d.get("eval_degradation", {}))
        d["betas"] = tuple(d.get("betas", (0.8, 0.99)))
        return cls(**d)


def _tuples(d: dict) -> dict:
    """JSON turns tuples into lists; turn them back (dict values, recursively)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _tuples(v)
        elif isinstance(v, list):
            v = tuple(_tuples(i) if isinstance(i, dict) else i for i in v)
        out[k] = v
    return out


PRESETS: dict[str, TrainConfig] = {
    # seconds on a CPU: for tests and CI
    "tiny": TrainConfig(preset="tiny", steps=60, batch_size=4, segment_samples=4096, val_items=4, val_every=20,
                        ckpt_every=30, log_every=10, lr=1e-3, num_workers=0, adv_start_step=0,
                        discriminator=DiscriminatorConfig.tiny()),
    # the shipped live model
    "live": TrainConfig(preset="live"),
    # the paper generator (B = 8) with full HiFi-GAN discriminators: a GPU job
    "paper": TrainConfig(preset="paper", batch_size=16, segment_samples=32768),
}
