"""The opt-in ``music21-fluidsynth`` corpus source: music21's bundled scores, rendered with FluidSynth.

music21 ships a corpus of scores (MusicXML, Humdrum, ABC; about 176 hours
of music in all). This module turns a deterministic selection of them into
audio for :func:`rtgan.data.corpus.build_corpus`:

1. **Pieces** (:func:`select_pieces`): the core corpus paths
   (``music21.corpus.getCorePaths()``) relative to the corpus folder, sorted,
   with the suffixes in :data:`SCORE_SUFFIXES` (Roman-numeral analyses,
   ``.rntxt``, are left out: they restate pieces that are already there).
   They are put in *round-robin order over the top-level folders* (composer
   or collection; folders sorted by name, pieces inside a folder in a salted
   sha256 order independent of the split hash) so that a capped selection is spread over all composers instead of
   being mostly Palestrina and Ryan's Mammoth Collection. ``size="full"``
   takes the first :data:`FULL_MAX_PIECES` (300) pieces of that order.
   Every piece gets its train/val/test split from
   :func:`rtgan.data.corpus.assign_splits` over those 300 pieces (unweighted:
   durations are only known after parsing, so ~80/10/10 of the pieces).
   ``size="small"`` takes, per split, the first pieces of the same order
   whose file is at most :data:`SMALL_MAX_FILE_BYTES` (2 train, 1 val,
   1 test: :data:`SMALL_PIECES_PER_SPLIT`), so a small build's pieces keep
   the split they have in a full build.
2. **MIDI** (:func:`export_midi`): each piece is parsed with music21 and
   written with ``score.write('midi')``. A file holding several scores (an
   ABC tune book parses to an ``Opus``) becomes one MIDI file with the tunes
   one after another, :data:`OPUS_GAP_SECONDS` apart. MIDI files are merged
   into one track with a fixed tempo (times in seconds are kept) and cut at
   :data:`MAX_PIECE_SECONDS` (15 min). The result is cached under
   ``<out>/.rtgan_cache/music21-fluidsynth/midi/``.
3. **Programs** (:func:`programs_for`, :func:`rewrite_programs`): every
   piece is rendered :data:`PROGRAMS_PER_PIECE` (2) times, with programs
   picked from :data:`GM_PROGRAMS` by a hash of the piece path. All melodic
   channels (every channel but 10, the GM drum channel) play that program:
   a program change on each channel at time 0, every later program change
   rewritten, bank selects dropped (done with ``mido``).
4. **Audio** (:func:`render_midi`, :func:`render_task_audio`):
   ``fluidsynth -ni -q -r RATE -F out.wav FluidR3_GM.sf2 in.mid`` (Debian
   packages ``fluidsynth`` and ``fluid-soundfont-gm``; default gain, reverb
   and chorus) at 48 kHz, or at the corpus rate if that is higher (at most
   96 kHz), into a temporary WAV that the corpus pipeline then mixes to
   mono, resamples, cuts into clips and writes as FLAC.

The FluidR3 samples are mostly band-limited well below 20 kHz: most rendered
clips have almost nothing above about 11-12 kHz (measured ``bandwidth_hz``
of a small build at 48 kHz: piano, guitar and flute 10.4-12.1 kHz; the
harpsichord reaches 17-18 kHz), so this source is for the 22.05 kHz
vocoders, not for 48 kHz super-resolution targets (filter on the
manifest's ``bandwidth_hz``).

Manifest rows: ``source`` ``"music21-fluidsynth"``, ``package`` ``"music21"``
with music21's version, ``original_path`` ``<score path>/program-NNN`` (score
path relative to music21's corpus folder, NNN the 0-based GM program),
``split_key`` the score path (all programs of a piece share a split),
``domain`` ``"music"``, ``original_sample_rate`` the render rate.

A score or MIDI file that can't be parsed, exported or rendered is skipped
with a logged warning; a missing ``fluidsynth``, soundfont, ``mido`` or
``music21`` stops the build before any work with :class:`MissingToolError`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np

from .corpus import _load_mono, _unit_hash, assign_splits
from .sources import OPT_IN_SOURCES

__all__ = [
    "SOURCE_NAME",
    "LICENSE",
    "DEFAULT_SOUNDFONT",
    "GM_PROGRAMS",
    "PROGRAMS_PER_PIECE",
    "FULL_MAX_PIECES",
    "SMALL_PIECES_PER_SPLIT",
    "SMALL_MAX_FILE_BYTES",
    "SCORE_SUFFIXES",
    "RENDER_SAMPLE_RATE",
    "MAX_PIECE_SECONDS",
    "MidiSourceError",
    "MissingToolError",
    "check_tools",
    "find_fluidsynth",
    "music21_version",
    "corpus_root",
    "corpus_pieces",
    "order_pieces",
    "select_pieces",
    "programs_for",
    "piece_files",
    "export_midi",
    "rewrite_programs",
    "render_midi",
    "render_settings",
    "render_task_audio",
]

log = logging.getLogger(__name__)

#: Source name in the corpus registry and the manifest.
SOURCE_NAME = "music21-fluidsynth"
#: Manifest ``license`` of every clip of this source.
LICENSE = OPT_IN_SOURCES[SOURCE_NAME].license
#: Soundfont of Debian's ``fluid-soundfont-gm`` (override: ``$RTGAN_SOUNDFONT``).
DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
#: General MIDI programs (0-based) a piece may be rendered with.
GM_PROGRAMS: dict[int, str] = {
    0: "Acoustic Grand Piano",
    6: "Harpsichord",
    24: "Acoustic Guitar (nylon)",
    48: "String Ensemble 1",
    71: "Clarinet",
    73: "Flute",
}
#: Renders (programs) per piece.
PROGRAMS_PER_PIECE = 2
#: Pieces of a ``size="full"`` build (first of the round-robin order).
FULL_MAX_PIECES = 300
#: Pieces per split of a ``size="small"`` build.
SMALL_PIECES_PER_SPLIT: dict[str, int] = {"train": 2, "val": 1, "test": 1}
#: Largest score file (bytes) a ``size="small"`` build takes (keeps parsing fast).
SMALL_MAX_FILE_BYTES = 16 * 1024
#: Score formats taken from the corpus (lower case).
SCORE_SUFFIXES: tuple[str, ...] = (".mxl", ".xml", ".musicxml", ".krn", ".abc", ".mid", ".midi")
#: Render rate (Hz) unless the corpus rate is higher.
RENDER_SAMPLE_RATE = 48000
#: Highest rate FluidSynth renders at.
MAX_RENDER_SAMPLE_RATE = 96000
#: Longest audio rendered from one piece, seconds.
MAX_PIECE_SECONDS = 900.0
#: Silence between the scores of a multi-score file, seconds.
OPUS_GAP_SECONDS = 1.0
#: Longest a single fluidsynth run may take, seconds.
FLUIDSYNTH_TIMEOUT = 1800.0
#: Bump when the MIDI export or rendering changes (invalidates cached clips).
_MIDI_PIPELINE_VERSION = 1
#: Merged MIDI files: 480 ticks per beat at 120 bpm = 960 ticks per second.
_TICKS_PER_BEAT = 480
_TEMPO = 500_000
_TICKS_PER_SECOND = _TICKS_PER_BEAT * 1_000_000 / _TEMPO
_TAIL_SECONDS = 1.0
_DRUM_CHANNEL = 9
_PROGRAM_DIR = "program-"
_INSTALL_HINT = "install them with `apt-get install fluidsynth fluid-soundfont-gm`"


class MidiSourceError(RuntimeError):
    """A score or MIDI file that can't be parsed, exported or rendered (the piece is skipped)."""


class MissingToolError(RuntimeError):
    """``fluidsynth``, the soundfont, ``mido`` or ``music21`` is not installed."""


# ---------------------------------------------------------------------------
# tools
# ---------------------------------------------------------------------------

def _soundfont_path(soundfont: Path | str | None = None) -> Path:
    return Path(soundfont or os.environ.get("RTGAN_SOUNDFONT") or DEFAULT_SOUNDFONT)


def find_fluidsynth(soundfont: Path | str | None = None) -> tuple[str, Path]:
    """Return (fluidsynth executable, soundfont path).

    The soundfont is ``soundfont``, else ``$RTGAN_SOUNDFONT``, else
    :data:`DEFAULT_SOUNDFONT`.

    Raises:
        MissingToolError: naming what is missing and the ``apt-get install``
            command that provides it.
    """
    exe = shutil.which("fluidsynth")
    sf2 = _soundfont_path(soundfont)
    missing = []
    if exe is None:
        missing.append("the `fluidsynth` program (Debian package fluidsynth)")
    if not sf2.is_file():
        missing.append(f"the soundfont {sf2} (Debian package fluid-soundfont-gm)")
    if missing:
        raise MissingToolError(f"the {SOURCE_NAME} corpus source needs {' and '.join(missing)}; "
                               f"{_INSTALL_HINT}")
    return exe, sf2


def _require(module: str):
    """Import ``module`` (``mido`` or ``music21``) or raise :class:`MissingToolError` saying how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingToolError(f"the {SOURCE_NAME} corpus source needs the Python package {module} "
                               f"(pip install {module})") from e


def _mido():
    return _require("mido")


def _music21():
    return _require("music21")


def music21_version() -> str:
    """Installed music21 version (the manifest's ``package_version``)."""
    return str(_music21().__version__)


def fluidsynth_version(exe: str | None = None) -> str:
    """First line of ``fluidsynth --version`` ("" if it can't be run)."""
    try:
        r = subprocess.run([exe or shutil.which("fluidsynth") or "fluidsynth", "--version"],
                           capture_output=True, text=True, timeout=30)
        return (r.stdout.strip().splitlines() or [""])[0]
    except (OSError, subprocess.SubprocessError):
        return ""


def check_tools(soundfont: Path | str | None = None) -> dict:
    """Check everything the source needs before a build starts; return facts for ``corpus.json``.

    Raises:
        MissingToolError: if fluidsynth, the soundfont, mido or music21 is missing.
    """
    exe, sf2 = find_fluidsynth(soundfont)
    _mido()
    return {"music21_version": music21_version(), "fluidsynth": fluidsynth_version(exe),
            "soundfont": str(sf2)}


# ---------------------------------------------------------------------------
# pieces and programs
# ---------------------------------------------------------------------------

def corpus_root() -> Path:
    """Folder of music21's bundled (core) corpus."""
    from music21 import common
    _music21()
    return Path(common.getCorpusFilePath())


def corpus_pieces() -> list[str]:
    """Sorted score paths of music21's core corpus, relative to :func:`corpus_root` (posix)."""
    _music21()
    from music21 import corpus
    root = corpus_root()
    out = set()
    for p in corpus.getCorePaths():
        p = Path(p)
        if p.suffix.lower() in SCORE_SUFFIXES:
            out.add(p.relative_to(root).as_posix())
    return sorted(out)


def order_pieces(pieces: Sequence[str]) -> list[str]:
    """Round-robin order over top-level folders (sorted), sha256 order inside each folder."""
    groups: dict[str, list[str]] = {}
    for p in sorted(set(pieces)):
        groups.setdefault(PurePosixPath(p).parts[0], []).append(p)
    for g in groups.values():
        # salted: a hash independent of the split hash (which is of f"{SOURCE_NAME}/{p}")
        g.sort(key=lambda p: (_unit_hash(f"order/{SOURCE_NAME}/{p}"), p))
    out: list[str] = []
    rounds = max((len(g) for g in groups.values()), default=0)
    for i in range(rounds):
        out.extend(groups[k][i] for k in sorted(groups) if i < len(groups[k]))
    return out


def select_pieces(size: str = "small", pieces: Sequence[str] | None = None,
                  root: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """Deterministic piece selection and splits (see the module docstring).

    Args:
        size: ``"small"`` (4 short pieces: 2 train, 1 val, 1 test) or
            ``"full"`` (the first :data:`FULL_MAX_PIECES` of the order).
        pieces: candidate score paths relative to ``root`` (default: all of
            :func:`corpus_pieces`).
        root: folder the paths are relative to (default :func:`corpus_root`);
            used for the file-size rule of ``"small"``.

    Returns:
        (selected pieces in selection order, ``{piece: split}`` for the
        selected pieces).
    """
    if size not in ("small", "full"):
        raise ValueError(f"size must be 'small' or 'full', not {size!r}")
    if pieces is None:
        pieces = corpus_pieces()
        root = root or corpus_root()
    full = order_pieces(pieces)[:FULL_MAX_PIECES]
    split_of = assign_splits(full, SOURCE_NAME)
    if size == "full":
        return full, split_of
    want = dict(SMALL_PIECES_PER_SPLIT)
    chosen = []
    for p in full:
        split = split_of[p]
        if want.get(split, 0) <= 0:
            continue
        if root is not None:
            try:
                if (Path(root) / p).stat().st_size > SMALL_MAX_FILE_BYTES:
                    continue
            except OSError:
                continue
        chosen.append(p)
        want[split] -= 1
        if all(v <= 0 for v in want.values()):
            break
    return chosen, {p: split_of[p] for p in chosen}


def programs_for(piece: str, count: int = PROGRAMS_PER_PIECE) -> tuple[int, ...]:
    """The GM programs a piece is rendered with: ``count`` of :data:`GM_PROGRAMS`, by hash of the path."""
    order = sorted(GM_PROGRAMS, key=lambda p: (_unit_hash(f"{SOURCE_NAME}/{piece}/program/{p}"), p))
    return tuple(sorted(order[:max(1, min(count, len(order)))]))


def piece_files(pieces: Sequence[str]) -> list[PurePosixPath]:
    """Corpus "file" paths of the renders: ``<piece>/program-NNN`` for each piece and program."""
    return [PurePosixPath(p) / f"{_PROGRAM_DIR}{prog:03d}" for p in pieces for prog in programs_for(p)]


def parse_render_path(path: Path | str) -> tuple[Path, int]:
    """``<score>/program-NNN`` -> (score path, program)."""
    path = Path(path)
    name = path.name
    if not name.startswith(_PROGRAM_DIR) or not name[len(_PROGRAM_DIR):].isdigit():
        raise ValueError(f"not a {SOURCE_NAME} render path (<score>/program-NNN): {path}")
    program = int(name[len(_PROGRAM_DIR):])
    if not 0 <= program <= 127:
        raise ValueError(f"GM program out of range 0..127 in {path}")
    return path.parent, program


# ---------------------------------------------------------------------------
# MIDI
# ---------------------------------------------------------------------------

def _timed_events(mid) -> list[tuple[float, object]]:
    """Channel messages of a MIDI file with their absolute time in seconds (tempo map applied)."""
    t = 0.0
    out = []
    for msg in mid:  # all tracks merged; msg.time = seconds since the previous message
        t += float(msg.time)
        if msg.is_meta or msg.type in ("sysex", "start", "stop", "continue", "clock", "reset"):
            continue
        out.append((t, msg))
    return out


def _read_events(path: Path) -> tuple[list[tuple[float, object]], float]:
    """(events, length in seconds) of a MIDI file; MidiSourceError if it is malformed."""
    mido = _mido()
    try:
        mid = mido.MidiFile(str(path), clip=True)
        events = _timed_events(mid)
        length = float(mid.length)
    except Exception as e:  # noqa: BLE001 - any malformed MIDI is skipped
        raise MidiSourceError(f"malformed MIDI file {path}: {type(e).__name__}: {e}") from e
    if not any(m.type == "note_on" and m.velocity > 0 for _, m in events):
        raise MidiSourceError(f"MIDI file {path} has no notes")
    return events, max(length, events[-1][0] if events else 0.0)


def _write_events(events, path: Path, program: int | None = None, max_seconds: float | None = None) -> Path:
    """Write timed events as a type-0 MIDI file (120 bpm, 480 ticks/beat), optionally re-programmed and cut."""
    mido = _mido()
    mid = mido.MidiFile(type=0, ticks_per_beat=_TICKS_PER_BEAT)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=_TEMPO, time=0))
    if program is not None:
        for ch in range(16):
            if ch != _DRUM_CHANNEL:
                track.append(mido.Message("program_change", channel=ch, program=program, time=0))
    last = 0
    cut = False
    for t, msg in events:
        if max_seconds is not None and t >= max_seconds:
            cut = True
            break
        if program is not None and getattr(msg, "channel", _DRUM_CHANNEL) != _DRUM_CHANNEL:
            if msg.type == "program_change":
                msg = msg.copy(program=program)
            elif msg.type == "control_change" and msg.control in (0, 32):  # bank select
                continue
        tick = max(last, int(round(t * _TICKS_PER_SECOND)))
        track.append(msg.copy(time=tick - last))
        last = tick
    if cut:  # release every sounding note at the cut
        tick = max(last, int(round(max_seconds * _TICKS_PER_SECOND)))
        for ch in range(16):
            track.append(mido.Message("control_change", channel=ch, control=123, value=0,
                                      time=tick - last))
            last = tick
    # the end of the track, _TAIL_SECONDS after the last event, lets FluidSynth render the release/reverb
    track.append(mido.MetaMessage("end_of_track", time=int(round(_TAIL_SECONDS * _TICKS_PER_SECOND))))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(str(path))
    return path


def _parse_score(path: Path):
    _music21()
    from music21 import converter
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.parse(str(path))
    except Exception as e:  # noqa: BLE001 - any unparsable score is skipped
        raise MidiSourceError(f"cannot parse score {path}: {type(e).__name__}: {e}") from e


def _strip_repeats(score) -> int:
    """Remove repeat barlines, brackets and jumps (segno, coda, D.C. ...) in place; return how many."""
    from music21 import bar, repeat, spanner, stream
    n = 0
    for m in score.recurse().getElementsByClass(stream.Measure):
        for side in ("leftBarline", "rightBarline"):
            if isinstance(getattr(m, side), bar.Repeat):
                setattr(m, side, None)
                n += 1
    for el in list(score.recurse().getElementsByClass((repeat.RepeatMark, spanner.RepeatBracket))):
        site = el.activeSite
        if site is not None:
            site.remove(el)
            n += 1
    for sp in list(score.spannerBundle.getByClass(spanner.RepeatBracket)):
        score.spannerBundle.remove(sp)
        n += 1
    return n


def _unshare_elements(score) -> int:
    """Give every element that sits in several streams its own copy; return how many were copied.

    Some ABC tunes parse with one ``TimeSignature`` object in two measures,
    which music21's MIDI writer refuses ("already found in this Stream").
    """
    import copy

    from music21 import stream
    seen: set[int] = set()
    n = 0
    for container in list(score.recurse(streamsOnly=True, includeSelf=True)):
        for el in list(container.elements):
            if isinstance(el, stream.Stream):
                continue
            if id(el) in seen:
                offset = container.elementOffset(el)
                container.remove(el)
                container.insert(offset, copy.deepcopy(el))
                n += 1
            else:
                seen.add(id(el))
    return n


def _write_score_midi(score, fp: Path, score_path: Path) -> None:
    """``score.write('midi')``; if that fails, again after each repair that changes something.

    Repairs, in order: copies of elements shared by two streams
    (:func:`_unshare_elements`), then no repeats (:func:`_strip_repeats`:
    the score is played through once).
    """
    first: Exception | None = None
    for repair in (None, _unshare_elements, _strip_repeats):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if repair is not None and repair(score) == 0:
                    continue
                score.write("midi", fp=str(fp))
        except Exception as e:  # noqa: BLE001 - export failures skip the piece (after the repairs)
            first = first or e
            continue
        if first is not None:
            log.debug("%s: MIDI export failed (%s: %s); written after %s", score_path, type(first).__name__,
                     first, repair.__name__.strip("_").replace("_", " "))
        return
    raise MidiSourceError(f"cannot export {score_path} to MIDI: {type(first).__name__}: {first}")


def export_midi(score_path: Path | str, out_path: Path | str,
                max_seconds: float = MAX_PIECE_SECONDS) -> Path:
    """Parse a score (or read a MIDI file) and write it as one merged MIDI file.

    Scores are parsed with ``music21.converter.parse`` and written with
    ``write('midi')`` (if that fails, once more after each of two repairs:
    elements shared between measures copied, repeats removed). An ``Opus``
    (several scores in one file) is written score by score, leaving out
    scores that can't be written, and joined with :data:`OPUS_GAP_SECONDS`
    of silence until ``max_seconds``. The result (programs untouched) is cut at
    ``max_seconds``.

    Raises:
        MidiSourceError: if the file can't be parsed or exported, or has no notes.
    """
    score_path, out_path = Path(score_path), Path(out_path)
    if not score_path.is_file():
        raise MidiSourceError(f"score file not found: {score_path}")
    with tempfile.TemporaryDirectory(prefix="rtgan-midi-") as tmp:
        if score_path.suffix.lower() in (".mid", ".midi"):
            parts = [score_path]
        else:
            from music21 import stream
            s = _parse_score(score_path)
            scores = list(s.scores) if isinstance(s, stream.Opus) else [s]
            if not scores:
                raise MidiSourceError(f"score {score_path} holds no music")
            parts = []
            total = 0.0
            failed: list[str] = []
            for i, sc in enumerate(scores):
                fp = Path(tmp, f"{i:04d}.mid")
                try:
                    _write_score_midi(sc, fp, score_path)
                except MidiSourceError as e:
                    if len(scores) == 1:
                        raise
                    failed.append(str(e))  # one bad tune of a tune book: skip the tune
                    continue
                parts.append(fp)
                if len(scores) > 1:  # stop exporting the tunes of a long book once it is long enough
                    try:
                        total += _read_events(fp)[1] + OPUS_GAP_SECONDS
                    except MidiSourceError:
                        pass
                    if total >= max_seconds:
                        break
            if not parts:
                raise MidiSourceError(f"no score of {score_path} could be exported to MIDI: {failed[0]}")
            if failed:
                log.info("%s: %d of its scores could not be exported to MIDI and were left out (%s)",
                         score_path, len(failed), failed[0])
        events: list = []
        offset = 0.0
        errors = []
        for p in parts:
            try:
                ev, length = _read_events(p)
            except MidiSourceError as e:
                errors.append(str(e))
                continue
            events.extend((t + offset, m) for t, m in ev)
            offset += length + OPUS_GAP_SECONDS
        if not events:
            raise MidiSourceError(errors[0] if errors else f"{score_path}: no notes")
        return _write_events(events, out_path, max_seconds=max_seconds)


def rewrite_programs(midi_in: Path | str, midi_out: Path | str, program: int,
                     max_seconds: float | None = None) -> Path:
    """Copy a MIDI file with every melodic channel set to GM ``program``, optionally cut.

    Channel 10 (index 9, GM drums) is left alone. Output: type 0, 120 bpm,
    the original timing in seconds.

    Raises:
        MidiSourceError: for a malformed MIDI file or one without notes.
        ValueError: if ``program`` is not in 0..127.
    """
    if not 0 <= int(program) <= 127:
        raise ValueError(f"GM program must be in 0..127, not {program}")
    events, _ = _read_events(Path(midi_in))
    return _write_events(events, Path(midi_out), program=int(program), max_seconds=max_seconds)


def render_midi(midi_path: Path | str, wav_path: Path | str, sample_rate: int = RENDER_SAMPLE_RATE,
                soundfont: Path | str | None = None, timeout: float = FLUIDSYNTH_TIMEOUT) -> Path:
    """``fluidsynth -ni -q -r RATE -F out.wav SOUNDFONT in.mid`` (stereo 16-bit WAV).

    Raises:
        MissingToolError: fluidsynth or the soundfont is missing.
        MidiSourceError: fluidsynth failed or wrote no audio.
    """
    exe, sf2 = find_fluidsynth(soundfont)
    wav_path = Path(wav_path)
    cmd = [exe, "-ni", "-q", "-r", str(int(sample_rate)), "-F", str(wav_path), str(sf2), str(midi_path)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise MidiSourceError(f"fluidsynth took longer than {timeout:.0f} s on {midi_path}") from e
    if r.returncode != 0 or not wav_path.is_file() or wav_path.stat().st_size <= 44:
        raise MidiSourceError(f"fluidsynth failed on {midi_path} (exit {r.returncode}): "
                              f"{(r.stderr or r.stdout).strip()[-500:]}")
    return wav_path


def render_settings(sample_rate: int, soundfont: Path | str | None = None) -> str:
    """JSON of everything that changes the rendered audio (part of each clip's cache signature)."""
    sf2 = _soundfont_path(soundfont)
    try:
        sf2_size = sf2.stat().st_size
    except OSError:
        sf2_size = -1
    return json.dumps({
        "midi_pipeline": _MIDI_PIPELINE_VERSION,
        "render_sample_rate": render_rate(sample_rate),
        "soundfont": str(sf2), "soundfont_bytes": sf2_size,
        "max_piece_seconds": MAX_PIECE_SECONDS, "opus_gap_seconds": OPUS_GAP_SECONDS,
    }, sort_keys=True)


def render_rate(sample_rate: int) -> int:
    """FluidSynth rate for a corpus rate: 48 kHz, or the corpus rate if higher (at most 96 kHz)."""
    return int(min(max(int(sample_rate), RENDER_SAMPLE_RATE), MAX_RENDER_SAMPLE_RATE))


def _cached_midi(score_path: Path, cache_dir: Path | None) -> Path:
    """Merged MIDI of a score, exported once and kept in ``cache_dir`` (shared by its programs)."""
    st = score_path.stat()
    key = json.dumps({"score": str(score_path.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns,
                      "music21": music21_version(), "pipeline": _MIDI_PIPELINE_VERSION,
                      "max_seconds": MAX_PIECE_SECONDS, "gap": OPUS_GAP_SECONDS}, sort_keys=True)
    if cache_dir is None:
        cache_dir = Path(tempfile.gettempdir()) / "rtgan-midi-cache"
    dst = Path(cache_dir) / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.mid"
    if dst.is_file():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        export_midi(score_path, tmp)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dst


def render_task_audio(render_path: Path | str, sample_rate: int, max_seconds: float | None = None,
                      cache_dir: Path | None = None,
                      soundfont: Path | str | None = None) -> tuple[np.ndarray, int, int]:
    """Render ``<score>/program-NNN`` and decode it: (mono float64 (n,), render rate, channels).

    The corpus worker's loader for this source: exports the score's MIDI (cached
    in ``cache_dir/midi``), sets program NNN, cuts it at ``max_seconds``
    (``size="small"``), renders it with FluidSynth into a temporary WAV in
    ``cache_dir`` and reads it back with the corpus' mono loader.

    Raises:
        MidiSourceError: the piece can't be parsed, exported or rendered.
    """
    score_path, program = parse_render_path(render_path)
    rate = render_rate(sample_rate)
    base = _cached_midi(score_path, Path(cache_dir) / "midi" if cache_dir else None)
    tmp_parent = Path(cache_dir) if cache_dir else None
    if tmp_parent is not None:
        tmp_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="render-", dir=tmp_parent) as tmp:
        mid = rewrite_programs(base, Path(tmp, "in.mid"), program, max_seconds=max_seconds)
        wav = render_midi(mid, Path(tmp, "out.wav"), rate, soundfont=soundfont)
        try:
            return _load_mono(wav, max_seconds)
        except Exception as e:  # noqa: BLE001
            raise MidiSourceError(f"fluidsynth wrote no usable audio for {render_path}: "
                                  f"{type(e).__name__}: {e}") from e


def resolve_pieces(pieces: Sequence[str] | None, size: str) -> list[tuple[Path, str, str]]:
    """(root, piece path relative to root, split) for a build.

    ``pieces=None``: :func:`select_pieces` over music21's corpus. Otherwise
    each entry is a path relative to music21's corpus folder or a path to a
    score/MIDI file anywhere (then its folder is the root); all are used
    and split with :func:`rtgan.data.corpus.assign_splits` (unweighted)
    over their paths.
    """
    if pieces is None:
        root = corpus_root()
        chosen, split_of = select_pieces(size)
        return [(root, p, split_of[p]) for p in chosen]
    items: list[tuple[Path, str]] = []
    for p in pieces:
        path = Path(p)
        if path.is_absolute() or path.exists() and not (corpus_root() / p).exists():
            path = path.resolve()
            items.append((path.parent, path.name))
        else:
            items.append((corpus_root(), PurePosixPath(p).as_posix()))
    split_of = assign_splits([rel for _, rel in items], SOURCE_NAME)
    return [(root, rel, split_of[rel]) for root, rel in items]
