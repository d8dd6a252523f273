"""The contract every rtgan generator shares."""
from __future__ import annotations

from fractions import Fraction
from functools import cached_property
from typing import Any

import torch
from torch import nn

from .layers.cached import StateCursor
from .layers.reach import Reach
from .params import Parameter
from .ports import Port, input_length, output_length

#: A streaming state: plain tensors, each ``(batch, channels, frames)``, in a fixed order.
State = tuple[torch.Tensor, ...]


class Generator(nn.Module):
    """Base class of fully convolutional generators.

    Subclasses set ``self.config`` (a frozen dataclass) and implement :meth:`forward` on
    ``(batch, channels, samples)`` with ``samples`` a multiple of :attr:`total_stride`,
    :meth:`reach`, the composition of their layers' :class:`Reach` maps, and
    :meth:`stream_forward`, the same graph run through the cached layers of
    :mod:`rtgan.models.layers.cached`. Everything below is derived from those: nothing about
    timing is typed by hand.

    Ports (:mod:`rtgan.models.ports`): :attr:`port_in` and :attr:`port_out` say what the model
    reads and writes; ``n`` input frames give ``ceil(n * rate_ratio)`` output frames. Lengths
    and positions on the input side (:attr:`total_stride`, :attr:`stream_granule`,
    :meth:`reach`) are in input frames; :attr:`latency_samples` is in output frames.

    Streaming contract: ``state = init_state(batch)``, then ``out, state = step(block, state)``
    for consecutive blocks whose lengths are multiples of :attr:`stream_granule`; the
    concatenated outputs equal offline inference delayed by :attr:`latency_samples`.
    """

    config: Any
    #: registry name, set by :func:`rtgan.models.registry.register`.
    name: str = ""
    #: which runners can run the model (:data:`rtgan.models.ports.KINDS`); this base class
    #: implements the ``"streamable"`` contract.
    kind: str = "streamable"
    #: what the output is to a live mix: ``"processed"`` (the signal itself: the mix is a
    #: crossfade ``dry + wet * (y - dry)``) or ``"wet"`` (an effect's wet signal, e.g. a
    #: reverb's tail: the mix adds it, ``dry + wet * y``).
    output_role: str = "processed"
    #: live parameters the model declares beside the engine's (:mod:`rtgan.models.params`).
    live_parameters: tuple[Parameter, ...] = ()

    def reach(self) -> Reach:  # pragma: no cover - abstract
        """Dependency bounds of the output on the input, in input samples.

        The composition of the layers' rules; where the output is finer than the input
        (an upsampling model: fractional stride) the runners read it in whole input frames
        (:meth:`Reach.whole`)."""
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
    def port_in(self) -> Port:
        """What the model reads (default: mono audio at :attr:`sample_rate_in`)."""
        return Port.audio(self.sample_rate_in, self.channels)

    @property
    def port_out(self) -> Port:
        """What the model writes (default: audio at :attr:`sample_rate_out`, :attr:`channels` channels)."""
        return Port.audio(self.sample_rate_out, self.channels)

    @property
    def rate_ratio(self) -> Fraction:
        """Output frames per input frame, ``port_out.rate / port_in.rate`` (exact)."""
        return self.port_out.rate / self.port_in.rate

    def output_length(self, n: int) -> int:
        """Output frames for ``n`` input frames: ``ceil(n * rate_ratio)``."""
        return output_length(n, self.rate_ratio)

    @property
    def out_granule(self) -> int:
        """Output frames per :attr:`stream_granule` of input.

        Raises:
            ValueError: the granule times the rate ratio is not a whole number of frames (a
                model whose ports and stride do not fit together).
        """
        g = self.stream_granule * self.rate_ratio
        if g.denominator != 1:
            raise ValueError(f"{self.name or type(self).__name__}: a granule of {self.stream_granule} input frames "
                             f"gives {g} output frames at rate ratio {self.rate_ratio}; it must be whole")
        return int(g)

    @property
    def total_stride(self) -> int:
        """Input samples per frame at the deepest level; input lengths must be multiples of it."""
        raise NotImplementedError

    @property
    def index_period(self) -> int:
        """The output depends on the input's absolute sample index modulo this (1: it does not).

        A model that modulates (sr-hifigan's band mirror, :mod:`.layers.mirror`) counts from the
        first sample its :meth:`forward` sees, i.e. the start of the padded input of
        :func:`rtgan.engine.overlap_save.offline`; its :meth:`step` keeps the count in its state.
        Overlap-save, whose calls start at arbitrary indices, refuses such a model.
        """
        return 1

    @property
    def left_context(self) -> int:
        """Past input samples an output sample may depend on."""
        return self.reach().whole().left

    @property
    def lookahead(self) -> int:
        """Future input samples an output sample may depend on (algorithmic lookahead)."""
        return self.reach().whole().right

    @property
    def receptive_field(self) -> int:
        """Input samples that can influence one output sample: ``left + 1 + lookahead``."""
        r = self.reach().whole()
        return r.left + 1 + r.right

    # ------------------------------------------------------------------ streaming
    def stream_forward(self, x: torch.Tensor, cur: StateCursor) -> tuple[torch.Tensor, int]:  # pragma: no cover
        """One streaming step through the cached layers: ``(output block, its delay in samples)``."""
        raise NotImplementedError

    @property
    def stream_granule(self) -> int:
        """Block lengths :meth:`step` accepts are multiples of this (input samples)."""
        return self.total_stride

    @cached_property
    def _stream_layout(self) -> tuple[int, tuple[tuple[int, int], ...]]:
        # one step on a zero granule in init mode: output delay and (channels, frames) per state
        p = next(self.parameters())
        x = torch.zeros(1, self.port_in.channels, self.stream_granule, dtype=p.dtype, device=p.device)
        cur = StateCursor(None, 1, x)
        with torch.no_grad():
            _, delay = self.stream_forward(x, cur)
        return delay, tuple((t.shape[1], t.shape[2]) for t in cur.finish())

    @property
    def latency_samples(self) -> int:
        """Delay of the streamed output behind offline inference, in output frames (samples).

        The sum of the lookahead its layers take in streaming (a causal conv is late by its
        right padding) and the phase alignment its superpixel layers need; computed by
        running one step. ``latency_samples + stream_granule - 1 >= lookahead``: the rest of
        the lookahead lies inside the granule a block already holds.
        """
        return self._stream_layout[0]

    def state_shapes(self, batch: int = 1) -> list[tuple[int, int, int]]:
        """Shapes ``(batch, channels, frames)`` of the state tensors, in order (they never depend on the data)."""
        return [(batch, c, n) for c, n in self._stream_layout[1]]

    @property
    def prime_frames(self) -> int:
        """Zero input frames :meth:`init_state` steps over: ``left_context`` plus the latency (in
        input frames), rounded up to :attr:`stream_granule`."""
        g = self.stream_granule
        return -(-(self.left_context + input_length(self.latency_samples, self.rate_ratio)) // g) * g

    @torch.no_grad()
    def init_state(self, batch: int = 1, dtype: torch.dtype | None = None,
                   device: torch.device | str | None = None) -> State:
        """The state of a stream that has seen silence forever, for ``batch`` streams.

        Zero caches, then one step over ``left_context`` plus the latency (in input frames)
        zeros, rounded up to the granule, so that caches of layers whose output is not zero
        for silent input (biases) hold their steady values; offline inference zero-pads its
        input the same way.
        """
        p = next(self.parameters())
        dtype = dtype or p.dtype
        device = device if device is not None else p.device
        state = tuple(torch.zeros(shape, dtype=dtype, device=device) for shape in self.state_shapes(batch))
        prime = self.prime_frames
        if prime:  # a model with no context and no latency has nothing to prime
            _, state = self.step(torch.zeros(batch, self.port_in.channels, prime, dtype=dtype, device=device), state)
        return state

    @torch.no_grad()
    def step(self, block: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Process one block of a stream.

        Runs without autograd (``torch.no_grad``, not ``inference_mode``, so the step can still
        be traced and exported): the output and the new state never carry a graph, so a long
        stream's memory stays flat even when the parameters require gradients.

        Args:
            block: ``(batch, channels, n)`` with ``n`` a multiple of :attr:`stream_granule`.
            state: from :meth:`init_state` or the previous step (never modified).

        Returns:
            ``(batch, port_out.channels, n * rate_ratio)`` output, late by
            :attr:`latency_samples` output frames, and the new state.

        Raises:
            ValueError: bad block shape (see :meth:`check_input`) or a state of the wrong layout
                (number of tensors, or a tensor whose shape, batch size included, is not the
                one :meth:`state_shapes` gives for this block's batch).
        """
        self.check_input(block)
        cur = StateCursor(state, block.shape[0], block)
        y, _ = self.stream_forward(block, cur)
        return y, cur.finish()

    def parameter_states(self) -> dict[str, int]:
        """Live parameters the step reads from its state: ``{name: index of the state tensor}``.

        A parameter that changes what the network computes (a reverb's decay) travels in the
        step's state, so an exported step follows it; the engine writes
        :meth:`parameter_state` there when the parameter moves. None by default.
        """
        return {}

    def parameter_state(self, name: str, value: float, batch: int = 1) -> torch.Tensor:
        """The state tensor (shape as :meth:`state_shapes` gives it) for parameter ``name`` at ``value``.

        Raises:
            KeyError: ``name`` is not in :meth:`parameter_states`.
        """
        raise KeyError(f"{self.name or type(self).__name__} carries no parameter {name!r} in its state")

    def num_parameters(self) -> int:
        """Number of trainable parameters (frozen ones, such as a fixed filter bank, are not counted)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def check_input(self, x: torch.Tensor) -> None:
        """Validate a ``(batch, channels, samples)`` input.

        Raises:
            ValueError: wrong rank, channel count, or a length that is not a multiple of
                :attr:`total_stride`.
        """
        c = self.port_in.channels
        if x.dim() != 3 or x.shape[1] != c:
            raise ValueError(f"expected (batch, {c}, samples), got {tuple(x.shape)}")
        if x.shape[-1] % self.total_stride:
            raise ValueError(f"length {x.shape[-1]} is not a multiple of the total stride {self.total_stride}")


class NoteGenerator(nn.Module):
    """Base class of note models (kind ``"note"``): a note from control inputs, no stream.

    A note model renders one note at a time, ``render_note(pitch, velocity, label, z) ->
    (samples,)`` audio at :attr:`sample_rate_out`, and is played by a voice engine (notes
    generated ahead, then mixed). It has no ``step``: the streaming runners, grids and
    exporters ask :attr:`kind` and leave it out. Subclasses set ``self.config`` and implement
    :meth:`render_note`, :attr:`note_samples` and :attr:`pitch_range`.
    """

    config: Any
    #: registry name, set by :func:`rtgan.models.registry.register`.
    name: str = ""
    #: which runners can run the model (:data:`rtgan.models.ports.KINDS`).
    kind: str = "note"
    output_role: str = "processed"
    live_parameters: tuple[Parameter, ...] = ()

    @property
    def sample_rate_out(self) -> int:  # pragma: no cover - abstract
        """Output sample rate in Hz."""
        raise NotImplementedError

    @property
    def note_samples(self) -> int:  # pragma: no cover - abstract
        """Samples of one rendered note."""
        raise NotImplementedError

    @property
    def pitch_range(self) -> tuple[int, int]:  # pragma: no cover - abstract
        """Lowest and highest MIDI pitch (inclusive)."""
        raise NotImplementedError

    def render_note(self, pitch: int, velocity: float = 1.0, label: Any = None,
                    z: torch.Tensor | None = None, seed: int | None = None) -> torch.Tensor:  # pragma: no cover
        """One note ``(samples,)`` float32."""
        raise NotImplementedError

    @property
    def port_out(self) -> Port:
        """What the model writes: mono audio at :attr:`sample_rate_out` (it reads no stream)."""
        return Port.audio(self.sample_rate_out)

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
