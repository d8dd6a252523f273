"""PyTorch dataset over a corpus built by :func:`rtgan.data.corpus.build_corpus`.

A corpus folder holds ``manifest.jsonl`` (one JSON object per FLAC clip) and
the clips under ``<split>/<source>/...flac`` (mono, 16-bit, one sample rate).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from .common import EpochRNG

__all__ = ["ClipDataset", "evenly_spaced", "load_manifest", "voice_group"]


def voice_group(row: dict) -> tuple[str | None, str]:
    """The corpus's split unit of a manifest row: ``(source, split_key)`` (the voice of a speech
    clip, the piece or kit of a music clip; two packages' ``ru`` folders are two voices), or
    ``(source, path)`` for a row without a ``split_key`` (a group of its own)."""
    return row.get("source"), str(row["split_key"] if "split_key" in row else row["path"])


def evenly_spaced(count: int, n: int) -> np.ndarray:
    """Indices of up to ``n`` of ``count`` items, evenly spaced from the first to the last
    (sorted, no repeats; all ``count`` of them when ``n >= count``; empty when ``count`` is 0)."""
    return np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(int))


def load_manifest(corpus_dir: Path | str) -> list[dict]:
    """Read ``corpus_dir/manifest.jsonl`` into a list of dicts (one per clip, file order).

    Raises:
        FileNotFoundError: if the manifest is missing (build the corpus first).
    """
    path = Path(corpus_dir) / "manifest.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest at {path}; build a corpus first "
                                f"(rtgan data build --out {corpus_dir})")
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


class ClipDataset(EpochRNG, Dataset):
    """Fixed-length mono segments cut from the corpus clips.

    Each item is a ``torch.float32`` tensor of shape ``(1, segment_samples)``
    with samples in [-1, 1] at ``sample_rate`` Hz. With ``random_offset`` a
    random window of the clip is taken (uniform start); otherwise the window
    starts at the clip's first sample. Clips shorter than ``segment_samples``
    are zero-padded at the end.

    Randomness: every process (main or DataLoader worker) draws offsets from
    its own ``numpy.random.Generator`` seeded with ``(seed, epoch, worker_id)``;
    call :meth:`set_epoch` each epoch to get new offsets in fresh workers.

    Args:
        corpus_dir: corpus folder (with ``manifest.jsonl``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        segment_samples: length of every item, in samples.
        sample_rate: required clip sample rate (Hz); clips at another rate
            are excluded (a corpus has one rate).
        domain: keep only ``"music"`` or ``"speech"`` clips (None: all).
        min_bandwidth_hz: keep clips whose measured ``bandwidth_hz`` (highest
            frequency with content: smoothed PSD within 60 dB of its maximum, see
            :func:`rtgan.data.corpus.measure.measure_bandwidth`) is at least this, in Hz.
        seed: seed for the random offsets.
        random_offset: random crop (True) or crop at the clip start (False).
        sources: keep only these source names (None: all).

    Raises:
        ValueError: if no clip matches the filters (the message lists them).
    """

    def __init__(self, corpus_dir: Path | str, split: str, segment_samples: int, sample_rate: int = 48000,
                 domain: str | None = None, min_bandwidth_hz: float = 0.0, seed: int = 0,
                 random_offset: bool = True, sources: Sequence[str] | None = None) -> None:
        if segment_samples <= 0:
            raise ValueError(f"segment_samples must be positive, got {segment_samples}")
        self.corpus_dir = Path(corpus_dir)
        self.split = split
        self.segment_samples = int(segment_samples)
        self.sample_rate = int(sample_rate)
        self.domain = domain
        self.min_bandwidth_hz = float(min_bandwidth_hz)
        self.seed = int(seed)
        self.random_offset = bool(random_offset)
        self.epoch = 0
        rows = load_manifest(self.corpus_dir)
        src_set = set(sources) if sources is not None else None
        self.entries: list[dict] = [
            r for r in rows
            if r.get("split") == split
            and int(r.get("sample_rate", -1)) == self.sample_rate
            and (domain is None or r.get("domain") == domain)
            and float(r.get("bandwidth_hz", 0.0)) >= self.min_bandwidth_hz
            and (src_set is None or r.get("source") in src_set)
        ]
        if not self.entries:
            rates = sorted({int(r.get("sample_rate", -1)) for r in rows})
            splits = sorted({r.get("split") for r in rows})
            domains = sorted({r.get("domain") for r in rows})
            raise ValueError(
                f"no clips in {self.corpus_dir} match split={split!r}, sample_rate={sample_rate}, "
                f"domain={domain!r}, min_bandwidth_hz={min_bandwidth_hz}, sources={sources!r} "
                f"(manifest has {len(rows)} clips; splits {splits}, sample rates {rates}, domains {domains})")

    def __len__(self) -> int:
        """Number of clips that passed the filters (one item per clip)."""
        return len(self.entries)

    def __getitem__(self, index: int) -> torch.Tensor:
        """Segment of clip ``index``: float32 tensor, shape (1, segment_samples)."""
        e = self.entries[index]
        path = self.corpus_dir / e["path"]
        n = int(e.get("num_samples") or round(float(e["duration_seconds"]) * self.sample_rate))
        start = 0
        if self.random_offset and n > self.segment_samples:
            start = int(self._generator().integers(0, n - self.segment_samples + 1))
        x, sr = sf.read(str(path), start=start, frames=self.segment_samples, dtype="float32", always_2d=True)
        if sr != self.sample_rate:
            raise ValueError(f"{path}: sample rate {sr} Hz, expected {self.sample_rate} Hz")
        x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
        out = np.zeros(self.segment_samples, dtype=np.float32)
        out[: x.shape[0]] = x[: self.segment_samples]
        return torch.from_numpy(out).unsqueeze(0)

    def group_weights(self) -> np.ndarray:
        """Sampling weights, ``(len(self),)`` float64, that give every group of a domain an equal share.

        A group is :func:`voice_group` (the manifest's ``split_key`` within its ``source``: the
        unit the corpus splits by). Within a domain each of its ``G`` groups gets
        ``1 / G`` of the domain's weight, shared equally by the group's clips; each domain keeps
        the weight of its clip count, so ``weights.sum() == len(self)`` and the music/speech mix
        is unchanged. Rows without a ``split_key`` form one group per clip path.
        """
        from collections import Counter

        keys = [(e.get("domain"), voice_group(e)) for e in self.entries]
        per_group = Counter(keys)
        per_domain = Counter(d for d, _ in keys)
        groups_in_domain = Counter(d for d, _ in per_group)
        return np.array([per_domain[d] / groups_in_domain[d] / per_group[(d, k)] for d, k in keys])

    def __repr__(self) -> str:
        return (f"ClipDataset({str(self.corpus_dir)!r}, split={self.split!r}, clips={len(self)}, "
                f"segment_samples={self.segment_samples}, sample_rate={self.sample_rate}, "
                f"domain={self.domain!r}, min_bandwidth_hz={self.min_bandwidth_hz})")
