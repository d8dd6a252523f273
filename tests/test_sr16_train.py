"""Training sr16-unet, sr16-gan and sr16-wgan (seed 002) and WaveGAN's discriminator with phase shuffle.

The recipes run through the project's training loop on the ``corpus`` fixture (the shipped
examples at 48 kHz, resampled to 16 kHz by the recipe) with the ``tiny`` presets.
"""
import dataclasses
import math

import numpy as np
import pytest
import torch

from rtgan.checkpoint import read_checkpoint
from rtgan.models import registry
from rtgan.models.sr16 import SR16GAN, SR16WGAN, SR16UNet
from rtgan.models.sr16_training import (SR16GANRecipe, SR16TrainConfig, SR16UNetRecipe, SR16WGANRecipe,
                                        SR16WGANTrainConfig, l2_loss)
from rtgan.models.wavegan import PhaseShuffle1d, WaveGANConfig, WaveGANDiscriminator, phase_shuffle
from rtgan.training.data import make_datasets
from rtgan.training.loop import gan_step, init_state, train
from rtgan.training.state import load_train_state

MODELS = ["sr16-unet", "sr16-gan", "sr16-wgan"]
CPU = torch.device("cpu")


def tiny(model: str, **overrides):
    return dataclasses.replace(registry.recipe(model).presets()["tiny"], **overrides)


# ------------------------------------------------------------------ phase shuffle

def shifted(x: np.ndarray, k: int) -> np.ndarray:
    """Direct phase shuffle of one example ``(channels, L)`` by ``k``: ``out[t] = x[t - k]``, reflected at the ends."""
    n = x.shape[-1]
    out = np.empty_like(x)
    for t in range(n):
        i = t - k
        if i < 0:
            i = -i  # reflection without repeating the edge sample (tf.pad mode="REFLECT")
        elif i >= n:
            i = 2 * (n - 1) - i
        out[:, t] = x[:, i]
    return out


def test_phase_shuffle_reflects_by_hand():
    x = torch.arange(6.0).view(1, 1, 6)
    assert phase_shuffle(x, torch.tensor([2]))[0, 0].tolist() == [2, 1, 0, 1, 2, 3]
    assert phase_shuffle(x, torch.tensor([-2]))[0, 0].tolist() == [2, 3, 4, 5, 4, 3]
    assert phase_shuffle(x, torch.tensor([0]))[0, 0].tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("n,length", [(1, 7), (2, 40), (3, 4)])
def test_phase_shuffle_equals_the_direct_implementation_per_example(n, length):
    torch.manual_seed(n)
    shifts = torch.tensor([k for k in range(-n, n + 1) for _ in range(2)])  # every shift, twice
    x = torch.randn(len(shifts), 3, length, dtype=torch.float64)
    out = phase_shuffle(x, shifts)
    for b, k in enumerate(shifts.tolist()):
        np.testing.assert_array_equal(out[b].numpy(), shifted(x[b].numpy(), k))
    # differentiable: the gradient of a sum routes each output sample to the input it read
    xg = x.clone().requires_grad_(True)
    phase_shuffle(xg, shifts).sum().backward()
    assert torch.equal(xg.grad.sum(dim=-1), torch.full(x.shape[:2], float(length), dtype=x.dtype))
    with pytest.raises(ValueError, match="shift"):
        phase_shuffle(x, torch.full((len(shifts),), length))


def test_phase_shuffle_module_draws_one_shift_per_example_in_range_and_is_identity_in_eval():
    n, batch, length = 2, 32, 50
    ps = PhaseShuffle1d(n)
    x = torch.randn(batch, 2, length, dtype=torch.float64)
    torch.manual_seed(0)
    seen = []
    for _ in range(10):
        out = ps(x)
        ks = []
        for b in range(batch):
            match = [k for k in range(-n, n + 1) if np.array_equal(out[b].numpy(), shifted(x[b].numpy(), k))]
            assert len(match) == 1  # every example is x shifted by one k in [-n, n], reflection-padded
            ks.append(match[0])
        assert len(set(ks)) > 1  # examples of one batch draw their own shifts
        seen += ks
    counts = np.bincount(np.array(seen) + n, minlength=2 * n + 1)
    assert len(counts) == 2 * n + 1 and counts.min() > 0.5 * len(seen) / (2 * n + 1)  # uniform over -n..n
    ps.eval()
    assert ps(x) is x
    assert PhaseShuffle1d(0).train()(x) is x


# ------------------------------------------------------------------ the discriminator

def test_wavegan_discriminator_shapes_and_layers():
    c = WaveGANConfig()  # seed 002's: 0.5 s at 16 kHz, d = 64, four strided convs, n = 2
    assert c.frames() == [8000, 2000, 500, 125, 32]
    d = WaveGANDiscriminator(c)
    assert [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0]) for m in d.convs] == [
        (1, 64, 25, 4), (64, 128, 25, 4), (128, 256, 25, 4), (256, 512, 25, 4)]
    assert d.out.in_features == 512 * 32 and d.out.out_features == 1
    assert d.act.negative_slope == 0.2 and d.shuffle.n == 2
    small = WaveGANDiscriminator(WaveGANConfig(samples=1000, width=2))
    x = torch.randn(3, 1, 1000)
    assert small(x).shape == (3, 1)
    small.eval()
    # eval: deterministic, and each example's value depends on that example only
    torch.testing.assert_close(small(x), small(x), rtol=0, atol=0)
    torch.testing.assert_close(small(x)[1:2], small(x[1:2]), rtol=1e-6, atol=1e-6)
    small.train()
    torch.manual_seed(0)
    assert not torch.equal(small(x), small(x))  # phase shuffle acts in training
    with pytest.raises(ValueError, match="expects"):
        small(torch.randn(3, 1, 999))
    with pytest.raises(ValueError, match="phase shuffle"):
        WaveGANConfig(samples=100, layers=4)  # 100 -> 25 -> 7 -> 2 frames: too few to shuffle by 2


# ------------------------------------------------------------------ models, configs, examples

def test_gan_and_wgan_are_the_sr16_unet_generator_under_their_names():
    unet = registry.entry("sr16-unet")
    for name, cls in (("sr16-gan", SR16GAN), ("sr16-wgan", SR16WGAN)):
        e = registry.entry(name)
        assert e.generator is cls and issubclass(cls, SR16UNet) and cls.name == name
        assert e.config_cls is unet.config_cls and e.presets == unet.presets
        torch.manual_seed(0)
        a = registry.build("sr16-unet", "tiny").state_dict()
        torch.manual_seed(0)
        b = registry.build(name, "tiny").state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert SR16UNet.name == "sr16-unet"
    assert registry.recipe("sr16-unet") is SR16UNetRecipe
    assert registry.recipe("sr16-gan") is SR16GANRecipe
    assert registry.recipe("sr16-wgan") is SR16WGANRecipe


def test_paper_presets_carry_the_seeds_hyper_parameters():
    for model in MODELS:
        presets = registry.recipe(model).presets()
        assert {"tiny", "tiny-r4", "live", "live-r2", "live-r4", "paper", "paper-r2", "paper-r4"} <= set(presets)
        for name, cfg in presets.items():
            assert cfg.model == model and cfg.preset == name
        p = presets["paper-r4"]
        assert (p.lr, p.betas) == (1e-4, (0.9, 0.999))  # Sec. III: Adam at 1e-4
        assert p.segment_samples / p.corpus_rate == 0.5  # Sec. IV: half-second clips
        r = registry.recipe(model)(p)
        assert (r.rate, r.ratio, r.samples) == (16000, 4, 8000)
        assert p.steps == math.ceil(50 * 50000 / p.batch_size)  # 50 epochs of 50 000 clips
    gan, wgan = registry.recipe("sr16-gan").presets()["paper"], registry.recipe("sr16-wgan").presets()["paper"]
    assert gan.adv_weight == wgan.adv_weight == 0.01 and gan.adv_start_step == 0
    assert (wgan.clip, wgan.n_critic) == (0.01, 5)
    assert SR16GANRecipe(gan).disc_config() == WaveGANConfig(samples=8000, width=64, layers=4, phase_shuffle=2)
    assert not hasattr(registry.recipe("sr16-unet").presets()["paper"], "adv_weight")
    with pytest.raises(ValueError, match="anti_alias"):
        SR16TrainConfig(anti_alias="butter")
    with pytest.raises(ValueError, match="clip"):
        SR16WGANTrainConfig(clip=0.0)


@pytest.mark.parametrize("preset,anti_alias", [("tiny", "cheby1"), ("tiny-r4", "cheby1"), ("tiny", "kaiser")])
def test_examples_are_16_khz_targets_and_decimated_inputs(corpus, preset, anti_alias):
    from scipy.signal import decimate

    from rtgan.audio.degrade import decimate as kaiser_decimate
    from rtgan.audio.degrade import spline_upsample
    from rtgan.audio.io import resample
    cfg = dataclasses.replace(tiny("sr16-unet"), preset=preset, anti_alias=anti_alias)
    ratio = 2 if preset == "tiny" else 4
    state = init_state(cfg, CPU)
    r = state.recipe
    train_set, val = make_datasets(corpus, r, state.nets)
    assert r.sample_rate(state.nets) == 48000  # corpus clips are read at the corpus rate, 0.5 s of it
    clip = train_set.clips[0]
    assert clip.shape == (1, 24000)
    x, y = r.train_example(clip)
    assert y.shape == (1, 8000) and x.shape == (1, 8000 // ratio) and x.dtype == y.dtype == torch.float32
    y_ref = resample(clip.numpy().astype(np.float64), 48000, 16000)
    if anti_alias == "cheby1":
        x_ref = decimate(y_ref, ratio, ftype="iir", zero_phase=True)
    else:
        x_ref = kaiser_decimate(y_ref, ratio)
    assert y_ref.shape == (1, 8000)
    np.testing.assert_allclose(y.numpy(), y_ref, atol=1e-6)
    np.testing.assert_allclose(x.numpy(), x_ref, atol=1e-6)
    # input sample i lies at target sample r * i: the spline through x fits y best unshifted
    spline = spline_upsample(x.numpy(), ratio)[0, 8:-8]

    def snr(lag):
        t = y_ref[0, 8 + lag: 8000 - 8 + lag]
        return 10 * np.log10(np.sum(t ** 2) / np.sum((t - spline) ** 2))

    assert snr(0) > 10 and snr(0) > max(snr(-1), snr(1)) + 3
    vx, vy, vs = val
    assert vx.shape == (1, 1, 16000 // ratio) and vy.shape == (1, 1, 16000)  # 1 s validation clips
    np.testing.assert_allclose(vs.numpy(), spline_upsample(vx.numpy(), ratio), atol=1e-6)


def test_validation_scores_model_and_spline(corpus):
    from rtgan.metrics import lsd, snr
    cfg = tiny("sr16-unet")
    state = init_state(cfg, CPU)
    _, val = make_datasets(corpus, state.recipe, state.nets)
    state.nets["generator"].eval()
    with torch.no_grad():
        m = state.recipe.validate(state.nets, val)
        y_hat = state.nets["generator"](val[0])
    x, y, s = val
    assert m["snr_db"] == pytest.approx(float(snr(y_hat[:, 0], y[:, 0]).mean()), abs=1e-4)
    assert m["lsd"] == pytest.approx(float(lsd(y_hat[:, 0], y[:, 0]).mean()), abs=1e-4)
    assert m["spline_snr_db"] == pytest.approx(float(snr(s[:, 0], y[:, 0]).mean()), abs=1e-4)
    assert m["spline_lsd"] == pytest.approx(float(lsd(s[:, 0], y[:, 0]).mean()), abs=1e-4)
    assert m["loss"] == pytest.approx(float(l2_loss(y_hat, y)), rel=1e-5)
    assert m["mse"] == pytest.approx(float(((y_hat - y) ** 2).mean()), rel=1e-5)
    # untrained, the model is its own spline front end: within a fraction of a dB of scipy's spline
    assert abs(m["snr_db"] - m["spline_snr_db"]) < 0.5


def test_l2_loss_is_the_seeds_per_example_sum():
    y_hat, y = torch.randn(3, 1, 10), torch.randn(3, 1, 10)
    assert float(l2_loss(y_hat, y)) == pytest.approx(float(((y_hat - y) ** 2).sum() / 3), rel=1e-6)
    with pytest.raises(ValueError):
        l2_loss(y_hat, y[..., :9])


def test_generator_loss_adds_the_weighted_adversarial_term(corpus):
    for model, name in (("sr16-gan", "discriminator"), ("sr16-wgan", "critic")):
        state = init_state(tiny(model), CPU)
        r, nets = state.recipe, state.nets
        train_set, _ = make_datasets(corpus, r, nets)
        batch = tuple(torch.stack(p) for p in zip(*[train_set[i % len(train_set)] for i in range(2)]))
        with torch.no_grad():
            nets["generator"].out.conv.weight.normal_(0.0, 0.05)
        out = r.generate(nets, batch)
        loss, terms = r.generator_loss(nets, batch, out, 0)
        assert terms["gen_total"] == pytest.approx(terms["gen_l2"] + 0.01 * terms["gen_adv"], rel=1e-6)
        loss.backward()
        assert nets[name].out.weight.grad is not None  # the adversary is in the graph
        g_adv = nets["generator"].out.conv.weight.grad.clone()
        nets["generator"].zero_grad()
        l2_loss(r.generate(nets, batch), batch[1]).backward()
        assert not torch.allclose(g_adv, nets["generator"].out.conv.weight.grad)  # and reaches the generator
        fake = out.detach()
        d = nets[name].eval()  # no phase shuffle: the same values twice
        real_v, fake_v = d(batch[1]), d(fake)
        if model == "sr16-gan":  # cross-entropy, -log D(y) - log(1 - D(G(x))) with D = sigmoid(logit)
            expect = -torch.log(torch.sigmoid(real_v)).mean() - torch.log(1 - torch.sigmoid(fake_v)).mean()
            key = "disc"
        else:  # Wasserstein: mean C(G(x)) - mean C(y)
            expect, key = fake_v.mean() - real_v.mean(), "critic"
        loss_c, terms_c = r.critic_loss(nets, batch, fake, 0)
        loss_c = float(loss_c.detach())
        assert loss_c == pytest.approx(float(expect.detach()), rel=1e-5, abs=1e-7) and terms_c[key] == loss_c


# ------------------------------------------------------------------ training through the loop

def _perturbed(recipe_cls):
    """``recipe_cls`` with the generator's output conv randomised, so training starts away from the spline.

    An untrained sr16 generator *is* the spline baseline (zero output conv), already close to
    the best a tiny U-Net reaches in a few steps: from there ten steps move the loss by about
    0.1 %, not a test. From a randomised output conv the loss must fall clearly.
    """
    class Perturbed(recipe_cls):
        def networks(self):
            nets = super().networks()
            with torch.no_grad():
                nets["generator"].out.conv.weight.normal_(0.0, 0.05)
            return nets

    return Perturbed


@pytest.mark.parametrize("model", MODELS)
def test_a_few_steps_lower_the_validation_loss(corpus, tmp_path, model):
    cfg = tiny(model, steps=10, val_every=5, ckpt_every=10)
    recipe = _perturbed(registry.recipe(model))
    adversary = {"sr16-unet": None, "sr16-gan": "discriminator", "sr16-wgan": "critic"}[model]
    fresh = init_state(cfg, CPU, recipe=recipe)  # the networks train() starts from (same seed)
    state = train(cfg, corpus, tmp_path / "run", device="cpu", progress=False, recipe=recipe)
    h = state.history
    assert [e["step"] for e in h] == [0, 5, 10]
    assert h[2]["loss"] < h[1]["loss"] < h[0]["loss"] and h[2]["loss"] < 0.5 * h[0]["loss"]
    assert h[2]["snr_db"] > h[0]["snr_db"] + 3
    assert h[0]["spline_snr_db"] == h[2]["spline_snr_db"]  # the baseline does not train
    assert set(state.optimisers) == {"generator"} | ({adversary} if adversary else set())
    if adversary:  # the adversary trained too
        before, after = fresh.nets[adversary].state_dict(), state.nets[adversary].state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before)


class RecordingWGAN(SR16WGANRecipe):
    """Records ``(what, step, max |critic weight|)`` at each critic loss, after each critic step, at the generator loss."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.events = []

    def _record(self, what, nets, step):
        self.events.append((what, step, max(float(p.detach().abs().max()) for p in nets["critic"].parameters())))

    def critic_loss(self, nets, batch, fake, step):
        self._record("critic", nets, step)
        return super().critic_loss(nets, batch, fake, step)

    def after_critic_step(self, nets, step):
        super().after_critic_step(nets, step)
        self._record("after", nets, step)

    def generator_loss(self, nets, batch, out, step):
        self._record("generator", nets, step)
        return super().generator_loss(nets, batch, out, step)


def test_wgan_clips_the_critic_after_every_critic_step_and_takes_n_critic_steps(corpus, tmp_path):
    cfg = tiny("sr16-wgan", steps=3, val_every=3, ckpt_every=3)
    c = cfg.clip
    state = train(cfg, corpus, tmp_path / "run", device="cpu", progress=False, recipe=RecordingWGAN)
    ev = state.recipe.events
    assert state.recipe.n_critic == cfg.n_critic == 5
    for s in range(cfg.steps):
        assert [what for what, step, _ in ev if step == s] == ["critic", "after"] * 5 + ["generator"]
    assert ev[0][2] > c  # the fresh critic was outside [-c, c]: clipping had work to do
    assert all(w <= c for what, _, w in ev if what == "after")
    assert all(w <= c for _, _, w in ev[1:])  # nothing between critic steps undoes it
    assert all(float(p.detach().abs().max()) <= c for p in state.nets["critic"].parameters())
    # n_critic comes from the config
    r = SR16WGANRecipe(dataclasses.replace(cfg, n_critic=2))
    assert r.n_critic == 2


@pytest.mark.parametrize("model", MODELS)
def test_checkpoints_save_and_resume(corpus, tmp_path, model):
    cfg = tiny(model, steps=2, val_every=2, ckpt_every=2, n_critic=2) if model == "sr16-wgan" else \
        tiny(model, steps=2, val_every=2, ckpt_every=2)
    run = tmp_path / "run"
    state = train(cfg, corpus, run, device="cpu", progress=False)
    tensors, meta = read_checkpoint(run / "last.safetensors")
    nets = {"sr16-unet": ["generator"], "sr16-gan": ["discriminator", "generator"],
            "sr16-wgan": ["critic", "generator"]}[model]
    assert meta["networks"] == nets and meta["step"] == 2 and meta["model"] == model
    fresh = init_state(cfg, CPU)
    load_train_state(run / "last.safetensors", fresh)
    for name in nets:
        a, b = state.nets[name].state_dict(), fresh.nets[name].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        sa, sb = state.optimisers[name].state_dict(), fresh.optimisers[name].state_dict()
        assert sa["param_groups"] == sb["param_groups"]
        assert all(torch.equal(v, sb["state"][i][k]) for i in sa["state"] for k, v in sa["state"][i].items()
                   if torch.is_tensor(v))
    # the release checkpoint is the generator alone, under the model's own name and class
    g = registry.load_generator(run / f"{model}.safetensors", expected_name=model)
    assert type(g) is registry.entry(model).generator
    assert all(torch.equal(v, state.generator.state_dict()[k]) for k, v in g.state_dict().items())
    from rtgan.training.config import config_from_dict
    assert config_from_dict(meta["train_config"]) == cfg  # the run's config round-trips (betas a tuple again)
    more = train(dataclasses.replace(cfg, steps=4), corpus, run, device="cpu", progress=False)
    assert more.step == 4 and [h["step"] for h in more.history] == [0, 2, 4]
    assert read_checkpoint(run / "last.safetensors")[1]["resumed_from_step"] == 2


def test_cli_trains_sr16_gan_end_to_end(corpus, tmp_path, capsys):
    from rtgan.cli.main import main
    run = tmp_path / "tmp"
    assert main(["train", "sr16-gan", "--data", str(corpus), "--preset", "tiny", "--steps", "3",
                 "--run-dir", str(run), "-q"]) == 0
    assert "trained 3 steps" in capsys.readouterr().out
    _, meta = read_checkpoint(run / "last.safetensors")
    assert meta["step"] == 3 and meta["networks"] == ["discriminator", "generator"]
    assert meta["train_config"]["model"] == "sr16-gan" and meta["train_config"]["steps"] == 3
    g = registry.load_model("sr16-gan", path=run / "sr16-gan.safetensors")
    assert isinstance(g, SR16GAN) and g.sample_rate_in == 8000 and g.sample_rate_out == 16000


def test_init_from_starts_the_generator_from_a_trained_checkpoint(corpus, tmp_path, capsys):
    """``--init-from``: the step-0 generator is the source's (another model name, another ratio), recorded with its hash."""
    from rtgan.cli.main import main
    from rtgan.training.frozen import content_hash
    src = tmp_path / "unet"
    assert main(["train", "sr16-unet", "--data", str(corpus), "--preset", "tiny", "--steps", "2",
                 "--run-dir", str(src), "-q"]) == 0
    source = src / "sr16-unet.safetensors"
    trained = registry.load_generator(source).state_dict()
    fresh = init_state(tiny("sr16-gan"), CPU).generator.state_dict()
    assert any(not torch.equal(trained[k], fresh[k]) for k in trained)  # the warm start is visible
    run = tmp_path / "gan"
    assert main(["train", "sr16-gan", "--data", str(corpus), "--preset", "tiny", "--steps", "1", "--val-every", "1",
                 "--run-dir", str(run), "--init-from", str(source), "-q"]) == 0
    _, meta = read_checkpoint(run / "last.safetensors")
    assert meta["init_from"]["sha256"] == content_hash(source) and meta["init_from"]["model"] == "sr16-unet"
    assert meta["init_from"]["steps"] == 2
    # the step-0 validation scores the source's weights: the source's own last validation (same clips)
    src_last = read_checkpoint(src / "last.safetensors")[1]["history"][-1]
    step0 = meta["history"][0]
    assert step0["step"] == 0 and src_last["step"] == 2
    assert step0["snr_db"] == pytest.approx(src_last["snr_db"], abs=1e-4)
    assert step0["lsd"] == pytest.approx(src_last["lsd"], abs=1e-4)
    # r = 4 from an r = 2 source of the same layers: the ratio lives in the weight-free spline
    # front end (tiny-r4 has the tone-free options, so its r = 2 twin is built here)
    from rtgan.checkpoint import save_generator
    twin = registry.build("sr16-unet", "tiny-r4", ratio=2)
    save_generator(tmp_path / "twin.safetensors", twin, {})
    assert main(["train", "sr16-gan", "--data", str(corpus), "--preset", "tiny-r4", "--steps", "1",
                 "--run-dir", str(tmp_path / "r4"), "--init-from", str(tmp_path / "twin.safetensors"), "-q"]) == 0
    g4 = registry.load_generator(tmp_path / "r4" / "sr16-gan.safetensors")
    assert g4.config.ratio == 4
    assert read_checkpoint(tmp_path / "r4" / "last.safetensors")[1]["init_from"]["sha256"] == \
        content_hash(tmp_path / "twin.safetensors")


def test_init_from_that_does_not_fit_fails_before_the_run_directory(corpus, tmp_path, capsys):
    from rtgan.checkpoint import save_generator
    from rtgan.cli.main import main
    other = tmp_path / "other.safetensors"
    save_generator(other, registry.build("sr16-unet", "live-r2"), {})  # wider layers than tiny's
    run = tmp_path / "run"
    assert main(["train", "sr16-unet", "--data", str(corpus), "--preset", "tiny", "--steps", "1",
                 "--run-dir", str(run), "--init-from", str(other), "-q"]) != 0
    err = capsys.readouterr().err
    assert "does not fit" in err and "\n" not in err.strip() and not run.exists()
    assert main(["train", "sr16-unet", "--data", str(corpus), "--preset", "tiny", "--steps", "1",
                 "--run-dir", str(run), "--init-from", str(tmp_path / "missing.safetensors"), "-q"]) != 0
    assert "missing" in capsys.readouterr().err and not run.exists()


def test_init_from_drops_only_the_biases_a_tone_free_config_has_no_place_for(tmp_path):
    """A warm start across a config change: weights trained without ``dc_free_output``
    (output conv with a bias) start a tone-free network; that bias is dropped and recorded,
    every other tensor is taken as it is. Anything else that does not fit still fails."""
    from rtgan.checkpoint import CheckpointError, save_generator
    from rtgan.training.loop import init_generator
    old = registry.build("sr16-unet", "tiny")
    with torch.no_grad():
        for p in old.parameters():
            p.normal_()
    save_generator(tmp_path / "old.safetensors", old, {})
    src = old.state_dict()
    state = init_state(tiny("sr16-unet", preset="tiny-r4"), CPU)
    rec = init_generator(state, tmp_path / "old.safetensors")
    new = state.generator.state_dict()
    assert rec["dropped"] and all(k.endswith(".bias") and k not in new for k in rec["dropped"])
    assert set(src) - set(rec["dropped"]) == set(new)
    assert all(torch.equal(new[k], src[k]) for k in new)
    # the same weights into the same config: nothing dropped
    assert init_generator(init_state(tiny("sr16-unet"), CPU), tmp_path / "old.safetensors")["dropped"] == []
    # a missing tensor is not forgiven: the tone-free weights (no output bias) into the biased config
    save_generator(tmp_path / "new.safetensors", state.generator, {})
    with pytest.raises(CheckpointError, match="does not fit"):
        init_generator(init_state(tiny("sr16-unet"), CPU), tmp_path / "new.safetensors")
