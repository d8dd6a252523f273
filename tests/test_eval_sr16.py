"""``rtgan eval`` for the 16 kHz models of seed 002 (Fig. 3): rtgan.evaluate_sr16 and its CLI path."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from rtgan import metrics
from rtgan.checkpoint import save_generator
from rtgan.evaluate_sr16 import METRICS, SPLINE, _recipe, evaluate_sr16, format_fig3, write_json
from rtgan.models import registry


@pytest.fixture(scope="module")
def tiny():
    return {"sr16-unet": registry.build("sr16-unet", "tiny"), "sr16-unet r4": registry.build("sr16-unet", "tiny-r4")}


def test_pairs_and_spline_are_the_recipes_validation(corpus, tiny):
    """The spline row is exactly the recipe's val_example (x, y, spline) scored with rtgan.metrics."""
    res = evaluate_sr16(tiny, corpus, split="val", visqol=False, progress=False)
    clip, _ = sf.read(corpus / res.clips[0]["path"], dtype="float32", always_2d=True)
    clip = torch.from_numpy(np.ascontiguousarray(clip.mean(axis=1)))[None]
    for r in (2, 4):
        x, y, s = _recipe(r, "cheby1").val_example(clip)
        assert x.shape[-1] * r == y.shape[-1] == s.shape[-1]
        row = res.clips[0]["ratios"][f"r={r}"][SPLINE]
        assert row["snr_db"] == pytest.approx(float(metrics.snr(s[0].numpy(), y[0].numpy())), abs=1e-9)
        assert row["lsd"] == pytest.approx(float(metrics.lsd(s[0].numpy(), y[0].numpy())), abs=1e-9)


def test_untrained_model_scores_as_the_spline(corpus, tiny):
    """An untrained sr16 model is its own spline front end: a truncated cardinal-spline FIR, equal to
    scipy's not-a-knot spline (the baseline) to float rounding away from the clip's ends but not at them
    (zero padding vs. not-a-knot extrapolation). So SNR agrees to about 1e-3 dB (1e-4 dB with a wide FIR);
    LSD, which weighs the ends' near-empty high bins in log units, only to about 0.15 (0.05 with a wide FIR)."""
    models = {**tiny, "wide": registry.build("sr16-unet", "tiny", spline_half_width=30),
              "wide r4": registry.build("sr16-unet", "tiny-r4", spline_half_width=30)}
    res = evaluate_sr16(models, corpus, split="train", visqol=False, progress=False)
    assert len(res.clips) == 2 and res.ratios == (2, 4)
    for c in res.clips:
        for key, rows in c["ratios"].items():
            assert set(rows) == {SPLINE, *(lb for lb in models if ("r4" in lb) == (key == "r=4"))}
            sp = rows[SPLINE]
            for label, row in rows.items():
                wide = label.startswith("wide")
                assert row["snr_db"] == pytest.approx(sp["snr_db"], abs=2e-3 if wide else 5e-3)
                assert row["lsd"] == pytest.approx(sp["lsd"], abs=0.05 if wide else 0.2)
    # and the whole-file output equals the spline in the clip's interior (float rounding)
    clip, _ = sf.read(corpus / res.clips[0]["path"], dtype="float32", always_2d=True)
    x, _, s = _recipe(2, "cheby1").val_example(torch.from_numpy(np.ascontiguousarray(clip.mean(axis=1)))[None])
    from rtgan.engine import offline
    out = offline(models["wide"].eval(), x[None])[0, 0]
    assert (out - s[0])[200:-200].abs().max() < 1e-5


def test_table_rows_and_columns(corpus, tiny):
    res = evaluate_sr16(tiny, corpus, split="train", visqol=False, progress=False)
    assert set(res.table) == {"music", "all"}
    assert res.metrics == ("snr_db", "lsd")
    text = format_fig3(res)
    assert "| model | r | SNR dB | LSD | ViSQOL (speech) |" in text
    lines = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| model")]
    labels = [(ln.split("|")[1].strip(), ln.split("|")[2].strip()) for ln in lines[:4]]
    assert labels == [("spline", "2"), ("sr16-unet", "2"), ("spline", "4"), ("sr16-unet r4", "4")]
    music = res.table["music"]["r=2"]
    assert music["clips"]["count"] == 2
    assert set(music[SPLINE]) == {"snr_db", "lsd"} and music[SPLINE]["snr_db"]["std"] is not None
    assert f"{music[SPLINE]['snr_db']['mean']:.2f} ± {music[SPLINE]['snr_db']['std']:.2f}" in lines[0]
    assert lines[0].rstrip().endswith("| – |")  # no ViSQOL for music
    # each model's tonal figure over the band it generates, printed under the tables
    assert set(res.tonal) == set(tiny)
    assert res.tonal["sr16-unet"]["band_hz"] == [3450.0, 7750.0] and res.tonal["sr16-unet r4"]["band_hz"][0] == 1850.0
    t = res.tonal["sr16-unet r4"]
    assert f"  sr16-unet r4: {t['peak_db']:.1f} dB at {t['freq_hz']:.0f} Hz (band 1.85-7.75 kHz)" in text
    assert not evaluate_sr16(tiny, corpus, split="train", visqol=False, progress=False, max_clips=1, tonal=False).tonal


def test_visqol_speech_mode_on_speech(corpus, tiny):
    pytest.importorskip("visqol")
    res = evaluate_sr16({"sr16-unet": tiny["sr16-unet"]}, corpus, split="val", progress=False)
    if "visqol" not in res.metrics:
        pytest.skip(res.notes[0])
    assert "visqol" in METRICS and res.timing["visqol_calls"] == 2
    for label in (SPLINE, "sr16-unet"):
        v = res.table["speech"]["r=2"][label]["visqol"]["mean"]
        assert 1.0 <= v <= 5.0
    assert any("speech mode" in n for n in res.notes)
    assert "4." in format_fig3(res) or "3." in format_fig3(res)


def test_rejects_other_models(corpus):
    with pytest.raises(ValueError, match="16000 Hz"):
        evaluate_sr16({"sr-hifigan": registry.build("sr-hifigan", "tiny")}, corpus, split="val", visqol=False,
                      progress=False)
    with pytest.raises(ValueError, match="no model"):
        evaluate_sr16({}, corpus)


def test_write_json(corpus, tiny, tmp_path):
    res = evaluate_sr16(tiny, corpus, split="val", visqol=False, progress=False)
    write_json(res, tmp_path / "r.json", {"split": "val"})
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["split"] == "val" and d["ratios"] == [2, 4] and d["models"]["sr16-unet r4"]["ratio"] == 4
    assert d["table"]["speech"]["r=4"]["spline"]["lsd"]["n"] == 1


def test_cli_writes_json_and_rejects_sr_hifigan(corpus, tiny, tmp_path, capsys):
    from rtgan.cli.main import main
    a = save_generator(tmp_path / "a.safetensors", tiny["sr16-unet"], {"steps": 0})
    b = save_generator(tmp_path / "b.safetensors", registry.build("sr16-gan-c", "tiny-r4"), {"steps": 0})
    out = tmp_path / "fig3.json"
    rc = main(["eval", "--sr16", f"sr16-unet={a}", f"sr16-gan-c={b}", "--data", str(corpus), "--split", "val",
               "--no-visqol", "-q", "--json", str(out)])
    assert rc == 0
    d = json.loads(out.read_text())
    assert set(d["table"]["speech"]["r=2"]) == {"clips", "spline", "sr16-unet"}
    assert set(d["table"]["speech"]["r=4"]) == {"clips", "spline", "sr16-gan-c"}
    assert "| sr16-gan-c | 4 |" in capsys.readouterr().out
    # the --model/--checkpoint form dispatches a 16 kHz model to the same evaluation
    out2 = tmp_path / "one.json"
    assert main(["eval", "--model", "sr16-unet", "--checkpoint", str(a), "--data", str(corpus), "--split", "val",
                 "--no-visqol", "-q", "--json", str(out2)]) == 0
    one = json.loads(out2.read_text())["table"]["speech"]["r=2"]
    assert one["sr16-unet"] == d["table"]["speech"]["r=2"]["sr16-unet"]
    # sr-hifigan on the sr16 path: one clear line
    h = save_generator(tmp_path / "h.safetensors", registry.build("sr-hifigan", "tiny"), {"steps": 0})
    capsys.readouterr()
    rc = main(["eval", "--sr16", f"sr-hifigan={h}", "--data", str(corpus), "--split", "val", "--no-visqol", "-q"])
    err = capsys.readouterr().err
    assert rc != 0 and "needs a model writing 16000 Hz" in err and "48000 Hz -> 48000 Hz" in err
