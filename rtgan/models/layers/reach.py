"""Receptive-field bookkeeping shared by every streaming layer.

A tensor inside a fully convolutional generator lives at a *stride* ``s`` relative to the
model input: input frames per frame of the tensor. ``s`` is a positive whole number where
the tensor is at or below the input rate (``2`` after a superpixel by 2), and a
:class:`fractions.Fraction` where layers have upsampled past the input rate (``1/256``
after a vocoder turns one mel frame into 256 samples, ``1/2`` at the output of an
8 -> 16 kHz model).

Time is measured in input frames on a continuous axis: input frame ``j`` occupies the
interval ``[j, j + 1)`` and frame ``t`` of a tensor at stride ``s`` occupies
``[t*s, (t + 1)*s)`` (for a whole ``s``, its granule: input frames ``t*s .. t*s + s - 1``).
:class:`Reach` records how far the input frames that frame ``t`` depends on extend to the
left of ``t*s`` and to the right of ``(t + 1)*s``. Layers map a ``Reach`` to a new one; the
generator composes them along its graph, so receptive field, lookahead and total stride are
computed from the layers, never typed by hand.

With whole strides everything is a whole number, as before. With fractional strides the
bounds are Fractions: repeating each input frame twice gives a tensor at stride 1/2 whose
frame ``2u`` occupies ``[u, u + 1/2)`` but reads input frame ``u``, which ends 1/2 later:
right bound 1/2 (and left bound 1/2, from frame ``2u + 1``). Frames at a fractional stride
have phases that may differ; a rule bounds the worst phase, so the rules are exact (tight)
on tensors of whole stride and upper bounds after them. :meth:`Reach.whole` converts the
bounds to the whole input frames a model reports as its ``left_context`` / ``lookahead``:
their floor, which for a stride ``1/q`` is exact, not a loosening (see there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from numbers import Rational

#: An exact quantity: an ``int``, or a ``Fraction`` when it is not whole.
Exact = int | Fraction


def exact(v: Rational) -> Exact:
    """``v`` as an ``int`` when whole, else as a :class:`Fraction`.

    Raises:
        TypeError: for floats, bools or other non-rational values (bounds must be exact).
    """
    if isinstance(v, bool) or not isinstance(v, Rational):
        raise TypeError(f"expected an int or a Fraction, got {v!r} ({type(v).__name__})")
    f = Fraction(v)
    return f.numerator if f.denominator == 1 else f


@dataclass(frozen=True)
class Reach:
    """Dependency bounds of a tensor on the model input, in input frames (samples).

    Attributes:
        stride: input frames per frame of this tensor (1 at the model input); an ``int`` or,
            above the input rate, a ``Fraction``.
        left: how far before the start ``t*stride`` of frame ``t`` the input it depends on
            may begin: every input frame ``j`` it reads has ``j >= t*stride - left``.
        right: how far after the end ``(t + 1)*stride`` of frame ``t`` that input may end
            (the lookahead at this point of the graph): ``j + 1 <= (t + 1)*stride + right``.

    Values are normalised by :func:`exact` (whole Fractions become ``int``), so a graph of
    whole strides keeps plain ``int`` bounds.

    Raises:
        TypeError: a float (or other non-rational) field.
        ValueError: a stride that is not positive.
    """

    stride: Exact = 1
    left: Exact = 0
    right: Exact = 0

    def __post_init__(self) -> None:
        for name in ("stride", "left", "right"):
            object.__setattr__(self, name, exact(getattr(self, name)))
        if self.stride <= 0:
            raise ValueError(f"a stride must be positive, got {self.stride}")

    def conv(self, pad_left: int, pad_right: int) -> "Reach":
        """A stride-1 convolution reading ``pad_left`` past and ``pad_right`` future frames."""
        return Reach(self.stride, self.left + pad_left * self.stride, self.right + pad_right * self.stride)

    def downsample(self, factor: int, pad_left: int, pad_right: int) -> "Reach":
        """A convolution with stride ``factor`` (see :class:`.strided.StridedConv1d`).

        Output frame ``t`` covers input frames ``t*f .. t*f + f - 1`` of this tensor and reads
        ``t*f - pad_left .. t*f + f - 1 + pad_right``: the stride is multiplied by ``f`` and
        the bounds grow by the padding times this tensor's stride.
        """
        return Reach(self.stride * factor, self.left + pad_left * self.stride, self.right + pad_right * self.stride)

    def upsample(self, factor: int, kernel_size: int, crop_left: int) -> "Reach":
        """A transposed convolution with stride ``factor`` (see :class:`.strided.TransposedConv1d`).

        Output frame ``m`` (of the full transposed conv, before ``crop_left`` frames are cut
        from its start) sums input frames ``u`` with ``0 <= m + crop_left - u*f < kernel_size``.
        At stride ``s / f``, over all output phases the bounds grow by
        ``s * (kernel_size - 1 - crop_left) / f`` on the left and ``s * (f - 1 + crop_left) / f``
        on the right; exact (tight) for an input of whole stride.
        """
        s = Fraction(self.stride)
        return Reach(s / factor, self.left + s * (kernel_size - 1 - crop_left) / factor,
                     self.right + s * (factor - 1 + crop_left) / factor)

    def unshuffle(self, factor: int) -> "Reach":
        """Superpixel (pixel-unshuffle): ``factor`` frames fold into one; bounds unchanged."""
        return self.downsample(factor, 0, 0)

    def shuffle(self, factor: int) -> "Reach":
        """Subpixel (pixel-shuffle): each frame unfolds into ``factor`` frames.

        Output phase ``j`` of a frame sits ``j*s/factor`` frames after the frame's start and
        ``(factor-1-j)*s/factor`` before its end, so the bound over all phases grows by
        ``s - s/factor`` on each side: a transposed conv whose kernel is its stride. The
        stride may become fractional.
        """
        return self.upsample(factor, factor, 0)

    def pointwise(self) -> "Reach":
        """A per-frame layer (activation, per-channel affine, 1x1 conv): bounds unchanged."""
        return self

    def merge(self, other: "Reach") -> "Reach":
        """Bounds of a concatenation or sum of two tensors at the same stride."""
        if other.stride != self.stride:
            raise ValueError(f"cannot merge strides {self.stride} and {other.stride}")
        return Reach(self.stride, max(self.left, other.left), max(self.right, other.right))

    def whole(self) -> "Reach":
        """The bounds in whole input frames, for a model's ``reach()``.

        Frames are grouped by the input frames they lie in: at stride ``p/q`` (lowest terms),
        ``q`` consecutive frames cover ``p`` input frames, so the result has stride ``p``
        (``1`` for ``1/q``: all frames inside one input frame form one group) and bounds
        ``floor(left)``, ``floor(right)``: the number of whole input frames beyond the group
        that the group depends on. For whole strides it returns ``self``; for a stride ``1/q``
        it is exact (a frame whose right bound is ``1/2`` reads nothing past the input frame
        it lies in); for other fractions, ``p/q`` with ``p > 1``, an upper bound.
        """
        s = Fraction(self.stride)
        return Reach(s.numerator, math.floor(self.left), math.floor(self.right))
