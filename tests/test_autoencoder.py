"""ae-kimsathe (seed 001 Sec. IV-H) and the content-loss variants of sr16 (seed 002's "-C" models).

The autoencoder: Kim & Sathe's inception U-Net without skips, ``B_a = 4``; its bottleneck is the
only path from input to output; it trains on ``L_time`` through the project's loop. The ``-c``
recipes load a trained autoencoder as a frozen network (by name and content hash) and add
``lambda_c`` times its bottleneck distance (eq. 17) to the generator loss.
"""
import dataclasses

import numpy as np
import pytest
import torch

from rtgan.checkpoint import CheckpointError, read_checkpoint, save_generator
from rtgan.losses import content_loss
from rtgan.models import registry
from rtgan.models.autoencoder import AEKimSathe, AEKimSatheRecipe, AETrainConfig, BottleneckFeatures
from rtgan.models.sr16 import SR16UNet
from rtgan.models.sr16_content_training import CONTENT_NET, SR16GANCRecipe, SR16UNetCRecipe, SR16WGANCRecipe
from rtgan.training.data import make_datasets
from rtgan.training.frozen import content_hash
from rtgan.training.loop import gan_step, init_state, train

from helpers import random_model

CPU = torch.device("cpu")
C_MODELS = {"sr16-unet-c": SR16UNetCRecipe, "sr16-gan-c": SR16GANCRecipe, "sr16-wgan-c": SR16WGANCRecipe}


def tiny(model: str, **overrides):
    return dataclasses.replace(registry.recipe(model).presets()["tiny"], **overrides)


# ------------------------------------------------------------------ the autoencoder

@pytest.mark.parametrize("preset,c_ae", [("tiny", 8), ("small", 64), ("paper", 128)])
def test_shapes_and_bottleneck(preset, c_ae):
    m = registry.build("ae-kimsathe", preset)
    c = m.config
    assert isinstance(m, AEKimSathe) and m.name == "ae-kimsathe"
    assert c.blocks == 4 and m.total_stride == 16 and c.sample_rate == 16000  # B_a = 4, at 16 kHz
    assert c.bottleneck_channels == c_ae
    # no skips: each up block reads only the level below (no concatenated skip channels)
    assert m.up[0].reduce.in_channels == c_ae
    assert [u.reduce.in_channels for u in m.up[1:]] == [c.filters(d) for d in reversed(range(1, c.blocks))]
    x = 0.1 * torch.randn(2, 1, 1024)
    with torch.no_grad():
        z, y = m.encode(x), m(x)
    assert z.shape == (2, c_ae, 64) and y.shape == x.shape
    with pytest.raises(ValueError, match="total stride"):
        m.encode(torch.zeros(1, 1, 1000))
    if preset == "paper":  # Sec. IV-D/F: 64 filters first, kernels 3/9/27/81 split 24/24/8/8; Sec. V-A's 128 x 512
        assert c.base_filters == 64 and c.kernel_sizes == (3, 9, 27, 81) and c.filter_ratios == (24, 24, 8, 8)
        assert m.down[0].branch_filters == (24, 24, 8, 8)
        with torch.no_grad():
            assert m.encode(torch.zeros(1, 1, 8192)).shape == (1, 128, 512)
    # BottleneckFeatures pads to the stride; for whole frames it is encode() itself
    phi = BottleneckFeatures(m).eval()
    with torch.no_grad():
        assert torch.equal(phi(x), z)
        assert phi(x[..., :1000]).shape == (2, c_ae, 63)


def test_the_output_depends_on_the_input_only_through_the_bottleneck():
    m = random_model("ae-kimsathe", "tiny")
    torch.manual_seed(1)
    x1, x2 = 0.3 * torch.randn(2, 1, 1, 2048)
    with torch.no_grad():
        y1 = m(x1)
        assert torch.equal(y1, m.decode(m.encode(x1)))
        # zero the bottleneck's output: the input no longer reaches the output at all
        hook = m.bottleneck.register_forward_hook(lambda mod, inp, out: torch.zeros_like(out))
        try:
            z1, z2 = m(x1), m(x2)
        finally:
            hook.remove()
    assert torch.equal(z1, z2)  # any input: the same output (no skip, no additive input path)
    changed = (y1 - z1).abs() > 1e-6
    assert changed.float().mean() > 0.99  # and zeroing the bottleneck changes the whole output
    # contrast: sr-hifigan (the same blocks with skips) still passes its input
    g = random_model("sr-hifigan", "tiny")
    with torch.no_grad():
        hook = g.bottleneck.register_forward_hook(lambda mod, inp, out: torch.zeros_like(out))
        try:
            assert not torch.allclose(g(x1), g(x2))
        finally:
            hook.remove()


def test_streams_like_offline():
    m = random_model("ae-kimsathe", "tiny")
    x = 0.3 * torch.randn(1, 1, 40 * m.stream_granule)
    d = m.latency_samples
    xp = torch.nn.functional.pad(x, (0, d + (-(x.shape[-1] + d) % 64)))
    state, outs = m.init_state(1), []
    for i in range(0, xp.shape[-1], 64):
        y, state = m.step(xp[..., i:i + 64], state)
        outs.append(y)
    y = torch.cat(outs, dim=-1)
    pad = 4096
    with torch.no_grad():
        ref = m(torch.nn.functional.pad(x, (pad, pad)))[..., pad:pad + x.shape[-1]]
    assert (y[..., d:d + x.shape[-1]] - ref).abs().max() < 1e-4


# ------------------------------------------------------------------ its training

def test_examples_are_16_khz_crops_of_the_corpus(corpus):
    from rtgan.audio.io import resample
    state = init_state(tiny("ae-kimsathe"), CPU)
    r = state.recipe
    train_set, val = make_datasets(corpus, r, state.nets)
    assert r.sample_rate(state.nets) == 48000 and r.rate == 16000
    clip = train_set.clips[0]
    (y,) = r.train_example(clip)
    ref = resample(clip.numpy().astype(np.float64), 48000, 16000)
    assert y.shape == (1, 8000) and y.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-6)
    assert len(val) == 1 and val[0].shape == (1, 1, 16000)
    assert AEKimSatheRecipe.presets()["paper"].segment_samples * 16000 // 48000 == 8192  # Sec. V-A's W = 512 x 16
    assert AETrainConfig().lr == 1e-3 and AETrainConfig().betas == (0.9, 0.999)  # Sec. V: Adam, 1e-3, defaults


def test_a_few_steps_lower_the_reconstruction_loss(corpus, tmp_path):
    # lr 1e-2: at the preset's 1e-3 (the seed's) the tiny net needs ~100 steps to leave 0 dB
    cfg = tiny("ae-kimsathe", steps=20, val_every=10, ckpt_every=20, lr=1e-2)
    fresh = init_state(cfg, CPU)  # the networks train() starts from (same seed)
    state = train(cfg, corpus, tmp_path / "run", device="cpu", progress=False)
    h = state.history
    assert [e["step"] for e in h] == [0, 10, 20] and all(set(e) == {"step", "snr_db", "mse", "loss"} for e in h)
    assert set(state.optimisers) == {"generator"}
    # L_time on fixed crops of the training clips (the one validation clip, speech, is another
    # domain than the two training clips: a tiny net does not generalise to it in 20 steps)
    train_set, _ = make_datasets(corpus, state.recipe, state.nets)
    torch.manual_seed(5)
    (y,) = (torch.stack(p) for p in zip(*[train_set[i % len(train_set)] for i in range(8)]))

    def l_time(net):
        with torch.no_grad():
            return float(((net.eval()(y) - y) ** 2).mean())

    assert l_time(state.generator) < 0.7 * l_time(fresh.generator)
    g = registry.load_generator(tmp_path / "run" / "ae-kimsathe.safetensors", expected_name="ae-kimsathe")
    assert isinstance(g, AEKimSathe) and g.config == registry.make_config("ae-kimsathe", "tiny")
    assert l_time(g) == l_time(state.generator)


# ------------------------------------------------------------------ the content-loss variants

@pytest.fixture()
def frozen_ae(tmp_path):
    """A tiny ae-kimsathe saved as the shipped weights would be: ``(weights dir, sha256, net)``."""
    torch.manual_seed(7)
    ae = registry.build("ae-kimsathe", "tiny")
    weights = tmp_path / "weights"
    save_generator(weights / "ae-kimsathe.safetensors", ae, {"steps": 0})
    return weights, content_hash(weights / "ae-kimsathe.safetensors"), ae


def test_c_variants_are_the_sr16_generator_with_content_recipes():
    unet = registry.entry("sr16-unet")
    for name, recipe in C_MODELS.items():
        e = registry.entry(name)
        assert issubclass(e.generator, SR16UNet) and e.generator.name == name and e.presets == unet.presets
        assert registry.recipe(name) is recipe
        cfg = recipe.presets()["paper"]
        assert cfg.model == name and cfg.content_net == "ae-kimsathe"
        # the shipped autoencoder, by content hash
        assert cfg.content_net_sha256 == content_hash(registry.WEIGHTS_DIR / "ae-kimsathe.safetensors")
        assert cfg.content_weight == 10.0  # seed 001 Sec. V-B's rule (terms alike), measured; see the docstring
        base = registry.recipe(name[:-2]).presets()["paper"]
        assert {k: v for k, v in dataclasses.asdict(cfg).items() if k in dataclasses.asdict(base)} == \
            {**dataclasses.asdict(base), "model": name}  # the base recipe's settings, unchanged
    with pytest.raises(ValueError, match="hex"):
        tiny("sr16-unet-c", content_net_sha256="abc")
    with pytest.raises(ValueError, match="content_weight"):
        tiny("sr16-unet-c", content_weight=-1.0)


def test_no_trained_autoencoder_is_a_clear_error_before_training(corpus, tmp_path, frozen_ae):
    weights, sha, _ = frozen_ae
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="train ae-kimsathe first: rtgan train ae-kimsathe"):
        train(tiny("sr16-unet-c", content_net_sha256=""), corpus, run, device="cpu", progress=False,
              weights_dir=weights)
    with pytest.raises(CheckpointError, match="the recipe expects"):  # the shipped one's hash, another net here
        train(tiny("sr16-unet-c"), corpus, run, device="cpu", progress=False, weights_dir=weights)
    with pytest.raises(CheckpointError, match=f"content hash {sha}.*expects {'0' * 64}"):
        train(tiny("sr16-unet-c", content_net_sha256="0" * 64), corpus, run, device="cpu", progress=False,
              weights_dir=weights)
    with pytest.raises(CheckpointError, match="no checkpoint of model 'ae-kimsathe'"):
        train(tiny("sr16-unet-c", content_net_sha256=sha), corpus, run, device="cpu", progress=False,
              weights_dir=tmp_path / "elsewhere")
    assert not run.exists()


class RecordingUNetC(SR16UNetCRecipe):
    """Records the generator loss terms of every step."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.terms = []

    def generator_loss(self, nets, batch, out, step):
        loss, terms = super().generator_loss(nets, batch, out, step)
        self.terms.append(terms)
        return loss, terms


def test_sr16_unet_c_trains_with_the_frozen_autoencoder(corpus, tmp_path, frozen_ae):
    weights, sha, ae = frozen_ae
    cfg = tiny("sr16-unet-c", steps=3, val_every=3, ckpt_every=3, content_net_sha256=sha)
    run = tmp_path / "run"
    state = train(cfg, corpus, run, device="cpu", progress=False, recipe=RecordingUNetC, weights_dir=weights)
    net = state.nets[CONTENT_NET]
    assert isinstance(net, AEKimSathe) and not net.training and not any(p.requires_grad for p in net.parameters())
    assert set(state.optimisers) == {"generator"}
    for a, b in zip(ae.state_dict().values(), net.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # loaded exactly, and training did not move it
    assert content_hash(weights / "ae-kimsathe.safetensors") == sha
    terms = state.recipe.terms
    assert len(terms) == 3
    train_set, _ = make_datasets(corpus, state.recipe, state.nets)
    w = train_set[0][1].shape[-1]  # target samples per example: L_2 sums over them, so the content term is scaled
    assert w == cfg.segment_samples // 3  # 48 -> 16 kHz
    for t in terms:
        assert t["gen_content"] > 0
        assert t["gen_total"] == pytest.approx(t["gen_l2"] + cfg.content_weight * w * t["gen_content"], rel=1e-5)
    assert all("content" in h and h["content"] > 0 for h in state.history)
    tensors, meta = read_checkpoint(run / "last.safetensors")
    assert not any(k.startswith(f"{CONTENT_NET}.") for k in tensors)
    assert meta["frozen"] == {CONTENT_NET: {"model": "ae-kimsathe", "sha256": sha}}
    assert meta["networks"] == ["generator"] and meta["model"] == "sr16-unet-c"


@pytest.mark.parametrize("model", list(C_MODELS))
def test_the_content_term_reaches_the_generator_only(corpus, frozen_ae, model):
    weights, sha, _ = frozen_ae
    cfg = tiny(model, content_net_sha256=sha, content_weight=1.0, **({"n_critic": 1} if model == "sr16-wgan-c" else {}))
    state = init_state(cfg, CPU, weights_dir=weights)
    r, nets = state.recipe, state.nets
    adversary = {"sr16-unet-c": set(), "sr16-gan-c": {"discriminator"}, "sr16-wgan-c": {"critic"}}[model]
    assert set(state.optimisers) == {"generator"} | adversary
    train_set, _ = make_datasets(corpus, r, nets)
    batch = tuple(torch.stack(p) for p in zip(*[train_set[i % len(train_set)] for i in range(2)]))
    with torch.no_grad():
        nets["generator"].out.conv.weight.normal_(0.0, 0.05)
    out = r.generate(nets, batch)
    loss, terms = r.generator_loss(nets, batch, out, 0)
    phi = BottleneckFeatures(nets[CONTENT_NET]).eval()
    assert terms["gen_content"] == pytest.approx(float(content_loss(phi, out.detach(), batch[1])), rel=1e-5)
    assert terms["gen_content"] > 0
    # the content term's gradient reaches the generator (beside L2's) and nothing reaches the autoencoder
    nets["generator"].zero_grad()
    content_loss(phi, r.generate(nets, batch), batch[1]).backward()
    assert float(nets["generator"].out.conv.weight.grad.abs().sum()) > 0
    assert all(p.grad is None for p in nets[CONTENT_NET].parameters())
    before = [p.clone() for p in nets[CONTENT_NET].parameters()]
    terms = gan_step(state, lambda: batch)
    assert "gen_content" in terms and all(torch.equal(a, b) for a, b in zip(before, nets[CONTENT_NET].parameters()))
