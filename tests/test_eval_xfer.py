"""Instrument classifier, MFCC distance and the instrument-transfer evaluation (seed 001, issue 18)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers import write_pair_set
from rtgan.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from rtgan.evaluate_xfer import evaluate_xfer, mfcc, mfcc_distance
from rtgan.instrument import (DEFAULT_PATH, classify, load_instrument_classifier,
                              train_instrument_classifier)

SR = 16000
PROGS = ("0", "24", "40", "73")


def _render(prog: str, f: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Distinct synthetic timbres of the same notes: decaying sine ('piano'), plucked bright ('guitar'),
    sustained sawtooth ('violin'), sine with breath noise ('flute')."""
    phase = 2 * np.pi * np.cumsum(f) / SR
    env = t % 0.25
    rng = np.random.default_rng(int(prog))
    if prog == "0":
        return 0.3 * np.sin(phase) * np.exp(-8 * env)
    if prog == "24":
        return 0.2 * sum(np.sin(h * phase) / h ** 0.5 for h in range(1, 9)) * np.exp(-20 * env)
    if prog == "40":
        return 0.15 * sum(np.sin(h * phase) / h for h in range(1, 12))
    return 0.3 * np.sin(phase) + 0.03 * rng.standard_normal(len(t))


@pytest.fixture(scope="module")
def pair_set(tmp_path_factory):
    """Four programs of distinct toy timbres (helpers.write_pair_set), 2 s pieces, 4/2/2 per split."""
    return write_pair_set(tmp_path_factory.mktemp("pairs4"), render=_render, programs=PROGS,
                          splits=["train"] * 4 + ["val"] * 2 + ["test"] * 2, seconds=2.0)


@pytest.fixture(scope="module")
def classifier_path(pair_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("clf") / "ic.safetensors"
    meta = train_instrument_classifier(pair_set, out, steps=60, eval_every=20, train_crops_per_file=6,
                                       progress=False, command="test")
    return out, meta


def test_classifier_learns_distinct_timbres_and_round_trips_strictly(classifier_path, tmp_path):
    path, meta = classifier_path
    assert meta["programs"] == [0, 24, 40, 73]
    assert meta["accuracy"]["test"] > 0.5  # chance: 0.25
    conf = np.asarray(meta["test_confusion"])
    assert conf.shape == (4, 4) and conf.sum() == meta["crops"]["test"]
    assert path.stat().st_size < 1_000_000
    model = load_instrument_classifier(path)
    assert model.metadata["accuracy"] == meta["accuracy"]
    tensors, m = read_checkpoint(path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, tensors[k])
    # strict: an extra or a missing tensor is refused
    save_checkpoint(tmp_path / "extra.safetensors", {**tensors, "junk": torch.zeros(1)}, m)
    with pytest.raises(CheckpointError):
        load_instrument_classifier(tmp_path / "extra.safetensors")
    save_checkpoint(tmp_path / "missing.safetensors", {k: v for k, v in tensors.items() if k != "feature_std"}, m)
    with pytest.raises(CheckpointError):
        load_instrument_classifier(tmp_path / "missing.safetensors")
    # classify: programs, not indices; silence is handled
    x = np.zeros((3, 8192), np.float32)
    x[1] = np.sin(2 * np.pi * 220 * np.arange(8192) / SR)
    out = classify(model, x)
    assert out.shape == (3,) and out[0] == out[2] == -1 and out[1] in {0, 24, 40, 73}


def test_mfcc_distance_zero_for_identical_positive_otherwise_and_matches_librosa():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(8192) * 0.1
    b = np.sin(2 * np.pi * 440 * np.arange(8192) / SR)
    assert mfcc_distance(a, a, SR) == 0.0
    assert mfcc_distance(a, b, SR) > 1.0
    batch = mfcc_distance(np.stack([a, a]), np.stack([a, b]), SR)
    assert batch.shape == (2,) and batch[0] == 0.0 and batch[1] == pytest.approx(mfcc_distance(a, b, SR))
    librosa = pytest.importorskip("librosa")
    for x in (a, b, np.zeros(8192)):
        ref = librosa.feature.mfcc(y=x, sr=SR, n_mfcc=20)
        np.testing.assert_allclose(mfcc(x, SR), ref, rtol=1e-5, atol=1e-3)
    ref_d = np.linalg.norm(librosa.feature.mfcc(y=a, sr=SR) - librosa.feature.mfcc(y=b, sr=SR), axis=0).mean()
    assert mfcc_distance(a, b, SR) == pytest.approx(ref_d, rel=1e-5)


def test_evaluate_xfer_untrained_model_is_silent_and_input_row_is_input_target_snr(pair_set, classifier_path):
    from rtgan.data.pairs import PairDataset, input_target_snr
    from rtgan.metrics import lsd
    from rtgan.models import registry
    model = registry.build("xfer-violin", "tiny")
    clf = load_instrument_classifier(classifier_path[0])
    res = evaluate_xfer(model, pair_set, "test", classifier=clf, progress=False)
    ds = PairDataset(pair_set, "test", 40, crop=8192, random_crop=False)
    assert res.settings["crops"] == len(ds) == len(res.crops)
    t = res.table
    # silent output: SNR = 10 log10((||t||^2 + eps) / (||t - 0||^2 + eps)) = 0 dB exactly
    assert t["output"]["snr_db"]["mean"] == 0.0 and t["output"]["snr_db"]["std"] == 0.0
    x, y = ds[0]
    y = y.double().numpy()
    hand_lsd = lsd(np.zeros_like(y), y)
    assert res.crops[0]["out_lsd"] == pytest.approx(hand_lsd)
    ref = input_target_snr(pair_set, "test", 40)
    assert t["input"]["snr_db"]["mean"] == pytest.approx(ref["mean"], abs=1e-9)
    assert t["input"]["snr_db"]["std"] == pytest.approx(ref["std"], abs=1e-9)
    assert t["input"]["mfcc_distance"]["mean"] > 0 and t["output"]["mfcc_distance"]["mean"] > 0
    assert t["output"]["target_share"] == 0.0 and t["output"]["assigned"]["silent"] == 1.0  # silence: no instrument
    for row in ("output", "input", "target"):
        assert 0.0 <= t[row]["target_share"] <= 1.0
        assert sum(t[row]["assigned"].values()) == pytest.approx(1.0)
    assert t["target"]["target_share"] > t["input"]["target_share"]
    json.loads(res.to_json(model="xfer-violin"))
    res.print_table()
    part = evaluate_xfer(model, pair_set, "test", classifier=None, max_crops=2, progress=False)
    assert part.settings["crops"] == 2 and part.table["output"]["target_share"] is None


def test_cli_eval_branches_to_xfer_and_writes_json(pair_set, classifier_path, tmp_path, monkeypatch):
    import rtgan.instrument as instrument
    from rtgan.checkpoint import save_generator
    from rtgan.cli.main import main
    from rtgan.models import registry
    ckpt = save_generator(tmp_path / "xv.safetensors", registry.build("xfer-violin", "tiny"), {"steps": 0})
    monkeypatch.setattr(instrument, "DEFAULT_PATH", classifier_path[0])
    out = tmp_path / "eval.json"
    argv = ["eval", "--model", "xfer-violin", "--checkpoint", str(ckpt), "--data", str(pair_set), "--split", "test",
            "--json", str(out), "--max-clips", "3", "-q"]
    assert main(argv) == 0
    d = json.loads(out.read_text())
    assert d["model"] == "xfer-violin" and d["settings"]["crops"] == 3
    assert d["table"]["output"]["snr_db"]["mean"] == 0.0
    monkeypatch.setattr(instrument, "DEFAULT_PATH", tmp_path / "absent.safetensors")
    assert main(argv) != 0


@pytest.mark.skipif(not DEFAULT_PATH.exists(), reason="no shipped instrument classifier")
def test_shipped_classifier_loads_and_its_test_accuracy_is_high():
    model = load_instrument_classifier(DEFAULT_PATH)
    assert model.programs == (0, 24, 40, 73)
    assert model.metadata["accuracy"]["test"] >= 0.8
    assert DEFAULT_PATH.stat().st_size < 1_000_000


def test_cli_table_i_scores_each_composite_loss_on_the_same_crops(pair_set, classifier_path, tmp_path, monkeypatch,
                                                                    capsys):
    """``rtgan eval --xfer``: one row per checkpoint, labelled by the loss its metadata records, after the
    input's row; each row is what the one-model evaluation of that checkpoint gives."""
    import rtgan.instrument as instrument
    from rtgan.checkpoint import save_generator
    from rtgan.cli.main import main
    from rtgan.evaluate_xfer import format_table_i
    from rtgan.models import registry
    monkeypatch.setattr(instrument, "DEFAULT_PATH", classifier_path[0])
    ckpts = []
    for k, loss in enumerate(("g1", "g2")):
        torch.manual_seed(k)
        m = registry.build("xfer-violin", "tiny")
        with torch.no_grad():  # a non-silent output: the zero-initialised last layer made non-zero
            for p in m.parameters():
                p.add_(0.05 * torch.randn_like(p))
        ckpts.append(save_generator(tmp_path / f"{loss}.safetensors", m, {"steps": 5, "train_config": {"loss": loss}}))
    out, png = tmp_path / "table1.json", tmp_path / "table1.png"
    assert main(["eval", "--xfer", *(f"xfer-violin={c}" for c in ckpts), "--data", str(pair_set),
                 "--json", str(out), "--png", str(png), "-q"]) == 0
    assert png.stat().st_size > 10_000
    text = capsys.readouterr().out
    lines = text.splitlines()[text.splitlines().index(next(ln for ln in text.splitlines() if ln.startswith("Table I"))):]
    names = [ln.split("  ")[0] for ln in lines[2:6]]
    assert names == ["input (piano)", "xfer-violin g1", "xfer-violin g2", "target (real)"]
    d = json.loads(out.read_text())
    assert list(d["models"]) == ["xfer-violin g1", "xfer-violin g2"]
    clf = load_instrument_classifier(classifier_path[0])
    for c, label in zip(ckpts, d["models"]):
        one = evaluate_xfer(registry.load_model("xfer-violin", c), pair_set, "test", classifier=clf, progress=False)
        s = d["models"][label]["summary"]["output"]
        assert s["snr_db"] == pytest.approx(list(one.summary()["output"]["snr_db"]))
        assert s["lsd"] == pytest.approx(list(one.summary()["output"]["lsd"]))
        assert s["target_share"] == one.table["output"]["target_share"]
    assert d["models"]["xfer-violin g1"]["summary"]["output"]["snr_db"] != \
        d["models"]["xfer-violin g2"]["summary"]["output"]["snr_db"]
    # rows scored on other crops are refused
    a = evaluate_xfer(registry.load_model("xfer-violin", ckpts[0]), pair_set, "test", progress=False)
    b = evaluate_xfer(registry.load_model("xfer-violin", ckpts[1]), pair_set, "test", max_crops=2, progress=False)
    with pytest.raises(ValueError, match="other crops"):
        format_table_i({"a": a, "b": b})
    # models of different target instruments are refused before any scoring
    flute = save_generator(tmp_path / "fl.safetensors", registry.build("xfer-flute", "tiny"), {})
    assert main(["eval", "--xfer", f"xfer-violin={ckpts[0]}", f"xfer-flute={flute}", "--data", str(pair_set),
                 "-q"]) != 0
    assert "different target programs" in capsys.readouterr().err


def test_the_example_excerpt_is_the_loudest_targets_crop_and_the_models_offline_output(pair_set):
    from rtgan.data.pairs import PairDataset
    from rtgan.evaluate_xfer import CROP, EXAMPLE_CROPS
    from rtgan.models import registry
    torch.manual_seed(0)
    m = registry.build("xfer-violin", "tiny")
    res = evaluate_xfer(m, pair_set, "test", progress=False, example=True)
    ex = res.example
    loudest = max(res.crops, key=lambda r: r["target_rms"])
    assert ex["piece"] == loudest["piece"]
    ds = PairDataset(pair_set, "test", 40, crop=CROP, random_crop=False)
    row = next(r for r in ds.rows if r["piece"] == ex["piece"])
    x, y = ds._load(row)
    n = EXAMPLE_CROPS * CROP
    s = ex["start"]
    assert len(ex["input"]) == len(ex["target"]) == len(ex["output"]) == n
    k = min(n, len(x) - s)
    np.testing.assert_array_equal(ex["input"][:k], x[s:s + k])
    np.testing.assert_array_equal(ex["target"][:k], y[s:s + k])
    with torch.no_grad():
        ref = m(torch.from_numpy(ex["input"])[None, None])[0, 0].numpy()
    np.testing.assert_allclose(ex["output"], ref, atol=1e-6)
    assert evaluate_xfer(m, pair_set, "test", progress=False).example is None


def _noisy_xfer(seed: int = 0):
    """A tiny xfer-violin whose output is not silent (the untrained one is): every weight perturbed."""
    from rtgan.models import registry
    torch.manual_seed(seed)
    model = registry.build("xfer-violin", "tiny")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model.eval()


def test_xfer_gain_calibration_scores_each_gain_as_the_evaluation_does_and_takes_the_largest_that_passes(pair_set):
    from rtgan.calibrate import calibrate_xfer_gain, with_gain
    model = _noisy_xfer()
    gains = (0.1, 0.5, 1.0, 2.0)
    res = calibrate_xfer_gain(model, pair_set, "val", margin_db=0.0, gains=gains, progress=False)
    ev = {g: evaluate_xfer(with_gain(model, g), pair_set, "val", progress=False) for g in gains}
    for g in gains:  # the closed form in g equals scoring the rescaled model's output
        assert res["snr_db_by_gain"][f"{g:g}"] == pytest.approx(ev[g].table["output"]["snr_db"]["mean"], abs=1e-4)
    assert res["input_snr_db"] == pytest.approx(ev[1.0].table["input"]["snr_db"]["mean"], abs=1e-9)
    assert res["crops"] == ev[1.0].settings["crops"]
    # a threshold between the evaluation's SNR at gains 0.5 and 1 (this output is too weak and uncorrelated for
    # its SNR to rise with the gain): the rule must take 0.5, the largest gain above it
    snr_eval = [ev[g].table["output"]["snr_db"]["mean"] for g in gains]
    assert snr_eval == sorted(snr_eval, reverse=True) and snr_eval[1] > snr_eval[2]
    margin = (snr_eval[1] + snr_eval[2]) / 2 - ev[1.0].table["input"]["snr_db"]["mean"]
    assert calibrate_xfer_gain(model, pair_set, "val", margin_db=margin, gains=gains, progress=False)["gain"] == 0.5
    none = calibrate_xfer_gain(model, pair_set, "val", margin_db=100.0, gains=gains, progress=False)
    assert none["gain"] is None
    with pytest.raises(ValueError, match="gains"):
        calibrate_xfer_gain(model, pair_set, gains=(0.0,), progress=False)


def test_cli_calibrate_xfer_writes_the_chosen_output_gain(pair_set, tmp_path, capsys):
    from rtgan.calibrate import calibrate_xfer_gain
    from rtgan.checkpoint import save_generator
    from rtgan.cli.main import main
    from rtgan.models import registry
    ckpt = save_generator(tmp_path / "x.safetensors", _noisy_xfer(1), {"command": "test"})
    out = tmp_path / "cal.safetensors"
    rc = main(["calibrate", "--model", "xfer-violin", "--checkpoint", str(ckpt), "--data", str(pair_set),
               "--out", str(out), "--margin-db", "-100", "-q"])
    assert rc == 0 and "output gain 1 " in capsys.readouterr().out  # any level passes: the largest gain, 1
    m = registry.load_model("xfer-violin", path=out)
    assert m.config.residual_gain == 1.0 and m.metadata["calibration"]["margin_db"] == -100.0
    want = calibrate_xfer_gain(_noisy_xfer(1), pair_set, "val", margin_db=0.0, progress=False)["gain"]
    rc = main(["calibrate", "--model", "xfer-violin", "--checkpoint", str(ckpt), "--data", str(pair_set),
               "--out", str(out), "--margin-db", "0", "-q"])
    if want is None:
        assert rc == 1 and "no gain satisfies" in capsys.readouterr().err
    else:
        assert rc == 0 and registry.load_model("xfer-violin", path=out).config.residual_gain == want
    assert main(["calibrate", "--model", "xfer-violin", "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    assert "--data is needed" in capsys.readouterr().err
