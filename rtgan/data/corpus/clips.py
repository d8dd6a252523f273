"""Per-file work of the corpus build: the clip rule and the worker that turns one file into FLAC clips.

A :class:`Task` describes one source file; :func:`process_file` (run in the worker processes)
decodes it (or renders it, for ``music21-fluidsynth``), resamples, cuts it into clips by the
clip rule (:func:`clip_bounds`), drops silent clips, measures each clip and writes it as 16-bit
FLAC, and records the finished work so that a re-run can skip the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import soundfile as sf

from ...audio.io import resample
from ..common import load_mono
from ..midi.render import render_task_audio
from .measure import measure_bandwidth, measure_energy_bandwidth, rms_dbfs

__all__ = ["Task", "process_file", "clip_bounds", "ignore_sigint", "SILENCE_DBFS", "MIN_ONESHOT_SECONDS",
           "MIN_TAIL_SECONDS", "PIPELINE_VERSION", "CACHE_DIRNAME"]

#: Clips with an RMS level below this (dB re full scale 1.0) are dropped.
SILENCE_DBFS: float = -60.0
#: Shortest file kept as a single (one-shot) clip, seconds.
MIN_ONESHOT_SECONDS: float = 0.5
#: Shortest trailing remainder kept as a final clip, seconds.
MIN_TAIL_SECONDS: float = 1.0
#: Bump when the clip content or manifest fields change (invalidates caches).
PIPELINE_VERSION = 3
#: Folder under the corpus folder with the per-file records of finished work.
CACHE_DIRNAME = ".rtgan_cache"


def clip_bounds(num_samples: int, sample_rate: int, clip_seconds: float) -> list[tuple[int, int]]:
    """(start, length) in samples of every clip of a file, by the clip rule (see :mod:`rtgan.data.corpus`)."""
    clip_len = int(round(clip_seconds * sample_rate))
    if num_samples < int(round(MIN_ONESHOT_SECONDS * sample_rate)):
        return []
    if num_samples <= clip_len:
        return [(0, num_samples)]
    n_full = num_samples // clip_len
    bounds = [(i * clip_len, clip_len) for i in range(n_full)]
    rem = num_samples - n_full * clip_len
    if rem >= int(round(MIN_TAIL_SECONDS * sample_rate)):
        bounds.append((n_full * clip_len, rem))
    return bounds


@dataclass(frozen=True)
class Task:
    """One source file of the build: where it is, what it is, and where and how its clips go."""

    source: str
    package: str
    version: str
    license: str
    domain: str
    root: str            # extracted package root
    base: str            # source base inside the root (posix)
    rel: str             # file path relative to base (posix)
    out_stem: str        # output path stem relative to out_dir, without _NNN.flac
    split: str
    split_key: str
    out_dir: str
    sample_rate: int
    clip_seconds: float
    max_clips: int | None
    reuse_flacs: bool = True  # trust complete FLACs already on disk (same pipeline)
    render: str = ""          # music21-fluidsynth: JSON render settings; the worker renders the file

    @property
    def package_path(self) -> str:
        return str(PurePosixPath(self.base) / self.rel)

    def signature(self) -> str:
        d = {k: getattr(self, k) for k in ("source", "package", "version", "license", "domain", "base",
                                           "rel", "out_stem", "split", "split_key", "sample_rate",
                                           "clip_seconds", "max_clips")}
        d["pipeline"] = PIPELINE_VERSION
        if self.render:
            d["render"] = self.render
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    def record_path(self) -> Path:
        h = hashlib.sha1(f"{self.source}/{self.rel}".encode()).hexdigest()[:16]
        return Path(self.out_dir) / CACHE_DIRNAME / self.source / f"{h}.json"


def _flac_complete(path: Path, num_samples: int, sample_rate: int) -> bool:
    try:
        i = sf.info(str(path))
    except Exception:  # noqa: BLE001 - any unreadable file is "incomplete"
        return False
    return i.frames == num_samples and i.samplerate == sample_rate and i.channels == 1


def _write_flac_atomic(path: Path, x: np.ndarray, sample_rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        sf.write(str(tmp), x, sample_rate, format="FLAC", subtype="PCM_16")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def ignore_sigint() -> None:
    """Pool initializer: workers leave SIGINT (Ctrl-C) to the parent."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def process_file(task: Task) -> dict:
    """Worker: turn one source file into clips. Returns {"rows", "warnings", "status"}."""
    out_dir = Path(task.out_dir)
    sig = task.signature()
    rec_path = task.record_path()
    # 1) finished before with the same parameters -> reuse without decoding
    try:
        rec = json.loads(rec_path.read_text())
        if rec.get("signature") == sig and all((out_dir / r["path"]).exists() for r in rec["rows"]):
            # a file skipped as unreadable is still skipped (and warned about) on a re-run
            skipped = rec.get("status", "skipped" if rec.get("warnings") and not rec["rows"] else "done")
            return {"rows": rec["rows"], "warnings": rec.get("warnings", []),
                    "status": "skipped" if skipped == "skipped" else "cached"}
    except (OSError, ValueError, KeyError, TypeError):
        pass

    src_path = Path(task.root) / task.package_path
    warnings: list[str] = []
    rows: list[dict] = []
    max_seconds = None if task.max_clips is None else task.max_clips * task.clip_seconds
    try:
        if task.render:  # music21-fluidsynth: export MIDI, render with FluidSynth, decode
            mono, sr_in, channels = render_task_audio(
                src_path, task.sample_rate, max_seconds,
                cache_dir=out_dir / CACHE_DIRNAME / task.source)
        else:
            mono, sr_in, channels = load_mono(src_path, max_seconds)
    except Exception as e:  # noqa: BLE001 - malformed files are skipped, never fatal
        warnings.append(f"{task.source}: skipping unreadable file {task.package_path}: "
                        f"{type(e).__name__}: {e}")
        status = "skipped"
    else:
        y = resample(mono, sr_in, task.sample_rate)  # float64 in, float64 out
        y = np.clip(y, -1.0, 32767.0 / 32768.0).astype(np.float32)
        bounds = clip_bounds(y.shape[0], task.sample_rate, task.clip_seconds)
        if task.max_clips is not None:
            bounds = bounds[: task.max_clips]
        for idx, (start, length) in enumerate(bounds):
            seg = y[start:start + length]
            if rms_dbfs(seg) < SILENCE_DBFS:
                continue
            rel_out = f"{task.out_stem}_{idx:03d}.flac"
            dst = out_dir / rel_out
            if not (task.reuse_flacs and _flac_complete(dst, length, task.sample_rate)):
                _write_flac_atomic(dst, seg, task.sample_rate)
            rows.append({
                "path": rel_out,
                "source": task.source,
                "package": task.package,
                "package_version": task.version,
                "original_path": task.package_path,
                "license": task.license,
                "domain": task.domain,
                "split": task.split,
                "split_key": task.split_key,
                "start_seconds": round(start / task.sample_rate, 6),
                "duration_seconds": round(length / task.sample_rate, 6),
                "num_samples": int(length),
                "sample_rate": int(task.sample_rate),
                "original_sample_rate": int(sr_in),
                "original_channels": int(channels),
                "bandwidth_hz": measure_bandwidth(seg, task.sample_rate),
                "energy_bandwidth_hz": measure_energy_bandwidth(seg, task.sample_rate),
                "rms_dbfs": round(rms_dbfs(seg), 2),
            })
        status = "done"
    rec_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = rec_path.with_name(f".{rec_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"signature": sig, "rows": rows, "warnings": warnings, "status": status}))
    os.replace(tmp, rec_path)
    return {"rows": rows, "warnings": warnings, "status": status}
