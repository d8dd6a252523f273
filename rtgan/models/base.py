"""The contract every rtgan generator shares."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .layers.reach import Reach


class Generator(nn.Module):
    """Base class of fully convolutional generators.

    Subclasses set ``self.config`` (a frozen dataclass) and implement :meth:`forward` on
    ``(batch, channels, samples)`` with ``samples`` a multiple of :attr:`total_stride`, and
    :meth:`reach`, the composition of their layers' :class:`Reach` maps. Everything below is
    derived from that: nothing about timing is typed by hand.
    """

    config: Any
    #: registry name, set by :func:`rtgan.models.registry.register`.
    name: str = ""

    def reach(self) -> Reach:  # pragma: no cover - abstract
        """Dependency bounds of the output on the input, in input samples."""
        raise NotImplementedError

    @property
    def sample_rate_in(self) -> int:
        """Input sample rate in Hz."""
        return int(self.config.sample_rate)

    @property
    def sample_rate_out(self) -> int:
        """Output sample rate in Hz."""
        return int(self.config.sample_rate)

    @property
    def channels(self) -> int:
        """Audio channels the network takes per item (multichannel audio is folded into the batch)."""
        return 1

    @property
    def total_stride(self) -> int:
        """Input samples per frame at the deepest level; input lengths must be multiples of it."""
        raise NotImplementedError

    @property
    def left_context(self) -> int:
        """Past input samples an output sample may depend on."""
        return self.reach().left

    @property
    def lookahead(self) -> int:
        """Future input samples an output sample may depend on (algorithmic lookahead)."""
        return self.reach().right

    @property
    def receptive_field(self) -> int:
        """Input samples that can influence one output sample: ``left + 1 + lookahead``."""
        r = self.reach()
        return r.left + 1 + r.right

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def check_input(self, x: torch.Tensor) -> None:
        """Validate a ``(batch, channels, samples)`` input.

        Raises:
            ValueError: wrong rank, channel count, or a length that is not a multiple of
                :attr:`total_stride`.
        """
        if x.dim() != 3 or x.shape[1] != self.channels:
            raise ValueError(f"expected (batch, {self.channels}, samples), got {tuple(x.shape)}")
        if x.shape[-1] % self.total_stride:
            raise ValueError(f"length {x.shape[-1]} is not a multiple of the total stride {self.total_stride}")
