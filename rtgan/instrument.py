"""A small instrument classifier over a pair set's programs (seed 001's "does it sound like a violin?").

Alahi, Sifringer & Stegmüller (2020) score instrument transfer with SNR and LSD only; neither says
whether the output sounds like the *target instrument*. This module trains a small classifier on the
rendered programs of a pair set (:mod:`rtgan.data.pairs`: 0 piano, 24 nylon guitar, 40 violin,
73 flute) so that :mod:`rtgan.evaluate_xfer` can report the share of model outputs it assigns to the
target program.

Features (:data:`MEL`): each 8192-sample crop at 16 kHz is scaled to an RMS of :data:`FEATURE_RMS`
(so that level does not count, only timbre; a crop with RMS below :data:`SILENT_RMS` is left
unscaled), then :func:`rtgan.dsp.log_mel` with ``n_fft`` 1024, hop 256, 64 Slaney mel bands from
0 Hz to 8 kHz, floor 1e-5 (natural log of the mel magnitude): ``(64, 33)`` per crop, standardised
with the training set's mean and standard deviation (buffers of the model).

Network (:class:`InstrumentClassifier`): three 3x3 conv layers (16, 32, 64 channels; ReLU; 2x2 max
pooling after the first two), an average over time and over four frequency bands, a linear layer
to one logit per program (about 25 k parameters, ~100 kB).

Training (:func:`train_instrument_classifier`): random sounding 8192-sample crops of every program's
render of the train split's pieces (a fixed number per file: a subsample), Adam, cross entropy; the
step kept is the one with the best accuracy on sounding grid crops of the validation split; its test
accuracy (and confusion counts) on the test split's sounding grid crops is stored in the metadata.
Weights are saved with :func:`rtgan.checkpoint.save_checkpoint` (safetensors + JSON) and loaded
strictly (:func:`load_instrument_classifier`).

Train from the command line: ``python -m rtgan.instrument PAIRS OUT.safetensors [--steps N]``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from .checkpoint import CheckpointError, read_checkpoint, save_checkpoint

__all__ = ["InstrumentClassifier", "train_instrument_classifier", "load_instrument_classifier", "classify",
           "DEFAULT_PATH", "PROGRAM_NAMES", "MEL", "CROP", "SILENT"]

#: where the shipped classifier lives
DEFAULT_PATH = Path(__file__).resolve().parent / "weights" / "instrument-classifier.safetensors"
#: General MIDI program (0-based) -> name, for the programs of rtgan's pair sets
PROGRAM_NAMES = {0: "piano", 24: "nylon guitar", 40: "violin", 73: "flute"}
#: log-mel settings (:func:`rtgan.dsp.log_mel`)
MEL = {"sample_rate": 16000, "n_fft": 1024, "hop_length": 256, "n_mels": 64, "fmin": 0.0, "fmax": 8000.0,
       "floor": 1e-5}
#: samples per crop (the seed's window)
CROP = 8192
#: crops are scaled to this RMS before the log mel
FEATURE_RMS = 0.1
#: below this RMS (-100 dBFS) a crop is treated as silent: not scaled, and :func:`classify` says :data:`SILENT`
SILENT_RMS = 1e-5
#: what :func:`classify` assigns to a silent crop
SILENT = -1
MODEL_NAME = "instrument-classifier"
_CHANNELS = (16, 32, 64)
_FREQ_BANDS = 4


class InstrumentClassifier(nn.Module):
    """Audio ``(n, samples)`` at 16 kHz -> logits ``(n, len(programs))`` (see the module docstring).

    Args:
        programs: the General MIDI programs, in logit order.
        mel: log-mel settings (:data:`MEL`).
    """

    def __init__(self, programs, mel: dict | None = None) -> None:
        super().__init__()
        self.programs = tuple(int(p) for p in programs)
        self.mel = dict(MEL if mel is None else mel)
        c1, c2, c3 = _CHANNELS
        self.net = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d((_FREQ_BANDS, 1)), nn.Flatten(),
            nn.Linear(c3 * _FREQ_BANDS, len(self.programs)))
        self.register_buffer("feature_mean", torch.zeros(()))
        self.register_buffer("feature_std", torch.ones(()))

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """``(n, samples)`` -> standardised log mel ``(n, 1, n_mels, frames)`` (RMS-normalised crops)."""
        from .dsp import log_mel
        x = torch.as_tensor(audio, dtype=torch.float32)
        if x.dim() == 3 and x.shape[1] == 1:
            x = x[:, 0]
        if x.dim() == 1:
            x = x[None]
        x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        rms = x.pow(2).mean(dim=-1, keepdim=True).sqrt()
        x = torch.where(rms >= SILENT_RMS, x * (FEATURE_RMS / rms.clamp(min=SILENT_RMS)), x)
        m = self.mel
        f = log_mel(x, m["sample_rate"], n_fft=m["n_fft"], hop_length=m["hop_length"], n_mels=m["n_mels"],
                    fmin=m["fmin"], fmax=m["fmax"], floor=m["floor"])
        return ((f - self.feature_mean) / self.feature_std)[:, None]

    def forward_features(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net(feats)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.net(self.features(audio))


def classify(model: InstrumentClassifier, audio, batch: int = 256) -> np.ndarray:
    """The program (General MIDI, 0-based) ``model`` assigns to each row of ``audio`` ``(n, samples)``
    (16 kHz; any length >= ``n_fft``, trained on 8192), as an int64 array ``(n,)``; :data:`SILENT`
    (-1) for a silent row (RMS below :data:`SILENT_RMS`, or not finite): silence is no instrument, so
    an untrained generator (which outputs zeros) is never counted as sounding like its target."""
    x = torch.as_tensor(np.asarray(audio) if not isinstance(audio, torch.Tensor) else audio, dtype=torch.float32)
    if x.dim() == 1:
        x = x[None]
    progs = torch.tensor(model.programs)
    out = []
    model.eval()
    with torch.no_grad():
        for lo in range(0, x.shape[0], batch):
            xb = x[lo:lo + batch]
            p = progs[model(xb).argmax(dim=-1)]
            if xb.dim() == 3:
                xb = xb[:, 0]
            rms = xb.double().pow(2).mean(dim=-1).sqrt()
            out.append(torch.where(torch.isfinite(rms) & (rms >= SILENT_RMS), p, torch.full_like(p, SILENT)))
    return torch.cat(out).numpy().astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def load_instrument_classifier(path: str | Path = DEFAULT_PATH) -> InstrumentClassifier:
    """The classifier saved at ``path`` (``.safetensors`` + ``.json``), loaded strictly; the metadata
    is at ``model.metadata``.

    Raises:
        CheckpointError: missing or corrupt files, another model, or weights that do not match.
    """
    tensors, meta = read_checkpoint(path)
    if meta.get("model") != MODEL_NAME:
        raise CheckpointError(f"{path}: not an {MODEL_NAME} (model {meta.get('model')!r})")
    try:
        model = InstrumentClassifier(meta["programs"], meta["mel"])
        model.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{path}: weights or metadata do not match {MODEL_NAME}: {e}") from None
    model.metadata = meta
    return model.eval()


# ------------------------------------------------------------------------------------------ data

def _pair_set_hash(root: Path) -> str | None:
    """sha256 of the pair set's build target (``pairs_config.json``'s ``target``) and manifest."""
    from .data.pairs import CONFIG_FILE, MANIFEST
    h = hashlib.sha256()
    cfg = root / CONFIG_FILE
    if cfg.is_file():
        h.update(json.dumps(json.loads(cfg.read_text()).get("target"), sort_keys=True).encode())
    h.update((root / MANIFEST).read_bytes())
    return h.hexdigest()


def _silence_threshold(root: Path) -> float:
    from .data.pairs import PairSetConfig, read_config
    try:
        db = read_config(root).silence_dbfs
    except FileNotFoundError:
        db = PairSetConfig.silence_dbfs
    return 10.0 ** (float(db) / 20.0)


def _crops(root: Path, rows: list[dict], programs: tuple[int, ...], per_file: int | None, rng, random_starts: bool,
           threshold: float, progress: bool = False, what: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Sounding crops (peak >= threshold) of every program's render of ``rows``: ``per_file`` per
    file (None: every grid crop), at random starts or a random subset of the grid."""
    xs, ys = [], []
    it = [(r, p) for r in rows for p in programs if str(p) in r["paths"]]
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=f"reading {what}", leave=False)
    for r, p in it:
        x, _ = sf.read(str(root / r["paths"][str(p)]), dtype="float32", always_2d=True)
        x = x[:, 0]
        if x.shape[0] < CROP:
            x = np.pad(x, (0, CROP - x.shape[0]))
        if random_starts:
            starts = []
            for _ in range(8 * (per_file or 1)):
                if len(starts) == per_file:
                    break
                s = int(rng.integers(0, x.shape[0] - CROP + 1))
                if np.abs(x[s:s + CROP]).max() >= threshold:
                    starts.append(s)
        else:
            grid = [j * CROP for j in range(x.shape[0] // CROP)]
            starts = [s for s in grid if np.abs(x[s:s + CROP]).max() >= threshold]
            if per_file is not None and len(starts) > per_file:
                starts = sorted(rng.choice(starts, size=per_file, replace=False).tolist())
        for s in starts:
            xs.append(x[s:s + CROP])
            ys.append(programs.index(p))
    if not xs:
        return np.zeros((0, CROP), np.float32), np.zeros(0, np.int64)
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def _features(model: InstrumentClassifier, audio: np.ndarray, batch: int = 512) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model.features(torch.from_numpy(audio[lo:lo + batch]))
                          for lo in range(0, len(audio), batch)]) if len(audio) else torch.zeros(0)


def _predict(model: InstrumentClassifier, feats: torch.Tensor, batch: int = 512) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        out = [model.forward_features(feats[lo:lo + batch]).argmax(-1) for lo in range(0, len(feats), batch)]
    model.train()
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


def _confusion(labels: np.ndarray, pred: np.ndarray, n: int) -> list[list[int]]:
    c = np.zeros((n, n), dtype=np.int64)
    np.add.at(c, (labels, pred), 1)
    return c.tolist()


def train_instrument_classifier(pairs_root: str | Path, out_path: str | Path, steps: int = 1500, seed: int = 0,
                                batch_size: int = 64, lr: float = 2e-3, train_crops_per_file: int = 8,
                                val_crops_per_file: int = 12, test_crops_per_file: int | None = None,
                                eval_every: int = 100, progress: bool = True, command: str | None = None) -> dict:
    """Train the classifier on ``pairs_root``'s train split, keep the best validation step, save it.

    Args:
        pairs_root: a pair set (:func:`rtgan.data.pairs.build_pairs`).
        out_path: the ``.safetensors`` file to write (the ``.json`` metadata goes beside it).
        steps: optimiser steps.
        seed: seeds the crop choice and the initial weights.
        train_crops_per_file: random sounding crops per training file (program render of a piece).
        val_crops_per_file, test_crops_per_file: sounding grid crops per file (None: all).
        eval_every: steps between validation passes (the best step's weights are kept).

    Returns:
        the metadata written (``accuracy`` per split, ``test_confusion`` rows = true program,
        columns = assigned program, ``test_accuracy_per_program``, ...).

    Raises:
        FileNotFoundError: no pair set at ``pairs_root``.
        ValueError: a split without sounding crops, or fewer than two programs.
    """
    from .data.pairs import read_manifest
    t0 = time.perf_counter()
    root = Path(pairs_root)
    rows = read_manifest(root)
    programs = tuple(sorted({int(p) for r in rows for p in r["paths"]}))
    if len(programs) < 2:
        raise ValueError(f"{root}: need at least two programs to classify, got {programs}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    thr = _silence_threshold(root)
    split_rows = {s: [r for r in rows if r["split"] == s] for s in ("train", "val", "test")}
    data = {"train": _crops(root, split_rows["train"], programs, train_crops_per_file, rng, True, thr, progress, "train"),
            "val": _crops(root, split_rows["val"], programs, val_crops_per_file, rng, False, thr, progress, "val"),
            "test": _crops(root, split_rows["test"], programs, test_crops_per_file, rng, False, thr, progress, "test")}
    for s, (x, _) in data.items():
        if not len(x):
            raise ValueError(f"{root}: no sounding {CROP}-sample crop in the {s} split")
    model = InstrumentClassifier(programs)
    feats = {s: _features(model, x) for s, (x, _) in data.items()}  # mean 0, std 1 buffers: raw log mel
    mean, std = feats["train"].mean(), feats["train"].std().clamp(min=1e-6)
    model.feature_mean.fill_(float(mean))
    model.feature_std.fill_(float(std))
    feats = {s: (f - mean) / std for s, f in feats.items()}
    labels = {s: torch.from_numpy(y) for s, (_, y) in data.items()}
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    n_train = len(labels["train"])
    best = (-1.0, 0, {k: v.clone() for k, v in model.state_dict().items()})
    history = []
    it = range(1, steps + 1)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="instrument classifier", leave=False)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for step in it:
        idx = torch.randint(0, n_train, (min(batch_size, n_train),), generator=gen)
        f = feats["train"][idx]
        shift = int(torch.randint(-2, 3, (), generator=gen))  # +-2 frames: a little time-shift augmentation
        f = torch.roll(f, shift, dims=-1)
        loss = nn.functional.cross_entropy(model.forward_features(f), labels["train"][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % eval_every == 0 or step == steps:
            acc = float((_predict(model, feats["val"]) == labels["val"].numpy()).mean())
            history.append({"step": step, "loss": float(loss.detach()), "val_accuracy": acc})
            if acc > best[0]:
                best = (acc, step, {k: v.clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    preds = {s: _predict(model, f) for s, f in feats.items()}
    acc = {s: float((preds[s] == labels[s].numpy()).mean()) for s in preds}
    conf = _confusion(labels["test"].numpy(), preds["test"], len(programs))
    per_prog = {str(p): (conf[i][i] / sum(conf[i]) if sum(conf[i]) else None) for i, p in enumerate(programs)}
    meta = {"model": MODEL_NAME, "programs": list(programs),
            "program_names": {str(p): PROGRAM_NAMES.get(p, f"program {p}") for p in programs},
            "mel": MEL, "crop": CROP, "feature_rms": FEATURE_RMS, "silent_rms": SILENT_RMS,
            "architecture": {"channels": list(_CHANNELS), "freq_bands": _FREQ_BANDS,
                             "parameters": sum(p.numel() for p in model.parameters())},
            "accuracy": acc, "test_confusion": conf, "test_accuracy_per_program": per_prog,
            "crops": {s: int(len(labels[s])) for s in labels},
            "crops_per_file": {"train": train_crops_per_file, "val": val_crops_per_file, "test": test_crops_per_file},
            "steps": steps, "best_step": best[1], "batch_size": batch_size, "lr": lr, "seed": seed,
            "history": history, "pairs_root": str(root), "pair_set_hash": _pair_set_hash(root),
            "command": command or " ".join(sys.argv), "seconds": round(time.perf_counter() - t0, 1)}
    save_checkpoint(out_path, model.state_dict(), meta)
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rtgan.instrument", description=__doc__.split("\n")[0])
    p.add_argument("pairs", help="pair set (rtgan data pairs --out DIR)")
    p.add_argument("out", nargs="?", default=str(DEFAULT_PATH), help="the .safetensors to write (default: shipped)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-crops-per-file", type=int, default=8)
    p.add_argument("-q", "--quiet", action="store_true")
    a = p.parse_args(argv)
    cmd = "python -m rtgan.instrument " + " ".join(sys.argv[1:] if argv is None else argv)
    meta = train_instrument_classifier(a.pairs, a.out, steps=a.steps, seed=a.seed,
                                       train_crops_per_file=a.train_crops_per_file, progress=not a.quiet, command=cmd)
    print(json.dumps({k: meta[k] for k in ("accuracy", "test_accuracy_per_program", "test_confusion", "crops",
                                           "best_step", "seconds")}, indent=1))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
