"""Cubic-spline upsampling by an integer factor as a fixed FIR (a transposed conv), cached for streaming.

Kuleshov, Enam & Ermon (2017, "Audio super resolution using neural networks", Sec. 3) feed
their U-Net the low-rate signal upsampled to the output rate by cubic-spline interpolation
(their code: ``scipy.interpolate.splrep`` / ``splev`` on the whole clip); Retzlöff (seed 002,
Sec. II-A) uses the same front end and reports it as the "Spline" baseline. An interpolating
cubic spline through every sample is a global (IIR) operation, but away from the ends of the
signal it is a fixed linear filter: the *cardinal* cubic spline (Unser, Aldroubi & Eden 1991,
"Fast B-spline transforms for continuous image representation and interpolation"; Unser
1999, "Splines: a perfect fit for signal and image processing", IEEE SPM 16(6))

    s(t) = sum_k x[k] * eta3(t - k),    eta3(t) = sum_m c[m] * beta3(t - m),

with ``beta3`` the centred cubic B-spline and ``c[m] = sqrt(3) * z1**|m|``, ``z1 = sqrt(3) - 2``
(about -0.268), the impulse response of the inverse of the B-spline's sampled kernel
``(z + 4 + 1/z) / 6``. ``eta3`` is 1 at 0, 0 at every other integer (the spline interpolates)
and decays like ``|z1|**|t|``: truncated to ``|t| < K`` input samples, what is left out is of
order ``sqrt(3) |z1|**K / (1 - |z1|)`` (about 3e-7 of the signal for ``K = 12``).

:class:`SplineUpsample1d` samples ``eta3`` at the ``r`` output phases ``t = u + j / r`` as
the kernel of a transposed conv with stride ``r``: ``y[p] = sum_u x[u] eta3(p / r - u)``, so
output frame ``u*r`` is input frame ``u`` itself and frame ``u*r + j`` is the spline at
``u + j/r``, the convention of Kuleshov's ``splev`` at ``i_hr = arange(r * n)`` with the
input at ``i_lr = arange(0, r * n, r)``. Each phase's taps are rescaled to sum to 1 (the
truncated kernel keeps a constant a constant; a change below 1e-6). Offline it zero-pads
like every other layer; the streaming form is an overlap-add (as
:func:`.strided.cached_transposed_conv`), late by the kernel's lookahead, ``K*r - 1``
output frames.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .cached import StateCursor
from .reach import Reach

#: The pole of the cubic B-spline's inverse filter, ``sqrt(3) - 2``.
Z1 = math.sqrt(3.0) - 2.0


def bspline3(t: float) -> float:
    """The centred cubic B-spline ``beta3(t)``: support ``(-2, 2)``, ``beta3(0) = 2/3``, ``beta3(+-1) = 1/6``."""
    a = abs(t)
    if a < 1.0:
        return 2.0 / 3.0 - a * a + a ** 3 / 2.0
    if a < 2.0:
        return (2.0 - a) ** 3 / 6.0
    return 0.0


def cardinal_spline3(t: float, terms: int | None = None) -> float:
    """``eta3(t)``: the interpolation kernel of the cardinal cubic spline (1 at 0, 0 at other integers).

    ``sum_m sqrt(3) z1**|m| beta3(t - m)`` over ``|m - t| < 2`` reachable ``m`` with
    ``|m| <= terms`` (default: enough that the neglected coefficients are below 1e-20).
    """
    if terms is None:
        terms = int(abs(t)) + 40
    lo, hi = max(-terms, math.floor(t) - 2), min(terms, math.ceil(t) + 2)
    return sum(math.sqrt(3.0) * Z1 ** abs(m) * bspline3(t - m) for m in range(lo, hi + 1))


def spline_kernel(factor: int, half_width: int) -> torch.Tensor:
    """The transposed-conv kernel of :class:`SplineUpsample1d`, float64, ``2*half_width*factor - 1`` taps.

    Tap ``i`` is ``eta3((i - crop) / factor)`` with ``crop = half_width*factor - 1``; the taps of
    each output phase ``j`` (the taps ``i = crop + j - factor*u``) are scaled to sum to 1, and
    phase 0 is exactly a unit impulse (the spline passes through the samples). Exactly
    symmetric.

    Raises:
        ValueError: ``factor < 1`` or ``half_width < 1``.
    """
    if factor < 1 or half_width < 1:
        raise ValueError(f"a spline upsampler needs factor >= 1 and half_width >= 1, got {factor}, {half_width}")
    crop = half_width * factor - 1
    # eta3 is even: evaluate it at |t| so the kernel is exactly symmetric
    taps = [cardinal_spline3(abs(i - crop) / factor) for i in range(2 * half_width * factor - 1)]
    for j in range(factor):
        phase = range((crop + j) % factor, len(taps), factor)  # taps of output phase j: i = crop + j - factor*u
        if j == 0:
            for i in phase:
                taps[i] = 1.0 if i == crop else 0.0
        else:
            total = math.fsum(taps[i] for i in phase)  # correctly rounded: mirrored phases scale alike
            for i in phase:
                taps[i] /= total
    w = torch.tensor(taps, dtype=torch.float64)
    return w


class SplineUpsample1d(nn.Module):
    """Cubic-spline interpolation by ``factor``: ``(batch, C, n)`` -> ``(batch, C, n * factor)``, per channel.

    A fixed transposed conv (kernel :func:`spline_kernel`, a non-trainable buffer that is not
    saved in checkpoints: it follows from ``factor`` and ``half_width``) trimmed by
    ``crop_left = half_width*factor - 1`` frames at the start, so output frame ``u*factor + j``
    is the spline at input position ``u + j/factor``. It reads ``half_width - 1`` past and
    ``half_width`` future input frames.

    Args:
        factor: ``r``, output frames per input frame.
        half_width: ``K``, input frames of the kernel on each side (truncation error about
            ``0.268**K``; 12 gives below 1e-6 against an exact spline).
    """

    def __init__(self, factor: int, half_width: int = 12) -> None:
        super().__init__()
        self.factor = factor
        self.half_width = half_width
        self.crop_left = half_width * factor - 1
        self.register_buffer("kernel", spline_kernel(factor, half_width).float().view(1, 1, -1), persistent=False)

    @property
    def kernel_size(self) -> int:
        return self.kernel.shape[-1]

    def _full(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        w = self.kernel.to(x.dtype).expand(c, 1, self.kernel_size)
        return F.conv_transpose1d(x, w, None, stride=self.factor, groups=c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._full(x)
        return y[..., self.crop_left: self.crop_left + self.factor * x.shape[-1]]

    def reach(self, r: Reach) -> Reach:
        """Stride divided by ``factor``; the rule of a transposed conv (:meth:`Reach.upsample`)."""
        return r.upsample(self.factor, self.kernel_size, self.crop_left)

    def stream(self, x: torch.Tensor, delay: int, cur: StateCursor) -> tuple[torch.Tensor, int]:
        """Overlap-add streaming form (see :func:`.strided.cached_transposed_conv`).

        Any block length works; state: ``kernel_size - factor`` frames of partial sums per
        channel. The output is late by ``delay * factor + crop_left`` frames.
        """
        f, n = self.factor, x.shape[-1]
        y = self._full(x)
        spill = self.kernel_size - f
        if spill:
            y = torch.cat([y[..., :spill] + cur.take(y.shape[1], spill), y[..., spill:]], dim=-1)
            cur.put(y[..., n * f:])
            y = y[..., : n * f]
        return y, delay * f + self.crop_left
