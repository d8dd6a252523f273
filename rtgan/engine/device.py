"""The audio interface side of live processing: PortAudio devices, the duplex stream loop, status lines.

:func:`run_live` runs a :class:`~rtgan.engine.live.LiveProcessor` (or a
:class:`~rtgan.engine.resampling.ResamplingProcessor` or
:class:`~rtgan.engine.resampling.CrossRateProcessor`) on a sounddevice duplex stream;
:func:`list_devices` and :func:`pick_sample_rate` find what the devices offer.
"""
from __future__ import annotations

import contextlib
import gc
import math
import sys
import time

import numpy as np

from . import rt
from .live import LiveProcessor, dbfs

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


@contextlib.contextmanager
def audio_thread_conditions():
    """While the block runs, keep Python from pausing a PortAudio callback thread: the cyclic
    garbage collector is off (everything alive is collected and frozen first; callbacks free
    what they allocate by reference counting, so a GC pass in the audio thread would only add
    a pause), and the GIL switch interval is 0.1 ms instead of 5 ms (the audio thread needs the
    GIL for every callback and gets it quickly when the main thread holds it). Both are
    restored on exit."""
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        yield
    finally:
        sys.setswitchinterval(switch)
        gc.unfreeze()
        if gc_was_enabled:
            gc.enable()


def run_live(processor: LiveProcessor, input_device=None, output_device=None, duration: float | None = None,
             status_interval: float = 0.25, status=print, on_start=None, lock_memory: bool = True,
             wakeup_latency_us: int | None = None, on_tick=None) -> dict:
    """Run ``processor`` on a PortAudio duplex stream until ``duration`` seconds or Ctrl-C.

    The processor is warmed up before the stream opens. The callback only copies, steps and
    counts. A status line (levels, RTF, xruns, latency) is passed to ``status`` every
    ``status_interval`` seconds (``status=None`` for none).

    Args:
        on_start: called with the open ``sounddevice.Stream`` once it runs (e.g. to connect JACK ports).
        on_tick: called without arguments from the main thread every ``status_interval``
            seconds while the stream runs (e.g. :meth:`rtgan.engine.midi.MidiControl.poll`).
        lock_memory: lock the process's memory while streaming (see :func:`rt.locked_memory`).
        wakeup_latency_us: hold this CPU wake-up latency request (µs, PM QoS) while
            streaming (see :func:`rt.cpu_dma_latency`); None: no request.

    Returns:
        A summary dict: seconds, blocks, xruns, late and NaN blocks, compute stats, latencies
        (``latency_samples`` at the device rate; ``stream_latency_samples`` at the model's
        output rate; a :class:`~rtgan.engine.resampling.CrossRateProcessor`'s parts in device
        samples as ``latency_parts``), whether a worker thread computed the model's blocks and how
        many callbacks waited for it (``worker``, ``worker_waits``), and which OS requests were
        granted (``memory_locked``, ``wakeup_latency_us``).

    Raises:
        RuntimeError: PortAudio missing, or the device refuses the sample rate / channels.
    """
    sd = import_sounddevice()
    processor.warmup()
    sr = processor.sample_rate
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
            stack.enter_context(audio_thread_conditions())
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
                    if on_tick is not None:
                        on_tick()
                    if status is not None:
                        status(status_line(processor), end="\r", flush=True)
            except KeyboardInterrupt:
                pass
    except sd.PortAudioError as e:
        raise RuntimeError(f"audio device error: {e}; see 'rtgan devices'") from e
    if status is not None:
        status("")
    if hasattr(processor, "drain"):  # a worker's last block must not write the counters read below
        processor.drain()
    st = processor.stats
    return {"seconds": time.monotonic() - t_start, "blocks": callbacks[0], "xruns": st.xruns,
            "late_blocks": st.late_blocks, "nan_blocks": st.nan_blocks, "bad_input_blocks": st.bad_input_blocks,
            "startup_xruns": st.startup_xruns, **granted,
            "startup_late_blocks": st.startup_late_blocks, **processor.compute_summary(),
            "latency_samples": processor.latency_samples, "latency_ms": processor.latency_ms,
            "stream_latency_samples": getattr(processor, "inner", processor).stream_latency_samples,
            "limiter_latency_samples": getattr(processor, "inner", processor).limiter_latency_samples,
            "device_latency_ms": [1000.0 * v for v in device_latency], "sample_rate": sr,
            "block_size": processor.block_size, "worker": bool(getattr(processor, "worker", False)),
            "worker_waits": int(getattr(processor, "worker_waits", 0)),
            "worker_realtime": bool(getattr(processor, "worker_realtime", False)),
            **({"latency_parts": dict(processor.latency_parts)} if hasattr(processor, "latency_parts") else {})}


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
            f"xruns {s['xruns']}, late {s['late_blocks']}, NaN {s['nan_blocks']}"
            + (f", waits for the worker {s['worker_waits']}" if s.get("worker") else "") + " (start-up: xruns "
            f"{s['startup_xruns']}, late {s['startup_late_blocks']}), compute median "
            f"{s['median_ms']:.3f} ms p99 {s['p99_ms']:.3f} ms max {s['max_ms']:.3f} ms (RTF {s['rtf']:.3f}), "
            f"algorithmic latency {s['latency_samples']} samples = {s['latency_ms']:.2f} ms; memory "
            f"{'locked' if s.get('memory_locked') else 'not locked'}, CPU wake-up latency request "
            + (f"{s['wakeup_latency_us']} us" if s.get("wakeup_latency_us") is not None else "none"))
