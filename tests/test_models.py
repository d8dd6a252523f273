import dataclasses

import pytest
import torch

from rtgan.models import registry

from helpers import random_model
from rtgan.models.layers import Inception1d, PixelShuffle1d, PixelUnshuffle1d, split_filters
from rtgan.models.sr_hifigan import SRHiFiGANConfig, SRHiFiGANGenerator

#: the streamable models (note models render notes: tests/test_reverbsynth.py)
MODELS = [n for n in registry.available() if registry.entry(n).generator.kind == "streamable"]


def test_registry_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        registry.register("sr-hifigan", SRHiFiGANConfig, {})(SRHiFiGANGenerator)


def test_registry_finds_the_model_modules_itself():
    """Every module of rtgan/models/ but the infrastructure and private ones is a model module.

    Model modules include the ``*_training`` ones that register recipes for models defined in another.
    """
    assert registry.model_modules() == ["rtgan.models.autoencoder", "rtgan.models.reverb",
                                        "rtgan.models.reverb_training", "rtgan.models.reverbsynth",
                                        "rtgan.models.reverbsynth_training", "rtgan.models.sr16",
                                        "rtgan.models.sr16_content_training", "rtgan.models.sr16_training",
                                        "rtgan.models.sr_hifigan", "rtgan.models.sr_hifigan_training",
                                        "rtgan.models.voc_melgan", "rtgan.models.voc_melgan_training",
                                        "rtgan.models.voc_multiscale", "rtgan.models.voc_multiscale_training",
                                        "rtgan.models.vocoder", "rtgan.models.xfer", "rtgan.models.xfer_training"]
    assert "sr-hifigan" in registry.available()
    # the recipes registered by the training modules are found by name
    assert registry.recipe("sr-hifigan").__module__ == "rtgan.models.sr_hifigan_training"
    assert registry.recipe("sr16-wgan").__module__ == "rtgan.models.sr16_training"
    assert registry.recipe("sr16-gan-c").__module__ == "rtgan.models.sr16_content_training"


_TOY_MODEL = """
from rtgan.models.registry import register
from rtgan.models.sr_hifigan import SRHiFiGANConfig, SRHiFiGANGenerator


@register({name!r}, SRHiFiGANConfig, {{}})
class Toy(SRHiFiGANGenerator):
    \"\"\"A toy model found by the registry's discovery.\"\"\"
"""


@pytest.fixture()
def models_dir(tmp_path, monkeypatch):
    """A second folder of rtgan.models modules; what the test registers is removed afterwards."""
    import sys

    import rtgan.models
    monkeypatch.setattr(rtgan.models, "__path__", [*rtgan.models.__path__, str(tmp_path)])
    before, modules = dict(registry._REGISTRY), set(sys.modules)
    yield tmp_path
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)
    for name in set(sys.modules) - modules:
        if name.startswith("rtgan.models."):
            del sys.modules[name]


def test_a_new_model_file_registers_by_existing(models_dir):
    (models_dir / "toy_model.py").write_text(_TOY_MODEL.format(name="toy-by-discovery"))
    (models_dir / "_private.py").write_text("raise AssertionError('private modules are not imported')\n")
    assert "rtgan.models.toy_model" in registry.discover()
    assert "rtgan.models._private" not in registry.model_modules()
    assert registry.entry("toy-by-discovery").generator.__name__ == "Toy"


def test_a_discovered_model_may_not_take_a_registered_name(models_dir):
    (models_dir / "toy_clash.py").write_text(_TOY_MODEL.format(name="sr-hifigan"))
    with pytest.raises(ValueError, match="already registered"):
        registry.discover()
    assert registry.entry("sr-hifigan").generator is SRHiFiGANGenerator


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
    x = torch.randn(3, m.port_in.channels, 8 * s)
    assert m(x).shape == (3, m.port_out.channels, m.output_length(8 * s))
    with pytest.raises(ValueError):
        m(torch.randn(3, m.port_in.channels, 8 * s + 1))


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
    # room for the whole receptive field on both sides of the perturbed samples
    half = -(-(r.left + r.right + 2 * s) // s) * s
    left, right = _empirical_reach(m, 2 * half + s, range(half, half + s))
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


def test_hold_turns_a_phase_pattern_into_a_constant_and_streams():
    from rtgan.models.layers import Hold1d, StateCursor
    hold = Hold1d()
    pattern = torch.tensor([3.0, -1.0]).repeat(1, 2, 50)  # (1, 2, 100): period 2
    y = hold(pattern)
    assert torch.allclose(y[..., 1:], torch.ones_like(y[..., 1:]))  # (3 + -1) / 2
    assert torch.equal(y[..., 0], pattern[..., 0] / 2)  # frame -1 is zero
    # streamed in blocks of 7 with its one-frame cache: the offline result, no delay
    x = torch.randn(2, 3, 70)
    state, outs = None, []
    for blk in x.split(7, dim=-1):
        cur = StateCursor(state, 2, blk)
        out, d = hold.stream(blk, 0, cur)
        assert d == 0
        outs.append(out)
        state = cur.finish()
    torch.testing.assert_close(torch.cat(outs, dim=-1), hold(x))


def test_dc_free_output_conv_ignores_a_constant():
    from rtgan.models.layers import PaddedConv1d
    conv = PaddedConv1d(4, 1, 9, "causal", bias=False, dc_free=True)
    torch.nn.init.normal_(conv.conv.weight)
    x = torch.randn(1, 4, 1)
    y = conv(x.expand(1, 4, 64).contiguous())
    assert y[..., 8:].abs().max() < 1e-5  # after the zero padding has left the window
    with pytest.raises(ValueError):
        PaddedConv1d(4, 1, 9, bias=True, dc_free=True)


def _phase_means(model, x, period):
    """Mean of the residual ``G(x) - x`` per output phase modulo ``period``, relative to its RMS."""
    with torch.no_grad():
        r = (model(x) - x)[0, 0]
    return r.reshape(-1, period).mean(dim=0) / r.std()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hold_removes_the_subpixel_phase_pattern(seed):
    """The cause of the fs/4 tone: with random weights (every layer active) and band-limited
    noise in, the seed's bare subpixel layers give the residual a mean that differs per output
    phase (a period-4 pattern = lines at 12 and 24 kHz); the hold and the DC-free output make
    every phase's mean zero."""
    from rtgan.audio.degrade import DegradationConfig, degrade
    import numpy as np
    noise = np.random.default_rng(seed).standard_normal(48000 * 2) * 0.1
    x = torch.from_numpy(degrade(noise, 48000, DegradationConfig()))[None, None]
    seed_cfg = dict(upsample_hold=False, dc_free_output=False)
    old = random_model("sr-hifigan", "live", seed=seed)
    new_cfg = dataclasses.replace(old.config, **seed_cfg)
    bare = registry.build_from_config("sr-hifigan", new_cfg)
    bare.load_state_dict(old.state_dict())  # same weights, no hold, plain output conv
    bare.eval()
    spread_bare = _phase_means(bare, x, 4)
    spread_new = _phase_means(old, x, 4)
    assert (spread_bare.max() - spread_bare.min()) > 0.05
    assert spread_new.abs().max() < 0.01
