"""Real-time processing on an audio interface: safety, limiting, counters, and the device loop.

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
"""
from __future__ import annotations

import contextlib
import gc
import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..models.base import Generator
from . import rt
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


class LiveProcessor:
    """Callback-side processing of a generator on ``(frames, channels)`` blocks.

    Args:
        model: a registered generator (runs at ``model.sample_rate_in``).
        block_size: frames per callback.
        channels: audio channels (each streams through the model independently).
        wet: mix, 0 (dry only) to 1 (model output only).
        runtime: step runtime (default: ONNX Runtime when installed).
        threads: intra-op threads of the step.
        xfade_ms: ramp length of fallbacks to dry and of returns to wet, ms.
        deadline_ms: compute budget per block, ms (default: the block duration).
        limiter: pass the output through a 0 dBFS brick-wall limiter (pedalboard).
        history: compute times kept for the summary (blocks).
        startup_s: xruns and late blocks in this first part of a stream are counted apart.

    Attributes:
        stream_latency_samples: the stream's delay behind offline inference (model + FIFO).
        limiter_latency_samples: the limiter's lookahead delay, measured.
        latency_samples: algorithmic latency: block + stream + limiter, samples.

    Raises:
        ValueError: bad block size, channels or wet.
    """

    def __init__(self, model: Generator, block_size: int = 256, channels: int = 1, wet: float = 1.0,
                 runtime: str | None = None, threads: int | None = 1, xfade_ms: float = 5.0,
                 deadline_ms: float | None = None, limiter: bool = True, history: int = 1 << 20,
                 startup_s: float = 0.5) -> None:
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if not 0.0 <= wet <= 1.0:
            raise ValueError(f"wet must be in [0, 1], got {wet}")
        self.model = model
        self.sample_rate = model.sample_rate_in
        self.block_size = block_size
        self.channels = channels
        self.wet = float(wet)
        self.stream = StatefulStream(model, block_size, runtime=runtime, threads=threads)
        self._initial = self.stream.init_state(channels)  # never modified in place: reset = reuse
        self.state = self._initial
        self.stream_latency_samples = self.stream.latency_samples
        self.deadline_s = (deadline_ms / 1000.0) if deadline_ms else block_size / self.sample_rate
        self.startup_blocks = math.ceil(startup_s * self.sample_rate / block_size)
        self._ramp_step = 1.0 / max(1, round(xfade_ms * self.sample_rate / 1000.0))
        self._ramp = np.arange(1, block_size + 1, dtype=np.float32) * self._ramp_step
        self._gain = np.ones(channels, np.float32)  # wet gain per channel, 0..1 (fallback ramp)
        self._hold = np.zeros(channels, np.float32)  # last good wet sample per channel
        self._fading_out = False  # a fallback's fade to dry must finish before the wet returns
        d = self.stream_latency_samples
        self._dry = np.zeros((channels, d + block_size), np.float32)  # dry delay line
        self._x = np.zeros((channels, 1, block_size), np.float32)
        # scratch buffers: the callback writes into these instead of allocating arrays
        self._y = np.zeros((channels, 1, block_size), np.float32)  # wet
        self._mix = np.zeros((channels, block_size), np.float32)
        # the dry block, contiguous: numpy ufuncs allocate a buffer for a strided operand
        # such as a slice of the delay line
        self._dry_block = np.zeros((channels, block_size), np.float32)
        self._g = np.zeros((channels, block_size), np.float32)  # per-sample wet gain of a ramp
        self._ok = np.zeros((channels, block_size), bool)  # finiteness of the wet block
        self._io = np.zeros((block_size, channels), np.float32)  # |in| and |out| for the peaks
        self._io_ok = np.zeros((block_size, channels), bool)  # finiteness of the input block
        self.limiter = None
        self.limiter_latency_samples = 0
        if limiter:
            import pedalboard
            self.limiter = pedalboard.BrickwallLimiter(ceiling_db=0.0, release_ms=50.0, lookahead_ms=0.5)
            self.limiter_latency_samples = _limiter_delay(self.limiter, self.sample_rate, channels, block_size)
        self.latency_samples = block_size + self.stream_latency_samples + self.limiter_latency_samples
        self.stats = LiveStats()
        self.compute_ms = np.zeros(history, np.float32)
        self.reset()

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency in ms."""
        return 1000.0 * self.latency_samples / self.sample_rate

    def warmup(self, blocks: int = 50) -> None:
        """Run silence through everything (first calls of a runtime are slow), then reset."""
        z = np.zeros((self.block_size, self.channels), np.float32)
        out = np.zeros_like(z)
        for _ in range(blocks):
            self.process(z, out)
        self.reset()

    def reset(self) -> None:
        """Initial state: silent model state, empty delay lines, zero counters."""
        self.state = self._initial
        self._dry[:] = 0.0
        self._gain[:] = 1.0
        self._hold[:] = 0.0
        self._fading_out = False
        if self.limiter is not None:
            _prime(self.limiter, self.sample_rate, self.channels, self.block_size)
        self.stats = LiveStats()
        self.compute_ms[:] = 0.0

    def count_status(self, status) -> None:
        """Count a PortAudio callback status (``sounddevice.CallbackFlags``) as an xrun if flagged."""
        if status and any(getattr(status, f, False) for f in XRUN_FLAGS):
            if self.stats.blocks < self.startup_blocks:
                self.stats.startup_xruns += 1
            else:
                self.stats.xruns += 1

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
        _, state = self.stream.step_numpy(self._x, self.state, out=self._y)
        wet = self._y[:, 0, :]
        d = self.stream_latency_samples
        self._dry[:, d:] = indata.T
        dry = self._dry_block
        np.copyto(dry, self._dry[:, :n])
        elapsed = time.perf_counter() - t0
        finite = bool(np.isfinite(wet, out=self._ok).all())
        late = elapsed > self.deadline_s
        st = self.stats
        if finite:
            self.state = state
        else:
            st.nan_blocks += 1
            self.state = self._initial
        if late and st.blocks < self.startup_blocks:
            st.startup_late_blocks += 1
        elif late:
            st.late_blocks += 1
        good = finite and not late
        if not good:
            self._fading_out = True
        elif self._fading_out and self._gain.max() <= 0.0:
            self._fading_out = False  # the fade to dry is complete: the wet may come back now
        mix, g = self._mix, self._g
        if good and not self._fading_out and self._gain.min() >= 1.0:  # mix = dry + wet_mix * (wet - dry)
            np.subtract(wet, dry, out=mix)
            self._hold[:] = wet[:, -1]
        elif good and not self._fading_out:  # recovering: ramp the wet back in from dry
            np.add(self._gain[:, None], self._ramp[None, :], out=g)
            np.minimum(g, 1.0, out=g)
            np.subtract(wet, dry, out=mix)
            mix *= g
            self._gain[:] = g[:, -1]
            self._hold[:] = wet[:, -1]
        else:  # fall back to dry from the last good wet sample, held and faded out; a good
            # block arriving mid-fade finishes the fade first (no jump from hold to wet)
            np.subtract(self._gain[:, None], self._ramp[None, :], out=g)
            np.maximum(g, 0.0, out=g)
            np.subtract(self._hold[:, None], dry, out=mix)
            mix *= g
            self._gain[:] = g[:, -1]
        mix *= self.wet
        mix += dry
        if self.limiter is not None:
            mix = self.limiter.process(mix, self.sample_rate, reset=False)
        np.clip(mix, -1.0, 1.0, out=mix)  # (clipping straight into the transposed outdata would
        outdata[:] = mix.T                  # make numpy allocate a buffer)
        self._dry[:, :d] = self._dry[:, n:]
        st.in_peak = max(st.in_peak, float(np.abs(indata, out=self._io).max()))
        st.out_peak = max(st.out_peak, float(np.abs(outdata, out=self._io).max()))
        self.compute_ms[st.blocks % len(self.compute_ms)] = 1000.0 * (time.perf_counter() - t0)
        st.blocks += 1

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


def dbfs(peak: float) -> float:
    """Peak level in dBFS (-inf for silence)."""
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


# ----------------------------------------------------------------------------- devices
def import_sounddevice():
    """Import sounddevice (PortAudio), with an actionable error when it or PortAudio is missing.

    Raises:
        RuntimeError: sounddevice not installed or the PortAudio library not found.
    """
    try:
        import sounddevice as sd
    except ImportError as e:
        raise RuntimeError("live audio needs sounddevice: pip install 'rtgan[live]'") from e
    except OSError as e:  # sounddevice raises OSError when libportaudio is absent
        raise RuntimeError(f"PortAudio not found ({e}); on Debian: apt-get install libportaudio2") from e
    return sd


def list_devices() -> str:
    """A table of PortAudio host APIs and devices with channels, default rates and latencies (ms)."""
    sd = import_sounddevice()
    lines = []
    apis = sd.query_hostapis()
    devices = sd.query_devices()
    for a, api in enumerate(apis):
        lines.append(f"host API {a}: {api['name']}  (default input {api['default_input_device']}, "
                     f"default output {api['default_output_device']})")
        for i in api["devices"]:
            dev = devices[i]
            lines.append(f"  [{i:2d}] {dev['name'][:40]:40s} in {dev['max_input_channels']:2d}  "
                         f"out {dev['max_output_channels']:2d}  {dev['default_samplerate']:8.0f} Hz  "
                         f"latency in {1000 * dev['default_low_input_latency']:6.2f}-"
                         f"{1000 * dev['default_high_input_latency']:6.2f} ms  "
                         f"out {1000 * dev['default_low_output_latency']:6.2f}-"
                         f"{1000 * dev['default_high_output_latency']:6.2f} ms")
        if not api["devices"]:
            lines.append("  (no devices)")
    return "\n".join(lines)


def pick_sample_rate(sd, input_device, output_device, channels: int, wanted: int, strict: bool = False) -> int:
    """``wanted`` (Hz) if both devices accept it; else (unless ``strict``) the output
    device's default rate, if both devices accept that.

    Raises:
        RuntimeError: no usable device (e.g. no audio server running), or no rate both accept.
    """
    def accepts(rate: int) -> None:
        sd.check_input_settings(input_device, channels=channels, samplerate=rate, dtype="float32")
        sd.check_output_settings(output_device, channels=channels, samplerate=rate, dtype="float32")

    try:
        accepts(wanted)
        return wanted
    except (ValueError, sd.PortAudioError) as e:
        if strict:
            raise RuntimeError(f"the devices refuse {channels} channel(s) at {wanted} Hz: {e}; "
                               "see 'rtgan devices'") from e
        try:
            rate = int(sd.query_devices(output_device, "output")["default_samplerate"])
            if rate == wanted:
                raise RuntimeError(f"the devices refuse {channels} channel(s) at {wanted} Hz: {e}")
            accepts(rate)
            return rate
        except (ValueError, sd.PortAudioError) as e2:
            raise RuntimeError(f"no usable audio device ({e2}); is an audio server running? "
                               "see 'rtgan devices'") from e


def run_live(processor: LiveProcessor, input_device=None, output_device=None, duration: float | None = None,
             status_interval: float = 0.25, status=print, on_start=None, lock_memory: bool = True,
             wakeup_latency_us: int | None = None) -> dict:
    """Run ``processor`` on a PortAudio duplex stream until ``duration`` seconds or Ctrl-C.

    The processor is warmed up before the stream opens. The callback only copies, steps and
    counts. A status line (levels, RTF, xruns, latency) is passed to ``status`` every
    ``status_interval`` seconds (``status=None`` for none).

    Args:
        on_start: called with the open ``sounddevice.Stream`` once it runs (e.g. to connect JACK ports).
        lock_memory: lock the process's memory while streaming (see :func:`rt.locked_memory`).
        wakeup_latency_us: hold this CPU wake-up latency request (µs, PM QoS) while
            streaming (see :func:`rt.cpu_dma_latency`); None: no request.

    Returns:
        A summary dict: seconds, blocks, xruns, late and NaN blocks, compute stats, latencies,
        and which OS requests were granted (``memory_locked``, ``wakeup_latency_us``).

    Raises:
        RuntimeError: PortAudio missing, or the device refuses the sample rate / channels.
    """
    sd = import_sounddevice()
    processor.warmup()
    sr = processor.sample_rate
    # the callback frees what it allocates by reference counting; a cyclic-GC pass in the
    # audio thread would only add a pause, so collect now and keep the collector off
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    # the audio thread needs the GIL for every callback: hand it over quickly if the main
    # thread holds it (status line), instead of after the default 5 ms
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)

    callbacks = [0]

    def callback(indata, outdata, frames, time_info, flags):
        callbacks[0] += 1
        processor.count_status(flags)
        if frames != processor.block_size:  # PortAudio promised fixed blocks; never garbage
            outdata[:] = 0.0
            processor.stats.xruns += 1
            return
        processor.process(indata, outdata)

    try:
        with contextlib.ExitStack() as stack:
            locked = stack.enter_context(rt.locked_memory()) if lock_memory else False
            held = stack.enter_context(rt.cpu_dma_latency(wakeup_latency_us))
            granted = {"memory_locked": locked, "wakeup_latency_us": wakeup_latency_us if held else None}
            stream = stack.enter_context(sd.Stream(
                samplerate=sr, blocksize=processor.block_size, channels=processor.channels, dtype="float32",
                device=(input_device, output_device), callback=callback, latency="low"))
            t_start = time.monotonic()  # locking a large process's memory can take seconds
            device_latency = stream.latency
            if on_start is not None:
                on_start(stream)
            try:
                interval = status_interval if status is not None else 1.0
                while duration is None or time.monotonic() - t_start < duration:
                    time.sleep(interval if duration is None else
                               max(0.0, min(interval, duration - (time.monotonic() - t_start))))
                    if status is not None:
                        status(status_line(processor), end="\r", flush=True)
            except KeyboardInterrupt:
                pass
    except sd.PortAudioError as e:
        raise RuntimeError(f"audio device error: {e}; see 'rtgan devices'") from e
    finally:
        sys.setswitchinterval(switch)
        gc.unfreeze()
        if gc_was_enabled:
            gc.enable()
    if status is not None:
        status("")
    st = processor.stats
    return {"seconds": time.monotonic() - t_start, "blocks": callbacks[0], "xruns": st.xruns,
            "late_blocks": st.late_blocks, "nan_blocks": st.nan_blocks, "bad_input_blocks": st.bad_input_blocks,
            "startup_xruns": st.startup_xruns, **granted,
            "startup_late_blocks": st.startup_late_blocks, **processor.compute_summary(),
            "latency_samples": processor.latency_samples, "latency_ms": processor.latency_ms,
            "stream_latency_samples": getattr(processor, "inner", processor).stream_latency_samples,
            "limiter_latency_samples": getattr(processor, "inner", processor).limiter_latency_samples,
            "device_latency_ms": [1000.0 * v for v in device_latency], "sample_rate": sr,
            "block_size": processor.block_size}


def status_line(p: LiveProcessor) -> str:
    """One line: input/output peak (dBFS), RTF of recent blocks, xruns, late/NaN blocks, latency."""
    i, o = p.take_peaks()
    q = getattr(p, "inner", p)  # the model-rate processor behind a resampler
    k = q.stats.blocks
    recent = q.compute_ms[max(0, k - 64) % len(q.compute_ms): k % len(q.compute_ms) or None] if k else []
    rtf = (float(np.median(recent)) / (1000.0 * q.block_size / q.sample_rate)) if len(recent) else math.nan
    return (f"in {dbfs(i):6.1f} dBFS | out {dbfs(o):6.1f} dBFS | RTF {rtf:5.3f} | xruns {p.stats.xruns} | "
            f"late {p.stats.late_blocks} | NaN {p.stats.nan_blocks} | latency {p.latency_ms:.2f} ms   ")


def summary_line(s: dict) -> str:
    """The one-line summary printed when ``rtgan live`` stops."""
    return (f"rtgan live: {s['seconds']:.1f} s, {s['blocks']} blocks of {s['block_size']} @ {s['sample_rate']} Hz, "
            f"xruns {s['xruns']}, late {s['late_blocks']}, NaN {s['nan_blocks']} (start-up: xruns "
            f"{s['startup_xruns']}, late {s['startup_late_blocks']}), compute median "
            f"{s['median_ms']:.3f} ms p99 {s['p99_ms']:.3f} ms max {s['max_ms']:.3f} ms (RTF {s['rtf']:.3f}), "
            f"algorithmic latency {s['latency_samples']} samples = {s['latency_ms']:.2f} ms; memory "
            f"{'locked' if s.get('memory_locked') else 'not locked'}, CPU wake-up latency request "
            + (f"{s['wakeup_latency_us']} us" if s.get("wakeup_latency_us") is not None else "none"))


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
