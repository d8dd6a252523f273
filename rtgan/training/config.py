"""Training configuration: one frozen dataclass, presets as named instances."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..audio.degrade import DegradationConfig
from ..losses import LossWeights
from ..models.discriminators import DiscriminatorConfig


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run of a super-resolution GAN needs, with its defaults.

    Optimiser defaults follow Coldenhoff & Ren (2021, Sec. VII-B): AdamW with betas
    (0.8, 0.99), learning rate 2e-4, exponential decay gamma 0.999 (applied every
    ``lr_decay_every`` steps, HiFi-GAN's per-epoch decay). Loss weights are Sec. V's
    ``lambda_adv = lambda_flat = 1e-3`` with ``L_time`` at weight 1.

    Attributes:
        model: registered generator name.
        preset: generator preset (``tiny``, ``live``, ``paper``).
        steps: optimiser steps to train (in total, counting resumed steps).
        batch_size: items per step.
        segment_samples: training segment length in samples at the model rate.
        lr, betas, lr_gamma, lr_decay_every: AdamW and ExponentialLR settings.
        weights: loss weights (see :class:`rtgan.losses.LossWeights`).
        adversarial: train with the discriminators (False: ``L_time`` + ``L_flat`` only).
        adv_start_step: steps of pure reconstruction training before the GAN terms start.
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
    steps: int = 20000
    batch_size: int = 8
    segment_samples: int = 16384
    lr: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.99)
    lr_gamma: float = 0.999
    lr_decay_every: int = 1000
    weights: LossWeights = field(default_factory=LossWeights)
    adversarial: bool = True
    adv_start_step: int = 0
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    degradations: tuple[DegradationConfig, ...] = (
        # no Bessel: its passband droop (-1.2 dB at 4 kHz after filtfilt) would make the
        # kept band's target ambiguous; Bessel stays available for evaluation
        DegradationConfig(kind="lowpass", cutoff_hz=8000.0, cutoff_jitter=0.1,
                          filters=("cheby1", "butter", "ellip"), orders=(6, 8)),
        DegradationConfig(kind="decimate", ratio=3),
    )
    eval_degradation: DegradationConfig = field(default_factory=DegradationConfig)
    min_bandwidth_hz: float = 16000.0
    val_items: int = 32
    val_every: int = 500
    ckpt_every: int = 500
    log_every: int = 50
    num_workers: int = 1
    seed: int = 0
    amp: bool = True

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
                        ckpt_every=30, log_every=10, lr=1e-3, num_workers=0,
                        discriminator=DiscriminatorConfig.tiny()),
    # the shipped live model
    "live": TrainConfig(preset="live"),
    # the paper generator (B = 8) with full HiFi-GAN discriminators: a GPU job
    "paper": TrainConfig(preset="paper", batch_size=16, segment_samples=32768),
}
