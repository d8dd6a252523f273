"""rtgan data pack (rtgan.data.pack): a size-bounded corpus copy that training reads unchanged."""
import json

import numpy as np
import pytest
import soundfile as sf

from rtgan.cli.main import main
from rtgan.data.dataset import ClipDataset
from rtgan.data.pack import pack_corpus

SR = 48000


def _corpus(root, groups=("a", "b", "c"), per_group=3, seconds=1.0):
    """Train: ``per_group`` noise clips of ``seconds`` of each group (voice); val: two clips of a
    quarter of that of voice ``v``."""
    rng = np.random.default_rng(0)
    rows = []
    spec = [("train", g, i) for g in groups for i in range(per_group)] + [("val", "v", 0), ("val", "v", 1)]
    for split, g, i in spec:
        path = f"{split}/src/{g}_{i}.flac"
        n = int(seconds * SR) // (1 if split == "train" else 4)
        (root / split / "src").mkdir(parents=True, exist_ok=True)
        sf.write(root / path, 0.1 * rng.standard_normal(n), SR, subtype="PCM_16")
        rows.append({"path": path, "split": split, "split_key": g, "source": "src", "domain": "speech",
                     "sample_rate": SR, "bandwidth_hz": 20000.0 if g != "c" else 8000.0,
                     "num_samples": n, "duration_seconds": n / SR, "license": "GPL-2"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "corpus.json").write_text(json.dumps({"format": "rtgan-corpus", "sample_rate": SR}))
    return root


def test_a_small_budget_holds_one_clip_of_each_voice_within_its_share(tmp_path):
    src = _corpus(tmp_path / "c")
    one = (src / "train/src/a_0.flac").stat().st_size  # ~ the size of every clip (same noise level)
    budget_mib = 3.3 * one / 0.85 / 2**20  # train's share: about three clips
    meta = pack_corpus(src, tmp_path / "p", budget_mib, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "p/manifest.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert sorted(r["split_key"] for r in train) == ["a", "b", "c"]  # round-robin, not three of one voice
    for split, share in (("train", 0.85), ("val", 0.15)):
        size = sum((tmp_path / "p" / r["path"]).stat().st_size for r in rows if r["split"] == split)
        assert size <= share * budget_mib * 2**20
        assert meta["splits"][split]["clips"] == sum(r["split"] == split for r in rows)
    assert meta["packed_from"]["max_mib"] == budget_mib and json.loads((tmp_path / "p/corpus.json").read_text()) == meta
    assert not list((tmp_path / "p").rglob("*.tmp"))


def test_clips_are_cut_and_the_pack_reads_as_a_corpus(tmp_path):
    src = _corpus(tmp_path / "c")
    pack_corpus(src, tmp_path / "p", 50.0, max_seconds=0.25, min_bandwidth_hz=16000, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "p/manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and {r["split_key"] for r in rows} == {"a", "b", "v"}  # c is 8 kHz wide
    for r in rows:
        x, rate = sf.read(tmp_path / "p" / r["path"], dtype="int16")
        y, _ = sf.read(src / r["path"], dtype="int16", frames=SR // 4)
        assert rate == SR and r["num_samples"] == x.size == SR // 4 and r["duration_seconds"] == 0.25
        np.testing.assert_array_equal(x, y)  # lossless, the clip's start
        assert r["license"] == "GPL-2"
    ds = ClipDataset(tmp_path / "p", "train", 4096)
    assert len(ds) == 6 and ds[0].shape == (1, 4096)


def test_pack_refuses_what_it_cannot_do(tmp_path):
    src = _corpus(tmp_path / "c")
    with pytest.raises(ValueError, match="max-mib"):
        pack_corpus(src, tmp_path / "p", 0, progress=False)
    with pytest.raises(ValueError, match="splits"):
        pack_corpus(src, tmp_path / "p", 1, splits=("dev",), progress=False)
    with pytest.raises(ValueError, match="no train clip fits"):
        pack_corpus(src, tmp_path / "p", 1e-4, progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full/x").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        pack_corpus(src, tmp_path / "full", 1, progress=False)
    assert (tmp_path / "full/x").read_text() == "keep me"
    with pytest.raises(FileNotFoundError, match="manifest"):
        pack_corpus(tmp_path / "nothing", tmp_path / "q", 1, progress=False)


def test_cli_packs_and_says_what_it_holds(tmp_path, capsys):
    src = _corpus(tmp_path / "c")
    assert main(["data", "pack", str(src), "--out", str(tmp_path / "p"), "--max-mib", "5", "--max-seconds", "0.5",
                 "-q"]) == 0
    out = capsys.readouterr().out
    assert "train 9 clips of 3 groups" in out and "val 2 clips of 1 groups" in out
