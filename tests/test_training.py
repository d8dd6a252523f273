import json
from pathlib import Path

import pytest
import torch

from rtgan.models.registry import load_generator
from rtgan.models.sr_hifigan_training import SRHiFiGANTrainConfig as TrainConfig
from rtgan.training.config import PRESETS
from rtgan.training.loop import init_state, train
from rtgan.training.state import load_train_state

def test_tiny_training_lowers_validation_loss(corpus, tmp_path):
    cfg = PRESETS["tiny"]
    state = train(cfg, corpus, tmp_path / "run", device="cpu", command="pytest", progress=False)
    first, last = state.history[0], state.history[-1]
    assert first["step"] == 0 and last["step"] == cfg.steps
    assert last["loss"] < first["loss"]
    # release checkpoint: loads strictly and records how it was made
    g = load_generator(tmp_path / "run" / "sr-hifigan.safetensors")
    assert g.metadata["steps"] == cfg.steps and g.metadata["command"] == "pytest"
    assert len(g.metadata["corpus_manifest_hash"]) == 64


def test_resume_restores_everything(corpus, tmp_path):
    import dataclasses
    cfg = dataclasses.replace(PRESETS["tiny"], steps=6, ckpt_every=3, val_every=3)
    run = tmp_path / "run"
    state = train(cfg, corpus, run, device="cpu", progress=False)
    fresh = init_state(cfg, torch.device("cpu"))
    load_train_state(run / "last.safetensors", fresh)
    assert fresh.step == 6
    for a, b in zip(state.generator.state_dict().values(), fresh.generator.state_dict().values()):
        assert torch.equal(a, b)
    d, d_fresh = state.nets["discriminator"], fresh.nets["discriminator"]
    for a, b in zip(d.state_dict().values(), d_fresh.state_dict().values()):
        assert torch.equal(a, b)
    for name in ("generator", "discriminator"):
        sa, sb = state.optimisers[name].state_dict(), fresh.optimisers[name].state_dict()
        assert sa["param_groups"] == sb["param_groups"]
        assert all(torch.equal(sa["state"][k]["exp_avg"], sb["state"][k]["exp_avg"]) for k in sa["state"])
        assert state.schedulers[name].state_dict() == fresh.schedulers[name].state_dict()
    # continuing runs to the new total
    more = train(dataclasses.replace(cfg, steps=8), corpus, run, device="cpu", progress=False)
    assert more.step == 8


def test_train_config_round_trips_through_json():
    from rtgan.training.config import config_from_dict
    cfg = PRESETS["live"]
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_no_usable_clips_is_a_clear_error(corpus, tmp_path):
    import dataclasses
    cfg = dataclasses.replace(PRESETS["tiny"], min_bandwidth_hz=30000.0)
    with pytest.raises(ValueError):
        train(cfg, corpus, tmp_path / "run", device="cpu", progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_without_cuda_fails_fast_and_creates_nothing(corpus, tmp_path, capsys):
    from rtgan.cli.main import main
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="no CUDA"):
        train(PRESETS["tiny"], corpus, run, device="cuda", progress=False)
    assert not run.exists()
    rc = main(["train", "sr-hifigan", "--data", str(corpus), "--preset", "tiny", "--device", "cuda",
               "--run-dir", str(run), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "CUDA" in err[0]
    assert not run.exists()


def test_train_on_a_folder_without_manifest_fails_fast_and_creates_nothing(tmp_path, capsys):
    from rtgan.cli.main import main
    run = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="manifest"):
        train(PRESETS["tiny"], tmp_path, run, device="cpu", progress=False)
    rc = main(["train", "sr-hifigan", "--data", str(tmp_path), "--preset", "tiny", "--run-dir", str(run), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "rtgan data build" in err[0]
    assert not run.exists()


def test_recipes():
    from rtgan.training.config import RECIPES
    paper = TrainConfig.with_recipe(PRESETS["live"], "paper")
    # Coldenhoff & Ren Sec. V / VII-C: 1e-3 L_adv + 1e-3 L_flat + L_time, nothing else
    w = paper.weights
    assert (w.adv, w.flat, w.time, w.feature_matching, w.stft, w.mel) == (1e-3, 1e-3, 1.0, 0.0, 0.0, 0.0)
    assert paper.recipe == "paper" and paper.adv_start_step == 0
    bwe = PRESETS["live"]
    assert bwe.recipe == "bwe" and bwe.weights == RECIPES["bwe"]
    assert bwe.weights.stft > 0 and bwe.weights.feature_matching > 0 and bwe.weights.adv > 0
    assert TrainConfig.from_dict(json.loads(json.dumps(paper.to_dict()))) == paper
    with pytest.raises(ValueError, match="recipe"):
        TrainConfig(recipe="nope")


def test_training_never_uses_the_evaluation_band_limiters():
    """Evaluation filters stay unseen: no Butterworth, no Kaiser beta 5, no soxr."""
    for cfg in PRESETS.values():
        for d in cfg.degradations:
            if d.kind == "lowpass":
                assert "butter" not in d.filters
            if d.kind == "decimate":
                assert 5.0 not in d.kaiser_betas
            assert d.kind in ("lowpass", "decimate", "resample")


def test_fir_view_keeps_the_band_below_its_cutoff():
    import numpy as np
    from rtgan.models.sr_hifigan_training import fir_view
    view = fir_view(7000.0, 48000, torch.device("cpu"))
    t = torch.arange(48000, dtype=torch.float64) / 48000  # float32 phases of 20 kHz are -40 dB noisy
    for f, expect in ((1000.0, 1.0), (5000.0, 1.0), (12000.0, 0.0), (20000.0, 0.0)):
        y = view(torch.sin(2 * np.pi * f * t).view(1, 1, -1))[0, 0, 1000:-1000]
        assert float(y.abs().max()) == pytest.approx(expect, abs=10 ** (-50 / 20))
    with pytest.raises(ValueError, match="cutoff"):
        fir_view(30000.0, 48000, torch.device("cpu"))


def test_time_lowpass_restricts_l_time_to_the_input_band():
    import numpy as np
    import dataclasses

    from rtgan.losses import LossWeights, generator_loss
    from rtgan.models.sr_hifigan_training import fir_view
    t = torch.arange(16384, dtype=torch.float64) / 48000
    y = torch.sin(2 * np.pi * 440 * t).view(1, 1, -1)
    err = 0.1 * torch.sin(2 * np.pi * 12000 * t).view(1, 1, -1)  # an error only above the cutoff
    w = LossWeights(adv=0.0, flat=0.0, time=1.0, feature_matching=0.0)
    _, whole = generator_loss(y + err, y, None, w)
    _, low = generator_loss(y + err, y, None, w, time_view=fir_view(7000.0, 48000, torch.device("cpu")))
    assert whole["time"] == pytest.approx(0.1 ** 2 / 2, rel=1e-3)  # the MSE of the 12 kHz error
    assert low["time"] < 1e-4 * whole["time"]  # -40 dB
    with pytest.raises(ValueError, match="time_lowpass_hz"):
        dataclasses.replace(PRESETS["live"], time_lowpass_hz=-1.0)


def test_discriminator_view_keeps_only_the_generated_band():
    import numpy as np
    from rtgan.models.sr_hifigan_training import discriminator_view
    cfg = PRESETS["live"]
    view = discriminator_view(cfg, 48000, torch.device("cpu"))
    t = torch.arange(48000) / 48000
    for f, expect in ((1000.0, 0.0), (4000.0, 0.0), (12000.0, cfg.disc_input_gain)):
        y = view(torch.sin(2 * np.pi * f * t).view(1, 1, -1))[0, 0, 1000:-1000]
        # passband and stopband within -50 dB (of the gain) of the ideal high-pass
        assert float(y.abs().max()) == pytest.approx(expect, abs=10 ** (-50 / 20) * cfg.disc_input_gain)
    paper = TrainConfig.with_recipe(cfg, "paper")
    w = torch.randn(1, 1, 100)
    assert torch.equal(discriminator_view(paper, 48000, torch.device("cpu"))(w), w)
