"""The contract the mel vocoders share (seed 003): a streamed mel front end before a generator.

A :class:`MelVocoder` reads audio (its port is audio at the mel's sample rate), computes the
log-mel with :class:`.layers.mel.LogMel1d` inside the streamed graph and resynthesises audio from
it; :meth:`MelVocoder.vocode` runs the generator on a given mel (a saved one, or in training).
Subclasses supply the generator: :meth:`MelVocoder.synthesize` (the network on exactly the
given frames), :meth:`MelVocoder.stream_mel` (the same through cached layers) and
:meth:`MelVocoder.vocode_reach` (its receptive field in mel frames).

Edges: a conv zero-pads, but a zero in a log10 mel is a loud frame (``log10 1``), not silence
(``log10(floor)``). :meth:`vocode` therefore extends a mel by the generator's receptive field of
silent frames on each side, and :meth:`forward` extends the *audio* by as many hops of zeros
before taking its mel (with a mel lookahead, the frames just before a clip already hear its
first samples): both equal what a stream that has seen silence before and after gives.
"""
from __future__ import annotations

import math
from fractions import Fraction
from functools import cached_property

import torch
import torch.nn.functional as F

from .base import Generator
from .layers import Reach, StateCursor
from .layers.mel import LogMel1d
from .ports import Port


class MelVocoder(Generator):
    """Base class of the vocoders: ``self.mel`` (a :class:`LogMel1d`) and ``self.config.mel`` are set by subclasses."""

    mel: LogMel1d

    @property
    def total_stride(self) -> int:
        """Samples per mel frame (the hop length): input lengths are multiples of it."""
        return self.config.mel.hop_length

    @property
    def mel_port(self) -> Port:
        """What :meth:`vocode` reads: ``n_mels`` channels at ``sample_rate / hop`` frames per second."""
        m = self.config.mel
        return Port("mel", m.n_mels, Fraction(m.sample_rate, m.hop_length))

    # -- what a subclass supplies ----------------------------------------------------------------
    def synthesize(self, mel: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """The generator on exactly these frames: ``(batch, n_mels, frames)`` -> ``(batch, 1, frames * hop)``."""
        raise NotImplementedError

    def stream_mel(self, mel: torch.Tensor, delay: int, cur: StateCursor) -> tuple[torch.Tensor, int]:  # pragma: no cover
        """:meth:`synthesize` on one block of frames at ``delay`` (frames) with explicit caches: (audio, delay in samples)."""
        raise NotImplementedError

    def vocode_reach(self, r: Reach = Reach()) -> Reach:  # pragma: no cover - abstract
        """The rules of :meth:`synthesize` from ``r`` (default: in mel frames)."""
        raise NotImplementedError

    # -- derived ---------------------------------------------------------------------------------
    @cached_property
    def _context(self) -> tuple[int, int]:
        # silent frames each side that cover the generator's receptive field (see the module docstring)
        r = self.vocode_reach()
        return math.ceil(r.left), math.ceil(r.right)

    def _check_mel(self, mel: torch.Tensor) -> None:
        n = self.config.mel.n_mels
        if mel.dim() != 3 or mel.shape[1] != n:
            raise ValueError(f"expected a mel (batch, {n}, frames), got {tuple(mel.shape)}")

    def vocode(self, mel: torch.Tensor, pad: bool = True) -> torch.Tensor:
        """Audio ``(batch, 1, frames * hop)`` from a log10 mel ``(batch, n_mels, frames)``.

        With ``pad`` (default) the mel is extended by the generator's receptive field of silence
        (the log floor) on each side and the output cut back, so its first and last samples are
        what a stream that saw silence around the mel gives; ``pad=False`` runs the network on
        exactly these frames (its convs zero-pad: training, where the edges do not matter).

        Raises:
            ValueError: a mel that is not ``(batch, n_mels, frames)``.
        """
        self._check_mel(mel)
        if not pad:
            return self.synthesize(mel)
        left, right = self._context
        hop = self.config.mel.hop_length
        y = self.synthesize(F.pad(mel, (left, right), value=self.config.mel.log_floor))
        return y[..., left * hop: y.shape[-1] - right * hop]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Resynthesise audio ``(batch, 1, n)`` through its mel: ``(batch, 1, n)``.

        Equal to the stream (delayed by :attr:`latency_samples`) of ``x`` with silence before and
        after it. (Training calls ``vocode(mel(x), pad=False)``: the same away from the edges.)

        Raises:
            ValueError: see :meth:`Generator.check_input`.
        """
        self.check_input(x)
        left, right = self._context
        hop = self.config.mel.hop_length
        y = self.synthesize(self.mel(F.pad(x, (left * hop, right * hop))))
        return y[..., left * hop: y.shape[-1] - right * hop]

    def stream_forward(self, x: torch.Tensor, cur: StateCursor) -> tuple[torch.Tensor, int]:
        """The mel front end's stream, then the generator's (:meth:`stream_mel`)."""
        mel, d = self.mel.stream(x, 0, cur)
        return self.stream_mel(mel, d, cur)

    def reach(self) -> Reach:
        """The mel window, then the generator (:meth:`vocode_reach`), at stride 1."""
        return self.vocode_reach(self.mel.reach(Reach()))
