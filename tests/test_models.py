import dataclasses

import pytest
import torch

from rtgan.models import registry

from helpers import random_model
from rtgan.models.layers import Inception1d, PixelShuffle1d, PixelUnshuffle1d, split_filters
from rtgan.models.sr_hifigan import SRHiFiGANConfig, SRHiFiGANGenerator

MODELS = registry.available()


def test_registry_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        registry.register("sr-hifigan", SRHiFiGANConfig, {})(SRHiFiGANGenerator)


def test_registry_unknown_model_and_preset():
    with pytest.raises(KeyError, match="unknown model"):
        registry.build("no-such-model")
    with pytest.raises(KeyError, match="no preset"):
        registry.build("sr-hifigan", "huge")


def test_registry_rejects_unknown_override():
    with pytest.raises(TypeError):
        registry.build("sr-hifigan", "tiny", not_a_field=3)


def test_shuffle_roundtrip_and_layout():
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(2, 3, 8)
    down = PixelUnshuffle1d(2)(x)
    assert down.shape == (2, 6, 4)
    # channel c*2 + j at frame t holds channel c at frame 2t + j
    assert torch.equal(down[:, 1, :], x[:, 0, 1::2])
    assert torch.equal(down[:, 2, :], x[:, 1, 0::2])
    assert torch.equal(PixelShuffle1d(2)(down), x)
    with pytest.raises(ValueError):
        PixelUnshuffle1d(2)(torch.zeros(1, 1, 7))


def test_split_filters_keeps_paper_ratio():
    assert split_filters(64, (24, 24, 8, 8)) == (24, 24, 8, 8)
    assert sum(split_filters(48, (24, 24, 8, 8))) == 48


def test_inception_output_channels_and_length():
    block = Inception1d(5, 64, (3, 9, 27, 81), (24, 24, 8, 8), mode="centered")
    y = block(torch.randn(2, 5, 200))
    assert y.shape == (2, 64, 200)
    assert block.branch_filters == (24, 24, 8, 8)


@pytest.mark.parametrize("name", MODELS)
def test_generator_shapes(name):
    m = registry.build(name, "tiny")
    s = m.total_stride
    x = torch.randn(3, m.channels, 8 * s)
    assert m(x).shape == x.shape
    with pytest.raises(ValueError):
        m(torch.randn(3, m.channels, 8 * s + 1))


def test_paper_preset_filters_follow_alahi():
    c = registry.make_config("sr-hifigan", "paper")
    assert c.blocks == 8 and c.kernel_sizes == (3, 9, 27, 81) and c.filter_ratios == (24, 24, 8, 8)
    # 2**(6 + min(d, d_max)) filters (Alahi et al. Sec. IV-F)
    assert [c.filters(d) for d in range(5)] == [2 ** (6 + min(d, c.d_max)) for d in range(5)]


def _empirical_reach(model, length, positions):
    """Largest past/future distance at which perturbing one input sample changes an output."""
    torch.manual_seed(0)
    x = torch.randn(1, 1, length)
    left = right = 0
    with torch.no_grad():
        y0 = model(x)
        for p in positions:
            x2 = x.clone()
            x2[..., p] += 1.0
            changed = torch.nonzero((model(x2) - y0).abs()[0, 0] > 0)[:, 0]
            left = max(left, int(changed.max()) - p)  # outputs after p depend on the past sample p
            right = max(right, p - int(changed.min()))  # outputs before p look ahead to p
    return left, right


@pytest.mark.parametrize("preset", ["tiny", "live"])
def test_computed_reach_bounds_true_dependencies(preset):
    m = random_model("sr-hifigan", preset)
    r = m.reach()
    s = m.total_stride
    left, right = _empirical_reach(m, 8 * 1024, range(4096, 4096 + s))
    assert left <= r.left and right <= r.right
    # and the bound is not wildly loose
    assert r.left <= 1.5 * left + 2 * s and r.right <= 1.5 * right + 2 * s


def test_live_preset_is_causal():
    m = registry.build("sr-hifigan", "live")
    assert m.lookahead < m.total_stride
    assert m.config.padding == "causal"


def test_configs_are_frozen():
    c = registry.make_config("sr-hifigan", "live")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.blocks = 3


def test_untrained_generator_is_identity():
    m = registry.build("sr-hifigan", "live").eval()
    x = torch.randn(2, 1, 1024)
    with torch.no_grad():
        assert torch.equal(m(x), x)
