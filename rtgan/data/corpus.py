"""Build the offline real-audio corpus from audio shipped in Debian packages.

Pipeline (see :func:`build_corpus`):

1. For every source (:mod:`rtgan.data.sources`) find ``<package>_*.deb`` in the
   deb cache (``apt-get download`` it when missing) and extract it once with
   ``dpkg -x`` into ``<cache>/extracted/<package>_<version>/``.
2. List the source's audio files and give every *split key* (track, kit,
   speaker, scene) a split with :func:`assign_splits`, weighted by the
   seconds of audio each key contributes (~80/10/10 of the audio).
3. For every file (in up to two worker processes): decode with soundfile, mix
   to mono (mean of the channels), resample to ``sample_rate`` with
   :func:`scipy.signal.resample_poly` (filter: see :func:`resample`), cut
   into clips of ``clip_seconds``, drop digital silence, measure the
   bandwidth, and write 16-bit FLAC clips to
   ``out_dir/<split>/<source>/<path-below-source-base>_<index>.flac``.
4. Write ``manifest.jsonl`` (one JSON object per clip, sorted) and
   ``corpus.json`` (build parameters, statistics, manifest sha256).

The opt-in source ``music21-fluidsynth`` (``with_midi=True``) has no .deb:
its "files" are (score, GM program) pairs that step 3 first renders with
FluidSynth into a temporary WAV (see :mod:`rtgan.data.midi`).

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

import functools
import hashlib
import json
import logging
import math
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping, Sequence
from urllib.parse import unquote

import numpy as np
import soundfile as sf
from scipy.signal import welch

from ..audio.io import RESAMPLE_PASSBAND, RESAMPLE_STOPBAND_DB, resample
from .sources import OPT_IN_SOURCES, SOURCES, Source, get_source

__all__ = [
    "build_corpus",
    "manifest_hash",
    "assign_splits",
    "measure_bandwidth",
    "measure_energy_bandwidth",
    "resample",
    "ensure_package_root",
    "default_cache_dir",
    "cache_usage",
    "build_summary",
    "SPLITS",
    "SILENCE_DBFS",
    "BANDWIDTH_ENERGY_FRACTION",
]

log = logging.getLogger(__name__)

#: Split names, in order.
SPLITS: tuple[str, str, str] = ("train", "val", "test")
#: Target share of the audio (of the keys, without weights) per split: train, val, test.
SPLIT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)
#: Clips with an RMS level below this (dB re full scale 1.0) are dropped.
SILENCE_DBFS: float = -60.0
#: ``bandwidth_hz``: content = smoothed PSD within this many dB of its maximum...
BANDWIDTH_REL_DB: float = 60.0
#: ... and above this absolute PSD floor (dB re full-scale^2/Hz).
BANDWIDTH_FLOOR_DB: float = -130.0
#: ``energy_bandwidth_hz``: fraction of the spectral energy below it.
BANDWIDTH_ENERGY_FRACTION: float = 0.999
#: Shortest file kept as a single (one-shot) clip, seconds.
MIN_ONESHOT_SECONDS: float = 0.5
#: Shortest trailing remainder kept as a final clip, seconds.
MIN_TAIL_SECONDS: float = 1.0
#: Per-source audio budget (seconds of clips) per split for ``size="small"``.
SMALL_BUDGET_SECONDS: dict[str, float] = {"train": 24.0, "val": 8.0, "test": 8.0}
#: Max clips taken from one file for ``size="small"``.
SMALL_MAX_CLIPS_PER_FILE: int = 2
#: Bump when the clip content or manifest fields change (invalidates caches).
_PIPELINE_VERSION = 3
_MARKER = ".rtgan-extracted.json"
_CACHE_DIRNAME = ".rtgan_cache"


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def default_cache_dir() -> Path:
    """Where downloaded ``.deb`` files and extracted packages are kept between builds.

    ``$RTGAN_CACHE_DIR`` (or the older ``$RTGAN_CACHE``), else ``$XDG_CACHE_HOME/rtgan``,
    else ``~/.cache/rtgan``. A full build keeps about 1.1 GB there.
    """
    for var in ("RTGAN_CACHE_DIR", "RTGAN_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "rtgan"


def cache_usage(path: Path | str) -> int:
    """Bytes taken by the files under ``path`` (0 if it does not exist; links not followed)."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for fn in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, fn)).st_size
            except OSError:
                pass
    return total


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def build_summary(out_dir: Path | str, cache_dir: Path | str | None = None,
                  debs_dir: Path | str | None = None) -> str:
    """The lines ``rtgan data build`` prints at the end: manifest, file counts, and where the
    download cache is and how big it is.

    Args:
        out_dir: the corpus folder (its ``corpus.json`` holds the counts).
        cache_dir: the cache the build used (default :func:`default_cache_dir`).
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
    """sha256 hex digest of the bytes of a manifest file (or any file)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _unit_hash(text: str) -> float:
    """Deterministic hash of ``text`` into [0, 1) (sha256, first 8 bytes)."""
    d = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(d[:8], "big") / 2.0**64


def assign_splits(keys: Iterable[str], source_name: str,
                  weights: Mapping[str, float] | None = None) -> dict[str, str]:
    """Deterministic train/val/test split of split keys (never of clips).

    Every key ``k`` gets ``u(k) = sha256(f"{source_name}/{k}")`` mapped to
    [0, 1) (first 8 bytes, big-endian). This fixes a pseudo-random order of
    the keys that depends only on the source name and the key.

    * Without ``weights`` (or all zero): ``u < 0.8`` -> train, ``u < 0.9`` ->
      val, else test (~80/10/10 of the keys); the key's position is ``u``.
    * With ``weights`` (e.g. seconds of usable audio per key): the keys are
      laid end to end in ``u`` order on [0, 1), each taking a share equal to
      its weight / total weight; a key's position is the midpoint of its
      share, and position < 0.8 -> train, < 0.9 -> val, else test. This gives
      ~80/10/10 of the *audio* while keeping every key whole.

    Guarantee: if the source has at least 3 keys and a split is still empty,
    the splits are filled in the order test, val, train: for an empty split,
    among the keys whose split holds >= 2 keys, the one whose position is
    closest to the centre of the empty split's interval (0.4 / 0.85 / 0.95;
    ties by key) is moved there. With >= 3 keys every split ends up
    non-empty. The result depends only on the source name, the set of keys and
    their weights (so ``size="small"`` and ``"full"`` agree).

    Args:
        keys: split keys of one source (duplicates allowed).
        source_name: mixed into the hash so sources split independently.
        weights: optional non-negative weight per key (missing keys: 0).

    Returns:
        dict key -> ``"train" | "val" | "test"``.
    """
    uniq = sorted(set(keys))
    u = {k: _unit_hash(f"{source_name}/{k}") for k in uniq}
    t_train, t_val = SPLIT_FRACTIONS[0], SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1]
    pos = dict(u)
    if weights is not None:
        w = {k: max(0.0, float(weights.get(k, 0.0))) for k in uniq}
        total = sum(w.values())
        if total > 0:
            acc = 0.0
            for k in sorted(uniq, key=lambda k: (u[k], k)):
                pos[k] = (acc + w[k] / 2.0) / total
                acc += w[k]
    out = {k: ("train" if pos[k] < t_train else "val" if pos[k] < t_val else "test") for k in uniq}
    if len(uniq) >= 3:
        centre = {"train": t_train / 2, "val": (t_train + t_val) / 2, "test": (t_val + 1.0) / 2}
        for split in ("test", "val", "train"):
            counts = {s: 0 for s in SPLITS}
            for s in out.values():
                counts[s] += 1
            if counts[split]:
                continue
            donors = [k for k in uniq if counts[out[k]] >= 2]
            k = min(donors, key=lambda k: (abs(pos[k] - centre[split]), k))
            out[k] = split
    return out


def _welch_psd(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    nperseg = int(min(x.size, 2048))
    return welch(x, fs=sample_rate, window="blackmanharris", nperseg=nperseg, detrend="constant")


def measure_bandwidth(x: np.ndarray, sample_rate: int, rel_db: float = BANDWIDTH_REL_DB,
                      floor_db: float = BANDWIDTH_FLOOR_DB) -> float:
    """Measured bandwidth of a mono signal: the highest frequency with content, in Hz.

    Definition (this is the manifest's ``bandwidth_hz``): the Welch power
    spectral density of ``x`` is computed (Blackman-Harris window, -92 dB side lobes,
    ``nperseg = min(len(x), 2048)``, 50% overlap, mean removed; in units of
    full-scale^2 / Hz) and smoothed with a 9-bin moving average (~210 Hz at
    48 kHz). The bandwidth is the highest frequency whose smoothed PSD is at
    most ``rel_db`` (60 dB) below the smoothed PSD's maximum *and* above the
    absolute floor ``floor_db`` (-130 dB re 1/Hz, above 16-bit quantisation
    noise, about -145 dB/Hz). So a clip from a 22.05 kHz source measures at
    most ~11 kHz (the resampler stops at the source's Nyquist), a 44.1 kHz Vorbis file
    about 16-21 kHz (the encoder's low-pass), and low-passed noise its cutoff
    (for a steep filter). It lies in [0, sample_rate / 2]; 0 if no bin
    qualifies (silence).

    Args:
        x: float array, shape (num_samples,), full scale = 1.0.
        sample_rate: Hz.
        rel_db: dB below the PSD maximum still counted as content.
        floor_db: absolute PSD floor in dB re 1/Hz.

    See :func:`measure_energy_bandwidth` for the 99.9%-energy variant.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < 16:
        return 0.0
    f, p = _welch_psd(x, sample_rate)
    k = min(9, p.size)
    ps = np.convolve(p, np.ones(k) / k, mode="same")
    peak = float(ps.max())
    if not np.isfinite(peak) or peak <= 0.0:
        return 0.0
    thr = max(peak * 10.0 ** (-rel_db / 10.0), 10.0 ** (floor_db / 10.0))
    idx = np.nonzero(ps >= thr)[0]
    return float(round(f[idx[-1]], 3)) if idx.size else 0.0


def measure_energy_bandwidth(x: np.ndarray, sample_rate: int,
                             fraction: float = BANDWIDTH_ENERGY_FRACTION) -> float:
    """Frequency below which ``fraction`` (99.9%) of the spectral energy lies, in Hz.

    Definition (the manifest's ``energy_bandwidth_hz``): same Welch PSD as
    :func:`measure_bandwidth` (unsmoothed); the lowest bin frequency ``f`` with
    ``sum(PSD[<= f]) >= fraction * sum(PSD)``. Quantised to ``sample_rate /
    2048``. Real music and speech have steep spectral tilt, so this is usually
    far below the band limit (median ~6 kHz for the 44.1 kHz orchestral
    tracks); use ``bandwidth_hz`` to select full-band clips. 0 for silence.

    Args:
        x: float array, shape (num_samples,).
        sample_rate: Hz.
        fraction: energy fraction in (0, 1].
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < 16:
        return 0.0
    f, p = _welch_psd(x, sample_rate)
    total = float(p.sum())
    if not np.isfinite(total) or total <= 0.0:
        return 0.0
    c = np.cumsum(p) / total
    i = int(np.searchsorted(c, fraction - 1e-12, side="left"))
    return float(round(f[min(i, f.size - 1)], 3))


def _safe_name(rel: PurePosixPath) -> str:
    """Path (relative, posix) made safe for file names: keeps folders, replaces odd chars."""
    parts = [re.sub(r"[^A-Za-z0-9._-]+", "_", p).strip("_") or "_" for p in rel.with_suffix("").parts]
    return "/".join(parts)


def _clip_bounds(num_samples: int, sample_rate: int, clip_seconds: float) -> list[tuple[int, int]]:
    """(start, length) in samples of every clip of a file, by the module's clip rule."""
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


def _rms_dbfs(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


# ---------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------

def _deb_version(deb: Path) -> str:
    try:
        r = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                           text=True, check=True)
        v = r.stdout.strip()
        if v:
            return v
    except (OSError, subprocess.CalledProcessError):
        pass
    parts = deb.name.split("_")
    return unquote(parts[1]) if len(parts) >= 3 else "unknown"


def _find_deb(package: str, debs_dir: Path) -> Path | None:
    found = sorted(debs_dir.glob(f"{package}_*.deb"))
    if len(found) > 1:
        log.warning("several .deb files for %s in %s; using %s", package, debs_dir, found[-1].name)
    return found[-1] if found else None


def ensure_package_root(package: str, debs_dir: Path | None = None,
                        cache_dir: Path | None = None) -> tuple[Path, str]:
    """Make sure ``package`` is downloaded and extracted; return (root, version).

    Looks for ``<package>_*.deb`` in ``debs_dir`` (default
    ``<cache>/debs``); if absent, runs ``apt-get download <package>`` there.
    Extracts it with ``dpkg -x`` into ``<cache>/extracted/<package>_<version>``
    unless that was done before (a marker file records a finished extraction).

    Raises:
        RuntimeError: if the package can't be downloaded or extracted.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    debs_dir = Path(debs_dir) if debs_dir else cache_dir / "debs"
    debs_dir.mkdir(parents=True, exist_ok=True)
    deb = _find_deb(package, debs_dir)
    if deb is None:
        if shutil.which("apt-get") is None:
            raise RuntimeError(f"{package}_*.deb not found in {debs_dir} and apt-get is not available; "
                               f"download the package and pass its folder with --debs DIR")
        log.info("downloading %s with apt-get into %s", package, debs_dir)
        r = subprocess.run(["apt-get", "download", package], cwd=debs_dir, capture_output=True, text=True)
        deb = _find_deb(package, debs_dir)
        if r.returncode != 0 or deb is None:
            raise RuntimeError(
                f"`apt-get download {package}` failed (exit {r.returncode}) in {debs_dir}: "
                f"{(r.stderr or r.stdout).strip()[-800:]}\n"
                f"Try `apt-get update` first, or put {package}_*.deb into a folder and pass --debs DIR.")
    version = _deb_version(deb)
    safe_version = re.sub(r"[^A-Za-z0-9.+~-]+", "_", version)
    root = cache_dir / "extracted" / f"{package}_{safe_version}"
    marker = root / _MARKER
    if marker.exists():
        return root, version
    if shutil.which("dpkg") is None and shutil.which("dpkg-deb") is None:
        raise RuntimeError(f"cannot extract {deb}: neither dpkg nor dpkg-deb is installed")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{package}.", dir=root.parent))
    try:
        tool = ["dpkg", "-x"] if shutil.which("dpkg") else ["dpkg-deb", "-x"]
        r = subprocess.run(tool + [str(deb), str(tmp)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"extracting {deb} failed: {r.stderr.strip()[-800:]}")
        (tmp / _MARKER).write_text(json.dumps({"package": package, "version": version,
                                               "deb": deb.name}) + "\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root, version


def _root_version(root: Path) -> str:
    try:
        return json.loads((root / _MARKER).read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "unknown"


# ---------------------------------------------------------------------------
# per-file work
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Task:
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
        d["pipeline"] = _PIPELINE_VERSION
        if self.render:
            d["render"] = self.render
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    def record_path(self) -> Path:
        h = hashlib.sha1(f"{self.source}/{self.rel}".encode()).hexdigest()[:16]
        return Path(self.out_dir) / _CACHE_DIRNAME / self.source / f"{h}.json"


def _load_mono(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int, int]:
    """Decode ``path`` -> (mono float32 (n,), sample_rate, channels)."""
    info = sf.info(str(path))
    frames = -1
    if max_seconds is not None:
        frames = int(math.ceil(max_seconds * info.samplerate)) + 1
    x, sr = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    if x.shape[0] == 0:
        raise ValueError("no audio frames")
    mono = x.mean(axis=1, dtype=np.float64)
    if not np.all(np.isfinite(mono)):
        raise ValueError("non-finite samples")
    return mono, int(sr), int(x.shape[1])


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


def _ignore_sigint() -> None:
    """Pool initializer: workers leave SIGINT (Ctrl-C) to the parent."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _process_file(task: _Task) -> dict:
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
            from .midi import render_task_audio
            mono, sr_in, channels = render_task_audio(
                src_path, task.sample_rate, max_seconds,
                cache_dir=out_dir / _CACHE_DIRNAME / task.source)
        else:
            mono, sr_in, channels = _load_mono(src_path, max_seconds)
    except Exception as e:  # noqa: BLE001 - malformed files are skipped, never fatal
        warnings.append(f"{task.source}: skipping unreadable file {task.package_path}: "
                        f"{type(e).__name__}: {e}")
        status = "skipped"
    else:
        y = resample(mono, sr_in, task.sample_rate)  # float64 in, float64 out
        y = np.clip(y, -1.0, 32767.0 / 32768.0).astype(np.float32)
        bounds = _clip_bounds(y.shape[0], task.sample_rate, task.clip_seconds)
        if task.max_clips is not None:
            bounds = bounds[: task.max_clips]
        for idx, (start, length) in enumerate(bounds):
            seg = y[start:start + length]
            if _rms_dbfs(seg) < SILENCE_DBFS:
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
                "rms_dbfs": round(_rms_dbfs(seg), 2),
            })
        status = "done"
    rec_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = rec_path.with_name(f".{rec_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"signature": sig, "rows": rows, "warnings": warnings, "status": status}))
    os.replace(tmp, rec_path)
    return {"rows": rows, "warnings": warnings, "status": status}


# ---------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------

def _list_files(src: Source, root: Path) -> list[PurePosixPath]:
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
    bounds = _clip_bounds(int(duration * sr), sr, clip_seconds)
    if max_clips is not None:
        bounds = bounds[:max_clips]
    return sum(n for _, n in bounds) / sr


def _small_selection(src: Source, files: list[PurePosixPath], split_of: dict[str, str],
                     durations: Mapping[PurePosixPath, float], clip_seconds: float) -> list[PurePosixPath]:
    """Pick files for ``size="small"``: per split, in hash order, until the audio budget is met."""
    order = sorted(files, key=lambda r: (_unit_hash(f"small/{src.name}/{r}"), str(r)))
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


def _plan(out_dir: Path, names: Sequence[str], roots: Mapping[str, Path], versions: Mapping[str, str],
          size: str, sample_rate: int, clip_seconds: float,
          reuse_flacs: bool = True, midi_pieces: Sequence[str] | None = None,
          midi_info: Mapping[str, str] | None = None) -> tuple[list[_Task], dict[str, dict], int]:
    """The per-file tasks, per-source info, and the number of unreadable files that planning
    already skipped (and warned about)."""
    tasks: list[_Task] = []
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
            tasks.append(_Task(
                source=name, package=src.package, version=versions[name], license=src.license_for(rel),
                domain=src.domain, root=str(root), base=src.base, rel=str(rel), out_stem=stem,
                split=split, split_key=key, out_dir=str(out_dir), sample_rate=int(sample_rate),
                clip_seconds=float(clip_seconds),
                max_clips=SMALL_MAX_CLIPS_PER_FILE if size == "small" else None, reuse_flacs=reuse_flacs))
        info[name] = {"package": src.package, "package_version": versions[name], "domain": src.domain,
                      "license": src.license, "num_files": len(files),
                      "split_keys": {s: sorted(k for k, v in split_of.items() if v == s) for s in SPLITS}}
    return tasks, info, skipped_in_plan


def _plan_midi(tasks: list[_Task], info: dict[str, dict], out_dir: Path, name: str, version: str, size: str,
               sample_rate: int, clip_seconds: float, reuse_flacs: bool,
               pieces: Sequence[str] | None, extra: Mapping[str, str]) -> None:
    """Tasks of ``music21-fluidsynth``: one per (piece, GM program); see :mod:`rtgan.data.midi`."""
    from . import midi

    src = get_source(name, opt_in=True)
    render = midi.render_settings(sample_rate)
    items = midi.resolve_pieces(pieces, size)
    stems: dict[str, int] = {}
    split_keys: dict[str, set[str]] = {s: set() for s in SPLITS}
    for root, piece, split in items:
        for rel in midi.piece_files([piece]):
            key = src.split_key(rel)
            split_keys[split].add(key)
            stem = f"{split}/{name}/{_safe_name(rel)}"
            if stem in stems:
                stem = f"{stem}-{hashlib.sha1(f'{root}/{rel}'.encode()).hexdigest()[:8]}"
            stems[stem] = 1
            tasks.append(_Task(
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


# ---------------------------------------------------------------------------
# the build
# ---------------------------------------------------------------------------

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
            :func:`default_cache_dir`).
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
    ``original_channels``, ``bandwidth_hz`` (see :func:`measure_bandwidth`:
    highest frequency whose smoothed Welch PSD is within 60 dB of the PSD
    maximum, i.e. where the clip's content ends), ``energy_bandwidth_hz``
    (see :func:`measure_energy_bandwidth`: frequency below which 99.9% of
    the spectral energy lies) and ``rms_dbfs`` (clip RMS, dB re full scale).
    """
    if size not in ("small", "full"):
        raise ValueError(f"size must be 'small' or 'full', not {size!r}")
    if sample_rate <= 0 or clip_seconds <= 0:
        raise ValueError("sample_rate and clip_seconds must be positive")
    out_dir = Path(out_dir)
    roots = {k: Path(v) for k, v in (roots or {}).items()}
    if sources is None:
        names = list(roots) if roots else list(SOURCES)
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
        from .midi import check_tools
        midi_info = check_tools()
    for n in names:
        if n in OPT_IN_SOURCES:
            resolved[n], versions[n] = Path(), midi_info["music21_version"]
        elif n in roots:
            resolved[n], versions[n] = roots[n], _root_version(roots[n])
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
                     _PIPELINE_VERSION, int(sample_rate), float(clip_seconds), RESAMPLE_PASSBAND,
                     RESAMPLE_STOPBAND_DB)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, AttributeError):
        reuse = False
    if not reuse:
        log.info("%s was built with other settings: rewriting its clips", out_dir)
    tasks, source_info, skipped_in_plan = _plan(out_dir, names, resolved, versions, size, sample_rate,
                                                clip_seconds, reuse, midi_pieces, midi_info)

    from tqdm import tqdm

    results: list[dict] = []
    # every file warned about as unreadable counts as skipped, whether planning or a worker found it
    counts = {"done": 0, "cached": 0, "skipped": skipped_in_plan}
    bar = tqdm(total=len(tasks), desc="corpus", unit="file", disable=not progress, dynamic_ncols=True)
    try:
        if workers <= 1 or len(tasks) <= 1:
            it = map(_process_file, tasks)
            pool = None
        else:
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
            # Ctrl-C reaches the workers too (same process group): they ignore it and the
            # parent stops them, instead of each printing a traceback
            pool = ctx.Pool(processes=min(int(workers), len(tasks)), initializer=_ignore_sigint)
            it = pool.imap(_process_file, tasks, chunksize=1)
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
        "pipeline_version": _PIPELINE_VERSION,
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
