import numpy as np
import pytest
import soundfile as sf
import torch

from helpers import random_model
from rtgan.audio.bandlimit import band_limit
from rtgan.calibrate import calibrate_residual_gain, with_gain
from rtgan.engine.overlap_save import offline
from rtgan.metrics import snr


def test_closed_form_snr_matches_the_model_at_each_gain(corpus):
    model = random_model("sr-hifigan", "tiny")
    with torch.no_grad():
        model.out.conv.weight.mul_(0.05)  # a small residual, like a trained band
    res = calibrate_residual_gain(model, corpus, split="val", limiters=("kaiser",), gains=(0.25, 0.5, 1.0),
                                  margin_db=100.0, progress=False)
    assert res["gain"] == 1.0  # with a huge margin every gain passes; the largest wins
    row = res["table"]["kaiser"]["speech"]
    y, _ = sf.read(corpus / "val" / "speech_klettres_en_car-dog.flac", dtype="float32")
    x48, _ = band_limit("kaiser", y)
    for g in (0.25, 0.5, 1.0):
        with torch.no_grad():
            out = offline(with_gain(model, g), torch.from_numpy(x48)[None, None])[0, 0].numpy()
        assert row["snr_db_by_gain"][f"{g:g}"] == pytest.approx(float(snr(out, y)), abs=0.01)
    assert row["input_snr_db"] == pytest.approx(float(snr(x48, y)), abs=1e-6)


def test_rule_picks_the_largest_gain_within_the_margin(corpus):
    model = random_model("sr-hifigan", "tiny")
    with torch.no_grad():
        model.out.conv.weight.mul_(0.05)
    res = calibrate_residual_gain(model, corpus, split="val", limiters=("kaiser",), margin_db=0.2, progress=False)
    t = res["table"]["kaiser"]["speech"]
    floor = t["spline_snr_db"] - 0.2
    ok = [float(g) for g, v in t["snr_db_by_gain"].items() if v >= floor]
    assert res["gain"] == (max(ok) if ok else None)
    with pytest.raises(ValueError):
        calibrate_residual_gain(model, corpus, split="test", progress=False)
