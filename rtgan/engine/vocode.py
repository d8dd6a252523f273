"""Vocoders offline from and to saved mels: ``rtgan render song.wav song.npy`` and ``rtgan render song.npy out.wav``.

A saved mel is a NumPy ``.npy`` file (``numpy.save``; no pickles) of float32 values:

* layout ``(n_mels, frames)`` for one channel, or ``(channels, n_mels, frames)``;
* units: ``log10`` of the mel-filtered STFT *magnitude* (seed 003's feature, not dB and not
  power), floored at ``log10(1e-5) = -5`` (silence);
* frames as the vocoder's front end makes them (:class:`rtgan.models.layers.mel.MelConfig`:
  22 050 Hz, n_fft 1024, Hann 1024, hop 256, 128 Slaney mel bands over 0-11 025 Hz); frame
  ``t`` stands for samples ``t * hop .. t * hop + hop - 1``, and its window reaches
  ``lookahead`` samples past them (768 for the ``paper`` presets, 0 for ``live``): a mel saved
  by one preset's front end is rendered in the same place by a model of that preset.

Rendering a mel runs the generator part of the vocoder (:meth:`vocode`) over chunks of frames
with enough context on each side (its receptive field, :meth:`vocode_reach`), so the result
equals one pass over the whole mel while memory stays bounded.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio.io import AudioError, check_output_path, check_writable_path, read_audio, resample, write_audio
from ..fileio import atomic_write
from ..models.base import Generator

log = logging.getLogger(__name__)

__all__ = ["MEL_SUFFIX", "is_mel_path", "check_mel_output_path", "load_mel", "save_mel", "vocode", "analyse_file",
           "vocode_file", "MelReport"]

#: file extension of saved mels
MEL_SUFFIX = ".npy"
#: frames vocoded per chunk (about 12 s at hop 256 and 22 050 Hz)
CHUNK_FRAMES = 1024


def is_mel_path(path: str | Path) -> bool:
    """Whether ``path`` names a saved mel (``.npy``)."""
    return Path(path).suffix.lower() == MEL_SUFFIX


def _require_vocoder(model: Generator) -> None:
    from ..models.vocoder import MelVocoder
    if not isinstance(model, MelVocoder):
        raise ValueError(f"model {model.name!r} is not a vocoder: it neither reads nor writes mels "
                         f"(.npy files are for voc-melgan and voc-multiscale)")


def check_mel_output_path(path: str | Path, protect=()) -> Path:
    """Check that a mel can be written to ``path`` before any work is done
    (:func:`rtgan.audio.io.check_writable_path` with the suffix ``.npy``).

    Raises:
        AudioError: ``path`` is protected (an input), a directory, or lies in a missing or
            read-only directory, or does not end in ``.npy``.
    """
    return Path(check_writable_path(path, protect, (MEL_SUFFIX,), "a mel"))


def load_mel(path: str | Path, n_mels: int) -> np.ndarray:
    """A saved mel as float32 ``(channels, n_mels, frames)`` (see the module docstring).

    Raises:
        AudioError: unreadable or pickled file, wrong layout or band count, no frames, or
            values that are not finite.
    """
    path = Path(path)
    try:
        mel = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise AudioError(f"{path}: not a readable .npy mel ({e})") from None
    if mel.ndim == 2:
        mel = mel[None]
    if mel.ndim != 3 or mel.shape[1] != n_mels or mel.shape[0] < 1:
        raise AudioError(f"{path}: expected a mel (n_mels={n_mels}, frames) or (channels, {n_mels}, frames), "
                         f"got shape {mel.shape}")
    if mel.shape[2] < 1:
        raise AudioError(f"{path}: the mel has no frames")
    if not np.issubdtype(mel.dtype, np.floating):
        raise AudioError(f"{path}: mel values must be floats (log10 magnitudes), got {mel.dtype}")
    if not np.all(np.isfinite(mel)):
        raise AudioError(f"{path}: the mel holds NaN or infinite values")
    return mel.astype(np.float32)


def save_mel(path: str | Path, mel: np.ndarray) -> Path:
    """Write ``mel`` (``(n_mels, frames)`` or ``(channels, n_mels, frames)``) as float32 ``.npy``, atomically."""
    arr = np.ascontiguousarray(mel, dtype=np.float32)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)

    return atomic_write(path, write)


def vocode(model: Generator, mel: torch.Tensor, chunk_frames: int = CHUNK_FRAMES, on_chunk=None) -> torch.Tensor:
    """``model.vocode`` over ``mel`` ``(batch, n_mels, frames)`` in chunks: ``(batch, 1, frames * hop)``.

    Each chunk of ``chunk_frames`` frames is vocoded with its receptive field's frames on each
    side (:meth:`vocode_reach`, rounded up to whole frames) and cut back, so the result equals
    ``model.vocode(mel)`` (up to float rounding).
    """
    _require_vocoder(model)
    r = model.vocode_reach()
    left, right = math.ceil(r.left), math.ceil(r.right)
    hop = model.config.mel.hop_length
    n = mel.shape[-1]
    outs = []
    with torch.no_grad():
        for a in range(0, n, chunk_frames):
            b = min(a + chunk_frames, n)
            lo, hi = max(0, a - left), min(n, b + right)
            y = model.vocode(mel[..., lo:hi])
            outs.append(y[..., (a - lo) * hop:(b - lo) * hop])
            if on_chunk is not None:
                on_chunk(b - a)
    return torch.cat(outs, dim=-1)


@dataclass(frozen=True)
class MelReport:
    """What :func:`analyse_file` / :func:`vocode_file` did: channels, frames, seconds and rates."""

    channels: int
    frames: int
    seconds: float
    sample_rate: int
    input_sample_rate: int


def analyse_file(model: Generator, src: str | Path, dst: str | Path) -> MelReport:
    """Write the mel of audio file ``src`` as the vocoder's front end computes it (``.npy``).

    The audio is resampled to the model's rate and zero-padded to whole hops; each channel
    gets its own mel (one channel: ``(n_mels, frames)``).

    Raises:
        AudioError: unreadable, empty or non-finite input; a bad output path.
        ValueError: ``model`` is not a vocoder.
    """
    _require_vocoder(model)
    src, dst = Path(src), Path(dst)
    check_mel_output_path(dst, protect=[src])
    audio, sr = read_audio(src)
    rate = model.sample_rate_in
    if sr != rate:
        audio = resample(audio, sr, rate).astype(np.float32)
    hop = model.config.mel.hop_length
    x = torch.from_numpy(np.pad(audio, ((0, 0), (0, -audio.shape[-1] % hop))))[:, None, :]
    with torch.no_grad():
        mel = model.mel(x.to(next(model.parameters()).device)).cpu().numpy()
    save_mel(dst, mel[0] if mel.shape[0] == 1 else mel)
    return MelReport(mel.shape[0], mel.shape[-1], audio.shape[-1] / rate, rate, sr)


def vocode_file(model: Generator, src: str | Path, dst: str | Path, progress: bool = True,
                chunk_frames: int = CHUNK_FRAMES) -> MelReport:
    """Render a saved mel ``src`` (``.npy``) to audio file ``dst`` with the vocoder ``model``.

    Raises:
        AudioError: a bad output path (checked first), a malformed mel, non-finite output.
        ValueError: ``model`` is not a vocoder.
    """
    _require_vocoder(model)
    src, dst = Path(src), Path(dst)
    check_output_path(dst, protect=[src])
    mel = torch.from_numpy(load_mel(src, model.config.mel.n_mels))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=mel.shape[-1] * mel.shape[0], unit="frame", desc=f"vocode {src.name}", dynamic_ncols=True)
    try:
        dev = next(model.parameters()).device
        y = torch.cat([vocode(model.eval(), mel[c:c + 1].to(dev), chunk_frames, bar.update if bar else None)
                       for c in range(mel.shape[0])])
    finally:
        if bar is not None:
            bar.close()
    out = y[:, 0].float().cpu().numpy()
    if not np.all(np.isfinite(out)):
        raise AudioError(f"model produced non-finite output for {src}")
    rate = model.sample_rate_out
    write_audio(dst, np.clip(out, -1.0, 1.0), rate, protect=[src])
    return MelReport(mel.shape[0], mel.shape[-1], out.shape[-1] / rate, rate, rate)
