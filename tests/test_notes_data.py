"""Tests for the bass-note set (rtgan.data.notes): config, splits, a tiny FluidSynth build, NoteDataset."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rtgan.data import notes
from rtgan.data.common import SPLITS
from rtgan.data.midi.tools import MissingToolError, soundfont_path
from rtgan.data.notes import (NoteDataset, NoteSetConfig, build_notes, midi_to_hz, pitches, read_config,
                              read_manifest, split_pairs)

HAS_FLUIDSYNTH = shutil.which("fluidsynth") is not None and soundfont_path().is_file()
needs_fluidsynth = pytest.mark.skipif(not HAS_FLUIDSYNTH, reason="needs fluidsynth and fluid-soundfont-gm "
                                                                 "(apt-get install fluidsynth fluid-soundfont-gm)")

# a tiny set: 2 programs x 3 pitches x 1 velocity, 1 s notes held 0.6 s
TINY = NoteSetConfig(programs=(32, 33), pitches=(40, 47, 55), velocities=(100,), seconds=1.0, note_seconds=0.6)


# ------------------------------------------------------------------ config

def test_config_defaults():
    cfg = NoteSetConfig()
    assert cfg.programs == tuple(range(32, 40)) and cfg.pitches == tuple(range(28, 65))
    assert cfg.sample_rate == 16000 and cfg.num_samples == 64000 and cfg.note_seconds == 3.0
    assert min(midi_to_hz(p) for p in cfg.pitches) > 32.7
    assert sum(cfg.split_fractions) == pytest.approx(1.0)
    assert NoteSetConfig.from_dict(cfg.to_dict()) == cfg
    assert NoteSetConfig(programs=range(33, 31, -1)).programs == (32, 33)  # any iterable, sorted
    with pytest.raises(dataclasses_frozen_error()):
        cfg.seed = 1  # type: ignore[misc]


def dataclasses_frozen_error():
    import dataclasses
    return dataclasses.FrozenInstanceError


@pytest.mark.parametrize("kw", [
    {"programs": ()}, {"programs": (32, 128)}, {"programs": (32, 32)}, {"pitches": (24, 40)},
    {"velocities": (0,)}, {"sample_rate": 16000.5}, {"sample_rate": 4000}, {"render_sample_rate": 8000},
    {"seconds": 3.0}, {"note_seconds": 0.0}, {"seconds": 4.00001}, {"reverb_room_size": 1.5},
    {"reverb_wet_level": float("nan")}, {"split_fractions": (0.8, 0.2)}, {"split_fractions": (0.9, 0.1, 0.0)},
    {"split_fractions": (0.8, 0.1, 0.2)}, {"silence_dbfs": 0.0}, {"programs": (32,)}, {"seed": "0"},
])
def test_config_rejects(kw):
    with pytest.raises(ValueError) as e:
        NoteSetConfig(**kw)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------ splits

def _check_split(cfg: NoteSetConfig, s: dict) -> None:
    assert set(s) == {(p, n) for p in cfg.programs for n in cfg.pitches}
    assert set(s.values()) == set(SPLITS)  # every split non-empty
    train_pitches = {n for (p, n), v in s.items() if v == "train"}
    assert train_pitches == set(cfg.pitches)  # every pitch seen in training


def test_split_default_properties():
    cfg = NoteSetConfig()
    s = split_pairs(cfg)
    _check_split(cfg, s)
    assert s == split_pairs(NoteSetConfig())  # deterministic
    assert s != split_pairs(NoteSetConfig(seed=1))
    assert split_pairs(NoteSetConfig(velocities=(50,))) == s  # velocities play no part
    n = len(s)
    frac = [sum(v == sp for v in s.values()) / n for sp in SPLITS]
    assert frac[0] == pytest.approx(0.8, abs=0.08) and frac[1] == pytest.approx(0.1, abs=0.06)


@pytest.mark.parametrize("seed", range(40))
def test_split_small_sets_keep_guarantees(seed):
    for cfg in (NoteSetConfig(programs=(32, 33), pitches=(40, 47, 55), seed=seed),
                NoteSetConfig(programs=(32, 33), pitches=tuple(range(30, 50)), split_fractions=(0.3, 0.3, 0.4),
                              seed=seed),
                NoteSetConfig(programs=(32, 33, 34), pitches=(40,), seed=seed)):
        _check_split(cfg, split_pairs(cfg))


def test_split_moves_uncovered_pitch_to_train():
    # with only 30 % training pairs, many pitches start with no training program
    cfg = NoteSetConfig(programs=(32, 33), pitches=tuple(range(30, 60)), split_fractions=(0.3, 0.3, 0.4))
    s = split_pairs(cfg)
    _check_split(cfg, s)
    held_out = sum(v != "train" for v in s.values())
    assert held_out > 0.3 * len(s)  # the rest stays held out


# ------------------------------------------------------------------ tools

def test_missing_tools_stop_before_any_work(monkeypatch, tmp_path):
    out = tmp_path / "set"
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(MissingToolError, match="fluidsynth") as e:
        build_notes(out, TINY, progress=False)
    assert "\n" not in str(e.value) and "note set" in str(e.value)
    assert not out.exists()


@needs_fluidsynth
@pytest.mark.parametrize("module", ["pedalboard", "mido"])
def test_missing_python_package(monkeypatch, tmp_path, module):
    monkeypatch.setitem(sys.modules, module, None)  # import fails
    with pytest.raises(MissingToolError, match=f"pip install {module}"):
        build_notes(tmp_path / "set", TINY, progress=False)
    assert not (tmp_path / "set").exists()


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="notes.jsonl"):
        read_manifest(tmp_path)
    with pytest.raises(FileNotFoundError, match="notes.jsonl"):
        NoteDataset(tmp_path, "train")


# ------------------------------------------------------------------ a tiny build

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if not HAS_FLUIDSYNTH:
        pytest.skip("needs fluidsynth and fluid-soundfont-gm (apt-get install fluidsynth fluid-soundfont-gm)")
    pytest.importorskip("pedalboard")
    pytest.importorskip("mido")
    root = tmp_path_factory.mktemp("notes")
    assert build_notes(root, TINY, progress=False, workers=2) == root
    return root


def _energy(x, sr, a, b):
    return float(np.sum(x[int(a * sr):int(b * sr)].astype(np.float64) ** 2))


def test_build_files_and_manifest(tiny):
    rows = read_manifest(tiny)
    assert len(rows) == 2 * 3 * 1 * 2
    on_disk = {str(p.relative_to(tiny)) for p in tiny.rglob("*.flac")}
    assert on_disk == {r["path"] for r in rows}
    for r in rows:
        info = sf.info(str(tiny / r["path"]))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_24")
        assert r["path"] == f"{r['label']}/p{r['program']:03d}_n{r['pitch']:03d}_v{r['velocity']:03d}.flac"
        x, _ = sf.read(str(tiny / r["path"]))
        assert r["peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(x).max()), abs=0.01)
        assert -60 < r["peak_dbfs"] < 0
    # splits: as split_pairs says, and all labels/velocities of a pair together
    s = split_pairs(TINY)
    by_pair: dict = {}
    for r in rows:
        by_pair.setdefault((r["program"], r["pitch"]), set()).add(r["split"])
    assert all(v == {s[k]} for k, v in by_pair.items())
    assert {r["pitch"] for r in rows if r["split"] == "train"} == set(TINY.pitches)
    meta = json.loads((tiny / "notes_config.json").read_text())
    t = meta["target"]
    assert NoteSetConfig.from_dict(t["config"]) == TINY == read_config(tiny)
    assert len(t["soundfont_sha256"]) == 64 and t["pedalboard"] and "FluidSynth" in t["fluidsynth"]
    assert meta["build"]["files"] == len(rows) and meta["build"]["skipped_silent"] == []
    assert pitches(tiny) == [40, 47, 55]


def test_reverb_decays_slower_and_pitch_is_right(tiny):
    for r in read_manifest(tiny):
        if r["label"] != "dry":
            continue
        dry, sr = sf.read(str(tiny / r["path"]))
        wet, _ = sf.read(str(tiny / "reverb" / Path(r["path"]).name))
        tail_dry = _energy(dry, sr, 0.7, 1.0) / _energy(dry, sr, 0.0, 0.5)
        tail_wet = _energy(wet, sr, 0.7, 1.0) / _energy(wet, sr, 0.0, 0.5)
        assert tail_wet > 10 * tail_dry + 1e-4, (r["path"], tail_dry, tail_wet)
        if r["program"] == 32:  # acoustic bass: the fundamental is its strongest partial
            n = int(0.5 * sr)
            spec = np.abs(np.fft.rfft(dry[:n] * np.hanning(n), 1 << 16))
            freqs = np.fft.rfftfreq(1 << 16, 1 / sr)
            spec[freqs < 25] = 0
            f_peak = freqs[np.argmax(spec)]
            expected = 440 * 2 ** ((r["pitch"] - 69) / 12)
            assert abs(12 * np.log2(f_peak / expected)) < 1.0, (r["path"], f_peak, expected)


def test_rebuild_same_config_is_noop(tiny, monkeypatch):
    before = {p: p.stat().st_mtime_ns for p in tiny.rglob("*") if p.is_file()}

    def boom(task):
        raise AssertionError("re-rendered")
    monkeypatch.setattr(notes, "_render_task", boom)
    assert build_notes(tiny, TINY, progress=False, workers=1) == tiny
    assert {p: p.stat().st_mtime_ns for p in tiny.rglob("*") if p.is_file()} == before
    # another config (or a missing file) is not the same set
    tools = notes.check_note_tools()
    sha = json.loads((tiny / "notes_config.json").read_text())["target"]["soundfont_sha256"]
    assert notes._is_complete(tiny, notes._target(TINY, tools, sha))
    other = NoteSetConfig(**{**TINY.to_dict(), "reverb_room_size": 0.5})
    assert not notes._is_complete(tiny, notes._target(other, tools, sha))


def test_dataset(tiny):
    ds = NoteDataset(tiny, "train")
    assert len(ds) == 2 * sum(1 for r in read_manifest(tiny) if r["split"] == "train" and r["label"] == "dry")
    audio, pitch, label = ds[0]
    assert audio.dtype == torch.float32 and audio.shape == (16000,)
    assert pitch.dtype == torch.int64 and pitch.ndim == 0 and int(pitch) in TINY.pitches
    assert label.dtype == torch.int64 and int(label) in (0, 1)
    assert {int(ds[i][2]) for i in range(len(ds))} == {0, 1}
    only_wet = NoteDataset(tiny, "test", labels=("reverb",))
    assert {int(only_wet[i][2]) for i in range(len(only_wet))} == {0}
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch[0].shape == (2, 16000) and batch[1].dtype == torch.int64
    with pytest.raises(ValueError, match="split"):
        NoteDataset(tiny, "dev")
    with pytest.raises(ValueError, match="labels"):
        NoteDataset(tiny, "train", labels=("wet",))


@needs_fluidsynth
def test_silent_notes_are_skipped(tmp_path, monkeypatch, caplog):
    pytest.importorskip("pedalboard")
    real = notes.render_note

    def quiet_47(program, pitch, velocity, cfg, **kw):
        dry, wet = real(program, pitch, velocity, cfg, **kw)
        return (dry * 0, wet * 0) if pitch == 47 else (dry, wet)
    monkeypatch.setattr(notes, "render_note", quiet_47)
    with caplog.at_level(logging.WARNING, logger="rtgan.data.notes"):
        build_notes(tmp_path, TINY, progress=False, workers=1)
    rows = read_manifest(tmp_path)
    assert len(rows) == 2 * 2 * 2 and 47 not in {r["pitch"] for r in rows}
    meta = json.loads((tmp_path / "notes_config.json").read_text())
    assert meta["build"]["skipped_silent"] == ["p032_n047_v100.flac", "p033_n047_v100.flac"]
    assert "silent" in caplog.text
