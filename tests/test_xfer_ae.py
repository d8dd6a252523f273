"""Seed 001's autoencoder on pairs (Sec. V-A: input and target crops passed alternately, a
backward and an optimiser step in between) and the scaling option of L_freq (eq. 16, Sec. V-B)."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from helpers import write_pair_set
from rtgan.losses import FREQ_SCALES, power_spectrogram_loss
from rtgan.models import registry
from rtgan.models.autoencoder import AEKimSatheRecipe, AETrainConfig
from rtgan.training.loop import train

SR = 16000


@pytest.fixture(scope="module")
def pair_set(tmp_path_factory):
    """Toy pairs (helpers.write_pair_set): 'piano' decaying sines, 'violin' the same notes as
    sawtooth-like tones; two one-second pieces per split."""
    return write_pair_set(tmp_path_factory.mktemp("pairs"))


def pair_cfg(**kw):
    base = dict(pairs_program=40, segment_samples=1024, steps=40, val_every=20, ckpt_every=40, lr=1e-2,
                batch_size=4, val_items=4)
    return dataclasses.replace(AEKimSatheRecipe.presets()["tiny"], **{**base, **kw})


class SpyRecipe(AEKimSatheRecipe):
    """Records, per generator step, which part of the batch the autoencoder was given."""

    seen: list = []

    def generator_loss(self, nets, batch, out, step):
        inputs = []
        h = nets["generator"].register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
        try:
            loss, terms = super().generator_loss(nets, batch, out, step)
        finally:
            h.remove()
        assert len(inputs) == 1
        which = [k for k in (0, 1) if inputs[0] is batch[k]]
        type(self).seen.append((step, which, dict(terms)))
        return loss, terms


def test_pair_mode_alternates_inputs_and_targets_and_lowers_both_reconstruction_losses(pair_set, tmp_path):
    SpyRecipe.seen = []
    state = train(pair_cfg(), pair_set, tmp_path / "run", device="cpu", progress=False, recipe=SpyRecipe)
    seen = SpyRecipe.seen
    assert [s for s, _, _ in seen] == list(range(40))
    # even steps reconstruct the input crop, odd steps the target crop; one backward each
    assert all(which == [step % 2] for step, which, _ in seen)
    assert all(("gen_time_input" in t) == (step % 2 == 0) and ("gen_time_target" in t) == (step % 2 == 1)
               for step, _, t in seen)
    h = state.history
    assert [e["step"] for e in h] == [0, 20, 40]
    assert {"mse_input", "mse_target", "snr_db_input", "snr_db_target", "loss", "phi_pair", "phi_cross",
            "phi_inputs", "phi_targets", "phi_pair_ratio"} <= set(h[0])
    assert h[-1]["mse_input"] < 0.7 * h[0]["mse_input"]
    assert h[-1]["mse_target"] < 0.7 * h[0]["mse_target"]
    assert h[-1]["loss"] == pytest.approx((h[-1]["mse_input"] + h[-1]["mse_target"]) / 2)
    assert all(np.isfinite(v) for e in h for v in e.values())
    meta = json.loads((tmp_path / "run" / "ae-kimsathe.json").read_text())
    assert meta["train_config"]["pairs_program"] == 40
    g = registry.load_generator(tmp_path / "run" / "ae-kimsathe.safetensors", expected_name="ae-kimsathe")
    assert g.config == registry.make_config("ae-kimsathe", "tiny")


def test_pair_mode_checks_its_data_and_crop(pair_set, tmp_path):
    with pytest.raises(ValueError, match="stride"):
        AEKimSatheRecipe(pair_cfg(segment_samples=1000))
    r = AEKimSatheRecipe(pair_cfg())
    with pytest.raises(ValueError, match="pair set"):
        r.data(None)
    with pytest.raises(ValueError, match="target program"):
        AEKimSatheRecipe(pair_cfg(pairs_program=24)).data(pair_set)
    train_set, (x, y) = r.data(pair_set)
    assert x.shape == y.shape == (4, 1, 1024)  # val_items grid crops of the val split, input and target
    assert not torch.equal(x, y)
    xi, yi = train_set[0]
    assert xi.shape == yi.shape == (1, 1024)
    assert r.data_manifest(pair_set) == pair_set / "pairs.jsonl"
    with pytest.raises(ValueError):
        pair_cfg(pairs_program=-1)


def test_corpus_mode_is_the_default_and_old_training_configs_still_load():
    cfg = AEKimSatheRecipe.presets()["small"]
    assert cfg.pairs_program is None
    r = AEKimSatheRecipe(cfg)
    assert r.data(None) is None and not r.pair_mode  # the loop cuts corpus clips, as before
    from importlib.resources import files
    meta = json.loads((files("rtgan") / "weights" / "ae-kimsathe.json").read_text())
    old = AETrainConfig.from_dict(meta["train_config"])  # written before pairs_program existed
    assert old.pairs_program is None


# ------------------------------------------------------------------ L_freq's scale

def _np_loss(a, b, n_fft, hop, div):
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann

    def power(x):
        xp = np.pad(x, (n_fft // 2, n_fft // 2))
        frames = np.stack([xp[i * hop:i * hop + n_fft] for i in range(1 + len(x) // hop)])
        return np.abs(np.fft.rfft(frames * w, axis=1) / div) ** 2

    return np.mean([(power(bi) - power(ai)) ** 2 for ai, bi in zip(a, b)])


@pytest.mark.parametrize("n_fft,hop", [(2048, 512), (256, 64)])
def test_power_spectrogram_loss_default_is_unchanged_and_each_scale_is_its_formula(n_fft, hop):
    rng = np.random.default_rng(1)
    a, b = 0.1 * rng.standard_normal((2, 4096)), 0.05 * rng.standard_normal((2, 4096))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    divisors = {"none": 1.0, "window": w.sum(), "energy": np.sqrt((w ** 2).sum()), "fft": np.sqrt(n_fft)}
    assert set(divisors) == set(FREQ_SCALES)
    default = power_spectrogram_loss(ta, tb, n_fft, hop).item()
    assert default == power_spectrogram_loss(ta, tb, n_fft, hop, scale="none").item()
    for scale, div in divisors.items():
        got = power_spectrogram_loss(ta, tb, n_fft, hop, scale=scale).item()
        assert got == pytest.approx(_np_loss(a, b, n_fft, hop, div), rel=1e-9), scale
    with pytest.raises(ValueError, match="scale"):
        power_spectrogram_loss(ta, tb, scale="ortho")


def test_xfer_g2_applies_its_freq_scale():
    tiny = registry.recipe("xfer-violin").presets()["tiny"]
    assert tiny.freq_scale == "energy"  # the scaling under which lambda_f = 10 balances L_time (measured)
    with pytest.raises(ValueError, match="freq_scale"):
        dataclasses.replace(tiny, freq_scale="bogus")
    cfg = dataclasses.replace(tiny, loss="g2")
    r = registry.recipe("xfer-violin")(cfg)
    torch.manual_seed(0)
    y, y_hat = 0.1 * torch.randn(2, 1, 1024), 0.1 * torch.randn(2, 1, 1024, requires_grad=True)
    loss, terms = r.generator_loss({}, (y, y), y_hat, 0)
    f = power_spectrogram_loss(y_hat, y, scale="energy").item()
    assert terms["freq"] == pytest.approx(f)
    assert loss.item() == pytest.approx(terms["time"] + 10.0 * f)
