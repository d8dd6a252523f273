"""Round-trip latency, measured: impulses out, recording in, arrivals by cross-correlation.

The way amp-modeling trainers calibrate a capture rig: a train of short clicks is played
through the output while the input records; the recording is cross-correlated with the
click, and each click's arrival is the first peak of the correlation envelope (magnitude of
its analytic signal) that reaches ``threshold`` times the largest peak in the window after
the click was sent (so a later, stronger reflection does not win over the direct path). Output and input are read in the same duplex
callback, so send and arrival positions share one sample clock.

With a :class:`~rtgan.engine.live.LiveProcessor` in the loop, the clicks pass through the
model before they leave, and the measured round trip grows by the processor's own delay
(stream + limiter), which :func:`measure_roundtrip` reports beside it.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import asdict, dataclass

import numpy as np
from scipy import signal

from .device import import_sounddevice
from .live import LiveProcessor


def click(sample_rate: int, ms: float = 1.0) -> np.ndarray:
    """A Hann-windowed 3 kHz tone burst of ``ms`` milliseconds, peak 1 (the probe pulse)."""
    n = max(8, int(round(sample_rate * ms / 1000.0)))
    t = np.arange(n) / sample_rate
    return (np.hanning(n) * np.sin(2 * np.pi * 3000.0 * t)).astype(np.float32)


def impulse_train(sample_rate: int, count: int = 8, spacing_s: float = 0.25, lead_s: float = 0.5,
                  amplitude: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``count`` clicks every ``spacing_s`` seconds after ``lead_s`` of silence.

    Returns:
        ``(signal, positions)``: float32 ``(samples,)`` and the start sample of every click.
    """
    pulse = amplitude * click(sample_rate)
    spacing = int(spacing_s * sample_rate)
    lead = int(lead_s * sample_rate)
    positions = lead + spacing * np.arange(count)
    x = np.zeros(lead + spacing * (count + 1), np.float32)
    for p in positions:
        x[p:p + len(pulse)] += pulse
    return x, positions


def find_arrivals(recorded: np.ndarray, positions: np.ndarray, pulse: np.ndarray, spacing: int,
                  threshold: float = 0.5, min_snr_db: float = 20.0) -> np.ndarray:
    """Delay in samples of each click's arrival in ``recorded`` (NaN where none was found).

    Args:
        recorded: ``(samples,)`` input recording.
        positions: send positions (start samples) of the clicks.
        pulse: the click shape.
        spacing: samples between clicks; each arrival is searched in ``[p, p + spacing)``.
        threshold: fraction of the window's correlation peak that marks the arrival.
        min_snr_db: a window whose correlation peak is not this far above the median
            correlation magnitude holds no click.
    """
    corr = np.abs(signal.hilbert(signal.correlate(recorded, pulse, mode="valid")))
    floor = float(np.median(corr)) + 1e-12
    out = np.full(len(positions), np.nan)
    for i, p in enumerate(positions):
        w = corr[p:p + spacing]
        if len(w) == 0:
            continue
        peak = float(w.max())
        if 20 * np.log10(peak / floor) < min_snr_db:
            continue
        first = int(np.argmax(w >= threshold * peak))
        out[i] = first + int(np.argmax(w[first:first + len(pulse)]))
    return out


@dataclass(frozen=True)
class RoundTrip:
    """One round-trip measurement (samples at ``sample_rate``).

    Attributes:
        measured: median arrival delay over the clicks found.
        spread: max - min over the clicks found.
        found, sent: clicks found / sent.
        reported: PortAudio's input + output latency of the stream.
        processor: the processor's own delay (stream + limiter, no block buffering), or 0.
    """

    sample_rate: int
    block_size: int
    measured: float
    spread: float
    found: int
    sent: int
    reported: float
    processor: int

    def ms(self, samples: float) -> float:
        return 1000.0 * samples / self.sample_rate

    def to_dict(self) -> dict:
        """The fields as a dict; ``measured`` and ``spread`` are ``None`` when no click came back
        (strict JSON has no NaN)."""
        d = asdict(self)
        for k in ("measured", "spread"):
            if not np.isfinite(d[k]):
                d[k] = None
        return d


def format_roundtrip_table(rows: list[tuple[str, RoundTrip]]) -> str:
    """The ``rtgan latency`` table: one line per ``(path name, measurement)``, samples and ms.

    A path on which no click came back reads "no click came back", never NaN.
    """
    sr, block = rows[0][1].sample_rate, rows[0][1].block_size
    lines = [f"round trip at {sr} Hz, block {block} (samples / ms)",
             f"{'path':>22} {'measured':>14} {'spread':>7} {'clicks':>7} {'PortAudio reports':>19} "
             f"{'+ processor (computed)':>24}"]
    for name, r in rows:
        if r.found:
            got = f"{r.measured:>6.0f} {r.ms(r.measured):>6.2f} ms {r.spread:>7.0f}"
        else:
            got = f"{'no click came back':>24}"
        lines.append(f"{name:>22} {got} {r.found:>3}/{r.sent:<3} "
                     f"{r.reported:>7.0f} {r.ms(r.reported):>6.2f} ms {r.reported + r.processor:>10.0f} "
                     f"{r.ms(r.reported + r.processor):>6.2f} ms")
    return "\n".join(lines)


def missing_clicks_message(rows: list[tuple[str, RoundTrip]], jack_loopback: bool = False) -> str | None:
    """What to connect when clicks did not come back (``None`` when every path got some).

    Args:
        rows: ``(path name, measurement)``, the device-only path first.
        jack_loopback: whether ``--jack-loopback`` connected the ports already.
    """
    lost = [(name, r) for name, r in rows if r.found == 0]
    if not lost:
        return None
    if rows[0][1].found == 0:
        if jack_loopback:
            return ("no click came back although our JACK outputs were connected to our inputs "
                    "(--jack-loopback): check with jack_lsp -c that the PortAudio ports are connected and that "
                    "the server runs at the measured sample rate")
        return ("no click came back, so there is nothing to measure: connect the audio interface's output "
                "to its input with a cable (line out -> line in, input gain low), or on a JACK server pass "
                "--jack-loopback to connect our outputs to our inputs in software; pick the devices with "
                "--input-device/--output-device (see 'rtgan devices')")
    names = ", ".join(name for name, _ in lost)
    return (f"clicks came back on the device-only path but not on: {names} (the processor muted them, or "
            f"delayed them by more than the 0.25 s between clicks)")


def measure_roundtrip(sample_rate: int, block_size: int = 256, processor: LiveProcessor | None = None,
                      input_device=None, output_device=None, count: int = 8, spacing_s: float = 0.25,
                      on_start=None) -> RoundTrip:
    """Play a click train, record the input, and return the measured round trip.

    Args:
        processor: run the clicks through this processor (mono) before they leave.
        on_start: called with the running ``sounddevice.Stream`` (e.g. :func:`jack_loopback`).

    Raises:
        RuntimeError: PortAudio missing or the device refuses the settings.
    """
    sd = import_sounddevice()
    if processor is not None:
        if processor.block_size != block_size or processor.channels != 1 or processor.sample_rate != sample_rate:
            raise ValueError("the processor must be mono with the same block size and sample rate")
        processor.warmup()
    probe, positions = impulse_train(sample_rate, count, spacing_s)
    total = -(-len(probe) // block_size) * block_size
    probe = np.pad(probe, (0, total - len(probe)))
    recorded = np.zeros(total, np.float32)
    cursor = [0]

    def callback(indata, outdata, frames, time_info, flags):
        i = cursor[0]
        if i + frames > total:
            outdata[:] = 0.0
            return
        block = probe[i:i + frames, None]
        if processor is not None:
            processor.process(block, outdata)
        else:
            outdata[:] = block
        recorded[i:i + frames] = indata[:, 0]
        cursor[0] = i + frames

    try:
        with sd.Stream(samplerate=sample_rate, blocksize=block_size, channels=1, dtype="float32",
                       device=(input_device, output_device), callback=callback, latency="low") as stream:
            reported = sum(stream.latency) * sample_rate
            if on_start is not None:
                on_start(stream)
            deadline = time.monotonic() + 2.0 * total / sample_rate + 5.0
            while cursor[0] + block_size <= total:
                if not stream.active or time.monotonic() > deadline:
                    raise RuntimeError(f"the audio stream stopped after {cursor[0]} of {total} samples")
                sd.sleep(50)
    except sd.PortAudioError as e:
        raise RuntimeError(f"audio device error: {e}; see 'rtgan devices'") from e
    delays = find_arrivals(recorded, positions, 0.5 * click(sample_rate), int(spacing_s * sample_rate))
    ok = delays[np.isfinite(delays)]
    proc = 0 if processor is None else processor.latency_samples - processor.block_size
    return RoundTrip(sample_rate, block_size, float(np.median(ok)) if len(ok) else float("nan"),
                     float(ok.max() - ok.min()) if len(ok) else float("nan"), int(len(ok)), int(count),
                     float(reported), int(proc))


def jack_loopback(stream=None) -> None:
    """Connect this process's JACK output ports to its input ports (``out_k`` -> ``in_k``).

    PortAudio registers a JACK client named ``PortAudio`` with ports ``in_k``/``out_k`` and
    connects them to the system ports; this adds the software loopback that lets
    :func:`measure_roundtrip` run on a JACK server without a cable (e.g. the dummy driver).

    Raises:
        RuntimeError: ``jack_lsp``/``jack_connect`` missing or no PortAudio ports found.
    """
    if not (shutil.which("jack_lsp") and shutil.which("jack_connect")):
        raise RuntimeError("jack_lsp/jack_connect not found (Debian: apt-get install jackd2)")
    listing = subprocess.run(["jack_lsp"], capture_output=True, text=True)
    if listing.returncode:
        raise RuntimeError(f"jack_lsp failed (is a JACK server running?): {listing.stderr.strip()}")
    ports = listing.stdout.split()
    outs = sorted(p for p in ports if p.startswith("PortAudio") and ":out_" in p)
    ins = sorted(p for p in ports if p.startswith("PortAudio") and ":in_" in p)
    if not outs or not ins:
        raise RuntimeError(f"no PortAudio JACK ports to connect (ports: {ports})")
    for o, i in zip(outs, ins):
        r = subprocess.run(["jack_connect", o, i], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"jack_connect {o} {i} failed: {r.stderr.strip() or r.stdout.strip()}")
