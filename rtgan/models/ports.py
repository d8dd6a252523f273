"""What a model reads and writes (its ports), and what kind of runner it needs.

A :class:`Port` says what flows through one side of a model: the kind of signal (audio
samples, mel frames, ...), how many channels, and its frame rate in frames per second (an
audio port's rate is its sample rate in Hz; a mel port's is ``sample_rate / hop_length``).
Every runner derives block sizes, FIFO granules, output lengths and latency in ms from the
two ports of a model, never from an assumption that output and input have the same length:

* ``ratio = port_out.rate / port_in.rate`` output frames per input frame (a
  :class:`fractions.Fraction`, exact: 2 for 8 -> 16 kHz, 1 for sr-hifigan, 256 for a mel
  vocoder with hop 256);
* ``n`` input frames give :func:`output_length` ``(n, ratio) = ceil(n * ratio)`` output frames.

Kinds of model (:data:`KINDS`): ``"streamable"`` (an explicit-state ``step``: every runner),
``"frame"`` (a fixed frame, overlap-add only) and ``"note"`` (renders a note from control
inputs, run by a voice engine). Runners and tests ask a model what it is instead of assuming.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from numbers import Rational

__all__ = ["Port", "KINDS", "SIGNALS", "output_length", "input_length"]

#: Kinds of model: which runners can run it.
KINDS = ("streamable", "frame", "note")
#: Kinds of signal a port carries.
SIGNALS = ("audio", "mel", "control")


@dataclass(frozen=True)
class Port:
    """One side of a model.

    Attributes:
        signal: what flows: ``"audio"`` (samples), ``"mel"`` (log-mel frames), ``"control"``.
        channels: channels per item (audio channels, or mel bins).
        rate: frames per second (audio: the sample rate in Hz), exact (a Fraction).

    Raises:
        ValueError: unknown signal, channels < 1, or a rate that is not positive and finite.
    """

    signal: str
    channels: int
    rate: Fraction

    def __post_init__(self) -> None:
        if self.signal not in SIGNALS:
            raise ValueError(f"unknown signal {self.signal!r}; expected one of {SIGNALS}")
        if int(self.channels) != self.channels or self.channels < 1:
            raise ValueError(f"a port needs >= 1 channels, got {self.channels!r}")
        rate = self.rate if isinstance(self.rate, Rational) else Fraction(str(self.rate))
        if not math.isfinite(float(rate)) or rate <= 0:
            raise ValueError(f"a port's rate must be positive, got {self.rate!r}")
        object.__setattr__(self, "rate", Fraction(rate))
        object.__setattr__(self, "channels", int(self.channels))

    @classmethod
    def audio(cls, sample_rate: int, channels: int = 1) -> "Port":
        """An audio port at ``sample_rate`` Hz."""
        return cls("audio", channels, Fraction(sample_rate))

    def __str__(self) -> str:
        unit = "Hz" if self.signal == "audio" else "frames/s"
        rate = f"{float(self.rate):g}" if self.rate.denominator != 1 else f"{self.rate.numerator}"
        return f"{self.signal} x{self.channels} at {rate} {unit}"

    def ms(self, frames: int | float) -> float:
        """``frames`` at this port's rate, in milliseconds."""
        return 1000.0 * float(frames) / float(self.rate)


def output_length(n: int, ratio: Fraction) -> int:
    """Output frames for ``n`` input frames: ``ceil(n * ratio)``."""
    return -(-n * ratio.numerator // ratio.denominator)


def input_length(m: int, ratio: Fraction) -> int:
    """Fewest input frames whose output covers ``m`` output frames: ``ceil(m / ratio)``."""
    return -(-m * ratio.denominator // ratio.numerator)
