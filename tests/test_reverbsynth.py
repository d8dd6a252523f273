"""ReverbSynth (seed 004): the note model, its layers and losses against their formulas, its schedule,
rendering, and a tiny training run on a note set written here (harmonic tones, dry and with a tail)."""
import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from rtgan.checkpoint import read_checkpoint
from rtgan.models import registry
from rtgan.models.reverbsynth import ReverbSynthConfig, ReverbSynthCritic, minibatch_stddev, pixel_norm
from rtgan.models.reverbsynth_training import auxiliary_classifier_loss


def test_pixel_norm_matches_karras_formula():
    x = torch.randn(3, 5, 4, 6, dtype=torch.float64)
    a = x.numpy()
    want = a / np.sqrt(np.mean(a ** 2, axis=1, keepdims=True) + 1e-8)
    np.testing.assert_allclose(pixel_norm(x).numpy(), want, rtol=1e-12)


def test_minibatch_stddev_appends_the_group_mean_std():
    x = torch.randn(8, 3, 2, 5, dtype=torch.float64)
    y = minibatch_stddev(x, group=4).numpy()
    assert y.shape == (8, 4, 2, 5)
    np.testing.assert_array_equal(y[:, :3], x.numpy())
    a = x.numpy().reshape(4, 2, 3, 2, 5)  # example i is in sub-batch i % 2, as the reshape groups them
    for j in range(2):
        want = np.mean(np.sqrt(np.var(a[:, j], axis=0) + 1e-8))
        np.testing.assert_allclose(y[j::2, 3], want, rtol=1e-12)


def test_auxiliary_classifier_loss_is_the_cross_entropy():
    logits = torch.randn(6, 5, dtype=torch.float64)
    target = torch.tensor([0, 4, 2, 2, 1, 3])
    z = logits.numpy()
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    want = -np.mean(logp[np.arange(6), target.numpy()])  # Odena et al. 2017, eq. 3
    assert auxiliary_classifier_loss(logits, target).item() == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError):
        auxiliary_classifier_loss(logits, target[:5])


def test_config_refuses_sizes_that_do_not_grow_into_the_image():
    with pytest.raises(ValueError, match="stages"):
        ReverbSynthConfig(frames=64)
    with pytest.raises(ValueError, match="pitch range"):
        ReverbSynthConfig(pitch_min=50, pitch_max=40)
    c = registry.make_config("reverbsynth", "paper")
    assert (c.frames, c.n_mels, c.z_dim, c.channels) == (128, 1024, 256, (256, 256, 256, 256, 128, 64, 32))
    assert c.samples == 64000 and c.ifmel_spec.samples == 64000  # 4 s at 16 kHz (Table 2)
    tc = registry.recipe("reverbsynth").presets()["paper"]
    for margin in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="output_margin"):
            dataclasses.replace(tc, output_margin=margin)


def test_generator_and_critic_at_every_level_and_fade_in():
    g = registry.build("reverbsynth", "tiny").eval()
    d = ReverbSynthCritic(g.config)
    c = g.config
    z, p, lab = torch.randn(4, c.z_dim), torch.tensor([0, 5, 10, c.n_pitches - 1]), torch.tensor([0, 1, 0, 1])
    with torch.no_grad():
        for level in range(1, c.stages + 1):
            y = g(z, p, lab, level)
            assert y.shape == (4, 2, *c.resolution(level)) and y.abs().max() <= 1.0
            s, pl, ll = d(y, level)
            assert s.shape == (4,) and pl.shape == (4, c.n_pitches) and ll.shape == (4, len(c.labels))
            if level > 1:  # alpha 0: the new stage adds nothing yet, the previous level's image is upsampled
                low = g(z, p, lab, level - 1)
                faded = g(z, p, lab, level, alpha=0.0)
                assert torch.allclose(faded, low.repeat_interleave(2, -2).repeat_interleave(2, -1), atol=1e-6)
    with pytest.raises(ValueError):
        g(z, p, lab, c.stages + 1)
    with pytest.raises(ValueError):
        g(z, torch.tensor([0, 0, 0, c.n_pitches]), lab)
    with pytest.raises(ValueError):
        d(torch.zeros(4, 2, 3, 3), 1)


def test_the_label_changes_the_note():
    g = registry.build("reverbsynth", "tiny").eval()
    z = torch.randn(1, g.config.z_dim)
    with torch.no_grad():
        dry = g(z, torch.tensor([3]), torch.tensor([0]))
        wet = g(z, torch.tensor([3]), torch.tensor([1]))
    assert not torch.allclose(dry, wet)


def test_render_note_length_gain_and_errors():
    g = registry.build("reverbsynth", "tiny").eval()
    a = g.render_note(40, 1.0, "reverb", seed=3)
    b = g.render_note(40, 0.5, "reverb", seed=3)
    assert a.shape == (g.note_samples,) == (g.config.audio_length,)
    assert torch.isfinite(a).all() and a.abs().max() > 0
    torch.testing.assert_close(b, 0.5 * a)
    assert not torch.allclose(g.render_note(40, 1.0, "dry", seed=3), a)
    for bad in (dict(pitch=27), dict(pitch=40, velocity=1.5), dict(pitch=40, label="plate")):
        with pytest.raises(ValueError):
            g.render_note(**bad)


def test_progressive_schedule():
    r = registry.recipe("reverbsynth")(registry.recipe("reverbsynth").presets()["tiny"])
    # tiny: 4 stages, 3 stable steps per stage, 3 fade-in steps per new stage
    want = {0: (1, 1.0), 2: (1, 1.0), 3: (2, 0.0), 4: (2, 1 / 3), 5: (2, 2 / 3), 6: (2, 1.0), 8: (2, 1.0),
            9: (3, 0.0), 15: (4, 0.0), 18: (4, 1.0), 20: (4, 1.0), 10_000: (4, 1.0)}
    for step, (level, alpha) in want.items():
        got = r.schedule(step)
        assert got[0] == level and got[1] == pytest.approx(alpha), step

    # no fade-in and one step per stage (a warm start from a grown generator): full size at step 3
    cls = registry.recipe("reverbsynth")
    quick = cls(dataclasses.replace(cls.presets()["tiny"], stable_steps=1, transition_steps=0))
    assert [quick.schedule(s) for s in range(6)] == [(1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0), (4, 1.0), (4, 1.0)]


def test_recon_term_is_the_l1_to_the_real_image_at_the_current_level():
    cls = registry.recipe("reverbsynth")
    plain = cls(dataclasses.replace(cls.presets()["tiny"], recon_weight=0.0))
    l1 = cls(dataclasses.replace(cls.presets()["tiny"], recon_weight=7.0))
    torch.manual_seed(0)
    nets = plain.networks()
    mc = plain.model_cfg
    step = 9  # level 3, fading in: the real image is pooled to the level and blended
    level, alpha = plain.schedule(step)
    assert level == 3 and alpha == 0.0
    frames, mels = mc.resolution(mc.stages)
    image = torch.randn(2, 2, frames, mels)
    pitch, label = torch.tensor([0, 3]), torch.tensor([0, 1])
    fake = torch.randn(2, 2, *mc.resolution(level))
    plain.adversarial(step), l1.adversarial(step)  # the loop's first call in a step: sets the level
    with torch.no_grad():
        base, _ = plain.generator_loss(nets, (image, pitch, label), fake, step)
        got, logs = l1.generator_loss(nets, (image, pitch, label), fake, step)
        # by hand: normalise, 2x2 box pool to the level (one halving per missing stage), then the
        # fade-in blend with alpha 0 (the pooled-and-repeated coarser image)
        x = nets["generator"].normalise(image)
        for _ in range(mc.stages - level):
            x = (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]) / 4
        coarse = (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]) / 4
        x = coarse.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
        want = (fake - x).abs().mean()
    assert logs["recon"] == pytest.approx(float(want), rel=1e-5)
    assert float(got - base) == pytest.approx(7.0 * float(want), rel=1e-4)
    with pytest.raises(ValueError):
        dataclasses.replace(cls.presets()["tiny"], recon_weight=-1.0)


def test_balanced_conditioning_gives_pitch_and_label_the_latent_s_norm():
    cfg = registry.make_config("reverbsynth", "tiny")
    z = torch.randn(3, cfg.z_dim)
    pitch, label = torch.tensor([0, 5, 9]), torch.tensor([1, 0, 1])
    for balanced, gain in ((True, cfg.z_dim ** 0.5), (False, 1.0)):
        g = registry.entry("reverbsynth").generator(dataclasses.replace(cfg, balanced_conditioning=balanced))
        c = g._conditioning(z, pitch, label)
        lat, one_p, one_l = c[:, :cfg.z_dim], c[:, cfg.z_dim:cfg.z_dim + cfg.n_pitches], c[:, cfg.z_dim + cfg.n_pitches:]
        assert torch.allclose(lat.pow(2).mean(dim=1), torch.ones(3), atol=1e-5)  # pixel-normalised latent
        assert torch.equal(one_p.argmax(1), pitch) and torch.equal(one_l.argmax(1), label)
        assert torch.allclose(one_p.sum(1), torch.full((3,), gain)) and torch.allclose(one_l.sum(1), torch.full((3,), gain))
        if balanced:  # as much norm as the latent's
            assert torch.allclose(one_p.norm(dim=1), lat.norm(dim=1), rtol=1e-4)


def test_recon_warmup_trains_the_generator_alone_on_the_l1_term():
    cls = registry.recipe("reverbsynth")
    r = cls(dataclasses.replace(cls.presets()["tiny"], recon_weight=3.0, recon_warmup_steps=2))
    assert [r.adversarial(s) for s in range(4)] == [False, False, True, True]
    nets = r.networks()
    mc = r.model_cfg
    image = torch.randn(2, 2, *mc.resolution(mc.stages))
    batch = (image, torch.tensor([0, 3]), torch.tensor([0, 1]))
    r.adversarial(1)
    level, alpha = r.schedule(1)
    fake = torch.randn(2, 2, *mc.resolution(level))
    with torch.no_grad():
        loss, logs = r.generator_loss(nets, batch, fake, 1)
        want = (fake - r._real(nets, image, level, alpha)).abs().mean()
    assert set(logs) == {"recon"} and float(loss) == pytest.approx(3.0 * float(want), rel=1e-6)
    with pytest.raises(ValueError):
        dataclasses.replace(cls.presets()["tiny"], recon_warmup_steps=5)  # without an L1 term


def test_critic_warmup_trains_the_critic_over_the_last_steps_of_the_regression():
    cls = registry.recipe("reverbsynth")
    r = cls(dataclasses.replace(cls.presets()["tiny"], recon_weight=1.0, recon_warmup_steps=3, disc_warmup_steps=1))
    assert [r.critic_trains(s) for s in range(5)] == [False, False, True, True, True]
    assert [r.adversarial(s) for s in range(5)] == [False, False, False, True, True]
    assert [r.stage(s).split(",")[0] for s in (0, 2, 3)] == ["reconstruction", "critic warm-up", "adversarial"]
    with pytest.raises(ValueError):  # a critic warm-up longer than the regression it is part of
        dataclasses.replace(cls.presets()["tiny"], recon_weight=1.0, recon_warmup_steps=3, disc_warmup_steps=4)


def _harmonic_note(pitch: int, seconds: float, sr: int, tail: bool) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6) if k * f0 < sr / 2)
    env = np.exp(-t / (0.4 if tail else 0.05))
    return (0.3 * x * env).astype(np.float32)


@pytest.fixture(scope="module")
def note_set(tmp_path_factory):
    """A note set in the layout rtgan.data.notes writes: harmonic tones at 4 pitches, 'dry' decaying
    fast and 'reverb' slowly, for 3 programs (two in train, one in val)."""
    root = tmp_path_factory.mktemp("notes")
    rows = []
    for program, split in ((32, "train"), (33, "train"), (34, "val")):
        for pitch in (28, 40, 52, 64):
            for label in ("dry", "reverb"):
                rel = f"{label}/p{program:03d}_n{pitch:03d}_v100.flac"
                (root / label).mkdir(exist_ok=True)
                sf.write(root / rel, _harmonic_note(pitch, 0.25, 16000, label == "reverb"),
                         16000, subtype="PCM_24")
                rows.append({"path": rel, "program": program, "pitch": pitch, "velocity": 100, "label": label,
                             "split": split, "sample_rate": 16000, "peak_dbfs": -10.0})
    (root / "notes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_tiny_training_moves_the_critic_and_classifier_and_ships_a_loadable_note_model(note_set, tmp_path):
    from rtgan.training.loop import train
    # grown to the full image by step 7 (one step per phase), then 29 steps there
    cfg = dataclasses.replace(registry.recipe("reverbsynth").presets()["tiny"], steps=36, val_every=18,
                              ckpt_every=36, stable_steps=1, transition_steps=1)
    state = train(cfg, note_set, tmp_path / "run", device="cpu", progress=False)
    h = state.history
    assert [e["step"] for e in h] == [0, 18, 36] and h[-1]["level"] == 4.0
    # the critic's pitch classifier learns the real (unseen-program) notes' pitches, and the critic
    # tells real from generated notes (its Wasserstein estimate turns positive)
    assert h[-1]["ac_real"] < 0.8 * h[0]["ac_real"]
    assert h[-1]["w_dist"] > 0.1
    g = registry.load_model("reverbsynth", tmp_path / "run" / "reverbsynth.safetensors")
    assert g.kind == "note" and g.config == state.generator.config
    # the output range was fitted to the data before step 0 and travels with the weights
    _, meta = read_checkpoint(tmp_path / "run" / "reverbsynth.safetensors")
    lo, hi = meta["initialise"]["log_magnitude_range"] if "initialise" in meta else (None, None)
    assert lo is not None and g.norm_centre[0].item() == pytest.approx((lo + hi) / 2, rel=1e-5)
    # GANSynth's margin: the data's range maps to [-0.8, 0.8] of the tanh output, IF [-1, 1] likewise
    assert cfg.output_margin == 0.8 and meta["initialise"]["output_margin"] == 0.8
    assert g.norm_half.tolist() == pytest.approx([(hi - lo) / 2 / 0.8, 1 / 0.8], rel=1e-5)
    assert g.normalise(torch.tensor([lo, -1.0]).view(1, 2, 1, 1)).flatten().tolist() == pytest.approx([-0.8, -0.8])
    assert torch.isfinite(g.render_note(40, 0.8, "reverb", seed=1)).all()


def test_synth_command_writes_a_note(tmp_path, capsys):
    from rtgan.cli.main import main
    out = tmp_path / "note.wav"
    assert main(["synth", str(out), "--random-weights", "--preset", "tiny", "--pitch", "40", "--reverb",
                 "--velocity", "127", "--seed", "2"]) == 0
    x, sr = sf.read(out)
    assert sr == 16000 and len(x) == registry.make_config("reverbsynth", "tiny").samples
    assert main(["synth", str(tmp_path / "x.wav"), "--random-weights", "--preset", "tiny", "--pitch", "90"]) == 2
    assert "outside" in capsys.readouterr().err and not (tmp_path / "x.wav").exists()
