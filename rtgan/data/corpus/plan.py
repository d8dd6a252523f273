"""Planning of the corpus build: list each source's files, give them splits, and make one task per file.

For ``size="small"`` a per-source audio budget picks the files (:data:`SMALL_BUDGET_SECONDS`,
:data:`SMALL_MAX_CLIPS_PER_FILE`). The opt-in ``music21-fluidsynth`` source is planned from
its pieces and programs instead of files (see :mod:`rtgan.data.midi`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

import soundfile as sf

from ..common import SPLITS, assign_splits, unit_hash
from ..midi.pieces import piece_files, resolve_pieces
from ..midi.render import render_settings
from ..sources import OPT_IN_SOURCES, Source, get_source
from .clips import Task, clip_bounds

__all__ = ["plan_tasks", "SMALL_BUDGET_SECONDS", "SMALL_MAX_CLIPS_PER_FILE"]

log = logging.getLogger(__name__)

#: Per-source audio budget (seconds of clips) per split for ``size="small"``.
SMALL_BUDGET_SECONDS: dict[str, float] = {"train": 24.0, "val": 8.0, "test": 8.0}
#: Max clips taken from one file for ``size="small"``.
SMALL_MAX_CLIPS_PER_FILE: int = 2


def _safe_name(rel: PurePosixPath) -> str:
    """Path (relative, posix) made safe for file names: keeps folders, replaces odd chars."""
    parts = [re.sub(r"[^A-Za-z0-9._-]+", "_", p).strip("_") or "_" for p in rel.with_suffix("").parts]
    return "/".join(parts)


def _list_files(src: Source, root: Path) -> list[PurePosixPath]:
    """The source's audio files below ``root / src.base``, relative to it, sorted."""
    base = root / src.base
    if not base.is_dir():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for fn in sorted(filenames):
            rel = PurePosixPath(Path(dirpath, fn).relative_to(base).as_posix())
            if src.matches(rel):
                out.append(rel)
    return sorted(out)


def _durations(src: Source, root: Path, files: list[PurePosixPath],
               warn: bool = False) -> tuple[dict[PurePosixPath, float], set[PurePosixPath]]:
    """Duration in seconds of every file (0 for unreadable files, logged if ``warn``), and the
    set of unreadable files."""
    out, unreadable = {}, set()
    for rel in files:
        try:
            info = sf.info(str(root / src.base / rel))
            out[rel] = info.frames / info.samplerate if info.samplerate > 0 else 0.0
        except Exception as e:  # noqa: BLE001 - malformed files are skipped, never fatal
            out[rel] = 0.0
            unreadable.add(rel)
            if warn:
                log.warning("%s: skipping unreadable file %s: %s: %s", src.name,
                            PurePosixPath(src.base) / rel, type(e).__name__, e)
    return out, unreadable


def _usable_seconds(duration: float, clip_seconds: float, max_clips: int | None = None) -> float:
    """Seconds of clips the clip rule makes from a file of ``duration`` seconds (before the silence test)."""
    sr = 1000
    bounds = clip_bounds(int(duration * sr), sr, clip_seconds)
    if max_clips is not None:
        bounds = bounds[:max_clips]
    return sum(n for _, n in bounds) / sr


def _small_selection(src: Source, files: list[PurePosixPath], split_of: dict[str, str],
                     durations: Mapping[PurePosixPath, float], clip_seconds: float) -> list[PurePosixPath]:
    """Pick files for ``size="small"``: per split, in hash order, until the audio budget is met."""
    order = sorted(files, key=lambda r: (unit_hash(f"small/{src.name}/{r}"), str(r)))
    used = {s: 0.0 for s in SPLITS}
    chosen = []
    for rel in order:
        split = split_of[src.split_key(rel)]
        if used[split] >= SMALL_BUDGET_SECONDS[split]:
            continue
        secs = _usable_seconds(durations[rel], clip_seconds, SMALL_MAX_CLIPS_PER_FILE)
        if secs <= 0:
            continue
        chosen.append(rel)
        used[split] += secs
        if all(used[s] >= SMALL_BUDGET_SECONDS[s] for s in SPLITS):
            break
    return sorted(chosen)


def plan_tasks(out_dir: Path, names: Sequence[str], roots: Mapping[str, Path], versions: Mapping[str, str],
          size: str, sample_rate: int, clip_seconds: float,
          reuse_flacs: bool = True, midi_pieces: Sequence[str] | None = None,
          midi_info: Mapping[str, str] | None = None) -> tuple[list[Task], dict[str, dict], int]:
    """The per-file tasks, per-source info, and the number of unreadable files that planning
    already skipped (and warned about)."""
    tasks: list[Task] = []
    info: dict[str, dict] = {}
    skipped_in_plan = 0
    for name in names:
        if name in OPT_IN_SOURCES:
            _plan_midi(tasks, info, out_dir, name, versions[name], size, sample_rate, clip_seconds,
                       reuse_flacs, midi_pieces, midi_info or {})
            continue
        src = get_source(name)
        root = Path(roots[name])
        files = _list_files(src, root)
        if not files:
            log.warning("%s: no audio files matched under %s", name, root / src.base)
        durations, unreadable = _durations(src, root, files, warn=(size == "small"))  # "full": workers warn
        weights: dict[str, float] = {}
        for rel in files:
            key = src.split_key(rel)
            weights[key] = weights.get(key, 0.0) + _usable_seconds(durations[rel], clip_seconds)
        split_of = assign_splits(weights.keys(), name, weights)
        if size == "small":
            files = _small_selection(src, files, split_of, durations, clip_seconds)
            # unreadable files warned about here never become tasks: count them as skipped
            skipped_in_plan += len(unreadable.difference(files))
        stems: dict[str, int] = {}
        for rel in files:
            key = src.split_key(rel)
            split = split_of[key]
            stem = f"{split}/{name}/{_safe_name(rel)}"
            if stem in stems:  # two paths that sanitise to the same name
                stem = f"{stem}-{hashlib.sha1(str(rel).encode()).hexdigest()[:8]}"
            stems[stem] = 1
            tasks.append(Task(
                source=name, package=src.package, version=versions[name], license=src.license_for(rel),
                domain=src.domain, root=str(root), base=src.base, rel=str(rel), out_stem=stem,
                split=split, split_key=key, out_dir=str(out_dir), sample_rate=int(sample_rate),
                clip_seconds=float(clip_seconds),
                max_clips=SMALL_MAX_CLIPS_PER_FILE if size == "small" else None, reuse_flacs=reuse_flacs))
        info[name] = {"package": src.package, "package_version": versions[name], "domain": src.domain,
                      "license": src.license, "num_files": len(files),
                      "split_keys": {s: sorted(k for k, v in split_of.items() if v == s) for s in SPLITS}}
    return tasks, info, skipped_in_plan


def _plan_midi(tasks: list[Task], info: dict[str, dict], out_dir: Path, name: str, version: str, size: str,
               sample_rate: int, clip_seconds: float, reuse_flacs: bool,
               pieces: Sequence[str] | None, extra: Mapping[str, str]) -> None:
    """Tasks of ``music21-fluidsynth``: one per (piece, GM program); see :mod:`rtgan.data.midi`."""
    src = get_source(name, opt_in=True)
    render = render_settings(sample_rate)
    items = resolve_pieces(pieces, size)
    stems: dict[str, int] = {}
    split_keys: dict[str, set[str]] = {s: set() for s in SPLITS}
    for root, piece, split in items:
        for rel in piece_files([piece]):
            key = src.split_key(rel)
            split_keys[split].add(key)
            stem = f"{split}/{name}/{_safe_name(rel)}"
            if stem in stems:
                stem = f"{stem}-{hashlib.sha1(f'{root}/{rel}'.encode()).hexdigest()[:8]}"
            stems[stem] = 1
            tasks.append(Task(
                source=name, package=src.package, version=version, license=src.license_for(rel),
                domain=src.domain, root=str(root), base=src.base, rel=str(rel), out_stem=stem,
                split=split, split_key=key, out_dir=str(out_dir), sample_rate=int(sample_rate),
                clip_seconds=float(clip_seconds),
                max_clips=SMALL_MAX_CLIPS_PER_FILE if size == "small" else None, reuse_flacs=reuse_flacs,
                render=render))
    info[name] = {"package": src.package, "package_version": version, "domain": src.domain,
                  "license": src.license, "num_files": sum(1 for t in tasks if t.source == name),
                  "num_pieces": len(items), "render": json.loads(render), **dict(extra),
                  "split_keys": {s: sorted(v) for s, v in split_keys.items()}}
