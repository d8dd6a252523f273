"""Note models played live: notes generated ahead per pitch, voices mixed in the audio callback.

A note model (kind ``"note"``, e.g. reverbsynth) renders a whole note at a time, far too slowly
for an audio callback (a generator pass and an IF-Mel inversion). So :class:`NoteCache`
renders every pitch of the model's range ahead of time, for each processing label, in one
batched pass, and keeps the float32 arrays; a note-on in the callback only starts reading one
of them. The latency from a note-on to its first sample is therefore the wait for the next
callback (at most one block) and nothing else: the voice starts at the first sample of the
block computed after the event arrives. :class:`VoiceProcessor` measures it per note (the
time from the MIDI thread's receipt to the start of the callback that starts the voice).

Latent morph: the cache's notes come from ``z = slerp(z_a, z_b, morph)``, the spherical
interpolation of two seeds' latents (White 2016, "Sampling generative networks", used for
GANSynth's timbre interpolations). Moving the ``morph`` parameter re-renders the cache in a
worker thread (quantised to :attr:`NoteCache.morph_steps` steps) and swaps it in by reference;
notes already sounding keep their audio.

Voices (:class:`VoiceProcessor`): up to ``polyphony`` notes at once (a note-on beyond that
takes the oldest voice's place); velocity is a linear gain ``velocity / 127``; a note-off
releases the pitch's voices with a linear fade of ``release_ms``; a note that reaches its
end (4 s for reverbsynth) stops. Output: the mix times the ``gain`` parameter (dB, smoothed),
clipped to [-1, 1] and copied to every output channel. No limiter: its lookahead would add
latency to every note.

Events come from python-rtmidi's thread through :meth:`VoiceProcessor.note_event`, a deque
append (atomic in CPython); the callback drains the deque. Nothing the MIDI side sends can
raise in the callback: out-of-range pitches are counted and ignored.
"""
from __future__ import annotations

import collections
import math
import threading
import time
from typing import Any

import numpy as np
import torch

from ..models.params import ENGINE_PARAMETERS
from .live import BlockCounters, LiveStats
from .params import ParameterBank

__all__ = ["slerp", "NoteCache", "VoiceProcessor"]


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of two latents ``(z_dim,)`` at ``t`` in [0, 1] (White 2016, eq. 1).

    ``sin((1-t) w) / sin w * a + sin(t w) / sin w * b`` with ``w`` the angle between them; linear
    where they are (anti)parallel.
    """
    cos = torch.dot(a, b) / (torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b))
    w = torch.arccos(torch.clamp(cos, -1.0, 1.0))
    if float(torch.sin(w)) < 1e-6:
        return (1.0 - t) * a + t * b
    return (torch.sin((1.0 - t) * w) * a + torch.sin(t * w) * b) / torch.sin(w)


class NoteCache:
    """Every pitch x label of a note model, rendered ahead (see the module docstring).

    Args:
        model: a note model (``render_note``'s generator: ``model(z, pitch, label)`` and
            ``model.denormalise``; reverbsynth).
        seeds: the two latent seeds the morph moves between.
        morph_steps: the morph is quantised to this many steps (a re-render per step).
        sample_rate: rate of the kept notes, Hz (default the model's): a device at another rate
            gets the notes resampled once, here (:func:`rtgan.audio.io.resample`), not per block.

    Attributes:
        notes: ``{(midi pitch, label index): (samples,) float32}`` of the current morph.
        morph: the morph value :attr:`notes` was rendered at.
        error: the exception of the last failed re-render, or ``None``.
    """

    def __init__(self, model: Any, seeds: tuple[int, int] = (0, 1), morph_steps: int = 16,
                 sample_rate: int | None = None) -> None:
        if morph_steps < 1:
            raise ValueError(f"morph_steps must be >= 1, got {morph_steps}")
        self.model, self.morph_steps = model, int(morph_steps)
        self.sample_rate = int(sample_rate or model.sample_rate_out)
        z_dim = model.config.z_dim
        self.z = [torch.randn(z_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
        self.seeds = tuple(int(s) for s in seeds)
        self.labels = tuple(range(max(len(model.labels), 1)))
        lo, hi = model.pitch_range
        self.pitches = tuple(range(lo, hi + 1))
        self.morph = 0.0
        self.last_render_s = 0.0
        self.notes = self.render(0.0)
        self.error: Exception | None = None
        self._wanted: float | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()  # a request waits for the worker
        self._idle = threading.Event()  # no request pending and no render running
        self._idle.set()
        self.renders = 1
        # started here, never from a callback: Thread.start() waits until the thread runs
        self._worker = threading.Thread(target=self._work, name="rtgan-notes", daemon=True)
        self._worker.start()

    def quantise(self, morph: float) -> float:
        """``morph`` (clipped to [0, 1]) on the cache's grid of :attr:`morph_steps` steps."""
        return round(min(max(float(morph), 0.0), 1.0) * self.morph_steps) / self.morph_steps

    @torch.no_grad()
    def render(self, morph: float) -> dict[tuple[int, int], np.ndarray]:
        """Every (pitch, label) note at ``morph`` in one batched generator pass, velocity 1."""
        from ..dsp import ifmel_to_audio
        t0 = time.perf_counter()
        m = self.model
        p = next(m.parameters())
        z = slerp(self.z[0], self.z[1], self.quantise(morph)).to(p.device, p.dtype)
        keys = [(pitch, lab) for pitch in self.pitches for lab in self.labels]
        pitch = torch.tensor([k[0] - m.config.pitch_min for k in keys], device=p.device)
        label = torch.tensor([k[1] for k in keys], device=p.device)
        out: dict[tuple[int, int], np.ndarray] = {}
        for i in range(0, len(keys), 32):  # batches bound the memory of the inversion
            sl = slice(i, i + 32)
            y = m(z.expand(len(keys[sl]), -1), pitch[sl], label[sl])
            audio = ifmel_to_audio(m.denormalise(y).float(), m.config.ifmel_spec).cpu().numpy().astype(np.float32)
            if self.sample_rate != m.sample_rate_out:
                from ..audio.io import resample
                audio = resample(audio, m.sample_rate_out, self.sample_rate).astype(np.float32)
            for k, a in zip(keys[sl], audio):
                out[k] = np.ascontiguousarray(a)
        self.last_render_s = time.perf_counter() - t0
        return out

    def request(self, morph: float) -> None:
        """Re-render at ``morph`` in the worker thread if it moved by a grid step; the newest
        request wins. Cheap enough for an audio callback: a flag under a lock, no thread started."""
        q = self.quantise(morph)
        with self._lock:
            if q == self.morph and self._idle.is_set():
                return
            self._wanted = q
            self._idle.clear()
        self._wake.set()

    def _work(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()  # before looking at the request: a later one sets it again
            while True:
                with self._lock:
                    q, self._wanted = self._wanted, None
                    if q is None or q == self.morph:
                        self._idle.set()
                        break
                try:
                    notes = self.render(q)
                except Exception as e:  # the old notes keep playing; the error is kept for the caller
                    self.error = e
                    continue
                with self._lock:
                    self.notes, self.morph = notes, q  # a reference swap: the callback sees old or new
                    self.renders += 1

    def wait(self, timeout: float = 60.0) -> None:
        """Block until no re-render is pending or running (offline use and tests)."""
        self._idle.wait(timeout)


class VoiceProcessor(BlockCounters):
    """Callback-side player of a note model (module docstring); the interface of
    :class:`~rtgan.engine.live.LiveProcessor` that :func:`~rtgan.engine.device.run_live` uses.

    Args:
        model: a note model with ``live_parameters`` ``morph`` (0-1) and ``reverb`` (0-1; a
            note-on takes the reverberant label when it is >= 0.5) where it declares them.
        sample_rate: the device's rate, Hz (default the model's; the notes are resampled ahead).
        block_size: frames per callback.
        channels: output channels (each gets the same mono mix); the input is ignored.
        polyphony: voices sounding at once.
        release_ms: note-off fade, ms (default the model's ``config.release_ms``).
        seeds: latent seeds of the morph's two ends.
        morph_steps: see :class:`NoteCache`.
        startup_s: xruns in this first part of a stream are counted apart.
        history: compute times kept (blocks).

    Raises:
        ValueError: not a note model, polyphony < 1, a negative release.
    """

    def __init__(self, model: Any, block_size: int = 256, channels: int = 1, polyphony: int = 8,
                 release_ms: float | None = None, seeds: tuple[int, int] = (0, 1), morph_steps: int = 16,
                 startup_s: float = 1.0, history: int = 4096, sample_rate: int | None = None) -> None:
        if getattr(model, "kind", "") != "note":
            raise ValueError(f"{getattr(model, 'name', model)} is not a note model")
        if polyphony < 1:
            raise ValueError(f"polyphony must be >= 1, got {polyphony}")
        release_ms = float(model.config.release_ms if release_ms is None else release_ms)
        if not release_ms >= 0:
            raise ValueError(f"release must be >= 0 ms, got {release_ms}")
        self.model = model
        self.sample_rate = int(sample_rate or model.sample_rate_out)
        self.block_size, self.channels, self.polyphony = int(block_size), int(channels), int(polyphony)
        self.release_samples = max(1, round(release_ms * self.sample_rate / 1000.0))
        gain = tuple(p for p in ENGINE_PARAMETERS if p.name == "gain")
        self.params = ParameterBank(gain + tuple(model.live_parameters), self.sample_rate, self.block_size)
        self.cache = NoteCache(model, seeds, morph_steps, self.sample_rate)
        self.events: collections.deque = collections.deque()
        # a voice: [audio, position, gain, samples of release left (-1: held), pitch]
        self.voices: list[list] = []
        self._mix = np.zeros(self.block_size, np.float32)
        self._env = np.zeros(self.block_size, np.float32)
        self._gain_lin = np.zeros(self.block_size, np.float32)
        self._down = np.arange(self.block_size, dtype=np.float32)
        self.startup_blocks = math.ceil(startup_s * self.sample_rate / self.block_size)
        self.latency_samples = self.block_size  # a note-on waits for the next block, no more
        self.stream_latency_samples = 0
        self.limiter_latency_samples = 0
        self.stats = LiveStats()
        self.compute_ms = np.zeros(history, np.float32)
        self.note_latency_ms: list[float] = []
        self.counts = {"notes_on": 0, "notes_off": 0, "out_of_range": 0, "stolen": 0, "clipped_blocks": 0}

    # ------------------------------------------------------------------ events (any thread)
    def note_event(self, on: bool, pitch: int, velocity: int, channel: int = 1) -> None:
        """Queue a note-on (``on``, velocity 1-127) or note-off from any thread; never raises."""
        self.events.append((bool(on), int(pitch), int(velocity), time.monotonic()))

    # ------------------------------------------------------------------ callback
    def warmup(self, blocks: int = 20) -> None:
        """Run the callback on silence with a note sounding (first calls are slow), then reset."""
        lo, _ = self.model.pitch_range
        z = np.zeros((self.block_size, self.channels), np.float32)
        out = np.zeros_like(z)
        self.note_event(True, lo, 1)
        for _ in range(blocks):
            self.process(z, out)
        self.reset()

    def reset(self) -> None:
        """No voices, no pending events, zero counters; parameters at their targets."""
        self.voices.clear()
        self.events.clear()
        self.params.reset()
        self.stats = LiveStats()
        self.compute_ms[:] = 0.0
        self.note_latency_ms.clear()
        for k in self.counts:
            self.counts[k] = 0

    def _start(self, pitch: int, velocity: int, received: float, t0: float) -> None:
        lo, hi = self.model.pitch_range
        if not lo <= pitch <= hi:
            self.counts["out_of_range"] += 1
            return
        label = 1 if ("reverb" in self.params and self.params.target("reverb") >= 0.5
                      and len(self.cache.labels) > 1) else 0
        audio = self.cache.notes[(pitch, label)]
        if len(self.voices) >= self.polyphony:
            self.voices.pop(0)
            self.counts["stolen"] += 1
        self.voices.append([audio, 0, velocity / 127.0, -1, pitch])
        self.counts["notes_on"] += 1
        self.note_latency_ms.append(1000.0 * max(0.0, t0 - received))

    def process(self, indata: np.ndarray, outdata: np.ndarray) -> None:
        """Start and stop voices for the queued events, mix one block into ``outdata`` ``(block_size, channels)``."""
        t0 = time.monotonic()
        tp = time.perf_counter()
        while self.events:
            on, pitch, velocity, received = self.events.popleft()
            if on and velocity > 0:
                self._start(pitch, velocity, received, t0)
            else:
                self.counts["notes_off"] += 1
                for v in self.voices:
                    if v[4] == pitch and v[3] < 0:
                        v[3] = self.release_samples
        if "morph" in self.params:
            self.cache.request(self.params.target("morph"))
        n, mix = self.block_size, self._mix
        mix[:] = 0.0
        keep = []
        for v in self.voices:
            audio, pos, gain, left = v[0], v[1], v[2], v[3]
            k = min(n, audio.shape[0] - pos)
            if k > 0:
                seg = audio[pos:pos + k]
                if left >= 0:  # releasing: a linear ramp from left/R down to 0
                    env = self._env[:k]
                    np.subtract(float(left), self._down[:k], out=env)
                    np.maximum(env, 0.0, out=env)
                    env *= gain / self.release_samples
                    np.multiply(seg, env, out=env)
                    mix[:k] += env
                    v[3] = max(left - k, 0)
                else:
                    mix[:k] += gain * seg
                v[1] = pos + k
            if v[1] < audio.shape[0] and v[3] != 0:  # not at its end, not faded out
                keep.append(v)
        self.voices[:] = keep
        p = self.params
        p.advance()
        np.multiply(p.ramp("gain"), math.log(10.0) / 20.0, out=self._gain_lin)
        np.exp(self._gain_lin, out=self._gain_lin)
        mix *= self._gain_lin
        st = self.stats
        peak = float(np.abs(mix).max())
        if peak > 1.0:
            self.counts["clipped_blocks"] += 1
            np.clip(mix, -1.0, 1.0, out=mix)
        outdata[:] = mix[:, None]
        st.out_peak = max(st.out_peak, min(peak, 1.0))
        self.compute_ms[st.blocks % len(self.compute_ms)] = 1000.0 * (time.perf_counter() - tp)
        st.blocks += 1

    def latency_summary(self) -> dict:
        """Note-on to first-sample latency over the notes played: ``{"n", "median_ms", "max_ms"}``."""
        t = np.asarray(self.note_latency_ms, np.float64)
        if t.size == 0:
            return {"n": 0, "median_ms": math.nan, "max_ms": math.nan}
        return {"n": int(t.size), "median_ms": float(np.median(t)), "max_ms": float(t.max())}
