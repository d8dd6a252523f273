"""How ReverbSynth trains: progressive WGAN-GP with auxiliary classifiers on IF-Mel notes (seed 004).

Seed 004 (Tatti & Bresee 2020, Sec. 3.3) trains GANSynth's progressive GAN (Engel et al. 2019;
Karras et al. 2018) with the Wasserstein loss and gradient penalty (Gulrajani et al. 2017,
eq. 3, lambda 10) and an auxiliary pitch classifier (Odena et al. 2017, weight 10), Adam at
lr 8e-4, growing through 8 of GANSynth's stages. Per generator step (one critic step: the
progressive GAN's ``n_critic = 1``):

* critic: ``L_D = E[D(G(z, c))] - E[D(x)] + L_GP + eps_drift E[D(x)^2] + lambda_ac CE(C(x), c)``,
  the drift term of Karras et al. 2018 (App. A.1, 1e-3) and the auxiliary classifier's
  cross-entropy on real notes (Odena et al. 2017, eq. 3). Odena et al. train the classifier on
  generated images too; GANSynth's implementation, which the seed runs, weighs the critic's
  classifier on real images only, so it learns the data's pitches rather than the early
  generator's noise (``ac_on_fake`` restores Odena's form);
* generator: ``L_G = -E[D(G(z, c))] + lambda_ac CE(C(G(z, c)), c) + lambda_rec |G(z, c) - x|_1``;

where ``c`` is the pitch and (beyond the seed) the processing label, each with its own
classifier head and cross-entropy. Conditioning values are those of the real batch, so the
generator sees the data's distribution of pitches and labels.

Progressive growing (:meth:`ReverbSynthRecipe.schedule`): ``stable_steps`` at the first
resolution, then for each further stage ``transition_steps`` with the new stage fading in
(``alpha`` 0 -> 1, real images blended the same way) and ``stable_steps`` at it. The seed's
schedule is in images (800 k stable, batch 64); the presets here are in steps and the CPU one
is much shorter (see :data:`PRESETS`).

Data (:meth:`ReverbSynthRecipe.data`): the note set of :func:`rtgan.data.notes.build_notes`
(``--data`` is its directory), IF-Mel (:func:`rtgan.dsp.ifmel`) of each note, computed once and
kept. Before step 0 the generator's output range is fitted to the data (:meth:`initialise`):
the log magnitude's range over the first batches maps to tanh's [-1, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F

from ..dsp import ifmel
from ..losses import gradient_penalty
from .recipe import Batch, Nets, Recipe, TrainConfig
from .registry import make_config, register_recipe
from .reverbsynth import ReverbSynthConfig, ReverbSynthCritic, ReverbSynthGenerator

__all__ = ["ReverbSynthTrainConfig", "ReverbSynthRecipe", "auxiliary_classifier_loss", "NoteImages"]


def auxiliary_classifier_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Auxiliary-classifier loss of AC-GAN (Odena et al. 2017, eq. 3): ``-E[log P(C = c | X)]``.

    The cross-entropy of the class logits ``(batch, classes)`` against the class indices
    ``(batch,)``, averaged over the batch (natural log, nats).

    Raises:
        ValueError: shapes that do not match.
    """
    if logits.dim() != 2 or target.shape != (logits.shape[0],):
        raise ValueError(f"auxiliary classifier: logits (batch, classes) and targets (batch,), got "
                         f"{tuple(logits.shape)} and {tuple(target.shape)}")
    return F.cross_entropy(logits.float(), target.long())


@dataclass(frozen=True)
class ReverbSynthTrainConfig(TrainConfig):
    """ReverbSynth's training settings (defaults: the seed's; the presets shorten the growth).

    Attributes:
        model_preset: the generator/critic preset (:data:`rtgan.models.reverbsynth.PRESETS`).
        lr: Adam learning rate of both networks (8e-4, the seed's best of GANSynth's sweep).
        betas: Adam betas (0, 0.99) of the progressive GAN.
        gp_weight: WGAN-GP lambda (10).
        drift: weight of ``E[D(x)^2]`` (1e-3, Karras et al. 2018).
        ac_weight: weight of the auxiliary classifier losses (10, the seed's best).
        stable_steps, transition_steps: progressive schedule in generator steps per stage.
        ac_on_fake: also train the critic's classifiers on generated notes (Odena et al.'s form).
        output_margin: the data's log-magnitude range is mapped to ``[-m, m]`` and the IF's
            ``[-1, 1]`` to ``[-m, m]`` (GANSynth's 0.8): the silent floor, 40 % of the training
            pixels, then sits where tanh's slope is 0.36, not on its asymptote (at ``m = 1`` the
            first shipped generator had slope < 0.05 on 62 % of its output pixels).
        split_val: the note set's split used for validation.
        recon_weight: ``lambda_rec``, weight of the L1 term toward the real image of the same
            conditioning (module docstring; 0: the seed's loss).
        recon_warmup_steps: generator steps at the start trained on the L1 term alone (needs
            ``recon_weight`` > 0; 0: none).
        disc_warmup_steps: of those, the last this many also train the critic (its gradient does
            not yet reach the generator): its pitch and label classifiers learn the real notes and
            its score learns the regression's output before the generator is judged, so the first
            adversarial steps push toward the data, not along a random critic's gradient
            (at most ``recon_warmup_steps``; 0: none).
    """

    model: str = "reverbsynth"
    preset: str = "paper"
    model_preset: str = "paper"
    steps: int = 100000
    batch_size: int = 64
    segment_samples: int = 64000
    val_items: int = 32
    lr: float = 8e-4
    betas: tuple[float, float] = (0.0, 0.99)
    gp_weight: float = 10.0
    drift: float = 1e-3
    ac_weight: float = 10.0
    ac_on_fake: bool = False
    stable_steps: int = 12500
    transition_steps: int = 12500
    output_margin: float = 0.8
    split_val: str = "val"
    recon_weight: float = 0.0
    recon_warmup_steps: int = 0
    disc_warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.stable_steps < 1 or self.transition_steps < 0:
            raise ValueError(f"reverbsynth: stable_steps must be >= 1 and transition_steps >= 0, got "
                             f"{self.stable_steps}, {self.transition_steps}")
        if self.recon_warmup_steps < 0 or (self.recon_warmup_steps and not self.recon_weight > 0):
            raise ValueError(f"reverbsynth: recon_warmup_steps must be >= 0 and needs recon_weight > 0, got "
                             f"{self.recon_warmup_steps}, {self.recon_weight}")
        if not 0 <= self.disc_warmup_steps <= self.recon_warmup_steps:
            raise ValueError(f"reverbsynth: disc_warmup_steps must be in 0..recon_warmup_steps "
                             f"({self.recon_warmup_steps}), got {self.disc_warmup_steps}")
        if not 0.0 < self.output_margin <= 1.0:
            raise ValueError(f"reverbsynth: output_margin must be in (0, 1], got {self.output_margin!r}")
        for name in ("lr", "gp_weight", "drift", "ac_weight", "recon_weight"):
            v = getattr(self, name)
            if not (v >= 0.0 and v < float("inf")):
                raise ValueError(f"reverbsynth: {name} must be a finite number >= 0, got {v!r}")


#: training presets: ``paper`` (seed 004: batch 64, 12 500 steps = 800 k images per phase),
#: ``small`` (CPU: the small networks, batch 16, 300-step phases: full size after 3300 steps,
#: about 50 minutes on one thread of this VM, then 2.7 s a step), ``tiny`` (tests).
PRESETS = {
    "paper": ReverbSynthTrainConfig(),
    "small": ReverbSynthTrainConfig(preset="small", model_preset="small", steps=8000, batch_size=16,
                                    stable_steps=300, transition_steps=300, val_items=32, val_every=250,
                                    ckpt_every=250, num_workers=0),
    "tiny": ReverbSynthTrainConfig(preset="tiny", model_preset="tiny", steps=24, batch_size=4, segment_samples=1024,
                                   stable_steps=3, transition_steps=3, val_items=4, val_every=12, ckpt_every=12,
                                   log_every=4, num_workers=0),
}


class NoteImages(torch.utils.data.Dataset):
    """IF-Mel images of notes: ``(image (2, frames, n_mels), pitch index, label index)``.

    ``notes`` is a sequence of ``(audio (samples,), midi pitch, label index)``; notes whose
    pitch or label the model does not know are left out. Images are computed on first use
    and kept (a process-local cache).
    """

    def __init__(self, notes: Any, cfg: ReverbSynthConfig) -> None:
        self.notes, self.cfg = notes, cfg
        self._cache: dict[int, Batch] = {}

    def __len__(self) -> int:
        return len(self.notes)

    def __getitem__(self, i: int) -> Batch:
        if i not in self._cache:
            audio, pitch, label = self.notes[i]
            audio = torch.as_tensor(audio, dtype=torch.float32)
            n = self.cfg.samples
            audio = F.pad(audio, (0, max(0, n - audio.shape[-1])))[..., :n]
            image = ifmel(audio[None], self.cfg.ifmel_spec)[0].float()
            self._cache[i] = (image, torch.tensor(int(pitch) - self.cfg.pitch_min), torch.tensor(int(label)))
        return self._cache[i]


@register_recipe("reverbsynth")
class ReverbSynthRecipe(Recipe):
    """Progressive WGAN-GP + auxiliary classifiers (module docstring); networks ``generator`` and ``critic``."""

    config_cls: ClassVar[type[TrainConfig]] = ReverbSynthTrainConfig
    n_critic: ClassVar[int] = 1
    progress: ClassVar[tuple[str, ...]] = ("w_dist", "ac_pitch")

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self.model_cfg: ReverbSynthConfig = make_config("reverbsynth", cfg.model_preset)
        self._step = 0

    @classmethod
    def presets(cls) -> dict[str, TrainConfig]:
        return dict(PRESETS)

    # -- networks --------------------------------------------------------------------------
    def networks(self) -> Nets:
        return {"generator": ReverbSynthGenerator(self.model_cfg), "critic": ReverbSynthCritic(self.model_cfg)}

    def optimisers(self, nets: Nets) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        return {name: torch.optim.Adam(nets[name].parameters(), lr=c.lr, betas=tuple(c.betas))
                for name in ("generator", "critic")}

    # -- data ----------------------------------------------------------------------------------
    def data(self, corpus: Any) -> tuple[torch.utils.data.Dataset, Batch]:
        """Training images and the validation batch from the note set in ``corpus``.

        Raises:
            ValueError: no note set given, or a split without notes the model can render.
            FileNotFoundError: ``corpus`` holds no note set.
        """
        from ..data.notes import NoteDataset

        if corpus is None:
            raise ValueError("reverbsynth trains on a note set: give --data DIR (built by 'rtgan data notes')")
        labels = self.model_cfg.labels or ("dry",)
        sets = {}
        for split in ("train", self.cfg.split_val):
            ds = NoteDataset(corpus, split, labels=labels)
            if ds.sample_rate != self.model_cfg.sample_rate:
                raise ValueError(f"{corpus}: notes at {ds.sample_rate} Hz, reverbsynth ({self.cfg.model_preset}) "
                                 f"renders {self.model_cfg.sample_rate} Hz")
            keep = [i for i in range(len(ds)) if self.model_cfg.pitch_min <= _pitch_of(ds, i) <= self.model_cfg.pitch_max]
            if not keep:
                raise ValueError(f"{corpus}: no {split} notes in MIDI {self.model_cfg.pitch_min}.."
                                 f"{self.model_cfg.pitch_max} with labels {labels}")
            sets[split] = NoteImages(torch.utils.data.Subset(ds, keep), self.model_cfg)
        val = sets[self.cfg.split_val]
        n = min(self.cfg.val_items, len(val))
        idx = torch.linspace(0, len(val) - 1, n).round().long().unique().tolist()
        items = [val[i] for i in idx]
        return sets["train"], tuple(torch.stack(parts) for parts in zip(*items))

    def data_manifest(self, corpus: Any) -> Path:
        return Path(corpus) / "notes.jsonl"

    def sample_rate(self, nets: Nets) -> int:
        return self.model_cfg.sample_rate

    # -- schedule --------------------------------------------------------------------------
    def schedule(self, step: int) -> tuple[int, float]:
        """``(level, alpha)`` at generator step ``step``: active stages and the fade-in of the newest."""
        c, stages = self.cfg, self.model_cfg.stages
        if step < c.stable_steps or stages == 1:
            return 1, 1.0
        k, r = divmod(step - c.stable_steps, c.transition_steps + c.stable_steps)
        level = 2 + k
        if level > stages:
            return stages, 1.0
        alpha = 1.0 if c.transition_steps == 0 else min(1.0, r / c.transition_steps)
        return level, alpha

    def adversarial(self, step: int) -> bool:
        # the loop calls this first in every step: the progressive schedule follows it
        self._step = step
        return step >= self.cfg.recon_warmup_steps

    def critic_trains(self, step: int) -> bool:
        return step >= self.cfg.recon_warmup_steps - self.cfg.disc_warmup_steps

    def stage(self, step: int) -> str:
        level, alpha = self.schedule(step)
        frames, mels = self.model_cfg.resolution(level)
        return f"{super().stage(step)}, level {level} ({frames}x{mels})" + (" fading in" if alpha < 1.0 else "")

    # -- initialisation ------------------------------------------------------------------------
    def initialise(self, nets: Nets, next_batch: Callable[[], Batch]) -> dict | None:
        """Fit the generator's output range to the data: log magnitude over 4 batches -> [-m, m]
        and IF [-1, 1] -> [-m, m] (``m``: ``output_margin``)."""
        mags = torch.cat([next_batch()[0][:, 0].flatten() for _ in range(4)]).float()
        lo, hi = float(mags.min()), float(mags.max())
        m = self.cfg.output_margin
        g: ReverbSynthGenerator = nets["generator"]
        with torch.no_grad():
            g.norm_centre.copy_(torch.tensor([(hi + lo) / 2, 0.0]))
            g.norm_half.copy_(torch.tensor([max((hi - lo) / 2, 1e-3) / m, 1.0 / m]))
        return {"log_magnitude_range": [lo, hi], "if_range": [-1.0, 1.0], "output_margin": m}

    # -- the steps -----------------------------------------------------------------------------
    def _real(self, nets: Nets, image: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
        """Real images normalised and box-downsampled to ``level`` (blended like the fake while fading in)."""
        x = nets["generator"].normalise(image)
        factor = 2 ** (self.model_cfg.stages - level)
        if factor > 1:
            x = F.avg_pool2d(x, factor)
        if alpha < 1.0:
            x = alpha * x + (1.0 - alpha) * F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="nearest")
        return x

    def generate(self, nets: Nets, batch: Batch) -> Any:
        image, pitch, label = batch
        level, alpha = self.schedule(self._step)
        z = torch.randn(image.shape[0], self.model_cfg.z_dim, device=image.device)
        return nets["generator"](z, pitch, label, level, alpha)

    def _critic(self, nets: Nets):
        level, alpha = self.schedule(self._step)
        return lambda x: nets["critic"](x, level, alpha)

    def critic_loss(self, nets: Nets, batch: Batch, fake: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        image, pitch, label = batch
        level, alpha = self.schedule(step)
        real = self._real(nets, image, level, alpha)
        critic = self._critic(nets)
        s_r, p_r, l_r = critic(real)
        s_f, p_f, l_f = critic(fake)
        w = s_r.mean() - s_f.mean()
        gp = gradient_penalty(lambda x: critic(x)[0], real, fake, self.cfg.gp_weight)
        ac = auxiliary_classifier_loss(p_r, pitch)
        if self.model_cfg.labels:
            ac = ac + auxiliary_classifier_loss(l_r, label)
        if self.cfg.ac_on_fake:
            ac = ac + auxiliary_classifier_loss(p_f, pitch)
            if self.model_cfg.labels:
                ac = ac + auxiliary_classifier_loss(l_f, label)
        loss = -w + gp + self.cfg.drift * torch.mean(s_r.float() ** 2) + self.cfg.ac_weight * ac
        acc = float((p_r.argmax(1) == pitch).float().mean())
        return loss, {"w_dist": float(w.detach()), "gp": float(gp.detach()), "ac_critic": float(ac.detach()),
                      "ac_pitch_real": acc,
                      "level": float(level) + alpha - 1.0}

    def generator_loss(self, nets: Nets, batch: Batch, out: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        image, pitch, label = batch
        if step < self.cfg.recon_warmup_steps:  # the regression warm start: the L1 term alone
            recon = self._recon(nets, image, out, step)
            return self.cfg.recon_weight * recon, {"recon": float(recon.detach())}
        s_f, p_f, l_f = self._critic(nets)(out)
        ac = auxiliary_classifier_loss(p_f, pitch)
        if self.model_cfg.labels:
            ac = ac + auxiliary_classifier_loss(l_f, label)
        loss = -s_f.mean() + self.cfg.ac_weight * ac
        logs = {"g_adv": float(-s_f.mean().detach()), "ac_gen": float(ac.detach()),
                "ac_pitch": float((p_f.argmax(1) == pitch).float().mean())}
        if self.cfg.recon_weight:
            recon = self._recon(nets, image, out, step)
            loss = loss + self.cfg.recon_weight * recon
            logs["recon"] = float(recon.detach())
        return loss, logs

    def _recon(self, nets: Nets, image: torch.Tensor, out: torch.Tensor, step: int) -> torch.Tensor:
        """Mean ``|G(z, c) - x|`` against the real images at ``step``'s level (module docstring)."""
        level, alpha = self.schedule(step)
        return torch.mean(torch.abs(out.float() - self._real(nets, image, level, alpha).float()))

    def validate(self, nets: Nets, val: Batch) -> dict[str, float]:
        """Metrics on the validation notes, fixed latents (seed 0), at the current level.

        * ``loss``: mean L1 between the time-averaged log-magnitude profiles (over mel bins,
          network units) of each generated note and the real note of the same pitch and label
          (lower is better; it sees pitch, level and timbre, not phase);
        * ``pitch_acc_critic``: how often the critic's pitch classifier names the conditioning
          pitch of a generated note (a proxy until the torchcrepe evaluation);
        * ``ac_real``: the critic's pitch cross-entropy on the real notes (falls as its classifier learns);
        * ``w_dist``: the critic's Wasserstein estimate on these notes.
        """
        image, pitch, label = val
        level, alpha = self.schedule(self._step)
        g = torch.Generator().manual_seed(0)
        z = torch.randn(image.shape[0], self.model_cfg.z_dim, generator=g).to(image.device)
        fake = nets["generator"](z, pitch, label, level, alpha)
        real = self._real(nets, image, level, alpha)
        profile = lambda x: x[:, 0].mean(dim=1)  # noqa: E731  (batch, mels_l)
        s_r, p_r, _ = nets["critic"](real, level, alpha)
        s_f, p_f, _ = nets["critic"](fake, level, alpha)
        return {"loss": float(torch.mean(torch.abs(profile(fake) - profile(real)))),
                "pitch_acc_critic": float((p_f.argmax(1) == pitch).float().mean()),
                "ac_real": float(auxiliary_classifier_loss(p_r, pitch)),
                "w_dist": float(s_r.mean() - s_f.mean()), "level": float(level) + alpha - 1.0}


def _pitch_of(ds: Any, i: int) -> int:
    """MIDI pitch of item ``i`` of a note dataset, from its manifest row when it has one (no audio read)."""
    rows = getattr(ds, "rows", None)
    if rows is not None:
        return int(rows[i]["pitch"])
    return int(ds[i][1])
