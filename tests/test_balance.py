"""Voice/piece-balanced drawing of training clips (``--balance-groups``) and of envelope-fit clips."""
import json
from collections import Counter

import numpy as np
import pytest

from rtgan.data.dataset import ClipDataset
from rtgan.training.loop import make_sampler

# speech: voice a 6 clips, b 2, c 1; music: one piece p of 3 clips (manifest only: no audio is read)
GROUPS = [("speech", "a")] * 6 + [("speech", "b")] * 2 + [("speech", "c")] + [("music", "p")] * 3


@pytest.fixture()
def clips(tmp_path):
    rows = [{"path": f"train/s/{i}.flac", "split": "train", "sample_rate": 48000, "domain": d, "split_key": k,
             "bandwidth_hz": 20000.0, "num_samples": 48000} for i, (d, k) in enumerate(GROUPS)]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ClipDataset(tmp_path, "train", 1000)


def test_group_weights_share_each_domain_equally_over_its_groups(clips):
    # by hand: speech has 9 clips in 3 voices, 3 per voice: a's clips 3/6, b's 3/2, c's 3/1; music 1 each
    expected = [0.5] * 6 + [1.5] * 2 + [3.0] + [1.0] * 3
    assert clips.group_weights() == pytest.approx(expected)


def test_the_same_folder_name_in_two_sources_is_two_voices(tmp_path):
    # klettres-data's "ru" and ktuberling-data's "ru" are two speakers: 3 + 1 clips -> 2 groups of 2 each
    rows = [{"path": f"train/{i}.flac", "split": "train", "sample_rate": 48000, "domain": "speech", "source": src,
             "split_key": "ru", "bandwidth_hz": 20000.0} for i, src in enumerate(["k", "k", "k", "t"])]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert ClipDataset(tmp_path, "train", 1000).group_weights() == pytest.approx([2 / 3] * 3 + [2.0])


def test_rows_without_split_key_are_groups_of_one(tmp_path):
    rows = [{"path": f"train/{i}.flac", "split": "train", "sample_rate": 48000, "domain": "music",
             "bandwidth_hz": 20000.0} for i in range(4)]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert ClipDataset(tmp_path, "train", 1000).group_weights() == pytest.approx([1.0] * 4)


@pytest.mark.parametrize("balance", [False, True])
def test_sampler_draws_voices_equally_only_when_balanced(clips, balance):
    n = 40000
    got = Counter(GROUPS[i] for i in make_sampler(clips, balance, n, seed=0))
    share = {g: c / n for g, c in got.items()}
    # uniform: a voice's share is its clip count over 12; balanced: each of speech's 3 voices gets 9/12 / 3
    expected = ({("speech", "a"): 0.25, ("speech", "b"): 0.25, ("speech", "c"): 0.25, ("music", "p"): 0.25}
                if balance else {("speech", "a"): 0.5, ("speech", "b"): 2 / 12, ("speech", "c"): 1 / 12,
                                 ("music", "p"): 0.25})
    for g, p in expected.items():
        assert share[g] == pytest.approx(p, abs=0.015), g


def test_sampler_is_seeded(clips):
    a, b = list(make_sampler(clips, True, 50, seed=3)), list(make_sampler(clips, True, 50, seed=3))
    assert a == b and a != list(make_sampler(clips, True, 50, seed=4))


def test_balancing_data_without_groups_is_a_clear_error():
    import torch

    data = torch.utils.data.TensorDataset(torch.zeros(5, 1))
    with pytest.raises(ValueError, match="no clip groups"):
        make_sampler(data, True, 10, seed=0)
