"""Streaming log-mel analysis: the vocoders' front end, as a frozen strided layer.

Seed 003's feature (Vinyard 2020, the ``Audio2Mel`` of its code, itself MelGAN's, Kumar et
al. 2019): at 22 050 Hz, an STFT of ``n_fft = 1024`` points with a 1024-sample periodic Hann
window and hop 256, its magnitude (not power), 128 Slaney mel filters over 0 to Nyquist
(:func:`rtgan.dsp.mel_filterbank`, librosa's defaults) and ``log10(max(mel, 1e-5))``.

The STFT is written as a convolution with stride ``hop`` whose ``2 (n_fft / 2 + 1)`` kernels
are the windowed DFT basis (cosines and negated sines), so the same graph runs offline, streams
through :func:`.strided.strided_windows` and exports to ONNX. Frame ``t`` reads samples
``t*hop - pad_left .. t*hop + hop - 1 + lookahead`` (``pad_left + hop + lookahead = n_fft``):
its *lookahead* is how far the window reaches past the hop it stands for. Seed 003's code
pads 384 zeros on the right only and frames with ``center=False``, so its frame ``t`` is
samples ``[256 t, 256 t + 1024)``: lookahead 768 (35 ms). MelGAN pads 384 each side
(lookahead 384). A live vocoder uses lookahead 0 (the window ends with the hop); the
lookahead is part of the model's computed latency. Offline, the signal is zero-padded by
``pad_left`` and ``lookahead`` (a stream starts from silence the same way).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .cached import StateCursor
from .reach import Reach
from .strided import strided_windows


@dataclass(frozen=True)
class MelConfig:
    """The log-mel front end (seed 003's code; every default in one place).

    Attributes:
        sample_rate: audio rate in Hz (22 050).
        n_fft: FFT size in samples (1024).
        win_length: Hann window length in samples (1024), centred in the FFT frame.
        hop_length: hop in samples (256): one mel frame per hop.
        n_mels: mel bands (128).
        fmin, fmax: the mel filters' range in Hz (0 and Nyquist; ``None`` means Nyquist).
        floor: the mel magnitude floor before ``log10`` (1e-5, i.e. -5 in the log).
        lookahead: samples past the end of its hop that frame ``t``'s window reaches, in
            ``[0, n_fft - hop_length]`` (seed 003's code: 768; centred as MelGAN: 384; live: 0).

    Raises:
        ValueError: sizes that do not fit (``win_length > n_fft``, ``hop_length > n_fft``), a
            lookahead out of range, a bad mel range, or a non-positive floor.
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    floor: float = 1e-5
    lookahead: int = 768

    def __post_init__(self) -> None:
        if not (0 < self.win_length <= self.n_fft) or not (0 < self.hop_length <= self.n_fft):
            raise ValueError(f"bad STFT sizes n_fft={self.n_fft}, win_length={self.win_length}, "
                             f"hop_length={self.hop_length}")
        if not 0 <= self.lookahead <= self.n_fft - self.hop_length:
            raise ValueError(f"mel lookahead must be in [0, {self.n_fft - self.hop_length}] samples, "
                             f"got {self.lookahead}")
        fmax = self.sample_rate / 2 if self.fmax is None else self.fmax
        if not (0 <= self.fmin < fmax <= self.sample_rate / 2) or self.n_mels < 1:
            raise ValueError(f"bad mel range fmin={self.fmin}, fmax={self.fmax}, n_mels={self.n_mels} "
                             f"at {self.sample_rate} Hz")
        if not self.floor > 0:
            raise ValueError(f"floor must be positive, got {self.floor}")

    @property
    def padding(self) -> tuple[int, int]:
        """Zero padding ``(left, right)`` in samples of the offline analysis (``right`` = lookahead)."""
        return self.n_fft - self.hop_length - self.lookahead, self.lookahead

    @property
    def frame_rate(self) -> float:
        """Mel frames per second (Hz / hop)."""
        return self.sample_rate / self.hop_length

    @property
    def log_floor(self) -> float:
        """The smallest value a frame holds, ``log10(floor)`` (silence)."""
        return math.log10(self.floor)


def dft_kernels(n_fft: int, win_length: int) -> torch.Tensor:
    """Windowed one-sided DFT basis as conv kernels, ``(2 (n_fft // 2 + 1), 1, n_fft)`` float32.

    Rows ``k`` and ``n_fft // 2 + 1 + k`` are ``w[n] cos(2 pi k n / n_fft)`` and
    ``-w[n] sin(2 pi k n / n_fft)``: their correlation with a frame is the real and imaginary
    part of bin ``k`` of ``torch.stft`` (periodic Hann window of ``win_length`` samples centred
    in the ``n_fft`` frame, no normalisation).
    """
    n = torch.arange(n_fft, dtype=torch.float64)
    w = torch.zeros(n_fft, dtype=torch.float64)
    left = (n_fft - win_length) // 2
    w[left:left + win_length] = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
    phase = 2 * math.pi * k[:, None] * n[None, :] / n_fft
    basis = torch.cat([torch.cos(phase), -torch.sin(phase)]) * w
    return basis[:, None, :].float()


class LogMel1d(nn.Module):
    """Log-mel analysis: ``(batch, 1, n)`` audio -> ``(batch, n_mels, n / hop_length)`` frames.

    ``log10(max(M |STFT(x)|, floor))`` (seed 003 / MelGAN's ``Audio2Mel``; see the module
    docstring for the frame positions). No trainable parameters: the DFT kernels and the mel
    filters are non-persistent buffers rebuilt from the config, so checkpoints do not carry
    them. Differentiable (the magnitude is floored at 1e-9 inside the square root, far below
    the mel floor), so a loss can be taken on it.

    Raises:
        ValueError: (forward) an input that is not ``(batch, 1, n)`` with ``n`` a multiple of
            ``hop_length``.
    """

    def __init__(self, config: MelConfig = MelConfig()) -> None:
        super().__init__()
        from ...dsp import mel_filterbank
        self.config = c = config
        self.stride = c.hop_length
        self.padding = c.padding
        self.register_buffer("dft", dft_kernels(c.n_fft, c.win_length), persistent=False)
        self.register_buffer("bank", mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.fmax),
                             persistent=False)

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        # x: padded audio (batch, 1, m) -> (batch, n_mels, frames), no padding, stride hop
        spec = F.conv1d(x, self.dft.to(x.dtype), stride=self.stride)
        bins = spec.shape[1] // 2
        mag = torch.sqrt(torch.clamp(spec[:, :bins] ** 2 + spec[:, bins:] ** 2, min=1e-18))
        mel = torch.matmul(self.bank.to(x.dtype), mag)
        return torch.log10(torch.clamp(mel, min=self.config.floor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"expected audio (batch, 1, samples), got {tuple(x.shape)}")
        if x.shape[-1] % self.stride:
            raise ValueError(f"length {x.shape[-1]} is not a multiple of the hop length {self.stride}")
        return self._frames(F.pad(x, self.padding))

    def reach(self, r: Reach) -> Reach:
        """Stride times ``hop_length``; the window reaches ``pad_left`` back and ``lookahead`` ahead."""
        return r.downsample(self.stride, *self.padding)

    def stream(self, x: torch.Tensor, delay: int, cur: StateCursor) -> tuple[torch.Tensor, int]:
        """Streaming form: the last ``n_fft - hop`` samples (plus phase alignment) are the state."""
        x, delay = strided_windows(x, delay, cur, self.config.n_fft, self.stride, self.padding[1])
        return self._frames(x), delay
