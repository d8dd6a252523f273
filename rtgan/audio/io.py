"""Audio file input/output and sample-rate conversion.

Audio is always handled as ``float32`` arrays of shape ``(channels, samples)``
with the sample rate carried alongside in Hz. Files are read and written with
:mod:`soundfile` (libsndfile). Writes are atomic: the data goes to a temporary
file in the destination directory which is then renamed over the destination
with :func:`os.replace`, so a crash never leaves a half-written output, and a
caller can name input files that must never be overwritten (``protect=``).
"""

from __future__ import annotations

import functools
import math
import os
from typing import Iterable, Optional, Union

import numpy as np
import soundfile as sf
from scipy import signal

from ..fileio import atomic_write, unwritable_reason

__all__ = ["AudioError", "read_audio", "write_audio", "check_output_path", "resample"]

#: Resampling filter (see :func:`resample`): passband edge as a fraction of the lower
#: Nyquist frequency, and stopband attenuation (dB) reached *at* it.
RESAMPLE_PASSBAND: float = 0.9
RESAMPLE_STOPBAND_DB: float = 90.0

PathLike = Union[str, "os.PathLike[str]"]

# Container formats whose default subtype here is 24-bit PCM.
_PCM24_FORMATS = frozenset({"WAV", "WAVEX", "FLAC", "AIFF", "W64", "RF64", "CAF"})


class AudioError(ValueError):
    """Bad audio input or output: missing, unreadable or empty file, NaN/Inf
    samples, invalid array shape or sample rate, or an attempt to overwrite a
    protected input. The message names the file (where there is one) and the
    problem."""


def read_audio(path: PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file with soundfile.

    Args:
        path: file to read (any format libsndfile understands: WAV, FLAC,
            AIFF, OGG, MP3, ...).

    Returns:
        ``(audio, sample_rate)``: ``audio`` is a C-contiguous ``float32``
        array of shape ``(channels, samples)`` scaled to [-1, 1] for integer
        PCM files; ``sample_rate`` is in Hz.

    Raises:
        AudioError: the file does not exist or is a directory, libsndfile
            cannot decode it (unknown format, garbage bytes, truncated
            header), it holds zero samples or zero channels, or any sample is
            NaN or +-Inf (possible in float WAV files).
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise AudioError(f"{name}: file does not exist")
    if os.path.isdir(name):
        raise AudioError(f"{name}: is a directory, not an audio file")
    try:
        data, sample_rate = sf.read(name, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioError(f"{name}: cannot read audio ({exc})") from exc
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioError(f"{name}: audio is empty (0 samples)")
    audio = np.ascontiguousarray(data.T)
    if not np.all(np.isfinite(audio)):
        bad = int(np.count_nonzero(~np.isfinite(audio)))
        raise AudioError(f"{name}: contains {bad} NaN or infinite samples")
    return audio, int(sample_rate)


def _same_file(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same file (symlinks, relative
    paths and hard links resolved where the files exist)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _format_from_extension(name: str) -> str:
    ext = os.path.splitext(name)[1].lower().lstrip(".")
    if not ext:
        raise AudioError(f"{name}: no file extension to infer the audio format from")
    aliases = {"aif": "AIFF", "aiff": "AIFF", "oga": "OGG", "opus": "OGG"}
    fmt = aliases.get(ext, ext.upper())
    if fmt not in sf.available_formats():
        raise AudioError(f"{name}: unsupported audio file extension '.{ext}'")
    return fmt


def check_writable_path(path: PathLike, protect: Iterable[PathLike] = (), suffixes: Iterable[str] = (),
                        what: str = "output") -> str:
    """Check that a new file can be written to ``path``, cheaply and before any work is done.

    The checks every output of the project shares (audio, saved mels, spectrogram PNGs):
    not one of ``protect``, not a directory, the directory exists and is writable (probed by
    creating and removing a hidden temporary file, which catches read-only file systems and
    permissions that ``os.access`` misreports, e.g. for root), and, where ``suffixes`` is
    given, one of those extensions (compared lower-case). Creates nothing that stays.

    Args:
        path: the destination.
        protect: paths that must never be overwritten (the inputs).
        suffixes: allowed extensions with their dot (e.g. ``(".npy",)``); empty: any.
        what: what is written, for the messages (e.g. ``"a mel"``).

    Returns:
        ``path`` as a string.

    Raises:
        AudioError: any check fails.
    """
    name = os.fspath(path)
    for protected in protect:
        if _same_file(name, os.fspath(protected)):
            raise AudioError(f"{name}: refusing to overwrite protected input file {os.fspath(protected)}")
    suffixes = tuple(suffixes)
    if suffixes and os.path.splitext(name)[1].lower() not in suffixes:
        raise AudioError(f"{name}: {what} is written as {' or '.join(suffixes)}; give a path ending in one")
    if os.path.isdir(name):
        raise AudioError(f"{name}: is a directory, cannot write {what} there")
    directory = os.path.dirname(os.path.abspath(name))
    if not os.path.isdir(directory):
        raise AudioError(f"{name}: output directory {directory} does not exist")
    reason = unwritable_reason(directory)
    if reason is not None:
        raise AudioError(f"{name}: cannot write to {directory} ({reason})")
    return name


def check_output_path(path: PathLike, protect: Iterable[PathLike] = (), subtype: Optional[str] = None) -> str:
    """Check that audio can be written to ``path``, cheaply and before any work is done.

    :func:`write_audio` runs the same checks; a command calls this first so that a bad
    output path is reported before a model is loaded or a file is processed. The path checks
    are :func:`check_writable_path`'s; then the container and subtype.

    Args:
        path: the destination.
        protect: paths that must never be overwritten (see :func:`write_audio`).
        subtype: the libsndfile subtype to be written (default as in :func:`write_audio`).

    Returns:
        The container format inferred from the extension (e.g. ``"WAV"``, ``"FLAC"``).

    Raises:
        AudioError: ``path`` is one of ``protect``, is a directory, its directory does not
            exist or is not writable, or the extension or subtype is unsupported.
    """
    name = check_writable_path(path, protect, what="audio")
    fmt = _format_from_extension(name)
    if subtype is None:
        subtype = "PCM_24" if fmt in _PCM24_FORMATS else sf.default_subtype(fmt)
    if not sf.check_format(fmt, subtype):
        raise AudioError(f"{name}: subtype {subtype!r} is not valid for format {fmt}")
    return fmt


def write_audio(
    path: PathLike,
    audio: np.ndarray,
    sample_rate: int,
    subtype: Optional[str] = None,
    protect: Iterable[PathLike] = (),
) -> None:
    """Atomically write ``audio`` to ``path``.

    The samples are written to a temporary file (``.<name>.<random>.tmp``) in
    the destination directory, which is then moved over ``path`` with
    :func:`os.replace`; on any failure the temporary file is removed and
    ``path`` is left untouched. Integer PCM subtypes clip samples to [-1, 1]
    (libsndfile clipping as configured by soundfile).

    Args:
        path: destination; the format comes from the extension (``.wav``,
            ``.flac``, ``.aiff``, ``.ogg``, ...).
        audio: ``(channels, samples)`` array (a 1-D ``(samples,)`` array is
            written as mono), finite values, nominally in [-1, 1].
        sample_rate: sampling rate in Hz, positive integer.
        subtype: libsndfile subtype such as ``"PCM_16"``, ``"PCM_24"`` or
            ``"FLOAT"``. ``None`` means ``"PCM_24"`` for WAV/FLAC/AIFF-like
            containers and soundfile's default otherwise (e.g. VORBIS for
            OGG).
        protect: paths that must never be overwritten (typically the inputs
            of the current run); compared after resolving symlinks and with
            :func:`os.path.samefile` (hard links).

    Raises:
        AudioError: ``path`` is the same file as one of ``protect``; ``path``
            is a directory or its directory does not exist or is not writable
            (see :func:`check_output_path`); the extension or subtype is
            unsupported; ``audio`` is not 1-D/2-D, is empty or contains NaN/Inf;
            ``sample_rate`` is not a positive integer; or libsndfile fails to
            write.
    """
    name = os.fspath(path)
    fmt = check_output_path(name, protect, subtype)
    if subtype is None:
        subtype = "PCM_24" if fmt in _PCM24_FORMATS else sf.default_subtype(fmt)

    arr = np.asarray(audio)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise AudioError(
            f"{name}: audio must have shape (channels, samples), got {tuple(np.shape(audio))}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise AudioError(f"{name}: refusing to write empty audio of shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise AudioError(f"{name}: audio must be real-valued, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise AudioError(f"{name}: sample rate must be a positive integer in Hz, got {sample_rate!r}")

    data = np.ascontiguousarray(arr.T.astype(np.float32, copy=False))
    try:
        atomic_write(name, lambda tmp: sf.write(tmp, data, int(sample_rate), subtype=subtype, format=fmt))
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        if isinstance(exc, AudioError):
            raise
        raise AudioError(f"{name}: cannot write audio ({exc})") from exc


@functools.lru_cache(maxsize=32)
def _resample_filter(up: int, down: int) -> np.ndarray:
    """Kaiser-window low-pass FIR for :func:`resample` at ``up/down``, shape ``(taps,)``, odd length."""
    max_rate = max(up, down)
    width = (1.0 - RESAMPLE_PASSBAND) / max_rate  # relative to the upsampled Nyquist
    numtaps, beta = signal.kaiserord(RESAMPLE_STOPBAND_DB, width)
    numtaps |= 1  # odd: zero-phase, centred
    cutoff = (1.0 + RESAMPLE_PASSBAND) / 2.0 / max_rate  # -6 dB point mid-transition
    return signal.firwin(numtaps, cutoff, window=("kaiser", beta))


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase sample-rate conversion along the last axis, without delay.

    :func:`scipy.signal.resample_poly` with ``up = sr_out / g`` and ``down = sr_in / g``
    (``g = gcd(sr_in, sr_out)``) and a Kaiser-window low-pass FIR whose transition band lies
    *below* the lower of the two Nyquist frequencies: flat to 90 % of it
    (``RESAMPLE_PASSBAND``) and -90 dB at it (``RESAMPLE_STOPBAND_DB``). So upsampled
    material has no images above its original band and downsampled material no aliases
    (``resample_poly``'s default filter puts the cutoff at Nyquist: images and aliases at
    -6 dB there, about -55 dB beyond). The corpus is built with it, so rendering resamples
    exactly as the models' training data was.

    Args:
        audio: ``(..., samples)`` array at ``sr_in`` Hz.
        sr_in: input sampling rate in Hz (positive integer).
        sr_out: output sampling rate in Hz (positive integer).

    Returns:
        ``(..., ceil(samples * sr_out / sr_in))`` array at ``sr_out`` Hz, in
        the input's floating dtype (``float32`` for non-float input). When
        ``sr_in == sr_out`` a copy of the input is returned unchanged.

    Raises:
        AudioError: a rate is not a positive integer or ``audio`` has no
            samples.
    """
    for label, rate in (("sr_in", sr_in), ("sr_out", sr_out)):
        if isinstance(rate, bool) or int(rate) != rate or rate <= 0:
            raise AudioError(f"resample: {label} must be a positive integer in Hz, got {rate!r}")
    arr = np.asarray(audio)
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise AudioError(f"resample: audio has no samples (shape {arr.shape})")
    dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float32)
    sr_in, sr_out = int(sr_in), int(sr_out)
    if sr_in == sr_out:
        return arr.astype(dtype, copy=True)
    g = math.gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    out = signal.resample_poly(arr, up, down, axis=-1, window=_resample_filter(up, down))
    return np.ascontiguousarray(out, dtype=dtype)
