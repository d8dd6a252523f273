"""Speed and latency of block streams: medians, percentiles and ratios from one run.

Three costs are set side by side for the same audio (noise at -20 dBFS RMS):

* the stateful step (:class:`~rtgan.engine.stateful.StatefulStream`) per block;
* overlap-save (:class:`~rtgan.engine.overlap_save.OverlapSave`, frozen TorchScript), which
  recomputes the receptive field every block;
* offline inference: one frozen-TorchScript forward pass over the whole signal, timed after
  a warm-up pass (so the page faults of its first large allocation are not counted), divided
  into the same blocks.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..models.base import Generator
from .runtime import compile_forward
from .stream import make_stream

BLOCK_SIZES = (64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class BenchResult:
    """One benchmark row: one streaming mode at one block size and thread count.

    Attributes:
        mode, runtime: streaming mode and the runtime executing it.
        block_size: samples per block.
        threads: intra-op threads (torch and ONNX Runtime).
        latency_samples: algorithmic latency = block buffering + the engine's delay
            (model lookahead and phase alignment, FIFO), samples at the output rate.
        latency_ms: the same in milliseconds.
        engine_latency_samples: the engine's output delay alone (without block buffering).
        block_ms_median, block_ms_p99, block_ms_max: compute time per block, ms.
        rtf: real-time factor = median compute time / block duration.
        offline_block_ms: offline compute for one block's worth of audio, ms.
        offline_rtf: offline compute time / audio time.
        ratio_to_offline: ``block_ms_median / offline_block_ms``.
        blocks: timed blocks.
    """

    model: str
    mode: str
    runtime: str
    block_size: int
    threads: int
    sample_rate: int
    latency_samples: int
    latency_ms: float
    engine_latency_samples: int
    block_ms_median: float
    block_ms_p99: float
    block_ms_max: float
    rtf: float
    offline_block_ms: float
    offline_rtf: float
    ratio_to_offline: float
    blocks: int

    def to_dict(self) -> dict:
        return asdict(self)


def _noise(model: Generator, samples: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(1, model.channels, samples, generator=g)


@torch.no_grad()
def offline_seconds(model: Generator, x: torch.Tensor, repeats: int = 3) -> float:
    """Median wall time in seconds of a frozen-TorchScript forward over ``x`` ``(1, C, samples)``
    (cut to a multiple of the total stride), after one untimed warm-up pass."""
    s = model.total_stride
    x = x[..., : x.shape[-1] // s * s]
    fwd = compile_forward(model.eval(), "torchscript", x.shape[-1])
    fwd(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fwd(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


@torch.no_grad()
def bench_stream(model: Generator, block_size: int = 256, threads: int = 1, mode: str = "stateful",
                 seconds: float = 3.0, warmup: int = 20, seed: int = 0, runtime: str | None = None,
                 offline_s: float | None = None) -> BenchResult:
    """Time ``model`` streamed in ``block_size`` blocks at ``threads`` threads.

    Each block is timed with ``time.perf_counter`` after ``warmup`` untimed blocks.

    Args:
        offline_s: offline compute time of ``seconds`` of audio, if already measured
            (see :func:`offline_seconds`); measured here otherwise.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = model.eval()
        sr = model.sample_rate_in
        stream = make_stream(model, block_size, mode, runtime=runtime, threads=threads)
        n_blocks = max(1, int(seconds * sr) // block_size)
        x = _noise(model, (n_blocks + warmup) * block_size, seed)
        state = stream.init_state(1)
        times = []
        for i in range(n_blocks + warmup):
            block = x[..., i * block_size:(i + 1) * block_size]
            t0 = time.perf_counter()
            _, state = stream.step(block, state)
            dt = time.perf_counter() - t0
            if i >= warmup:
                times.append(dt)
        times_ms = 1000.0 * np.asarray(times)
        audio_s = n_blocks * block_size / sr
        if offline_s is None:
            offline_s = offline_seconds(model, x[..., warmup * block_size:])
        offline_block_ms = 1000.0 * offline_s * block_size / (audio_s * sr)
        latency = block_size + stream.latency_samples
        median = float(np.median(times_ms))
        return BenchResult(
            model=getattr(model, "name", type(model).__name__), mode=mode,
            runtime=getattr(stream, "runtime", "eager"), block_size=block_size, threads=threads,
            sample_rate=sr, latency_samples=latency, latency_ms=1000.0 * latency / model.sample_rate_out,
            engine_latency_samples=stream.latency_samples,
            block_ms_median=median, block_ms_p99=float(np.percentile(times_ms, 99)),
            block_ms_max=float(times_ms.max()), rtf=median / (1000.0 * block_size / sr),
            offline_block_ms=offline_block_ms, offline_rtf=offline_s / audio_s,
            ratio_to_offline=median / offline_block_ms, blocks=len(times))
    finally:
        torch.set_num_threads(old)


def bench_grid(model: Generator, block_sizes: Sequence[int] = BLOCK_SIZES, threads: Sequence[int] = (1, 2),
               modes: Sequence[str] = ("stateful", "overlap-save"), seconds: float = 3.0, runtime: str | None = None,
               on_row: Callable[[BenchResult], None] | None = None) -> list[BenchResult]:
    """:func:`bench_stream` over every block size, thread count and mode.

    The offline pass is timed once per thread count and shared by all rows. ``runtime``
    applies to the stateful mode (overlap-save runs frozen TorchScript).
    """
    rows = []
    sr = model.sample_rate_in
    for t in threads:
        old = torch.get_num_threads()
        torch.set_num_threads(t)
        try:
            off = offline_seconds(model, _noise(model, int(seconds * sr), 1))
        finally:
            torch.set_num_threads(old)
        for n in block_sizes:
            audio_s = max(1, int(seconds * sr) // n) * n / sr
            for mode in modes:
                row = bench_stream(model, n, t, mode=mode, seconds=seconds,
                                   runtime=runtime if mode == "stateful" else None,
                                   offline_s=off * audio_s / seconds)
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return rows
