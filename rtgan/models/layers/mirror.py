"""The input's mirror about its band edge: the copy-up excitation of spectral folding.

Spectral folding (Makhoul & Berouti 1979, "High-frequency regeneration in speech coding
systems", Proc. ICASSP, pp. 428-431; the copy-up that spectral band replication refines,
Dietz et al. 2002, AES 112th Convention, paper 5553) fills the band above an input's bandwidth
``f_b`` with the band below it, mirrored: multiplying by ``2 cos(2 pi (2 f_b / fs) n)`` maps
frequency ``f`` to ``2 f_b - f`` (and ``2 f_b + f``). Here

    ``M(x) = BP_out(c * BP_in(x))``, ``c[n] = 2 cos(2 pi n / P)``, ``P = fs / (2 f_b)``,

with ``BP_in`` passing ``f_b - w .. f_b`` and ``BP_out`` passing ``f_b .. f_b + w``
(``w = f_b / 4``): the top quarter of the input's band, mirrored into the first quarter-width
above it, continuing the lines that end at the band edge across it, as the images that cubic
spline upsampling of a ``2 f_b`` signal leaves there do. Both band-passes are causal
minimum-phase FIRs (:func:`rtgan.dsp.minimum_phase_eq`): no latency is added.

The carrier's phase is the sample index modulo ``P`` (3 at 48 kHz with ``f_b`` 8 kHz), which a
block does not carry: :meth:`BandMirror.forward` counts from its first sample,
:meth:`BandMirror.stream` keeps the count in its state.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .cached import StateCursor, with_history
from .reach import Reach

#: Taps of each band-pass FIR (odd).
MIRROR_TAPS = 255
#: Transition width of the band-passes, as a fraction of the input's bandwidth.
TRANSITION = 1 / 32


def mirror_period(sample_rate: int, bandwidth_hz: float) -> int:
    """``P = sample_rate / (2 bandwidth_hz)``, the carrier's period in samples.

    Raises:
        ValueError: ``P`` is not a whole number >= 3 (the mirror needs an integer-period
            carrier whose image falls below the Nyquist frequency).
    """
    p = sample_rate / (2.0 * bandwidth_hz)
    if abs(p - round(p)) > 1e-9 or round(p) < 3:
        raise ValueError(f"the mirror needs sample_rate / (2 * bandwidth) to be a whole number >= 3, "
                         f"got {sample_rate} / (2 * {bandwidth_hz:g}) = {p:g}")
    return int(round(p))


class BandMirror(nn.Module):
    """``M(x)``: ``(batch, 1, samples)`` -> ``(batch, 1, samples)``, causal (module docstring).

    Args:
        sample_rate: Hz.
        bandwidth_hz: the input's bandwidth ``f_b``; ``sample_rate / (2 f_b)`` must be whole.
        taps: length of each band-pass FIR (odd).

    Raises:
        ValueError: see :func:`mirror_period`; ``taps`` even or below 3.
    """

    def __init__(self, sample_rate: int, bandwidth_hz: float, taps: int = MIRROR_TAPS) -> None:
        super().__init__()
        from ...dsp import minimum_phase_eq

        self.period = mirror_period(sample_rate, bandwidth_hz)
        fb, w, t = float(bandwidth_hz), bandwidth_hz / 4.0, bandwidth_hz * TRANSITION
        nyq = sample_rate / 2.0
        pass_in = ((0.0, 0.0), (fb - w - t, 0.0), (fb - w, 1.0), (fb - t, 1.0), (fb, 0.0), (nyq, 0.0))
        pass_out = ((0.0, 0.0), (fb, 0.0), (fb + t, 1.0), (fb + w, 1.0), (fb + w + t, 0.0), (nyq, 0.0))
        firs = [torch.tensor(minimum_phase_eq(p, sample_rate, taps)[::-1].copy(), dtype=torch.float32).view(1, 1, -1)
                for p in (pass_in, pass_out)]  # conv1d correlates: flipped
        self.register_buffer("fir_in", firs[0], persistent=False)
        self.register_buffer("fir_out", firs[1], persistent=False)

    @property
    def memory(self) -> int:
        """Past input samples one output sample reads (both FIRs)."""
        return self.fir_in.shape[-1] - 1 + self.fir_out.shape[-1] - 1

    def reach(self) -> Reach:
        """:class:`Reach` of ``M`` on its input: :attr:`memory` samples to the left, none to the right."""
        return Reach().conv(self.memory, 0)

    def _carrier(self, index: torch.Tensor) -> torch.Tensor:
        """``2 cos(2 pi index / P)`` for whole-number ``index`` (reduced modulo ``P`` first: exact phases)."""
        return 2.0 * torch.cos((2.0 * math.pi / self.period) * torch.remainder(index, self.period))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``M(x)`` for a whole signal with zeros before it; ``x[..., 0]`` has index 0."""
        n = x.shape[-1]
        u = F.conv1d(F.pad(x, (self.fir_in.shape[-1] - 1, 0)), self.fir_in)
        u = u * self._carrier(torch.arange(n, device=x.device, dtype=x.dtype))
        return F.conv1d(F.pad(u, (self.fir_out.shape[-1] - 1, 0)), self.fir_out)

    def stream(self, x: torch.Tensor, origin: int, cur: StateCursor) -> torch.Tensor:
        """:meth:`forward` on one block, the past in ``cur``'s caches; the state counts the
        samples streamed (modulo ``P``), so the first block's first sample has index ``origin``."""
        n = x.shape[-1]
        count = cur.take(1, 1)
        cur.put(torch.remainder(count + n, self.period))
        u = F.conv1d(with_history(x, self.fir_in.shape[-1] - 1, cur), self.fir_in)
        u = u * self._carrier(count + origin + torch.arange(n, device=x.device, dtype=x.dtype))
        return F.conv1d(with_history(u, self.fir_out.shape[-1] - 1, cur), self.fir_out)
