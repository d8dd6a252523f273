import json

import numpy as np
import pytest
import soundfile as sf
import torch

from rtgan.audio.io import resample
from rtgan.checkpoint import save_generator
from rtgan.cli.main import main
from rtgan.engine import offline
from rtgan.models import registry

from helpers import random_model


@pytest.fixture()
def tiny_ckpt(tmp_path):
    torch.manual_seed(0)
    return save_generator(tmp_path / "tiny.safetensors", random_model("sr-hifigan", "tiny"), {})


@pytest.fixture()
def stereo_441(tmp_path):
    t = np.arange(44100 // 2) / 44100
    x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 1000 * t)], axis=1)
    path = tmp_path / "in.wav"
    sf.write(path, x, 44100, subtype="PCM_16")
    return path


def test_render_resamples_keeps_channels_and_aligns(tmp_path, tiny_ckpt, stereo_441, capsys):
    out = tmp_path / "out.wav"
    assert main(["render", str(stereo_441), str(out), "--checkpoint", str(tiny_ckpt), "--block-size", "300", "-q"]) == 0
    y, sr = sf.read(out, always_2d=True, dtype="float32")
    assert sr == 48000 and y.shape == (24000, 2)
    # the output is whole-file inference on the resampled input, latency removed
    x, _ = sf.read(stereo_441, always_2d=True, dtype="float32")
    x48 = torch.from_numpy(resample(x.T, 44100, 48000).astype(np.float32))[:, None, :]
    m = registry.load_model("sr-hifigan", path=tiny_ckpt)
    ref = np.clip(offline(m, x48)[:, 0].numpy().T, -1, 1)
    assert np.abs(y - ref).max() < 1e-4  # PCM_24 quantisation is ~1e-7
    assert "latency" in capsys.readouterr().out


def test_render_refuses_to_overwrite_input(tiny_ckpt, stereo_441, capsys):
    before = stereo_441.read_bytes()
    assert main(["render", str(stereo_441), str(stereo_441), "--checkpoint", str(tiny_ckpt), "-q"]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert stereo_441.read_bytes() == before


@pytest.mark.parametrize("content", ["garbage", "empty", "nan"])
def test_render_bad_input_gives_clear_error(tmp_path, tiny_ckpt, content, capsys):
    bad = tmp_path / "bad.wav"
    if content == "garbage":
        bad.write_bytes(b"this is not audio" * 10)
    elif content == "empty":
        sf.write(bad, np.zeros((0, 1)), 48000)
    else:
        sf.write(bad, np.array([0.0, np.nan, 0.1] * 100), 48000, subtype="FLOAT")
    out = tmp_path / "out.wav"
    assert main(["render", str(bad), str(out), "--checkpoint", str(tiny_ckpt), "-q"]) == 2
    err = capsys.readouterr().err
    assert "bad.wav" in err
    assert not out.exists()


def test_render_missing_input(tmp_path, tiny_ckpt, capsys):
    assert main(["render", str(tmp_path / "nope.wav"), str(tmp_path / "o.wav"), "--checkpoint", str(tiny_ckpt)]) == 2
    assert "nope.wav" in capsys.readouterr().err


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, stereo_441, capsys):
    ck = tmp_path / "c.safetensors"
    ck.write_bytes(b"\x00" * 100)
    (tmp_path / "c.json").write_text(json.dumps({"format_version": 1, "model": "sr-hifigan", "config": {}}))
    assert main(["render", str(stereo_441), str(tmp_path / "o.wav"), "--checkpoint", str(ck), "-q"]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_bench_json_has_the_documented_keys(capsys):
    assert main(["bench", "--random-weights", "--preset", "tiny", "--block-size", "256", "--threads", "1",
                 "--seconds", "0.3", "--mode", "stateful", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    for key in ("latency_samples", "latency_ms", "block_ms_median", "block_ms_p99", "rtf", "offline_block_ms",
                "ratio_to_offline"):
        assert key in row
    m = registry.build("sr-hifigan", "tiny")
    # block buffering + the model's streaming delay (256 is a multiple of the granule: no FIFO delay)
    assert row["latency_samples"] == 256 + m.latency_samples
    assert row["latency_ms"] == pytest.approx(1000 * row["latency_samples"] / 48000)
    assert row["block_ms_p99"] >= row["block_ms_median"] > 0


def test_models_lists_sr_hifigan(capsys):
    assert main(["models"]) == 0
    assert "sr-hifigan" in capsys.readouterr().out


def test_eval_prints_table_and_writes_json_and_png(corpus, tiny_ckpt, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_json, out_png = tmp_path / "eval.json", tmp_path / "eval.png"
    assert main(["eval", "--checkpoint", str(tiny_ckpt), "--data", str(corpus), "--split", "train",
                 "--json", str(out_json), "--png", str(out_png), "-q"]) == 0
    text = capsys.readouterr().out
    assert "| music | 2 |" in text and "spline SNR dB" in text
    result = json.loads(out_json.read_text())
    assert set(result["table"]["music"]) >= {"input", "spline", "model"}
    assert len(result["clips"]) == 2
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_without_usable_clips_is_a_clear_error(corpus, tiny_ckpt, capsys):
    assert main(["eval", "--checkpoint", str(tiny_ckpt), "--data", str(corpus), "--split", "test", "-q"]) == 2
    assert "no test clips" in capsys.readouterr().err
