"""A learned, causal gain on a generated band: the envelope-estimation stage of bandwidth extension.

Classic artificial bandwidth extension splits the task in two: an *excitation* for the missing
band, and an *envelope* (its level over time) estimated from features of the band that is
there (Jax & Vary 2003, "On artificial bandwidth extension of telephone speech", Signal
Processing 83(8), Sec. 3-4; Pulakka & Alku 2011, IEEE TASLP 19(7), a neural network for that
estimate). :class:`EnvelopeGain` adds the second stage to a generator that already makes the
first: from causal features of the input ``x`` and of the generated band ``r`` it estimates
``G(t)``, the factor that brings ``r``'s short-term level to the original's, and the model
outputs ``x + g G r``.

Features at sample ``t`` (``F = 14``), all ratios of causal moving mean squares, so ``G`` does
not depend on the signal level (the generator is level-equivariant, and stays so):

* ``log E_b,w(t) - log E_x,w(t)`` for five bands ``b`` of the input (edges
  ``(0, 1/8, 1/4, 1/2, 3/4, 1) * input_bandwidth``; linear-phase FIR band-passes of
  :data:`FIR_TAPS` taps) and two windows ``w`` (:data:`SHORT_MS`, ``5 * SHORT_MS``): the
  input's spectral shape (a fricative and a vowel differ there);
* ``log E_r,w(t) - log E_x,w(t)`` for both windows: the generated band's level as made;
* ``log E_x,short(t) - log E_x,long(t)``: onset or decay;
* ``log E_x,long(t) - log P(t)``: the present level against the recent past, where ``P`` is the
  input's mean square over the *active* samples (above -120 dBFS) of the :data:`REFERENCE_S`
  seconds before the current frame of ``frame`` samples (the model's stream granule; the
  zeros before a stream's start do not count). It is what speech needs (README, "An envelope
  head"); a likely reason, not checked: quiet stretches of speech (fricatives) carry more of
  their energy above the band than loud ones (vowels).

``E_s,w(t)`` is the mean of ``s^2`` over samples ``t - w + 1 .. t`` (a box of ``a`` samples
followed by a dilated box of ``w / a`` taps, ``a + w / a`` additions a sample instead of
``w``), plus ``EPS``; ``P`` is computed once a frame (a box over the past frames' means) and
held over the frame's samples. A pointwise MLP (two hidden layers, GELU) maps the features to
``log(G^2)``; ``G = min(exp(out / 2), max_gain)``. Its weights are fitted after the
generator is trained (:func:`rtgan.calibrate.fit_envelope`): least squares against
``log(E_y'(t) / E_r'(t))``, the original's and the generated band's energy above the input's
band over a centred window (the oracle gain). Causal: no lookahead, no added latency; streamed
exactly with caches (:meth:`EnvelopeGain.stream`).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .cached import StateCursor, delay_line, with_history
from .reach import Reach

#: Length of each band-pass FIR (odd; linear phase, 127 samples of group delay at 48 kHz: 2.6 ms).
FIR_TAPS = 255
#: Short window in ms; the long one is :data:`LONG_FACTOR` times it.
SHORT_MS = 10.0
LONG_FACTOR = 5
#: Floor added to every mean square (-120 dBFS): silence gives features of 0.
EPS = 1e-12
#: Seconds of past input the level reference ``P`` averages.
REFERENCE_S = 3.0
#: Number of features: 5 bands x 2 windows, the generated band x 2 windows, onset, level against the reference.
N_FEATURES = 14
#: Band edges as fractions of the input's bandwidth.
BAND_FRACTIONS = (0.0, 0.125, 0.25, 0.5, 0.75, 1.0)


def band_firs(sample_rate: int, bandwidth_hz: float, taps: int = FIR_TAPS) -> np.ndarray:
    """``(5, taps)`` linear-phase FIR band-passes (the first a low-pass) splitting 0..``bandwidth_hz``.

    Window-method designs (:func:`scipy.signal.firwin`, Hamming) at the edges
    ``BAND_FRACTIONS * bandwidth_hz``.

    Raises:
        ValueError: ``bandwidth_hz`` not below the Nyquist frequency, or ``taps`` even.
    """
    from scipy import signal

    if not 0 < bandwidth_hz < sample_rate / 2 or taps % 2 == 0:
        raise ValueError(f"need 0 < bandwidth < {sample_rate / 2} Hz and odd taps, got {bandwidth_hz} Hz, {taps}")
    edges = [f * bandwidth_hz for f in BAND_FRACTIONS]
    return np.stack([signal.firwin(taps, hi, fs=sample_rate) if lo == 0 else
                     signal.firwin(taps, [lo, hi], pass_zero=False, fs=sample_rate)
                     for lo, hi in zip(edges[:-1], edges[1:])])


def _zeros_before(t: torch.Tensor, memory: int) -> torch.Tensor:
    """``t`` with ``memory`` zero frames before it: the history of a signal that starts at rest."""
    return F.pad(t, (memory, 0))


def _split(window: int) -> tuple[int, int]:
    """``window = a * b`` with ``a`` the divisor nearest ``sqrt(window)`` from below."""
    a = max(d for d in range(1, int(math.isqrt(window)) + 1) if window % d == 0)
    return a, window // a


class EnvelopeGain(nn.Module):
    """``G(t)`` from the input ``x`` and the generated band ``r``: ``(batch, 1, samples)`` each
    -> ``(batch, 1, samples)``, causal (see the module docstring for features and sources).

    Args:
        sample_rate: rate of ``x`` and ``r`` in Hz.
        bandwidth_hz: the input's bandwidth (the band-passes split 0..this).
        hidden: width of the MLP's two hidden layers.
        frame: the level reference is updated every ``frame`` samples; the model's stream
            granule (every block it streams is a whole number of them).
        max_gain: ceiling of ``G``.

    The MLP starts at zero output (``G = 1``): an unfitted head leaves the model unchanged.
    """

    def __init__(self, sample_rate: int, bandwidth_hz: float, hidden: int, frame: int, max_gain: float = 8.0) -> None:
        super().__init__()
        if hidden < 1 or frame < 1 or not max_gain > 0:
            raise ValueError(f"hidden and frame must be >= 1 and max_gain > 0, got {hidden}, {frame}, {max_gain}")
        self.short = max(1, round(sample_rate * SHORT_MS / 1000))
        self.frame = frame
        self.ref_frames = max(1, round(REFERENCE_S * sample_rate / frame))
        self.pool, self.dil_taps = _split(self.short)
        self.max_log = 2.0 * math.log(max_gain)
        fir = torch.tensor(band_firs(sample_rate, bandwidth_hz)[:, ::-1].copy(), dtype=torch.float32)
        self.register_buffer("fir", fir.unsqueeze(1), persistent=False)  # conv1d correlates: flipped
        self.mlp = nn.Sequential(nn.Conv1d(N_FEATURES, hidden, 1), nn.GELU(), nn.Conv1d(hidden, hidden, 1),
                                 nn.GELU(), nn.Conv1d(hidden, 1, 1))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    @property
    def memory(self) -> int:
        """Past input samples one output sample reads: FIR, short box, long box; or the level
        reference (up to ``frame - 1`` samples into the current frame and ``ref_frames`` frames before)."""
        return max((self.fir.shape[-1] - 1) + (self.short - 1) + self.short * (LONG_FACTOR - 1),
                   (self.ref_frames + 1) * self.frame - 1)

    def reach(self, r_reach: Reach) -> Reach:
        """:class:`Reach` of ``G r`` given ``r``'s: ``r`` over the long window, ``x`` over :attr:`memory`."""
        long = self.short * LONG_FACTOR
        return r_reach.conv(long - 1, 0).merge(Reach().conv(self.memory, 0))

    def reference(self, x: torch.Tensor, history=None) -> torch.Tensor:
        """``P``: ``(batch, 1, samples)`` -> ``(batch, 1, samples)``, ``samples`` a multiple of
        ``frame`` starting at a frame boundary. ``history`` as in :meth:`features` (on frames)."""
        history = history or _zeros_before
        sq = x * x
        fr = F.avg_pool1d(torch.cat([sq, (sq > EPS).to(sq.dtype)], dim=1), self.frame, stride=self.frame)
        k = self.ref_frames
        m = F.conv1d(history(fr, k), fr.new_full((2, 1, k), 1.0 / k), groups=2)[..., :-1]  # frames before each
        p = m[:, :1] / m[:, 1:].clamp(min=1.0 / (k * self.frame))
        return p.unsqueeze(-1).expand(-1, -1, -1, self.frame).flatten(2)  # held over each frame's samples

    def features(self, x: torch.Tensor, r: torch.Tensor, history=None, reference=None) -> torch.Tensor:
        """The ``(batch, 14, samples)`` features of ``x`` and ``r`` (``(batch, 1, samples)`` each).

        ``history(t, m)`` prepends ``m`` past frames to ``t``: zeros offline (the default),
        the cache when streaming. ``reference``: ``P`` for these samples (default:
        :meth:`reference` of ``x``, which then must start at a frame boundary).
        """
        history = history or _zeros_before
        if reference is None:
            reference = self.reference(x)
        bands = F.conv1d(history(x, self.fir.shape[-1] - 1), self.fir)
        sq = torch.cat([bands, x, r], dim=1) ** 2  # (batch, 7, n): 5 bands, x, r
        ch = sq.shape[1]
        m = F.avg_pool1d(history(sq, self.pool - 1), self.pool, stride=1) if self.pool > 1 else sq
        if self.dil_taps > 1:
            m = F.conv1d(history(m, self.pool * (self.dil_taps - 1)), m.new_full((ch, 1, self.dil_taps), 1 / self.dil_taps),
                         dilation=self.pool, groups=ch)
        ml = F.conv1d(history(m, self.short * (LONG_FACTOR - 1)), m.new_full((ch, 1, LONG_FACTOR), 1 / LONG_FACTOR),
                      dilation=self.short, groups=ch)
        ls, ll = torch.log(m + EPS), torch.log(ml + EPS)
        feats = []
        for b in range(5):
            feats += [ls[:, b] - ls[:, 5], ll[:, b] - ll[:, 5]]
        feats += [ls[:, 6] - ls[:, 5], ll[:, 6] - ll[:, 5], ls[:, 5] - ll[:, 5],
                  ll[:, 5] - torch.log(reference[:, 0] + EPS)]
        return torch.stack(feats, dim=1)

    def gain_from_features(self, feats: torch.Tensor) -> torch.Tensor:
        """``G = min(exp(mlp(feats) / 2), max_gain)``: ``(batch, 14, n)`` -> ``(batch, 1, n)``."""
        return torch.exp(0.5 * self.mlp(feats).clamp(max=self.max_log))

    def forward(self, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """``G`` for whole signals (zeros before the start; ``x`` starts at a frame boundary)."""
        return self.gain_from_features(self.features(x, r))

    def stream(self, x: torch.Tensor, x_delayed: torch.Tensor, r: torch.Tensor, delay: int,
               cur: StateCursor) -> torch.Tensor:
        """``G`` for one block, with the past in ``cur``'s caches: ``x`` the input block as it
        arrives (a whole number of frames), ``x_delayed`` it ``delay`` samples later, aligned with
        the generated band ``r``."""
        def history(t, m):
            return with_history(t, m, cur)
        ref = delay_line(self.reference(x, history), delay, cur)
        return self.gain_from_features(self.features(x_delayed, r, history, ref))

    @torch.no_grad()
    def set_mlp(self, weights: list[tuple[torch.Tensor, torch.Tensor]], mean: torch.Tensor, std: torch.Tensor) -> None:
        """Load fitted ``(weight (out, in), bias (out,))`` for the three layers, folding a feature
        standardisation ``(f - mean) / std`` into the first."""
        convs = [m for m in self.mlp if isinstance(m, nn.Conv1d)]
        if len(weights) != len(convs):
            raise ValueError(f"need {len(convs)} layers, got {len(weights)}")
        for i, (conv, (w, b)) in enumerate(zip(convs, weights)):
            w, b = w.double(), b.double()
            if i == 0:
                w, b = w / std.double(), b - (w / std.double()) @ mean.double()
            conv.weight.copy_(w.to(conv.weight.dtype).unsqueeze(-1))
            conv.bias.copy_(b.to(conv.bias.dtype))
