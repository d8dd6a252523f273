"""Scores to MIDI files: music21 export (with repairs), merging, re-programming and cutting with mido.

See the package docstring (:mod:`rtgan.data.midi`, steps 2 and 3).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

from .tools import MidiSourceError, require_mido, require_music21

__all__ = ["MAX_PIECE_SECONDS", "OPUS_GAP_SECONDS", "export_midi", "rewrite_programs"]

log = logging.getLogger(__name__)

#: Longest audio rendered from one piece, seconds.
MAX_PIECE_SECONDS = 900.0
#: Silence between the scores of a multi-score file, seconds.
OPUS_GAP_SECONDS = 1.0
#: Merged MIDI files: 480 ticks per beat at 120 bpm = 960 ticks per second.
_TICKS_PER_BEAT = 480
_TEMPO = 500_000
_TICKS_PER_SECOND = _TICKS_PER_BEAT * 1_000_000 / _TEMPO
_TAIL_SECONDS = 1.0
_DRUM_CHANNEL = 9


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
    mido = require_mido()
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
    mido = require_mido()
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
    require_music21()
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
