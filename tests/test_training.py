import json
from pathlib import Path

import pytest
import torch

from rtgan.checkpoint import load_generator
from rtgan.training.config import PRESETS, TrainConfig
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
    for a, b in zip(state.discriminator.state_dict().values(), fresh.discriminator.state_dict().values()):
        assert torch.equal(a, b)
    sa, sb = state.opt_g.state_dict(), fresh.opt_g.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert all(torch.equal(sa["state"][k]["exp_avg"], sb["state"][k]["exp_avg"]) for k in sa["state"])
    # continuing runs to the new total
    more = train(dataclasses.replace(cfg, steps=8), corpus, run, device="cpu", progress=False)
    assert more.step == 8


def test_train_config_round_trips_through_json():
    cfg = PRESETS["live"]
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_no_usable_clips_is_a_clear_error(corpus, tmp_path):
    import dataclasses
    cfg = dataclasses.replace(PRESETS["tiny"], min_bandwidth_hz=30000.0)
    with pytest.raises(ValueError):
        train(cfg, corpus, tmp_path / "run", device="cpu", progress=False)
