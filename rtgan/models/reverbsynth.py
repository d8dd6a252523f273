"""ReverbSynth (seed 004): GANSynth notes, dry or through a reverb, from one conditional generator.

Tatti & Bresee (2020) train GANSynth (Engel et al. 2019) on 4 s bass notes at 16 kHz, dry and
processed by a reverb, so that the generator produces processed audio directly. The networks
are their Tables 3 and 4 (GANSynth's progressive GAN, Karras et al. 2018):

* **generator** (Table 3): ``z`` (256, spherical Gaussian, pixel-normalised) concatenated with
  a one-hot pitch (and, beyond the seed, a one-hot processing label, ``dry``/``reverb``: the
  seed's own "future work"; both scaled to the latent's norm, ``balanced_conditioning``),
  mapped to a ``start_frames x start_mels`` map (the seed's 2x16 conv on the zero-padded 1x1
  input, which is a dense layer), then stages of 2x2 nearest
  ("box") upsampling and two 3x3 convolutions, each followed by leaky ReLU (0.2) and pixel
  normalisation (Karras et al. 2018 Sec. 4.2); a 1x1 convolution and tanh give the two
  IF-Mel channels (log mel magnitude and mel instantaneous frequency, :func:`rtgan.dsp.ifmel`)
  of ``frames x n_mels``: 128 x 1024 x 2 in the paper preset;
* **critic** (Table 4): the mirror, a 1x1 convolution in, stages of two 3x3 convolutions with
  leaky ReLU (and pixel norm, as Table 4 lists it; GANSynth's code leaves it out of the
  critic, config ``critic_pixel_norm``) and 2x2 average-pool downsampling, then the minibatch
  standard deviation as an extra channel (Karras et al. 2018 Sec. 3) and a head giving the
  Wasserstein score and auxiliary-classifier logits for the pitch and the label (Odena et
  al. 2017).

Every convolution uses the equalised learning rate of Karras et al. 2018 (Sec. 4.1): weights
drawn from N(0, 1) and scaled at run time by He's constant ``sqrt(2 / fan_in)``. Progressive
growing: :meth:`ReverbSynthGenerator.forward` and :meth:`ReverbSynthCritic.forward` take the
number of active stages ``level`` and the fade-in weight ``alpha`` of the newest one; the
recipe (:mod:`.reverbsynth_training`) sets the schedule.

This is a note model (kind ``"note"``): :meth:`ReverbSynthGenerator.render_note` turns
``(pitch, velocity, label, z)`` into 4 s of audio through the IF-Mel inverse
(:func:`rtgan.dsp.ifmel_to_audio`); a voice engine plays it, nothing streams.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..dsp import IFMelSpec, ifmel_to_audio
from .base import NoteGenerator
from .params import Parameter
from .registry import register

__all__ = ["ReverbSynthConfig", "ReverbSynthGenerator", "ReverbSynthCritic", "PRESETS", "pixel_norm",
           "minibatch_stddev"]


@dataclass(frozen=True)
class ReverbSynthConfig:
    """Sizes of the ReverbSynth generator and critic (every default in one place: the paper preset).

    Attributes:
        sample_rate: audio rate in Hz (the seed's 16 kHz).
        n_fft, hop_length: IF-Mel STFT size and hop in samples (GANSynth: 2048, 512).
        n_mels: mel bins of the IF-Mel image (GANSynth: 1024 over 0-8 kHz).
        frames: STFT frames of a note (128: GANSynth's image of a 4 s note).
        audio_length: samples of a note (64000 = 4 s at 16 kHz, the seed's Table 2); the IF-Mel
            frames cover it (:class:`rtgan.dsp.IFMelSpec` pads it as GANSynth does).
        z_dim: latent size (256).
        pitch_min, pitch_max: MIDI pitches the generator is conditioned on (inclusive).
        labels: processing labels (``dry``, ``reverb``); ``()`` conditions on pitch alone (the seed).
        start_frames, start_mels: the first stage's map (2 x 16, "high frequency resolution").
        channels: filters of each stage, lowest resolution first (Table 3: 256 x4, 128, 64, 32);
            the number of stages sets the growth: ``frames = start_frames * 2**(stages-1)``.
        leaky: leaky ReLU slope (0.2).
        critic_pixel_norm: pixel norm after the critic's convolutions (Table 4 lists it).
        release_ms: fade applied at note-off by the voice engine, ms.
        balanced_conditioning: scale the one-hot pitch and label by ``sqrt(z_dim)``, so that each
            carries as much of the first layer's input as the pixel-normalised latent (norm
            ``sqrt(z_dim)``). With plain one-hots (``False``, GANSynth's concatenation) the pitch is
            one input of unit size beside ``z_dim`` of them, about 1/129 of the input variance in
            the ``small`` preset; under the equalised learning rate (Adam moves every raw weight by
            at most about ``lr`` a step) a generator needs thousands of steps before its output
            depends on the pitch: after 1200 steps of an L1 regression toward real notes, the
            ``small`` generator's output changed by 0.005 (mean absolute, network units) between
            two pitches whose real notes differ by 0.17; balanced, 0.03 after 300 steps and 0.10
            after 2500 (README, reverbsynth).

    Raises:
        ValueError: sizes that do not fit together (frames / mels vs the stages), non-positive sizes,
            an empty or inverted pitch range, duplicate labels.
    """

    sample_rate: int = 16000
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 1024
    frames: int = 128
    audio_length: int = 64000
    z_dim: int = 256
    pitch_min: int = 28
    pitch_max: int = 64
    labels: tuple[str, ...] = ("dry", "reverb")
    start_frames: int = 2
    start_mels: int = 16
    channels: tuple[int, ...] = (256, 256, 256, 256, 128, 64, 32)
    leaky: float = 0.2
    critic_pixel_norm: bool = True
    release_ms: float = 50.0
    balanced_conditioning: bool = True

    def __post_init__(self) -> None:
        # JSON (checkpoint metadata) gives lists: keep the configs comparable
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "labels", tuple(self.labels))
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels", "frames", "audio_length", "z_dim", "start_frames",
                     "start_mels"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ValueError(f"reverbsynth: {name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.channels or any(int(c) != c or c < 1 for c in self.channels):
            raise ValueError(f"reverbsynth: channels must be positive integers, got {self.channels!r}")
        grow = 2 ** (len(self.channels) - 1)
        if self.start_frames * grow != self.frames or self.start_mels * grow != self.n_mels:
            raise ValueError(f"reverbsynth: {len(self.channels)} stages grow {self.start_frames}x{self.start_mels} to "
                             f"{self.start_frames * grow}x{self.start_mels * grow}, not frames x n_mels = "
                             f"{self.frames}x{self.n_mels}")
        if not 0 <= self.pitch_min <= self.pitch_max <= 127:
            raise ValueError(f"reverbsynth: pitch range {self.pitch_min}..{self.pitch_max} is not within MIDI 0..127")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"reverbsynth: duplicate labels {self.labels!r}")
        if not 0.0 <= self.leaky < 1.0 or not self.release_ms >= 0.0:
            raise ValueError(f"reverbsynth: leaky must be in [0, 1) and release_ms >= 0, got {self.leaky}, "
                             f"{self.release_ms}")

    @property
    def stages(self) -> int:
        """Number of resolutions the networks grow through."""
        return len(self.channels)

    @property
    def n_pitches(self) -> int:
        """Pitches in the one-hot conditioning."""
        return self.pitch_max - self.pitch_min + 1

    @property
    def ifmel_spec(self) -> IFMelSpec:
        """The IF-Mel representation the generator writes (:class:`rtgan.dsp.IFMelSpec`)."""
        return IFMelSpec(sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length,
                         n_mels=self.n_mels, frames=self.frames, audio_length=self.audio_length,
                         fmax=self.sample_rate / 2.0)

    @property
    def samples(self) -> int:
        """Audio samples of one note (:attr:`audio_length`)."""
        return self.audio_length

    def resolution(self, level: int) -> tuple[int, int]:
        """``(frames, mels)`` of the image at ``level`` active stages (1 .. :attr:`stages`)."""
        s = 2 ** (level - 1)
        return self.start_frames * s, self.start_mels * s


#: presets: ``paper`` (seed 004's Tables 3-4, GPU); ``small`` (CPU: a 64 x 256 image, hop 1024,
#: 6 stages, narrower; its IF-Mel round trip on the note set keeps the pitch within 0.1
#: semitone but smears timbre, spectral convergence 0.53 against the paper image's 0.12: README);
#: ``tiny`` (tests: 16 frames x 32 mels of a 1024-sample note).
PRESETS = {
    "paper": ReverbSynthConfig(),
    "small": ReverbSynthConfig(hop_length=1024, frames=64, n_mels=256, start_mels=8, z_dim=128,
                               channels=(128, 96, 64, 32, 16, 8)),
    "tiny": ReverbSynthConfig(n_fft=256, hop_length=64, n_mels=32, frames=16, audio_length=1024, z_dim=16, start_mels=4,
                              channels=(16, 16, 8, 8)),
}


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pixelwise feature normalisation (Karras et al. 2018, Sec. 4.2, eq. in text).

    ``b = a / sqrt(mean_j a_j^2 + eps)`` over the channel axis (dim 1) at every position.
    Shapes: ``(batch, channels, ...)`` -> the same.
    """
    return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + eps)


def minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Minibatch standard deviation as one extra channel (Karras et al. 2018, Sec. 3).

    Within groups of ``group`` examples (the whole batch when it does not divide into them),
    the standard deviation of every feature at every position, averaged to one number per
    group, is appended as a constant channel. ``(batch, c, h, w)`` -> ``(batch, c + 1, h, w)``.
    """
    b, c, h, w = x.shape
    g = group if b % group == 0 and b >= group else b
    y = x.reshape(g, b // g, c, h, w)
    std = torch.sqrt(torch.var(y, dim=0, unbiased=False) + 1e-8)  # (b/g, c, h, w)
    s = std.mean(dim=(1, 2, 3))  # (b/g,)
    s = s.repeat(g).reshape(b, 1, 1, 1).expand(b, 1, h, w)
    return torch.cat([x, s], dim=1)


class EqConv2d(nn.Module):
    """2-D convolution with the equalised learning rate (Karras et al. 2018, Sec. 4.1).

    Weights ``~ N(0, 1)`` scaled in the forward pass by ``sqrt(2 / fan_in)`` (He et al. 2015);
    bias zero. ``(batch, c_in, h, w)`` -> ``(batch, c_out, h, w)`` ("same" padding, odd kernel).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, gain: float = math.sqrt(2.0)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = gain / math.sqrt(c_in * kernel * kernel)
        self.pad = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)


class EqLinear(nn.Module):
    """Dense layer with the equalised learning rate (see :class:`EqConv2d`). ``(batch, n_in)`` -> ``(batch, n_out)``."""

    def __init__(self, n_in: int, n_out: int, gain: float = math.sqrt(2.0)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.scale = gain / math.sqrt(n_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def _check_level(cfg: ReverbSynthConfig, level: int | None, alpha: float) -> int:
    level = cfg.stages if level is None else int(level)
    if not 1 <= level <= cfg.stages:
        raise ValueError(f"reverbsynth: level must be in 1..{cfg.stages}, got {level}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"reverbsynth: alpha must be in [0, 1], got {alpha}")
    return level


@register("reverbsynth", ReverbSynthConfig, PRESETS,
          "GANSynth bass notes, dry or reverberant, from one pitch- and label-conditioned generator (seed 004)")
class ReverbSynthGenerator(NoteGenerator):
    """Seed 004's generator (Table 3), conditioned on pitch and processing label.

    Live parameters (played by :class:`rtgan.engine.voices.VoiceProcessor`): ``morph`` moves the
    latent from one seed to another (spherical interpolation), ``reverb`` picks the label of the
    next notes (dry below 0.5, reverb from 0.5).

    ``forward(z, pitch, label, level, alpha)``: ``z`` ``(batch, z_dim)``, ``pitch`` and ``label``
    class indices ``(batch,)`` (pitch index = MIDI pitch - ``pitch_min``) -> IF-Mel image
    ``(batch, 2, frames_l, mels_l)`` in [-1, 1] at the resolution of ``level`` active stages
    (normalised: :meth:`denormalise` maps it to log magnitude and IF).
    """

    live_parameters = (
        Parameter("morph", 0.0, 1.0, 0.0, "", "timbre: the latent from seed A (0) to seed B (1)"),
        Parameter("reverb", 0.0, 1.0, 0.0, "", "label of the next notes: dry below 0.5, reverb from 0.5"),
    )

    def __init__(self, config: ReverbSynthConfig) -> None:
        super().__init__()
        self.config = c = config
        n_cond = c.z_dim + c.n_pitches + len(c.labels)
        ch = c.channels
        self.first = EqLinear(n_cond, ch[0] * c.start_frames * c.start_mels, gain=math.sqrt(2.0) / 4)
        self.first_conv = EqConv2d(ch[0], ch[0], 3)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqConv2d(ch[s - 1], ch[s], 3), EqConv2d(ch[s], ch[s], 3)]) for s in range(1, c.stages))
        self.to_out = nn.ModuleList(EqConv2d(ch[s], 2, 1, gain=1.0) for s in range(c.stages))
        # affine map between the network's [-1, 1] and (log magnitude, IF): x = centre + half * y,
        # set from training data by the recipe (persistent: saved with the weights)
        self.register_buffer("norm_centre", torch.tensor([-6.0, 0.0]))
        self.register_buffer("norm_half", torch.tensor([8.0, 1.0]))

    # ------------------------------------------------------------------ note-model contract
    @property
    def sample_rate_out(self) -> int:
        """Output sample rate in Hz."""
        return int(self.config.sample_rate)

    @property
    def note_samples(self) -> int:
        """Samples of one rendered note."""
        return self.config.samples

    @property
    def pitch_range(self) -> tuple[int, int]:
        """Lowest and highest MIDI pitch the model renders (inclusive)."""
        return self.config.pitch_min, self.config.pitch_max

    @property
    def labels(self) -> tuple[str, ...]:
        """Processing labels (``dry``, ``reverb``)."""
        return self.config.labels

    # ------------------------------------------------------------------ network
    def _conditioning(self, z: torch.Tensor, pitch: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        c = self.config
        if z.dim() != 2 or z.shape[1] != c.z_dim:
            raise ValueError(f"reverbsynth: z must be (batch, {c.z_dim}), got {tuple(z.shape)}")
        b = z.shape[0]
        if pitch.shape != (b,) or label.shape != (b,):
            raise ValueError(f"reverbsynth: pitch and label must be ({b},) class indices, got "
                             f"{tuple(pitch.shape)}, {tuple(label.shape)}")
        if bool(((pitch < 0) | (pitch >= c.n_pitches)).any()):
            raise ValueError(f"reverbsynth: pitch index outside 0..{c.n_pitches - 1} "
                             f"(MIDI {c.pitch_min}..{c.pitch_max})")
        if c.labels and bool(((label < 0) | (label >= len(c.labels))).any()):
            raise ValueError(f"reverbsynth: label index outside 0..{len(c.labels) - 1} ({', '.join(c.labels)})")
        gain = math.sqrt(c.z_dim) if c.balanced_conditioning else 1.0
        parts = [pixel_norm(z), gain * F.one_hot(pitch.long(), c.n_pitches).to(z.dtype)]
        if c.labels:
            parts.append(gain * F.one_hot(label.long(), len(c.labels)).to(z.dtype))
        return torch.cat(parts, dim=1)

    def forward(self, z: torch.Tensor, pitch: torch.Tensor, label: torch.Tensor, level: int | None = None,
                alpha: float = 1.0) -> torch.Tensor:
        """IF-Mel image ``(batch, 2, frames_l, mels_l)`` in [-1, 1] (see the class docstring).

        Raises:
            ValueError: bad shapes, a pitch or label index out of range, ``level`` outside
                ``1..stages``, ``alpha`` outside [0, 1].
        """
        c = self.config
        level = _check_level(c, level, alpha)
        act = lambda t: pixel_norm(F.leaky_relu(t, c.leaky))  # noqa: E731
        h = self.first(self._conditioning(z, pitch, label)).reshape(z.shape[0], c.channels[0], c.start_frames,
                                                                     c.start_mels)
        h = act(self.first_conv(act(h)))
        prev = None
        for s in range(1, level):
            prev = h
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            conv1, conv2 = self.blocks[s - 1]
            h = act(conv2(act(conv1(h))))
        y = torch.tanh(self.to_out[level - 1](h))
        if alpha < 1.0 and prev is not None:
            low = F.interpolate(torch.tanh(self.to_out[level - 2](prev)), scale_factor=2.0, mode="nearest")
            y = alpha * y + (1.0 - alpha) * low
        return y

    def denormalise(self, y: torch.Tensor) -> torch.Tensor:
        """Network output ``(batch, 2, frames, n_mels)`` in [-1, 1] -> log mel magnitude and mel IF."""
        return self.norm_centre.view(1, 2, 1, 1) + self.norm_half.view(1, 2, 1, 1) * y

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`denormalise`: IF-Mel ``(batch, 2, frames, n_mels)`` -> the network's range (clamped to [-1, 1])."""
        return torch.clamp((x - self.norm_centre.view(1, 2, 1, 1)) / self.norm_half.view(1, 2, 1, 1), -1.0, 1.0)

    def upsample_to_full(self, y: torch.Tensor) -> torch.Tensor:
        """An image at a lower level, nearest-upsampled to ``frames x n_mels`` (the full image)."""
        factor = self.config.frames // y.shape[-2]
        return y if factor == 1 else F.interpolate(y, scale_factor=float(factor), mode="nearest")

    def label_index(self, label: str | int | None) -> int:
        """Index of a processing label (a name or an index; ``None``: the first label, ``dry``).

        Raises:
            ValueError: an unknown label.
        """
        labels = self.config.labels
        if label is None:
            return 0
        if isinstance(label, str):
            if label not in labels:
                raise ValueError(f"reverbsynth: unknown label {label!r}; labels: {', '.join(labels) or 'none'}")
            return labels.index(label)
        if not 0 <= int(label) < max(len(labels), 1):
            raise ValueError(f"reverbsynth: label index {label} outside 0..{max(len(labels), 1) - 1}")
        return int(label)

    @torch.no_grad()
    def render_note(self, pitch: int, velocity: float = 1.0, label: str | int | None = None,
                    z: torch.Tensor | None = None, seed: int | None = None) -> torch.Tensor:
        """One note as audio ``(samples,)`` float32 at :attr:`sample_rate_out`, ``samples = audio_length``.

        The generator's IF-Mel image (full resolution) denormalised and inverted by
        :func:`rtgan.dsp.ifmel_to_audio` (GANSynth's inverse: mel to linear, phase from the
        cumulative sum of the instantaneous frequency, inverse STFT), times ``velocity``.

        Args:
            pitch: MIDI pitch in ``pitch_range``.
            velocity: linear gain in [0, 1] (a MIDI velocity divided by 127).
            label: processing label name or index (default the first, ``dry``).
            z: latent ``(z_dim,)``; drawn from N(0, 1) with ``seed`` when omitted.
            seed: seed for ``z`` (default: torch's global generator).

        Raises:
            ValueError: a pitch outside the range, a velocity outside [0, 1], an unknown label,
                a ``z`` of the wrong size.
        """
        c = self.config
        if int(pitch) != pitch or not c.pitch_min <= pitch <= c.pitch_max:
            raise ValueError(f"reverbsynth: pitch {pitch} outside the model's range {c.pitch_min}..{c.pitch_max}")
        if not (0.0 <= float(velocity) <= 1.0):
            raise ValueError(f"reverbsynth: velocity (gain) must be in [0, 1], got {velocity}")
        p = next(self.parameters())
        if z is None:
            g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
            z = torch.randn(c.z_dim, generator=g)
        if z.shape != (c.z_dim,):
            raise ValueError(f"reverbsynth: z must be ({c.z_dim},), got {tuple(z.shape)}")
        lab = torch.tensor([self.label_index(label)], device=p.device)
        y = self(z.to(p.device, p.dtype)[None], torch.tensor([int(pitch) - c.pitch_min], device=p.device), lab)
        audio = ifmel_to_audio(self.denormalise(y).float(), c.ifmel_spec)[0]
        return (float(velocity) * audio).float()


class ReverbSynthCritic(nn.Module):
    """Seed 004's critic (Table 4) with auxiliary classifiers for pitch and label (Odena et al. 2017).

    ``forward(x, level, alpha)``: IF-Mel image ``(batch, 2, frames_l, mels_l)`` at ``level``
    -> ``(score (batch,), pitch_logits (batch, n_pitches), label_logits (batch, n_labels))``.
    The minibatch standard deviation makes a score depend on the other examples of its group
    (as in the progressive GAN, which trains it with WGAN-GP all the same).
    """

    def __init__(self, config: ReverbSynthConfig) -> None:
        super().__init__()
        self.config = c = config
        ch = c.channels
        self.from_in = nn.ModuleList(EqConv2d(2, ch[s], 1) for s in range(c.stages))
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqConv2d(ch[s], ch[s], 3), EqConv2d(ch[s], ch[s - 1], 3)]) for s in range(1, c.stages))
        self.head_conv = EqConv2d(ch[0] + 1, ch[0], 3)
        self.head_dense = EqLinear(ch[0] * c.start_frames * c.start_mels, ch[0])
        self.out = EqLinear(ch[0], 1 + c.n_pitches + len(c.labels), gain=1.0)

    def _act(self, t: torch.Tensor) -> torch.Tensor:
        t = F.leaky_relu(t, self.config.leaky)
        return pixel_norm(t) if self.config.critic_pixel_norm else t

    def _block(self, s: int, h: torch.Tensor) -> torch.Tensor:
        conv1, conv2 = self.blocks[s - 1]
        return F.avg_pool2d(self._act(conv2(self._act(conv1(h)))), 2)

    def forward(self, x: torch.Tensor, level: int | None = None,
                alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Score and auxiliary logits (see the class docstring).

        Raises:
            ValueError: an image whose size is not the resolution of ``level``, a bad ``level`` or ``alpha``.
        """
        c = self.config
        level = _check_level(c, level, alpha)
        if x.dim() != 4 or x.shape[1] != 2 or tuple(x.shape[-2:]) != c.resolution(level):
            raise ValueError(f"reverbsynth critic: expected (batch, 2, {c.resolution(level)[0]}, "
                             f"{c.resolution(level)[1]}) at level {level}, got {tuple(x.shape)}")
        r = level - 1
        h = self._act(self.from_in[r](x))
        if r > 0:
            h = self._block(r, h)
            if alpha < 1.0:
                h = alpha * h + (1.0 - alpha) * self._act(self.from_in[r - 1](F.avg_pool2d(x, 2)))
            for s in range(r - 1, 0, -1):
                h = self._block(s, h)
        h = self._act(self.head_conv(minibatch_stddev(h)))
        h = F.leaky_relu(self.head_dense(h.flatten(1)), c.leaky)
        out = self.out(h)
        n_p = c.n_pitches
        return out[:, 0], out[:, 1:1 + n_p], out[:, 1 + n_p:]
