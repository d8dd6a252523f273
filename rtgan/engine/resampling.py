"""Live processing at a device rate other than the model's rates.

* :class:`ResamplingProcessor`: a model that reads and writes one rate, on a device at another
  rate: a :class:`~rtgan.engine.live.LiveProcessor` at the model's rate behind streaming
  resamplers (the mix and the limiter run at the model's rate).
* :class:`CrossRateProcessor`: a model whose input and output rates differ (sr16-unet reads
  ``16000 / r`` Hz and writes 16 kHz): the device's input is resampled to the model's input
  rate, the model's output to the device rate where it differs, and the wet/dry mix, the
  fallback to dry and the limiter run at the device rate on the device's own input, delayed
  to line up with the wet path.
* :func:`live_processor` picks one of them, or a plain :class:`~rtgan.engine.live.LiveProcessor`
  when the device runs at the model's one rate (nothing added, nothing resampled).

Both resampling processors use libsamplerate's ``sinc_medium`` converters (python-samplerate)
and measure their delay at construction instead of assuming it.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction

import numpy as np

from . import rt
from ..models.base import Generator
from .live import LiveProcessor, LiveStats
from .runtime import StepRunner, default_step_runtime

#: libsamplerate converter used both ways.
CONVERTER = "sinc_medium"

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

    With ``worker=True`` the model-rate blocks run on a worker thread instead of in the
    callback: an inner block completed during device block ``k`` is handed to the worker there
    and its output taken into the FIFO at the start of block ``k + 1`` (waited for then only if
    the FIFO would run short: :attr:`worker_waits`). The prefill is measured with that
    deferral, so it grows by at most one device block (the FIFO is lowest just before an inner
    block's output arrives), and the worker has a device period for each inner block. A model
    whose inner block spans several device blocks needs it (a vocoder's 256-sample mel hop at
    22.05 kHz is 2.2 device blocks of 256 at 48 kHz): without it one callback in two or three
    computes a whole inner block while the others compute nothing. The worker owns the inner
    processor; :meth:`reset` waits for it first.

    Args:
        model: generator; ``device_rate`` differs from ``model.sample_rate_in``.
        device_rate: the device's sample rate in Hz.
        block_size: frames per device callback.
        channels, **kw: as for :class:`LiveProcessor`.
        worker: run the inner processor on a worker thread, one device block later (above).

    Attributes:
        inner_block: the model-rate block, samples.
        prefill: zeros the output FIFO starts with, device samples.
        latency_samples: device input to device output, measured with an impulse.
        underruns: device blocks the FIFO could not fill (never with the measured prefill).
        worker_waits: device blocks whose callback had to wait for the worker (the inner
            processor's ``compute_ms`` holds the worker's time per inner block).
    """

    def __init__(self, model: Generator, device_rate: int, block_size: int = 256, channels: int = 1,
                 worker: bool = False, **kw) -> None:
        import samplerate  # noqa: F401  (fail at construction, not in the callback)
        if block_size < 1 or device_rate < 1:
            raise ValueError(f"block size and device rate must be >= 1, got {block_size}, {device_rate}")
        self.sample_rate = int(device_rate)
        self.model_rate = model.sample_rate_in
        self.block_size = block_size
        self.channels = channels
        self.inner_block = self.inner_block_for(model, self.sample_rate, block_size)
        self.inner = LiveProcessor(model, self.inner_block, channels=channels, **kw)
        self.worker = bool(worker)
        self._jobs: deque = deque()  # inner blocks not yet taken into the FIFO, oldest first
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtgan-inner") if self.worker else None
        self._measuring = False
        self._caller = None  # the thread the worker last took its scheduling from
        self.worker_realtime = False
        self.prefill = 0
        self.reset()
        self.prefill = self._shortfall()
        self.latency_samples = block_size + self._delay()
        self.reset()

    @staticmethod
    def inner_block_for(model: Generator, device_rate: int, block_size: int) -> int:
        """The model-rate block for a device block: ``block_size`` scaled to the model's rate,
        rounded up to a whole number of the model's granules (samples at the model's rate)."""
        g = model.stream_granule
        return max(g, -(-math.ceil(block_size * model.sample_rate_in / device_rate) // g) * g)

    # the inner processor keeps the counters and the live parameters
    @property
    def stats(self) -> LiveStats:
        return self.inner.stats

    @property
    def params(self):
        """The inner processor's :class:`~rtgan.engine.params.ParameterBank` (smoothed at the model's rate)."""
        return self.inner.params

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
        """Fresh resamplers, empty FIFOs (the output one holding ``prefill`` zeros), inner reset
        (with a worker: after the inner blocks in flight have finished)."""
        import samplerate
        self.drain()
        self.worker_waits = 0
        self.inner.reset()
        c = self.channels
        self._down = samplerate.Resampler(CONVERTER, channels=c)
        self._up = samplerate.Resampler(CONVERTER, channels=c)
        self._in = np.zeros((0, c), np.float32)
        self._out = np.zeros((self.prefill, c), np.float32)
        self._buf = np.zeros((self.inner_block, c), np.float32)
        self.underruns = 0

    def warmup(self, blocks: int = 50) -> None:
        """Warm up the inner processor (after the worker's blocks in flight), then reset everything."""
        self.drain()
        self.inner.warmup(blocks)
        self.reset()

    def drain(self) -> None:
        """Wait for the inner blocks in flight on the worker and drop them (their output and any
        error they raised: they are discarded); after this only the calling thread touches the
        inner processor until the next :meth:`process`. Nothing to do without a worker."""
        jobs = getattr(self, "_jobs", None)
        if not jobs:
            return
        try:
            for job in jobs:
                if isinstance(job, Future):
                    job.exception()  # waits; a failed block is dropped like the others
        finally:
            jobs.clear()

    def close(self) -> None:
        """Stop the worker thread (after the inner blocks in flight); not used after this."""
        try:
            self.drain()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def _follow_caller(self) -> None:
        """A new calling thread (the audio callback's, once the stream runs): the worker takes its
        real-time scheduling one priority below it (:func:`rt.follow_scheduling`; an audio callback
        runs SCHED_FIFO where the server has real-time rights), so other processes cannot hold the
        worker back while the callback waits for it. :attr:`worker_realtime` says whether it did."""
        self._caller = threading.get_ident()
        policy, priority = rt.calling_thread_scheduling()

        def follow():
            self.worker_realtime = rt.follow_scheduling(policy, priority)
        self._pool.submit(follow)  # runs before the next inner block

    def _inner_job(self, x: np.ndarray) -> np.ndarray:
        """One ``(inner_block, channels)`` block through the inner processor, on the worker."""
        y = np.zeros_like(x)
        self.inner.process(x, y)
        return y

    def _collect(self, wait: bool) -> bool:
        """Take the oldest worker block, resampled, into the FIFO if it is done (or ``wait``);
        whether one was taken."""
        job = self._jobs[0]
        if isinstance(job, Future) and not (wait or job.done()):
            return False
        self._jobs.popleft()  # (first: a block whose job raised is not met again)
        self._push_out(job.result() if isinstance(job, Future) else job)
        return True

    def _push_out(self, done: np.ndarray) -> None:
        """``(frames, channels)`` model-rate output, resampled, onto the output FIFO."""
        up = self._up.process(done, self.sample_rate / self.model_rate, end_of_input=False)
        self._out = np.concatenate([self._out, up.astype(np.float32, copy=False).reshape(-1, self.channels)])

    def _advance(self, indata: np.ndarray) -> None:
        if self.worker:  # the inner blocks of earlier device blocks the worker has finished
            while self._jobs and self._collect(wait=False):
                pass
        down = self._down.process(indata, self.model_rate / self.sample_rate, end_of_input=False)
        self._in = np.concatenate([self._in, down.astype(np.float32, copy=False).reshape(-1, self.channels)])
        n = self.inner_block
        done = []
        while len(self._in) >= n:
            if self.worker and not self._measuring:
                self._jobs.append(self._pool.submit(self._inner_job, self._in[:n]))  # (_in is replaced, never written)
            else:
                self.inner.process(self._in[:n], self._buf)
                if self.worker:  # measuring: taken in at the next block, as the worker's output is
                    self._jobs.append(self._buf.copy())
                else:
                    done.append(self._buf.copy())
            self._in = self._in[n:]
        if done:
            self._push_out(np.concatenate(done))

    def process(self, indata: np.ndarray, outdata: np.ndarray) -> None:
        """One device block ``(block_size, channels)`` from ``indata`` into ``outdata``."""
        if self.worker and self._caller != threading.get_ident():
            self._follow_caller()
        self._advance(indata)
        n = self.block_size
        if self.worker and len(self._out) < n and self._jobs:  # the worker is behind: wait for it
            self.worker_waits += 1
            while len(self._out) < n and self._jobs:
                self._collect(wait=True)
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
        self._measuring = True
        try:
            for _ in range(max(8, 10 * self.sample_rate // self.block_size)):
                before = len(self._out)
                self._advance(z)
                balance += len(self._out) - before - self.block_size
                worst = max(worst, -balance)
                self._out = self._out[min(len(self._out), self.block_size):]
        finally:
            self._measuring = False
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


def converter_timing(rate_from: float, rate_to: float, block: int) -> tuple[float, float]:
    """How a streaming :data:`CONVERTER` from ``rate_from`` to ``rate_to`` Hz fed blocks of
    ``block`` input samples shifts a signal, measured.

    A Gaussian pulse whose spectrum is negligible (``e**-100``) from 45 % of the lower rate up
    (inside both converters' passbands) goes through; its energy centroid on the output's time
    axis (sample ``k`` at ``k / rate_to`` s) minus the input's is the converter's index delay:
    what it adds to the signal's timing beyond the samples it owes. libsamplerate's is 0 to within 1e-3 samples
    (it holds output back until it has the lookahead its filter needs, instead of delaying
    the signal). The samples owed at the end, ``input * rate_to / rate_from - output``, are
    its hold-back: what it makes the consumer wait for.

    Returns:
        ``(index delay in seconds, hold-back in output samples)``.
    """
    import samplerate
    rate_from, rate_to = float(rate_from), float(rate_to)
    sigma = 5.0 / min(rate_from, rate_to)  # s; 2 pi 0.45 * 5 = 14.1: exp(-14.1^2 / 2) < 1e-43
    t0 = 12.0 * sigma
    n = -(-int(rate_from * (24.0 * sigma + 0.1)) // block) * block  # 0.1 s more than the pulse: its tail out
    t = np.arange(n) / rate_from
    x = np.exp(-0.5 * ((t - t0) / sigma) ** 2).astype(np.float32)[:, None]
    conv = samplerate.Resampler(CONVERTER, channels=1)
    y = np.concatenate([conv.process(x[i:i + block], rate_to / rate_from, end_of_input=False).reshape(-1)
                        for i in range(0, n, block)]).astype(np.float64)
    e = y * y
    centroid = float(np.sum(np.arange(len(y)) * e) / np.sum(e)) / rate_to
    return centroid - t0, n * rate_to / rate_from - len(y)


class _Fifo:
    """First in, first out: ``(channels, frames)`` float32 in one buffer that grows if it must."""

    def __init__(self, channels: int, capacity: int) -> None:
        self.buf = np.zeros((channels, max(1, capacity)), np.float32)
        self.n = 0

    def clear(self, fill: int = 0) -> None:
        """Empty it, then hold ``fill`` zeros."""
        if fill > self.buf.shape[-1]:
            self.buf = np.zeros((self.buf.shape[0], 2 * fill), np.float32)
        self.buf[:, :fill] = 0.0
        self.n = fill

    def push(self, x: np.ndarray) -> None:
        """Append ``x`` of shape ``(channels, k)``."""
        k = x.shape[-1]
        if self.n + k > self.buf.shape[-1]:  # only while the first blocks settle
            grown = np.zeros((self.buf.shape[0], 2 * (self.n + k)), np.float32)
            grown[:, :self.n] = self.buf[:, :self.n]
            self.buf = grown
        self.buf[:, self.n:self.n + k] = x
        self.n += k

    def pop(self, k: int, out: np.ndarray | None = None) -> None:
        """Remove the first ``k`` frames, into ``out`` ``(channels, k)`` if given."""
        if out is not None:
            out[...] = self.buf[:, :k]
        self.buf[:, :self.n - k] = self.buf[:, k:self.n]
        self.n -= k


class CrossRateProcessor(LiveProcessor):
    """Live processing of a model whose input and output rates differ, at a device rate ``D``.

    Per device block of ``N`` frames (channels are the batch, as in :class:`LiveProcessor`):

    1. the input is resampled from ``D`` to the model's input rate ``f_in`` (skipped where they
       are equal) into a FIFO, and every whole granule the FIFO holds runs through the model's
       stateful step at once (one step of about ``N f_in / D`` frames per block; nothing waits
       longer than a granule, so no model block's worth of latency is added);
    2. the model's output (``f_out``) is resampled to ``D`` (skipped where ``f_out = D``) into the
       wet FIFO, which starts with ``prefill`` zeros: the largest shortfall against the device
       blocks owed, found by running the chain (the model's step stood in for by silence of
       its output length) on ten seconds of silent blocks at construction. The step lengths
       met there are compiled then (the counts repeat exactly: they depend on the block size
       only), so no step is compiled once blocks flow;
    3. the dry signal is the device's input, delayed by ``dry_delay_samples``: the wet path's
       delay rounded to a whole sample;
    4. fallbacks, wet/dry mix and limiter as in :class:`LiveProcessor`, at ``D``. A model step
       whose output is not finite resets the model state and enters the output resampler as
       silence (its filter never holds NaN); the device blocks that carry any of it, up to the
       resampler's reach after it, fall back to dry. A block the FIFO cannot fill (never with
       the measured prefill) falls back to dry and counts as an xrun.

    The converters return a new array per call (as in :class:`ResamplingProcessor`); the model
    step, FIFOs, mix and limiter work in preallocated buffers as :class:`LiveProcessor` does.

    Latency (device samples, :attr:`latency_samples`): the block ``N``, plus the wet path's delay
    ``prefill + model * D / f_out + shift_in + shift_out``, rounded, plus the limiter's lookahead
    (measured). The converters' delay is in ``prefill``: each holds output back until it has
    the lookahead its filter needs (``input_resampler_samples``, ``output_resampler_samples``,
    measured by :func:`converter_timing`), and the FIFOs wait for whole granules and absorb the
    converters' uneven counts; ``model`` is the stream's delay behind offline inference (output
    frames); ``shift_in``/``shift_out``, what the converters move the signal by beyond their
    hold-back, are measured too (0 to within 1e-3 samples for libsamplerate).
    :attr:`latency_parts` lists the parts in device samples.

    Args:
        model: a streamable generator reading and writing mono audio (any two rates).
        device_rate: the device's rate in Hz (default: the model's output rate).
        block_size: frames per device callback.
        channels, wet, runtime, threads, xfade_ms, deadline_ms, limiter, history, startup_s: as
            for :class:`LiveProcessor` (rates and times at the device rate).

    Attributes:
        chunk_sizes: the model step lengths (input frames) the stream runs, compiled.
        prefill: zeros the wet FIFO starts with, device samples.
        wet_delay_samples: the wet path's delay from device input to the mix, device samples
            (fractional where the rates do not divide).
        dry_delay_samples: the dry path's delay, ``round(wet_delay_samples)``.
        stream_latency_samples: the model's streaming delay, output frames at ``f_out``.
        limiter_latency_samples: the limiter's lookahead, device samples.
        latency_samples: ``block_size + dry_delay_samples + limiter_latency_samples``.
        underruns: blocks the wet FIFO could not fill.

    Raises:
        ValueError: bad block size, device rate, channels or wet, or a model that does not
            stream mono audio in and out.
    """

    def __init__(self, model: Generator, device_rate: int | None = None, block_size: int = 256, channels: int = 1,
                 wet: float = 1.0, runtime: str | None = None, threads: int | None = 1, xfade_ms: float = 5.0,
                 deadline_ms: float | None = None, limiter: bool = True, history: int = 1 << 20,
                 startup_s: float = 0.5) -> None:
        import samplerate  # noqa: F401  (fail at construction, not in the callback)
        pin, pout = model.port_in, model.port_out
        name = model.name or type(model).__name__
        if pin.signal != "audio" or pout.signal != "audio" or pin.channels != 1 or pout.channels != 1:
            raise ValueError(f"{name} reads {pin} and writes {pout}: live processing needs mono audio in and out")
        if model.kind != "streamable":
            raise ValueError(f"{name} is a {model.kind!r} model: it has no stateful step")
        rate = int(device_rate or model.sample_rate_out)
        if block_size < 1 or rate < 1:
            raise ValueError(f"block size and device rate must be >= 1, got {block_size}, {rate}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if not 0.0 <= wet <= 1.0:
            raise ValueError(f"wet must be in [0, 1], got {wet}")
        self.model = model.eval()
        self.model_rate_in, self.model_rate_out = pin.rate, pout.rate
        self.block_size, self.channels, self.sample_rate = block_size, channels, rate
        self.granule = model.stream_granule
        self.runtime = runtime or default_step_runtime()
        self.runner = StepRunner(self.model, self.runtime, threads=threads)
        self._initial = self.runner.init_state(channels)  # never modified in place: reset = reuse
        self.state = self._initial
        self.stream_latency_samples = model.latency_samples
        self._resample_in, self._resample_out = pin.rate != rate, pout.rate != rate
        self._ratio_in, self._ratio_out = float(pin.rate / rate), float(rate / pout.rate)
        per_block = math.ceil(Fraction(block_size) * pin.rate / rate)  # model input frames per device block
        # the converters, measured on their own: index shift (s) and hold-back (their output samples)
        t_in, h_in = converter_timing(rate, pin.rate, block_size) if self._resample_in else (0.0, 0.0)
        t_out, h_out = (converter_timing(pout.rate, rate, model.output_length(per_block))
                        if self._resample_out else (0.0, 0.0))
        self.input_resampler_samples = float(h_in * rate / pin.rate)
        self.output_resampler_samples = float(h_out)
        self._margin = 2 * math.ceil(h_out) + 2  # wet samples after a silenced step that its silence reaches
        self._wet = np.zeros((channels, block_size), np.float32)
        self._xin = _Fifo(channels, 4 * (per_block + self.granule))
        self._wout = _Fifo(channels, 4 * (block_size + self.granule) + 64)  # grows if it must
        self._chunks: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._measuring = False
        self._met: set[int] = set()
        self.prefill = 0
        self._reset_resampling()
        self.prefill = self._shortfall()
        self.chunk_sizes = sorted(self._met | {self.granule})
        for k in self.chunk_sizes:  # compile every step length now, and give each its buffers
            self.runner.prepare(channels, k)
            m = model.output_length(k)
            self._chunks[k] = (np.zeros((channels, 1, k), np.float32), np.zeros((channels, 1, m), np.float32),
                               np.zeros((channels, 1, m), bool))
        model_d = float(self.stream_latency_samples * rate / pout.rate)
        shift = (t_in + t_out) * rate
        self.wet_delay_samples = self.prefill + model_d + shift
        self.dry_delay_samples = max(0, round(self.wet_delay_samples))
        self._setup_output(rate, block_size, channels, wet, xfade_ms, deadline_ms, limiter, history, startup_s,
                           dry_delay=self.dry_delay_samples)
        self.latency_samples = block_size + self.dry_delay_samples + self.limiter_latency_samples
        self.latency_parts = {
            "block": float(block_size), "input resampler": self.input_resampler_samples,
            "output resampler": self.output_resampler_samples,
            "FIFOs": self.prefill - self.input_resampler_samples - self.output_resampler_samples,
            "model": model_d, "resampler shift": shift,
            "rounding": self.dry_delay_samples - self.wet_delay_samples,
            "limiter": float(self.limiter_latency_samples)}
        self.reset()

    def reset(self) -> None:
        """Initial state: silent model state, fresh resamplers, FIFOs and delay lines, zero counters."""
        super().reset()
        self._reset_resampling()

    def _reset_resampling(self) -> None:
        import samplerate
        c = self.channels
        self._down = samplerate.Resampler(CONVERTER, channels=c) if self._resample_in else None
        self._up = samplerate.Resampler(CONVERTER, channels=c) if self._resample_out else None
        self._xin.clear()
        self._wout.clear(self.prefill)
        self._emitted = 0  # device samples taken from the wet FIFO so far
        self._bad_until = 0  # wet samples before this one (counted as _emitted counts) may be spoilt
        self.underruns = 0

    def _chunk(self, frames: int) -> int:
        """The step length to run with ``frames`` whole granules waiting: all of them (the
        lengths met at construction), else the longest compiled length that fits."""
        if self._measuring:
            self._met.add(frames)
            return frames
        if frames in self._chunks:
            return frames
        return max(k for k in self.chunk_sizes if k <= frames)  # the granule always fits

    def _feed(self, indata: np.ndarray) -> None:
        """Resample a finite device block to the model's input rate, step the model over every
        whole granule waiting, resample its output to the device rate into the wet FIFO."""
        c, g = self.channels, self.granule
        if self._down is not None:
            u = self._down.process(indata, self._ratio_in, end_of_input=False).reshape(-1, c)
            self._xin.push(u.T)
        else:
            self._xin.push(indata.T)
        while self._xin.n >= g:
            k = self._chunk(self._xin.n // g * g)
            bad = False
            if self._measuring:
                self._xin.pop(k)
                y = np.zeros((c, 1, self.model.output_length(k)), np.float32)
            else:
                x, y, ok = self._chunks[k]
                self._xin.pop(k, x[:, 0, :])
                _, state = self.runner(x, self.state, y)
                if np.isfinite(y, out=ok).all():
                    self.state = state
                else:  # the model's caches hold NaN: start it again; the resampler gets silence
                    self.stats.nan_blocks += 1
                    self.state = self._initial
                    y[:] = 0.0
                    bad = True
            if self._up is not None:
                v = self._up.process(np.ascontiguousarray(y[:, 0, :].T), self._ratio_out, end_of_input=False)
                self._wout.push(v.reshape(-1, c).T)
            else:
                self._wout.push(y[:, 0, :])
            if bad:
                self._bad_until = self._emitted + self._wout.n + self._margin

    def process(self, indata: np.ndarray, outdata: np.ndarray) -> None:
        """One device block ``(block_size, channels)`` from ``indata`` into ``outdata``."""
        t0 = time.perf_counter()
        n, d = self.block_size, self._dry_delay
        if not np.isfinite(indata, out=self._io_ok).all():  # a broken input never reaches the model or the output
            indata = np.nan_to_num(indata, nan=0.0, posinf=0.0, neginf=0.0)
            self.stats.bad_input_blocks += 1
        self._feed(indata)
        ok = self._wout.n >= n
        if ok:
            self._wout.pop(n, self._wet)
        else:  # cannot happen with the measured prefill; play dry if it does
            self._wet[:] = 0.0
            self.underruns += 1
            self.stats.xruns += 1
        ok = ok and self._emitted >= self._bad_until
        self._emitted += n
        self._dry[:, d:] = indata.T
        np.copyto(self._dry_block, self._dry[:, :n])
        late = time.perf_counter() - t0 > self.deadline_s
        self._emit(indata, outdata, self._wet, self._dry_block, ok, late, t0)

    def _shortfall(self) -> int:
        """Largest cumulative deficit of wet samples against device blocks, on ten seconds of
        silent blocks (the model's step stood in for by silence of its output length: only
        the counts matter, and they depend on the block size only). Records the step lengths met."""
        z = np.zeros((self.block_size, self.channels), np.float32)
        balance, worst = 0, 0  # samples produced minus samples owed so far
        self._measuring = True
        try:
            for _ in range(max(8, 10 * self.sample_rate // self.block_size)):
                before = self._wout.n
                self._feed(z)
                balance += self._wout.n - before - self.block_size
                worst = max(worst, -balance)
                self._wout.pop(min(self._wout.n, self.block_size))
        finally:
            self._measuring = False
        return worst


def live_processor(model: Generator, device_rate: int | None = None, block_size: int = 256, channels: int = 1,
                   worker: bool | None = None, **kw) -> LiveProcessor | ResamplingProcessor | CrossRateProcessor:
    """The processor for ``model`` on a device at ``device_rate`` Hz (default: the model's output rate).

    A model reading and writing one rate: a :class:`LiveProcessor` when the device runs at
    it (exactly as before: no resampler, no added latency), else a :class:`ResamplingProcessor`.
    A model whose rates differ: a :class:`CrossRateProcessor`. ``**kw`` as for :class:`LiveProcessor`.

    ``worker``: run the model-rate blocks of a :class:`ResamplingProcessor` on a worker thread
    (one device block more latency). None (default) decides: on when the model-rate block spans
    two device blocks or more (:func:`needs_worker`), off otherwise.

    Raises:
        ValueError: ``worker=True`` for a processor without a resampler in front of one model
            rate (the others compute every callback alike), or a mode the processor lacks.
    """
    if model.port_in != model.port_out:
        if kw.pop("mode", "stateful") != "stateful":
            raise ValueError(f"{model.name}: overlap-add runs models that read and write one rate; "
                             f"this one reads {model.port_in.rate} Hz and writes {model.port_out.rate} Hz")
        kw.pop("hop", None)
        if worker:
            raise ValueError(f"{model.name}: a worker thread runs models that read and write one rate "
                             f"behind a resampler; this one reads {model.port_in.rate} Hz and writes "
                             f"{model.port_out.rate} Hz")
        return CrossRateProcessor(model, device_rate, block_size, channels, **kw)
    if device_rate is None or device_rate == model.sample_rate_in:
        if worker:
            raise ValueError(f"{model.name}: a worker thread runs only behind a resampler (a device rate other "
                             f"than the model's {model.sample_rate_in} Hz); here every callback computes one block")
        return LiveProcessor(model, block_size, channels=channels, **kw)
    if worker is None:  # (overlap-add computes its frames on a worker of its own)
        worker = kw.get("mode", "stateful") == "stateful" and needs_worker(model, device_rate, block_size)
    return ResamplingProcessor(model, device_rate, block_size, channels, worker=worker, **kw)


def needs_worker(model: Generator, device_rate: int, block_size: int) -> bool:
    """Whether a :class:`ResamplingProcessor`'s model-rate block (the device block at the model's
    rate, rounded up to its granule) spans two device blocks or more, so that the callbacks
    that complete one would compute all of it while the others compute nothing."""
    return ResamplingProcessor.inner_block_for(model, device_rate, block_size) * device_rate \
        >= 2 * block_size * model.sample_rate_in
