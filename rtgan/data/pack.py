"""``rtgan data pack``: a size-bounded copy of a corpus, to carry where the corpus cannot be built.

A lent GPU machine has no network and receives at most a few tens of MiB with each command, so
the corpus (about 0.9 GB of FLAC) cannot travel and its Debian packages cannot be fetched there.
A pack is a corpus folder of the same layout (``manifest.jsonl``, ``corpus.json``,
``<split>/<source>/*.flac``) that ``rtgan train --data`` reads unchanged, holding a subset of the
source corpus's clips chosen to keep as many voices and pieces as the budget allows:

* every split gets a share of the budget (``SPLIT_SHARE``: train 0.85, val 0.15; a split alone
  gets it all);
* within a split, clips are taken round-robin over its groups (:func:`~rtgan.data.dataset.voice_group`:
  the voice of a speech clip, the piece or kit of a music clip) in a seeded random order, each
  group's clips in a seeded random order, so a small budget holds one clip of each of many
  voices rather than many clips of one;
* each clip is cut to its first ``max_seconds`` (optional), written as 16-bit FLAC, and kept
  while the split's share holds it (measured file sizes, not estimates).

Manifest rows keep their fields (bandwidth, RMS, licence, origin) with ``path``,
``num_samples`` and ``duration_seconds`` updated for a cut clip; ``corpus.json`` records the
source corpus's manifest hash and the pack's settings.
"""
from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from pathlib import Path

import soundfile as sf

from ..fileio import atomic_write, atomic_write_text
from .dataset import load_manifest, voice_group

__all__ = ["SPLIT_SHARE", "pack_corpus"]

#: the share of the budget each split gets (normalised over the splits packed)
SPLIT_SHARE = {"train": 0.85, "val": 0.15, "test": 0.15}


def _round_robin(rows: list[dict], seed: int) -> list[dict]:
    """``rows`` reordered: one clip of each group in turn (groups and clips in a seeded order)."""
    rng = random.Random(seed)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[voice_group(r)].append(r)
    keys = sorted(groups, key=lambda k: (str(k[0]), k[1]))
    rng.shuffle(keys)
    for k in keys:
        rng.shuffle(groups[k])
    out, depth = [], 0
    while len(out) < len(rows):
        for k in keys:
            if depth < len(groups[k]):
                out.append(groups[k][depth])
        depth += 1
    return out


def pack_corpus(src: Path | str, out: Path | str, max_mib: float, splits: tuple[str, ...] = ("train", "val"),
                domain: str | None = None, max_seconds: float | None = None, min_bandwidth_hz: float = 0.0,
                seed: int = 0, progress: bool = True) -> dict:
    """Write a pack of corpus ``src`` into ``out`` (see the module docstring).

    Args:
        src: a corpus folder (``rtgan data build``).
        out: the pack's folder: new, or empty.
        max_mib: size budget of the pack's audio, MiB (2**20 bytes).
        splits: splits to pack.
        domain: keep only ``"music"`` or ``"speech"`` clips (None: both).
        max_seconds: cut each clip to its first ``max_seconds`` s (None: whole clips).
        min_bandwidth_hz: keep clips whose measured ``bandwidth_hz`` is at least this, Hz (as
            ``rtgan train --min-bandwidth``; sr-hifigan trains on clips of >= 16 kHz).
        seed: order of groups and clips.
        progress: a tqdm bar per split.

    Returns:
        the pack's ``corpus.json`` content (``packed_from``, ``splits``: clips, groups, seconds
        and MiB per split).

    Raises:
        FileNotFoundError: ``src`` has no manifest.
        FileExistsError: ``out`` exists and is not empty.
        ValueError: a budget that is not positive, an unknown split or domain, a non-positive
            ``max_seconds``, or no clip of a split that fits its share.
    """
    src, out = Path(src), Path(out)
    if not max_mib > 0:
        raise ValueError(f"--max-mib must be positive, got {max_mib}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"--max-seconds must be positive, got {max_seconds}")
    bad = [s for s in splits if s not in SPLIT_SHARE]
    if bad or not splits:
        raise ValueError(f"splits must be among {sorted(SPLIT_SHARE)}, got {list(splits)}")
    if domain not in (None, "music", "speech"):
        raise ValueError(f"domain must be music or speech, got {domain!r}")
    rows = load_manifest(src)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty: a pack goes into a new folder")
    total = sum(SPLIT_SHARE[s] for s in splits)
    kept, summary = [], {}
    for split in splits:
        mine = [r for r in rows if r.get("split") == split and (domain is None or r.get("domain") == domain)
                and float(r.get("bandwidth_hz", 0.0)) >= min_bandwidth_hz]
        budget = max_mib * SPLIT_SHARE[split] / total * 2**20
        used, n, groups, seconds = 0, 0, set(), 0.0
        order = _round_robin(mine, seed)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=int(budget), unit="B", unit_scale=True, desc=f"pack {split}")
        for r in order:
            want = -1 if max_seconds is None else int(round(max_seconds * int(r["sample_rate"])))
            audio, rate = sf.read(str(src / r["path"]), frames=want, dtype="int16", always_2d=False)
            frames = len(audio)
            path = out / r["path"]
            atomic_write(path, lambda tmp: sf.write(tmp, audio, rate, format="FLAC", subtype="PCM_16"))
            size = path.stat().st_size
            if used + size > budget:
                path.unlink()
                continue  # a shorter clip of another group may still fit
            used += size
            n += 1
            groups.add(voice_group(r))
            seconds += frames / rate
            kept.append({**r, "num_samples": int(frames), "duration_seconds": frames / rate})
            if bar is not None:
                bar.update(size)
        if bar is not None:
            bar.close()
        if n == 0:
            raise ValueError(f"no {split} clip fits {budget / 2**20:.2f} MiB; raise --max-mib or lower --max-seconds")
        summary[split] = {"clips": n, "groups": len(groups), "seconds": round(seconds, 2),
                          "mib": round(used / 2**20, 3)}
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept)
    atomic_write_text(out / "manifest.jsonl", text)
    src_meta = json.loads((src / "corpus.json").read_text()) if (src / "corpus.json").is_file() else {}
    meta = {**{k: v for k, v in src_meta.items() if k not in ("files", "manifest_sha256", "num_clips")},
            "format": "rtgan-corpus", "manifest": "manifest.jsonl",
            "manifest_sha256": hashlib.sha256(text.encode()).hexdigest(), "num_clips": len(kept),
            "packed_from": {"corpus": str(src), "manifest_sha256": hashlib.sha256(
                (src / "manifest.jsonl").read_bytes()).hexdigest(), "max_mib": max_mib, "splits": list(splits),
                "domain": domain, "max_seconds": max_seconds,
                "min_bandwidth_hz": min_bandwidth_hz, "seed": seed},
            "splits": summary}
    atomic_write_text(out / "corpus.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta
