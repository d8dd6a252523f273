"""reverb-*: a causal neural reverb whose tail is a learned FIR run by partitioned FFT convolution.

A reverb's tail lasts seconds: 0.3-3 s of RT60 is 14 400-144 000 samples at 48 kHz. A stack of
convolutions with that receptive field would cost far more than a live budget allows, and what
the target does to a dry signal is linear and time-invariant (a room impulse response, or
Freeverb's combs and all-passes at fixed settings). So the generator is a long FIR whose taps a
small network produces, as neural reverbs that estimate or synthesise room responses do:

* **Late part: filtered noise shaping** (Steinmetz, Ithapu & Calamia 2021, "Filtered noise
  shaping for time domain room impulse response estimation from reverberant speech", Sec. 2;
  Lee et al. 2022, "Differentiable artificial reverberation"): ``bands`` octave bands of a fixed
  noise ``n_b(t)`` (seeded, Butterworth band-passes), each shaped by an exponential decay with
  its own decay time ``T_b`` and gain ``g_b``::

      h_late(t) = sum_b g_b n_b(t) exp(-3 ln(10) t / T_b) (1 - exp(-t / t_on))

  (energy falls 60 dB in ``T_b``; ``t_on`` a learned rise time: a reverb's dense tail builds up
  over its first milliseconds)

* **Anchors' fine structure** (``free_taps``): a free tap ``f(t)`` per sample under a fixed
  envelope, ``h += f(t) exp(-K t / c0)`` (``c0`` the default RT60):
  with a time-domain loss these converge on the one target's own response (its comb and
  reflection pattern), which no noise reproduces. ``f`` is parametrised by the orthonormal
  real DFT of each partition, so that Adam's per-parameter step normalisation is a per-bin
  step size: the frequency-domain adaptive filter's answer to a coloured input (music and
  speech), under which a time-domain LMS learns the weak bands slowly (Soo & Pang 1990,
  "Multidelay block frequency domain adaptive filter").

* **Early part**: ``early_taps`` free taps (direct-path leakage and early reflections), added to
  the start of ``h``.

* **Decay control** (``reverb-room``): FiLM (Perez et al. 2018) of the per-band log decay times
  and log gains by the requested RT60 ``c``, ``log T_b = log c + a_b + s_b (log c - log c0)``,
  ``log g_b = d_b + e_b (log c - log c0)``, and the early taps scaled by ``exp(e_0 (log c -
  log c0))``; ``c0`` is the default RT60. The anchors (``reverb-freeverb``, ``reverb-rir``)
  learn ``T_b`` and ``g_b`` for their one target directly.

``forward`` convolves the dry input with ``h`` (zero history, FFT convolution): output is the
wet signal only (``output_role = "wet"``: the engine adds it to the dry with the ``wet``
parameter). The stream runs the same ``h`` by uniformly partitioned overlap-save convolution
(UPOLS; Stockham 1966, Sec. "high-speed convolution"; the frequency-domain delay line of
Wefers 2015, "Partitioned convolution algorithms for real-time auralization", Sec. 5.3):
partitions of ``partition`` samples (the stream granule), one FFT of ``2 partition`` per
partition of input, a delay line of the last ``K = ceil(L / partition)`` input spectra, and
``Y = sum_k X_{m-k} H_k``. A partition of input gives the same partition of output: zero
lookahead, latency 0 beyond the engine's FIFO (none for blocks that are whole partitions).

The decay control reaches the step graph through its state, not as a constant baked into it:
the first state tensor holds the ``K`` partition spectra of ``h`` (``(batch, K, 2(P+1))``,
``[Re | Im]``; :meth:`ReverbGenerator.filter_state`), which the step reads and passes on
unchanged. When the decay moves, the engine writes the spectra of the new ``h`` there
(:meth:`ReverbGenerator.parameter_states`, :meth:`ReverbGenerator.parameter_state`), so an
exported step (ONNX) follows the knob without rebuilding ``h`` in every block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .base import Generator
from .layers import Reach, StateCursor
from .params import Parameter
from .registry import register

#: ``3 ln 10``: an amplitude envelope ``exp(-K t / T)`` has fallen 60 dB (in energy) at ``t = T``.
DECAY_60DB = 3.0 * math.log(10.0)


@dataclass(frozen=True)
class ReverbConfig:
    """Architecture of the reverb models (every default in one place).

    Attributes:
        sample_rate: Hz, in and out.
        partition: FFT partition in samples (the stream granule; blocks of whole partitions
            stream with no FIFO delay).
        tail_seconds: FIR length in seconds (``L = tail_seconds * sample_rate`` taps, rounded up
            to whole partitions); the envelope of a 3 s RT60 is at -50 dB at 2.5 s.
        bands: octave noise bands of the late part (lowest edge ``lowest_band_hz``, each band an
            octave up to the top one, which reaches Nyquist).
        lowest_band_hz: upper edge of the lowest band (a low-pass), Hz.
        early_taps: free taps at the start of ``h`` (0: none).
        conditioned: FiLM on the RT60 control (``reverb-room``).
        free_taps: a free tap per sample of ``h`` (parametrised per partition by its
            orthonormal DFT), under the fixed envelope ``exp(-K t / rt60_default)``, added to
            the shaped noise (anchors: with a
            time-domain loss they converge on their one target's own response, its comb or
            reflection pattern, which no noise reproduces); not with ``conditioned``.
        rt60_default: s, the decay the late part starts from and the control's default.
        rt60_min, rt60_max: s, the control's range (conditioned models).
        noise_seed: seed of the fixed noise (numpy's ``RandomState``, whose stream never changes).

    Raises:
        ValueError: non-positive sizes, a tail shorter than a partition, or an RT60 range that
            does not hold the default.
    """

    sample_rate: int = 48000
    partition: int = 256
    tail_seconds: float = 2.5
    bands: int = 8
    lowest_band_hz: float = 125.0
    early_taps: int = 1024
    conditioned: bool = False
    free_taps: bool = False
    rt60_default: float = 1.0
    rt60_min: float = 0.3
    rt60_max: float = 3.0
    noise_seed: int = 0

    def __post_init__(self) -> None:
        if self.partition < 1 or self.bands < 1 or self.early_taps < 0 or self.sample_rate < 1:
            raise ValueError("partition, bands and sample_rate must be >= 1 and early_taps >= 0")
        if self.tail_seconds * self.sample_rate < self.partition:
            raise ValueError(f"tail_seconds {self.tail_seconds} is shorter than one partition")
        if self.free_taps and self.conditioned:
            raise ValueError("free_taps fit one target: not with conditioned")
        if not 0 < self.rt60_min <= self.rt60_default <= self.rt60_max:
            raise ValueError(f"need 0 < rt60_min <= rt60_default <= rt60_max, got {self.rt60_min}, "
                             f"{self.rt60_default}, {self.rt60_max}")
        if self.lowest_band_hz * 2 ** (self.bands - 1) >= self.sample_rate / 2:
            raise ValueError(f"{self.bands} octave bands from {self.lowest_band_hz} Hz exceed Nyquist")

    @property
    def taps(self) -> int:
        """FIR length ``L`` in samples: ``tail_seconds`` rounded up to whole partitions."""
        n = math.ceil(self.tail_seconds * self.sample_rate)
        return -(-n // self.partition) * self.partition


def band_noise(cfg: ReverbConfig) -> np.ndarray:
    """The fixed noise of the late part: ``(bands, taps)`` float32, each row unit RMS.

    White Gaussian noise from ``RandomState(noise_seed)`` through 4th-order Butterworth filters
    (scipy ``sosfilt``): a low-pass at ``lowest_band_hz``, octave band-passes above it, and a
    high-pass for the top band.
    """
    from scipy.signal import butter, sosfilt

    rng = np.random.RandomState(cfg.noise_seed)
    white = rng.standard_normal(cfg.taps + 4096)
    out = np.empty((cfg.bands, cfg.taps), np.float32)
    for b in range(cfg.bands):
        lo = cfg.lowest_band_hz * 2 ** (b - 1)
        hi = cfg.lowest_band_hz * 2 ** b
        if cfg.bands == 1:
            sos = None
        elif b == 0:
            sos = butter(4, hi, "lowpass", fs=cfg.sample_rate, output="sos")
        elif b == cfg.bands - 1:
            sos = butter(4, lo, "highpass", fs=cfg.sample_rate, output="sos")
        else:
            sos = butter(4, [lo, hi], "bandpass", fs=cfg.sample_rate, output="sos")
        y = white if sos is None else sosfilt(sos, white)
        y = y[4096:]  # past the filters' start-up
        out[b] = y / np.sqrt(np.mean(y ** 2))
    return out


class ReverbGenerator(Generator):
    """Dry ``(batch, 1, samples)`` -> wet ``(batch, 1, samples)``: the learned FIR ``h`` (module docstring).

    Trainable parameters: per band, ``log_decay`` (``a_b``, relative to ``rt60_default``) and
    ``log_gain`` (``d_b``); ``log_onset`` (``log t_on``, s); ``early`` taps; ``free`` taps
    (``free_taps``: ``(K, 2, P // 2 + 1)``, [Re, Im] of each partition's orthonormal DFT); conditioned models also ``decay_slope`` (``s_b``),
    ``gain_slope`` (``e_b``), ``early_slope`` (``e_0``) and ``onset_slope`` (the rise time's
    FiLM slope).
    """

    output_role = "wet"

    def __init__(self, config: ReverbConfig) -> None:
        super().__init__()
        self.config = c = config
        self.register_buffer("noise", torch.from_numpy(band_noise(c)), persistent=False)
        # late energy starts about 20 dB under the direct sound (a unit impulse), spread over the bands
        self.log_decay = nn.Parameter(torch.zeros(c.bands))
        self.log_gain = nn.Parameter(torch.full((c.bands,), math.log(0.1 / math.sqrt(c.bands * c.sample_rate * 0.05))))
        self.early = nn.Parameter(torch.zeros(c.early_taps)) if c.early_taps else None
        # the free taps as the spectra of their partitions, [Re, Im] of P // 2 + 1 bins each
        self.free = nn.Parameter(torch.zeros(c.taps // c.partition, 2, c.partition // 2 + 1)) if c.free_taps else None
        self.log_onset = nn.Parameter(torch.full((1,), math.log(0.005)))  # s: the late part's rise time
        if c.conditioned:
            self.decay_slope = nn.Parameter(torch.zeros(c.bands))
            self.gain_slope = nn.Parameter(torch.zeros(c.bands))
            self.early_slope = nn.Parameter(torch.zeros(1))
            self.onset_slope = nn.Parameter(torch.zeros(1))
        if c.conditioned:
            self.live_parameters = (Parameter("decay", c.rt60_min, c.rt60_max, c.rt60_default, "s",
                                              "reverb decay time (RT60)", "log"),)

    # ------------------------------------------------------------------ the FIR
    def control(self, rt60: torch.Tensor | float | None, batch: int = 1) -> torch.Tensor:
        """``log(c / c0)`` for an RT60 ``c`` in seconds: ``(batch,)`` (``None``: the default, zeros).

        Raises:
            ValueError: an RT60 that is not positive and finite.
        """
        p = self.log_decay
        if rt60 is None:
            return p.new_zeros(batch)
        r = torch.as_tensor(rt60, dtype=p.dtype, device=p.device).reshape(-1)
        if not bool(torch.isfinite(r).all()) or bool((r <= 0).any()):
            raise ValueError(f"RT60 must be positive and finite seconds, got {r.tolist()}")
        return torch.log(r / self.config.rt60_default).expand(batch) if r.numel() == 1 else torch.log(r / self.config.rt60_default)

    def impulse_response(self, control: torch.Tensor | None = None) -> torch.Tensor:
        """The FIR ``h``: ``(batch, taps)`` for ``control`` ``(batch,)`` (``log(c / c0)``), or ``(1, taps)``.

        Unconditioned models ignore ``control``.
        """
        c = self.config
        u = self.log_decay.new_zeros(1) if control is None or not c.conditioned else control.to(self.log_decay.dtype)
        u = u.reshape(-1, 1)                                              # (batch, 1)
        log_t = math.log(c.rt60_default) + self.log_decay + u if not c.conditioned else \
            math.log(c.rt60_default) + self.log_decay + u * (1.0 + self.decay_slope)
        log_g = self.log_gain + (u * self.gain_slope if c.conditioned else 0.0)
        # gain * noise * exp(-K t / T) with t = k P + tau split into partitions k and offsets
        # tau: exp(log g - K k P / T) exp(-K tau / T), two small factors instead of an exp per tap
        p = c.partition
        rate = DECAY_60DB / (torch.exp(log_t) * c.sample_rate)            # (batch, bands) per sample
        k = torch.arange(c.taps // p, dtype=rate.dtype, device=rate.device) * p
        tau = torch.arange(p, dtype=rate.dtype, device=rate.device)
        # the onset: envelope * (1 - exp(-t / t_on)), a difference of two such products
        log_on = self.log_onset + (u * self.onset_slope if c.conditioned else 0.0)     # (batch or 1, 1)
        rate_on = rate + 1.0 / (torch.exp(log_on) * c.sample_rate)
        noise = self.noise.view(c.bands, c.taps // p, p)
        h = 0.0
        for r, sign in ((rate, 1.0), (rate_on, -1.0)):
            a = torch.exp(log_g.unsqueeze(-1) - r.unsqueeze(-1) * k)       # (batch, bands, K)
            b = torch.exp(-r.unsqueeze(-1) * tau)                           # (batch, bands, P)
            h = h + sign * (a.unsqueeze(-1) * noise * b.unsqueeze(-2)).sum(dim=1)
        h = h.reshape(-1, c.taps)
        if self.free is not None:
            h = h + self.free_part()
        if self.early is not None:
            e = self.early * (torch.exp(u * self.early_slope) if c.conditioned else 1.0)
            h = torch.cat([h[:, : c.early_taps] + e, h[:, c.early_taps:]], dim=-1)
        return h

    def free_envelope(self) -> torch.Tensor:
        """The free taps' fixed envelope ``exp(-K t / rt60_default)``: ``(taps,)``."""
        c = self.config
        n = torch.arange(c.taps, dtype=self.log_decay.dtype, device=self.log_decay.device)
        return torch.exp(-DECAY_60DB * n / (c.rt60_default * c.sample_rate))

    def free_part(self) -> torch.Tensor:
        """The free taps' share of ``h``: ``f(t) exp(-K t / rt60_default)``, ``(taps,)``.

        Under a fixed envelope an optimiser step moves a tap in proportion to the envelope
        there (Adam's steps are about its learning rate whatever the gradient's size), so the
        corrections fall with the tail instead of leaving a noise floor under it.
        """
        c = self.config
        f = torch.fft.irfft(torch.complex(self.free[:, 0], self.free[:, 1]), n=c.partition, norm="ortho")
        return f.reshape(-1) * self.free_envelope()

    def set_free_part(self, part: torch.Tensor) -> None:
        """Set the free taps so that :meth:`free_part` is ``part`` ``(taps,)`` (inverse of it)."""
        c = self.config
        f = (part.to(torch.float64) / self.free_envelope().to(torch.float64)).reshape(-1, c.partition)
        spec = torch.fft.rfft(f, norm="ortho")
        with torch.no_grad():
            self.free.copy_(torch.stack([spec.real, spec.imag], dim=1).to(self.free.dtype))

    @torch.no_grad()
    def calibrate_decay(self, points: int = 10, rounds: int = 3) -> dict:
        """Refit the decay control's FiLM so that the measured T30 of ``h`` equals the control.

        Measures T30 (:func:`rtgan.metrics.decay_time`) of ``h`` at ``points`` controls
        log-spaced over ``rt60_min..rt60_max``, fits ``log T30 = alpha + beta log c`` by least
        squares, and rewrites the FiLM terms so that control ``c`` acts as ``c' = exp((log c -
        alpha) / beta)`` did (an exact reparametrisation: every term linear in ``u = log(c /
        c0)`` becomes linear in ``u' = u / beta + k``); ``rounds`` times. Returns the errors
        before and after (relative, per control) and the fits.

        Raises:
            ValueError: not a conditioned model.
        """
        from ..metrics import decay_time
        c = self.config
        if not c.conditioned:
            raise ValueError(f"{self.name}: only a conditioned reverb has a decay control to calibrate")
        grid = np.geomspace(c.rt60_min, c.rt60_max, points)

        def measure() -> np.ndarray:
            return np.array([decay_time(self.impulse_response(self.control(float(v), 1))[0].numpy(), c.sample_rate,
                                        "t30", max_nonlinearity=None) for v in grid])

        before = measure()
        fits = []
        for _ in range(rounds):
            t30 = measure()
            beta, alpha = np.polyfit(np.log(grid), np.log(t30), 1)
            log_c0 = math.log(c.rt60_default)
            k = (log_c0 - alpha) / beta - log_c0
            self.log_decay.add_((1.0 + self.decay_slope) * k)
            self.decay_slope.copy_((1.0 + self.decay_slope) / beta - 1.0)
            self.log_gain.add_(self.gain_slope * k)
            self.gain_slope.div_(beta)
            if self.early is not None:
                self.early.mul_(torch.exp(self.early_slope * k))
            self.early_slope.div_(beta)
            self.log_onset.add_(self.onset_slope * k)
            self.onset_slope.div_(beta)
            fits.append({"alpha": float(alpha), "beta": float(beta)})
        after = measure()
        return {"controls_s": grid.tolist(), "t30_before_s": before.tolist(), "t30_after_s": after.tolist(),
                "err_before": (np.abs(before - grid) / grid).tolist(), "err_after": (np.abs(after - grid) / grid).tolist(),
                "fits": fits}

    # ------------------------------------------------------------------ offline
    def forward(self, x: torch.Tensor, rt60: torch.Tensor | float | None = None) -> torch.Tensor:
        """Wet signal: ``x`` ``(batch, 1, samples)`` convolved with ``h`` from zero history (same shape).

        Args:
            rt60: the decay control in seconds, a float or ``(batch,)`` (conditioned models;
                default ``rt60_default``).

        Raises:
            ValueError: bad input shape (:meth:`check_input`) or RT60.
        """
        self.check_input(x)
        n = x.shape[-1]
        h = self.impulse_response(self.control(rt60, x.shape[0]))       # (batch or 1, taps)
        nfft = 1 << int(n + h.shape[-1] - 1).bit_length()
        y = torch.fft.irfft(torch.fft.rfft(x[:, 0], nfft) * torch.fft.rfft(h, nfft), nfft)[..., :n]
        return y.unsqueeze(1)

    def reach(self) -> Reach:
        """Causal: each output sample reads the ``taps - 1`` samples before it and itself."""
        return Reach(1, self.config.taps - 1, 0)

    @property
    def total_stride(self) -> int:
        """One partition: input lengths are whole partitions."""
        return self.config.partition

    # ------------------------------------------------------------------ streaming
    def _dft(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Real DFT matrices of the step (matmuls export to ONNX; ``torch.fft`` does not).

        ``fwd``: ``(2P, 2(P+1))``, a frame of ``2P`` samples to ``[Re | Im]`` of its ``P + 1``
        bins; ``inv``: ``(2(P+1), P)``, ``[Re | Im]`` of a spectrum to the last ``P`` samples of
        its inverse real DFT (overlap-save keeps only those).
        """
        p = self.config.partition
        if getattr(self, "_dft_cache", None) is None or self._dft_cache[0].device != self.log_decay.device:
            n = torch.arange(2 * p, dtype=torch.float64)
            m = torch.arange(p + 1, dtype=torch.float64)
            ang = 2 * math.pi * n[:, None] * m[None, :] / (2 * p)                   # (2P, P+1)
            fwd = torch.cat([torch.cos(ang), -torch.sin(ang)], dim=1)
            w = torch.full((p + 1,), 2.0, dtype=torch.float64)
            w[0] = w[-1] = 1.0
            tail = ang[p:].T                                                      # (P+1, P): n in [P, 2P)
            inv = torch.cat([w[:, None] * torch.cos(tail), -w[:, None] * torch.sin(tail)], dim=0) / (2 * p)
            dev = self.log_decay.device
            self._dft_cache = (fwd.float().to(dev), inv.float().to(dev))
        return self._dft_cache

    def filter_state(self, control: torch.Tensor | None = None, batch: int = 1) -> torch.Tensor:
        """The step's filter state: ``[Re | Im]`` of the ``K`` partition spectra of ``h``, ``(batch, K, 2(P+1))``.

        ``control``: ``(batch,)`` ``log(c / c0)`` (conditioned models), or ``None`` for the default.
        """
        c = self.config
        p, k = c.partition, c.taps // c.partition
        with torch.no_grad():
            h = self.impulse_response(control)
            spec = torch.fft.rfft(h.reshape(h.shape[0], k, p), 2 * p)
            out = torch.cat([spec.real, spec.imag], dim=-1)
        return out.expand(batch, k, 2 * (p + 1)).contiguous() if out.shape[0] == 1 else out

    def parameter_states(self) -> dict[str, int]:
        """Live parameters carried in the step's state: ``{name: index of the state tensor they set}``.

        The decay (conditioned models) sets the filter state (:meth:`filter_state`), which the
        step reads: the knob reaches an exported step without a rebuild of ``h`` in every block.
        """
        return {"decay": 0} if self.config.conditioned else {}

    def parameter_state(self, name: str, value: float, batch: int = 1) -> torch.Tensor:
        """The state tensor that parameter ``name`` at ``value`` gives (``decay``: the filter state for RT60 ``value`` s).

        Raises:
            KeyError: not a parameter carried in the state.
            ValueError: a value outside the parameter's range.
        """
        if name not in self.parameter_states():
            raise KeyError(f"{self.name} carries no parameter {name!r} in its state")
        value = self.live_parameters[0].check(value)
        return self.filter_state(self.control(value, batch), batch)

    @torch.no_grad()
    def init_state(self, batch: int = 1, dtype: torch.dtype | None = None,
                   device: torch.device | str | None = None):
        """Silent history and the filter state of the default decay (see :meth:`Generator.init_state`)."""
        state = list(super().init_state(batch, dtype, device))
        state[0] = self.filter_state(None, batch).to(state[0].dtype).to(state[0].device)
        return tuple(state)

    def stream_forward(self, x: torch.Tensor, cur: StateCursor) -> tuple[torch.Tensor, int]:
        c = self.config
        p, k = c.partition, c.taps // c.partition
        fwd, inv = self._dft()
        spec_h = cur.take(k, 2 * (p + 1))                                  # filter: [Re | Im] of H_k
        cur.put(spec_h)
        hr, hi = spec_h[..., : p + 1], spec_h[..., p + 1:]
        prev = cur.take(1, p)
        fdl = cur.take(k, 2 * (p + 1))                                     # the last K input spectra
        outs = []
        for j in range(x.shape[-1] // p):
            block = x[:, :, j * p:(j + 1) * p]
            spec_x = torch.cat([prev, block], dim=-1) @ fwd                # (batch, 1, 2(P+1))
            fdl = torch.cat([spec_x, fdl[:, :-1]], dim=1)
            xr, xi = fdl[..., : p + 1], fdl[..., p + 1:]
            y = torch.cat([(xr * hr - xi * hi).sum(dim=1, keepdim=True),
                           (xr * hi + xi * hr).sum(dim=1, keepdim=True)], dim=-1)
            outs.append(y @ inv)                                           # (batch, 1, P)
            prev = block
        cur.put(prev)
        cur.put(fdl)
        return torch.cat(outs, dim=-1), 0


_TINY = dict(partition=32, tail_seconds=0.05, bands=3, lowest_band_hz=2000.0, early_taps=64)

#: the live presets: 2.5 s of FIR in 256-sample partitions
ANCHOR_PRESETS = {"live": ReverbConfig(free_taps=True), "tiny": ReverbConfig(free_taps=True, **_TINY)}
ROOM_PRESETS = {"live": ReverbConfig(conditioned=True), "tiny": ReverbConfig(conditioned=True, **_TINY)}


@register("reverb-freeverb", ReverbConfig, ANCHOR_PRESETS)
class ReverbFreeverb(ReverbGenerator):
    """Neural reverb fitted to pedalboard's Reverb (Freeverb) at fixed settings (its recipe states them)."""


@register("reverb-rir", ReverbConfig, ANCHOR_PRESETS)
class ReverbRIR(ReverbGenerator):
    """Neural reverb fitted to one simulated room (pyroomacoustics ShoeBox; its recipe states it)."""


@register("reverb-room", ReverbConfig, ROOM_PRESETS)
class ReverbRoom(ReverbGenerator):
    """Neural reverb with a live decay control (RT60 0.3-3 s, FiLM), fitted to simulated rooms."""
