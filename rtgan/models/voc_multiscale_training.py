"""Training of voc-multiscale (seed 003): band discriminators with frozen filter banks, conditioned on the mel.

The discriminator of seed 003's code (``FilterBankMultiScaleDiscriminator``), with its sizes in
:class:`BandDiscriminatorConfig`: for each band ``k`` (real bands from
:func:`rtgan.models.voc_multiscale.split_bands`, generated ones from the band generators), a
frozen filter-bank conv (the same Morlet filters as the generator's last layer, 128 taps,
centred), four convs of kernel 7 whose strides are the band generator's upsampling factors
(so every band ends at the mel's frame rate), the conditioning mel concatenated, three convs of
kernel 3 and a judging conv to one channel (a logit per mel frame); and a global judge over the
five bands' last features and the mel (three convs of kernel 3, then one channel). Leaky ReLU
(0.2) after every hidden conv. Six logit maps in all; the features after every hidden conv
serve feature matching.

Losses (seed 003's code): least squares, ``L_D = sum_j 1/2 (mean (D_j(y) - 1)^2 + mean D_j(G(s))^2)``
and ``L_G = sum_j 1/2 mean (D_j(G(s)) - 1)^2 + 10 L_FM`` with ``L_FM`` the mean over the six
feature groups of the mean over each group's layers of the L1 distance (real features
detached); Adam 1e-4, betas (0.5, 0.9); weights initialised from N(0, 0.02), biases 0 (its
``weights_init``); no weight norm. The ``fast`` recipe adds the mel L1 of the summed output
(through the resample-and-sum) and a reconstruction warm-up, as voc-melgan's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import feature_matching_loss, lsgan_discriminator_loss, lsgan_generator_loss
from .recipe import Recipe, TrainConfig
from .registry import build, make_config, register_recipe
from .voc_melgan_training import VocoderData, VocoderTrainConfig
from .voc_multiscale import MultiScaleConfig, MultiScaleGenerator, filter_bank, split_bands  # noqa: F401


@dataclass(frozen=True)
class BandDiscriminatorConfig:
    """Sizes of :class:`BandDiscriminator` (seed 003: 128 channels per band, 512 in the global judge).

    Attributes:
        channels: hidden channels of each band's convs.
        global_channels: hidden channels of the global judge.
        leaky: leaky-ReLU slope (0.2).

    Raises:
        ValueError: sizes < 1.
    """

    channels: int = 128
    global_channels: int = 512
    leaky: float = 0.2

    def __post_init__(self) -> None:
        if min(self.channels, self.global_channels) < 1:
            raise ValueError(f"discriminator sizes must be >= 1: {self}")


class _Band(nn.Module):
    def __init__(self, gen: MultiScaleConfig, k: int, c: BandDiscriminatorConfig) -> None:
        super().__init__()
        bank = torch.from_numpy(filter_bank(gen, k)).float()[:, None, :]
        self.register_buffer("bank", bank, persistent=False)  # frozen; rebuilt from the generator's config
        self.pad = gen.taps // 2
        chans = [gen.filters] + [c.channels] * len(gen.factors[k])
        self.down = nn.ModuleList(nn.Conv1d(chans[i], chans[i + 1], 7, stride=f, padding=3)
                                  for i, f in enumerate(gen.factors[k]))
        self.post = nn.ModuleList([nn.Conv1d(c.channels + gen.mel.n_mels, c.channels, 3, padding=1),
                                   nn.Conv1d(c.channels, c.channels, 3, padding=1),
                                   nn.Conv1d(c.channels, c.channels, 3, padding=1)])
        self.judge = nn.Conv1d(c.channels, 1, 3, padding=1)
        self.leaky = c.leaky

    def forward(self, band: torch.Tensor, mel: torch.Tensor):
        n = band.shape[-1]
        h = F.conv1d(band, self.bank.to(band.dtype), padding=self.pad)[..., :n]
        feats = []
        for conv in self.down:
            h = F.leaky_relu(conv(h), self.leaky)
            feats.append(h)
        h = torch.cat([h, mel], dim=1)
        for conv in self.post:
            h = F.leaky_relu(conv(h), self.leaky)
            feats.append(h)
        return self.judge(h).flatten(1), feats, h


class BandDiscriminator(nn.Module):
    """Seed 003's multi-scale filter-bank discriminator (see the module docstring).

    Shapes:
        forward ``(bands, mel)``: bands as :meth:`MultiScaleGenerator.bands` gives them (lowest
        first, ``(batch, 1, frames * hop / decimation)``), mel ``(batch, n_mels, frames)`` ->
        ``(six logit maps (batch, frames), six feature-map lists)``, the global judge last.

    Raises:
        ValueError: a different number of bands than the config's, or bands that do not end at
            the mel's frame count.
    """

    def __init__(self, gen: MultiScaleConfig, config: BandDiscriminatorConfig = BandDiscriminatorConfig()) -> None:
        super().__init__()
        self.config = config
        self.bands = nn.ModuleList(_Band(gen, k, config) for k in range(gen.bands))
        c, g = config.channels, config.global_channels
        self.post = nn.ModuleList([nn.Conv1d(c * gen.bands + gen.mel.n_mels, g, 3, padding=1),
                                   nn.Conv1d(g, g, 3, padding=1), nn.Conv1d(g, g, 3, padding=1)])
        self.judge = nn.Conv1d(g, 1, 3, padding=1)
        self.leaky = config.leaky

    def forward(self, bands: list[torch.Tensor], mel: torch.Tensor):
        if len(bands) != len(self.bands):
            raise ValueError(f"expected {len(self.bands)} bands, got {len(bands)}")
        logits, feats, hidden = [], [], []
        for d, b in zip(self.bands, bands):
            score, f, h = d(b, mel)
            if h.shape[-1] != mel.shape[-1]:
                raise ValueError(f"a band of {b.shape[-1]} samples ends at {h.shape[-1]} frames, the mel has "
                                 f"{mel.shape[-1]}")
            logits.append(score)
            feats.append(f)
            hidden.append(h)
        h = torch.cat([*hidden, mel], dim=1)
        group = []
        for conv in self.post:
            h = F.leaky_relu(conv(h), self.leaky)
            group.append(h)
        logits.append(self.judge(h).flatten(1))
        feats.append(group)
        return logits, feats


def seed_feature_matching(real_feats, fake_feats) -> torch.Tensor:
    """Seed 003's feature matching: the mean over groups of the mean over a group's layers of ``mean |r - f|``.

    (:func:`rtgan.losses.feature_matching_loss` sums instead; each group is divided by its
    layers and the total by the groups.)
    """
    total = None
    for r, f in zip(real_feats, fake_feats):
        term = feature_matching_loss([r], [f]) / len(r)
        total = term if total is None else total + term
    return total / len(real_feats)


@dataclass(frozen=True)
class MultiScaleTrainConfig(VocoderTrainConfig):
    """voc-multiscale's training: :class:`VocoderTrainConfig` with its band discriminator."""

    model: str = "voc-multiscale"
    discriminator: BandDiscriminatorConfig = BandDiscriminatorConfig()

    @classmethod
    def disc_config_cls(cls) -> type:
        return BandDiscriminatorConfig

    @classmethod
    def discriminator_widths(cls) -> dict[str, object]:
        """``full`` (seed 003: 128 / 512), ``small`` (32 / 128, CPU), ``tiny`` (4 / 8)."""
        return {"full": BandDiscriminatorConfig(), "small": BandDiscriminatorConfig(32, 128),
                "tiny": BandDiscriminatorConfig(4, 8)}


def init_normal_(net: nn.Module, std: float = 0.02) -> nn.Module:
    """Seed 003's ``weights_init``: every trainable conv weight from N(0, std), biases 0 (in place)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)) and m.weight.requires_grad:
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


@register_recipe("voc-multiscale")
class VocMultiScaleRecipe(VocoderData, Recipe):
    """voc-multiscale's training (see the module docstring).

    Networks ``generator`` (:class:`MultiScaleGenerator`) and ``discriminator``
    (:class:`BandDiscriminator`). Examples ``(y,)``: audio ``(1, 8192)``; the real bands are
    split from ``y`` on the fly. ``generate`` returns ``(bands, mel)``. Validation as voc-melgan's
    (the summed output's log-mel L1 and MR-STFT distance).
    """

    config_cls: ClassVar[type[TrainConfig]] = MultiScaleTrainConfig

    def networks(self):
        nets = {"generator": init_normal_(build(self.cfg.model, self.cfg.preset))}
        if self.cfg.adversarial:
            gen = make_config(self.cfg.model, self.cfg.preset)
            nets["discriminator"] = init_normal_(BandDiscriminator(gen, self.cfg.discriminator))
        return nets

    def generate(self, nets, batch):
        g = nets["generator"]
        mel = g.mel(batch[0])
        return g.bands(mel), mel

    def critic_loss(self, nets, batch, fake, step):
        d, g = nets["discriminator"], nets["generator"]
        bands, mel = fake
        real, _ = d(split_bands(batch[0], g.config), mel)
        gen, _ = d(bands, mel)
        loss = 0.5 * lsgan_discriminator_loss([r.float() for r in real], [f.float() for f in gen])
        return loss, {"disc": float(loss.detach())}

    def generator_loss(self, nets, batch, out, step):
        g, y = nets["generator"], batch[0]
        bands, mel = out
        loss, terms = self.reconstruction_loss(nets, g.combine(bands).float(), y)
        if self.adversarial(step):
            d = nets["discriminator"]
            fake_logits, fake_feats = d(bands, mel)
            with torch.no_grad():
                _, real_feats = d(split_bands(y, g.config), mel)
            adv = 0.5 * lsgan_generator_loss([f.float() for f in fake_logits])
            fm = seed_feature_matching(real_feats, fake_feats)
            loss = loss + self.cfg.weights.adv * adv + self.cfg.weights.feature_matching * fm
            terms.update(gen_adv=float(adv.detach()), gen_fm=float(fm.detach()))
        terms["gen_total"] = float(loss.detach())
        return loss, terms


__all__ = ["BandDiscriminatorConfig", "BandDiscriminator", "MultiScaleTrainConfig", "VocMultiScaleRecipe",
           "seed_feature_matching", "init_normal_"]
