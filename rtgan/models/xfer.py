"""Instrument transfer (seed 001): piano in, another instrument out, from the inception U-Net.

Alahi, Sifringer & Stegmüller (2020) study "audio enhancing" through a proxy task: map a track
played by one instrument to the same track played by another (pairs rendered from one MIDI
file, :mod:`rtgan.data.pairs`). Their generator (Sec. IV-F) is the inception U-Net of Kim &
Sathe (2019) with ``B_g = 8`` down and up blocks, ``2**(6 + min(d, d_max))`` filters at level
``d``, inception kernels 3/9/27/81 split 24/24/8/8 with 1x1 reduction, subpixel / superpixel
layers, **without** the additive skip from input to output ("potentially harmful, or at least
not beneficial in the context of our application"): the output is ``tanh(f(x))``, not
``x + tanh(f(x))``.

The network is sr-hifigan's (:class:`.sr_hifigan.SRHiFiGANGenerator`, the same U-Net code and
streaming caches); only the output combination differs (:meth:`XferGenerator._combine`). It
runs at 16 kHz (the pair set's rate). Registered once per target instrument: ``xfer-violin``
(GM program 40), ``xfer-flute`` (73), ``xfer-guitar`` (24, nylon); the program is in the config
so a checkpoint says which instrument it makes.

Presets: ``paper`` (``B_g = 8``, 64 base filters, ``d_max`` 3, centered: offline, rendered as
the seed does with 50 % Hann overlap-add of 8192-sample frames or streamed), ``live`` (causal,
``B = 5``, narrower: streams through the stateful engine with a latency of one block) and
``tiny`` (tests).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .layers import Reach, StateCursor
from .registry import register
from .sr_hifigan import SRHiFiGANConfig, SRHiFiGANGenerator

__all__ = ["XferConfig", "XferGenerator", "TARGETS"]

#: registered name -> General MIDI program (0-based) of the target instrument
TARGETS = {"xfer-violin": 40, "xfer-flute": 73, "xfer-guitar": 24}


@dataclass(frozen=True)
class XferConfig(SRHiFiGANConfig):
    """sr-hifigan's architecture fields (see :class:`.sr_hifigan.SRHiFiGANConfig`) at 16 kHz, plus:

    Attributes:
        input_program: General MIDI program (0-based) of the input instrument (0: acoustic grand piano).
        target_program: General MIDI program of the output instrument (40 violin, 73 flute, 24 nylon guitar).

    ``residual_gain`` scales the output ``g tanh(f(x))`` (1: the seed's); ``input_bandwidth_hz`` is
    unused (kept so the U-Net's fields stay one set).

    Raises:
        ValueError: as :class:`.sr_hifigan.SRHiFiGANConfig`, or a program outside 0-127.
    """

    sample_rate: int = 16000
    input_bandwidth_hz: float = 8000.0
    input_program: int = 0
    target_program: int = 40

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.residual_eq or self.envelope_hidden:
            raise ValueError("xfer: residual_eq and envelope_hidden apply to sr-hifigan's generated band only; "
                             "xfer has none")
        for name in ("input_program", "target_program"):
            v = getattr(self, name)
            if int(v) != v or not 0 <= v <= 127:
                raise ValueError(f"xfer: {name} must be a General MIDI program 0-127, got {v!r}")


def _presets(program: int) -> dict[str, XferConfig]:
    return {
        "paper": XferConfig(target_program=program),
        "live": XferConfig(target_program=program, blocks=5, base_filters=24, d_max=2, padding="causal"),
        "tiny": XferConfig(target_program=program, blocks=2, base_filters=8, d_max=1, kernel_sizes=(3, 5, 9, 15),
                           output_kernel=5),
    }


@register("xfer-violin", XferConfig, _presets(TARGETS["xfer-violin"]),
          "piano to violin instrument transfer, 16 kHz (seed 001: Alahi, Sifringer & Stegmüller 2020)")
class XferGenerator(SRHiFiGANGenerator):
    """The seed-001 generator: sr-hifigan's U-Net with output ``g tanh(f(x))``, no input skip.

    ``(batch, 1, samples)`` at 16 kHz (the input instrument) -> the same shape (the target
    instrument); ``samples`` a multiple of :attr:`total_stride`. Registered as ``xfer-violin``;
    the other instruments register subclasses that add nothing (the same network, other presets).
    """

    def _combine(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self._residual(h)

    def _combine_stream(self, x: torch.Tensor, h: torch.Tensor, d: int, cur: StateCursor) -> torch.Tensor:
        return self._residual(h)

    def _combine_reach(self, r: Reach) -> Reach:
        return r


@register("xfer-flute", XferConfig, _presets(TARGETS["xfer-flute"]),
          "piano to flute instrument transfer, 16 kHz (seed 001)")
class XferFlute(XferGenerator):
    """:class:`XferGenerator` for the flute (GM 73)."""


@register("xfer-guitar", XferConfig, _presets(TARGETS["xfer-guitar"]),
          "piano to nylon-guitar instrument transfer, 16 kHz (seed 001)")
class XferGuitar(XferGenerator):
    """:class:`XferGenerator` for the nylon guitar (GM 24)."""
