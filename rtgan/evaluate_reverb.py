"""Evaluation of the neural reverbs (reverb-*) against their targets and a fitted Freeverb.

For each clip of a corpus split (music and speech, the dry sources of training): its first
``seconds`` s at the model's rate, levelled to the training items' RMS (-20 dBFS, at most 30 dB
of gain) and faded out over 10 ms, followed by the model's tail length of silence (and up
to a whole partition) so the reverb dies away; the target's
wet signal of it (:func:`rtgan.models.reverb_training.target_wet`; for a bank of rooms, the
room follows from the clip's samples as in validation, and a conditioned model is given that
room's RT60); the model's wet signal; and the baseline's. The model runs offline in float64:
its float32 offline form is one FFT of ~2^18 points whose rounding noise (about -120 dB)
fills the bands a clip leaves empty, where the MR-STFT's log term looks, while the float32
stream (FFTs of 512 points) matches the float64 result (measured: the same MR-STFT to 5
digits on speech clips).

Baseline (``freeverb-fit``): pedalboard's ``Reverb`` (Freeverb) at its default damping (0.5)
and width (1.0), wet only, its ``room_size`` fitted by bisection so that the T30 of its impulse
response equals the target room's, and its gain fitted so that its impulse response carries the
target's energy: the nearest Freeverb a user would reach by matching the decay time.

Metrics:

* ``mrstft``: multi-resolution STFT distance ``L_sc + L_mag`` (Yamamoto et al. 2020, eqs.
  2-4; :func:`rtgan.metrics.mrstft_distance`) of each wet signal to the target's, per clip
  (lower is better);
* decay per room: T30 and EDT (Schroeder backward integration, ISO 3382;
  :func:`rtgan.metrics.decay_times`, the -5..-35 dB slope whether or not the decay is straight) of the model's and the baseline's impulse responses
  against the target's, and the relative T30 error;
* conditioned models: RT60 tracking, the T30 of the model's impulse response at control
  values log-spaced over its range against the control (relative error).
"""
from __future__ import annotations

import dataclasses
import io
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .data.dataset import load_manifest
from .evaluate import CI_NOTE, confidence_interval
from .metrics import decay_time, decay_times, mrstft_distance
from .models.base import Generator

__all__ = ["BASELINE", "ReverbResult", "reverb_target", "fit_freeverb", "freeverb_fit_wet", "evaluate_reverb",
           "format_table", "check_reverb", "TRACKING_POINTS"]

#: the baseline's name in the tables
BASELINE = "freeverb-fit"
#: control values of the RT60 tracking figure (log-spaced over the model's range)
TRACKING_POINTS = 10


def check_reverb(model: Generator, label: str = "model") -> None:
    """Raise ``ValueError`` unless ``model`` is a reverb (:class:`rtgan.models.reverb.ReverbGenerator`)."""
    from .models.reverb import ReverbGenerator
    if not isinstance(model, ReverbGenerator):
        raise ValueError(f"{label}: {getattr(model, 'name', type(model).__name__)} is not a reverb model")


def reverb_target(model: Generator):
    """The :class:`~rtgan.models.reverb_training.ReverbTarget` a reverb was trained on: its
    checkpoint's ``train_config["target"]`` where it has one, else the model's registered
    target (:data:`rtgan.models.reverb_training.TARGETS`).

    Raises:
        ValueError: not a reverb, or no target known for it.
    """
    from .models.reverb_training import TARGETS, ReverbTarget
    check_reverb(model)
    stated = ((getattr(model, "metadata", None) or {}).get("train_config") or {}).get("target")
    if stated:
        return ReverbTarget(**stated)
    if model.name not in TARGETS:
        raise ValueError(f"{model.name}: no target in its metadata and none registered")
    return TARGETS[model.name]


def _freeverb_ir(room_size: float, sample_rate: int, seconds: float) -> np.ndarray:
    import pedalboard
    x = np.zeros((1, int(seconds * sample_rate)), np.float32)
    x[0, 0] = 1.0
    return pedalboard.Reverb(room_size=room_size, wet_level=1.0, dry_level=0.0)(x, sample_rate)[0]


def fit_freeverb(ir: np.ndarray, sample_rate: int, seconds: float | None = None, iterations: int = 20) -> dict:
    """The baseline's settings for a target impulse response ``ir`` ``(samples,)``.

    ``room_size`` by bisection on ``[0, 1]`` (Freeverb's T30 grows with it; pedalboard's
    defaults otherwise: damping 0.5, width 1.0) until the T30 of its response equals the
    target's, and ``gain`` so that its response has the target's energy. Returns ``{"room_size",
    "gain", "t30", "target_t30"}`` (s).

    A target shorter than Freeverb's shortest decay (about 0.5 s at room size 0) gets room size 0.

    Raises:
        ValueError: a target whose T30 cannot be measured.
    """
    target = decay_time(ir, sample_rate, "t30", max_nonlinearity=None)
    seconds = seconds or max(len(ir) / sample_rate, 2.0 * target)
    lo, hi = 0.0, 1.0
    t_lo = decay_time(_freeverb_ir(lo, sample_rate, seconds), sample_rate, "t30", max_nonlinearity=None)
    if target <= t_lo:
        room = 0.0  # shorter than Freeverb goes: its shortest decay
    else:
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            t = decay_time(_freeverb_ir(mid, sample_rate, seconds), sample_rate, "t30", max_nonlinearity=None)
            lo, hi = (mid, hi) if t < target else (lo, mid)
        room = 0.5 * (lo + hi)
    h = _freeverb_ir(room, sample_rate, len(ir) / sample_rate).astype(np.float64)
    gain = float(np.sqrt(np.sum(np.asarray(ir, np.float64) ** 2) / np.sum(h ** 2)))
    return {"room_size": room, "gain": gain, "t30": decay_time(gain * h, sample_rate, "t30", max_nonlinearity=None),
            "target_t30": target}


def freeverb_fit_wet(x: np.ndarray, sample_rate: int, fit: dict) -> np.ndarray:
    """The baseline's wet signal of a dry ``(samples,)`` signal (:func:`fit_freeverb`'s settings)."""
    import pedalboard
    r = pedalboard.Reverb(room_size=fit["room_size"], wet_level=1.0, dry_level=0.0)
    return fit["gain"] * r(np.ascontiguousarray(x, np.float32)[None], sample_rate)[0]


@dataclass
class ReverbResult:
    """What :func:`evaluate_reverb` measured.

    Attributes:
        table: ``domain ("all", "music", "speech") -> estimate (model label, BASELINE) ->
            {"mrstft": {"mean", "ci95", "std", "n"}}``.
        rooms: per target room: ``rt60`` (its label, the target's T30), ``target``, ``model``
            and ``baseline`` decay times ``{"edt", "t20", "t30"}``, ``t30_err`` per estimate
            (relative), and the baseline's fitted ``room_size`` and ``gain``.
        tracking: conditioned models: ``[{"rt60": control s, "t30": model's, "err": relative}]``.
        target: the target's one-line description and its fields.
        clips: per clip ``path``, ``domain``, ``room`` index and ``mrstft`` per estimate.
        example: dry / target / model / baseline audio of one music clip, for the picture.
        timing: seconds.
    """

    table: dict
    rooms: list[dict]
    tracking: list[dict]
    target: dict
    clips: list[dict]
    example: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The figures the README and the issue name: MR-STFT means, worst T30 error, tracking error."""
        out = {"mrstft": {k: v["mrstft"]["mean"] for k, v in self.table["all"].items()},
               "t30_err_max": {k: max(r["t30_err"][k] for r in self.rooms) for k in self.rooms[0]["t30_err"]}}
        if self.tracking:
            out["tracking_err_max"] = max(t["err"] for t in self.tracking)
        return out

    def to_dict(self) -> dict:
        return {"ci": CI_NOTE, "baseline": f"{BASELINE}: pedalboard.Reverb(damping=0.5, width=1.0), room_size "
                "fitted to the target's T30, gain to its energy", "summary": self.summary(),
                "table": self.table, "rooms": self.rooms, "tracking": self.tracking, "target": self.target,
                "timing": self.timing, "clips": self.clips}


def evaluate_reverb(model: Generator, corpus: str | Path, split: str = "test", label: str | None = None,
                    seconds: float = 4.0, max_clips: int | None = None, progress: bool = True) -> ReverbResult:
    """Score a reverb model and the fitted Freeverb against the model's target (module docstring).

    Args:
        model: a reverb (``reverb-*``); its target from :func:`reverb_target`.
        corpus: corpus directory with ``manifest.jsonl``.
        split: which clips (music and speech, manifest order; the first ``max_clips`` if given).
        label: the model's name in the tables (default: its registered name).
        seconds: dry seconds taken from the start of each clip (followed by the tail's silence).

    Raises:
        ValueError: not a reverb, a bad ``seconds``, or no clip in the split.
    """
    from .audio.io import resample
    from .models.reverb_training import ReverbTrainConfig, fade_out, simulate_rooms, target_impulse_response, target_wet

    t_start = time.perf_counter()
    check_reverb(model)
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    label = label or model.name
    target = reverb_target(model)
    cfg = model.config
    sr = int(cfg.sample_rate)
    item = ReverbTrainConfig()  # the training items' level
    rows = [r for r in load_manifest(Path(corpus)) if r["split"] == split]
    rows = rows[:max_clips] if max_clips is not None else rows
    if not rows:
        raise ValueError(f"no clips in the {split} split of {corpus}")

    # the target's rooms and the baseline fitted to each
    if target.kind == "rir":
        rooms = simulate_rooms(target, sr)
    else:
        ir = target_impulse_response(target, sr)
        rooms = [{"ir": ir, "rt60": decay_time(ir, sr, "t30", max_nonlinearity=None)}]
    model = model.eval()
    room_rows = []
    for room in rooms:
        fit = fit_freeverb(room["ir"], sr)
        with torch.no_grad():
            h = model.impulse_response(model.control(room["rt60"], 1) if cfg.conditioned else None)[0]
        hb = freeverb_fit_wet(np.r_[1.0, np.zeros(len(room["ir"]) - 1)], sr, fit)
        d = {"target": decay_times(room["ir"], sr, None), "model": decay_times(h.numpy(), sr, None),
             BASELINE: decay_times(hb, sr, None)}
        room_rows.append({"rt60": float(room["rt60"]), **d, "room_size": fit["room_size"], "gain": fit["gain"],
                          "t30_err": {k: abs(d[k]["t30"] - room["rt60"]) / room["rt60"] for k in ("model", BASELINE)},
                          **{k: room[k] for k in ("design_rt60", "dims_m", "absorption") if k in room}})
        room["fit"] = fit
    tracking = []
    if cfg.conditioned:
        for c in np.geomspace(cfg.rt60_min, cfg.rt60_max, TRACKING_POINTS):
            with torch.no_grad():
                h = model.impulse_response(model.control(float(c), 1))[0].numpy()
            t30 = decay_time(h, sr, "t30", max_nonlinearity=None)
            tracking.append({"rt60": float(c), "t30": t30, "err": abs(t30 - c) / c})

    import copy
    model64 = copy.deepcopy(model).double()
    it = rows
    if progress:
        from tqdm import tqdm
        it = tqdm(rows, desc=f"eval {split}", unit="clip", dynamic_ncols=True)
    clips, example = [], {}
    tail = cfg.taps
    for r in it:
        data = (Path(corpus) / r["path"]).read_bytes()
        x, file_sr = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
        x = resample(x.mean(axis=1), file_sr, sr)[: int(seconds * sr)]
        rms = float(np.sqrt(np.mean(x ** 2))) if len(x) else 0.0
        if len(x) < sr // 10 or rms < 1e-5:
            continue  # silent or shorter than 0.1 s: nothing to score
        x = x * min(10 ** (item.item_rms_dbfs / 20) / rms, 10 ** (item.item_max_gain_db / 20))
        x = np.concatenate([fade_out(x, sr), np.zeros(tail + (-len(x)) % cfg.partition)]).astype(np.float32)
        k = zlib.crc32(x.tobytes()) % len(rooms)
        room = rooms[k]
        y = target_wet(x, sr, target, room)
        with torch.no_grad():  # float64: see the module docstring
            est = model64(torch.from_numpy(x).double()[None, None],
                          rt60=room["rt60"] if cfg.conditioned else None)[0, 0].float().numpy()
        base = freeverb_fit_wet(x, sr, room["fit"])
        scores = {label: mrstft_distance(est, y), BASELINE: mrstft_distance(base, y)}
        clips.append({"path": r["path"], "domain": r.get("domain", ""), "room": k, "mrstft": scores})
        if not example and r.get("domain") == "music" and len(x) >= 3 * sr:
            example = {"path": r["path"], "dry": x, "target": y, label: est, BASELINE: base, "room": k}
    if not clips:
        raise ValueError(f"no scorable clip in the {split} split of {corpus}")
    table = {}
    for domain in ("all", "music", "speech"):
        sel = [c for c in clips if domain == "all" or c["domain"] == domain]
        if sel:
            table[domain] = {e: {"mrstft": confidence_interval([c["mrstft"][e] for c in sel])} for e in (label, BASELINE)}
    room_rows = [{**r, "model_label": label} for r in room_rows]
    return ReverbResult(table, room_rows, tracking, {"description": target.describe(), **dataclasses.asdict(target)},
                        clips, example, {"seconds": time.perf_counter() - t_start, "clips": len(clips)})


def format_table(result: ReverbResult) -> str:
    """Text tables: MR-STFT per domain, decay per room, tracking (conditioned models)."""
    lines = [f"target: {result.target['description']}", f"MR-STFT distance to the target's wet signal, lower is "
             f"better ({CI_NOTE})", f"{'':<14}" + "".join(f"{d:>22}" for d in result.table)]
    for est in next(iter(result.table.values())):
        cells = []
        for d in result.table:
            s = result.table[d][est]["mrstft"]
            ci = "–" if s["ci95"] is None else f"{s['ci95']:.3f}"
            cells.append(f"{s['mean']:.3f} ± {ci} (n={s['n']})")
        lines.append(f"{est:<14}" + "".join(f"{c:>22}" for c in cells))
    lines.append("decay (s): target T30 / model T30, EDT / baseline T30, EDT")
    for i, r in enumerate(result.rooms):
        m, b, t = r["model"], r[BASELINE], r["target"]
        lines.append(f"room {i:>2}: T30 {t['t30']:.2f} EDT {t['edt']:.2f} | model {m['t30']:.2f} {m['edt']:.2f} "
                     f"({100 * r['t30_err']['model']:.1f} %) | {BASELINE} {b['t30']:.2f} {b['edt']:.2f} "
                     f"({100 * r['t30_err'][BASELINE]:.1f} %, room_size {r['room_size']:.3f})")
    if result.tracking:
        lines.append("RT60 tracking: control -> model T30 (relative error)")
        lines.append("  " + ", ".join(f"{t['rt60']:.2f} -> {t['t30']:.2f} ({100 * t['err']:.1f} %)"
                                      for t in result.tracking))
    return "\n".join(lines)
