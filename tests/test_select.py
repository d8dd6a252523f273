"""rtgan select: a run's snapshot chosen on the validation metrics the loop logged, released with a record."""
import json

import pytest
import torch

from rtgan.checkpoint import read_checkpoint, save_generator
from rtgan.cli.main import main
from rtgan.models import registry
from rtgan.training.select import release, select_snapshot


def _run(tmp_path, vals, init_from=None):
    """A run directory whose snapshots have the given validation metrics: ``{step: {metric: value}}``."""
    run = tmp_path / "run"
    for step, val in vals.items():
        torch.manual_seed(step)
        meta = {"steps": step, "command": "rtgan train sr16-unet --preset tiny", "metrics": {"val": val}}
        if init_from:
            meta["init_from"] = {"command": init_from}
        save_generator(run / "snapshots" / f"sr16-unet-step{step:07d}.safetensors", registry.build("sr16-unet", "tiny"),
                       meta)
    return run


def test_the_lowest_loss_or_highest_snr_wins_ties_go_to_the_earliest(tmp_path):
    run = _run(tmp_path, {0: {"loss": 0.1, "snr_db": 99.0}, 100: {"loss": 3.0, "snr_db": 10.0},
                          200: {"loss": 2.0, "snr_db": 9.0}, 300: {"loss": 2.0, "snr_db": 11.0},
                          400: {"loss": float("nan"), "snr_db": 8.0}})
    sel = select_snapshot(run)  # step 0 (the untrained or initial weights) is never a candidate; NaN neither
    assert (sel.step, sel.value, sel.metric) == (200, 2.0, "loss")
    assert sel.candidates == [(100, 3.0), (200, 2.0), (300, 2.0)]
    assert sel.path.name == "sr16-unet-step0000200.safetensors"
    assert select_snapshot(run, "snr_db").step == 300
    with pytest.raises(ValueError, match="unknown selection metric"):
        select_snapshot(run, "visqol")
    with pytest.raises(FileNotFoundError, match="no snapshots directory"):
        select_snapshot(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no snapshot from step 1 on"):
        select_snapshot(run, "lsd")
    # a later minimum step leaves the earlier snapshots out (a progressive GAN grown to full size)
    assert select_snapshot(run, min_step=250).step == 300
    assert select_snapshot(run, min_step=250).candidates == [(300, 2.0)]
    # and a maximum step: min == max releases that one snapshot (chosen elsewhere on validation)
    assert select_snapshot(run, min_step=100, max_step=100).step == 100
    assert select_snapshot(run, max_step=250).candidates == [(100, 3.0), (200, 2.0)]
    with pytest.raises(FileNotFoundError, match="to step 50"):
        select_snapshot(run, max_step=50)


def test_release_copies_the_weights_and_records_the_choice(tmp_path):
    run = _run(tmp_path, {100: {"loss": 3.0}, 200: {"loss": 2.0}}, init_from="rtgan train sr16-unet --preset live-r2")
    sel = select_snapshot(run)
    out = release(sel, tmp_path / "w" / "sr16-unet.safetensors", command="rtgan select run --out w")
    a, meta = read_checkpoint(out)
    b, _ = read_checkpoint(sel.path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert meta["selection"] == {"split": "val", "metric": "loss", "step": 200, "value": 2.0,
                                 "candidates": [[100, 3.0], [200, 2.0]], "command": "rtgan select run --out w"}
    assert meta["commands"] == ["rtgan train sr16-unet --preset live-r2", "rtgan train sr16-unet --preset tiny",
                                "rtgan select run --out w"]
    assert meta["command"] == "rtgan train sr16-unet --preset tiny" and meta["steps"] == 200
    assert registry.load_model("sr16-unet", path=out).config == registry.make_config("sr16-unet", "tiny")
    with pytest.raises(ValueError, match="must not overwrite"):
        release(sel, sel.path)


def test_cli_select(tmp_path, capsys):
    run = _run(tmp_path, {100: {"loss": 3.0}, 200: {"loss": 2.0}})
    out = tmp_path / "rel.safetensors"
    assert main(["select", str(run), "--out", str(out)]) == 0
    assert "selected sr16-unet-step0000200.safetensors, step 200: validation loss 2" in capsys.readouterr().out
    assert json.loads(out.with_suffix(".json").read_text())["selection"]["command"].startswith("rtgan select ")
    assert main(["select", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "no snapshots directory" in capsys.readouterr().err


def test_a_tonal_gate_leaves_out_snapshots_with_a_tone_and_records_every_figure(tmp_path):
    run = _run(tmp_path, {100: {"loss": 3.0}, 200: {"loss": 1.0}, 300: {"loss": 2.0}})
    figures = {100: 4.0, 200: 7.5, 300: 6.0}  # the val-best snapshot (200) has a tone above the gate

    def tonal(path):
        return figures[int(path.stem[-7:])]

    sel = select_snapshot(run, max_tonal_db=6.0, tonal=tonal)
    assert (sel.step, sel.value) == (300, 2.0)  # the gate is inclusive; the metric chooses among the rest
    assert sel.candidates == [(100, 3.0), (200, 1.0), (300, 2.0)] and sel.tonal_db == figures
    _, meta = read_checkpoint(release(sel, tmp_path / "rel.safetensors"))
    assert meta["selection"]["max_tonal_db"] == 6.0
    assert meta["selection"]["tonal_db"] == [[100, 4.0], [200, 7.5], [300, 6.0]]
    assert select_snapshot(run, max_tonal_db=7.5, tonal=tonal).step == 200
    with pytest.raises(FileNotFoundError, match="no snapshot passes the tonal gate of 3 dB"):
        select_snapshot(run, max_tonal_db=3.0, tonal=tonal)
    with pytest.raises(ValueError, match="finite"):
        select_snapshot(run, max_tonal_db=float("nan"), tonal=tonal)
    # without a gate nothing is measured
    assert select_snapshot(run, tonal=lambda p: pytest.fail("measured without a gate")).tonal_db == {}


def test_cli_select_measures_the_tonal_figure_of_each_snapshot(tmp_path, capsys):
    from rtgan.metrics import tonal_artifact
    run = _run(tmp_path, {100: {"loss": 3.0}, 200: {"loss": 2.0}})
    out = tmp_path / "rel.safetensors"
    assert main(["select", str(run), "--out", str(out), "--max-tonal-db", "100"]) == 0
    assert "2 of them under the tonal gate of 100 dB" in capsys.readouterr().out
    recorded = dict(json.loads(out.with_suffix(".json").read_text())["selection"]["tonal_db"])
    for step in (100, 200):
        direct = tonal_artifact(registry.load_generator(run / "snapshots" / f"sr16-unet-step{step:07d}.safetensors"))
        assert recorded[step] == pytest.approx(direct["peak_db"], abs=1e-3)
