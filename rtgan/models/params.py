"""Live parameters a model declares (name, range, unit, default), as the Neutone SDK's models do.

A :class:`Parameter` is a declaration only: what can be set, between which bounds, in which
unit and how a controller's travel maps onto it. The engine holds the values
(:class:`rtgan.engine.params.ParameterBank`) and smooths them; the command line
(``rtgan live --param NAME=VALUE``), Python (``processor.params.set``) and MIDI CC
(:mod:`rtgan.engine.midi`) all set the same ones.

Every live processor has the engine's own parameters (:data:`ENGINE_PARAMETERS`: ``wet`` and
``gain``); a model adds its own through :attr:`rtgan.models.base.Generator.live_parameters`
(say a reverb's decay time).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

SCALES = ("linear", "log")


@dataclass(frozen=True)
class Parameter:
    """One live parameter.

    Attributes:
        name: identifier used by the command line, Python and MIDI maps (``[a-z][a-z0-9_]*``).
        minimum, maximum: the range, in ``unit`` (``minimum < maximum``).
        default: the value a stream starts with, inside the range.
        unit: the unit of the values (``"s"``, ``"dB"``, ``""`` for a ratio).
        description: one line for ``--help`` and the printed MIDI map.
        scale: how a controller's travel ``u`` in ``[0, 1]`` maps onto the range:
            ``"linear"``, ``min + u * (max - min)``; ``"log"``, ``min * (max / min) ** u``
            (equal ratios per equal travel; needs ``0 < min``), for times and frequencies.

    Raises:
        ValueError: a bad name, an empty or non-finite range, a default outside it, an
            unknown scale, or a log scale over non-positive values.
    """

    name: str
    minimum: float
    maximum: float
    default: float
    unit: str = ""
    description: str = ""
    scale: str = "linear"

    def __post_init__(self) -> None:
        if not self.name or not (self.name[0].isalpha() and self.name.replace("_", "a").isalnum()
                                 and self.name == self.name.lower()):
            raise ValueError(f"parameter name must be lower-case letters, digits and _, got {self.name!r}")
        if not (math.isfinite(self.minimum) and math.isfinite(self.maximum) and self.minimum < self.maximum):
            raise ValueError(f"parameter {self.name}: range must be finite with minimum < maximum, "
                             f"got [{self.minimum}, {self.maximum}]")
        if not self.minimum <= self.default <= self.maximum:
            raise ValueError(f"parameter {self.name}: default {self.default} outside [{self.minimum}, {self.maximum}]")
        if self.scale not in SCALES:
            raise ValueError(f"parameter {self.name}: scale must be one of {SCALES}, got {self.scale!r}")
        if self.scale == "log" and self.minimum <= 0:
            raise ValueError(f"parameter {self.name}: a log scale needs minimum > 0, got {self.minimum}")

    def check(self, value: float) -> float:
        """``value`` as a float if it lies in the range.

        Raises:
            ValueError: not a finite number inside ``[minimum, maximum]`` (names the range and unit).
        """
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name}: expected a number, got {value!r}") from None
        if not (math.isfinite(v) and self.minimum <= v <= self.maximum):
            raise ValueError(f"{self.name} must be in [{self.minimum:g}, {self.maximum:g}]{' ' + self.unit if self.unit else ''}, "
                             f"got {value!r}")
        return v

    def from_unit(self, u: float) -> float:
        """The value at controller travel ``u`` (clipped to ``[0, 1]``), on this parameter's scale."""
        u = min(max(float(u), 0.0), 1.0)
        if self.scale == "log":
            return self.minimum * (self.maximum / self.minimum) ** u
        return self.minimum + u * (self.maximum - self.minimum)

    def to_unit(self, value: float) -> float:
        """The controller travel in ``[0, 1]`` that gives ``value`` (clipped to the range)."""
        v = min(max(float(value), self.minimum), self.maximum)
        if self.scale == "log":
            return math.log(v / self.minimum) / math.log(self.maximum / self.minimum)
        return (v - self.minimum) / (self.maximum - self.minimum)

    def describe(self) -> str:
        """``name: description, min..max unit (scale), default d``: one line."""
        u = f" {self.unit}" if self.unit else ""
        return (f"{self.name}: {self.description + ', ' if self.description else ''}{self.minimum:g}..{self.maximum:g}{u}"
                f"{' (log)' if self.scale == 'log' else ''}, default {self.default:g}")


#: every live processor's parameters, before the model's own
ENGINE_PARAMETERS = (
    Parameter("wet", 0.0, 1.0, 1.0, "", "mix: 0 = dry only, 1 = full model output (a wet-signal model is "
                                        "added to the dry, any other replaces it)"),
    Parameter("gain", -60.0, 12.0, 0.0, "dB", "output gain before the limiter"),
)
