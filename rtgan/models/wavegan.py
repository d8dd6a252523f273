"""WaveGAN's discriminator with phase shuffle (Donahue, McAuley & Puckette 2018), as seed 002 uses it.

Donahue, McAuley & Puckette (2018), "Adversarial audio synthesis" (arXiv:1802.04208), Sec. 3
and Appendix, Table 4: the discriminator of WaveGAN is DCGAN's, flattened to one dimension —
convolutions of length 25 with stride 4, each followed by a leaky ReLU (slope 0.2) and, between
convolutions, *phase shuffle* (Sec. 3.2), then a dense layer to one output, with ``d``, ``2d``,
``4d``, ... channels (``d = 64``, "model size"). WaveGAN has five such convolutions for its
16384-sample clips. Retzlöff (seed 002, "Deep Learning Audio Super Resolution", Sec. II-C and
III) uses it as the discriminator of its GAN and as the critic of its WGAN on 0.5 s clips at
16 kHz: "simply five-layer convolutional networks (four convolutions) that implement the
phase shuffle operation previously described between layers", with a linear output (Sec.
II-C: "one must use a linear activation function in the output layer of D"). Here, by
default: four strided convolutions and the dense output layer, five layers in all (the dense
layer over the ``(channels, frames)`` of the last convolution is a convolution whose kernel
spans them: the fifth, unstrided, convolution).

Phase shuffle (Donahue et al. Sec. 3.2): each example's feature maps are shifted in time by an
integer drawn uniformly from ``[-n, n]`` (WaveGAN: ``n = 2``), the samples shifted in filled by
reflection padding, so that the discriminator cannot tell generated audio by the phase of the
periodic artifacts that transposed/subpixel upsampling leaves. It is a training-time
regulariser: in eval mode it is the identity. WaveGAN's TensorFlow code draws one shift per
batch; here each example draws its own (:func:`phase_shuffle`).

Shapes: input ``(batch, channels, samples)`` with ``samples == WaveGANConfig.samples`` (the
dense layer is sized for it); output ``(batch, 1)``, a logit per example (the cross-entropy
GAN applies the sigmoid in its loss, :func:`rtgan.losses.nonsaturating_discriminator_loss`) or,
as the WGAN critic, the critic value itself. With ``padding = kernel // 2`` every strided
convolution maps ``L`` frames to ``ceil(L / stride)`` (TensorFlow's "same").

This module registers no generator; importing it costs nothing beyond torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["WaveGANConfig", "WaveGANDiscriminator", "PhaseShuffle1d", "phase_shuffle", "draw_shifts"]


def phase_shuffle(x: Tensor, shifts: Tensor) -> Tensor:
    """Shift example ``b`` of ``x`` by ``shifts[b]`` samples, reflection-padded (Donahue et al. 2018, Sec. 3.2).

    ``out[b, c, t] = x[b, c, t - k]`` with ``k = shifts[b]``, where indices outside
    ``0 .. L-1`` are reflected about the ends (without repeating the edge sample: index ``-i``
    reads ``i``, index ``L - 1 + i`` reads ``L - 1 - i``), as WaveGAN's
    ``tf.pad(..., mode="reflect")`` followed by a crop does. A positive shift delays the
    signal.

    Args:
        x: ``(batch, channels, L)``.
        shifts: integer tensor ``(batch,)``, each ``|k| < L``.

    Returns:
        ``(batch, channels, L)``, differentiable with respect to ``x``.

    Raises:
        ValueError: wrong shapes, or a shift of ``L`` samples or more.
    """
    if x.dim() != 3:
        raise ValueError(f"phase_shuffle expects (batch, channels, samples), got {tuple(x.shape)}")
    if shifts.shape != (x.shape[0],):
        raise ValueError(f"shifts must have shape ({x.shape[0]},), got {tuple(shifts.shape)}")
    n = int(shifts.abs().max()) if shifts.numel() else 0
    if n == 0:
        return x
    length = x.shape[-1]
    if n >= length:
        raise ValueError(f"a shift of {n} samples needs more than {n} samples, got {length}")
    padded = F.pad(x, (n, n), mode="reflect")
    idx = torch.arange(length, device=x.device)[None, :] + n - shifts.to(x.device, torch.long)[:, None]
    return padded.gather(-1, idx[:, None, :].expand(-1, x.shape[1], -1))


def draw_shifts(batch: int, n: int, device: torch.device | str = "cpu",
                generator: torch.Generator | None = None) -> Tensor:
    """``batch`` independent shifts, uniform on the integers ``-n .. n``, as a long tensor ``(batch,)``."""
    return torch.randint(-n, n + 1, (batch,), device=device, generator=generator)


class PhaseShuffle1d(nn.Module):
    """Phase shuffle by up to ``n`` samples each way (Donahue et al. 2018, Sec. 3.2); identity in eval mode.

    In training mode every example of the batch draws its own shift from ``-n .. n`` (torch's
    global generator, on the input's device) and is shifted by :func:`phase_shuffle`. ``n = 0``
    is the identity.
    """

    def __init__(self, n: int) -> None:
        super().__init__()
        if n < 0:
            raise ValueError(f"phase shuffle radius must be >= 0, got {n}")
        self.n = int(n)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.n == 0:
            return x
        return phase_shuffle(x, draw_shifts(x.shape[0], self.n, x.device))

    def extra_repr(self) -> str:
        return f"n={self.n}"


@dataclass(frozen=True)
class WaveGANConfig:
    """The WaveGAN discriminator's size; defaults as seed 002 uses it on 0.5 s at 16 kHz.

    Attributes:
        samples: input length in samples (0.5 s at 16 kHz = 8000); the dense output layer is
            sized for it.
        width: ``d``, channels of the first convolution; layer ``i`` (0-based) has
            ``d * 2**i`` (WaveGAN's "model size" ``d = 64``; smaller for tiny/small versions).
        layers: strided convolutions (seed 002: four; WaveGAN for 16384 samples: five).
        kernel: convolution length (WaveGAN: 25).
        stride: convolution stride (WaveGAN: 4).
        negative_slope: leaky ReLU slope (WaveGAN: 0.2).
        phase_shuffle: ``n``, the phase-shuffle radius in samples between convolutions
            (WaveGAN: 2; 0 turns it off).
        channels: input channels (1: mono).

    Raises:
        ValueError: a non-positive size, a kernel shorter than the stride, or an input too
            short for the convolutions (or for the phase shuffle) to act on.
    """

    samples: int = 8000
    width: int = 64
    layers: int = 4
    kernel: int = 25
    stride: int = 4
    negative_slope: float = 0.2
    phase_shuffle: int = 2
    channels: int = 1

    def __post_init__(self) -> None:
        if min(self.samples, self.width, self.layers, self.kernel, self.stride, self.channels) < 1:
            raise ValueError(f"WaveGANConfig sizes must be positive: {self}")
        if self.kernel < self.stride:
            raise ValueError(f"kernel {self.kernel} is shorter than stride {self.stride}: samples would be skipped")
        if self.phase_shuffle < 0:
            raise ValueError(f"phase_shuffle must be >= 0, got {self.phase_shuffle}")
        short = [i for i, n in enumerate(self.frames()[1:-1]) if n <= self.phase_shuffle]
        if short:
            raise ValueError(f"{self.samples} samples leave {self.frames()[short[0] + 1]} frames after convolution "
                             f"{short[0] + 1}: too few for a phase shuffle of {self.phase_shuffle}")

    def frames(self) -> list[int]:
        """Frames at the input and after each convolution: ``L_0 = samples``, ``L_{i+1} = ceil(L_i / stride)``."""
        out = [self.samples]
        for _ in range(self.layers):
            out.append(math.ceil(out[-1] / self.stride))
        return out

    def filters(self, i: int) -> int:
        """Output channels of convolution ``i`` (0-based): ``width * 2**i``."""
        return self.width * 2 ** i


class WaveGANDiscriminator(nn.Module):
    """WaveGAN's discriminator (Donahue et al. 2018, Table 4): ``(batch, C, samples)`` -> ``(batch, 1)``.

    ``layers`` times: conv (``kernel``, ``stride``, "same" padding) -> leaky ReLU -> phase
    shuffle (not after the last conv); then flatten and a dense layer to one linear output.
    For the default config (8000 samples, ``d = 64``, four layers) the maps are
    ``(64, 2000)``, ``(128, 500)``, ``(256, 125)``, ``(512, 32)`` and the dense layer has
    16384 inputs. See the module docstring for sources.
    """

    def __init__(self, config: WaveGANConfig = WaveGANConfig()) -> None:
        super().__init__()
        self.config = c = config
        self.convs = nn.ModuleList()
        cin = c.channels
        for i in range(c.layers):
            self.convs.append(nn.Conv1d(cin, c.filters(i), c.kernel, stride=c.stride, padding=c.kernel // 2))
            cin = c.filters(i)
        self.act = nn.LeakyReLU(c.negative_slope)
        self.shuffle = PhaseShuffle1d(c.phase_shuffle)
        self.out = nn.Linear(cin * c.frames()[-1], 1)

    def forward(self, x: Tensor) -> Tensor:
        """The logit (or critic value) of each example: ``(batch, 1)``.

        Raises:
            ValueError: ``x`` is not ``(batch, channels, samples)`` of the configured size.
        """
        c = self.config
        if x.dim() != 3 or x.shape[1] != c.channels or x.shape[2] != c.samples:
            raise ValueError(f"WaveGANDiscriminator expects (batch, {c.channels}, {c.samples}), got {tuple(x.shape)}")
        h = x
        for i, conv in enumerate(self.convs):
            h = self.act(conv(h))
            if i < len(self.convs) - 1:
                h = self.shuffle(h)
        return self.out(h.flatten(1))
