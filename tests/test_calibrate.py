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


def test_calibrate_command_writes_the_gain_table_and_command(corpus, tmp_path, capsys):
    import json

    from rtgan.checkpoint import save_generator
    from rtgan.cli.main import main
    from rtgan.models import registry

    model = random_model("sr-hifigan", "tiny")
    with torch.no_grad():
        model.out.conv.weight.mul_(0.05)
    src = save_generator(tmp_path / "trained.safetensors", model,
                         {"command": "rtgan train sr-hifigan --preset tiny", "metrics": {"val": {"snr_db": 1.0}}})
    out = tmp_path / "calibrated.safetensors"
    rc = main(["calibrate", "--checkpoint", str(src), "--data", str(corpus), "--out", str(out),
               "--limiter", "kaiser", "--margin-db", "100", "-q"])
    assert rc == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    g = meta["calibration"]["gain"]
    assert g == 1.0 and meta["calibration"]["split"] == "val"
    assert meta["commands"][0] == "rtgan train sr-hifigan --preset tiny"
    assert meta["commands"][1].startswith("rtgan calibrate")
    # the training run's validation numbers are kept apart from the calibrated ones
    assert meta["metrics"]["val_training"] == {"snr_db": 1.0}
    row = meta["metrics"]["val"]["snr_db"]["kaiser"]["speech"]
    assert row["model"] == meta["calibration"]["table"]["kaiser"]["speech"]["snr_db_by_gain"]["1"]
    loaded = registry.load_model("sr-hifigan", path=str(out))
    assert loaded.config.residual_gain == g
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])
    assert "--margin-db" in capsys.readouterr().out


def test_eq_points_match_each_band_to_the_original_relative_to_the_first():
    from rtgan.calibrate import eq_points

    edges = (7500.0, 9000.0, 11000.0, 24000.0)
    # the residual is 6 dB under the original in band 0, 9.5 dB under in band 1, and 26 dB under
    # in band 2 (more than the 6 dB boost cap allows); a third clip with an empty band 1 in the
    # original does not move the median of three ratios
    target = np.array([[4.0, 9.0, 400.0], [8.0, 18.0, 800.0], [4.0, 0.0, 400.0]])
    resid = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0]])
    pts = eq_points(target, resid, edges, max_boost_db=6.0, stop_hz=7000.0)
    assert pts[:2] == ((0.0, 0.0), (7000.0, 0.0))
    assert [f for f, _ in pts[2:]] == [8250.0, 10000.0, 17500.0]
    g = [v for _, v in pts[2:]]
    assert g[0] == 1.0
    assert g[1] == pytest.approx(1.5, abs=1e-3)  # sqrt(9) / sqrt(4)
    assert g[2] == pytest.approx(10 ** (6 / 20), abs=1e-3)  # capped
    with pytest.raises(ValueError):
        eq_points(target, resid[:, :2], edges)
    with pytest.raises(ValueError):
        eq_points(target, resid, (6000.0, 9000.0, 11000.0, 24000.0), stop_hz=7000.0)


def test_calibrate_with_eq_stores_the_curve_and_the_gain_it_was_chosen_with(corpus, tmp_path):
    import json

    from rtgan.calibrate import match_residual_eq
    from rtgan.checkpoint import save_generator
    from rtgan.cli.main import main
    from rtgan.models import registry

    model = random_model("sr-hifigan", "tiny")
    with torch.no_grad():
        model.out.conv.weight.mul_(0.05)
    eq = match_residual_eq(model, corpus, split="val", limiters=("kaiser",), progress=False)
    assert eq["points"][:2] == ((0.0, 0.0), (7000.0, 0.0)) and eq["points"][2][1] == 1.0
    assert all(0.0 <= g <= 10 ** (6 / 20) + 1e-9 for _, g in eq["points"])
    src = save_generator(tmp_path / "trained.safetensors", model, {"command": "rtgan train sr-hifigan --preset tiny"})
    out = tmp_path / "calibrated.safetensors"
    assert main(["calibrate", "--checkpoint", str(src), "--data", str(corpus), "--out", str(out),
                 "--limiter", "kaiser", "--margin-db", "100", "--eq", "-q"]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert [tuple(p) for p in meta["calibration"]["eq"]["points"]] == list(eq["points"])
    loaded = registry.load_model("sr-hifigan", path=str(out))
    assert loaded.config.residual_eq == eq["points"] and loaded.eq is not None
    # the gain table was computed with the EQ in place: its SNR at the chosen gain is the loaded model's
    g = loaded.config.residual_gain
    y, _ = sf.read(corpus / "val" / "speech_klettres_en_car-dog.flac", dtype="float32")
    x48, _ = band_limit("kaiser", y)
    with torch.no_grad():
        got = offline(loaded, torch.from_numpy(x48)[None, None])[0, 0].numpy()
    row = meta["calibration"]["table"]["kaiser"]["speech"]
    assert row["clips"] == 1  # the fixture's one speech clip, so the table's mean is its SNR
    assert row["snr_db_by_gain"][f"{g:g}"] == pytest.approx(float(snr(got, y)), abs=0.01)


def test_closed_form_snr_keeps_the_mirror_at_its_level(corpus, tmp_path):
    import json

    from rtgan.calibrate import with_mirror
    from rtgan.checkpoint import save_generator
    from rtgan.cli.main import main
    from rtgan.models import registry

    model = random_model("sr-hifigan", "tiny")
    with torch.no_grad():
        model.out.conv.weight.mul_(0.05)
    mirrored = with_mirror(model, 0.5)
    res = calibrate_residual_gain(mirrored, corpus, split="val", limiters=("kaiser",), gains=(0.25, 1.0),
                                  margin_db=100.0, progress=False)
    y, _ = sf.read(corpus / "val" / "speech_klettres_en_car-dog.flac", dtype="float32")
    x48, _ = band_limit("kaiser", y)
    snrs = {}
    for g in (0.25, 1.0):
        with torch.no_grad():
            out = offline(with_gain(mirrored, g), torch.from_numpy(x48)[None, None])[0, 0].numpy()
            plain = offline(with_gain(model, g), torch.from_numpy(x48)[None, None])[0, 0].numpy()
        assert np.abs(out - plain).max() > 1e-4  # the mirror is there at every gain
        snrs[g] = float(snr(out, y))
        assert res["table"]["kaiser"]["speech"]["snr_db_by_gain"][f"{g:g}"] == pytest.approx(snrs[g], abs=0.01)
    # the command sets the level, then chooses the gain with it in place
    src = save_generator(tmp_path / "trained.safetensors", model, {"command": "rtgan train sr-hifigan --preset tiny"})
    out_path = tmp_path / "calibrated.safetensors"
    assert main(["calibrate", "--checkpoint", str(src), "--data", str(corpus), "--out", str(out_path),
                 "--limiter", "kaiser", "--margin-db", "100", "--mirror-gain", "0.5", "-q"]) == 0
    loaded = registry.load_model("sr-hifigan", path=str(out_path))
    assert loaded.config.mirror_gain == 0.5 and loaded.mirror is not None
    meta = json.loads(out_path.with_suffix(".json").read_text())
    assert meta["calibration"]["table"]["kaiser"]["speech"]["snr_db_by_gain"]["1"] == pytest.approx(snrs[1.0], abs=0.01)
