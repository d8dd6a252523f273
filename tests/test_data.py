"""Tests for rtgan.data: corpus builder on fake package trees, splits, manifest, dataset."""

from __future__ import annotations

import json
import logging
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import butter, firwin, sosfiltfilt, welch

from rtgan.audio.io import resample
from rtgan.data.common import SPLITS, assign_splits
from rtgan.data.corpus import build_corpus, manifest_hash
from rtgan.data.corpus.measure import measure_bandwidth, measure_energy_bandwidth
from rtgan.data.dataset import ClipDataset, load_manifest
from rtgan.data.sources import SOURCES, get_source

SR = 16000          # target rate of the test corpus (small, fast)
CLIP = 2.0          # clip length of the test corpus, seconds
LP_CUTOFF = 3000.0  # cutoff of the low-passed noise file, Hz

FIELDS = {
    "path", "source", "package", "package_version", "original_path", "license", "domain", "split",
    "split_key", "start_seconds", "duration_seconds", "num_samples", "sample_rate",
    "original_sample_rate", "bandwidth_hz", "energy_bandwidth_hz",
}


def _noise(seconds: float, sr: int, channels: int = 1, seed: int = 0, level: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = level * rng.standard_normal((int(seconds * sr), channels))
    return x if channels > 1 else x[:, 0]


def _write(path: Path, data: np.ndarray, sr: int, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, **kw)


def _malformed_wav(path: Path) -> None:
    """A RIFF/WAVE header whose 'fmt ' chunk is truncated garbage."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 4) + b"\x01\x00\xff\xff" + b"data" + struct.pack("<I", 8) + bytes(8)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def make_fake_packages(root: Path) -> dict[str, Path]:
    """Create extracted-package-like trees for three real source definitions."""
    roots = {}
    # hydrogen-drumkits: 4 kits; stereo 44.1 kHz file, malformed wav, low-passed noise,
    # digital silence and a too-short one-shot.
    r = roots["hydrogen-drumkits"] = root / "hydrogen"
    kits = r / get_source("hydrogen-drumkits").base
    _write(kits / "KitA" / "stereo.wav", _noise(3.5, 44100, channels=2, seed=1), 44100)
    _write(kits / "KitA" / "kick.wav", _noise(0.8, 44100, seed=2), 44100)
    _malformed_wav(kits / "KitB" / "broken.wav")
    _write(kits / "KitB" / "snare.flac", _noise(1.2, 48000, seed=3), 48000)
    taps = firwin(2047, LP_CUTOFF, fs=48000, window=("kaiser", 10.0))  # steep, ~-100 dB stopband
    lp = np.convolve(_noise(5.0, 48000, seed=4, level=0.5), taps, mode="same")
    _write(kits / "KitC" / "lowpass.wav", lp, 48000, subtype="FLOAT")
    _write(kits / "KitD" / "silence.wav", np.zeros(48000), 48000)
    _write(kits / "KitD" / "tiny.wav", _noise(0.3, 48000, seed=5), 48000)
    _write(kits / "KitD" / "hat.wav", _noise(1.0, 48000, seed=6), 48000)
    (kits / "KitA" / "drumkit.xml").write_text("<drumkit/>")  # not audio: ignored
    # sonic-pi-samples: 4 families, one 22.05 kHz file
    r = roots["sonic-pi-samples"] = root / "sonicpi"
    sp = r / get_source("sonic-pi-samples").base
    sos22 = butter(8, 8000, btype="low", fs=44100, output="sos")
    _write(sp / "loop_slow.wav", _noise(2.5, 22050, seed=7), 22050)
    _write(sp / "bd_boom.flac", sosfiltfilt(sos22, _noise(1.5, 44100, seed=8)), 44100)
    _write(sp / "ambi_drone.flac", _noise(4.5, 44100, seed=9), 44100)
    _write(sp / "tabla_ke.flac", _noise(0.7, 44100, seed=10), 44100)
    _write(sp / "bd_fat.flac", _noise(0.9, 44100, seed=11), 44100)
    # klettres-data: 3 voices (language folders), Ogg/Vorbis like the real package
    r = roots["klettres-data"] = root / "klettres"
    kl = r / get_source("klettres-data").base
    for i, lang in enumerate(["aa", "bb", "cc", "dd"]):
        _write(kl / lang / "alpha" / "a.ogg", _noise(1.1, 44100, seed=20 + i), 44100, format="OGG",
               subtype="VORBIS")
        _write(kl / lang / "syllab" / "ba.ogg", _noise(0.6, 44100, seed=30 + i), 44100, format="OGG",
               subtype="VORBIS")
    (kl / "aa.txt").write_text("letters")
    return roots


@pytest.fixture(scope="module")
def fake_roots(tmp_path_factory) -> dict[str, Path]:
    return make_fake_packages(tmp_path_factory.mktemp("pkgs"))


@pytest.fixture(scope="module")
def corpus(fake_roots, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(out, size="full", sample_rate=SR, clip_seconds=CLIP, roots=fake_roots, progress=False,
                 workers=2)
    return out


def _rows_by_file(rows):
    out = {}
    for r in rows:
        out.setdefault(r["original_path"].rsplit("/", 1)[-1], []).append(r)
    return out


# --- splits -------------------------------------------------------------------

def test_assign_splits_deterministic_and_complete():
    keys = [f"k{i}" for i in range(50)]
    a = assign_splits(keys, "src")
    assert a == assign_splits(list(reversed(keys)) + keys[:5], "src")
    assert set(a.values()) == set(SPLITS)
    assert sum(v == "train" for v in a.values()) > 30
    for n in (3, 4, 5):
        got = assign_splits([f"x{i}" for i in range(n)], "other")
        assert set(got.values()) == set(SPLITS), got
    # weighted: ~80/10/10 of the total weight, keys kept whole
    rng = np.random.default_rng(0)
    w = {f"t{i}": float(rng.uniform(1, 10)) for i in range(400)}
    aw = assign_splits(w, "src", weights=w)
    share = {s: sum(v for k, v in w.items() if aw[k] == s) / sum(w.values()) for s in SPLITS}
    assert abs(share["train"] - 0.8) < 0.02 and abs(share["val"] - 0.1) < 0.02, share
    assert assign_splits(w, "src", weights=w) == aw
    heavy = assign_splits(["big", "a", "b", "c"], "s", weights={"big": 100.0, "a": 1, "b": 1, "c": 1})
    assert set(heavy.values()) == set(SPLITS)
    assert len(assign_splits(["only"], "s")) == 1
    assert set(assign_splits(["a", "b"], "s").values()) <= set(SPLITS)


def test_split_keys_never_cross_splits(corpus):
    rows = load_manifest(corpus)
    for src in {r["source"] for r in rows}:
        key_split = {}
        for r in (r for r in rows if r["source"] == src):
            assert key_split.setdefault(r["split_key"], r["split"]) == r["split"]
        assert set(key_split.values()) == set(SPLITS), (src, key_split)
    by_file = _rows_by_file(rows)
    assert by_file["stereo.wav"][0]["split_key"] == "KitA"
    assert by_file["a.ogg"][0]["split_key"] in {"aa", "bb", "cc", "dd"}
    assert by_file["loop_slow.wav"][0]["split_key"] == "loop"


# --- manifest -------------------------------------------------------------------

def test_manifest_fields_and_audio(corpus):
    rows = load_manifest(corpus)
    assert rows
    for r in rows:
        assert FIELDS <= set(r), FIELDS - set(r)
        assert r["sample_rate"] == SR
        assert r["path"].startswith(f"{r['split']}/{r['source']}/") and r["path"].endswith(".flac")
        info = sf.info(str(corpus / r["path"]))
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
        assert info.frames == r["num_samples"] == round(r["duration_seconds"] * SR)
        assert 0 < r["bandwidth_hz"] <= SR / 2
        assert r["domain"] == SOURCES[r["source"]].domain
        assert r["package"] == SOURCES[r["source"]].package
        assert r["package_version"] == "unknown"
        assert r["original_path"].startswith(SOURCES[r["source"]].base + "/")
    by_file = _rows_by_file(rows)
    # stereo 3.5 s -> a full 2 s clip + a 1.5 s tail (>= 1 s kept)
    st = by_file["stereo.wav"]
    assert [(r["start_seconds"], r["duration_seconds"]) for r in st] == [(0.0, 2.0), (2.0, 1.5)]
    assert st[0]["original_sample_rate"] == 44100 and st[0]["original_channels"] == 2
    # 4.5 s -> two clips, 0.5 s tail dropped; short one-shots (>= 0.5 s) kept whole
    assert [r["duration_seconds"] for r in by_file["ambi_drone.flac"]] == [2.0, 2.0]
    assert [r["duration_seconds"] for r in by_file["kick.wav"]] == [0.8]
    assert [r["duration_seconds"] for r in by_file["ba.ogg"]][0] == pytest.approx(0.6, abs=1e-3)
    # too short, digital silence and malformed files give no clips
    for name in ("tiny.wav", "silence.wav", "broken.wav", "drumkit.xml", "aa.txt"):
        assert name not in by_file
    # 22.05 kHz source: resampled, bandwidth limited by its Nyquist frequency
    lo = by_file["loop_slow.wav"]
    assert lo[0]["original_sample_rate"] == 22050 and lo[0]["duration_seconds"] == 2.0
    assert 5000 < lo[0]["bandwidth_hz"] <= 22050 / 2 + 50
    # measured bandwidth of low-passed noise is close to its cutoff (both definitions)
    for r in by_file["lowpass.wav"]:
        assert abs(r["bandwidth_hz"] - LP_CUTOFF) < 0.1 * LP_CUTOFF, r["bandwidth_hz"]
        assert abs(r["energy_bandwidth_hz"] - LP_CUTOFF) < 0.1 * LP_CUTOFF, r["energy_bandwidth_hz"]
    assert 7000 < by_file["bd_boom.flac"][0]["bandwidth_hz"] <= SR / 2
    for r in rows:
        assert 0 < r["energy_bandwidth_hz"] <= r["bandwidth_hz"] + 50
    # licenses: per kit for hydrogen
    assert by_file["stereo.wav"][0]["license"] == SOURCES["hydrogen-drumkits"].license  # unknown kit
    meta = json.loads((corpus / "corpus.json").read_text())
    assert meta["manifest_sha256"] == manifest_hash(corpus / "manifest.jsonl")
    assert meta["sample_rate"] == SR and meta["clip_seconds"] == CLIP
    assert meta["num_clips"] == len(rows)


def test_measure_bandwidth():
    sr = 48000
    t = np.arange(sr) / sr
    assert abs(measure_bandwidth(0.5 * np.sin(2 * np.pi * 1000 * t), sr) - 1000) < 200
    assert abs(measure_energy_bandwidth(0.5 * np.sin(2 * np.pi * 1000 * t), sr) - 1000) < 100
    assert measure_bandwidth(np.zeros(1000), sr) == 0.0 == measure_energy_bandwidth(np.zeros(1000), sr)
    # full-band noise with a -40 dB high band: the content extent counts the quiet band
    rng = np.random.default_rng(0)
    lo = np.convolve(rng.standard_normal(2 * sr), firwin(1023, 4000, fs=sr), mode="same")
    hi = np.convolve(rng.standard_normal(2 * sr), firwin(1023, [12000, 16000], fs=sr, pass_zero=False),
                     mode="same")
    x = 0.3 * lo + 0.003 * hi
    assert abs(measure_bandwidth(x, sr) - 16000) < 600
    assert measure_energy_bandwidth(x, sr) < 4500
    # below the absolute floor (-130 dB/Hz) nothing counts
    assert measure_bandwidth(1e-7 * rng.standard_normal(sr), sr) == 0.0


@pytest.mark.parametrize("sr_in,sr_out", [(22050, 48000), (48000, 22050), (44100, 16000)])
def test_resample_band_limits(sr_in, sr_out):
    x = np.random.default_rng(0).standard_normal(sr_in * 4)
    y = resample(x, sr_in, sr_out)
    assert y.shape == (int(np.ceil(x.size * sr_out / sr_in)),)
    f, p = welch(y, sr_out, window="blackmanharris", nperseg=512)
    nyq = min(sr_in, sr_out) / 2
    ref = np.median(p[(f > 0.1 * nyq) & (f < 0.8 * nyq)])
    db = 10 * np.log10(p / ref)
    assert np.all(np.abs(db[(f > 0.1 * nyq) & (f < 0.85 * nyq)]) < 1.5)     # flat passband
    assert np.all(db[f > 1.03 * nyq] < -75)                                  # no images / aliases
    np.testing.assert_allclose(resample(x, sr_in, sr_in), x)


def test_malformed_file_logged_and_rerun_reproduces(fake_roots, tmp_path, caplog):
    out = tmp_path / "c"
    with caplog.at_level(logging.WARNING, logger="rtgan.data.corpus"):
        m = build_corpus(out, size="full", sample_rate=SR, clip_seconds=CLIP, roots=fake_roots,
                         progress=False, workers=1)
    assert any("broken.wav" in rec.getMessage() for rec in caplog.records)
    h1 = manifest_hash(m)
    meta1 = json.loads((out / "corpus.json").read_text())
    assert meta1["files"]["skipped"] == 1
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")}
    # re-run: nothing decoded, nothing rewritten, same manifest
    build_corpus(out, size="full", sample_rate=SR, clip_seconds=CLIP, roots=fake_roots, progress=False,
                 workers=1)
    meta2 = json.loads((out / "corpus.json").read_text())
    # the unreadable file is still skipped (and warned about) on a re-run, not "cached"
    assert meta2["files"] == {"done": 0, "cached": meta1["files"]["done"], "skipped": 1}
    assert manifest_hash(m) == h1 and meta2["manifest_sha256"] == h1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")} == mtimes
    # simulate an interrupted run: lost FLAC + lost work records -> rebuilt, same manifest
    victim = sorted(mtimes)[0]
    victim.unlink()
    shutil.rmtree(out / ".rtgan_cache")
    build_corpus(out, size="full", sample_rate=SR, clip_seconds=CLIP, roots=fake_roots, progress=False,
                 workers=1)
    assert victim.exists() and manifest_hash(m) == h1
    assert not list(out.rglob("*.tmp"))
    # other settings: clips of the old build that the new manifest doesn't list are removed
    build_corpus(out, size="full", sample_rate=SR, clip_seconds=1.0, roots=fake_roots, progress=False,
                 workers=1)
    rows = load_manifest(out)
    assert {p.relative_to(out).as_posix() for p in out.rglob("*.flac")} == {r["path"] for r in rows}
    assert all(sf.info(str(out / r["path"])).frames == r["num_samples"] for r in rows)


def test_small_size_caps_clips(fake_roots, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="rtgan.data.corpus"):
        m = build_corpus(tmp_path / "s", size="small", sample_rate=SR, clip_seconds=1.0, roots=fake_roots,
                         sources=["hydrogen-drumkits"], progress=False, workers=1)
    warned = [rec for rec in caplog.records if rec.levelno == logging.WARNING and "unreadable" in rec.getMessage()]
    assert len(warned) == 1 and "broken.wav" in warned[0].getMessage()
    # issue 13: the summary counted 0 skipped after warning about unreadable files
    assert json.loads((tmp_path / "s" / "corpus.json").read_text())["files"]["skipped"] == len(warned)
    assert any("1 skipped" in rec.getMessage() for rec in caplog.records if rec.levelno == logging.INFO)
    rows = load_manifest(m.parent)
    assert rows and {r["source"] for r in rows} == {"hydrogen-drumkits"}
    per_file = _rows_by_file(rows)
    assert all(len(v) <= 2 for v in per_file.values())
    assert len(per_file.get("lowpass.wav", [])) in (0, 2)


def test_unknown_and_planned_sources(tmp_path):
    with pytest.raises(KeyError):
        build_corpus(tmp_path, sources=["nope"], progress=False)
    with pytest.raises(NotImplementedError):
        build_corpus(tmp_path, sources=["music21-fluidsynth"], progress=False)


def test_source_registry_paths():
    w = SOURCES["wesnoth-1.16-music"]
    assert w.matches("victory.ogg") and not w.matches("victory.txt")
    assert w.split_key("victory.ogg") == "victory"
    lm = SOURCES["lmms-common"]
    assert lm.split_key("drums/snare07.ogg") == lm.split_key("drums/snare01.ogg") == "drums/snare"
    k = SOURCES["klettres-data"]
    assert k.matches("en/alpha/a.ogg") and k.matches("ml/syllab/ka.ogg") and not k.matches("pics/x.ogg")
    assert k.split_key("en_GB/syllab/ba.ogg") == "en_GB"
    cs = SOURCES["fillets-ng-data-cs"]
    assert cs.matches("city/cs/vit-m-hlava.ogg") and not cs.matches("city/nl/vit-m-hlava.ogg")
    assert cs.split_key("city/cs/vit-m-hlava.ogg") == "city"
    h = SOURCES["hydrogen-drumkits"]
    assert h.license_for("Audiophob/x.wav") == "CC0-1.0"
    assert h.split_key("The Black Pearl 1.0/kick.flac") == "The Black Pearl 1.0"


# --- dataset -----------------------------------------------------------------------

def test_clip_dataset_shapes_and_padding(corpus):
    seg = 8000
    ds = ClipDataset(corpus, "train", seg, sample_rate=SR, seed=1)
    assert len(ds) > 0
    for i in range(len(ds)):
        x = ds[i]
        assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (1, seg)
        assert float(x.abs().max()) <= 1.0
    # deterministic crops (random_offset=False): window = clip start, zero-padded when short
    ds0 = ClipDataset(corpus, "train", 2 * SR + 100, sample_rate=SR, random_offset=False)
    for i, e in enumerate(ds0.entries):
        x = ds0[i]
        ref, _ = sf.read(str(corpus / e["path"]), dtype="float32")
        n = e["num_samples"]
        assert torch.equal(x[0, :n], torch.from_numpy(ref))
        assert torch.count_nonzero(x[0, n:]) == 0
    # random crops are reproducible for a given seed and epoch
    a = ClipDataset(corpus, "train", 4000, sample_rate=SR, seed=3)
    b = ClipDataset(corpus, "train", 4000, sample_rate=SR, seed=3)
    assert all(torch.equal(a[i], b[i]) for i in range(len(a)))
    loader = torch.utils.data.DataLoader(a, batch_size=2, shuffle=False)
    assert next(iter(loader)).shape == (2, 1, 4000)


def test_clip_dataset_filters(corpus):
    rows = load_manifest(corpus)
    speech_all = sum(r["domain"] == "speech" for r in rows)
    n = sum(len(ClipDataset(corpus, s, 1000, sample_rate=SR, domain="speech")) for s in SPLITS
            if any(r["split"] == s and r["domain"] == "speech" for r in rows))
    assert n == speech_all > 0
    for s in SPLITS:
        try:
            ds = ClipDataset(corpus, s, 1000, sample_rate=SR, min_bandwidth_hz=5000)
        except ValueError:
            continue
        assert all(e["bandwidth_hz"] >= 5000 and e["split"] == s for e in ds.entries)
    hi = [r for r in rows if r["bandwidth_hz"] >= 5000]
    lo = [r for r in rows if r["bandwidth_hz"] < 5000]
    assert hi and lo  # the low-passed noise clips are filtered out by the 5 kHz threshold
    with pytest.raises(ValueError, match="no clips"):
        ClipDataset(corpus, "train", 1000, sample_rate=48000)
    with pytest.raises(ValueError, match="no clips"):
        ClipDataset(corpus, "train", 1000, sample_rate=SR, domain="podcast")
    with pytest.raises(FileNotFoundError):
        load_manifest(corpus / "missing")


# --- the download cache ---------------------------------------------------------------------

def test_cache_dir_default_and_environment(monkeypatch, tmp_path):
    from rtgan.data.corpus.debs import default_cache_dir
    for var in ("RTGAN_CACHE_DIR", "RTGAN_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "rtgan"
    monkeypatch.setenv("RTGAN_CACHE", str(tmp_path / "old"))
    assert default_cache_dir() == tmp_path / "old"
    monkeypatch.setenv("RTGAN_CACHE_DIR", str(tmp_path / "new"))
    assert default_cache_dir() == tmp_path / "new"


def test_data_build_cli_uses_cache_dir_and_reports_it(fake_roots, tmp_path, monkeypatch, capsys):
    """``rtgan data build --cache-dir`` reaches the builder; the summary names the cache, its size and
    every skipped file (no download: the fake packages stand in for the .debs)."""
    import rtgan.data.corpus as corpus_mod
    from rtgan.cli.main import main

    real_build = corpus_mod.build_corpus
    seen = {}

    def fake_build(out_dir, **kw):
        seen.update(kw)
        return real_build(out_dir, size=kw["size"], sample_rate=SR, clip_seconds=CLIP, roots=fake_roots,
                          sources=["hydrogen-drumkits"], progress=False, workers=1, cache_dir=kw["cache_dir"])

    monkeypatch.setattr(corpus_mod, "build_corpus", fake_build)
    cache = tmp_path / "cache"
    (cache / "debs").mkdir(parents=True)
    (cache / "debs" / "x_1.0_all.deb").write_bytes(b"\0" * 3_000_000)
    out = tmp_path / "c"
    assert main(["data", "build", "--out", str(out), "--size", "full", "--cache-dir", str(cache), "-q"]) == 0
    assert seen["cache_dir"] == cache and seen["debs_dir"] is None
    text = capsys.readouterr().out
    assert f"download cache: {cache}, 3.0 MB" in text
    assert "1 skipped (unreadable" in text and str(out / "manifest.jsonl") in text
    assert "--cache-dir" in text  # says how to move it


def test_cache_dir_default_follows_the_environment_in_the_cli(monkeypatch, tmp_path):
    from rtgan.cli.main import build_parser
    monkeypatch.setenv("RTGAN_CACHE_DIR", str(tmp_path / "elsewhere"))
    args = build_parser().parse_args(["data", "build", "--out", str(tmp_path)])
    assert args.cache_dir == str(tmp_path / "elsewhere")


def test_ktuberling_is_built_only_when_named(tmp_path, monkeypatch):
    """ktuberling-data (extra speech voices) is left out of the default corpus, so adding it
    changes no default split; ``--add-source`` builds it beside the defaults, one voice per
    language folder."""
    import rtgan.data.corpus as corpus_mod
    from rtgan.cli.main import main
    from rtgan.data.sources import DEFAULT_SOURCES

    assert DEFAULT_SOURCES == ("wesnoth-1.16-music", "hydrogen-drumkits", "sonic-pi-samples", "lmms-common",
                               "klettres-data", "fillets-ng-data", "fillets-ng-data-cs", "fillets-ng-data-nl")
    kt = SOURCES["ktuberling-data"]
    assert kt.domain == "speech" and not kt.default
    assert kt.matches("ru/apple.ogg") and kt.matches("nds/hoot.wav") and not kt.matches("ru.soundtheme")
    assert kt.split_key("sr@latin/oko.ogg") == "sr@latin"
    seen = []
    monkeypatch.setattr(corpus_mod, "build_corpus", lambda out, **kw: seen.append(kw["sources"]) or out / "m")
    monkeypatch.setattr(corpus_mod, "build_summary", lambda *a: "")
    assert main(["data", "build", "--out", str(tmp_path), "-q"]) == 0
    assert main(["data", "build", "--out", str(tmp_path), "-q", "--add-source", "ktuberling-data"]) == 0
    assert seen == [None, [*DEFAULT_SOURCES, "ktuberling-data"]]
    with pytest.raises(SystemExit):
        main(["data", "build", "--out", str(tmp_path), "--add-source", "klettres-data"])  # a default one
    # end to end on a fake package: rows keyed by language folder
    root = tmp_path / "kt"
    for i, lang in enumerate(["ru", "da", "gl"]):
        _write(root / kt.base / lang / "word.ogg", _noise(1.2, 44100, seed=40 + i), 44100, format="OGG",
               subtype="VORBIS")
    (root / kt.base / "ru.soundtheme").write_text("<theme/>")
    rows = load_manifest(build_corpus(tmp_path / "c", size="full", sample_rate=SR, clip_seconds=CLIP,
                                      roots={"ktuberling-data": root}, progress=False, workers=1).parent)
    assert {r["split_key"] for r in rows} == {"ru", "da", "gl"} and {r["source"] for r in rows} == {"ktuberling-data"}
