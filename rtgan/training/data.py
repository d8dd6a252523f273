"""(input, target) pairs for super-resolution training, made on the fly from corpus clips."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..audio.degrade import DegradationConfig, degrade
from ..data.dataset import ClipDataset


class SRPairs(torch.utils.data.Dataset):
    """Wrap a target dataset into band-limited/full-band pairs.

    Each item is ``(x, y)``, both ``(1, samples)`` float32: ``y`` from ``targets`` and
    ``x = degrade(y)`` with one of ``degradations`` drawn at random (``rng=None`` when
    ``deterministic``: the first degradation, its first filter). With ``rms_dbfs`` both are
    scaled by the gain that brings ``y``'s RMS to ``rms_dbfs`` dBFS, capped at
    ``max_gain_db`` (near-silent items are not blown up).
    """

    def __init__(self, targets: torch.utils.data.Dataset, sample_rate: int,
                 degradations: tuple[DegradationConfig, ...], deterministic: bool = False,
                 rms_dbfs: float | None = None, max_gain_db: float = 30.0) -> None:
        if not degradations:
            raise ValueError("need at least one degradation")
        self.targets = targets
        self.sample_rate = sample_rate
        self.degradations = degradations
        self.deterministic = deterministic
        self.rms_dbfs = rms_dbfs
        self.max_gain_db = max_gain_db

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.targets[i]
        y_np = y.numpy()
        if self.deterministic:
            x = degrade(y_np, self.sample_rate, self.degradations[0], rng=None)
        else:
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
            cfg = self.degradations[int(rng.integers(len(self.degradations)))]
            x = degrade(y_np, self.sample_rate, cfg, rng=rng)
        if self.rms_dbfs is not None:
            rms = float(np.sqrt(np.mean(y_np.astype(np.float64) ** 2)))
            gain = min(10 ** (self.rms_dbfs / 20) / max(rms, 1e-12), 10 ** (self.max_gain_db / 20))
            x, y = x * gain, y * gain
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), y


def make_datasets(corpus: Path, cfg, sample_rate: int) -> tuple[SRPairs, tuple[torch.Tensor, torch.Tensor]]:
    """Training pairs and a fixed validation batch ``(x, y)`` of shape ``(val_items, 1, samples)``."""
    train = ClipDataset(corpus, "train", cfg.segment_samples, sample_rate=sample_rate,
                        min_bandwidth_hz=cfg.min_bandwidth_hz, seed=cfg.seed, random_offset=True)
    val = ClipDataset(corpus, "val", cfg.segment_samples * 2, sample_rate=sample_rate,
                      min_bandwidth_hz=cfg.min_bandwidth_hz, seed=cfg.seed, random_offset=False)
    pairs = SRPairs(val, sample_rate, (cfg.eval_degradation,), deterministic=True)
    idx = np.unique(np.linspace(0, len(pairs) - 1, num=min(cfg.val_items, len(pairs))).round().astype(int))
    xs, ys = zip(*(pairs[int(i)] for i in idx))
    return (SRPairs(train, sample_rate, cfg.degradations, rms_dbfs=cfg.item_rms_dbfs, max_gain_db=cfg.item_max_gain_db),
            (torch.stack(xs), torch.stack(ys)))
