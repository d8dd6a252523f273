"""Real-time processing of audio blocks: safety, limiting and counters (device independent).

:class:`LiveProcessor` is device independent: it takes ``(frames, channels)`` float32 blocks
as PortAudio delivers them and writes the processed block into the output buffer. Per block:

1. the stateful stream (:class:`~rtgan.engine.stateful.StatefulStream`) computes the wet
   signal for every channel at once (channels are the batch);
2. the dry signal is delayed by the stream's latency so dry and wet line up;
3. a block whose wet output is non-finite, or whose compute missed its deadline, is
   replaced by the dry signal: the wet gain ramps to 0 over ``xfade_ms`` starting from the
   last good wet sample (held), so the output never jumps, and ramps back once blocks are
   good again. A non-finite block also resets the model state (its caches hold NaN);
4. wet/dry mix, then pedalboard's lookahead brick-wall limiter with a 0 dBFS ceiling.

Counters (blocks, late and non-finite blocks, xruns reported by PortAudio, peaks, compute
times) are plain numbers written by the audio thread and read by the status line.

The audio interface side (PortAudio devices, the duplex stream loop, status lines) is in
:mod:`rtgan.engine.device`; running at a device rate other than the model's, and models whose
input and output rates differ (resampled around, mixed and limited at the device rate by the
same steps 2 to 4), in :mod:`rtgan.engine.resampling`.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from ..models.base import Generator
from ..models.params import ENGINE_PARAMETERS
from .params import ParameterBank
from .ola import LiveOverlapAdd
from .stateful import StatefulStream

#: PortAudio callback flags that mean audio was lost or invented.
XRUN_FLAGS = ("input_underflow", "input_overflow", "output_underflow", "output_overflow")


def _prime(limiter, sample_rate: int, channels: int, block: int) -> None:
    """Reset ``limiter`` and run silence through it until its output length is steady.

    pedalboard trims a plugin's lookahead from the first streamed output after a reset (that
    call returns fewer samples); after it, every call returns as many samples as it gets,
    late by the lookahead.
    """
    z = np.zeros((channels, block), np.float32)
    limiter.process(z, sample_rate, reset=True)
    for _ in range(4):
        if limiter.process(z, sample_rate, reset=False).shape[-1] == block:
            return
    raise RuntimeError("the limiter's output length does not settle")


def _limiter_delay(limiter, sample_rate: int, channels: int, block: int) -> int:
    """Delay of a primed ``limiter`` in samples, measured with a quiet impulse."""
    _prime(limiter, sample_rate, channels, block)
    blocks = -(-sample_rate // 20 // block)  # 50 ms of blocks, all of the same size (pedalboard
    x = np.zeros((channels, blocks * block), np.float32)  # re-prepares on a size change)
    x[:, 0] = 0.5
    y = np.concatenate([limiter.process(x[:, i:i + block], sample_rate, reset=False)
                        for i in range(0, x.shape[-1], block)], axis=-1)
    return int(np.argmax(np.abs(y[0])))


@dataclass
class LiveStats:
    """What the audio thread counted (read by the status line and the summary).

    Attributes:
        blocks: blocks processed.
        late_blocks: blocks whose compute exceeded the deadline (replaced by dry), after start-up.
        nan_blocks: blocks with non-finite wet output (replaced by dry, state reset).
        bad_input_blocks: blocks whose input held NaN/Inf (those samples replaced by 0).
        xruns: callbacks PortAudio flagged with an under- or overflow, after start-up.
        startup_xruns, startup_late_blocks: the same during the first ``startup_s`` seconds
            of a stream, counted apart (a new audio thread's first calls into the runtime are
            slow, and PortAudio primes its buffers), reported beside the others.
        in_peak, out_peak: peak absolute sample since the last :meth:`LiveProcessor.take_peaks`.

    Per-block compute times (ms) are kept by the processor in ``compute_ms``, a ring buffer.
    """

    blocks: int = 0
    late_blocks: int = 0
    nan_blocks: int = 0
    bad_input_blocks: int = 0
    xruns: int = 0
    startup_xruns: int = 0
    startup_late_blocks: int = 0
    in_peak: float = 0.0
    out_peak: float = 0.0


class BlockCounters:
    """What every callback-side processor shares: xrun counting, peaks, compute-time summary.

    Subclasses set ``stats`` (:class:`LiveStats`), ``compute_ms`` (ring buffer of per-block
    compute times, ms), ``block_size``, ``sample_rate`` (Hz), ``startup_blocks`` and
    ``latency_samples``.
    """

    stats: LiveStats
    compute_ms: np.ndarray
    block_size: int
    sample_rate: int
    startup_blocks: int
    latency_samples: int

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency in ms."""
        return 1000.0 * self.latency_samples / self.sample_rate

    def count_status(self, status) -> None:
        """Count a PortAudio callback status (``sounddevice.CallbackFlags``) as an xrun if flagged."""
        if status and any(getattr(status, f, False) for f in XRUN_FLAGS):
            if self.stats.blocks < self.startup_blocks:
                self.stats.startup_xruns += 1
            else:
                self.stats.xruns += 1

    def take_peaks(self) -> tuple[float, float]:
        """Input and output peaks since the last call (and reset them)."""
        p = (self.stats.in_peak, self.stats.out_peak)
        self.stats.in_peak = self.stats.out_peak = 0.0
        return p

    def compute_summary(self) -> dict:
        """Median, p99 and max compute time per block (ms) and the median RTF."""
        k = min(self.stats.blocks, len(self.compute_ms))
        if k == 0:
            return {"median_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan, "rtf": math.nan}
        t = self.compute_ms[:k]
        med = float(np.median(t))
        return {"median_ms": med, "p99_ms": float(np.percentile(t, 99)), "max_ms": float(t.max()),
                "rtf": med / (1000.0 * self.block_size / self.sample_rate)}


class LiveProcessor(BlockCounters):
    """Callback-side processing of a generator on ``(frames, channels)`` blocks.

    Args:
        model: a registered generator (runs at ``model.sample_rate_in``).
        block_size: frames per callback.
        channels: audio channels (each streams through the model independently).
        wet: mix, 0 (dry only) to 1: a ``"processed"`` model's output replaces the dry
            (crossfade), a ``"wet"`` model's (a reverb's) is added to it
            (:attr:`~rtgan.models.base.Generator.output_role`).
        runtime: step runtime (default: ONNX Runtime when installed).
        threads: intra-op threads of the step.
        xfade_ms: ramp length of fallbacks to dry and of returns to wet, ms.
        deadline_ms: compute budget per block, ms (default: the block duration).
        limiter: pass the output through a 0 dBFS brick-wall limiter (pedalboard).
        history: compute times kept for the summary (blocks).
        startup_s: xruns and late blocks in this first part of a stream are counted apart.
        mode: ``"stateful"`` (the cached-conv step) or ``"ola"``: 50 % Hann overlap-add of frames of
            ``2 hop`` model-rate samples computed by a worker thread (:class:`~rtgan.engine.ola.LiveOverlapAdd`,
            3 hops of latency; for frame-based models such as seed 001's, whose stateful lookahead is long).
        hop: the overlap-add hop in model-rate samples (mode ``"ola"``).

    Attributes:
        params: the live parameters (:class:`~rtgan.engine.params.ParameterBank`): the
            engine's ``wet`` and ``gain`` (dB), then the model's ``live_parameters``; set from
            any thread, smoothed per sample over 20 ms.
        stream_latency_samples: the stream's delay behind offline inference (model + FIFO).
        limiter_latency_samples: the limiter's lookahead delay, measured.
        latency_samples: algorithmic latency: block + stream + limiter, samples.

    Raises:
        ValueError: bad block size, channels or wet, or a model whose input and output differ
            in rate or kind (:class:`~rtgan.engine.resampling.CrossRateProcessor` runs a model
            whose audio rates differ; :func:`~rtgan.engine.resampling.live_processor` picks).
    """

    #: the model's state parameters (:meth:`Generator.parameter_states`); none for processors
    #: that do not set them (:class:`~rtgan.engine.resampling.CrossRateProcessor`)
    _state_params: dict[str, int] = {}
    _pool = None

    def __init__(self, model: Generator, block_size: int = 256, channels: int = 1, wet: float = 1.0,
                 runtime: str | None = None, threads: int | None = 1, xfade_ms: float = 5.0,
                 deadline_ms: float | None = None, limiter: bool = True, history: int = 1 << 20,
                 startup_s: float = 0.5, mode: str = "stateful", hop: int = 4096) -> None:
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if not 0.0 <= wet <= 1.0:
            raise ValueError(f"wet must be in [0, 1], got {wet}")
        if model.port_in != model.port_out or model.port_in.signal != "audio":
            raise ValueError(f"{model.name or type(model).__name__} reads {model.port_in} and writes {model.port_out}: "
                             "LiveProcessor runs audio in and out at one rate; "
                             "rtgan.engine.resampling.CrossRateProcessor resamples around such a model")
        self.model = model
        self._state_params = model.parameter_states()
        self._state_values: dict[str, float] = {}
        self._pool = None
        if mode == "stateful":
            self.stream = StatefulStream(model, block_size, runtime=runtime, threads=threads)
        elif mode == "ola":
            if self._state_params:
                raise ValueError(f"{model.name}: its parameters {sorted(self._state_params)} live in its streaming "
                                 f"state, which overlap-add does not have; use mode 'stateful'")
            self.stream = LiveOverlapAdd(model, block_size, hop)
        else:
            raise ValueError(f"live mode must be 'stateful' or 'ola', got {mode!r}")
        self._initial = self.stream.init_state(channels)  # never modified in place: reset = reuse
        self.state = self._initial
        self.stream_latency_samples = self.stream.latency_samples
        self._setup_output(model.sample_rate_in, block_size, channels, wet, xfade_ms, deadline_ms, limiter,
                           history, startup_s, dry_delay=self.stream_latency_samples)
        self._x = np.zeros((channels, 1, block_size), np.float32)
        # scratch buffers: the callback writes into these instead of allocating arrays
        self._y = np.zeros((channels, 1, block_size), np.float32)  # wet
        self._ok = np.zeros((channels, block_size), bool)  # finiteness of the wet block
        self.latency_samples = block_size + self.stream_latency_samples + self.limiter_latency_samples
        self.reset()

    def _setup_output(self, sample_rate: int, block_size: int, channels: int, wet: float, xfade_ms: float,
                      deadline_ms: float | None, limiter: bool, history: int, startup_s: float,
                      dry_delay: int, smooth_ms: float = 20.0) -> None:
        """The device-rate side shared with :class:`~rtgan.engine.resampling.CrossRateProcessor`:
        live parameters (:attr:`params`, smoothed over ``smooth_ms``), dry delay line of
        ``dry_delay`` samples, fallback ramps, mix and limiter buffers, counters."""
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.channels = channels
        self.params = ParameterBank(ENGINE_PARAMETERS + tuple(self.model.live_parameters), sample_rate, block_size,
                                    smooth_ms=smooth_ms)
        self.params.jump("wet", wet)
        # a wet-signal model (a reverb) is added to the dry; any other replaces it by a crossfade
        self._adds = self.model.output_role == "wet"
        self._zero = np.zeros((channels, block_size), np.float32)
        self._gain_lin = np.zeros(block_size, np.float32)
        self.deadline_s = (deadline_ms / 1000.0) if deadline_ms else block_size / self.sample_rate
        self.startup_blocks = math.ceil(startup_s * self.sample_rate / block_size)
        self._ramp_step = 1.0 / max(1, round(xfade_ms * self.sample_rate / 1000.0))
        self._ramp = np.arange(1, block_size + 1, dtype=np.float32) * self._ramp_step
        self._gain = np.ones(channels, np.float32)  # wet gain per channel, 0..1 (fallback ramp)
        self._hold = np.zeros(channels, np.float32)  # last good wet sample per channel
        self._fading_out = False  # a fallback's fade to dry must finish before the wet returns
        self._dry_delay = d = int(dry_delay)
        self._dry = np.zeros((channels, d + block_size), np.float32)  # dry delay line
        self._mix = np.zeros((channels, block_size), np.float32)
        # the dry block, contiguous: numpy ufuncs allocate a buffer for a strided operand
        # such as a slice of the delay line
        self._dry_block = np.zeros((channels, block_size), np.float32)
        self._g = np.zeros((channels, block_size), np.float32)  # per-sample wet gain of a ramp
        self._io = np.zeros((block_size, channels), np.float32)  # |in| and |out| for the peaks
        self._io_ok = np.zeros((block_size, channels), bool)  # finiteness of the input block
        self.limiter = None
        self.limiter_latency_samples = 0
        if limiter:
            import pedalboard
            self.limiter = pedalboard.BrickwallLimiter(ceiling_db=0.0, release_ms=50.0, lookahead_ms=0.5)
            self.limiter_latency_samples = _limiter_delay(self.limiter, self.sample_rate, channels, block_size)
        self.stats = LiveStats()
        self.compute_ms = np.zeros(history, np.float32)

    @property
    def wet(self) -> float:
        """The ``wet`` parameter's target (setting it here jumps, without a glide)."""
        return self.params.target("wet")

    @wet.setter
    def wet(self, value: float) -> None:
        self.params.jump("wet", value)

    def warmup(self, blocks: int = 50) -> None:
        """Run silence through everything (first calls of a runtime are slow), start the
        state-parameter worker and make each state parameter's tensor once in it, then reset.

        Starting a thread blocks its starter until the thread runs, which on a busy machine
        outlasts a block: the audio callback must never be the one to start it."""
        z = np.zeros((self.block_size, self.channels), np.float32)
        out = np.zeros_like(z)
        for _ in range(blocks):
            self.process(z, out)
        for name in self._state_params:
            default = self.params.declaration(name).default
            self._state_pool().submit(self.model.parameter_state, name, default, self.channels).result()
        self.reset()

    def reset(self) -> None:
        """Initial state: silent model state, empty delay lines, zero counters."""
        self.state = self._initial
        self._reset_state_params()
        self._dry[:] = 0.0
        self._gain[:] = 1.0
        self.params.reset()
        self._hold[:] = 0.0
        self._fading_out = False
        if self.limiter is not None:
            _prime(self.limiter, self.sample_rate, self.channels, self.block_size)
        self.stats = LiveStats()
        self.compute_ms[:] = 0.0

    def process(self, indata: np.ndarray, outdata: np.ndarray) -> None:
        """Process one ``(block_size, channels)`` float32 block from ``indata`` into ``outdata``.

        Every array it works on is preallocated: with ONNX Runtime and whole-granule blocks
        the only array created per block is the limiter's output (pedalboard returns a new
        one); otherwise only small Python objects (the state tuple, counters) are.
        """
        t0 = time.perf_counter()
        n = self.block_size
        if not np.isfinite(indata, out=self._io_ok).all():  # a broken input never reaches the model or the output
            indata = np.nan_to_num(indata, nan=0.0, posinf=0.0, neginf=0.0)
            self.stats.bad_input_blocks += 1
        self._x[:, 0, :] = indata.T
        if self._state_params:
            self._apply_state_params()
        _, state = self.stream.step_numpy(self._x, self.state, out=self._y)
        wet = self._y[:, 0, :]
        d = self.stream_latency_samples
        self._dry[:, d:] = indata.T
        dry = self._dry_block
        np.copyto(dry, self._dry[:, :n])
        elapsed = time.perf_counter() - t0
        finite = bool(np.isfinite(wet, out=self._ok).all())
        if finite:
            self.state = state
        else:
            self.stats.nan_blocks += 1
            self.state = self._initial  # (its state parameters at their defaults: rewritten next block)
            self._reset_state_params()
        self._emit(indata, outdata, wet, dry, finite, elapsed > self.deadline_s, t0)

    def _reset_state_params(self) -> None:
        """The initial state holds every state parameter at its default: record that, with
        nothing asked of the worker and no job in flight."""
        self._state_values = {n: self.params.declaration(n).default for n in self._state_params}
        self._state_requested = dict(self._state_values)
        self._state_job = None

    def _apply_state_params(self) -> None:
        """Bring the state parameters (those the model's step reads from its state, such as a
        reverb's decay) to their smoothed values.

        Making such a state tensor takes milliseconds (a reverb rebuilds its filter), too long
        for an audio callback: a worker thread makes it from the value at request time, and
        the next callback after it is ready swaps it in (a reference swap). A new request goes
        out when the value has moved by more than 0.5 % since the last one and none is in flight.
        """
        job = self._state_job
        if job is not None and job[2].done():
            name, v, fut = job
            self._state_job = None
            t = fut.result()
            model_state = list(self.state.model)
            index = self._state_params[name]
            old = model_state[index]
            model_state[index] = t.numpy() if isinstance(old, np.ndarray) else t.to(old.dtype)
            self.state = dataclasses.replace(self.state, model=tuple(model_state))
            self._state_values[name] = v
        if self._state_job is not None:
            return
        for name in self._state_params:
            v = self.params.current(name)
            last = self._state_requested.get(name)
            if last is None or abs(v - last) > 0.005 * max(abs(last), 1e-9):
                self._state_requested[name] = v
                self._state_job = (name, v, self._state_pool().submit(self.model.parameter_state, name, v,
                                                                      self.channels))
                return

    def _state_pool(self):
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtgan-params")
        return self._pool

    def settle_parameters(self, timeout: float = 10.0) -> None:
        """Wait until the state parameters hold their current values (offline use and tests)."""
        for _ in range(2 * len(self._state_params) + 2):
            if self._state_job is not None:
                self._state_job[2].result(timeout)
            self._apply_state_params()
            if self._state_job is None and all(self._state_values.get(n) == self._state_requested.get(n)
                                               for n in self._state_params):
                return

    def state_parameter_values(self) -> dict[str, float]:
        """What the model's state holds now of each state parameter (e.g. ``{"decay": 1.0}``)."""
        return dict(self._state_values)

    def _emit(self, indata: np.ndarray, outdata: np.ndarray, wet: np.ndarray, dry: np.ndarray, ok: bool,
              late: bool, t0: float) -> None:
        """Mix a ``(channels, block_size)`` wet block with the dry block lined up with it (or
        fall back to dry where the wet is not ``ok`` or ``late``), limit, write ``outdata``,
        advance the dry delay line and count."""
        n, d = self.block_size, self._dry_delay
        st = self.stats
        if late and st.blocks < self.startup_blocks:
            st.startup_late_blocks += 1
        elif late:
            st.late_blocks += 1
        good = ok and not late
        if not good:
            self._fading_out = True
        elif self._fading_out and self._gain.max() <= 0.0:
            self._fading_out = False  # the fade to dry is complete: the wet may come back now
        mix, g = self._mix, self._g
        ref = self._zero if self._adds else dry  # mix = dry + wet * (y - ref)
        if good and not self._fading_out and self._gain.min() >= 1.0:
            np.subtract(wet, ref, out=mix)
            self._hold[:] = wet[:, -1]
        elif good and not self._fading_out:  # recovering: ramp the wet back in from dry
            np.add(self._gain[:, None], self._ramp[None, :], out=g)
            np.minimum(g, 1.0, out=g)
            np.subtract(wet, ref, out=mix)
            mix *= g
            self._gain[:] = g[:, -1]
            self._hold[:] = wet[:, -1]
        else:  # fall back to dry from the last good wet sample, held and faded out; a good
            # block arriving mid-fade finishes the fade first (no jump from hold to wet)
            np.subtract(self._gain[:, None], self._ramp[None, :], out=g)
            np.maximum(g, 0.0, out=g)
            np.subtract(self._hold[:, None], ref, out=mix)
            mix *= g
            self._gain[:] = g[:, -1]
        p = self.params
        p.advance()  # smoothed per sample: no zipper noise from parameter steps
        wet_ramp = p.ramp("wet")
        np.multiply(p.ramp("gain"), math.log(10.0) / 20.0, out=self._gain_lin)  # dB -> linear
        np.exp(self._gain_lin, out=self._gain_lin)
        for c in range(self.channels):  # channel by channel: numpy copies a broadcast in-place operand
            np.multiply(mix[c], wet_ramp, out=mix[c])
            np.add(mix[c], dry[c], out=mix[c])
            np.multiply(mix[c], self._gain_lin, out=mix[c])
        if self.limiter is not None:
            mix = self.limiter.process(mix, self.sample_rate, reset=False)
        np.clip(mix, -1.0, 1.0, out=mix)  # (clipping straight into the transposed outdata would
        outdata[:] = mix.T                  # make numpy allocate a buffer)
        self._dry[:, :d] = self._dry[:, n:]
        st.in_peak = max(st.in_peak, float(np.abs(indata, out=self._io).max()))
        st.out_peak = max(st.out_peak, float(np.abs(outdata, out=self._io).max()))
        self.compute_ms[st.blocks % len(self.compute_ms)] = 1000.0 * (time.perf_counter() - t0)
        st.blocks += 1

def dbfs(peak: float) -> float:
    """Peak level in dBFS (-inf for silence)."""
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf
