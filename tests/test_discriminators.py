"""Tests for rtgan.models.discriminators (tiny preset, CPU)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.utils import parametrize

from rtgan.models.discriminators import (
    DiscriminatorConfig,
    HiFiGANDiscriminator,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    PeriodDiscriminator,
    ScaleDiscriminator,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_disc() -> HiFiGANDiscriminator:
    torch.manual_seed(0)
    return HiFiGANDiscriminator(DiscriminatorConfig.tiny())


def test_hifigan_output_structure(tiny_disc):
    batch, length = 2, 3000
    logits, feats = tiny_disc(torch.randn(batch, 1, length))
    assert len(logits) == 5 + 3 == tiny_disc.n_discriminators
    assert len(feats) == 8
    # MPD: 5 hidden convs + post conv; MSD: 7 hidden convs + post conv
    assert [len(f) for f in feats] == [6] * 5 + [8] * 3
    for score in logits:
        assert score.dim() == 2 and score.shape[0] == batch and score.shape[1] > 0
    # period p: the last axis of every 2-D feature map is p, and the time axis
    # shrinks by the stride 3 of the first four convs
    for p, fmap in zip((2, 3, 5, 7, 11), feats[:5]):
        rows = math.ceil(length / p)
        expected_rows = [rows]
        for _ in range(4):
            expected_rows.append((expected_rows[-1] - 1) // 3 + 1)
        assert [f.shape[-1] for f in fmap] == [p] * 6
        assert [f.shape[2] for f in fmap[:5]] == expected_rows[1:] + [expected_rows[-1]]
        assert [f.shape[1] for f in fmap] == [8, 16, 32, 32, 32, 1]
    # MSD: raw, then two AvgPool1d(4, 2, padding=2) stages; total stride 64
    scale_lengths = [length, length // 2 + 1, (length // 2 + 1) // 2 + 1]
    for n, fmap in zip(scale_lengths, feats[5:]):
        assert [f.shape[1] for f in fmap] == [8, 16, 16, 32, 32, 32, 32, 1]
        assert fmap[-1].shape[-1] == math.ceil(n / 64)


def test_hifigan_backward_reaches_all_parameters(tiny_disc):
    tiny_disc.zero_grad()
    y = torch.randn(2, 1, 2048, requires_grad=True)
    logits, feats = tiny_disc(y)
    loss = sum(torch.mean((s - 1) ** 2) for s in logits) + sum(f.abs().mean() for fm in feats for f in fm)
    loss.backward()
    assert torch.all(torch.isfinite(y.grad)) and y.grad.abs().max() > 0
    for name, param in tiny_disc.named_parameters():
        assert param.grad is not None, name
        assert torch.all(torch.isfinite(param.grad)), name


def test_period_discriminator_only_mixes_samples_one_period_apart():
    torch.manual_seed(1)
    period = 3
    disc = PeriodDiscriminator(period, channels=(4, 4, 4, 4, 4))
    y = torch.randn(1, 1, 300)  # multiple of the period: no padding
    y2 = y.clone()
    y2[..., 3 * 40 + 1] += 1.0  # perturb one sample of phase 1
    with torch.no_grad():
        a, _ = disc(y)
        b, _ = disc(y2)
    changed = (a - b).abs().view(1, -1, period).amax(dim=1)[0]
    assert changed[1] > 0
    assert changed[0] == 0 and changed[2] == 0


def test_period_discriminator_pads_non_multiple_and_short_inputs():
    disc = PeriodDiscriminator(7, channels=(4, 4, 4, 4, 4))
    for length in (100, 3, 1):
        score, feats = disc(torch.randn(2, 1, length))
        assert feats[0].shape[-1] == 7 and feats[0].shape[2] == math.ceil(math.ceil(length / 7) / 3)
        assert score.shape[0] == 2


def test_normalisations_follow_hifigan():
    msd = MultiScaleDiscriminator(channels=(8, 16, 16, 32, 32, 32, 32))
    mpd = MultiPeriodDiscriminator(periods=(2, 3), channels=(4, 4, 4, 4, 4))

    def norm_kind(conv) -> str:
        assert parametrize.is_parametrized(conv, "weight")
        return type(conv.parametrizations.weight[0]).__name__

    assert "Spectral" in norm_kind(msd.discriminators[0].convs[0])
    for disc in list(msd.discriminators[1:]) + list(mpd.discriminators):
        for conv in list(disc.convs) + [disc.conv_post]:
            assert "WeightNorm" in norm_kind(conv)


def test_default_sizes_match_paper_layer_widths():
    # Coldenhoff & Ren Sec. III-A/B: MPD outputs [32,128,512,1024,1024,1];
    # MSD outputs [128,128,256,512,1024,1024,1024,1]; strides / groups as HiFi-GAN.
    cfg = DiscriminatorConfig()
    assert cfg.periods == (2, 3, 5, 7, 11) and cfg.n_scales == 3
    disc = ScaleDiscriminator()
    assert [c.out_channels for c in disc.convs] + [disc.conv_post.out_channels] == [
        128, 128, 256, 512, 1024, 1024, 1024, 1
    ]
    assert [c.kernel_size[0] for c in disc.convs] == [15, 41, 41, 41, 41, 41, 5]
    assert [c.stride[0] for c in disc.convs] == [1, 2, 2, 4, 4, 1, 1]
    assert [c.groups for c in disc.convs] == [1, 4, 16, 16, 16, 16, 1]
    pdisc = PeriodDiscriminator(2)
    assert [c.out_channels for c in pdisc.convs] + [pdisc.conv_post.out_channels] == [32, 128, 512, 1024, 1024, 1]
    assert [c.stride for c in pdisc.convs] == [(3, 1)] * 4 + [(1, 1)]
    assert [c.kernel_size for c in pdisc.convs] == [(5, 1)] * 5 and pdisc.conv_post.kernel_size == (3, 1)


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="shape"):
        HiFiGANDiscriminator(DiscriminatorConfig.tiny())(torch.randn(2, 100))
    with pytest.raises(ValueError, match="groups"):
        ScaleDiscriminator(channels=(6, 6, 6, 6, 6, 6, 6))
    with pytest.raises(ValueError):
        DiscriminatorConfig(periods=())
    with pytest.raises(ValueError):
        DiscriminatorConfig(msd_channels=(8, 16))
    with pytest.raises(ValueError):
        DiscriminatorConfig(n_scales=0)
    with pytest.raises(ValueError):
        PeriodDiscriminator(0)
