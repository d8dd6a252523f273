"""Held-out evaluation of super-resolution models against two baselines.

For each test clip ``y`` (full band, model rate) the band-limited input is
``x = degrade(y)`` with the evaluation degradation (by default decimation by 3 with
resample_poly's standard Kaiser window, a filter the training mix does not use), and
three estimates are scored with SNR and LSD (Alahi, Sifringer & Stegmüller 2020, Sec. V-B;
see :mod:`rtgan.metrics`):

* ``input``: the band-limited input itself;
* ``spline``: cubic-spline interpolation of ``y`` decimated by ``r`` (Kuleshov et al. 2017);
* ``model``: the generator on ``x`` (whole-file inference, :func:`rtgan.engine.offline`).

Scores are means over clips, per domain (music, speech).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .audio.degrade import DegradationConfig, decimate, degrade, spline_upsample
from .data.dataset import load_manifest
from .engine.overlap_save import offline
from .fileio import atomic_write_text
from .metrics import lsd, snr
from .models.base import Generator

log = logging.getLogger(__name__)

ESTIMATES = ("input", "spline", "model")


@dataclass
class EvalResult:
    """Per-domain mean SNR (dB) and LSD for each estimate, and per-clip rows."""

    table: dict[str, dict[str, dict[str, float]]]  # domain -> estimate -> {snr_db, lsd}
    clips: list[dict]
    example: dict[str, np.ndarray] | None = None

    def to_dict(self) -> dict:
        return {"table": self.table, "clips": self.clips}


def spline_ratio(model: Generator) -> int:
    """Decimation ratio of the spline baseline: model rate / (2 * input bandwidth)."""
    return max(2, int(round(model.sample_rate_in / (2.0 * model.config.input_bandwidth_hz))))


@torch.no_grad()
def evaluate(model: Generator, corpus: str | Path, split: str = "test",
             degradation: DegradationConfig = DegradationConfig(), min_bandwidth_hz: float = 16000.0,
             max_clips: int | None = None, progress: bool = True) -> EvalResult:
    """Score ``model`` and the baselines on the ``split`` clips of ``corpus``.

    Only clips at the model's rate whose measured bandwidth is at least
    ``min_bandwidth_hz`` are used (a target must have the band the model is asked to make).

    Raises:
        ValueError: no usable clip.
    """
    corpus = Path(corpus)
    sr = model.sample_rate_in
    rows = [r for r in load_manifest(corpus) if r["split"] == split and int(r["sample_rate"]) == sr
            and float(r["bandwidth_hz"]) >= min_bandwidth_hz]
    if max_clips is not None:
        rows = rows[:max_clips]
    if not rows:
        raise ValueError(f"no {split} clips at {sr} Hz with bandwidth >= {min_bandwidth_hz} Hz in {corpus}")
    ratio = spline_ratio(model)
    model = model.eval()
    it = rows
    if progress:
        from tqdm import tqdm
        it = tqdm(rows, desc=f"eval {split}", unit="clip", dynamic_ncols=True)
    clips, example, best_energy = [], None, -1.0
    for r in it:
        y, file_sr = sf.read(corpus / r["path"], dtype="float32", always_2d=True)
        y = y.mean(axis=1)
        if file_sr != sr:
            continue
        x = degrade(y, sr, degradation, rng=None).astype(np.float32)
        spline = spline_upsample(decimate(y, ratio), ratio)[: len(y)]
        if len(spline) < len(y):
            spline = np.pad(spline, (0, len(y) - len(spline)))
        out = offline(model, torch.from_numpy(x)[None, None])[0, 0].numpy()
        row = {"path": r["path"], "domain": r["domain"], "source": r["source"], "seconds": len(y) / sr}
        for name, est in (("input", x), ("spline", spline.astype(np.float32)), ("model", out)):
            row[name] = {"snr_db": float(snr(est, y)), "lsd": float(lsd(est, y))}
        clips.append(row)
        # the picture: the loudest music clip of at least 5 s (short one-shots show little)
        energy = float(np.mean(y ** 2)) + (1.0 if len(y) >= 5 * sr else 0.0)
        if r["domain"] == "music" and energy > best_energy:
            best_energy = energy
            example = {"input": x, "output": out, "target": y, "path": r["path"]}
    table: dict[str, dict[str, dict[str, float]]] = {}
    for domain in sorted({c["domain"] for c in clips}) + ["all"]:
        sel = [c for c in clips if domain in ("all", c["domain"])]
        table[domain] = {e: {m: float(np.mean([c[e][m] for c in sel])) for m in ("snr_db", "lsd")}
                         for e in ESTIMATES}
        table[domain]["clips"] = {"count": len(sel), "seconds": float(sum(c["seconds"] for c in sel))}
    return EvalResult(table, clips, example)


def format_table(result: EvalResult) -> str:
    """A plain-text (Markdown) table of the per-domain means."""
    lines = ["| domain | clips | minutes | input SNR dB | spline SNR dB | model SNR dB | input LSD | spline LSD | model LSD |",
             "|---|---|---|---|---|---|---|---|---|"]
    for domain, t in result.table.items():
        lines.append(
            f"| {domain} | {t['clips']['count']} | {t['clips']['seconds'] / 60:.1f} | "
            + " | ".join(f"{t[e]['snr_db']:.2f}" for e in ESTIMATES) + " | "
            + " | ".join(f"{t[e]['lsd']:.3f}" for e in ESTIMATES) + " |")
    return "\n".join(lines)


def write_json(result: EvalResult, path: Path, extra: dict | None = None) -> None:
    """Write the table and per-clip rows as JSON (atomically)."""
    atomic_write_text(path, json.dumps({**(extra or {}), **result.to_dict()}, indent=2))
