"""Held-out evaluation of super-resolution models against two baselines.

For each test clip ``y`` (full band, 48 kHz) and each named band-limiter of
:mod:`rtgan.audio.bandlimit` (``soxr`` by default, ``kaiser``, ``butter4``), the limiter gives
the model input ``x48`` (48 kHz, aligned with ``y``) and the 16 kHz signal ``x16``, and three
estimates are scored:

* ``input``: the band-limited input ``x48`` itself;
* ``spline``: cubic-spline interpolation of ``x16`` by 3 (Kuleshov et al. 2017), cropped or
  zero-padded to ``len(y)``;
* ``model``: the generator on ``x48`` (whole-file inference, :func:`rtgan.engine.offline`).

Metrics (:mod:`rtgan.metrics`): SNR (dB, higher is better) and LSD (lower is better) of
Alahi, Sifringer & Stegmüller (2020, Sec. V-B), and ViSQOL v3 audio-mode MOS-LQO (Chinen et
al. 2020; 1..5, higher is better). Per band-limiter and domain (music, speech, all) each
figure is a mean over clips with a 95 % confidence interval, ``mean ± 1.96 · s / sqrt(n)``
(``s`` the sample standard deviation over the ``n`` clips, ``ddof=1``; a normal
approximation; ``None`` for ``n < 2``).

The baselines' scores do not depend on the model: they are cached per (clip, limiter,
:data:`BASELINE_CACHE_VERSION`) in a JSON file (by default
``CORPUS/.rtgan_cache/eval_baselines.json``, keyed also by the clip file's SHA-1), so
evaluating another model only computes the model's scores. The evaluation also reports
the model's tonal-artifact figure (:func:`rtgan.metrics.tonal_artifact`).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from . import metrics as _metrics
from .audio.bandlimit import BAND_LIMITERS, DEFAULT_LIMITER, band_limit
from .audio.degrade import spline_upsample
from .data.dataset import load_manifest
from .engine.overlap_save import offline
from .fileio import atomic_write_text
from .models.base import Generator

log = logging.getLogger(__name__)

__all__ = ["ESTIMATES", "METRICS", "BASELINE_CACHE_VERSION", "EvalResult", "evaluate", "default_cache_path",
           "confidence_interval", "format_table", "format_tonal", "write_json"]

ESTIMATES = ("input", "spline", "model")
BASELINES = ("input", "spline")
#: Metric keys in the order tables show them: SNR (dB), LSD (log10 units), ViSQOL MOS-LQO.
METRICS = ("snr_db", "lsd", "visqol")
#: Version of the cached baseline scores: bump when a band-limiter, the spline baseline or a
#: metric's definition changes (ViSQOL scores are also keyed by visqol-python's version).
BASELINE_CACHE_VERSION = 1
#: Normal quantile of the two-sided 95 % confidence interval.
CI_Z = 1.96
#: Sample rate (Hz) of the evaluation: targets, model input and output.
SAMPLE_RATE = 48000
CI_NOTE = ("mean ± 95 % confidence half-width over clips, 1.96 · s / sqrt(n) "
           "(s: sample standard deviation, ddof=1; normal approximation)")
_LABELS = {"snr_db": ("SNR dB", 2), "lsd": ("LSD", 3), "visqol": ("ViSQOL", 2)}


@dataclass
class EvalResult:
    """Per-limiter, per-domain statistics, per-clip rows, the tonal figure and example clips.

    Attributes:
        table: ``limiter -> domain -> {"clips": {"count", "seconds", "minutes"},
            estimate -> metric -> {"mean", "ci95", "std", "n"}}``; domains are the corpus's
            (``music``, ``speech``) and ``all``; ``ci95`` is the half-width (see
            :func:`confidence_interval`).
        clips: one row per clip: ``path``, ``domain``, ``source``, ``seconds`` and
            ``limiters: limiter -> estimate -> metric -> value``.
        limiters: the band-limiters evaluated, in order.
        metrics: the metrics computed (``snr_db``, ``lsd`` and, unless disabled, ``visqol``).
        tonal: :func:`rtgan.metrics.tonal_artifact` of the model (default limiter), or None.
        examples: ``domain -> {"input", "output", "spline", "target", "path", "limiter"}``: the
            loudest clip of at least 5 s of each domain (else the loudest), with the default
            limiter, for spectrogram pictures (arrays, 48 kHz).
        timing: seconds spent in total, in ViSQOL, and counts of ViSQOL calls and cache hits.
    """

    table: dict[str, dict[str, dict]]
    clips: list[dict]
    limiters: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    tonal: dict | None = None
    examples: dict[str, dict] = field(default_factory=dict)
    timing: dict = field(default_factory=dict)

    @property
    def example(self) -> dict | None:
        """The music example (the one picture of earlier versions), or None."""
        return self.examples.get("music")

    def to_dict(self) -> dict:
        return {"limiters": {name: BAND_LIMITERS[name].description for name in self.limiters},
                "metrics": list(self.metrics), "ci": CI_NOTE, "table": self.table, "tonal": self.tonal,
                "timing": self.timing, "clips": self.clips}


def confidence_interval(values) -> dict:
    """Mean and 95 % confidence half-width of per-clip values.

    ``ci95 = 1.96 * std / sqrt(n)`` with ``std`` the sample standard deviation (``ddof=1``);
    ``std`` and ``ci95`` are ``None`` when ``n < 2`` (JSON has no NaN).

    Returns:
        ``{"mean", "ci95", "std", "n"}``.
    """
    v = np.asarray(values, dtype=np.float64)
    n = int(v.size)
    if n == 0:
        return {"mean": None, "ci95": None, "std": None, "n": 0}
    std = float(np.std(v, ddof=1)) if n > 1 else None
    return {"mean": float(np.mean(v)), "ci95": CI_Z * std / math.sqrt(n) if std is not None else None,
            "std": std, "n": n}


def default_cache_path(corpus: str | Path) -> Path:
    """Where baseline scores are cached by default: ``CORPUS/.rtgan_cache/eval_baselines.json``."""
    return Path(corpus) / ".rtgan_cache" / "eval_baselines.json"


class _BaselineCache:
    """The JSON cache of baseline scores: ``{"version": 1, "entries": {key: entry}}`` with
    ``key = "path|limiter|vN"`` and ``entry = {"sha1", "visqol_version", "input": {...},
    "spline": {...}}``. Saved atomically, merged with what is on disk at save time."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, dict] = {}
        self.dirty = False
        if path is not None:
            self.entries = self._read()

    def _read(self) -> dict[str, dict]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
            entries = data.get("entries", {})
            return entries if isinstance(entries, dict) else {}
        except (OSError, ValueError, AttributeError) as e:
            log.warning("ignoring unreadable eval cache %s (%s)", self.path, e)
            return {}

    @staticmethod
    def key(path: str, limiter: str) -> str:
        return f"{path}|{limiter}|v{BASELINE_CACHE_VERSION}"

    def get(self, key: str, sha1: str) -> dict:
        e = self.entries.get(key)
        return e if isinstance(e, dict) and e.get("sha1") == sha1 else {}

    def put(self, key: str, entry: dict) -> None:
        self.entries[key] = entry
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        merged = {**self._read(), **self.entries}
        atomic_write_text(self.path, json.dumps({"version": BASELINE_CACHE_VERSION, "entries": merged},
                                                sort_keys=True) + "\n")
        self.entries = merged
        self.dirty = False


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


@torch.no_grad()
def evaluate(model: Generator, corpus: str | Path, split: str = "test",
             limiters: tuple[str, ...] | list[str] = ("soxr", "kaiser", "butter4"), visqol: bool = True,
             min_bandwidth_hz: float = 16000.0, max_clips: int | None = None, progress: bool = True,
             cache: str | Path | bool | None = True, tonal: bool = True) -> EvalResult:
    """Score ``model`` and the baselines on the ``split`` clips of ``corpus``.

    Only clips at 48 kHz whose measured bandwidth is at least ``min_bandwidth_hz`` are used (a
    target must have the band the model is asked to make), in manifest order, the first
    ``max_clips`` of them if given. Multichannel clips are averaged to mono.

    Args:
        model: a 48 kHz -> 48 kHz super-resolution generator (put in eval mode).
        corpus: corpus directory (``manifest.jsonl`` with ``path``, ``split``, ``domain``,
            ``source``, ``sample_rate``, ``bandwidth_hz`` per row).
        split: manifest split to evaluate.
        limiters: names in :data:`rtgan.audio.bandlimit.BAND_LIMITERS`.
        visqol: also compute ViSQOL (needs visqol-python; ~0.1 s per second of audio and
            estimate, the baselines' only once thanks to the cache).
        min_bandwidth_hz: skip targets narrower than this (Hz).
        max_clips: evaluate at most this many clips.
        progress: show a tqdm progress bar over clips.
        cache: ``True``: cache baseline scores in :func:`default_cache_path`; a path: cache
            there; ``False``/``None``: no cache.
        tonal: also compute :func:`rtgan.metrics.tonal_artifact` with the default limiter.

    Returns:
        An :class:`EvalResult`.

    Raises:
        ValueError: no usable clip, an unknown limiter, no limiter, or a model whose rate is
            not 48 kHz.
        ImportError: ``visqol=True`` without visqol-python, or ``soxr`` without soxr.
    """
    t_start = time.perf_counter()
    corpus = Path(corpus)
    limiters = tuple(limiters)
    if not limiters:
        raise ValueError("evaluate: no band-limiter given")
    for name in limiters:
        if name not in BAND_LIMITERS:
            raise ValueError(f"unknown band-limiter {name!r}; known: {', '.join(BAND_LIMITERS)}")
    sr = int(model.sample_rate_in)
    if sr != SAMPLE_RATE or int(model.sample_rate_out) != SAMPLE_RATE:
        raise ValueError(f"evaluate needs a {SAMPLE_RATE} Hz -> {SAMPLE_RATE} Hz model, got "
                         f"{model.sample_rate_in} -> {model.sample_rate_out} Hz")
    metric_names = METRICS if visqol else tuple(m for m in METRICS if m != "visqol")
    vq_version = None
    if visqol:
        _metrics._visqol_api()  # fail early (ImportError with the install hint) and load the model once
        vq_version = _metrics.visqol_version()
    rows = [r for r in load_manifest(corpus) if r["split"] == split and int(r["sample_rate"]) == sr
            and float(r["bandwidth_hz"]) >= min_bandwidth_hz]
    if max_clips is not None:
        rows = rows[:max_clips]
    if not rows:
        raise ValueError(f"no {split} clips at {sr} Hz with bandwidth >= {min_bandwidth_hz} Hz in {corpus}")
    cache_path = default_cache_path(corpus) if cache is True else (Path(cache) if cache else None)
    store = _BaselineCache(cache_path)
    example_limiter = DEFAULT_LIMITER if DEFAULT_LIMITER in limiters else limiters[0]
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    model = model.eval()
    timing = {"visqol_seconds": 0.0, "visqol_calls": 0, "cache_hits": 0, "cache_misses": 0}

    def score(est: np.ndarray, y: np.ndarray, names) -> dict[str, float]:
        out = {}
        for m in names:
            if m == "snr_db":
                out[m] = float(_metrics.snr(est, y))
            elif m == "lsd":
                out[m] = float(_metrics.lsd(est, y))
            else:
                t0 = time.perf_counter()
                out[m] = float(_metrics.visqol(est, y, sr))
                timing["visqol_seconds"] += time.perf_counter() - t0
                timing["visqol_calls"] += 1
        return out

    it = rows
    if progress:
        from tqdm import tqdm
        it = tqdm(rows, desc=f"eval {split}", unit="clip", dynamic_ncols=True)
    clips: list[dict] = []
    examples: dict[str, dict] = {}
    best: dict[str, float] = {}
    for r in it:
        data = (corpus / r["path"]).read_bytes()
        sha1 = hashlib.sha1(data).hexdigest()
        y, file_sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        if file_sr != sr:
            log.warning("%s: %d Hz in the file but %d Hz in the manifest; skipped", r["path"], file_sr, sr)
            continue
        y = np.ascontiguousarray(y.mean(axis=1), dtype=np.float32)
        row = {"path": r["path"], "domain": r["domain"], "source": r.get("source", ""),
               "seconds": len(y) / sr, "limiters": {}}
        for lim in limiters:
            x48, x16 = band_limit(lim, y, sr)
            spline = _fit(spline_upsample(x16, 3), len(y))
            key = store.key(r["path"], lim)
            entry = store.get(key, sha1)
            fresh = {"sha1": sha1, **{k: v for k, v in entry.items() if k != "sha1"}}
            changed = False
            scores: dict[str, dict[str, float]] = {}
            for est_name, est in (("input", x48), ("spline", spline)):
                have = dict(entry.get(est_name, {}))
                need = [m for m in metric_names if m not in have
                        or (m == "visqol" and entry.get("visqol_version") != vq_version)]
                if need:
                    have.update(score(est, y, need))
                    fresh[est_name] = have
                    changed = True
                scores[est_name] = {m: have[m] for m in metric_names}
            if changed:
                if "visqol" in metric_names:
                    fresh["visqol_version"] = vq_version
                store.put(key, fresh)
                timing["cache_misses"] += 1
            else:
                timing["cache_hits"] += 1
            out = offline(model, torch.from_numpy(x48).to(device)[None, None])[0, 0].float().cpu().numpy()
            scores["model"] = score(out, y, metric_names)
            row["limiters"][lim] = scores
            if lim == example_limiter:
                # the pictures: the loudest clip of at least 5 s per domain (one-shots show little)
                energy = float(np.mean(y.astype(np.float64) ** 2)) + (1.0 if len(y) >= 5 * sr else 0.0)
                if energy > best.get(r["domain"], -1.0):
                    best[r["domain"]] = energy
                    examples[r["domain"]] = {"input": x48, "output": out, "spline": spline, "target": y,
                                             "path": r["path"], "limiter": lim}
        clips.append(row)
        store.save()
    if not clips:
        raise ValueError(f"no readable {split} clip at {sr} Hz in {corpus}")

    table: dict[str, dict[str, dict]] = {}
    for lim in limiters:
        table[lim] = {}
        for domain in sorted({c["domain"] for c in clips}) + ["all"]:
            sel = [c for c in clips if domain in ("all", c["domain"])]
            seconds = float(sum(c["seconds"] for c in sel))
            t = {"clips": {"count": len(sel), "seconds": seconds, "minutes": seconds / 60.0}}
            for e in ESTIMATES:
                t[e] = {m: confidence_interval([c["limiters"][lim][e][m] for c in sel]) for m in metric_names}
            table[lim][domain] = t
    tonal_res = _metrics.tonal_artifact(model, limiter=example_limiter) if tonal else None
    timing["seconds"] = time.perf_counter() - t_start
    timing["clips"] = len(clips)
    return EvalResult(table, clips, limiters, metric_names, tonal_res, examples, timing)


def _cell(stat: dict, digits: int) -> str:
    if stat["mean"] is None:
        return "–"
    ci = "–" if stat["ci95"] is None else f"{stat['ci95']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {ci}"


def format_table(result: EvalResult) -> str:
    """Markdown tables of the per-domain statistics, one per band-limiter.

    Rows: domains (and ``all``); columns: clips, minutes, then input/spline/model for each
    metric (SNR dB, LSD, ViSQOL), each cell ``mean ± ci95`` (see :data:`CI_NOTE`).
    """
    out = []
    for lim in result.limiters:
        heads = [f"{e} {_LABELS[m][0]}" for m in result.metrics for e in ESTIMATES]
        out.append(f"band-limiter `{lim}`: {BAND_LIMITERS[lim].description}")
        out.append("")
        out.append("| domain | clips | minutes | " + " | ".join(heads) + " |")
        out.append("|---|---|---|" + "---|" * len(heads))
        for domain, t in result.table[lim].items():
            cells = [_cell(t[e][m], _LABELS[m][1]) for m in result.metrics for e in ESTIMATES]
            out.append(f"| {domain} | {t['clips']['count']} | {t['clips']['minutes']:.1f} | "
                       + " | ".join(cells) + " |")
        out.append("")
    out.append(CI_NOTE)
    return "\n".join(out)


def format_tonal(tonal: dict | None) -> str:
    """One line: the model's tonal-artifact figure (see :func:`rtgan.metrics.tonal_artifact`)."""
    if not tonal:
        return "tonal artifact: not measured"
    return (f"tonal artifact (band-limited white noise, {tonal['limiter']}): {tonal['peak_db']:.1f} dB above the "
            f"local median at {tonal['freq_hz']:.0f} Hz (global: {tonal['global_peak_db']:.1f} dB at "
            f"{tonal['global_freq_hz']:.0f} Hz; input: {tonal['input_peak_db']:.1f} dB local, "
            f"{tonal['input_global_peak_db']:.1f} dB global)")


def write_json(result: EvalResult, path: Path, extra: dict | None = None) -> None:
    """Write the tables, tonal figure and per-clip rows as JSON (atomically)."""
    atomic_write_text(path, json.dumps({**(extra or {}), **result.to_dict()}, indent=2))
