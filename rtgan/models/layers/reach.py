"""Receptive-field bookkeeping shared by every streaming layer.

A tensor inside a fully convolutional generator lives at an integer *stride* ``s``
relative to the model input: frame ``t`` of that tensor stands for the input samples
``[t*s, t*s + s - 1]`` (its granule). :class:`Reach` records, for such a tensor, how far
the input samples its frame ``t`` depends on extend to the left of ``t*s`` and to the right
of ``t*s + s - 1``. Layers map a ``Reach`` to a new one; the generator composes them along
its graph, so receptive field, lookahead and total stride are computed from the layers,
never typed by hand.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reach:
    """Dependency bounds of a tensor on the model input, in input samples.

    Attributes:
        stride: input samples per frame of this tensor (1 at the model input).
        left: how many input samples before the frame's granule it may depend on.
        right: how many input samples after the frame's granule it may depend on
            (the lookahead at this point of the graph).
    """

    stride: int = 1
    left: int = 0
    right: int = 0

    def conv(self, pad_left: int, pad_right: int) -> "Reach":
        """A stride-1 convolution reading ``pad_left`` past and ``pad_right`` future frames."""
        return Reach(self.stride, self.left + pad_left * self.stride, self.right + pad_right * self.stride)

    def unshuffle(self, factor: int) -> "Reach":
        """Superpixel (pixel-unshuffle): ``factor`` frames fold into one; bounds unchanged."""
        return Reach(self.stride * factor, self.left, self.right)

    def shuffle(self, factor: int) -> "Reach":
        """Subpixel (pixel-shuffle): each frame unfolds into ``factor`` frames.

        Output phase ``j`` of a frame sits ``j*s/factor`` samples after the granule start and
        ``(factor-1-j)*s/factor`` before its end, so the bound over all phases grows by
        ``s - s/factor`` on each side.
        """
        if self.stride % factor:
            raise ValueError(f"cannot pixel-shuffle stride {self.stride} by {factor}")
        grow = self.stride - self.stride // factor
        return Reach(self.stride // factor, self.left + grow, self.right + grow)

    def merge(self, other: "Reach") -> "Reach":
        """Bounds of a concatenation or sum of two tensors at the same stride."""
        if other.stride != self.stride:
            raise ValueError(f"cannot merge strides {self.stride} and {other.stride}")
        return Reach(self.stride, max(self.left, other.left), max(self.right, other.right))
