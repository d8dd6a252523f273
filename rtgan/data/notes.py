"""Bass-note set for a GANSynth note generator (Tatti & Bresee 2020, "ReverbSynth"): dry and reverberant notes.

Every note is one General MIDI bass program (0-based programs 32..39), one
MIDI pitch (28..64, E1..E4) and one velocity, rendered once with FluidSynth
and kept twice:

* ``dry/p{program:03d}_n{pitch:03d}_v{velocity:03d}.flac``: the FluidSynth note,
  held :attr:`NoteSetConfig.note_seconds` (3 s) then released, cut (or zero-padded)
  to :attr:`NoteSetConfig.seconds` (4 s), like NSynth;
* ``reverb/...`` (same name): that note through :class:`pedalboard.Reverb`
  (pedalboard's own dry/wet mix, the "processed" note), cut to the same length.

Rendering (:func:`build_notes`): one MIDI file per note (written with ``mido``:
program change, note on at 0 s, note off at ``note_seconds``, end of track at
``seconds``), ``fluidsynth -ni -q -R 0 -C 0`` (FluidSynth's reverb and chorus
off, its default gain 0.2) into a float WAV at :attr:`NoteSetConfig.render_sample_rate`
(48 kHz, the rate the corpus renders at: FluidSynth's sample interpolation has no
anti-alias filter), mono = mean of the two channels, resampled to
:attr:`NoteSetConfig.sample_rate` (16 kHz) with :func:`rtgan.audio.io.resample`,
then cut/padded to exactly ``seconds * sample_rate`` samples. The reverb runs on
that 16 kHz float32 note (a fresh, reset plugin per note). Files are 24-bit FLAC,
written atomically. A note whose dry peak is below :attr:`NoteSetConfig.silence_dbfs`
is skipped (both labels) with a logged warning.

Splits (:func:`split_pairs`): by (program, pitch) pair, so a pair's velocities and
both labels share a split and val/test hold pairs never seen in training; every
pitch keeps at least one training pair, and every split is non-empty.

Folder layout: ``notes.jsonl`` (one row per file: ``path`` relative to the
folder, ``program``, ``pitch``, ``velocity``, ``label``, ``split``,
``peak_dbfs``, ``sample_rate``), ``notes_config.json`` (``target``: the config,
FluidSynth's version and options, the soundfont's sha256, pedalboard's
version; ``build``: counts and skipped notes). It is written last, so a folder
with it and every listed file is a complete set.

:class:`NoteDataset` serves ``(audio, pitch, label)`` items for training.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import json
import logging
import math
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from ..audio.io import resample, write_audio
from ..fileio import atomic_write_text
from .common import (SPLITS, file_sha256, load_mono, peak_dbfs, read_built_config, read_jsonl, run_tasks,
                     unit_hash)
from .midi.render import MAX_RENDER_SAMPLE_RATE, render_midi
from .midi.tools import (SOURCE_NAME, MidiSourceError, MissingToolError, find_fluidsynth, fluidsynth_version,
                         soundfont_path)

log = logging.getLogger(__name__)

__all__ = ["LABELS", "MANIFEST", "CONFIG_FILE", "NoteSetConfig", "midi_to_hz", "split_pairs", "note_name",
           "check_note_tools", "render_note", "build_notes", "read_manifest", "read_config", "pitches", "NoteDataset"]

#: The two versions of every note, in label-index order of :class:`NoteDataset`'s default.
LABELS: tuple[str, str] = ("dry", "reverb")
#: Manifest file name inside a note-set folder.
MANIFEST = "notes.jsonl"
#: Config / provenance file name inside a note-set folder (written last).
CONFIG_FILE = "notes_config.json"
#: Lowest allowed pitch: f0 must be above C1 (32.70 Hz, CREPE's lowest bin), so torchcrepe can track it.
MIN_PITCH = 25
#: FluidSynth command-line options of every render (effects off; lazy sample loading only speeds it up).
FLUIDSYNTH_OPTIONS: tuple[str, ...] = ("-ni", "-q", "-R", "0", "-C", "0", "-o", "synth.dynamic-sample-loading=1",
                                       "-o", "audio.file.format=float")
#: Longest one note's fluidsynth run may take, seconds.
NOTE_RENDER_TIMEOUT = 120.0
#: Bump when rendering or file layout changes (part of the target: a folder built before is rebuilt).
_NOTES_FORMAT = 1
_FILE_RE = re.compile(r"^p\d{3}_n\d{3}_v\d{3}\.flac$")


def midi_to_hz(pitch: float) -> float:
    """Equal-tempered frequency of a MIDI pitch: ``440 * 2 ** ((pitch - 69) / 12)``."""
    return 440.0 * 2.0 ** ((float(pitch) - 69.0) / 12.0)


def note_name(program: int, pitch: int, velocity: int) -> str:
    """File name of a note: ``p{program:03d}_n{pitch:03d}_v{velocity:03d}.flac``."""
    return f"p{int(program):03d}_n{int(pitch):03d}_v{int(velocity):03d}.flac"


def _int_tuple(name: str, values: Iterable[int], lo: int, hi: int) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"NoteSetConfig.{name} must be integers, got {values!r}") from None
    if not vals:
        raise ValueError(f"NoteSetConfig.{name} must not be empty")
    if len(set(vals)) != len(vals):
        raise ValueError(f"NoteSetConfig.{name} has duplicates: {vals}")
    bad = [v for v in vals if not lo <= v <= hi]
    if bad:
        raise ValueError(f"NoteSetConfig.{name} must lie in {lo}..{hi}, got {bad}")
    return tuple(sorted(vals))


@dataclass(frozen=True)
class NoteSetConfig:
    """Everything that defines the note set (all defaults here; validated on creation).

    Attributes:
        programs: 0-based General MIDI programs (default 32..39: the GM bass family).
        pitches: MIDI pitches (default 28..64, E1 41.2 Hz .. E4 329.6 Hz; each > C1 32.70 Hz).
        velocities: MIDI note-on velocities (default 80 and 110: a softer and a harder note).
        sample_rate: output rate, Hz (16 kHz, as NSynth/GANSynth).
        seconds: length of every file (4 s, as NSynth).
        note_seconds: time from note on to note off (3 s, as NSynth), then the release.
        render_sample_rate: FluidSynth's rate; resampled to ``sample_rate`` (48 kHz).
        reverb_room_size, reverb_damping, reverb_wet_level, reverb_dry_level, reverb_width,
            reverb_freeze_mode: :class:`pedalboard.Reverb` parameters (a large room, 0.8;
            the rest pedalboard's defaults).
        split_fractions: target share of (program, pitch) pairs for train/val/test.
        seed: mixed into the split hash.
        silence_dbfs: a note whose dry peak is below this is skipped.
    """

    programs: tuple[int, ...] = tuple(range(32, 40))
    pitches: tuple[int, ...] = tuple(range(28, 65))
    velocities: tuple[int, ...] = (80, 110)
    sample_rate: int = 16000
    seconds: float = 4.0
    note_seconds: float = 3.0
    render_sample_rate: int = 48000
    reverb_room_size: float = 0.8
    reverb_damping: float = 0.5
    reverb_wet_level: float = 0.33
    reverb_dry_level: float = 0.4
    reverb_width: float = 1.0
    reverb_freeze_mode: float = 0.0
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    silence_dbfs: float = -60.0

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        put("programs", _int_tuple("programs", self.programs, 0, 127))
        put("pitches", _int_tuple("pitches", self.pitches, MIN_PITCH, 127))
        put("velocities", _int_tuple("velocities", self.velocities, 1, 127))
        for name in ("sample_rate", "render_sample_rate", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"NoteSetConfig.{name} must be an integer, got {v!r}")
            put(name, int(v))
        if not 8000 <= self.sample_rate <= MAX_RENDER_SAMPLE_RATE:
            raise ValueError(f"NoteSetConfig.sample_rate must lie in 8000..{MAX_RENDER_SAMPLE_RATE}, "
                             f"got {self.sample_rate}")
        if not self.sample_rate <= self.render_sample_rate <= MAX_RENDER_SAMPLE_RATE:
            raise ValueError(f"NoteSetConfig.render_sample_rate must lie in sample_rate..{MAX_RENDER_SAMPLE_RATE}, "
                             f"got {self.render_sample_rate}")
        for name in ("seconds", "note_seconds", "reverb_room_size", "reverb_damping", "reverb_wet_level",
                     "reverb_dry_level", "reverb_width", "reverb_freeze_mode", "silence_dbfs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(v):
                raise ValueError(f"NoteSetConfig.{name} must be a finite number, got {v!r}")
            put(name, float(v))
        if not 0 < self.note_seconds < self.seconds:
            raise ValueError(f"NoteSetConfig needs 0 < note_seconds < seconds, got note_seconds={self.note_seconds} "
                             f"seconds={self.seconds}")
        if abs(self.seconds * self.sample_rate - round(self.seconds * self.sample_rate)) > 1e-6:
            raise ValueError(f"NoteSetConfig.seconds * sample_rate must be a whole number of samples, "
                             f"got {self.seconds} * {self.sample_rate}")
        for name in ("reverb_room_size", "reverb_damping", "reverb_wet_level", "reverb_dry_level", "reverb_width",
                     "reverb_freeze_mode"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"NoteSetConfig.{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.silence_dbfs >= 0:
            raise ValueError(f"NoteSetConfig.silence_dbfs must be negative, got {self.silence_dbfs}")
        try:
            fr = tuple(float(f) for f in self.split_fractions)
        except (TypeError, ValueError):
            raise ValueError(f"NoteSetConfig.split_fractions must be 3 numbers, got {self.split_fractions!r}") from None
        if len(fr) != 3 or any(not f > 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
            raise ValueError(f"NoteSetConfig.split_fractions must be 3 positive numbers summing to 1 (train, val, "
                             f"test), got {self.split_fractions!r}")
        put("split_fractions", fr)
        n_prog, n_pitch = len(self.programs), len(self.pitches)
        if n_prog * n_pitch < n_pitch + 2:
            raise ValueError(f"NoteSetConfig: {n_prog} program(s) x {n_pitch} pitch(es) can't give non-empty val and "
                             f"test splits while every pitch keeps a training pair (use at least 2 programs)")

    @property
    def num_samples(self) -> int:
        """Samples per file: ``seconds * sample_rate``."""
        return int(round(self.seconds * self.sample_rate))

    def reverb_params(self) -> dict:
        """Keyword arguments of :class:`pedalboard.Reverb`."""
        return {"room_size": self.reverb_room_size, "damping": self.reverb_damping,
                "wet_level": self.reverb_wet_level, "dry_level": self.reverb_dry_level,
                "width": self.reverb_width, "freeze_mode": self.reverb_freeze_mode}

    def to_dict(self) -> dict:
        """JSON-ready dict of the fields (tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "NoteSetConfig":
        """Inverse of :meth:`to_dict` (unknown keys raise ValueError)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"NoteSetConfig: unknown fields {unknown}")
        return cls(**d)


def split_pairs(cfg: NoteSetConfig = NoteSetConfig()) -> dict[tuple[int, int], str]:
    """Train/val/test split of the (program, pitch) pairs: ``{(program, pitch): split}``.

    Each pair gets ``u = sha256("rtgan-notes/{seed}/{program}/{pitch}")`` in [0, 1)
    (:func:`rtgan.data.common.unit_hash`); ``u < f_train`` -> train,
    ``u < f_train + f_val`` -> val, else test. Then, deterministically:

    1. every pitch with no training pair gets its pair with the smallest ``u`` moved to train
       (so a pitch-conditioned model has seen every pitch);
    2. an empty test, then val, split takes the pair whose ``u`` is closest to the centre of its
       interval among those that can give one up (a pair of a split with >= 2 pairs, and for a
       training pair one whose pitch keeps another training pair).

    The result depends only on the programs, pitches, split fractions and seed (velocities and
    labels play no part: they always go with their pair).
    """
    f_train, f_val, _ = cfg.split_fractions
    t1, t2 = f_train, f_train + f_val
    pairs = [(p, n) for p in cfg.programs for n in cfg.pitches]
    u = {pr: unit_hash(f"rtgan-notes/{cfg.seed}/{pr[0]}/{pr[1]}") for pr in pairs}
    out = {pr: ("train" if u[pr] < t1 else "val" if u[pr] < t2 else "test") for pr in pairs}
    for n in cfg.pitches:
        mine = [(p, n) for p in cfg.programs]
        if not any(out[pr] == "train" for pr in mine):
            out[min(mine, key=lambda pr: (u[pr], pr))] = "train"
    centre = {"val": (t1 + t2) / 2, "test": (t2 + 1.0) / 2}
    for split in ("test", "val"):
        counts = {s: sum(1 for v in out.values() if v == s) for s in SPLITS}
        if counts[split]:
            continue
        train_per_pitch = {n: sum(1 for (p, m), s in out.items() if m == n and s == "train") for n in cfg.pitches}
        donors = [pr for pr, s in out.items()
                  if counts[s] >= 2 and (s != "train" or train_per_pitch[pr[1]] >= 2)]
        if not donors:  # unreachable after NoteSetConfig's validation
            raise ValueError(f"split_pairs: can't fill the {split} split")
        out[min(donors, key=lambda pr: (abs(u[pr] - centre[split]), pr))] = split
    return out


# ---------------------------------------------------------------- tools

def _require(module: str, why: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingToolError(f"building the note set needs the Python package {module} ({why}; "
                               f"pip install {module})") from e


def check_note_tools(soundfont: Path | str | None = None) -> dict:
    """Check fluidsynth, the soundfont, mido and pedalboard before rendering; return their facts.

    Returns:
        ``{"fluidsynth_exe", "fluidsynth", "soundfont", "pedalboard", "mido"}``.

    Raises:
        MissingToolError: one line naming what is missing and how to install it.
    """
    try:
        exe, sf2 = find_fluidsynth(soundfont)
    except MissingToolError as e:
        raise MissingToolError(str(e).replace(f"the {SOURCE_NAME} corpus source", "building the note set")) from None
    _require("mido", "MIDI files")
    pedalboard = _require("pedalboard", "the reverb")
    return {"fluidsynth_exe": exe, "fluidsynth": fluidsynth_version(exe), "soundfont": str(sf2),
            "pedalboard": str(getattr(pedalboard, "__version__", "")) or _dist_version("pedalboard"),
            "mido": _dist_version("mido")}


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ""


# ---------------------------------------------------------------- rendering

def _write_note_midi(path: Path, program: int, pitch: int, velocity: int, note_seconds: float,
                     seconds: float) -> None:
    """One note on channel 0: program change, note on at 0, note off at ``note_seconds``, end at ``seconds``."""
    import mido
    tpb, ticks_per_s = 1000, 1000  # tempo 1 s per beat: one tick per millisecond
    mid = mido.MidiFile(type=0, ticks_per_beat=tpb)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    off = int(round(note_seconds * ticks_per_s))
    end = int(round(seconds * ticks_per_s))
    tr.append(mido.MetaMessage("set_tempo", tempo=1_000_000, time=0))
    tr.append(mido.Message("program_change", channel=0, program=int(program), time=0))
    tr.append(mido.Message("note_on", channel=0, note=int(pitch), velocity=int(velocity), time=0))
    tr.append(mido.Message("note_off", channel=0, note=int(pitch), velocity=0, time=off))
    tr.append(mido.MetaMessage("end_of_track", time=max(end - off, 0)))
    mid.save(str(path))


def render_note(program: int, pitch: int, velocity: int, cfg: NoteSetConfig = NoteSetConfig(),
                soundfont: Path | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render one note: ``(dry, reverb)``, float32 ``(cfg.num_samples,)`` at ``cfg.sample_rate``.

    Raises:
        MissingToolError: fluidsynth, the soundfont, mido or pedalboard is missing.
        MidiSourceError: fluidsynth failed.
    """
    sf2 = soundfont_path(soundfont)
    import pedalboard
    n = cfg.num_samples
    with tempfile.TemporaryDirectory(prefix="rtgan-note-") as tmp:
        mid, wav = Path(tmp, "note.mid"), Path(tmp, "note.wav")
        _write_note_midi(mid, program, pitch, velocity, cfg.note_seconds, cfg.seconds)
        # FLUIDSYNTH_OPTIONS starts with render_midi's own "-ni -q"
        render_midi(mid, wav, cfg.render_sample_rate, soundfont=sf2, timeout=NOTE_RENDER_TIMEOUT,
                    options=FLUIDSYNTH_OPTIONS[2:])
        try:
            x, rate, _ = load_mono(wav, cfg.seconds + 0.1)
        except Exception as e:  # noqa: BLE001
            raise MidiSourceError(f"fluidsynth wrote no usable audio for {mid.name} "
                                  f"(p{program} n{pitch} v{velocity}): {type(e).__name__}: {e}") from e
    x = resample(x, rate, cfg.sample_rate) if rate != cfg.sample_rate else x
    dry = np.zeros(n, dtype=np.float32)
    m = min(n, x.shape[-1])
    dry[:m] = x[:m]
    reverb = pedalboard.Reverb(**cfg.reverb_params())
    wet = reverb.process(dry[None, :], float(cfg.sample_rate), reset=True)
    wet = np.ascontiguousarray(np.asarray(wet, dtype=np.float32).reshape(-1)[:n])
    if wet.shape[0] < n:
        wet = np.pad(wet, (0, n - wet.shape[0]))
    return dry, wet


def _render_task(task: tuple) -> dict:
    """Pool worker: render one note, write both files; returns its manifest rows (or a skip)."""
    program, pitch, velocity, split, cfg_dict, out_dir, sf2 = task
    cfg = NoteSetConfig.from_dict(cfg_dict)
    dry, wet = render_note(program, pitch, velocity, cfg, soundfont=sf2)
    name = note_name(program, pitch, velocity)
    peak_dry = peak_dbfs(dry)
    if not peak_dry >= cfg.silence_dbfs:
        return {"skipped": name, "peak_dbfs": peak_dry, "rows": []}
    rows = []
    for label, audio in zip(LABELS, (dry, wet)):
        rel = f"{label}/{name}"
        write_audio(Path(out_dir) / rel, audio, cfg.sample_rate, subtype="PCM_24")
        rows.append({"path": rel, "program": program, "pitch": pitch, "velocity": velocity, "label": label,
                     "split": split, "peak_dbfs": peak_dbfs(audio), "sample_rate": cfg.sample_rate})
    return {"skipped": None, "rows": rows}


def _target(cfg: NoteSetConfig, tools: dict, sf2_sha: str) -> dict:
    """The part of ``notes_config.json`` that must match for a folder to count as built."""
    return {"format": _NOTES_FORMAT, "config": cfg.to_dict(), "labels": list(LABELS),
            "fluidsynth": tools["fluidsynth"], "fluidsynth_options": list(FLUIDSYNTH_OPTIONS),
            "soundfont_sha256": sf2_sha, "pedalboard": tools["pedalboard"],
            "resampler": "rtgan.audio.io.resample", "file_format": "FLAC PCM_24 mono"}


def _is_complete(out_dir: Path, target: dict) -> bool:
    try:
        meta = json.loads((out_dir / CONFIG_FILE).read_text())
        if meta.get("target") != json.loads(json.dumps(target)):
            return False
        rows = read_manifest(out_dir)
    except (OSError, ValueError):
        return False
    return len(rows) == meta.get("build", {}).get("files") and all((out_dir / r["path"]).is_file() for r in rows)


def build_notes(out_dir: Path | str, cfg: NoteSetConfig = NoteSetConfig(), progress: bool = True, *,
                workers: int = 2, soundfont: Path | str | None = None) -> Path:
    """Render the note set into ``out_dir`` (see the module docstring); return ``out_dir``.

    A folder that already holds a complete set with the same target (config, FluidSynth version,
    soundfont sha256, pedalboard version) is returned as is. Otherwise its ``notes_config.json``
    is removed first, every note is rendered again (``workers`` processes; 1: in this process),
    note files no longer in the set are removed, and ``notes.jsonl`` then ``notes_config.json``
    are written.

    Raises:
        MissingToolError: fluidsynth, the soundfont, mido or pedalboard is missing (checked first).
        MidiSourceError: fluidsynth failed on a note.
        ValueError: every note was silent.
    """
    out_dir = Path(out_dir)
    if not isinstance(cfg, NoteSetConfig):
        raise TypeError(f"cfg must be a NoteSetConfig, got {type(cfg).__name__}")
    tools = check_note_tools(soundfont)
    target = _target(cfg, tools, file_sha256(Path(tools["soundfont"])))
    if _is_complete(out_dir, target):
        log.info("%s already holds this note set: nothing to render", out_dir)
        return out_dir
    for label in LABELS:
        (out_dir / label).mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_FILE).unlink(missing_ok=True)
    splits = split_pairs(cfg)
    cfg_dict = cfg.to_dict()
    tasks = [(p, n, v, splits[(p, n)], cfg_dict, str(out_dir), tools["soundfont"])
             for p in cfg.programs for n in cfg.pitches for v in cfg.velocities]
    start = time.monotonic()
    results: list[dict] = run_tasks(_render_task, tasks, workers, "notes", "note", progress)
    skipped = sorted(r["skipped"] for r in results if r["skipped"])
    for name in skipped:
        log.warning("skipped %s: silent (dry peak below %.0f dBFS)", name, cfg.silence_dbfs)
    rows = sorted((row for r in results for row in r["rows"]),
                  key=lambda r: (r["program"], r["pitch"], r["velocity"], LABELS.index(r["label"])))
    if not rows:
        raise ValueError(f"build_notes: every note rendered silent (below {cfg.silence_dbfs} dBFS); "
                         f"check the soundfont {tools['soundfont']}")
    if skipped:
        log.warning("%d of %d notes skipped as silent", len(skipped), len(tasks))
    clipped = [r["path"] for r in rows if r["peak_dbfs"] > 0]
    if clipped:
        log.warning("%d files peak above 0 dBFS and were clipped by the 24-bit FLAC (first: %s)",
                    len(clipped), clipped[0])
    listed = {r["path"] for r in rows}
    for label in LABELS:
        folder = out_dir / label
        if folder.is_dir():
            for f in folder.iterdir():
                if _FILE_RE.match(f.name) and f"{label}/{f.name}" not in listed:
                    f.unlink()
    atomic_write_text(out_dir / MANIFEST, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    counts = {s: {lab: sum(1 for r in rows if r["split"] == s and r["label"] == lab) for lab in LABELS}
              for s in SPLITS}
    pairs = {s: sum(1 for v in splits.values() if v == s) for s in SPLITS}
    meta = {"target": target,
            "build": {"files": len(rows), "notes": len(tasks) - len(skipped), "skipped_silent": skipped,
                      "files_per_split": counts, "pairs_per_split": pairs, "soundfont": tools["soundfont"],
                      "mido": tools["mido"], "seconds_taken": round(time.monotonic() - start, 1)}}
    atomic_write_text(out_dir / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info("built %d files (%d notes, %d silent skipped) in %s", len(rows), len(tasks) - len(skipped),
             len(skipped), out_dir)
    return out_dir


# ---------------------------------------------------------------- reading

def read_manifest(root: Path | str) -> list[dict]:
    """Rows of ``root/notes.jsonl`` (one per file, file order).

    Raises:
        FileNotFoundError: ``root`` holds no ``notes.jsonl`` (build it with :func:`build_notes`).
    """
    return read_jsonl(Path(root) / MANIFEST, f"build the note set first (rtgan.data.notes.build_notes({str(root)!r}))")


def read_config(root: Path | str) -> NoteSetConfig:
    """The :class:`NoteSetConfig` a note-set folder was built with.

    Raises:
        FileNotFoundError: ``root`` holds no ``notes_config.json`` (not built, or the build did not finish).
    """
    return NoteSetConfig.from_dict(read_built_config(Path(root) / CONFIG_FILE, f"build the note set first (rtgan.data.notes.build_notes({str(root)!r}))"))


def pitches(root: Path | str) -> list[int]:
    """Sorted pitches of the note set (its config's, so the one-hot size does not depend on silent skips)."""
    try:
        return list(read_config(root).pitches)
    except FileNotFoundError:
        return sorted({int(r["pitch"]) for r in read_manifest(root)})


class NoteDataset(Dataset):
    """The files of one split: items ``(audio, pitch, label)``.

    ``audio`` is a ``torch.float32`` tensor ``(samples,)`` (``seconds * sample_rate``), ``pitch`` a
    ``torch.int64`` scalar (the MIDI pitch; see :func:`pitches` for a one-hot index), ``label`` a
    ``torch.int64`` scalar: the label's position in ``labels``.

    Args:
        root: a folder built by :func:`build_notes`.
        split: ``"train"``, ``"val"`` or ``"test"``.
        labels: which versions to serve, in label-index order (default ``("dry", "reverb")``).

    Raises:
        FileNotFoundError: ``root`` holds no ``notes.jsonl``.
        ValueError: unknown split or label, or no file matches.
    """

    def __init__(self, root: Path | str, split: str, labels: Sequence[str] = LABELS) -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise ValueError(f"NoteDataset: split must be one of {SPLITS}, got {split!r}")
        labels = (labels,) if isinstance(labels, str) else tuple(labels)
        bad = [lab for lab in labels if lab not in LABELS]
        if not labels or bad or len(set(labels)) != len(labels):
            raise ValueError(f"NoteDataset: labels must be distinct names from {LABELS}, got {labels!r}")
        self.split, self.labels = split, labels
        rows = read_manifest(self.root)
        self.rows = [r for r in rows if r["split"] == split and r["label"] in labels]
        if not self.rows:
            raise ValueError(f"NoteDataset: no {'/'.join(labels)} files in the {split} split of {self.root} "
                             f"({len(rows)} files in all)")
        rates = {int(r["sample_rate"]) for r in self.rows}
        if len(rates) != 1:
            raise ValueError(f"NoteDataset: {self.root} mixes sample rates {sorted(rates)}")
        self.sample_rate = rates.pop()
        try:
            self.num_samples: int | None = read_config(self.root).num_samples
        except FileNotFoundError:
            self.num_samples = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r = self.rows[i]
        path = self.root / r["path"]
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
        if sr != self.sample_rate or x.shape[1] != 1 or (self.num_samples is not None
                                                          and x.shape[0] != self.num_samples):
            raise ValueError(f"NoteDataset: {path} is {x.shape[1]} channel(s), {x.shape[0]} samples at {sr} Hz; "
                             f"expected mono, {self.num_samples} samples at {self.sample_rate} Hz")
        audio = torch.from_numpy(np.ascontiguousarray(x[:, 0]))
        return (audio, torch.tensor(int(r["pitch"]), dtype=torch.int64),
                torch.tensor(self.labels.index(r["label"]), dtype=torch.int64))
