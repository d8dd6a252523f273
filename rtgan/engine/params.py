"""The values of a live processor's parameters: set from any thread, smoothed per sample.

A :class:`ParameterBank` holds, for each declared :class:`~rtgan.models.params.Parameter`, a
*target* (what the command line, Python or a MIDI controller last set) and a *current* value
that follows it with a one-pole low-pass per sample, so a jump of the target (a CC message
moves in steps of 1/127) never reaches the audio as a step: no zipper noise.

Smoothing: ``c[k] = t + (c[k-1] - t) * a`` per sample with ``a = exp(-1 / (tau * fs))``, the
impulse-invariant one-pole of time constant ``tau = smooth_ms`` (63 % of a jump after
``tau``, 99 % after ``4.6 tau``). For a whole block it is evaluated in closed form,
``c[k] = t + (c[-1] - t) * a**(k + 1)`` for ``k = 0..n-1``, into preallocated rows.

Threading: a target is one element of a float32 array, written by a single assignment
(atomic under the GIL); the audio thread reads targets once per block in :meth:`advance`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..models.params import Parameter


class ParameterBank:
    """Targets and per-sample smoothed values of ``params``.

    Args:
        params: the declarations, names unique (engine parameters first, then the model's).
        sample_rate: samples per second of the audio the values ride on (Hz).
        block_size: samples per :meth:`advance`.
        smooth_ms: the one-pole's time constant in ms (0: no smoothing, values jump at a
            block's first sample).

    Raises:
        ValueError: duplicate names, a non-positive rate or block size, a negative or
            non-finite ``smooth_ms``.
    """

    def __init__(self, params: Sequence[Parameter], sample_rate: int, block_size: int,
                 smooth_ms: float = 20.0) -> None:
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ValueError(f"parameter names must be unique, got {names}")
        if sample_rate < 1 or block_size < 1:
            raise ValueError(f"sample rate and block size must be >= 1, got {sample_rate}, {block_size}")
        if not (math.isfinite(smooth_ms) and smooth_ms >= 0):
            raise ValueError(f"smooth_ms must be a finite number >= 0, got {smooth_ms}")
        self.params = tuple(params)
        self.index = {p.name: i for i, p in enumerate(self.params)}
        self.sample_rate, self.block_size, self.smooth_ms = int(sample_rate), int(block_size), float(smooth_ms)
        self._target = np.array([p.default for p in self.params], np.float32)
        self._current = self._target.copy()
        self._diff = np.zeros_like(self._target)
        self.pole = math.exp(-1000.0 / (smooth_ms * sample_rate)) if smooth_ms > 0 else 0.0
        self._pow = (self.pole ** np.arange(1, block_size + 1)).astype(np.float32)
        self.ramps = np.zeros((len(self.params), block_size), np.float32)
        self.ramps[:] = self._current[:, None]

    def __contains__(self, name: str) -> bool:
        return name in self.index

    def declaration(self, name: str) -> Parameter:
        """The :class:`Parameter` called ``name``.

        Raises:
            KeyError: no such parameter (the message lists the declared ones).
        """
        try:
            return self.params[self.index[name]]
        except KeyError:
            raise KeyError(f"unknown parameter {name!r}; this processor has {', '.join(self.index)}") from None

    def set(self, name: str, value: float) -> float:
        """Set the target of ``name``; the current value glides to it. Returns the value.

        Raises:
            KeyError: unknown name. ValueError: a value outside the declared range.
        """
        i = self.index[self.declaration(name).name]
        v = self.params[i].check(value)
        self._target[i] = v
        return v

    def set_unit(self, name: str, u: float) -> float:
        """Set ``name`` from a controller's travel ``u`` in ``[0, 1]`` (:meth:`Parameter.from_unit`)."""
        p = self.declaration(name)
        return self.set(name, p.from_unit(u))

    def jump(self, name: str, value: float) -> float:
        """Set target and current value of ``name`` at once (no glide): for start-up values."""
        v = self.set(name, value)
        i = self.index[name]
        self._current[i] = v
        self.ramps[i] = v
        return v

    def target(self, name: str) -> float:
        """The last value set for ``name``."""
        return float(self._target[self.index[self.declaration(name).name]])

    def current(self, name: str) -> float:
        """The smoothed value at the end of the last block."""
        return float(self._current[self.index[self.declaration(name).name]])

    def reset(self) -> None:
        """Current values jump to their targets (a stream restarts without a glide)."""
        self._current[:] = self._target
        self.ramps[:] = self._current[:, None]

    def advance(self) -> np.ndarray:
        """Smooth every parameter over the next block: fills and returns :attr:`ramps`,
        ``(parameters, block_size)`` float32 (row order: :attr:`params`). Allocates nothing."""
        np.subtract(self._current, self._target, out=self._diff)
        np.multiply.outer(self._diff, self._pow, out=self.ramps)
        for i in range(len(self.params)):  # row by row: numpy copies a broadcast in-place operand
            np.add(self.ramps[i], self._target[i], out=self.ramps[i])
        self._current[:] = self.ramps[:, -1]
        return self.ramps

    def ramp(self, name: str) -> np.ndarray:
        """The row of :attr:`ramps` for ``name`` (a view: valid until the next :meth:`advance`)."""
        return self.ramps[self.index[name]]
