"""Offline file rendering through the block engine (the same streams live mode uses)."""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio.io import AudioError, check_output_path, check_writable_path, read_audio, resample, write_audio
from ..models.base import Generator
from .stream import make_stream, stream_signal

log = logging.getLogger(__name__)

#: Largest block size accepted by the engine's commands (render, live, bench, latency), in
#: samples: 2**20 = 21.8 s at 48 kHz. Larger blocks buy nothing (offline render already
#: amortises the per-block overhead at a few thousand samples) and cost memory in proportion.
MAX_BLOCK_SIZE: int = 1 << 20


def check_block_size(block_size: int, what: str = "block size") -> int:
    """``block_size`` if it is an integer in ``[1, MAX_BLOCK_SIZE]``.

    Raises:
        ValueError: otherwise, with a one-line message that names the bound.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
            or not 1 <= block_size <= MAX_BLOCK_SIZE:
        raise ValueError(f"{what} must be a whole number of samples from 1 to {MAX_BLOCK_SIZE} "
                         f"(2**20, {MAX_BLOCK_SIZE / 48000:.1f} s at 48 kHz), got {block_size!r}")
    return int(block_size)


def check_spectrogram_path(path: str | Path, *others: str | Path) -> Path:
    """Check, before any work, that a spectrogram PNG can be written to ``path``.

    Raises:
        RuntimeError: matplotlib (an optional dependency) is not installed.
        AudioError (a ValueError): ``path`` does not end in ``.png``, is a directory, is one of ``others``
            (the input or output audio file), or its folder does not exist or is not writable.
    """
    if importlib.util.find_spec("matplotlib") is None:
        raise RuntimeError("a spectrogram needs matplotlib, an optional dependency: pip install matplotlib "
                           "(or pip install 'rtgan[train]')")
    return Path(check_writable_path(path, others, (".png",), "a spectrogram"))


@dataclass(frozen=True)
class RenderReport:
    """What :func:`render_file` did.

    Attributes:
        input_sample_rate, output_sample_rate: Hz.
        channels: channels processed.
        seconds: duration of the input in seconds.
        latency_samples: engine latency compensated, in output samples.
        clipped_samples: output samples limited to [-1, 1] before writing.
        spectrogram: the before/after spectrogram PNG written, if one was asked for.
    """

    input_sample_rate: int
    output_sample_rate: int
    channels: int
    seconds: float
    latency_samples: int
    clipped_samples: int
    spectrogram: Path | None = None


def render_file(model: Generator, src: str | Path, dst: str | Path, block_size: int = 4096,
                mode: str = "stateful", progress: bool = True, runtime: str | None = None,
                spectrogram: str | Path | None = None, wet: float = 1.0) -> RenderReport:
    """Process an audio file with ``model`` block by block and write the result.

    Reads anything soundfile reads, resamples it to the model's input rate with
    :func:`rtgan.audio.io.resample` (polyphase, scipy), runs every channel through a
    :func:`rtgan.engine.make_stream` stream, removes the engine latency so the output
    aligns with the input, limits to [-1, 1] and writes ``dst`` atomically at the model's
    output rate. ``dst`` may never be ``src``. The output path (and ``spectrogram``) are
    checked before the input is read (:func:`rtgan.audio.io.check_output_path`).

    A model whose output is a wet signal (``output_role == "wet"``: the reverbs) is run over
    the input followed by its tail (the receptive field's length of silence, so the reverb dies
    away in the file), and the file holds ``dry + wet * output``, as the live engine mixes it.

    Args:
        wet: the wet signal's level for such a model, 0 to 1 (others ignore it).
        spectrogram: also write a before/after spectrogram PNG here (first channel: the
            input resampled to the output rate above the output; :func:`rtgan.plots.spectrogram_png`,
            needs matplotlib).

    Raises:
        AudioError: unreadable, empty or non-finite input, or an output path that cannot
            be written (missing or read-only folder, unsupported extension, ``dst`` equal
            to ``src``).
        ValueError: bad block size (see :func:`check_block_size`) or mode, or a bad
            ``spectrogram`` path.
        RuntimeError: ``spectrogram`` without matplotlib installed.
    """
    src, dst = Path(src), Path(dst)
    check_block_size(block_size)
    check_output_path(dst, protect=[src])
    if spectrogram is not None:
        spectrogram = check_spectrogram_path(spectrogram, src, dst)
    audio, sr = read_audio(src)
    original = audio
    if sr != model.sample_rate_in:
        log.info("resampling %s from %d Hz to %d Hz", src, sr, model.sample_rate_in)
        audio = resample(audio, sr, model.sample_rate_in).astype(np.float32)
    adds = getattr(model, "output_role", None) == "wet"
    if adds:
        if not 0.0 <= wet <= 1.0:
            raise ValueError(f"wet must be in [0, 1], got {wet}")
        audio = np.pad(audio, ((0, 0), (0, model.reach().left + 1)))  # room for the tail
    x = torch.from_numpy(np.ascontiguousarray(audio))[:, None, :]
    stream = make_stream(model, block_size, mode, runtime=runtime)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=x.shape[-1], unit="sample", unit_scale=True, desc=f"render {src.name}", dynamic_ncols=True)
    try:
        y = stream_signal(stream, x, compensate=True, on_block=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    out = y[:, 0].numpy()
    if adds:
        out = audio + wet * out
    if not np.all(np.isfinite(out)):
        raise AudioError(f"model produced non-finite output for {src}")
    clipped = int(np.count_nonzero(np.abs(out) > 1.0))
    out = np.clip(out, -1.0, 1.0)
    write_audio(dst, out, model.sample_rate_out, protect=[src])
    if spectrogram is not None:
        from ..plots import spectrogram_png
        sr_out = model.sample_rate_out
        before = original[0] if sr == sr_out else resample(original[:1], sr, sr_out)[0]
        rate = f"{sr} Hz" if sr == sr_out else f"{sr} Hz resampled to {sr_out} Hz"
        spectrogram_png(spectrogram, {f"before: {src.name} ({rate})": before,
                                      f"after: {dst.name} ({model.name or type(model).__name__})": out[0]},
                        sr_out, title=f"{src.name} -> {dst.name}")
    return RenderReport(sr, model.sample_rate_out, out.shape[0], audio.shape[-1] / model.sample_rate_in,
                        stream.latency_samples, clipped, spectrogram)
