"""Tests for the instrument-transfer pairs (rtgan.data.pairs): config, splits, a tiny build, PairDataset, SNR."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rtgan.audio.io import write_audio
from rtgan.data import pairs
from rtgan.data.common import SPLITS
from rtgan.data.midi.tools import MissingToolError, soundfont_path
from rtgan.data.pairs import (PairDataset, PairSetConfig, build_pairs, input_target_snr, piece_id, read_config,
                              read_manifest, split_pieces)

HAS_TOOLS = (shutil.which("fluidsynth") is not None and soundfont_path().is_file()
             and all(importlib.util.find_spec(m) is not None for m in ("mido", "music21")))
TOOLS_REASON = ("needs fluidsynth, fluid-soundfont-gm, mido and music21 (apt-get install fluidsynth "
                "fluid-soundfont-gm; pip install mido music21)")

SR = 16000
#: MIDI times (s) and pitches of the separated notes of the synthetic piece
NOTE_TIMES = (0.25, 0.9, 1.55, 2.2)
NOTE_PITCHES = (60, 67, 72, 64)


# ------------------------------------------------------------------ config

def test_config_defaults():
    cfg = PairSetConfig()
    assert cfg.input_program == 0 and cfg.target_programs == (24, 40, 73) and cfg.programs == (0, 24, 40, 73)
    assert cfg.sample_rate == 16000 and cfg.render_sample_rate % cfg.sample_rate == 0
    assert cfg.size == "full" and cfg.max_seconds == 30.0 and cfg.pieces == ()
    assert ("-R", "0") == cfg.fluidsynth_options[:2] and ("-C", "0") == cfg.fluidsynth_options[2:4]
    assert sum(cfg.split_fractions) == pytest.approx(1.0)
    assert PairSetConfig.from_dict(cfg.to_dict()) == cfg
    assert PairSetConfig(target_programs=[73, 40]).target_programs == (40, 73)  # any sequence, sorted
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown fields"):
        PairSetConfig.from_dict({"bogus": 1})


@pytest.mark.parametrize("kw", [
    {"input_program": 128}, {"input_program": True}, {"target_programs": ()}, {"target_programs": (40, 40)},
    {"target_programs": (0, 40)}, {"target_programs": (40, 200)}, {"target_programs": ("violin",)},
    {"sample_rate": 16000.5}, {"sample_rate": 4000}, {"render_sample_rate": 8000}, {"size": "medium"},
    {"pieces": "bach/bwv66.6.mxl"}, {"pieces": ("a.mxl", "a.mxl")}, {"pieces": ("",)}, {"max_pieces": -1},
    {"max_score_cost": -5}, {"max_seconds": 0.0}, {"max_seconds": float("inf")}, {"split_fractions": (0.8, 0.2)},
    {"split_fractions": (0.9, 0.1, 0.0)}, {"split_fractions": (0.8, 0.1, 0.2)}, {"silence_dbfs": 0.0},
    {"seed": "0"}, {"fluidsynth_options": "-R 0"}, {"fluidsynth_options": ("-r", "44100")},
])
def test_config_rejects(kw):
    with pytest.raises(ValueError) as e:
        PairSetConfig(**kw)
    assert "\n" not in str(e.value)


def test_piece_id():
    assert piece_id("bach/bwv66.6.mxl") == "bach__bwv66.6.mxl"
    assert piece_id("trecento/PMFC_01-Lugentium siccentur.xml") == "trecento__PMFC_01-Lugentium_siccentur.xml"


def test_score_cost(tmp_path):
    import zipfile
    (tmp_path / "a.xml").write_bytes(b"x" * 100)
    (tmp_path / "a.abc").write_bytes(b"x" * 100)
    (tmp_path / "a.krn").write_bytes(b"x" * 100)
    with zipfile.ZipFile(tmp_path / "a.mxl", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("score.xml", "x" * 5000)
    assert pairs.score_cost(tmp_path / "a.xml") == 100
    slow = 100 * pairs.SLOW_FORMAT_FACTOR
    assert pairs.score_cost(tmp_path / "a.abc") == pairs.score_cost(tmp_path / "a.krn") == slow
    assert pairs.score_cost(tmp_path / "a.mxl") == 5000  # unzipped


# ------------------------------------------------------------------ splits

NAMES = [f"composer{i % 7}/piece{i:03d}.mxl" for i in range(300)]


def test_split_by_piece_deterministic_disjoint_nonempty():
    s = split_pieces(NAMES)
    assert set(s) == set(NAMES) and set(s.values()) == set(SPLITS)  # every piece in one split; none empty
    assert s == split_pieces(list(reversed(NAMES)) + NAMES[:5])  # order and duplicates play no part
    assert s != split_pieces(NAMES, PairSetConfig(seed=1))
    frac = [sum(v == sp for v in s.values()) / len(s) for sp in SPLITS]
    assert frac[0] == pytest.approx(0.8, abs=0.06) and frac[1] == pytest.approx(0.1, abs=0.05)
    # a piece keeps its split when others join (a bigger selection agrees with a smaller one)
    sub = split_pieces(NAMES[:150])
    assert sum(sub[p] == s[p] for p in sub) >= 148
    other = split_pieces(NAMES, PairSetConfig(split_fractions=(0.5, 0.25, 0.25)))
    assert sum(v == "train" for v in other.values()) / len(NAMES) == pytest.approx(0.5, abs=0.07)


@pytest.mark.parametrize("seed", range(20))
def test_split_small_sets_keep_every_split(seed):
    for n in (3, 4, 5):
        s = split_pieces(NAMES[:n], PairSetConfig(seed=seed))
        assert set(s.values()) == set(SPLITS)


# ------------------------------------------------------------------ tools

def test_missing_tools_stop_before_any_work(monkeypatch, tmp_path):
    out = tmp_path / "set"
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(MissingToolError, match="fluidsynth") as e:
        build_pairs(out, PairSetConfig(size="small"), progress=False)
    assert "\n" not in str(e.value) and "pair set" in str(e.value)
    assert not out.exists()


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="pairs.jsonl"):
        read_manifest(tmp_path)
    with pytest.raises(FileNotFoundError, match="pairs.jsonl"):
        PairDataset(tmp_path, "train", 40)
    with pytest.raises(FileNotFoundError, match="pairs_config.json"):
        read_config(tmp_path)


# ------------------------------------------------------------------ a tiny build

def _notes_midi(path: Path) -> Path:
    """Four separated notes (0.3 s each) at NOTE_TIMES, written with mido."""
    import mido
    mid = mido.MidiFile(type=0, ticks_per_beat=1000)  # 1 s per beat: one tick per ms
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=1_000_000, time=0))
    last = 0
    for t, p in zip(NOTE_TIMES, NOTE_PITCHES):
        on = int(round(t * 1000))
        tr.append(mido.Message("note_on", note=p, velocity=100, time=on - last))
        tr.append(mido.Message("note_off", note=p, velocity=0, time=300))
        last = on + 300
    mid.save(str(path))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if not HAS_TOOLS:
        pytest.skip(TOOLS_REASON)
    src = tmp_path_factory.mktemp("midi")
    cfg = PairSetConfig(pieces=("bach/bwv66.6.mxl", str(_notes_midi(src / "notes4.mid"))), max_seconds=4.0)
    root = tmp_path_factory.mktemp("pairs")
    assert build_pairs(root, cfg, progress=False, workers=1) == root
    return root, cfg


def _row(root, piece):
    return next(r for r in read_manifest(root) if r["piece"] == piece)


def _audio(root, row, program):
    x, sr = sf.read(str(root / row["paths"][str(program)]), dtype="float64")
    assert sr == SR
    return x


def test_build_files_and_manifest(tiny):
    root, cfg = tiny
    rows = read_manifest(root)
    assert [r["piece"] for r in rows] == ["bach/bwv66.6.mxl", "notes4.mid"]
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.flac")}
    assert on_disk == {p for r in rows for p in r["paths"].values()}
    for r in rows:
        assert set(r["paths"]) == {"0", "24", "40", "73"} and r["input_program"] == 0
        assert r["split"] in SPLITS and r["sample_rate"] == SR
        assert 2.5 < r["seconds"] <= 4.0 and r["samples"] == round(r["seconds"] * SR)
        for p, path in r["paths"].items():
            assert path == f"{int(p):03d}/{r['id']}.flac"
            info = sf.info(str(root / path))
            # every program of a piece: same length, mono, 24-bit, 16 kHz
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 1, r["samples"], "PCM_24")
            x = _audio(root, r, p)
            assert r["peak_dbfs"][p] == pytest.approx(20 * np.log10(np.abs(x).max()), abs=0.01)
            assert -50 < r["peak_dbfs"][p] < 0
    assert read_manifest(root)[0]["samples"] == 64000  # the chorale is longer than 4 s: cut at max_seconds
    meta = json.loads((root / "pairs_config.json").read_text())
    t = meta["target"]
    assert PairSetConfig.from_dict(t["config"]) == cfg == read_config(root)
    assert len(t["soundfont_sha256"]) == 64 and "FluidSynth" in t["fluidsynth"] and t["music21"]
    assert t["fluidsynth_options"][:6] == ["-ni", "-q", "-R", "0", "-C", "0"]
    assert [p for p, _ in t["pieces"]] == ["bach/bwv66.6.mxl", "notes4.mid"]
    assert meta["build"]["pieces"] == 2 and meta["build"]["skipped"] == {}
    splits = split_pieces(["bach/bwv66.6.mxl", "notes4.mid"], cfg)
    assert {r["piece"]: r["split"] for r in rows} == splits


def _onset_envelope(x, hop=32):
    """Half-wave rectified rise of the log energy in 2 ms frames (mean removed)."""
    n = len(x) // hop
    e = np.log10(np.mean(x[:n * hop].reshape(n, hop) ** 2, axis=1) + 1e-10)
    d = np.maximum(np.diff(e), 0.0)
    return d - d.mean()


def _best_lag(a, b, max_lag=30):
    """Lag (frames) maximising sum a[t + lag] * b[t]."""
    lags = range(-max_lag, max_lag + 1)
    c = [np.dot(a[max(0, k):len(a) + min(0, k)], b[max(0, -k):len(b) + min(0, -k)]) for k in lags]
    return int(np.argmax(c)) - max_lag


def test_pairs_are_sample_aligned(tiny):
    root, cfg = tiny
    for piece in ("bach/bwv66.6.mxl", "notes4.mid"):
        r = _row(root, piece)
        x = _audio(root, r, 0)
        ex = _onset_envelope(x)
        for p in cfg.target_programs:
            y = _audio(root, r, p)
            assert abs(_best_lag(_onset_envelope(y), ex)) <= 3, (piece, p)  # within 6 ms
            # the measure has the power to see a 20 ms shift
            assert _best_lag(_onset_envelope(np.roll(y, 320)), ex) in range(7, 14), (piece, p)
    # the separated notes: every program's onsets within 12 ms after the MIDI note-on, and within 8 ms of the piano's
    r = _row(root, "notes4.mid")

    def onsets(x):
        out = []
        for t in NOTE_TIMES:
            a = int(t * SR)
            before = np.abs(x[a - int(0.06 * SR):a - int(0.01 * SR)]).max()  # the last note's release
            seg = np.abs(x[a - int(0.01 * SR):a + int(0.1 * SR)])
            out.append(np.flatnonzero(seg > max(4 * before, 0.01 * seg.max()))[0] / SR - 0.01)
        return np.array(out)
    ref = onsets(_audio(root, r, 0))
    assert np.all((ref >= 0) & (ref < 0.012)), ref
    for p in cfg.target_programs:
        on = onsets(_audio(root, r, p))
        assert np.all((on >= 0) & (on < 0.012)) and np.all(np.abs(on - ref) < 0.008), (p, on, ref)


def _ltas_db(x, n=1024):
    """Long-term average spectrum (dB, normalised to unit energy) over 100 Hz..6 kHz."""
    k = len(x) // n
    s = (np.abs(np.fft.rfft(x[:k * n].reshape(k, n) * np.hanning(n), axis=1)) ** 2).mean(axis=0)
    f = np.fft.rfftfreq(n, 1 / SR)
    s = s[(f > 100) & (f < 6000)]
    return 10 * np.log10(s / s.sum() + 1e-20)


def test_target_is_another_instrument(tiny):
    root, cfg = tiny
    for piece in ("bach/bwv66.6.mxl", "notes4.mid"):
        r = _row(root, piece)
        x = _audio(root, r, 0)
        assert np.sqrt(np.mean((_ltas_db(x) - _ltas_db(3 * x)) ** 2)) < 1e-6  # the distance ignores level
        for p in cfg.target_programs:
            y = _audio(root, r, p)
            dist = np.sqrt(np.mean((_ltas_db(x) - _ltas_db(y)) ** 2))
            assert dist > 5.0, (piece, p, dist)  # measured 8.5-17.7 dB
            assert not np.allclose(x, y, atol=1e-3)


def test_rebuild_same_config_is_noop(tiny, monkeypatch):
    root, cfg = tiny
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}

    def boom(task):
        raise AssertionError("re-rendered")
    monkeypatch.setattr(pairs, "_pair_task", boom)
    assert build_pairs(root, cfg, progress=False, workers=1) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before
    # another config is another set: it would render again
    meta = (root / "pairs_config.json").read_text()
    with pytest.raises(AssertionError, match="re-rendered"):
        build_pairs(root, dataclasses.replace(cfg, max_seconds=3.0), progress=False, workers=1)
    assert not (root / "pairs_config.json").exists()  # a started rebuild first drops the "complete" mark
    (root / "pairs_config.json").write_text(meta)  # (the later tests use the set)
    # so is a set with a file missing
    f = root / read_manifest(root)[0]["paths"]["40"]
    f.rename(f.with_suffix(".bak"))
    try:
        with pytest.raises(AssertionError, match="re-rendered"):
            build_pairs(root, cfg, progress=False, workers=1)
    finally:
        f.with_suffix(".bak").rename(f)
        (root / "pairs_config.json").write_text(meta)


def test_percussion_piece_is_skipped(tmp_path):
    if not HAS_TOOLS:
        pytest.skip(TOOLS_REASON)
    import mido
    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    for ch, note in ((0, 60), (9, 38)):
        tr.append(mido.Message("note_on", channel=ch, note=note, velocity=100, time=0))
        tr.append(mido.Message("note_off", channel=ch, note=note, velocity=0, time=480))
    mid.save(str(tmp_path / "drums.mid"))
    cfg = PairSetConfig(pieces=(str(tmp_path / "drums.mid"), str(_notes_midi(tmp_path / "n.mid"))),
                        target_programs=(40,), max_seconds=3.0)
    root = build_pairs(tmp_path / "set", cfg, progress=False, workers=1)
    assert [r["piece"] for r in read_manifest(root)] == ["n.mid"]
    skipped = json.loads((root / "pairs_config.json").read_text())["build"]["skipped"]
    assert list(skipped) == ["drums.mid"] and skipped["drums.mid"].startswith("percussion")


# ------------------------------------------------------------------ PairDataset on the tiny build

def test_dataset_crops_are_aligned_slices(tiny):
    root, cfg = tiny
    r = _row(root, "bach/bwv66.6.mxl")
    x, y = _audio(root, r, 0).astype(np.float32), _audio(root, r, 40).astype(np.float32)
    ds = PairDataset(root, r["split"], 40, crop=8192, random_crop=True, seed=3)
    windows = np.lib.stride_tricks.sliding_window_view(x, 32)
    for i in range(len(ds)):
        a, b = ds[i]
        assert a.shape == b.shape == (8192,) and a.dtype == b.dtype == torch.float32
        if ds.rows[ds.crop_at(i)[0]]["piece"] != r["piece"]:
            continue
        hit = np.flatnonzero(np.all(windows == a.numpy()[:32], axis=1))
        assert hit.size, "crop is not a slice of the input"
        s = int(hit[0])
        assert np.array_equal(a.numpy(), x[s:s + 8192])
        assert np.array_equal(b.numpy(), y[s:s + 8192])  # the target over the same samples


def test_dataset_validation_crops_deterministic(tiny):
    root, _ = tiny
    split = _row(root, "bach/bwv66.6.mxl")["split"]
    a = PairDataset(root, split, 73, random_crop=False)
    b = PairDataset(root, split, 73, random_crop=False, seed=99)
    assert len(a) == len(b) > 0
    for i in range(len(a)):
        ri, s = a.crop_at(i)
        assert s % 8192 == 0
        assert all(torch.equal(u, v) for u, v in zip(a[i], b[i]))
        assert all(torch.equal(u, v) for u, v in zip(a[i], a[i]))
    with pytest.raises(ValueError, match="target program 41"):
        PairDataset(root, split, 41)
    with pytest.raises(ValueError, match="split"):
        PairDataset(root, "dev", 40)


# ------------------------------------------------------------------ hand-made sets (no FluidSynth needed)

def _hand_set(root: Path, pieces: dict[str, tuple[np.ndarray, np.ndarray, str]], target=40) -> Path:
    rows = []
    for name, (x, y, split) in pieces.items():
        paths = {"0": f"000/{name}.flac", str(target): f"{target:03d}/{name}.flac"}
        for path in paths.values():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
        write_audio(root / paths["0"], x.astype(np.float32), SR, subtype="PCM_24")
        write_audio(root / paths[str(target)], y.astype(np.float32), SR, subtype="PCM_24")
        rows.append({"piece": name, "id": name, "split": split, "samples": len(x), "seconds": len(x) / SR,
                     "sample_rate": SR, "input_program": 0, "paths": paths, "peak_dbfs": {}})
    (root / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_dataset_skips_crops_silent_in_both(tmp_path):
    rng = np.random.default_rng(0)
    n = 8192 * 6
    x = 0.1 * rng.standard_normal(n)
    y = 0.1 * rng.standard_normal(n)
    x[8192:3 * 8192] = 0.0  # crops 1, 2: input silent ...
    y[2 * 8192:4 * 8192] = 0.0  # crops 2, 3: target silent -> crop 2 silent in both
    x[5 * 8192:] = 1e-5  # crop 5: both below -60 dBFS (-100 dB)
    y[5 * 8192:] = 0.0
    root = _hand_set(tmp_path, {"a": (x, y, "val"), "short": (0.1 * np.ones(1000), 0.1 * np.ones(1000), "val")})
    ds = PairDataset(root, "val", 40, random_crop=False)
    assert [ds.crop_at(i) for i in range(len(ds))] == [(0, 0), (0, 8192), (0, 3 * 8192), (0, 4 * 8192), (1, 0)]
    a, b = ds[4]  # a piece shorter than a crop: one zero-padded crop
    assert a.shape == (8192,) and float(a[999]) == pytest.approx(0.1, abs=1e-6) and float(a[1000:].abs().max()) == 0
    # random crops never return a crop silent in both
    tr = PairDataset(root, "val", 40, crop=4096, random_crop=True, seed=1)
    for epoch in range(3):
        tr.set_epoch(epoch)
        for i in range(len(tr)):
            a, b = tr[i]
            assert max(float(a.abs().max()), float(b.abs().max())) >= 1e-3
    # random crops: the same for the same (seed, epoch), new for a new epoch
    t1 = PairDataset(root, "val", 40, random_crop=True, seed=5)
    t2 = PairDataset(root, "val", 40, random_crop=True, seed=5)
    first = [t1[i][0] for i in range(4)]
    assert all(torch.equal(u, t2[i][0]) for i, u in enumerate(first))
    t1.set_epoch(1)
    assert not all(torch.equal(u, t1[i][0]) for i, u in enumerate(first))


def test_input_target_snr_matches_hand_computation(tmp_path):
    rng = np.random.default_rng(1)
    n = 8192 * 3 + 100
    pieces = {}
    for k, split in enumerate(("test", "test", "train")):
        t = 0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / SR + k) + 0.02 * rng.standard_normal(n)
        pieces[f"p{k}"] = ((0.5 + 0.2 * k) * t + 0.05 * rng.standard_normal(n), t, split)
    root = _hand_set(tmp_path, pieces)
    expected, whole = [], []
    for name in ("p0", "p1"):
        x, _ = sf.read(str(root / f"000/{name}.flac"), dtype="float64")
        y, _ = sf.read(str(root / f"040/{name}.flac"), dtype="float64")
        whole.append(10 * np.log10(np.sum(y ** 2) / np.sum((y - x) ** 2)))
        for s in range(0, 3 * 8192, 8192):  # 3 whole grid crops; the 100-sample rest is not a crop
            xc, yc = x[s:s + 8192], y[s:s + 8192]
            expected.append(10 * np.log10(np.sum(yc ** 2) / np.sum((yc - xc) ** 2)))
    got = input_target_snr(root, "test", 40)
    assert got["n"] == 6 and [k[0] for k in got["keys"]] == ["p0"] * 3 + ["p1"] * 3
    np.testing.assert_allclose(got["values"], expected, atol=1e-6)
    assert got["mean"] == pytest.approx(np.mean(expected), abs=1e-6)
    assert got["std"] == pytest.approx(np.std(expected), abs=1e-6)
    xs = np.concatenate([sf.read(str(root / f"000/p{k}.flac"))[0][:3 * 8192] for k in (0, 1)])
    ys = np.concatenate([sf.read(str(root / f"040/p{k}.flac"))[0][:3 * 8192] for k in (0, 1)])
    assert got["level_db"] == pytest.approx(10 * np.log10(np.sum(xs ** 2) / np.sum(ys ** 2)), abs=1e-6)
    per_piece = input_target_snr(root, "test", 40, crop=None)
    assert per_piece["keys"] == ["p0", "p1"]
    np.testing.assert_allclose(per_piece["values"], whole, atol=1e-6)
    assert -2 < min(expected) and max(expected) < 10  # sanity: a scaled, noisy copy


# ------------------------------------------------------------------ CLI

def test_cli_parses_pairs():
    from rtgan.cli.main import build_parser
    args = build_parser().parse_args(["data", "pairs", "--out", "x", "--size", "small", "--workers", "1", "-q"])
    assert (args.command, args.data_command, args.size, args.workers, args.quiet) == ("data", "pairs", "small", 1, True)
    assert args.max_pieces == 0 and args.max_seconds is None


def test_cli_pairs_small_build(tmp_path, capsys):
    if not HAS_TOOLS:
        pytest.skip(TOOLS_REASON)
    from rtgan.cli.main import main
    out = tmp_path / "pairs"
    argv = ["data", "pairs", "--out", str(out), "--size", "small", "--max-seconds", "2", "--workers", "1", "-q"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    rows = read_manifest(out)
    assert len(rows) == 4 and {r["split"] for r in rows} == set(SPLITS)  # music21's 4 small pieces, split by piece
    assert f"{out}: 4 pieces x 4 programs" in text and "test 1 pieces" in text
    for p in (24, 40, 73):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{p} "))
        b = input_target_snr(out, "test", p)
        assert f"{b['mean']:6.2f} +- {b['std']:.2f} dB ({b['n']} crops; input {b['level_db']:+.1f} dB" in line
    assert read_config(out) == PairSetConfig(size="small", max_seconds=2.0)
    assert main(["data", "pairs", "--out", str(out), "--workers", "0"]) == 2
