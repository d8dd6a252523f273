"""Speed and latency of block streams: medians, percentiles and ratios from one run.

Three costs are set side by side for the same audio (noise at -20 dBFS RMS):

* the stateful step (:class:`~rtgan.engine.stateful.StatefulStream`) per block;
* overlap-save (:class:`~rtgan.engine.overlap_save.OverlapSave`, frozen TorchScript), which
  recomputes the receptive field every block;
* offline inference: one frozen-TorchScript forward pass per tenth of the signal, timed
  after a warm-up pass (so the page faults of its first large allocation are not counted),
  divided into the same blocks, and alternated with the streamed tenths so both see the same
  machine (a shared CPU's speed drifts by tens of percent over a minute).
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
def bench_stream(model: Generator, block_size: int = 256, threads: int = 1, mode: str = "stateful",
                 seconds: float = 3.0, warmup: int = 20, seed: int = 0, runtime: str | None = None,
                 rounds: int = 10) -> BenchResult:
    """Time ``model`` streamed in ``block_size`` blocks at ``threads`` threads, beside offline.

    The audio is split into ``rounds`` parts; each part is first run offline in one pass,
    then streamed block by block, so both costs are sampled alternately over the same
    stretch of time (on a shared machine the speed drifts). Each block is timed with
    ``time.perf_counter`` after ``warmup`` untimed blocks; the offline cost per block is the
    median over rounds.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = model.eval()
        sr = model.sample_rate_in
        stream = make_stream(model, block_size, mode, runtime=runtime, threads=threads)
        per_round = max(1, int(seconds * sr) // block_size // rounds)
        x = _noise(model, (warmup + rounds * per_round) * block_size, seed)
        state = stream.init_state(1)
        for i in range(warmup):
            _, state = stream.step(x[..., i * block_size:(i + 1) * block_size], state)
        s = model.total_stride
        part = max(s, per_round * block_size // s * s)
        fwd = compile_forward(model, "torchscript", part)
        fwd(x[..., :part])  # warm-up pass: first large allocation and graph optimisation
        times, offline_ms = [], []
        for r in range(rounds):
            first = warmup + r * per_round
            audio = x[..., first * block_size:(first + per_round) * block_size]
            t0 = time.perf_counter()
            fwd(audio[..., :part])
            offline_ms.append(1000.0 * (time.perf_counter() - t0) * block_size / part)
            for i in range(per_round):
                block = audio[..., i * block_size:(i + 1) * block_size]
                t0 = time.perf_counter()
                _, state = stream.step(block, state)
                times.append(time.perf_counter() - t0)
        times_ms = 1000.0 * np.asarray(times)
        offline_block_ms = float(np.median(offline_ms))
        # one block of buffering plus the engine's delay, both in output frames
        latency = getattr(stream, "out_block_size", block_size) + stream.latency_samples
        median = float(np.median(times_ms))
        block_ms = 1000.0 * block_size / sr
        return BenchResult(
            model=getattr(model, "name", type(model).__name__), mode=mode,
            runtime=getattr(stream, "runtime", "eager"), block_size=block_size, threads=threads,
            sample_rate=sr, latency_samples=latency, latency_ms=1000.0 * latency / model.sample_rate_out,
            engine_latency_samples=stream.latency_samples,
            block_ms_median=median, block_ms_p99=float(np.percentile(times_ms, 99)),
            block_ms_max=float(times_ms.max()), rtf=median / block_ms,
            offline_block_ms=offline_block_ms, offline_rtf=offline_block_ms / block_ms,
            ratio_to_offline=median / offline_block_ms, blocks=len(times))
    finally:
        torch.set_num_threads(old)


def bench_grid(model: Generator, block_sizes: Sequence[int] = BLOCK_SIZES, threads: Sequence[int] = (1, 2),
               modes: Sequence[str] = ("stateful", "overlap-save"), seconds: float = 3.0, runtime: str | None = None,
               on_row: Callable[[BenchResult], None] | None = None) -> list[BenchResult]:
    """:func:`bench_stream` over every thread count, block size and mode. ``runtime`` applies
    to the stateful mode (overlap-save runs frozen TorchScript)."""
    rows = []
    for t in threads:
        for n in block_sizes:
            for mode in modes:
                row = bench_stream(model, n, t, mode=mode, seconds=seconds,
                                   runtime=runtime if mode == "stateful" else None)
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return rows
