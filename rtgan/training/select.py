"""Choosing a training run's snapshot on the validation split, and writing it as a release checkpoint.

The training loop (:func:`rtgan.training.loop.train`) validates every ``val_every`` steps on
the validation split and saves the generator at each validation as
``RUN_DIR/snapshots/NAME-stepNNNNNNN.safetensors`` (+ ``.json`` with ``metrics.val``).
:func:`select_snapshot` picks the best of them by one validation metric; :func:`release`
copies it with a ``selection`` record (split, metric, candidates, producing command) added to
its metadata, so a shipped checkpoint says how it was chosen. The test split is never read.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import CheckpointError, read_checkpoint, save_checkpoint

#: metrics that can choose, and whether higher is better
METRICS = {"loss": False, "lsd": False, "mel_l1": False, "mse": False, "snr_db": True}


@dataclass(frozen=True)
class Selection:
    """The chosen snapshot and what it was chosen among.

    Attributes:
        path: the chosen ``.safetensors``.
        step: its training step.
        metric: the validation metric that chose (a key of :data:`METRICS`).
        value: its value there.
        candidates: ``[(step, value), ...]`` of every snapshot considered, by step.
    """

    path: Path
    step: int
    metric: str
    value: float
    candidates: list[tuple[int, float]]


def select_snapshot(run_dir: str | Path, metric: str = "loss", min_step: int = 1) -> Selection:
    """The snapshot of ``run_dir`` with the best validation ``metric`` (ties: the earliest).

    ``min_step``: only snapshots from this step on are candidates (a progressive GAN's
    validation metric compares like with like only once it has grown to full size).

    Raises:
        ValueError: an unknown metric.
        FileNotFoundError: no ``snapshots`` directory, or no snapshot there has the metric.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown selection metric {metric!r}; choose one of {', '.join(METRICS)}")
    snaps = Path(run_dir) / "snapshots"
    if not snaps.is_dir():
        raise FileNotFoundError(f"{run_dir}: no snapshots directory (is it a training run directory?)")
    rows = []
    for js in sorted(snaps.glob("*.json")):
        weights = js.with_suffix(".safetensors")
        try:
            meta = json.loads(js.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        value = meta.get("metrics", {}).get("val", {}).get(metric)
        step = meta.get("steps")
        if weights.exists() and isinstance(step, int) and step >= max(1, min_step) and isinstance(value, (int, float)) \
                and math.isfinite(value):
            rows.append((step, float(value), weights))
    if not rows:
        raise FileNotFoundError(f"{snaps}: no snapshot from step {max(1, min_step)} on with a finite validation "
                                f"{metric!r}")
    rows.sort(key=lambda r: r[0])
    sign = -1.0 if METRICS[metric] else 1.0
    step, value, path = min(rows, key=lambda r: (sign * r[1], r[0]))
    return Selection(path, step, metric, value, [(s, v) for s, v, _ in rows])


def release(selection: Selection, out: str | Path, command: str = "") -> Path:
    """Copy the selected snapshot to ``out`` (+ ``.json``), adding a ``selection`` record to its metadata.

    The record holds the split (``val``), metric, chosen step and value, the candidates and
    ``command``; ``commands`` lists the commands that made the weights: those of the run it
    was initialised from (``init_from``), if any, then its own, then ``command``.

    Raises:
        rtgan.checkpoint.CheckpointError: the snapshot does not read.
        ValueError: ``out`` is the snapshot itself.
    """
    out = Path(out)
    if out.resolve() == selection.path.resolve():
        raise ValueError("the release must not overwrite the snapshot it copies")
    tensors, meta = read_checkpoint(selection.path)
    if meta.get("steps") != selection.step:
        raise CheckpointError(f"{selection.path} changed since it was selected")
    meta = dict(meta)
    meta.pop("format_version", None)
    commands = []
    if isinstance(meta.get("init_from"), dict) and meta["init_from"].get("command"):
        commands.append(meta["init_from"]["command"])
    commands += [c for c in meta.get("commands", [meta.get("command", "")]) if c] + ([command] if command else [])
    meta["commands"] = commands
    meta["selection"] = {"split": "val", "metric": selection.metric, "step": selection.step,
                         "value": selection.value, "candidates": [list(c) for c in selection.candidates],
                         "command": command}
    return save_checkpoint(out, tensors, meta)


def describe(selection: Selection) -> str:
    """One line: what was chosen, by what, among how many."""
    return (f"step {selection.step}: validation {selection.metric} {selection.value:.4g} "
            f"(best of {len(selection.candidates)} snapshots, steps {selection.candidates[0][0]}-"
            f"{selection.candidates[-1][0]})")
