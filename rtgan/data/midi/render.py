"""Rendering with FluidSynth: MIDI to WAV, the render settings, and the corpus worker's loader.

See the package docstring (:mod:`rtgan.data.midi`, step 4).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..common import load_mono
from .export import MAX_PIECE_SECONDS, OPUS_GAP_SECONDS, export_midi, rewrite_programs
from .pieces import parse_render_path
from .tools import MidiSourceError, find_fluidsynth, music21_version, soundfont_path

log = logging.getLogger(__name__)

__all__ = ["RENDER_SAMPLE_RATE", "RELEASE_TAIL_SECONDS", "midi_seconds", "MAX_RENDER_SAMPLE_RATE",
           "FLUIDSYNTH_TIMEOUT", "render_midi", "render_settings",
           "render_rate", "render_task_audio"]

#: Render rate (Hz) unless the corpus rate is higher.
RENDER_SAMPLE_RATE = 48000
#: Highest rate FluidSynth renders at.
MAX_RENDER_SAMPLE_RATE = 96000
#: Longest a single fluidsynth run may take, seconds.
FLUIDSYNTH_TIMEOUT = 1800.0
#: Seconds of audio kept after a MIDI file's last event (the release of its last notes).
RELEASE_TAIL_SECONDS = 5.0
#: Bump when the MIDI export or rendering changes (invalidates cached clips).
_MIDI_PIPELINE_VERSION = 1


def render_midi(midi_path: Path | str, wav_path: Path | str, sample_rate: int = RENDER_SAMPLE_RATE,
                soundfont: Path | str | None = None, timeout: float = FLUIDSYNTH_TIMEOUT,
                options: Sequence[str] = ()) -> Path:
    """``fluidsynth -ni -q [OPTIONS] -r RATE -F out.wav SOUNDFONT in.mid`` (stereo WAV, 16-bit unless
    ``options`` set ``-o audio.file.format=float``).

    The render is stopped once it holds the MIDI's length plus :data:`RELEASE_TAIL_SECONDS`
    (FluidSynth 2.3 does not always stop on its own); ``timeout`` bounds the wall time.

    Raises:
        MissingToolError: fluidsynth or the soundfont is missing.
        MidiSourceError: fluidsynth failed or wrote no audio.
    """
    exe, sf2 = find_fluidsynth(soundfont)
    wav_path = Path(wav_path)
    cmd = [exe, "-ni", "-q", *options, "-r", str(int(sample_rate)), "-F", str(wav_path), str(sf2), str(midi_path)]
    frame_bytes = 8 if "audio.file.format=float" in options else 4  # stereo float32 or int16
    # FluidSynth 2.3 sometimes never ends a render (seen on music21 pieces whose notes all end:
    # it kept writing, 14 GB in 8 minutes): stop it once it has written the MIDI's length plus
    # a release tail, and keep what it wrote (libsndfile reads the unfinished WAV)
    limit_bytes = 44 + frame_bytes * int(sample_rate) * (midi_seconds(midi_path) + RELEASE_TAIL_SECONDS)
    stopped = False
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        start = time.monotonic()
        while proc.poll() is None:
            if wav_path.is_file() and wav_path.stat().st_size > limit_bytes:
                proc.terminate()
                stopped = True
            elif time.monotonic() - start > timeout:
                proc.kill()
                proc.wait()
                raise MidiSourceError(f"fluidsynth took longer than {timeout:.0f} s on {midi_path}")
            time.sleep(0.05)
        out = proc.stdout.read() if proc.stdout else ""
    if (proc.returncode != 0 and not stopped) or not wav_path.is_file() or wav_path.stat().st_size <= 44:
        raise MidiSourceError(f"fluidsynth failed on {midi_path} (exit {proc.returncode}): {out.strip()[-500:]}")
    if stopped:
        log.warning("fluidsynth did not stop after %s (%.0f s of MIDI): stopped it at %.0f s of audio", midi_path,
                    midi_seconds(midi_path), limit_bytes / (frame_bytes * sample_rate))
    return wav_path


def midi_seconds(midi_path: Path | str) -> float:
    """Length of a MIDI file in seconds (``mido.MidiFile.length``)."""
    import mido
    return float(mido.MidiFile(str(midi_path)).length)


def render_settings(sample_rate: int, soundfont: Path | str | None = None) -> str:
    """JSON of everything that changes the rendered audio (part of each clip's cache signature)."""
    sf2 = soundfont_path(soundfont)
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
            return load_mono(wav, max_seconds)
        except Exception as e:  # noqa: BLE001
            raise MidiSourceError(f"fluidsynth wrote no usable audio for {render_path}: "
                                  f"{type(e).__name__}: {e}") from e
