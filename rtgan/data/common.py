"""Pieces shared by the corpus builder and its sources: split assignment, key hashing, mono decoding.

:mod:`rtgan.data.corpus` and :mod:`rtgan.data.midi` both build on this module; it imports
neither of them.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import soundfile as sf

__all__ = ["SPLITS", "SPLIT_FRACTIONS", "EpochRNG", "unit_hash", "assign_splits", "load_mono"]

#: Split names, in order.
SPLITS: tuple[str, str, str] = ("train", "val", "test")
#: Target share of the audio (of the keys, without weights) per split: train, val, test.
SPLIT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)


def unit_hash(text: str) -> float:
    """Deterministic hash of ``text`` into [0, 1): the first 8 bytes of its UTF-8 sha256, big-endian.

    The same text gives the same number on every machine and Python version (unlike ``hash``),
    so orders and splits derived from it are reproducible.
    """
    d = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(d[:8], "big") / 2.0**64


def assign_splits(keys: Iterable[str], source_name: str,
                  weights: Mapping[str, float] | None = None) -> dict[str, str]:
    """Deterministic train/val/test split of split keys (never of clips).

    Every key ``k`` gets ``u(k) = sha256(f"{source_name}/{k}")`` mapped to
    [0, 1) (first 8 bytes, big-endian). This fixes a pseudo-random order of
    the keys that depends only on the source name and the key.

    * Without ``weights`` (or all zero): ``u < 0.8`` -> train, ``u < 0.9`` ->
      val, else test (~80/10/10 of the keys); the key's position is ``u``.
    * With ``weights`` (e.g. seconds of usable audio per key): the keys are
      laid end to end in ``u`` order on [0, 1), each taking a share equal to
      its weight / total weight; a key's position is the midpoint of its
      share, and position < 0.8 -> train, < 0.9 -> val, else test. This gives
      ~80/10/10 of the *audio* while keeping every key whole.

    Guarantee: if the source has at least 3 keys and a split is still empty,
    the splits are filled in the order test, val, train: for an empty split,
    among the keys whose split holds >= 2 keys, the one whose position is
    closest to the centre of the empty split's interval (0.4 / 0.85 / 0.95;
    ties by key) is moved there. With >= 3 keys every split ends up
    non-empty. The result depends only on the source name, the set of keys and
    their weights (so ``size="small"`` and ``"full"`` agree).

    Args:
        keys: split keys of one source (duplicates allowed).
        source_name: mixed into the hash so sources split independently.
        weights: optional non-negative weight per key (missing keys: 0).

    Returns:
        dict key -> ``"train" | "val" | "test"``.
    """
    uniq = sorted(set(keys))
    u = {k: unit_hash(f"{source_name}/{k}") for k in uniq}
    t_train, t_val = SPLIT_FRACTIONS[0], SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1]
    pos = dict(u)
    if weights is not None:
        w = {k: max(0.0, float(weights.get(k, 0.0))) for k in uniq}
        total = sum(w.values())
        if total > 0:
            acc = 0.0
            for k in sorted(uniq, key=lambda k: (u[k], k)):
                pos[k] = (acc + w[k] / 2.0) / total
                acc += w[k]
    out = {k: ("train" if pos[k] < t_train else "val" if pos[k] < t_val else "test") for k in uniq}
    if len(uniq) >= 3:
        centre = {"train": t_train / 2, "val": (t_train + t_val) / 2, "test": (t_val + 1.0) / 2}
        for split in ("test", "val", "train"):
            counts = {s: 0 for s in SPLITS}
            for s in out.values():
                counts[s] += 1
            if counts[split]:
                continue
            donors = [k for k in uniq if counts[out[k]] >= 2]
            k = min(donors, key=lambda k: (abs(pos[k] - centre[split]), k))
            out[k] = split
    return out


def load_mono(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int, int]:
    """Decode an audio file (anything soundfile reads) and mix it to mono.

    Args:
        path: the audio file.
        max_seconds: decode at most this many seconds (plus one frame) from the start;
            None: the whole file.

    Returns:
        (mono samples, float64 (n,): the mean of the channels; the file's sample rate;
        its number of channels).

    Raises:
        ValueError: the file holds no frames or non-finite samples.
        RuntimeError (soundfile.LibsndfileError), OSError: the file can't be opened or decoded.
    """
    info = sf.info(str(path))
    frames = -1
    if max_seconds is not None:
        frames = int(math.ceil(max_seconds * info.samplerate)) + 1
    x, sr = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    if x.shape[0] == 0:
        raise ValueError("no audio frames")
    mono = x.mean(axis=1, dtype=np.float64)
    if not np.all(np.isfinite(mono)):
        raise ValueError("non-finite samples")
    return mono, int(sr), int(x.shape[1])


def file_sha256(path: Path | str) -> str:
    """sha256 hex digest of a file's bytes (read in 4 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def peak_dbfs(x: np.ndarray) -> float:
    """Peak level of ``x`` in dBFS, rounded to 1e-3 dB (``-inf`` for silence or no samples)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return round(20.0 * math.log10(peak), 3) if peak > 0 else -math.inf


def run_tasks(fn, tasks: list, workers: int, desc: str, unit: str, progress: bool = True) -> list:
    """``[fn(t) for t in tasks]`` in completion order, with a tqdm bar: in this process when
    ``workers <= 1``, else in a spawn process pool of ``workers`` (pending tasks are cancelled
    when one fails or on Ctrl-C). ``fn`` must be picklable (a module-level function)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from tqdm import tqdm
    results: list = []
    with tqdm(total=len(tasks), desc=desc, unit=unit, disable=not progress, dynamic_ncols=True) as bar:
        if workers <= 1:
            for t in tasks:
                results.append(fn(t))
                bar.update(1)
            return results
        with ProcessPoolExecutor(max_workers=int(workers), mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(fn, t) for t in tasks]
            try:
                for fut in as_completed(futures):
                    results.append(fut.result())
                    bar.update(1)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    return results


def read_jsonl(path: Path, build_hint: str) -> list[dict]:
    """The rows of a JSON-lines manifest (blank lines skipped).

    Raises:
        FileNotFoundError: no such file; the message ends with ``build_hint`` (how to build it).
    """
    if not path.is_file():
        raise FileNotFoundError(f"no {path.name} in {path.parent}: {build_hint}")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_built_config(path: Path, build_hint: str) -> dict:
    """``target.config`` of a set's ``*_config.json`` (written last by its build).

    Raises:
        FileNotFoundError: no such file (not built, or the build did not finish); ends with ``build_hint``.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no {path.name} in {path.parent}: {build_hint}")
    return json.loads(path.read_text())["target"]["config"]


class EpochRNG:
    """Mixin for datasets drawing random crops: a ``numpy.random.Generator`` per process, seeded with
    ``(seed, epoch, DataLoader worker id)``, so workers draw different crops and each epoch new ones.

    The dataset sets ``self.seed`` (any int; negative ones are masked to 63 bits) and ``self.epoch``
    (0) and calls :meth:`_generator` for its draws; the training loop calls :meth:`set_epoch`.
    """

    seed: int = 0
    epoch: int = 0
    _rng: np.random.Generator | None = None
    _rng_key: tuple | None = None

    def set_epoch(self, epoch: int) -> None:
        """Mix ``epoch`` into the RNG seed (call before each epoch)."""
        self.epoch = int(epoch)

    def _generator(self) -> np.random.Generator:
        from torch.utils.data import get_worker_info
        info = get_worker_info()
        key = (self.seed, self.epoch, info.id if info is not None else -1)
        if self._rng is None or self._rng_key != key:
            self._rng = np.random.default_rng([self.seed & (2**63 - 1), self.epoch, key[2] + 1])
            self._rng_key = key
        return self._rng
