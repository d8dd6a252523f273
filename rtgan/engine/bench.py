"""Speed and latency of a block stream: medians and percentiles from one run."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..models.base import Generator
from .stream import make_stream


@dataclass(frozen=True)
class BenchResult:
    """One benchmark row.

    Attributes:
        mode: streaming mode.
        block_size: samples per block.
        threads: torch intra-op threads.
        latency_samples: algorithmic latency = block buffering + model lookahead/stride
            alignment of the engine, in samples at the model output rate.
        latency_ms: the same in milliseconds.
        engine_latency_samples: the engine's output delay alone (without block buffering).
        block_ms_median, block_ms_p99, block_ms_max: compute time per block, ms.
        rtf: real-time factor = median compute time / block duration.
        offline_rtf: whole-signal inference time / audio time (same model, same threads).
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
    offline_rtf: float
    blocks: int

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def bench_stream(model: Generator, block_size: int = 256, threads: int = 1, mode: str = "overlap-save",
                 seconds: float = 5.0, warmup: int = 20, seed: int = 0, runtime: str = "torchscript") -> BenchResult:
    """Time ``model`` streamed in ``block_size`` blocks on noise at ``threads`` threads.

    Each block is timed with ``time.perf_counter`` after ``warmup`` untimed blocks; the
    offline RTF times one whole-signal pass after a warm-up pass (so page faults of the
    first large allocation are not counted).
    """
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = model.eval()
        sr = model.sample_rate_in
        stream = make_stream(model, block_size, mode, runtime=runtime)
        n_blocks = max(1, int(seconds * sr) // block_size)
        g = torch.Generator().manual_seed(seed)
        x = 0.1 * torch.randn(1, 1, (n_blocks + warmup) * block_size, generator=g)
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
        s = model.total_stride
        whole = x[..., : (x.shape[-1] // s) * s]
        model(whole)
        t0 = time.perf_counter()
        model(whole)
        offline_rtf = (time.perf_counter() - t0) / (whole.shape[-1] / sr)
        block_s = block_size / sr
        latency = block_size + stream.latency_samples
        return BenchResult(
            model=getattr(model, "name", type(model).__name__), mode=mode,
            runtime=getattr(stream, "runtime", "eager"), block_size=block_size, threads=threads,
            sample_rate=sr, latency_samples=latency, latency_ms=1000.0 * latency / model.sample_rate_out,
            engine_latency_samples=stream.latency_samples,
            block_ms_median=float(np.median(times_ms)), block_ms_p99=float(np.percentile(times_ms, 99)),
            block_ms_max=float(times_ms.max()), rtf=float(np.median(times_ms) / 1000.0 / block_s),
            offline_rtf=float(offline_rtf), blocks=len(times))
    finally:
        torch.set_num_threads(old)
