"""Training of the reverb models (:mod:`.reverb`): dry/wet pairs from stated targets, MR-STFT + HiFi-GAN.

Targets (:class:`ReverbTarget`, recorded in every checkpoint's ``train_config`` so anyone can
recreate them):

* ``freeverb``: pedalboard's ``Reverb`` (Freeverb: 8 damped combs and 4 all-passes per
  channel, Jezar 2000) at the stated ``room_size``, ``damping`` and ``width``, ``wet_level`` 1,
  ``dry_level`` 0, from silence, on a mono dry signal;
* ``rir``: room impulse responses of pyroomacoustics ``ShoeBox`` rooms (Scheibler et al.
  2018; image sources up to ``max_order`` plus ray tracing for the tail, no air absorption):
  ``rooms`` rooms whose design RT60s are log-spaced over ``rt60_min``..``rt60_max``, their
  dimensions drawn from ``room_seed`` (larger rooms for longer decays) and their wall
  absorption from Sabine's formula (``pyroomacoustics.inverse_sabine``), corrected once by the
  ratio of the measured T30 to the design value when they differ by more than 5 %; the wet response is
  the RIR from its direct arrival on, scaled so the direct path's peak is 1, with the first
  ``direct_ms`` zeroed (the engine adds the dry signal itself). Each room's label is its
  measured T30 (:func:`rtgan.metrics.decay_time`, the -5..-35 dB slope whether or not the
  decay is one straight line), not the design value.

A training item is a corpus clip (music or speech) of ``segment_samples`` whose last
``silence_samples`` are zeroed (after a 10 ms fade-out), so the loss also sees the tail die away, levelled to
``item_rms_dbfs``; the target is the stated reverb of that dry item from silence. The loss is
the multi-resolution STFT loss (Yamamoto et al. 2020, eqs. 1-4) with, once
``adv_start_step`` is reached, HiFi-GAN's MPD + MSD (Kong et al. 2020) as LSGAN with feature
matching (eqs. 2 and 4), through :func:`rtgan.losses.generator_loss`.
"""
from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch

from ..losses import LossWeights
from .discriminators import DiscriminatorConfig
from .recipe import Recipe, TrainConfig, tuples
from .registry import make_config, register_recipe
from .reverb import ReverbGenerator  # noqa: F401  (registers the models before their recipes)
from .sr_hifigan_training import HiFiGANAdversary

TARGET_KINDS = ("freeverb", "rir")


@dataclass(frozen=True)
class ReverbTarget:
    """What a reverb model is trained to reproduce (see the module docstring).

    Attributes:
        kind: ``"freeverb"`` or ``"rir"``.
        room_size, damping, width: pedalboard ``Reverb`` settings (``freeverb``).
        rooms: simulated rooms (``rir``); one for an anchor, a bank for the conditioned model.
        rt60_min, rt60_max: s, the design RT60 range of the rooms (log-spaced; one room: ``rt60_min``).
        room_seed: seed of the rooms' dimensions and source/microphone positions.
        max_order: image-source order before ray tracing takes over.
        rays: ray-tracing rays per room.
        direct_ms: ms after the direct arrival zeroed in the wet response.
        ir_seconds: length of the simulated or recorded impulse responses, s.

    Raises:
        ValueError: an unknown kind or a bad range.
    """

    kind: str = "freeverb"
    room_size: float = 0.5
    damping: float = 0.5
    width: float = 1.0
    rooms: int = 1
    rt60_min: float = 1.0
    rt60_max: float = 1.0
    room_seed: int = 0
    max_order: int = 12
    rays: int = 4000
    direct_ms: float = 2.0
    ir_seconds: float = 4.0

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ValueError(f"unknown reverb target {self.kind!r}; expected one of {TARGET_KINDS}")
        if self.rooms < 1 or not 0 < self.rt60_min <= self.rt60_max:
            raise ValueError("need rooms >= 1 and 0 < rt60_min <= rt60_max")

    def describe(self) -> str:
        """One line for README tables and metadata."""
        if self.kind == "freeverb":
            return (f"pedalboard.Reverb(room_size={self.room_size}, damping={self.damping}, width={self.width}, "
                    f"wet_level=1, dry_level=0)")
        return (f"{self.rooms} pyroomacoustics ShoeBox room(s), design RT60 {self.rt60_min:g}-{self.rt60_max:g} s, "
                f"seed {self.room_seed}, max_order {self.max_order} + ray tracing ({self.rays} rays)")


def fade_out(x: np.ndarray, sample_rate: int, ms: float = 10.0) -> np.ndarray:
    """Fade the end of ``x`` ``(samples,)`` out in place over ``ms`` (a raised-cosine half), so that a
    dry item cut short does not end in a click; returns ``x``."""
    n = min(len(x), int(ms * 1e-3 * sample_rate))
    if n:
        x[len(x) - n:] *= (0.5 + 0.5 * np.cos(np.pi * (np.arange(n) + 1) / n)).astype(x.dtype)
    return x


def freeverb(x: np.ndarray, sample_rate: int, target: ReverbTarget) -> np.ndarray:
    """``target``'s pedalboard ``Reverb`` (wet only, from silence) of a mono ``(samples,)`` float32 signal."""
    import pedalboard
    r = pedalboard.Reverb(room_size=target.room_size, damping=target.damping, width=target.width,
                          wet_level=1.0, dry_level=0.0)
    return r(np.ascontiguousarray(x, dtype=np.float32)[None], sample_rate)[0]


def simulate_rooms(target: ReverbTarget, sample_rate: int) -> list[dict]:
    """The ``rir`` target's rooms: ``[{"ir": (samples,) float32 wet response, "rt60": measured T30 s, ...}]``.

    Deterministic for a given target (its ``room_seed`` seeds the geometry and, per room,
    pyroomacoustics' ray tracing). Each room's dimensions scale with its
    design RT60 (about 4 x 3 x 2.5 m at 0.3 s to 20 x 15 x 8 m at 3 s, jittered +-15 %).
    """
    import pyroomacoustics as pra

    from ..metrics import decay_time
    rng = np.random.RandomState(target.room_seed)
    n = target.rooms
    design = (np.geomspace(target.rt60_min, target.rt60_max, n) if n > 1 else np.array([target.rt60_min]))
    out = []
    for i, rt in enumerate(design):
        # pyroomacoustics' ray tracing draws from its own generators (numpy's and libroom's
        # C++ one): seeded per room (in the loop below), the tail is the same in every run
        scale = (rt / 0.3) ** (math.log(5.0) / math.log(10.0))  # 0.3 s -> 1, 3 s -> 5
        dims = np.array([4.0, 3.0, 2.5]) * np.clip(scale, 1.0, 5.0) ** np.array([1.0, 1.0, 0.75])
        dims = dims * rng.uniform(0.85, 1.15, 3)
        src = dims * rng.uniform(0.2, 0.45, 3)
        mic = dims * rng.uniform(0.55, 0.8, 3)
        src[2], mic[2] = min(1.5, dims[2] - 0.5), min(1.2, dims[2] - 0.6)
        # Sabine's formula misses the simulated decay by up to ~25 %: one correction of the
        # absorption's design value by the measured/design ratio lands within a few per cent
        want = float(rt)
        for _ in range(2):
            seed = target.room_seed * 1000 + i
            pra.random.seed(numpy=seed, libroom=seed)
            wet, e_abs = _simulate(pra, dims, src, mic, want, target, sample_rate)
            t30 = decay_time(wet, sample_rate, "t30", max_nonlinearity=None)
            if abs(t30 - rt) <= 0.05 * rt:
                break
            want *= rt / t30
        out.append({"ir": wet.astype(np.float32), "rt60": t30,
                    "design_rt60": float(rt), "dims_m": [round(float(v), 3) for v in dims],
                    "absorption": float(e_abs), "source_m": src.round(3).tolist(), "mic_m": mic.round(3).tolist()})
    return out


def _simulate(pra, dims, src, mic, rt60: float, target: ReverbTarget, sample_rate: int) -> tuple[np.ndarray, float]:
    """One ShoeBox room whose Sabine design RT60 is ``rt60``: (wet response ``(ir_seconds * rate,)``, absorption)."""
    try:
        e_abs, order = pra.inverse_sabine(float(rt60), dims.tolist())
    except ValueError:  # a decay too short for this room: the walls cannot absorb more than all
        e_abs, order = 0.99, target.max_order
    room = pra.ShoeBox(dims.tolist(), fs=sample_rate, materials=pra.Material(float(e_abs)),
                       max_order=min(order, target.max_order), air_absorption=False, ray_tracing=True)
    room.set_ray_tracing(receiver_radius=0.5, n_rays=target.rays, energy_thres=1e-7)
    room.add_source(src.tolist())
    room.add_microphone(mic.tolist())
    room.compute_rir()
    h = np.asarray(room.rir[0][0], dtype=np.float64)
    d = int(np.argmax(np.abs(h)))
    wet = np.zeros(int(target.ir_seconds * sample_rate))
    tail = h[d:d + wet.size] / abs(h[d])
    wet[: tail.size] = tail
    wet[: int(round(target.direct_ms * 1e-3 * sample_rate))] = 0.0
    return wet, float(e_abs)


def target_wet(x: np.ndarray, sample_rate: int, target: ReverbTarget, room: dict | None = None) -> np.ndarray:
    """The target's wet signal for a dry ``(samples,)`` signal (same length; ``room`` from :func:`simulate_rooms`)."""
    if target.kind == "freeverb":
        return freeverb(x, sample_rate, target)
    from scipy.signal import fftconvolve
    return fftconvolve(np.asarray(x, np.float64), room["ir"].astype(np.float64))[: len(x)].astype(np.float32)


def target_impulse_response(target: ReverbTarget, sample_rate: int, room: dict | None = None) -> np.ndarray:
    """The target's wet impulse response ``(samples,)`` float32 (``ir_seconds`` long)."""
    if target.kind == "rir":
        return room["ir"]
    x = np.zeros(int(target.ir_seconds * sample_rate), np.float32)
    x[0] = 1.0
    return freeverb(x, sample_rate, target)


@dataclass(frozen=True)
class ReverbTrainConfig(TrainConfig):
    """A reverb model's training run (beside :class:`TrainConfig`'s fields).

    Attributes:
        target: what is reproduced (:class:`ReverbTarget`; stated in the checkpoint).
        silence_samples: zeros at the end of each item (the tail dies away in them).
        item_rms_dbfs: each dry item's RMS level in dBFS (at most ``item_max_gain_db`` of gain).
        lr, lr_taps, lr_disc, betas: AdamW learning rates of the generator's shaping
            parameters (log decay times, gains: large steps), of its free and early taps
            (small steps: the anchors start from the H1 estimate, which larger steps undo), and
            of the discriminators.
        weights: loss weights (:func:`rtgan.losses.generator_loss`): MR-STFT and the
            time-domain MSE (which pulls free taps onto the target's response), and once
            adversarial, LSGAN and feature matching.
        adversarial, adv_start_step: the HiFi-GAN discriminators, from that step on.
        disc_warmup_steps: the discriminators alone train for this many steps before
            ``adv_start_step`` (see :class:`~rtgan.models.sr_hifigan_training.HiFiGANAdversary`).
        discriminator: their widths.
        h1_items: models with free taps (the anchors) start from the H1 estimate of the
            target's response from this many training items (0: from the untrained shaping);
            see :meth:`ReverbRecipe.initialise`.
        h1_regularisation: the estimate's ``S_xx`` floor, relative to its mean (bins the dry
            items hardly excite are estimated towards zero rather than from rounding noise).
    """

    model: str = "reverb-freeverb"
    segment_samples: int = 96000
    batch_size: int = 4
    steps: int = 3000
    val_items: int = 16
    val_every: int = 100
    ckpt_every: int = 100
    target: ReverbTarget = field(default_factory=ReverbTarget)
    silence_samples: int = 43200
    item_rms_dbfs: float = -20.0
    item_max_gain_db: float = 30.0
    lr: float = 1e-2
    lr_taps: float = 1e-6
    lr_disc: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weights: LossWeights = LossWeights(adv=0.1, flat=0.0, time=100.0, feature_matching=0.2, stft=1.0)
    adversarial: bool = True
    adv_start_step: int = 1000
    disc_warmup_steps: int = 0
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig.small)
    h1_items: int = 64
    h1_regularisation: float = 1e-8

    def __post_init__(self) -> None:
        if not 0 <= self.silence_samples < self.segment_samples:
            raise ValueError(f"silence_samples must be in [0, segment_samples), got {self.silence_samples}")

    @classmethod
    def from_dict(cls, d: dict) -> "ReverbTrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``TypeError``."""
        d = tuples(d)
        d["target"] = ReverbTarget(**d.get("target", {}))
        d["weights"] = LossWeights(**d.get("weights", {}))
        d["discriminator"] = DiscriminatorConfig(**d.get("discriminator", {}))
        d["betas"] = tuple(d.get("betas", (0.8, 0.99)))
        return cls(**d)


#: each model's target
TARGETS = {
    "reverb-freeverb": ReverbTarget(kind="freeverb", room_size=0.6, damping=0.25, width=1.0),
    "reverb-rir": ReverbTarget(kind="rir", rooms=1, rt60_min=1.2, rt60_max=1.2, room_seed=1),
    "reverb-room": ReverbTarget(kind="rir", rooms=24, rt60_min=0.3, rt60_max=3.0, room_seed=2),
}


class ReverbRecipe(HiFiGANAdversary, Recipe):
    """Dry/wet pairs of the model's target (:data:`TARGETS`), MR-STFT, then HiFi-GAN MPD + MSD (LSGAN + FM).

    Examples are ``(x, y, rt60)``: ``x`` the dry item ``(1, samples)``, ``y`` its target wet
    signal, ``rt60`` ``(1,)`` the label of the room used (conditioned models train with it).
    Validation: the MR-STFT distance of the offline output to the target (``loss``), the
    model's T30 at each validation room's label against the room's (``rt60_err``, relative),
    and its mean T30 and EDT.
    """

    config_cls = ReverbTrainConfig
    progress = ("gen_total", "loss", "rt60_err")
    model_name = ""

    def __init__(self, cfg: ReverbTrainConfig) -> None:
        super().__init__(cfg)
        self.rate = int(make_config(cfg.model, cfg.preset).sample_rate)
        self._rooms: list[dict] | None = None
        self._target_rt60: float | None = None

    @classmethod
    def presets(cls) -> dict[str, ReverbTrainConfig]:
        """``tiny`` (seconds on a CPU: tests and CI) and ``live`` (the shipped models, a CPU run)."""
        t = TARGETS[cls.model_name]
        # a model of shaped noise alone (no free taps: reverb-room) cannot match a room's phase, and
        # a time-domain loss would only pull its level down: spectral and adversarial terms only
        extra = {} if make_config(cls.model_name, "live").free_taps else {
            "weights": dataclasses.replace(ReverbTrainConfig.weights, time=0.0)}
        tiny_target = dataclasses.replace(t, rooms=min(t.rooms, 3), rt60_min=min(t.rt60_min, 0.3),
                                          rt60_max=min(t.rt60_max, 0.6), max_order=3, rays=300, ir_seconds=0.1)
        return {
            "tiny": ReverbTrainConfig(model=cls.model_name, preset="tiny", steps=40, batch_size=2,
                                      segment_samples=4096, silence_samples=2048, val_items=2, val_every=20,
                                      ckpt_every=20, log_every=10, num_workers=0, lr=3e-2, adv_start_step=20,
                                      discriminator=DiscriminatorConfig.tiny(), target=tiny_target, h1_items=0,
                                      **extra),
            "live": ReverbTrainConfig(model=cls.model_name, preset="live", target=t, **extra),
        }

    # -- the targets ----------------------------------------------------------------------
    def rooms(self) -> list[dict]:
        """The target's rooms (``rir``: simulated once per process; ``freeverb``: one pseudo-room)."""
        if self._rooms is None:
            t = self.cfg.target
            if t.kind == "rir":
                self._rooms = simulate_rooms(t, self.rate)
            else:
                from ..metrics import decay_time
                ir = target_impulse_response(t, self.rate)
                self._rooms = [{"ir": ir, "rt60": decay_time(ir, self.rate, "t30", max_nonlinearity=None)}]
        return self._rooms

    def _item(self, clip: torch.Tensor, room_index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        x = clip[0].numpy().astype(np.float32).copy()
        if cfg.silence_samples:
            x[-cfg.silence_samples:] = 0.0
            fade_out(x[: len(x) - cfg.silence_samples], self.rate)
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        x *= min(10 ** (cfg.item_rms_dbfs / 20) / max(rms, 1e-12), 10 ** (cfg.item_max_gain_db / 20))
        room = self.rooms()[room_index]
        y = target_wet(x, self.rate, cfg.target, room)
        return (torch.from_numpy(x)[None], torch.from_numpy(np.ascontiguousarray(y, np.float32))[None],
                torch.tensor([room["rt60"]], dtype=torch.float32))

    def train_example(self, clip):
        return self._item(clip, int(torch.randint(0, len(self.rooms()), (1,))))

    def val_example(self, clip):
        # deterministic: the room follows from the clip's samples
        return self._item(clip, zlib.crc32(clip.numpy().tobytes()) % len(self.rooms()))

    # -- networks: the generator and HiFi-GAN's discriminators (HiFiGANAdversary) ----------
    def optimisers(self, nets):
        g = nets["generator"]
        taps = ("free", "early") if g.free is not None else ("free",)  # the anchors' h: small steps
        free = [p for n, p in g.named_parameters() if n in taps]
        shaped = [p for n, p in g.named_parameters() if n not in taps]
        groups = [{"params": shaped}] + ([{"params": free, "lr": self.cfg.lr_taps}] if free else [])
        opts = {"generator": torch.optim.AdamW(groups, lr=self.cfg.lr, betas=self.cfg.betas, weight_decay=0.0)}
        if "discriminator" in nets:
            opts["discriminator"] = torch.optim.AdamW(nets["discriminator"].parameters(), lr=self.cfg.lr_disc,
                                                      betas=self.cfg.betas, weight_decay=0.0)
        return opts

    def initialise(self, nets, next_batch):
        """Anchors (free taps): start ``h`` from the H1 estimate of the target's response.

        ``H1(f) = S_yx(f) / S_xx(f)`` (Bendat & Piersol, "Random data", Sec. 9.1: the
        least-squares frequency response from input and output spectra, the usual way to measure
        a system's response from programme material): ``S_yx = sum X* Y`` and ``S_xx = sum |X|^2``
        over ``h1_items`` training items, each dry item padded with silence and its target wet
        signal computed to the end of the tail, so the convolution is linear, not cut off. The
        ``taps`` first samples of its inverse FFT become ``h``, carried by the free taps (the
        shaped noise's gains are set to ``e^-30``, off). Training then goes on from there with
        the recipe's losses. Returns the estimate's figures for the run's metadata.
        """
        cfg = self.cfg
        g = nets["generator"]
        if g.free is None or cfg.h1_items <= 0:
            return None
        c = g.config
        room = self.rooms()[0]
        n_items, sxy, sxx = 0, None, None
        while n_items < cfg.h1_items:
            x = next_batch()[0].detach().cpu().numpy()[:, 0].astype(np.float64)
            for item in x[: cfg.h1_items - n_items]:
                xp = np.concatenate([item, np.zeros(max(len(room["ir"]), c.taps))])
                yp = target_wet(xp.astype(np.float32), self.rate, cfg.target, room).astype(np.float64)
                nfft = 1 << (len(xp) - 1).bit_length()
                xs, ys = np.fft.rfft(xp, nfft), np.fft.rfft(yp, nfft)
                if sxy is None:  # (every item has the segment's length: one FFT size)
                    sxy, sxx = np.zeros(len(xs), complex), np.zeros(len(xs))
                sxy += np.conj(xs) * ys
                sxx += np.abs(xs) ** 2
                n_items += 1
        h = np.fft.irfft(sxy / np.maximum(sxx, cfg.h1_regularisation * sxx.mean()), nfft)[: c.taps]
        with torch.no_grad():
            g.free.zero_()
            g.log_gain.fill_(-30.0)  # the shaped noise off: the free taps carry h (and its gradient is ~0)
            g.set_free_part(torch.from_numpy(h) - g.impulse_response()[0].double())
            err = float((g.impulse_response()[0].double() - torch.from_numpy(h)).norm() / np.linalg.norm(h))
        from ..metrics import decay_times
        return {"method": "H1", "items": n_items, "regularisation": cfg.h1_regularisation,
                "set_error": err, "decay_s": decay_times(h, self.rate, None)}

    def generate(self, nets, batch):
        g = nets["generator"]
        return g(batch[0], rt60=batch[2].reshape(-1) if g.config.conditioned else None)

    def validate(self, nets, val, batch: int = 4) -> dict[str, float]:
        """MR-STFT distance to the target (``loss``), relative T30 error over the validation rooms, T30, EDT."""
        from ..losses import multi_resolution_stft_loss
        from ..metrics import decay_times
        g = nets["generator"]
        dev = next(g.parameters()).device
        losses = []
        for i in range(0, val[0].shape[0], batch):
            x, y, rt = (t[i:i + batch].to(dev) for t in val)
            y_hat = g(x, rt60=rt.reshape(-1) if g.config.conditioned else None)
            sc, mag = multi_resolution_stft_loss(y_hat, y)
            losses.append(float(sc + mag) * x.shape[0])
        labels = sorted({float(v) for v in val[2].reshape(-1)})
        errs, t30s, edts = [], [], []
        for rt in labels:
            h = g.impulse_response(g.control(rt, 1) if g.config.conditioned else None)[0].cpu().numpy()
            d = decay_times(h, self.rate)
            t30s.append(d["t30"])
            edts.append(d["edt"])
            errs.append(abs(d["t30"] - rt) / rt)
        return {"loss": sum(losses) / val[0].shape[0], "rt60_err": _nanmean(errs), "t30": _nanmean(t30s),
                "edt": _nanmean(edts), "target_t30": float(np.mean(labels))}


def _nanmean(values: list[float]) -> float:
    """Mean of the finite values (NaN where a decay could not be measured at all)."""
    v = [x for x in values if np.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def _recipe(name: str) -> type:
    cls = type(f"ReverbRecipe_{name.replace('-', '_')}", (ReverbRecipe,), {"model_name": name, "__doc__": (
        f"{name}'s training: :class:`ReverbRecipe` on the target ``TARGETS[{name!r}]``.")})
    return register_recipe(name)(cls)


for _name in TARGETS:
    _recipe(_name)
