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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

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
    max_tonal_db: float | None = None
    tonal_db: dict[int, float] = field(default_factory=dict)


def snapshot_tonal_db(path: str | Path) -> float:
    """Tonal figure (dB peak-to-local-median, :func:`rtgan.metrics.tonal_artifact`) of a super-resolution snapshot.

    Raises:
        rtgan.checkpoint.CheckpointError: the snapshot does not load.
        ValueError: not a super-resolution model (see :func:`~rtgan.metrics.tonal_artifact`).
    """
    from ..metrics import tonal_artifact
    from ..models import registry
    return float(tonal_artifact(registry.load_generator(path))["peak_db"])


def select_snapshot(run_dir: str | Path, metric: str = "loss", min_step: int = 1, max_tonal_db: float | None = None,
                    tonal: Callable[[Path], float] = snapshot_tonal_db, max_step: int | None = None) -> Selection:
    """The snapshot of ``run_dir`` with the best validation ``metric`` (ties: the earliest).

    ``min_step``: only snapshots from this step on are candidates (a progressive GAN's
    validation metric compares like with like only once it has grown to full size).
    ``max_step``: and only up to this step (``min_step == max_step``: that one snapshot, chosen
    elsewhere on the validation split, e.g. by ``rtgan eval --split val``).

    ``max_tonal_db``: a release gate for super-resolution models (issue 13: no shipped SR
    model may leave a tone more than 6 dB above the generated band's floor). Each candidate's
    tonal figure is measured with ``tonal`` (default :func:`snapshot_tonal_db`: band-limited
    white noise in, no corpus audio read) and only those at or under the gate may win; every
    candidate's figure is kept in :attr:`Selection.tonal_db`. The validation metric still chooses.

    Raises:
        ValueError: an unknown metric, or a gate that is not a finite number.
        FileNotFoundError: no ``snapshots`` directory, no snapshot there has the metric, or
            none passes the tonal gate.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown selection metric {metric!r}; choose one of {', '.join(METRICS)}")
    if max_tonal_db is not None and not math.isfinite(max_tonal_db):
        raise ValueError(f"max_tonal_db must be a finite number of dB, got {max_tonal_db!r}")
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
                and math.isfinite(value) and (max_step is None or step <= max_step):
            rows.append((step, float(value), weights))
    if not rows:
        raise FileNotFoundError(f"{snaps}: no snapshot from step {max(1, min_step)} on"
                                + ("" if max_step is None else f" to step {max_step}") + " with a finite validation "
                                f"{metric!r}")
    rows.sort(key=lambda r: r[0])
    candidates = [(s, v) for s, v, _ in rows]
    tonal_db = {}
    if max_tonal_db is not None:
        tonal_db = {s: round(float(tonal(w)), 3) for s, _, w in rows}
        rows = [r for r in rows if tonal_db[r[0]] <= max_tonal_db]
        if not rows:
            shown = ", ".join(f"step {s}: {t:.2f} dB" for s, t in tonal_db.items())
            raise FileNotFoundError(f"{snaps}: no snapshot passes the tonal gate of {max_tonal_db:g} dB ({shown})")
    sign = -1.0 if METRICS[metric] else 1.0
    step, value, path = min(rows, key=lambda r: (sign * r[1], r[0]))
    return Selection(path, step, metric, value, candidates, max_tonal_db, tonal_db)


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
    if selection.max_tonal_db is not None:
        meta["selection"]["max_tonal_db"] = selection.max_tonal_db
        meta["selection"]["tonal_db"] = [[s, t] for s, t in selection.tonal_db.items()]
    return save_checkpoint(out, tensors, meta)


def describe(selection: Selection) -> str:
    """One line: what was chosen, by what, among how many."""
    gate = ""
    if selection.max_tonal_db is not None:
        passed = sum(t <= selection.max_tonal_db for t in selection.tonal_db.values())
        gate = (f", {passed} of them under the tonal gate of {selection.max_tonal_db:g} dB; "
                f"its tonal figure {selection.tonal_db[selection.step]:.2f} dB")
    return (f"step {selection.step}: validation {selection.metric} {selection.value:.4g} "
            f"(best of {len(selection.candidates)} snapshots, steps {selection.candidates[0][0]}-"
            f"{selection.candidates[-1][0]}{gate})")
