"""voc-melgan: the MelGAN vocoder (Kumar et al. 2019) as seed 003 trains it for music, streamable.

Seed 003 (Vinyard 2020, "Music vocoder with conditional GANs", "First attempt") trains MelGAN
"mostly as-is" to turn 128-bin log-mel spectrograms of music at 22 050 Hz into audio. The
generator of Kumar et al. (2019, "MelGAN: Generative adversarial networks for conditional
waveform synthesis", Sec. 2.1 and Appendix A, Table 4):

* **Front end** (part of the graph, streamed with it): :class:`.layers.mel.LogMel1d`, seed 003's
  log10 mel (n_fft 1024, hop 256, 128 bands). ``forward`` takes audio and resynthesises it
  (audio -> mel -> generator -> audio, the live use); :meth:`MelGANGenerator.vocode` takes a mel.
* an input conv of kernel 7 to ``channels`` (MelGAN: 512);
* four upsampling stages with factors ``ratios`` (MelGAN: 8, 8, 2, 2; their product is the hop):
  leaky ReLU (0.2), a transposed conv of kernel ``2 f`` and stride ``f`` halving the channels,
  then a residual stack of dilated convs (kernel 3, dilations 1, 3, 9; each block: leaky ReLU,
  dilated conv, leaky ReLU, 1x1 conv, plus a 1x1-conv shortcut);
* leaky ReLU, an output conv of kernel 7 to one channel, tanh.

Weight norm (MelGAN trains with it on every layer) is applied by the recipe for training and
folded away in checkpoints (:mod:`.layers.weightnorm`), so this network is plain convs.
MelGAN's reflection padding becomes zero padding (a stream cannot reflect samples it has not
seen); ``padding="causal"`` removes every lookahead from the convs (the transposed convs then
add each input frame's contribution from its own granule on), so with the front end's mel
lookahead 0 the stream's latency is its block alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layers import Hold1d, PaddedConv1d, Reach, StateCursor, TransposedConv1d, align, cached_conv
from .layers.framegain import LevelInterpolator, frame_level
from .layers.mel import LogMel1d, MelConfig
from .registry import register
from .vocoder import MelVocoder


@dataclass(frozen=True)
class MelGANConfig:
    """Architecture of voc-melgan (Kumar et al. 2019, Table 4; every default in one place).

    Attributes:
        mel: the log-mel front end (seed 003's code: 22 050 Hz, n_fft 1024, hop 256, 128 bands,
            frame lookahead 768 samples).
        channels: channels after the input conv (MelGAN: 512); each upsampling stage halves them.
        ratios: upsampling factors of the stages (MelGAN: 8, 8, 2, 2); their product must equal
            the hop length.
        dilations: dilations of the residual blocks in each stage (MelGAN: 1, 3, 9).
        res_kernel: kernel of the dilated convs (3).
        input_kernel, output_kernel: kernels of the input and output convs (7, 7).
        padding: ``"centered"`` (MelGAN) or ``"causal"`` (no lookahead in the generator).
        negative_slope: leaky ReLU slope (0.2).
        upsample_hold: a zero-order hold of ``f`` taps after each transposed conv of stride ``f``
            (:class:`.layers.Hold1d`; Sugawara et al. 2018): not in MelGAN; it removes the buzz at
            the frame rate (86 Hz and its harmonics) that the transposed convs' phases leave
            until a long training has evened them out.
        frame_gain: the level of each mel frame is applied exactly instead of being learnt: the
            generator reads the mel with its frame level ``L_t`` subtracted (a level-free spectral
            shape) and its output is ``tanh(g(n) h(n))``, ``g(n)`` the frame gains ``10**L_t``
            interpolated linearly over each hop (a fixed transposed conv, causal in the causal
            presets: no added latency; before the first frame the gain is 0). Not in MelGAN.
            ``L_t`` is the log10 RMS of the frame's mel magnitudes, ``0.5 log10(mean_k 10**(2
            mel_kt))`` (:func:`.layers.framegain.frame_level`). A MelGAN of CPU size trained for
            an hour maps log-mel to level with a slope of 0.2-0.8 instead of 1 (frame energies of
            the output against the original's on validation music), whole clips 3-21 dB off;
            with this structure the network only shapes a unit-level signal.

    Raises:
        ValueError: ratios whose product is not the hop, too few channels to halve at every
            stage, an unknown padding or empty dilations.
    """

    mel: MelConfig = MelConfig()
    channels: int = 512
    ratios: tuple[int, ...] = (8, 8, 2, 2)
    dilations: tuple[int, ...] = (1, 3, 9)
    res_kernel: int = 3
    input_kernel: int = 7
    output_kernel: int = 7
    padding: str = "centered"
    negative_slope: float = 0.2
    upsample_hold: bool = False
    frame_gain: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.mel, dict):
            object.__setattr__(self, "mel", MelConfig(**self.mel))
        object.__setattr__(self, "ratios", tuple(int(r) for r in self.ratios))
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))
        prod = 1
        for r in self.ratios:
            prod *= r
        if not self.ratios or any(r < 1 for r in self.ratios) or prod != self.mel.hop_length:
            raise ValueError(f"ratios {self.ratios} must be >= 1 and multiply to the hop length {self.mel.hop_length}")
        if self.channels >> len(self.ratios) < 1:
            raise ValueError(f"{self.channels} channels cannot be halved {len(self.ratios)} times")
        if self.padding not in ("causal", "centered"):
            raise ValueError(f"padding must be 'causal' or 'centered', got {self.padding!r}")
        if not self.dilations:
            raise ValueError("need at least one dilation per residual stack")

    @property
    def sample_rate(self) -> int:
        """Audio rate in Hz (the mel front end's)."""
        return self.mel.sample_rate


PRESETS = {
    # Kumar et al. (2019) Table 4 on seed 003's mel (its code's frame alignment, lookahead 768):
    # 4.3 M parameters, for GPU training and offline rendering
    "paper": MelGANConfig(),
    # causal mel (window ends with its hop) and causal convs: latency = the block; half of
    # MelGAN's channels (1.2 M parameters) for one CPU thread; holds against the frame-rate
    # buzz; exact frame levels (frame_gain)
    "live": MelGANConfig(mel=MelConfig(lookahead=0), channels=256, padding="causal", upsample_hold=True,
                         frame_gain=True),
    # for tests: a few thousand parameters, centred convs (lookahead in every layer)
    "tiny": MelGANConfig(mel=MelConfig(lookahead=384), channels=32, ratios=(8, 8, 4), dilations=(1, 3),
                         frame_gain=True),
}


class ResidualBlock(nn.Module):
    """One block of MelGAN's residual stack: ``x -> s(x) + c2(act(c1(act(x))))`` (channels unchanged).

    ``c1``: dilated conv of kernel ``k``; ``c2`` and the shortcut ``s``: 1x1 convs
    (Kumar et al. 2019, Fig. 1 and Table 4).
    """

    def __init__(self, channels: int, kernel: int, dilation: int, padding: str, slope: float) -> None:
        super().__init__()
        self.act = nn.LeakyReLU(slope)
        self.conv = PaddedConv1d(channels, channels, kernel, padding, dilation=dilation)
        self.pointwise = nn.Conv1d(channels, channels, 1)
        self.shortcut = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.pointwise(self.act(self.conv(self.act(x))))

    def stream(self, x: torch.Tensor, delay: int, cur: StateCursor) -> tuple[torch.Tensor, int]:
        y, d = cached_conv(self.conv, self.act(x), delay, cur)
        (s, y), d = align([(self.shortcut(x), delay), (self.pointwise(self.act(y)), d)], cur)
        return s + y, d

    def reach(self, r: Reach) -> Reach:
        return self.conv.reach(r)


@register("voc-melgan", MelGANConfig, PRESETS,
          description="MelGAN vocoder for music from 128-bin log-mel at 22.05 kHz (Kumar et al. 2019; seed 003)")
class MelGANGenerator(MelVocoder):
    """Mel front end plus MelGAN's generator: audio ``(batch, 1, n)`` -> resynthesis ``(batch, 1, n)``.

    ``n`` must be a multiple of the hop length (256). :meth:`vocode` maps a log-mel
    ``(batch, n_mels, frames)`` to ``(batch, 1, frames * hop)``. See the module docstring and
    :class:`.vocoder.MelVocoder`.
    """

    def __init__(self, config: MelGANConfig = MelGANConfig()) -> None:
        super().__init__()
        self.config = c = config
        self.mel = LogMel1d(c.mel)
        self.act = nn.LeakyReLU(c.negative_slope)
        self.conv_in = PaddedConv1d(c.mel.n_mels, c.channels, c.input_kernel, c.padding)
        self.ups = nn.ModuleList()
        self.stacks = nn.ModuleList()
        ch = c.channels
        for r in c.ratios:
            self.ups.append(TransposedConv1d(ch, ch // 2, 2 * r, r, c.padding))
            ch //= 2
            self.stacks.append(nn.ModuleList(ResidualBlock(ch, c.res_kernel, d, c.padding, c.negative_slope)
                                             for d in c.dilations))
        self.conv_out = PaddedConv1d(ch, 1, c.output_kernel, c.padding)
        self.holds = nn.ModuleList(Hold1d(r) for r in c.ratios) if c.upsample_hold else None
        self.level_up = LevelInterpolator(c.mel.hop_length, c.padding) if c.frame_gain else None

    def frame_level(self, mel: torch.Tensor) -> torch.Tensor:
        """The frame levels ``L_t`` (:func:`.layers.framegain.frame_level`): ``(batch, 1, frames)``."""
        return frame_level(mel)

    def _hold(self, i: int, h: torch.Tensor) -> torch.Tensor:
        return h if self.holds is None else self.holds[i](h)

    def synthesize(self, mel: torch.Tensor) -> torch.Tensor:
        """MelGAN's generator on exactly these frames: ``(batch, n_mels, frames)`` -> ``(batch, 1, frames * hop)`` in [-1, 1]."""
        level = self.frame_level(mel) if self.level_up is not None else None
        h = self.conv_in(mel if level is None else mel - level)
        for i, (up, stack) in enumerate(zip(self.ups, self.stacks)):
            h = self._hold(i, up(self.act(h)))
            for block in stack:
                h = block(h)
        h = self.conv_out(self.act(h))
        return torch.tanh(h if level is None else self.level_up.scale(h, level))

    def stream_mel(self, mel: torch.Tensor, delay: int, cur: StateCursor) -> tuple[torch.Tensor, int]:
        """:meth:`synthesize` with explicit caches; delays in frames of each tensor."""
        level = self.frame_level(mel) if self.level_up is not None else None
        h, d = cached_conv(self.conv_in, mel if level is None else mel - level, delay, cur)
        for i, (up, stack) in enumerate(zip(self.ups, self.stacks)):
            h, d = up.stream(self.act(h), d, cur)
            if self.holds is not None:
                h, d = self.holds[i].stream(h, d, cur)
            for block in stack:
                h, d = block.stream(h, d, cur)
        h, d = cached_conv(self.conv_out, self.act(h), d, cur)
        if level is not None:
            h, d = self.level_up.stream_scale(h, d, level, delay, cur)
        return torch.tanh(h), d

    def vocode_reach(self, r: Reach = Reach()) -> Reach:
        """The rules of :meth:`synthesize` from ``r`` (default: in mel frames, for chunked vocoding)."""
        r0, r = r, self.conv_in.reach(r)
        for i, (up, stack) in enumerate(zip(self.ups, self.stacks)):
            r = up.reach(r)
            if self.holds is not None:
                r = self.holds[i].reach(r)
            for block in stack:
                r = block.reach(r)
        r = self.conv_out.reach(r)
        return r if self.level_up is None else r.merge(self.level_up.reach(r0))
