"""Stateful streaming: the generator's cached-conv step behind a FIFO block adapter.

Each block costs about what the same samples cost offline (no receptive field is
recomputed), and the output is late only by what the model's layers need:

* ``model.latency_samples``: lookahead of non-causal layers and superpixel phase alignment
  (0 for the causal ``live`` presets);
* ``fifo_latency_samples = g - gcd(N, g)``: a device block of ``N`` samples is cut into
  chunks that are whole multiples of the model's granule ``g`` (its total stride); the
  remainder waits for the next block, and the output FIFO starts with that many zeros so a
  full block can always be emitted. Less than one granule, 0 when ``g`` divides ``N``.

Streamed output equals :func:`rtgan.engine.offline` delayed by
``latency_samples = model.latency_samples + fifo_latency_samples``.

Input and output may differ in rate (the model's ports): a block of ``N`` input frames gives
``N r`` output frames, ``r = model.rate_ratio``; the FIFO's share is then
``(g - gcd(N, g)) r`` output frames. Latencies are in output frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..models.base import Generator
from .runtime import StepRunner, copy_into, default_step_runtime
from .blockstream import BlockStream
from .overlap_save import out_block_size


@dataclass
class StatefulState:
    """Explicit state of :class:`StatefulStream`.

    Attributes:
        model: the generator's step state, in the runner's type.
        waiting: ``(batch, channels_in, r)`` input frames short of a whole granule, ``r < g``.
        pending: ``(batch, channels_out, p)`` output computed but not yet emitted.
    """

    model: Any
    waiting: np.ndarray
    pending: np.ndarray


class StatefulStream(BlockStream):
    """Stream a generator block by block through its stateful step.

    Args:
        model: any registered generator.
        block_size: device block size ``N`` in samples (any positive integer).
        runtime: ``"onnxruntime"``, ``"torchscript"`` or ``"eager"`` (default: ONNX Runtime
            when installed, see :class:`rtgan.engine.runtime.StepRunner`).
        threads: intra-op threads for ONNX Runtime.

    Attributes:
        out_block_size: output frames per block, ``block_size * rate_ratio``.
        latency_samples: output delay behind offline inference, output frames (model + FIFO).
        fifo_latency_samples: the FIFO adapter's share, ``(g - gcd(N, g)) * rate_ratio`` (< one granule).
        model_latency_samples: the model's share (lookahead + phase alignment).

    Raises:
        ValueError: block size < 1 or one whose output is not whole frames, unknown runtime, or
            a model that cannot stream (its ``kind`` is not ``"streamable"``).
        ImportError: ``runtime="onnxruntime"`` without onnxruntime installed.
    """

    def __init__(self, model: Generator, block_size: int, runtime: str | None = None,
                 threads: int | None = None) -> None:
        if block_size < 1:
            raise ValueError(f"block size must be >= 1, got {block_size}")
        if model.kind != "streamable":
            raise ValueError(f"{model.name or type(model).__name__} is a {model.kind!r} model: it has no stateful step")
        self.model = model.eval()
        self.block_size = block_size
        self.out_block_size = out_block_size(model, block_size)
        self.granule = model.stream_granule
        self.runtime = runtime or default_step_runtime()
        self.runner = StepRunner(self.model, self.runtime, threads=threads)
        self.fifo_latency_samples = model.output_length(self.granule - math.gcd(block_size, self.granule))
        self.model_latency_samples = model.latency_samples
        self.latency_samples = self.model_latency_samples + self.fifo_latency_samples

    @property
    def latency_ms(self) -> float:
        """Output delay in milliseconds at the model's output rate."""
        return self.model.port_out.ms(self.latency_samples)

    def chunk_sizes(self) -> list[int]:
        """The step lengths this stream will ever run (for warm-up before real time)."""
        g, n = self.granule, self.block_size
        sizes = {((k * n) % g + n) // g * g for k in range(g)}
        return sorted(s for s in sizes if s > 0)

    def init_state(self, batch: int = 1, dtype: torch.dtype = torch.float32,
                   device: torch.device | str = "cpu") -> StatefulState:
        """Initial state: the model's silent state, an empty input FIFO, ``fifo_latency`` zeros of output.

        The engine runs float32 on the CPU; ``dtype`` and ``device`` are accepted for the
        interface the other streams share and ignored. Also compiles the step for every chunk
        length the stream will run, so no compilation happens once blocks flow.
        """
        c_in, c_out = self.model.port_in.channels, self.model.port_out.channels
        for n in self.chunk_sizes():
            self.runner.prepare(batch, n)
        return StatefulState(self.runner.init_state(batch), np.zeros((batch, c_in, 0), np.float32),
                             np.zeros((batch, c_out, self.fifo_latency_samples), np.float32))

    def step_numpy(self, block: np.ndarray, state: StatefulState,
                   out: np.ndarray | None = None) -> tuple[np.ndarray, StatefulState]:
        """:meth:`step` on a float32 array ``(batch, channels_in, block_size)``.

        Args:
            out: a float32 array ``(batch, channels_out, out_block_size)`` to write the output into. When the
                block is whole granules and the runtime is ONNX Runtime, the step then
                allocates no array (what the audio callback needs).
        """
        if block.shape[-1] != self.block_size:
            raise ValueError(f"expected blocks of {self.block_size} samples, got {block.shape[-1]}")
        if block.shape[0] != state.pending.shape[0]:
            raise ValueError(f"the block has batch {block.shape[0]} but the state was made for batch "
                             f"{state.pending.shape[0]} (make it with init_state({block.shape[0]}))")
        if not state.waiting.shape[-1] and not state.pending.shape[-1] and self.block_size % self.granule == 0:
            # whole granules and nothing buffered: the block goes straight through
            y, model_state = self.runner(np.ascontiguousarray(block, dtype=np.float32), state.model, out)
            return y, StatefulState(model_state, state.waiting, state.pending)
        x = np.concatenate([state.waiting, block.astype(np.float32, copy=False)], axis=-1)
        n = x.shape[-1] // self.granule * self.granule
        model_state, pending = state.model, state.pending
        if n:
            y, model_state = self.runner(np.ascontiguousarray(x[..., :n]), model_state)
            pending = np.concatenate([pending, y], axis=-1)
        m = self.out_block_size
        return copy_into(pending[..., :m], out), StatefulState(model_state, x[..., n:], pending[..., m:])

    def step(self, block: torch.Tensor, state: StatefulState) -> tuple[torch.Tensor, StatefulState]:
        """Process one block.

        Args:
            block: ``(batch, channels_in, block_size)`` input.
            state: from :meth:`init_state` or the previous step.

        Returns:
            ``(batch, channels_out, out_block_size)`` output delayed by :attr:`latency_samples`
            output frames, new state.
            With ONNX Runtime the model state lives in two buffers the runner alternates
            between: a state is valid until a step is taken from its successor (stream
            forward; to branch a stream, start from :meth:`init_state`).

        Raises:
            ValueError: on a block of the wrong size, or a state made for another batch size.
        """
        out, state = self.step_numpy(block.detach().cpu().numpy(), state)
        return torch.from_numpy(out), state
