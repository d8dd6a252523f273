"""Build the offline real-audio corpus from audio shipped in Debian packages.

Pipeline (see :func:`build_corpus`):

1. For every source (:mod:`rtgan.data.sources`) find ``<package>_*.deb`` in the
   deb cache (``apt-get download`` it when missing) and extract it once with
   ``dpkg -x`` into ``<cache>/extracted/<package>_<version>/``.
2. List the source's audio files and give every *split key* (track, kit,
   speaker, scene) a split with :func:`~rtgan.data.common.assign_splits`, weighted by the
   seconds of audio each key contributes (~80/10/10 of the audio).
3. For every file (in up to two worker processes): decode with soundfile, mix
   to mono (mean of the channels), resample to ``sample_rate`` with
   :func:`scipy.signal.resample_poly` (filter: see :func:`~rtgan.audio.io.resample`), cut
   into clips of ``clip_seconds``, drop digital silence, measure the
   bandwidth, and write 16-bit FLAC clips to
   ``out_dir/<split>/<source>/<path-below-source-base>_<index>.flac``.
4. Write ``manifest.jsonl`` (one JSON object per clip, sorted) and
   ``corpus.json`` (build parameters, statistics, manifest sha256).

The opt-in source ``music21-fluidsynth`` (``with_midi=True``) has no .deb:
its "files" are (score, GM program) pairs that step 3 first renders with
FluidSynth into a temporary WAV (see :mod:`rtgan.data.midi`).

The steps live in submodules: :mod:`~rtgan.data.corpus.debs` (step 1),
:mod:`~rtgan.data.corpus.plan` (step 2), :mod:`~rtgan.data.corpus.clips` and
:mod:`~rtgan.data.corpus.measure` (step 3); this module runs them and writes the manifest
(step 4). Splits come from :mod:`rtgan.data.common`.

Clip rule: a file of ``D`` seconds gives ``floor(D / clip_seconds)`` full clips
plus one shorter final clip if the remainder is >= 1 s; a file shorter than
one clip is kept as a single clip if ``D >= 0.5 s`` (short one-shot samples).
Clips whose RMS is below -60 dBFS (full scale = 1.0) are skipped as silence.

Re-runs are incremental: clips are written to a temporary name and renamed,
so a FLAC that exists is complete; a per-file record of finished work under
``out_dir/.rtgan_cache/`` lets a re-run skip decoding entirely, and the
manifest of a re-run is byte-identical. Clips of a previous build with other
settings that the new manifest does not list are deleted (``prune``).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
from pathlib import Path
from typing import Mapping, Sequence

from ...audio.io import RESAMPLE_PASSBAND, RESAMPLE_STOPBAND_DB
from ..common import SPLIT_FRACTIONS, SPLITS
from ..midi.tools import check_tools
from ..sources import DEFAULT_SOURCES, OPT_IN_SOURCES, SOURCES, get_source
from .clips import PIPELINE_VERSION, SILENCE_DBFS, ignore_sigint, process_file
from .debs import cache_usage, default_cache_dir, ensure_package_root, root_version
from .measure import BANDWIDTH_ENERGY_FRACTION, BANDWIDTH_FLOOR_DB, BANDWIDTH_REL_DB
from .plan import SMALL_BUDGET_SECONDS, plan_tasks

__all__ = ["build_corpus", "manifest_hash", "build_summary"]

log = logging.getLogger(__name__)


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def build_summary(out_dir: Path | str, cache_dir: Path | str | None = None,
                  debs_dir: Path | str | None = None) -> str:
    """The lines ``rtgan data build`` prints at the end: manifest, file counts, and where the
    download cache is and how big it is.

    Args:
        out_dir: the corpus folder (its ``corpus.json`` holds the counts).
        cache_dir: the cache the build used (default :func:`~rtgan.data.corpus.debs.default_cache_dir`).
        debs_dir: the ``--debs`` folder, when it is not ``<cache_dir>/debs``.
    """
    out_dir = Path(out_dir)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    meta = json.loads((out_dir / "corpus.json").read_text())
    files = meta.get("files", {})
    skipped = files.get("skipped", 0)
    lines = [f"corpus manifest: {out_dir / meta.get('manifest', 'manifest.jsonl')} ({meta['num_clips']} clips, "
             f"{meta['total_seconds'] / 3600:.2f} h)",
             f"files: {files.get('done', 0)} decoded, {files.get('cached', 0)} cached from an earlier build, "
             f"{skipped} skipped" + (" (unreadable: see the warnings above)" if skipped else "")]
    where = (f"download cache: {cache_dir}, {_gb(cache_usage(cache_dir))} (.deb files and extracted packages, "
             "reused by the next build; delete it to free the space, or put it elsewhere with --cache-dir or "
             "$RTGAN_CACHE_DIR)")
    lines.append(where)
    if debs_dir is not None:
        debs_dir = Path(debs_dir)
        if not debs_dir.resolve().is_relative_to(cache_dir.resolve()):
            lines.append(f".deb files: {debs_dir}, {_gb(cache_usage(debs_dir))}")
    return "\n".join(lines)


def manifest_hash(path: Path | str) -> str:
    """sha256 hex digest of the bytes of a manifest file (or any file): :func:`rtgan.data.common.file_sha256`."""
    from ..common import file_sha256
    return file_sha256(path)


def _prune(out_dir: Path, names: Sequence[str], keep: set[str]) -> int:
    """Delete ``<split>/<source>/**/*.flac`` of the built sources that the manifest does not list."""
    removed = 0
    for split in SPLITS:
        for name in names:
            d = out_dir / split / name
            if not d.is_dir():
                continue
            for p in sorted(d.rglob("*.flac")):
                if p.relative_to(out_dir).as_posix() not in keep:
                    p.unlink()
                    removed += 1
    if removed:
        log.info("removed %d clips left over from an earlier build with other settings", removed)
    return removed


def build_corpus(out_dir: Path, size: str = "small", sample_rate: int = 48000, clip_seconds: float = 10.0,
                 debs_dir: Path | None = None, sources: list[str] | None = None, progress: bool = True,
                 *, roots: Mapping[str, Path] | None = None, cache_dir: Path | None = None,
                 workers: int = 2, prune: bool = True, with_midi: bool = False,
                 midi_pieces: Sequence[str] | None = None) -> Path:
    """Build (or update) the corpus in ``out_dir`` and return the manifest path.

    Args:
        out_dir: output folder; gets ``<split>/<source>/...flac``,
            ``manifest.jsonl``, ``corpus.json`` and a ``.rtgan_cache/`` folder.
        size: ``"small"`` (per source and split a small audio budget:
            ~24 s train, ~8 s val, ~8 s test, at most 2 clips per file; a few
            minutes in all) or ``"full"`` (every file, every clip).
        sample_rate: output sample rate in Hz (all clips are mono 16-bit FLAC).
        clip_seconds: clip length in seconds (see the module docstring for
            the tail / one-shot / silence rules).
        debs_dir: folder with ``<package>_*.deb`` files (default
            ``<cache>/debs``); missing packages are fetched with
            ``apt-get download``.
        sources: source names (default: all of
            :data:`rtgan.data.sources.DEFAULT_SOURCES`, or the keys of
            ``roots`` when ``roots`` is given).
        progress: show a tqdm progress bar over files.
        roots: ``{source_name: extracted_package_root}``; such sources use
            the given folder (laid out like the package) instead of a .deb,
            e.g. for tests. The package version is read from the folder's
            extraction marker, else ``"unknown"``.
        cache_dir: cache folder for debs and extracted packages (default
            :func:`~rtgan.data.corpus.debs.default_cache_dir`).
        workers: worker processes (default 2); ``<= 1`` runs in-process.
        prune: delete FLAC clips of the built sources that are not in the new
            manifest (left over from a build with other settings).
        with_midi: also build the opt-in ``music21-fluidsynth`` source
            (music21's corpus rendered with FluidSynth, see
            :mod:`rtgan.data.midi`; needs Debian's ``fluidsynth`` and
            ``fluid-soundfont-gm`` and the Python packages ``music21`` and
            ``mido``). Off by default: default builds are unchanged. Naming
            that source in ``sources`` without ``with_midi`` raises
            NotImplementedError.
        midi_pieces: with ``with_midi``, render these scores instead of the
            default selection (paths relative to music21's corpus folder, or
            score/MIDI files anywhere); every given piece is used for both
            sizes.

    Returns:
        Path of ``out_dir/manifest.jsonl``.

    Manifest fields (one JSON object per clip, sorted by source order,
    original path and start): ``path`` (relative to ``out_dir``), ``source``,
    ``package``, ``package_version``, ``original_path`` (inside the
    package), ``license``, ``domain``, ``split``, ``split_key``,
    ``start_seconds`` and ``duration_seconds`` (of the clip, in the
    original file's timeline), ``num_samples`` (clip length at
    ``sample_rate``), ``sample_rate``, ``original_sample_rate``,
    ``original_channels``, ``bandwidth_hz`` (see :func:`~rtgan.data.corpus.measure.measure_bandwidth`:
    highest frequency whose smoothed Welch PSD is within 60 dB of the PSD
    maximum, i.e. where the clip's content ends), ``energy_bandwidth_hz``
    (see :func:`~rtgan.data.corpus.measure.measure_energy_bandwidth`: frequency below which 99.9% of
    the spectral energy lies) and ``rms_dbfs`` (clip RMS, dB re full scale).
    """
    if size not in ("small", "full"):
        raise ValueError(f"size must be 'small' or 'full', not {size!r}")
    if sample_rate <= 0 or clip_seconds <= 0:
        raise ValueError("sample_rate and clip_seconds must be positive")
    out_dir = Path(out_dir)
    roots = {k: Path(v) for k, v in (roots or {}).items()}
    if sources is None:
        names = list(roots) if roots else list(DEFAULT_SOURCES)
    else:
        names = list(dict.fromkeys(sources))
    midi_names = [n for n in OPT_IN_SOURCES if with_midi]
    names += [n for n in midi_names if n not in names]
    for n in names:
        get_source(n, opt_in=with_midi)  # validates (KeyError / NotImplementedError)
    order = {n: i for i, n in enumerate([*SOURCES, *OPT_IN_SOURCES])}
    names.sort(key=lambda n: order[n])

    resolved: dict[str, Path] = {}
    versions: dict[str, str] = {}
    midi_info: dict[str, str] = {}
    if any(n in OPT_IN_SOURCES for n in names):  # fail before any work if fluidsynth & co. are missing
        midi_info = check_tools()
    for n in names:
        if n in OPT_IN_SOURCES:
            resolved[n], versions[n] = Path(), midi_info["music21_version"]
        elif n in roots:
            resolved[n], versions[n] = roots[n], root_version(roots[n])
        else:
            resolved[n], versions[n] = ensure_package_root(get_source(n).package, debs_dir, cache_dir)

    out_dir.mkdir(parents=True, exist_ok=True)
    # FLACs on disk are reused only if the last finished build made them the same way
    # (corpus.json is written last, so an interrupted build keeps the previous verdict).
    reuse = True
    try:
        prev = json.loads((out_dir / "corpus.json").read_text())
        reuse = (prev.get("pipeline_version"), prev.get("sample_rate"), prev.get("clip_seconds"),
                 prev.get("resample_passband"), prev.get("resample_stopband_db")) == (
                     PIPELINE_VERSION, int(sample_rate), float(clip_seconds), RESAMPLE_PASSBAND,
                     RESAMPLE_STOPBAND_DB)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, AttributeError):
        reuse = False
    if not reuse:
        log.info("%s was built with other settings: rewriting its clips", out_dir)
    tasks, source_info, skipped_in_plan = plan_tasks(out_dir, names, resolved, versions, size, sample_rate,
                                                clip_seconds, reuse, midi_pieces, midi_info)

    from tqdm import tqdm

    results: list[dict] = []
    # every file warned about as unreadable counts as skipped, whether planning or a worker found it
    counts = {"done": 0, "cached": 0, "skipped": skipped_in_plan}
    bar = tqdm(total=len(tasks), desc="corpus", unit="file", disable=not progress, dynamic_ncols=True)
    try:
        if workers <= 1 or len(tasks) <= 1:
            it = map(process_file, tasks)
            pool = None
        else:
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
            # Ctrl-C reaches the workers too (same process group): they ignore it and the
            # parent stops them, instead of each printing a traceback
            pool = ctx.Pool(processes=min(int(workers), len(tasks)), initializer=ignore_sigint)
            it = pool.imap(process_file, tasks, chunksize=1)
        finished = False
        try:
            for task, res in zip(tasks, it):
                for w in res["warnings"]:
                    log.warning("%s", w)
                counts[res["status"]] += 1
                results.append(res)
                bar.update(1)
            finished = True
        finally:
            if pool is not None:
                if finished:
                    pool.close()
                else:  # interrupted or failed: stop the workers now rather than finish the queue
                    pool.terminate()
                pool.join()
    finally:
        bar.close()

    rows = [r for res in results for r in res["rows"]]
    rows.sort(key=lambda r: (order[r["source"]], r["original_path"], r["start_seconds"]))
    manifest = out_dir / "manifest.jsonl"
    tmp = manifest.with_name(".manifest.jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n")
    os.replace(tmp, manifest)
    if prune:
        _prune(out_dir, names, {r["path"] for r in rows})

    stats: dict[str, dict] = {}
    for r in rows:
        s = stats.setdefault(r["source"], {sp: {"clips": 0, "seconds": 0.0} for sp in SPLITS})
        s[r["split"]]["clips"] += 1
        s[r["split"]]["seconds"] += r["duration_seconds"]
    for s in stats.values():
        for v in s.values():
            v["seconds"] = round(v["seconds"], 3)
    meta = {
        "format": "rtgan-corpus",
        "pipeline_version": PIPELINE_VERSION,
        "size": size,
        "sample_rate": int(sample_rate),
        "clip_seconds": float(clip_seconds),
        "silence_dbfs": SILENCE_DBFS,
        "bandwidth_rel_db": BANDWIDTH_REL_DB,
        "bandwidth_floor_db": BANDWIDTH_FLOOR_DB,
        "bandwidth_energy_fraction": BANDWIDTH_ENERGY_FRACTION,
        "resample_passband": RESAMPLE_PASSBAND,
        "resample_stopband_db": RESAMPLE_STOPBAND_DB,
        "split_fractions": dict(zip(SPLITS, SPLIT_FRACTIONS)),
        "small_budget_seconds": SMALL_BUDGET_SECONDS if size == "small" else None,
        "sources": source_info,
        "stats": stats,
        "num_clips": len(rows),
        "total_seconds": round(sum(r["duration_seconds"] for r in rows), 3),
        "files": counts,
        "manifest": "manifest.jsonl",
        "manifest_sha256": manifest_hash(manifest),
    }
    tmp = out_dir / ".corpus.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out_dir / "corpus.json")
    log.info("corpus: %d clips, %.2f h (%d files decoded, %d cached, %d skipped) -> %s", len(rows),
             meta["total_seconds"] / 3600, counts["done"], counts["cached"], counts["skipped"], manifest)
    return manifest
