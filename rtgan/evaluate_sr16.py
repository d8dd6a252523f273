"""Held-out evaluation of the 16 kHz super-resolution models of seed 002 (Retzlöff, Fig. 3).

For each clip of a corpus split (48 kHz, measured bandwidth at least 8 kHz, as the sr16
recipes train on) and each ratio ``r`` among the models' (2 or 4), the pair is made exactly
as the sr16 recipes' validation makes it (:meth:`rtgan.models.sr16_training.SR16UNetRecipe.val_example`):

* ``y``: the clip resampled to 16 kHz (:func:`rtgan.audio.io.resample`) and cropped to whole
  frames;
* ``x``: ``y`` low-passed and decimated by ``r`` (by default :func:`scipy.signal.decimate`,
  the order-8 Chebyshev IIR run forwards and backwards, as Kuleshov et al. prepare their
  data; ``anti_alias="kaiser"`` for the recipes' other choice);
* ``spline``: the seed's "Spline" baseline, scipy's not-a-knot cubic spline through ``x``
  (:func:`rtgan.audio.degrade.spline_upsample`);
* each model of ratio ``r``: whole-file inference on ``x`` (:func:`rtgan.engine.offline`).

Metrics against ``y`` (:mod:`rtgan.metrics`, the recipes' validation settings): SNR in dB
and LSD (2048-point Hann frames, hop 512, log10 power; at 16 kHz these are Kuleshov et al.'s
frames, whose definition seed 002 Sec. IV adopts), and, for speech clips only, ViSQOL v3 in
its speech mode at 16 kHz (visqol-python's ``VisqolApi.create(mode="speech")``; the project's
:func:`rtgan.metrics.visqol` is audio mode at 48 kHz only). Statistics per domain (the
corpus's, and ``all``) and ratio: mean and sample standard deviation (``ddof=1``) over clips,
as seed 002's Fig. 3 reports them, plus the 95 % confidence half-width
(:func:`rtgan.evaluate.confidence_interval`).
"""
from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from . import metrics as _metrics
from .data.dataset import load_manifest
from .engine.overlap_save import offline
from .evaluate import confidence_interval
from .fileio import atomic_write_text
from .models.base import Generator

log = logging.getLogger(__name__)

__all__ = ["SAMPLE_RATE", "RATIOS", "SPLINE", "METRICS", "SR16Result", "check_sr16_model", "evaluate_sr16",
           "format_fig3", "write_json"]

#: Output rate (Hz) of the models and of the targets.
SAMPLE_RATE = 16000
#: The ratios seed 002 evaluates.
RATIOS = (2, 4)
#: Row label of the cubic-spline baseline.
SPLINE = "spline"
#: Metric keys in table order: SNR (dB), LSD (log10 units), ViSQOL speech-mode MOS-LQO.
METRICS = ("snr_db", "lsd", "visqol")
#: The domain ViSQOL's speech mode applies to.
SPEECH = "speech"
#: Corpus clips are read at this rate (the recipes' ``corpus_rate``).
CORPUS_RATE = 48000
STD_NOTE = "mean ± standard deviation over clips (ddof=1), as seed 002's Fig. 3"
_HEADS = {"snr_db": ("SNR dB", 2), "lsd": ("LSD", 3), "visqol": ("ViSQOL (speech)", 2)}



def check_sr16_model(model: Generator, label: str = "model") -> int:
    """The ratio ``r`` of a 16 kHz-output model reading ``16000 / r`` Hz, ``r`` in :data:`RATIOS`.

    Raises:
        ValueError: another output rate or ratio (one line, naming the model's rates).
    """
    rin, rout = int(model.sample_rate_in), int(model.sample_rate_out)
    ratio = model.rate_ratio
    if rout != SAMPLE_RATE or ratio.denominator != 1 or int(ratio) not in RATIOS:
        raise ValueError(f"{label}: the sr16 evaluation needs a model writing {SAMPLE_RATE} Hz from "
                         f"{' or '.join(str(SAMPLE_RATE // r) for r in RATIOS)} Hz (ratio "
                         f"{' or '.join(map(str, RATIOS))}), got {rin} Hz -> {rout} Hz")
    return int(ratio)


@dataclass
class SR16Result:
    """Per-domain, per-ratio statistics of the spline baseline and the models, and per-clip rows.

    Attributes:
        table: ``domain -> "r=R" -> {"clips": {"count", "seconds"}, label -> metric ->
            {"mean", "std", "ci95", "n"}}``; labels are :data:`SPLINE` then the models of ratio
            ``R`` in the order given; domains are the corpus's and ``all``. ``visqol`` is there for
            the speech domain only (when computed).
        clips: ``path``, ``domain``, ``source``, ``seconds`` and ``ratios: "r=R" -> label ->
            metric -> value``.
        models: ``label -> {"name", "ratio", "config"}``.
        ratios: the ratios evaluated, ascending.
        metrics: the metrics computed (``visqol`` only if ViSQOL ran).
        notes: lines worth printing under the tables (ViSQOL's mapping, or why it was skipped).
        timing: seconds in total and in ViSQOL, ViSQOL calls, clips.
        tonal: ``label ->`` :func:`rtgan.metrics.tonal_artifact` of each model (band-limited
            white noise in; the strongest narrow peak in the generated band, dB); empty when
            not computed.
    """

    table: dict[str, dict[str, dict]]
    clips: list[dict]
    models: dict[str, dict]
    ratios: tuple[int, ...]
    metrics: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    timing: dict = field(default_factory=dict)
    tonal: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"sample_rate": SAMPLE_RATE, "ratios": list(self.ratios), "metrics": list(self.metrics),
                "models": self.models, "statistics": STD_NOTE, "notes": self.notes, "table": self.table,
                "tonal": self.tonal,
                "timing": self.timing, "clips": self.clips}


def _recipe(ratio: int, anti_alias: str):
    """The sr16-unet recipe whose validation makes the pairs of ``ratio`` (its ``paper-rR`` frames)."""
    from .models.sr16_training import SR16TrainConfig, SR16UNetRecipe
    recipe = SR16UNetRecipe(SR16TrainConfig(preset=f"paper-r{ratio}", corpus_rate=CORPUS_RATE, anti_alias=anti_alias))
    if recipe.ratio != ratio or recipe.rate != SAMPLE_RATE:
        raise ValueError(f"sr16-unet's paper-r{ratio} preset is {recipe.rate} Hz at ratio {recipe.ratio}")
    return recipe


@torch.no_grad()
def evaluate_sr16(models: dict[str, Generator], corpus: str | Path, split: str = "test",
                  max_clips: int | None = None, visqol: bool = True, progress: bool = True,
                  anti_alias: str = "cheby1", min_bandwidth_hz: float = 8000.0, tonal: bool = True) -> SR16Result:
    """Seed 002's Fig. 3 on the ``split`` clips of ``corpus``: spline and each model, per ratio and domain.

    Clips: the manifest's rows of ``split`` at 48 kHz whose bandwidth is at least
    ``min_bandwidth_hz`` (the recipes' rule: a 16 kHz target needs its 8 kHz band), in manifest
    order, the first ``max_clips`` if given; multichannel clips are averaged to mono.

    Args:
        models: ``label -> generator``, each writing 16 kHz from ``16000 / r`` Hz, ``r`` 2 or 4.
        corpus: corpus directory with ``manifest.jsonl``.
        split: manifest split.
        max_clips: evaluate at most this many clips.
        visqol: ViSQOL in speech mode for the speech clips; skipped with a note (in
            ``result.notes``) when visqol-python is missing or has no speech mode.
        progress: a tqdm bar over clips.
        anti_alias: the recipes' low-pass before decimation, ``"cheby1"`` (their default) or
            ``"kaiser"``.
        min_bandwidth_hz: skip clips narrower than this (Hz).
        tonal: also measure each model's tonal figure (:func:`rtgan.metrics.tonal_artifact`,
            10 s of white noise at -20 dBFS, seed 0).

    Raises:
        ValueError: no model, a model of another rate or ratio, or no usable clip.
    """
    t_start = time.perf_counter()
    if not models:
        raise ValueError("evaluate_sr16: no model given")
    corpus = Path(corpus)
    ratio_of = {label: check_sr16_model(m, label) for label, m in models.items()}
    ratios = tuple(sorted(set(ratio_of.values())))
    recipes = {r: _recipe(r, anti_alias) for r in ratios}
    notes: list[str] = []
    use_visqol = False
    if visqol:
        try:
            _metrics._visqol_api("speech")
            mapping = _metrics.visqol_mapping("speech")
            use_visqol = True
            notes.append(f"ViSQOL v3 speech mode at {SAMPLE_RATE} Hz (visqol-python {_metrics.visqol_version()}, "
                         f"{mapping}), speech clips only")
        except (ImportError, ValueError) as e:
            notes.append(f"ViSQOL skipped: speech mode unavailable ({e})")
            log.warning("%s", notes[-1])
    metric_names = METRICS if use_visqol else tuple(m for m in METRICS if m != "visqol")
    rows = [r for r in load_manifest(corpus) if r["split"] == split and int(r["sample_rate"]) == CORPUS_RATE
            and float(r["bandwidth_hz"]) >= min_bandwidth_hz]
    if max_clips is not None:
        rows = rows[:max_clips]
    if not rows:
        raise ValueError(f"no {split} clips at {CORPUS_RATE} Hz with bandwidth >= {min_bandwidth_hz} Hz in {corpus}")
    devices = {}
    for label, m in models.items():
        m.eval()
        p = next(iter(m.parameters()), None)
        devices[label] = p.device if p is not None else torch.device("cpu")
    timing = {"visqol_seconds": 0.0, "visqol_calls": 0}

    def score(est: np.ndarray, y: np.ndarray, domain: str) -> dict[str, float]:
        out = {"snr_db": float(_metrics.snr(est, y)), "lsd": float(_metrics.lsd(est, y))}
        if use_visqol and domain == SPEECH:
            t0 = time.perf_counter()
            out["visqol"] = _metrics.visqol(est, y, SAMPLE_RATE, mode="speech")
            timing["visqol_seconds"] += time.perf_counter() - t0
            timing["visqol_calls"] += 1
        return out

    it = rows
    if progress:
        from tqdm import tqdm
        it = tqdm(rows, desc=f"eval sr16 {split}", unit="clip", dynamic_ncols=True)
    clips: list[dict] = []
    for r in it:
        clip, file_sr = sf.read(io.BytesIO((corpus / r["path"]).read_bytes()), dtype="float32", always_2d=True)
        if file_sr != CORPUS_RATE:
            log.warning("%s: %d Hz in the file but %d Hz in the manifest; skipped", r["path"], file_sr, CORPUS_RATE)
            continue
        clip = torch.from_numpy(np.ascontiguousarray(clip.mean(axis=1), dtype=np.float32))[None]
        row = {"path": r["path"], "domain": r["domain"], "source": r.get("source", ""),
               "seconds": clip.shape[-1] / CORPUS_RATE, "ratios": {}}
        for ratio in ratios:
            x, y, spline = recipes[ratio].val_example(clip)
            if y.shape[-1] == 0:
                break
            y_np = y[0].numpy()
            scores = {SPLINE: score(spline[0].numpy(), y_np, r["domain"])}
            for label, m in models.items():
                if ratio_of[label] != ratio:
                    continue
                out = offline(m, x.to(devices[label])[None])[0, 0].float().cpu().numpy()
                scores[label] = score(out, y_np, r["domain"])
            row["ratios"][f"r={ratio}"] = scores
        else:
            clips.append(row)
            continue
        log.warning("%s: too short for whole frames at %d Hz; skipped", r["path"], SAMPLE_RATE)
    if not clips:
        raise ValueError(f"no readable {split} clip at {CORPUS_RATE} Hz in {corpus}")

    table: dict[str, dict[str, dict]] = {}
    for domain in sorted({c["domain"] for c in clips}) + ["all"]:
        sel = [c for c in clips if domain in ("all", c["domain"])]
        table[domain] = {}
        for ratio in ratios:
            key = f"r={ratio}"
            t: dict = {"clips": {"count": len(sel), "seconds": float(sum(c["seconds"] for c in sel))}}
            for label in [SPLINE] + [lb for lb in models if ratio_of[lb] == ratio]:
                t[label] = {}
                for m in metric_names:
                    vals = [c["ratios"][key][label][m] for c in sel if m in c["ratios"][key][label]]
                    if vals:
                        t[label][m] = confidence_interval(vals)
            table[domain][key] = t
    info = {label: {"name": getattr(m, "name", None) or type(m).__name__, "ratio": ratio_of[label],
                    "config": _config_dict(m)} for label, m in models.items()}
    tonal_res = {label: _metrics.tonal_artifact(m) for label, m in models.items()} if tonal else {}
    timing["seconds"] = time.perf_counter() - t_start
    timing["clips"] = len(clips)
    return SR16Result(table, clips, info, ratios, metric_names, notes, timing, tonal_res)


def _config_dict(model) -> dict | None:
    cfg = getattr(model, "config", None)
    if cfg is None:
        return None
    from .checkpoint import config_to_dict
    try:
        return config_to_dict(cfg)
    except Exception:  # noqa: BLE001  (a config that does not serialise is only left out)
        return None


def _cell(stat: dict | None, digits: int) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    std = "–" if stat["std"] is None else f"{stat['std']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {std}"


def format_fig3(result: SR16Result) -> str:
    """Seed 002's Fig. 3 as markdown: one table per domain.

    Rows: ``spline (r=2)``, each model of ratio 2, ``spline (r=4)``, each model of ratio 4;
    columns: SNR dB, LSD (each ``mean ± std`` over clips) and ViSQOL (speech mode, speech
    clips only; ``–`` elsewhere or when not computed).
    """
    out = []
    for domain, by_ratio in result.table.items():
        any_t = next(iter(by_ratio.values()))
        out.append(f"{domain}: {any_t['clips']['count']} clips, {any_t['clips']['seconds'] / 60.0:.1f} minutes")
        out.append("")
        out.append("| model | r | " + " | ".join(_HEADS[m][0] for m in METRICS) + " |")
        out.append("|---|---|" + "---|" * len(METRICS))
        for key, t in by_ratio.items():
            for label, stats in t.items():
                if label == "clips":
                    continue
                cells = [_cell(stats.get(m), _HEADS[m][1]) for m in METRICS]
                out.append(f"| {label} | {key[2:]} | " + " | ".join(cells) + " |")
        out.append("")
    out.append(STD_NOTE)
    out.extend(result.notes)
    if result.tonal:
        out.append("")
        out.append("tonal figure (white noise at -20 dBFS decimated as the recipes do, through the model; the "
                   "strongest narrow peak in the generated band above its 1 kHz running median):")
        for label, t in result.tonal.items():
            lo, hi = t["band_hz"]
            out.append(f"  {label}: {t['peak_db']:.1f} dB at {t['freq_hz']:.0f} Hz "
                       f"(band {lo / 1000:.2f}-{hi / 1000:.2f} kHz)")
    return "\n".join(out)


def write_json(result: SR16Result, path: Path | str, extra: dict | None = None) -> None:
    """Write the tables, models and per-clip rows as JSON (atomically)."""
    atomic_write_text(Path(path), json.dumps({**(extra or {}), **result.to_dict()}, indent=2))
