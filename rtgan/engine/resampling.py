"""Live processing at a device rate other than the model's: a LiveProcessor behind streaming resamplers."""
from __future__ import annotations

import math

import numpy as np

from ..models.base import Generator
from .live import LiveProcessor, LiveStats

class ResamplingProcessor:
    """A :class:`LiveProcessor` at the model's rate behind streaming resamplers, for devices
    that cannot run at the model's rate.

    The resamplers are libsamplerate's ``sinc_medium`` converters (python-samplerate; 121 dB
    SNR, 90 % bandwidth): their output count per call varies by at most one sample, so the
    FIFO between them stays short (soxr's streaming HQ/MQ converters were measured to emit in
    bursts of ~900 samples, which would cost ~20 ms of FIFO).

    Device blocks are resampled to the model rate, processed in blocks of ``inner_block``
    (the device block scaled to the model rate, rounded up to the model's granule), and
    resampled back. The resamplers return slightly varying sample counts per call, so the
    output FIFO starts with ``prefill`` samples of silence: the largest shortfall found by
    running the chain on silence for ten seconds of blocks at construction. The delay of the
    whole chain is measured there too, with an impulse, and reported in ``latency_samples``.

    Args:
        model: generator; ``device_rate`` differs from ``model.sample_rate_in``.
        device_rate: the device's sample rate in Hz.
        block_size: frames per device callback.
        channels, **kw: as for :class:`LiveProcessor`.
    """

    def __init__(self, model: Generator, device_rate: int, block_size: int = 256, channels: int = 1,
                 **kw) -> None:
        import samplerate  # noqa: F401  (fail at construction, not in the callback)
        if block_size < 1 or device_rate < 1:
            raise ValueError(f"block size and device rate must be >= 1, got {block_size}, {device_rate}")
        self.sample_rate = int(device_rate)
        self.model_rate = model.sample_rate_in
        self.block_size = block_size
        self.channels = channels
        g = model.stream_granule
        self.inner_block = max(g, -(-math.ceil(block_size * self.model_rate / self.sample_rate) // g) * g)
        self.inner = LiveProcessor(model, self.inner_block, channels=channels, **kw)
        self.prefill = 0
        self.reset()
        self.prefill = self._shortfall()
        self.latency_samples = block_size + self._delay()
        self.reset()

    # the inner processor keeps the counters
    @property
    def stats(self) -> LiveStats:
        return self.inner.stats

    @property
    def compute_ms(self) -> np.ndarray:
        return self.inner.compute_ms

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.sample_rate

    def take_peaks(self) -> tuple[float, float]:
        return self.inner.take_peaks()

    def compute_summary(self) -> dict:
        return self.inner.compute_summary()

    def count_status(self, status) -> None:
        self.inner.count_status(status)

    def reset(self) -> None:
        """Fresh resamplers, empty FIFOs (the output one holding ``prefill`` zeros), inner reset."""
        import samplerate
        self.inner.reset()
        c = self.channels
        self._down = samplerate.Resampler("sinc_medium", channels=c)
        self._up = samplerate.Resampler("sinc_medium", channels=c)
        self._in = np.zeros((0, c), np.float32)
        self._out = np.zeros((self.prefill, c), np.float32)
        self._buf = np.zeros((self.inner_block, c), np.float32)
        self.underruns = 0

    def warmup(self, blocks: int = 50) -> None:
        """Warm up the inner processor, then reset everything."""
        self.inner.warmup(blocks)
        self.reset()

    def _advance(self, indata: np.ndarray) -> None:
        down = self._down.process(indata, self.model_rate / self.sample_rate, end_of_input=False)
        self._in = np.concatenate([self._in, down.astype(np.float32, copy=False).reshape(-1, self.channels)])
        n = self.inner_block
        done = []
        while len(self._in) >= n:
            self.inner.process(self._in[:n], self._buf)
            done.append(self._buf.copy())
            self._in = self._in[n:]
        if done:
            up = self._up.process(np.concatenate(done), self.sample_rate / self.model_rate, end_of_input=False)
            self._out = np.concatenate([self._out, up.astype(np.float32, copy=False).reshape(-1, self.channels)])

    def process(self, indata: np.ndarray, outdata: np.ndarray) -> None:
        """One device block ``(block_size, channels)`` from ``indata`` into ``outdata``."""
        self._advance(indata)
        n = self.block_size
        if len(self._out) >= n:
            np.clip(self._out[:n], -1.0, 1.0, out=outdata)  # resampling can ring past the limiter's ceiling
            self._out = self._out[n:]
        else:  # cannot happen with the measured prefill; never play garbage if it does
            outdata[:] = 0.0
            self.underruns += 1
            self.inner.stats.xruns += 1

    def _shortfall(self) -> int:
        """Largest cumulative deficit of output samples against device blocks, on silence."""
        z = np.zeros((self.block_size, self.channels), np.float32)
        balance, worst = 0, 0  # samples produced minus samples owed so far
        for _ in range(max(8, 10 * self.sample_rate // self.block_size)):
            before = len(self._out)
            self._advance(z)
            balance += len(self._out) - before - self.block_size
            worst = max(worst, -balance)
            self._out = self._out[min(len(self._out), self.block_size):]
        return worst

    def _delay(self) -> int:
        """Delay from device input to device output in samples, measured with an impulse on
        the dry path (delayed inside to line up with the wet one, so the delay is the same)."""
        wet, self.inner.wet = self.inner.wet, 0.0
        try:
            return self._impulse_delay()
        finally:
            self.inner.wet = wet

    def _impulse_delay(self) -> int:
        blocks = max(8, -(-(4 * self.inner.latency_samples + self.prefill + self.sample_rate // 10) // self.block_size))
        x = np.zeros((blocks * self.block_size, self.channels), np.float32)
        x[0] = 0.25
        y = np.zeros_like(x)
        for i in range(blocks):
            s = slice(i * self.block_size, (i + 1) * self.block_size)
            self.process(x[s], y[s])
        return int(np.argmax(np.abs(y[:, 0])))
