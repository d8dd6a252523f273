"""Instrument-transfer pairs (Alahi, Sifringer & Stegmüller 2020, Sec. III-B): one piece, two instruments.

The seed renders MAESTRO's MIDI files twice, as piano (input) and as another instrument
(target), and trains a generator to map one to the other on 8192-sample rectangular crops.
Here the MIDI comes from music21's corpus, through the machinery of the opt-in
``music21-fluidsynth`` corpus source (:mod:`rtgan.data.midi`), which this module calls:

1. **Pieces**: :func:`rtgan.data.midi.pieces.resolve_pieces` (``size="small"``: 4 short
   pieces; ``"full"``: the first 300 of its round-robin order over composers), or the
   explicit :attr:`PairSetConfig.pieces`; then pieces whose parse cost (:func:`score_cost`)
   is above :attr:`PairSetConfig.max_score_cost` are left out, since music21's parse time
   grows with it (Beethoven's op. 132, 10.9 MB of MusicXML, takes 100 s; an ABC tune book of
   250 KB, 60 s: music21 parses the whole book), and at most :attr:`PairSetConfig.max_pieces`
   are kept. The selection depends only on the config and music21's corpus, not on machine
   speed.
2. **Splits** (:func:`split_pieces`): by piece, from a seeded hash of its path, so every
   crop of a piece (and every program) lies in one split.
3. **MIDI**: :func:`rtgan.data.midi.export.export_midi` once per piece (cut at
   :attr:`PairSetConfig.max_seconds`), then :func:`rtgan.data.midi.export.rewrite_programs`
   once per program (:attr:`PairSetConfig.input_program` and each of
   :attr:`PairSetConfig.target_programs`): every melodic channel plays that program. The
   files differ in program changes only, so note timing (hence the sample grid) is the same.
4. **Percussion**: ``rewrite_programs`` leaves channel 10 (GM drums) alone, so drums would
   sound the same in input and target. A piece with any note on channel 10 is therefore
   *skipped* (reason ``"percussion"``): every pair differs by the melodic instrument only.
   (music21 puts only unpitched percussion there; in the full selection that is
   ``demos/drum_sample.xml``.)
5. **Audio**: :func:`rtgan.data.midi.render.render_midi` with ``fluidsynth -ni -q -R 0 -C 0``
   (reverb and chorus off, as :mod:`rtgan.data.notes`: the pair differs by instrument only,
   with no room sound smearing the onsets; float WAV) at :attr:`PairSetConfig.render_sample_rate` (48 kHz: FluidSynth's
   sample interpolation has no anti-alias filter, and 48 kHz -> 16 kHz is an integer factor
   3), mono = mean of the two channels, resampled with :func:`rtgan.audio.io.resample`, then
   every program of a piece cut to the shortest render (renders start on the same sample and
   differ only in how long their last notes ring; at most ``max_seconds``). No gain change:
   the level difference between instruments is part of the mapping.
6. **Files**: ``<program:03d>/<piece-id>.flac`` (24-bit, mono, written atomically), e.g.
   ``000/bach__bwv66.6.mxl.flac`` (input) and ``040/bach__bwv66.6.mxl.flac`` (violin).
   A piece whose render (any program) peaks below :attr:`PairSetConfig.silence_dbfs` is
   skipped (``"silent"``); a piece music21 or FluidSynth can't handle is skipped with its error.

Folder: ``pairs.jsonl`` (one row per piece: ``piece`` (score path), ``id``, ``split``,
``seconds``, ``samples``, ``sample_rate``, ``input_program``, ``paths`` and ``peak_dbfs``
keyed by the program as a string) and ``pairs_config.json`` (``target``: the config, the
resolved piece list, FluidSynth's version and options, the soundfont's sha256, music21's
version; ``build``: counts, skipped pieces, time), written last: a folder holding it with
the same target and every listed file is a complete set and is kept as is.

:class:`PairDataset` serves aligned ``(input, target)`` crops; :func:`input_target_snr` is
the seed's baseline row (SNR of the untouched input against the target; -4.70 +- 3.23 dB
in the seed, on MAESTRO).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import logging
import math
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from ..audio.io import resample, write_audio
from ..fileio import atomic_write_text
from .common import (SPLITS, EpochRNG, file_sha256, load_mono, peak_dbfs, read_built_config, read_jsonl, run_tasks,
                     unit_hash)
from .midi.export import export_midi, rewrite_programs
from .midi.pieces import GM_PROGRAMS, resolve_pieces
from .midi.render import MAX_RENDER_SAMPLE_RATE, render_midi
from .midi.tools import (SOURCE_NAME, MidiSourceError, MissingToolError, check_tools, require_mido,
                         require_music21)

log = logging.getLogger(__name__)

__all__ = ["MANIFEST", "CONFIG_FILE", "PROGRAM_NAMES", "PairSetConfig", "piece_id", "score_cost",
           "split_pieces",
           "select_pair_pieces", "check_pair_tools", "render_pair", "build_pairs", "read_manifest", "read_config",
           "PairDataset", "WithChannel", "input_target_snr"]

#: Manifest file name inside a pair-set folder.
MANIFEST = "pairs.jsonl"
#: Config / provenance file name inside a pair-set folder (written last).
CONFIG_FILE = "pairs_config.json"
#: Names of the default programs (0-based GM), for summaries.
PROGRAM_NAMES: dict[int, str] = {**GM_PROGRAMS, 40: "Violin"}
#: FluidSynth options after render_midi's own ``-ni -q``: reverb and chorus off, float WAV.
DEFAULT_FLUIDSYNTH_OPTIONS: tuple[str, ...] = ("-R", "0", "-C", "0", "-o", "synth.dynamic-sample-loading=1",
                                               "-o", "audio.file.format=float")
#: Parse-cost factor of ABC and Humdrum scores against MusicXML (see :func:`score_cost`).
SLOW_FORMAT_FACTOR = 20
#: Longest one fluidsynth run may take, seconds (a 30 s piece renders in about half a second).
PAIR_RENDER_TIMEOUT = 300.0
#: Bump when rendering or file layout changes (part of the target: a folder built before is rebuilt).
_PAIRS_FORMAT = 1
_DRUM_CHANNEL = 9
_FILE_RE = re.compile(r"^[A-Za-z0-9._-]+\.flac$")
_PROGRAM_DIR_RE = re.compile(r"^\d{3}$")


def _int(name: str, v, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"PairSetConfig.{name} must be an integer, got {v!r}")
    if not lo <= int(v) <= hi:
        raise ValueError(f"PairSetConfig.{name} must lie in {lo}..{hi}, got {v}")
    return int(v)


def _float(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(v):
        raise ValueError(f"PairSetConfig.{name} must be a finite number, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class PairSetConfig:
    """Everything that defines a pair set (all defaults here; validated on creation).

    Attributes:
        input_program: 0-based GM program of the input render (0, acoustic grand piano, as the seed).
        target_programs: programs of the target renders (default 24 nylon guitar, 40 violin,
            73 flute: a plucked, a bowed and a blown instrument; stored sorted).
        sample_rate: output rate, Hz. 16 kHz, not the seed's 44.1 kHz (MAESTRO): rtgan's CPU
            budget, and the 16 kHz family of its other sets (notes, SR16); FluidR3's samples
            hold little above 11 kHz anyway. An 8192-sample crop is then 0.512 s.
        render_sample_rate: FluidSynth's rate (48 kHz, an integer multiple of 16 kHz), resampled
            to ``sample_rate``.
        size: ``"small"`` (4 short pieces, for tests and CI) or ``"full"`` (the first 300 pieces
            of :func:`rtgan.data.midi.pieces.select_pieces`' round-robin order), before the caps.
        pieces: explicit score paths (relative to music21's corpus folder, or files anywhere);
            when given, ``size`` is ignored.
        max_pieces: keep at most this many pieces of the selection (0: all).
        max_score_cost: leave out scores whose :func:`score_cost` is above this (1 MB of
            MusicXML, or 50 KB of ABC or Humdrum: at most about 5-10 s of parsing; 0: no limit).
            Of the full selection's 300 pieces it keeps 249 (247 render; 2 are skipped), a 1-worker
            build of 9 CPU-minutes (11.5 min wall on a busy 2-core machine); a plain 1 MB size cap
            kept 272 and took 16.5 CPU-minutes, most of the extra in ABC tune books.
        max_seconds: audio kept per piece, from its start (30 s: 300 pieces give a few hours
            per program while no long piece dominates a split).
        split_fractions: target share of pieces for train/val/test.
        seed: mixed into the split hash.
        fluidsynth_options: FluidSynth options after ``-ni -q`` (reverb and chorus off).
        silence_dbfs: a piece whose render peaks below this is skipped; :class:`PairDataset`
            skips crops whose input and target both peak below it.
    """

    input_program: int = 0
    target_programs: tuple[int, ...] = (24, 40, 73)
    sample_rate: int = 16000
    render_sample_rate: int = 48000
    size: str = "full"
    pieces: tuple[str, ...] = ()
    max_pieces: int = 0
    max_score_cost: int = 1_000_000
    max_seconds: float = 30.0
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    fluidsynth_options: tuple[str, ...] = DEFAULT_FLUIDSYNTH_OPTIONS
    silence_dbfs: float = -60.0

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        put("input_program", _int("input_program", self.input_program, 0, 127))
        try:
            targets = tuple(_int("target_programs", p, 0, 127) for p in self.target_programs)
        except TypeError:
            raise ValueError(f"PairSetConfig.target_programs must be integers, got {self.target_programs!r}") from None
        if not targets or len(set(targets)) != len(targets) or self.input_program in targets:
            raise ValueError(f"PairSetConfig.target_programs must be distinct programs other than the input "
                             f"program {self.input_program}, got {targets}")
        put("target_programs", tuple(sorted(targets)))
        put("sample_rate", _int("sample_rate", self.sample_rate, 8000, MAX_RENDER_SAMPLE_RATE))
        put("render_sample_rate", _int("render_sample_rate", self.render_sample_rate, self.sample_rate,
                                       MAX_RENDER_SAMPLE_RATE))
        if self.size not in ("small", "full"):
            raise ValueError(f"PairSetConfig.size must be 'small' or 'full', got {self.size!r}")
        if isinstance(self.pieces, str) or not all(isinstance(p, str) and p for p in self.pieces):
            raise ValueError(f"PairSetConfig.pieces must be a sequence of score paths, got {self.pieces!r}")
        put("pieces", tuple(self.pieces))
        if len(set(self.pieces)) != len(self.pieces):
            raise ValueError(f"PairSetConfig.pieces has duplicates: {self.pieces}")
        put("max_pieces", _int("max_pieces", self.max_pieces, 0, 10**6))
        put("max_score_cost", _int("max_score_cost", self.max_score_cost, 0, 10**12))
        put("seed", _int("seed", self.seed, -2**63, 2**63 - 1))
        put("max_seconds", _float("max_seconds", self.max_seconds))
        if not 0 < self.max_seconds <= 3600:
            raise ValueError(f"PairSetConfig.max_seconds must lie in (0, 3600], got {self.max_seconds}")
        put("silence_dbfs", _float("silence_dbfs", self.silence_dbfs))
        if self.silence_dbfs >= 0:
            raise ValueError(f"PairSetConfig.silence_dbfs must be negative, got {self.silence_dbfs}")
        try:
            fr = tuple(float(f) for f in self.split_fractions)
        except (TypeError, ValueError):
            raise ValueError(f"PairSetConfig.split_fractions must be 3 numbers, got {self.split_fractions!r}") from None
        if len(fr) != 3 or any(not f > 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
            raise ValueError(f"PairSetConfig.split_fractions must be 3 positive numbers summing to 1 (train, val, "
                             f"test), got {self.split_fractions!r}")
        put("split_fractions", fr)
        opts = self.fluidsynth_options
        if isinstance(opts, str) or not all(isinstance(o, str) for o in opts):
            raise ValueError(f"PairSetConfig.fluidsynth_options must be a sequence of strings, got {opts!r}")
        if any(o in ("-r", "-F", "-i", "-n", "-q", "-ni") for o in opts):
            raise ValueError(f"PairSetConfig.fluidsynth_options must not set -r, -F, -n, -i or -q "
                             f"(render_midi does), got {opts!r}")
        put("fluidsynth_options", tuple(opts))

    @property
    def programs(self) -> tuple[int, ...]:
        """The input program, then the target programs."""
        return (self.input_program, *self.target_programs)

    def to_dict(self) -> dict:
        """JSON-ready dict of the fields (tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "PairSetConfig":
        """Inverse of :meth:`to_dict` (unknown keys raise ValueError)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"PairSetConfig: unknown fields {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# ---------------------------------------------------------------- pieces and splits

def piece_id(piece: str) -> str:
    """File stem of a piece: its score path with ``/`` as ``__`` and other odd characters as ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(piece).replace("\\", "/").strip("/").replace("/", "__"))


def score_cost(path: Path | str) -> int:
    """music21's parse cost of a score, in MusicXML bytes: its size, as music21 reads it, times a format factor.

    The size of an ``.mxl`` is its unzipped size. ABC and Humdrum count
    :data:`SLOW_FORMAT_FACTOR` (20) times their size: music21 parses them 20-30 times slower
    per byte than MusicXML (measured on the full selection: about 0.25-0.4 s/KB against 0.01).
    """
    path = Path(path)
    size = path.stat().st_size
    if path.suffix.lower() == ".mxl":
        try:
            with zipfile.ZipFile(path) as z:
                size = sum(i.file_size for i in z.infolist())
        except (OSError, zipfile.BadZipFile):
            pass
    return size * SLOW_FORMAT_FACTOR if path.suffix.lower() in (".abc", ".krn") else size


def split_pieces(pieces: Iterable[str], cfg: PairSetConfig = PairSetConfig()) -> dict[str, str]:
    """Train/val/test split by piece: ``{piece: split}``.

    Each piece gets ``u = sha256("rtgan-pairs/{seed}/{piece}")`` in [0, 1)
    (:func:`rtgan.data.common.unit_hash`): ``u < f_train`` -> train, ``u < f_train + f_val`` ->
    val, else test. With at least 3 pieces no split stays empty: an empty test, then val, then
    train split takes the piece whose ``u`` is closest to the centre of its interval among the
    pieces of splits holding >= 2. The result depends only on the set of pieces, the split
    fractions and the seed (a piece keeps its split when other pieces are added, unless it is
    moved to fill an empty split).
    """
    f_train, f_val, _ = cfg.split_fractions
    t1, t2 = f_train, f_train + f_val
    uniq = sorted(set(pieces))
    u = {p: unit_hash(f"rtgan-pairs/{cfg.seed}/{p}") for p in uniq}
    out = {p: ("train" if u[p] < t1 else "val" if u[p] < t2 else "test") for p in uniq}
    if len(uniq) >= 3:
        centre = {"train": t1 / 2, "val": (t1 + t2) / 2, "test": (t2 + 1.0) / 2}
        for split in ("test", "val", "train"):
            counts = {s: sum(1 for v in out.values() if v == s) for s in SPLITS}
            if counts[split]:
                continue
            donors = [p for p in uniq if counts[out[p]] >= 2]
            out[min(donors, key=lambda p: (abs(u[p] - centre[split]), p))] = split
    return out


def select_pair_pieces(cfg: PairSetConfig = PairSetConfig()) -> list[tuple[Path, str, str]]:
    """(root, piece path relative to root, split) of every piece a build renders, in selection order.

    :func:`rtgan.data.midi.pieces.resolve_pieces` (``cfg.pieces`` or ``cfg.size``), minus
    scores whose :func:`score_cost` is above ``cfg.max_score_cost``, the first ``cfg.max_pieces``; split by
    :func:`split_pieces` over the kept pieces.

    Raises:
        MissingToolError: music21 is not installed.
        ValueError: no piece is left.
    """
    items = resolve_pieces(list(cfg.pieces) or None, cfg.size)
    kept, costly = [], []
    for root, rel, _ in items:
        try:
            cost = score_cost(Path(root) / rel)
        except OSError:
            log.warning("score %s not found: left out", Path(root) / rel)
            continue
        if cfg.max_score_cost and cost > cfg.max_score_cost:
            log.debug("%s: parse cost %d > max_score_cost %d: left out", rel, cost, cfg.max_score_cost)
            costly.append(rel)
            continue
        kept.append((Path(root), rel))
    if costly:
        log.info("%d of %d pieces left out: parse cost above max_score_cost %d (first: %s)", len(costly), len(items),
                 cfg.max_score_cost, costly[0])
    if cfg.max_pieces:
        kept = kept[:cfg.max_pieces]
    if not kept:
        raise ValueError(f"no piece left to render ({len(items)} selected, all above max_score_cost "
                         f"{cfg.max_score_cost} or missing)")
    ids = [piece_id(rel) for _, rel in kept]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"pieces with the same file name {dup[0]!r}: pass distinct score paths")
    splits = split_pieces([rel for _, rel in kept], cfg)
    return [(root, rel, splits[rel]) for root, rel in kept]


# ---------------------------------------------------------------- tools

def check_pair_tools(soundfont: Path | str | None = None) -> dict:
    """Check fluidsynth, the soundfont, mido and music21 before any work; return their facts.

    Returns:
        ``{"fluidsynth", "soundfont", "music21_version", "mido"}``.

    Raises:
        MissingToolError: one line naming what is missing and how to install it.
    """
    try:
        facts = check_tools(soundfont)
        require_music21()
    except MissingToolError as e:
        raise MissingToolError(str(e).replace(f"the {SOURCE_NAME} corpus source", "building the pair set")) from None
    try:
        facts["mido"] = importlib.metadata.version("mido")
    except importlib.metadata.PackageNotFoundError:
        facts["mido"] = ""
    return facts


# ---------------------------------------------------------------- rendering

def _drum_notes(midi_path: Path) -> int:
    """Note-ons with velocity > 0 on channel 10 (GM drums)."""
    mido = require_mido()
    return sum(1 for msg in mido.MidiFile(str(midi_path))
               if msg.type == "note_on" and msg.velocity > 0 and msg.channel == _DRUM_CHANNEL)


def render_pair(score_path: Path | str, cfg: PairSetConfig = PairSetConfig(),
                soundfont: Path | str | None = None) -> dict[int, np.ndarray]:
    """Render one score with every program of ``cfg``: ``{program: float32 (n,)}``, all the same length.

    Raises:
        MissingToolError: fluidsynth, the soundfont, mido or music21 is missing.
        MidiSourceError: the score can't be parsed, exported or rendered, or it has percussion
            (channel 10) notes.
    """
    with tempfile.TemporaryDirectory(prefix="rtgan-pair-") as tmp:
        base = export_midi(score_path, Path(tmp, "score.mid"), max_seconds=cfg.max_seconds)
        drums = _drum_notes(base)
        if drums:
            raise MidiSourceError(f"percussion: {drums} notes on channel 10 would sound the same in input and target")
        audio: dict[int, np.ndarray] = {}
        for program in cfg.programs:
            mid = rewrite_programs(base, Path(tmp, f"p{program:03d}.mid"), program, max_seconds=cfg.max_seconds)
            wav = render_midi(mid, Path(tmp, f"p{program:03d}.wav"), cfg.render_sample_rate, soundfont=soundfont,
                              timeout=PAIR_RENDER_TIMEOUT, options=cfg.fluidsynth_options)
            try:
                x, rate, _ = load_mono(wav, cfg.max_seconds + 0.1)
            except Exception as e:  # noqa: BLE001
                raise MidiSourceError(f"fluidsynth wrote no usable audio for program {program}: "
                                      f"{type(e).__name__}: {e}") from e
            wav.unlink()
            x = resample(x, rate, cfg.sample_rate) if rate != cfg.sample_rate else x
            audio[program] = np.asarray(x, dtype=np.float32)
    n = min(min(x.shape[-1] for x in audio.values()), int(round(cfg.max_seconds * cfg.sample_rate)))
    return {p: np.ascontiguousarray(x[:n]) for p, x in audio.items()}


def _pair_task(task: tuple) -> dict:
    """Pool worker: render one piece with every program, write its files; returns its row (or a skip)."""
    root, rel, split, cfg_dict, out_dir, sf2 = task
    cfg = PairSetConfig.from_dict(cfg_dict)
    try:
        audio = render_pair(Path(root) / rel, cfg, soundfont=sf2)
    except MidiSourceError as e:
        return {"piece": rel, "skipped": str(e)}
    peaks = {p: peak_dbfs(x) for p, x in audio.items()}
    quiet = [p for p, v in peaks.items() if not v >= cfg.silence_dbfs]
    if quiet:
        return {"piece": rel, "skipped": f"silent (program {quiet[0]} peaks at {peaks[quiet[0]]} dBFS)"}
    pid = piece_id(rel)
    paths = {}
    for p, x in audio.items():
        path = f"{p:03d}/{pid}.flac"
        write_audio(Path(out_dir) / path, x, cfg.sample_rate, subtype="PCM_24")
        paths[str(p)] = path
    n = next(iter(audio.values())).shape[-1]
    return {"piece": rel, "skipped": None,
            "row": {"piece": rel, "id": pid, "split": split, "samples": int(n),
                    "seconds": round(n / cfg.sample_rate, 4), "sample_rate": cfg.sample_rate,
                    "input_program": cfg.input_program, "paths": paths,
                    "peak_dbfs": {str(p): v for p, v in peaks.items()}}}


def _target(cfg: PairSetConfig, tools: dict, sf2_sha: str, pieces: list[tuple[Path, str, str]]) -> dict:
    """The part of ``pairs_config.json`` that must match for a folder to count as built."""
    return {"format": _PAIRS_FORMAT, "config": cfg.to_dict(), "pieces": [[rel, split] for _, rel, split in pieces],
            "fluidsynth": tools["fluidsynth"], "fluidsynth_options": ["-ni", "-q", *cfg.fluidsynth_options],
            "soundfont_sha256": sf2_sha, "music21": tools["music21_version"],
            "resampler": "rtgan.audio.io.resample", "file_format": "FLAC PCM_24 mono"}


def _is_complete(out_dir: Path, target: dict) -> bool:
    try:
        meta = json.loads((out_dir / CONFIG_FILE).read_text())
        if meta.get("target") != json.loads(json.dumps(target)):
            return False
        rows = read_manifest(out_dir)
    except (OSError, ValueError):
        return False
    return (len(rows) == meta.get("build", {}).get("pieces")
            and all((out_dir / p).is_file() for r in rows for p in r["paths"].values()))


def build_pairs(out_dir: Path | str, cfg: PairSetConfig = PairSetConfig(), progress: bool = True, *,
                workers: int = 2, soundfont: Path | str | None = None) -> Path:
    """Render the pair set into ``out_dir`` (see the module docstring); return ``out_dir``.

    A folder that already holds a complete set with the same target (config, piece list,
    FluidSynth version and options, soundfont sha256, music21 version) is returned as is.
    Otherwise its ``pairs_config.json`` is removed first, every piece is rendered again
    (``workers`` processes; 1: in this process), audio files no longer in the set are removed,
    and ``pairs.jsonl`` then ``pairs_config.json`` are written.

    Raises:
        MissingToolError: fluidsynth, the soundfont, mido or music21 is missing (checked first).
        ValueError: no piece selected, or every piece was skipped.
    """
    out_dir = Path(out_dir)
    if not isinstance(cfg, PairSetConfig):
        raise TypeError(f"cfg must be a PairSetConfig, got {type(cfg).__name__}")
    if int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    tools = check_pair_tools(soundfont)
    pieces = select_pair_pieces(cfg)
    target = _target(cfg, tools, file_sha256(Path(tools["soundfont"])), pieces)
    if _is_complete(out_dir, target):
        log.info("%s already holds this pair set: nothing to render", out_dir)
        return out_dir
    for p in cfg.programs:
        (out_dir / f"{p:03d}").mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_FILE).unlink(missing_ok=True)
    cfg_dict = cfg.to_dict()
    tasks = [(str(root), rel, split, cfg_dict, str(out_dir), tools["soundfont"]) for root, rel, split in pieces]
    start = time.monotonic()
    results: list[dict] = run_tasks(_pair_task, tasks, workers, "pairs", "piece", progress)
    skipped = {r["piece"]: r["skipped"] for r in results if r["skipped"]}
    for piece, reason in sorted(skipped.items()):
        log.warning("skipped %s: %s", piece, reason)
    order = {rel: i for i, (_, rel, _) in enumerate(pieces)}
    rows = sorted((r["row"] for r in results if not r["skipped"]), key=lambda r: order[r["piece"]])
    if not rows:
        raise ValueError(f"build_pairs: every one of the {len(tasks)} pieces was skipped "
                         f"(first: {next(iter(skipped.items()))})")
    clipped = [r["piece"] for r in rows if max(r["peak_dbfs"].values()) > 0]
    if clipped:
        log.warning("%d pieces peak above 0 dBFS and were clipped by the 24-bit FLAC (first: %s)",
                    len(clipped), clipped[0])
    listed = {p for r in rows for p in r["paths"].values()}
    for folder in out_dir.iterdir():
        if folder.is_dir() and _PROGRAM_DIR_RE.match(folder.name):
            for f in folder.iterdir():
                if _FILE_RE.match(f.name) and f"{folder.name}/{f.name}" not in listed:
                    f.unlink()
    atomic_write_text(out_dir / MANIFEST, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    per_split = {s: {"pieces": sum(r["split"] == s for r in rows),
                     "seconds": round(sum(r["seconds"] for r in rows if r["split"] == s), 3)} for s in SPLITS}
    meta = {"target": target,
            "build": {"pieces": len(rows), "selected": len(tasks), "skipped": dict(sorted(skipped.items())),
                      "per_split": per_split, "soundfont": tools["soundfont"], "mido": tools["mido"],
                      "seconds_taken": round(time.monotonic() - start, 1)}}
    atomic_write_text(out_dir / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info("built %d pieces x %d programs (%d skipped) in %s", len(rows), len(cfg.programs), len(skipped), out_dir)
    return out_dir


# ---------------------------------------------------------------- reading

def read_manifest(root: Path | str) -> list[dict]:
    """Rows of ``root/pairs.jsonl`` (one per piece, selection order).

    Raises:
        FileNotFoundError: ``root`` holds no ``pairs.jsonl`` (build it with :func:`build_pairs`).
    """
    return read_jsonl(Path(root) / MANIFEST, f"build the pair set first (rtgan data pairs --out {root})")


def read_config(root: Path | str) -> PairSetConfig:
    """The :class:`PairSetConfig` a pair-set folder was built with.

    Raises:
        FileNotFoundError: ``root`` holds no ``pairs_config.json`` (not built, or the build did not finish).
    """
    return PairSetConfig.from_dict(read_built_config(Path(root) / CONFIG_FILE, f"build the pair set first (rtgan data pairs --out {root})"))


def _read_span(path: Path, start: int, frames: int) -> np.ndarray:
    """``frames`` mono float32 samples from ``start`` (zero-padded past the end)."""
    x, _ = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    out = np.zeros(frames, dtype=np.float32)
    out[:x.shape[0]] = x[:, 0]
    return out


class PairDataset(EpochRNG, Dataset):
    """Aligned ``(input, target)`` crops of one split: the seed's rectangular 8192-sample windows.

    Items are two ``torch.float32`` tensors of shape ``(crop,)``: the input program's render and
    the target program's render over the same samples (no window, no gain change).

    Crops: every piece is cut into a grid of ``len // crop`` non-overlapping crops (a piece
    shorter than ``crop`` gives one crop, zero-padded); grid crops where input and target both
    peak below the set's ``silence_dbfs`` are dropped. ``len(dataset)`` is the number of grid
    crops left, so pieces count by their sounding length.

    * ``random_crop=False`` (validation, test): item ``i`` is grid crop ``i``, the same every time.
    * ``random_crop=True`` (training): item ``i`` takes the piece of grid crop ``i`` and a start
      drawn uniformly from the whole piece, redrawn (up to 16 times) while silent in both; then
      grid crop ``i`` itself. Draws come from a ``numpy.random.Generator`` per process seeded with
      ``(seed, epoch, worker id)`` (as :class:`rtgan.data.dataset.ClipDataset`); call
      :meth:`set_epoch` each epoch.

    Args:
        root: a folder built by :func:`build_pairs`.
        split: ``"train"``, ``"val"`` or ``"test"``.
        target_program: one of the set's target programs (0-based GM).
        crop: samples per item (8192, as the seed).
        random_crop: random starts (training) or the fixed grid.
        seed: seed of the random starts.
        silence_dbfs: override the set's silence threshold (None: the set's, else -60).

    Raises:
        FileNotFoundError: ``root`` holds no ``pairs.jsonl``.
        ValueError: unknown split, a program the set lacks, or no sounding crop in the split.
    """

    _REDRAWS = 16

    def __init__(self, root: Path | str, split: str, target_program: int, crop: int = 8192,
                 random_crop: bool = True, seed: int = 0, silence_dbfs: float | None = None) -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise ValueError(f"PairDataset: split must be one of {SPLITS}, got {split!r}")
        if isinstance(crop, bool) or not isinstance(crop, (int, np.integer)) or crop < 1:
            raise ValueError(f"PairDataset: crop must be a positive integer, got {crop!r}")
        rows = read_manifest(self.root)
        self.split, self.crop = split, int(crop)
        self.target_program = int(target_program)
        self.random_crop, self.seed, self.epoch = bool(random_crop), int(seed), 0
        if silence_dbfs is None:
            try:
                silence_dbfs = read_config(self.root).silence_dbfs
            except FileNotFoundError:
                silence_dbfs = PairSetConfig.silence_dbfs
        self.silence_dbfs = float(silence_dbfs)
        self._threshold = 10.0 ** (self.silence_dbfs / 20.0)
        key = str(self.target_program)
        missing = [r["piece"] for r in rows if key not in r["paths"] or str(r["input_program"]) == key]
        if missing:
            progs = sorted({int(p) for r in rows for p in r["paths"]} - {int(r["input_program"]) for r in rows})
            raise ValueError(f"PairDataset: {self.root} has no target program {self.target_program} "
                             f"(targets: {progs})")
        self.rows = [r for r in rows if r["split"] == split]
        rates = {int(r["sample_rate"]) for r in rows}
        if len(rates) > 1:
            raise ValueError(f"PairDataset: {self.root} mixes sample rates {sorted(rates)}")
        self.sample_rate = rates.pop() if rates else 0
        self.cells: list[tuple[int, int]] = []  # (row index, start) of the sounding grid crops
        for i, r in enumerate(self.rows):
            x, y = self._load(r)
            k = max(1, x.shape[0] // self.crop)
            m = min(x.shape[0], k * self.crop)
            both = np.maximum(np.abs(x[:m]), np.abs(y[:m]))  # per grid crop: the larger of the two peaks
            peak = both.reshape(k, -1).max(axis=1) if m else np.zeros(1, dtype=np.float32)
            self.cells.extend((i, j * self.crop) for j in np.flatnonzero(peak >= self._threshold).tolist())
        if not self.cells:
            raise ValueError(f"PairDataset: no sounding {self.crop}-sample crop in the {split} split of {self.root} "
                             f"({len(self.rows)} pieces)")

    def _paths(self, r: dict) -> tuple[Path, Path]:
        return self.root / r["paths"][str(r["input_program"])], self.root / r["paths"][str(self.target_program)]

    def _load(self, r: dict) -> tuple[np.ndarray, np.ndarray]:
        a, b = self._paths(r)
        x, sr_x = sf.read(str(a), dtype="float32", always_2d=True)
        y, sr_y = sf.read(str(b), dtype="float32", always_2d=True)
        if x.shape != y.shape or x.shape[1] != 1 or sr_x != sr_y or sr_x != self.sample_rate:
            raise ValueError(f"PairDataset: {a} and {b} are not an aligned mono pair at {self.sample_rate} Hz "
                             f"({x.shape} at {sr_x} Hz vs {y.shape} at {sr_y} Hz)")
        return x[:, 0], y[:, 0]

    def _sounding(self, x: np.ndarray, y: np.ndarray) -> bool:
        return bool(x.size and np.max(np.abs(x)) >= self._threshold) or bool(
            y.size and np.max(np.abs(y)) >= self._threshold)

    def __len__(self) -> int:
        return len(self.cells)

    def crop_at(self, i: int) -> tuple[int, int]:
        """(piece index in :attr:`rows`, start sample) of grid crop ``i``."""
        return self.cells[i]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        ri, start = self.cells[i]
        r = self.rows[ri]
        a, b = self._paths(r)
        if self.random_crop and int(r["samples"]) > self.crop:
            rng = self._generator()
            for _ in range(self._REDRAWS):
                s = int(rng.integers(0, int(r["samples"]) - self.crop + 1))
                x, y = _read_span(a, s, self.crop), _read_span(b, s, self.crop)
                if self._sounding(x, y):
                    return torch.from_numpy(x), torch.from_numpy(y)
        x, y = _read_span(a, start, self.crop), _read_span(b, start, self.crop)
        return torch.from_numpy(x), torch.from_numpy(y)

    def __repr__(self) -> str:
        return (f"PairDataset({str(self.root)!r}, split={self.split!r}, target_program={self.target_program}, "
                f"crop={self.crop}, random_crop={self.random_crop}: {len(self.rows)} pieces, {len(self)} crops)")


def input_target_snr(root: Path | str, split: str, target_program: int, crop: int | None = 8192,
                     batch: int = 256) -> dict:
    """The seed's baseline: SNR (dB) of the untouched input against the target.

    ``rtgan.metrics.snr(input, target)`` (``10 log10(||t||^2 / ||t - x||^2)``) per sounding grid
    crop of :class:`PairDataset` (``crop`` samples, as the seed's test windows), or per whole
    piece (``crop=None``).

    The value depends on the input's level against the target's: for uncorrelated signals it is
    ``-10 log10(1 + ||x||^2 / ||t||^2)``, so ``level_db`` (the input-to-target energy ratio over
    everything measured) comes with it. FluidR3's piano is quieter than its violin, flute and
    guitar, hence baselines near -1 dB here against the seed's -4.70 dB.

    Returns:
        ``{"mean", "std" (population), "n", "level_db", "values": list of floats, "keys": list of
        (piece, start) for crops or piece for whole pieces}``.

    Raises:
        FileNotFoundError, ValueError: as :class:`PairDataset`.
    """
    from ..metrics import snr
    energy = np.zeros(2)  # input, target
    if crop is None:
        ds = PairDataset(root, split, target_program, crop=1 << 30, random_crop=False)
        values, keys = [], []
        for r in ds.rows:
            x, y = (a.astype(np.float64) for a in ds._load(r))
            values.append(float(snr(x, y)))
            keys.append(r["piece"])
            energy += (np.sum(x ** 2), np.sum(y ** 2))
    else:
        ds = PairDataset(root, split, target_program, crop=crop, random_crop=False)
        values, keys = [], []
        cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for lo in range(0, len(ds), batch):
            xs, ys = [], []
            for i in range(lo, min(lo + batch, len(ds))):
                ri, s = ds.crop_at(i)
                if ri not in cache:
                    cache.clear()
                    cache[ri] = ds._load(ds.rows[ri])
                x, y = cache[ri]
                xc, yc = np.zeros(crop), np.zeros(crop)
                xc[:len(x[s:s + crop])] = x[s:s + crop]
                yc[:len(y[s:s + crop])] = y[s:s + crop]
                xs.append(xc)
                ys.append(yc)
                keys.append((ds.rows[ri]["piece"], s))
            xb, yb = np.stack(xs), np.stack(ys)
            values.extend(float(v) for v in snr(xb, yb))
            energy += (np.sum(xb ** 2), np.sum(yb ** 2))
    v = np.asarray(values, dtype=np.float64)
    level = 10 * math.log10(energy[0] / energy[1]) if energy[0] > 0 and energy[1] > 0 else float("nan")
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(v.size), "level_db": float(level),
            "values": values, "keys": keys}


class WithChannel(Dataset):
    """``(input (n,), target (n,))`` items as ``((1, n), (1, n))``, passing ``set_epoch`` through."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.ds[i]
        return x[None], y[None]

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.ds, "set_epoch"):
            self.ds.set_epoch(epoch)
