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


@pytest.mark.parametrize("change, why", [({"envelope_hidden": 4}, "left context"),  # seconds of context
                                         ({"mirror_gain": 0.5}, "sample index")])  # counts samples
def test_bench_leaves_out_overlap_save_where_it_would_not_serve(tmp_path, capsys, change, why):
    import dataclasses

    from rtgan.checkpoint import save_generator

    entry = registry.entry("sr-hifigan")
    m = entry.generator(dataclasses.replace(entry.presets["tiny"], **change)).eval()
    ck = save_generator(tmp_path / "m.safetensors", m, {"command": "test"})
    assert main(["bench", "--checkpoint", str(ck), "--block-size", "256", "--threads", "1", "--seconds", "0.2"]) == 0
    out, err = capsys.readouterr()
    assert "overlap-save not timed" in err and why in err
    rows = [line for line in out.splitlines() if line.strip().startswith("256")]
    assert rows and all("stateful" in line for line in rows)


def test_models_lists_sr_hifigan(capsys):
    assert main(["models"]) == 0
    assert "sr-hifigan" in capsys.readouterr().out


def test_eval_prints_table_and_writes_json_and_png(corpus, tiny_ckpt, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_json, out_png = tmp_path / "eval.json", tmp_path / "eval.png"
    assert main(["eval", "--checkpoint", str(tiny_ckpt), "--data", str(corpus), "--split", "train",
                 "--json", str(out_json), "--png", str(out_png), "--no-visqol", "-q"]) == 0
    text = capsys.readouterr().out
    assert "spline" in text and "tonal artifact" in text
    result = json.loads(out_json.read_text())
    assert set(result["table"]) == {"soxr", "kaiser", "butter4"}
    assert set(result["table"]["soxr"]["music"]) >= {"input", "spline", "model"}
    assert len(result["clips"]) == 2
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_without_usable_clips_is_a_clear_error(corpus, tiny_ckpt, capsys):
    assert main(["eval", "--checkpoint", str(tiny_ckpt), "--data", str(corpus), "--split", "test", "-q"]) == 2
    assert "no test clips" in capsys.readouterr().err


# --- issue 13: validation before work, signals, version and help ---------------------------

import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import rtgan.cli.common as cli_common  # noqa: E402
import rtgan.cli.main as cli  # noqa: E402


@pytest.fixture()
def no_model_load(monkeypatch):
    """Fail the test if a command loads a model (the checks under test must come first)."""
    def refuse(args):
        raise AssertionError("the model was loaded before the arguments were checked")
    monkeypatch.setattr(cli_common, "load_model", refuse)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("command", ["render", "live", "bench", "latency"])
@pytest.mark.parametrize("size", ["100000000", "1e9", "0", "-4", str(2**20 + 1)])
def test_absurd_block_sizes_are_refused_before_any_work(command, size, stereo_441, tmp_path, no_model_load, capsys):
    files = [str(stereo_441), str(tmp_path / "o.wav")] if command == "render" else []
    assert main([command, *files, "--block-size", size]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"rtgan {command}: error: --block-size") and "1048576" in line
    assert not (tmp_path / "o.wav").exists()


def test_other_absurd_numbers_are_refused(no_model_load, capsys):
    for argv, flag in ((["bench", "--threads", "0"], "--threads"), (["bench", "--seconds", "-1"], "--seconds"),
                       (["live", "--wet", "1.5"], "--wet"), (["live", "--channels", "0"], "--channels"),
                       (["latency", "--impulses", "0"], "--impulses")):
        assert main(argv) == 2
        assert flag in _one_line(capsys.readouterr().err)


def test_block_size_bound_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    assert "1048576" in capsys.readouterr().out


@pytest.mark.parametrize("problem", ["missing-dir", "extension", "read-only", "same-as-input", "is-a-dir"])
def test_output_path_problems_are_reported_before_rendering(problem, stereo_441, tmp_path, no_model_load, capsys):
    expect = {"missing-dir": "does not exist", "extension": "extension", "read-only": "cannot write",
              "same-as-input": "overwrite", "is-a-dir": "directory"}[problem]
    if problem == "missing-dir":
        out = tmp_path / "no" / "such" / "dir" / "o.wav"
    elif problem == "extension":
        out = tmp_path / "o.mp9"
    elif problem == "same-as-input":
        out = tmp_path / "." / stereo_441.name
    elif problem == "is-a-dir":
        out = tmp_path
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        out = ro / "o.wav"
        if _writable(ro):  # root ignores the mode bits; sysfs is read-only even to root
            if not Path("/sys").is_dir() or _writable("/sys"):
                pytest.skip("no read-only folder available to this user")
            out = Path("/sys/rtgan-test-out.wav")
    before = stereo_441.read_bytes()
    assert main(["render", str(stereo_441), str(out), "-q"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("rtgan render: error:") and expect in line, line
    assert stereo_441.read_bytes() == before
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


def _writable(folder) -> bool:
    from rtgan.fileio import unwritable_reason
    return unwritable_reason(folder) is None


def test_render_spectrogram_writes_a_png(tmp_path, tiny_ckpt, capsys):
    pytest.importorskip("matplotlib")
    src = tmp_path / "low.wav"
    t = np.arange(16000) / 16000
    sf.write(src, 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 5000 * t), 16000)
    out = tmp_path / "sub" / "out.flac"
    out.parent.mkdir()
    assert main(["render", str(src), str(out), "--checkpoint", str(tiny_ckpt), "-q", "--spectrogram"]) == 0
    png = tmp_path / "sub" / "out_spectrogram.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in capsys.readouterr().out
    explicit = tmp_path / "spec.png"
    assert main(["render", str(src), str(out), "--checkpoint", str(tiny_ckpt), "-q",
                 "--spectrogram", str(explicit)]) == 0
    assert explicit.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_spectrogram_problems_are_reported_first(tmp_path, stereo_441, no_model_load, monkeypatch, capsys):
    out = str(tmp_path / "o.wav")
    assert main(["render", str(stereo_441), out, "--spectrogram", str(tmp_path / "s.jpg")]) == 2
    assert ".png" in _one_line(capsys.readouterr().err)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert main(["render", str(stereo_441), out, "--spectrogram"]) == 2
    assert "pip install matplotlib" in _one_line(capsys.readouterr().err)
    assert not Path(out).exists()


def test_sigterm_while_writing_leaves_no_temp_file(tmp_path, tiny_ckpt, stereo_441, monkeypatch, capsys):
    """SIGTERM arriving inside the writer: the handler raises, the atomic writer cleans up."""
    import rtgan.audio.io as audio_io
    real_write = audio_io.sf.write

    def write_then_get_killed(file, *a, **kw):
        with open(file, "wb") as f:
            f.write(b"RIFF")  # half a file on disk
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1.0)  # the handler raises here, in the main thread
        real_write(file, *a, **kw)

    monkeypatch.setattr(audio_io.sf, "write", write_then_get_killed)
    out = tmp_path / "out.wav"
    before = signal.getsignal(signal.SIGTERM)
    assert main(["render", str(stereo_441), str(out), "--checkpoint", str(tiny_ckpt), "-q"]) == 143
    assert _one_line(capsys.readouterr().err) == "rtgan render: terminated (SIGTERM)"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([stereo_441.name, "tiny.safetensors", "tiny.json"])
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is uninstalled afterwards


def test_ctrl_c_is_one_line_and_exit_130(tmp_path, tiny_ckpt, stereo_441, monkeypatch, capsys):
    import rtgan.engine.render as render

    def interrupted(*a, **kw):
        raise KeyboardInterrupt
    monkeypatch.setattr(render, "stream_signal", interrupted)
    out = tmp_path / "out.wav"
    assert main(["render", str(stereo_441), str(out), "--checkpoint", str(tiny_ckpt), "-q"]) == 130
    assert _one_line(capsys.readouterr().err) == "rtgan render: interrupted (Ctrl-C)"
    assert not out.exists()


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_a_real_render(sig, code, tmp_path, tiny_ckpt):
    """A real process: 60 s of audio, the signal once the render is under way."""
    src = tmp_path / "long.wav"
    sf.write(src, (0.1 * np.random.default_rng(0).standard_normal(60 * 48000)).astype(np.float32), 48000,
             subtype="PCM_16")
    out = tmp_path / "out" / "long_out.wav"
    out.parent.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtgan.cli.main", "render", str(src), str(out), "--checkpoint", str(tiny_ckpt),
         "--runtime", "eager", "--block-size", "1024"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a background job may ignore SIGINT
    try:
        seen = b""
        deadline = time.monotonic() + 60
        while b"render long.wav" not in seen:  # tqdm's bar: the model is loaded and blocks are flowing
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk and time.monotonic() < deadline, seen
            seen += chunk
        time.sleep(0.3)
        proc.send_signal(sig)
        stdout, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = (seen + rest).decode()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    # besides tqdm's progress bar (closed with a newline), exactly one line
    lines = [ln for ln in err.splitlines() if ln.strip() and "render long.wav" not in ln]
    name = "terminated (SIGTERM)" if sig == signal.SIGTERM else "interrupted (Ctrl-C)"
    assert lines == [f"rtgan render: {name}"], err
    assert stdout == b""
    assert list(out.parent.iterdir()) == []  # neither the output nor a temporary file


def test_version(capsys):
    from importlib.metadata import version
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"rtgan {version('rtgan')}"


def _subparsers(parser, prefix=()):
    import argparse
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subparsers(sub, (*prefix, name))


def test_every_option_with_a_default_says_it_in_help():
    """Every option that has a default names it in --help (train and eval are documented elsewhere)."""
    import argparse
    parser = cli.build_parser()
    checked = set()
    for path, sub in _subparsers(parser):
        if path[0] in ("train", "eval"):
            continue
        for a in sub._actions:
            if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) or a.default in (None, False):
                continue
            text = sub._get_formatter()._expand_help(a)
            assert "default" in text, f"rtgan {' '.join(path)} {a.option_strings}: {text}"
            checked.add(path[0])
    assert checked >= {"render", "bench", "live", "latency", "data"}
    # and it reaches the user through argparse's formatting
    help_text = next(sub for path, sub in _subparsers(parser) if path == ("render",)).format_help()
    assert "(default: 4096)" in " ".join(help_text.split())


def test_a_reader_that_leaves_early_gets_no_traceback(monkeypatch, capsys):
    """``rtgan models | head -1``: the pipe closes; rtgan exits 141 (128 + SIGPIPE) quietly."""
    import sys

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["models"]) == 141
    assert capsys.readouterr().err == ""
