"""Offline file rendering through the block engine (the same streams live mode uses)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio.io import AudioError, read_audio, resample, write_audio
from ..models.base import Generator
from .stream import make_stream, stream_signal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderReport:
    """What :func:`render_file` did.

    Attributes:
        input_sample_rate, output_sample_rate: Hz.
        channels: channels processed.
        seconds: duration of the input in seconds.
        latency_samples: engine latency compensated, in output samples.
        clipped_samples: output samples limited to [-1, 1] before writing.
    """

    input_sample_rate: int
    output_sample_rate: int
    channels: int
    seconds: float
    latency_samples: int
    clipped_samples: int


def render_file(model: Generator, src: str | Path, dst: str | Path, block_size: int = 4096,
                mode: str = "stateful", progress: bool = True, runtime: str | None = None) -> RenderReport:
    """Process an audio file with ``model`` block by block and write the result.

    Reads anything soundfile reads, resamples it to the model's input rate with
    :func:`rtgan.audio.io.resample` (polyphase, scipy), runs every channel through a
    :func:`rtgan.engine.make_stream` stream, removes the engine latency so the output
    aligns with the input, limits to [-1, 1] and writes ``dst`` atomically at the model's
    output rate. ``dst`` may never be ``src``.

    Raises:
        AudioError: unreadable, empty or non-finite input, or ``dst`` equal to ``src``.
        ValueError: bad block size or mode.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise AudioError(f"refusing to overwrite the input file {src}")
    audio, sr = read_audio(src)
    if sr != model.sample_rate_in:
        log.info("resampling %s from %d Hz to %d Hz", src, sr, model.sample_rate_in)
        audio = resample(audio, sr, model.sample_rate_in).astype(np.float32)
    x = torch.from_numpy(np.ascontiguousarray(audio))[:, None, :]
    stream = make_stream(model, block_size, mode, runtime=runtime)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=x.shape[-1], unit="sample", unit_scale=True, desc=f"render {src.name}", dynamic_ncols=True)
    y = stream_signal(stream, x, compensate=True, on_block=bar.update if bar else None)
    if bar is not None:
        bar.close()
    out = y[:, 0].numpy()
    if not np.all(np.isfinite(out)):
        raise AudioError(f"model produced non-finite output for {src}")
    clipped = int(np.count_nonzero(np.abs(out) > 1.0))
    out = np.clip(out, -1.0, 1.0)
    write_audio(dst, out, model.sample_rate_out, protect=[src])
    return RenderReport(sr, model.sample_rate_out, out.shape[0], audio.shape[-1] / model.sample_rate_in,
                        stream.latency_samples, clipped)
