"""Evaluation of note models (kind ``"note"``, e.g. ``reverbsynth``) on a note set's split.

For every MIDI pitch of the split's (program, pitch) pairs (the test pitches) and every processing
label of the model (``dry``, ``reverb``) that the note set has, the model renders ``len(seeds)``
notes (latent ``z`` drawn with each seed, the same seeds for every pitch and label; velocity 1.0),
and each note and each real note of the split is measured (:mod:`rtgan.metrics`):

* **pitch**: CREPE's median f0 over the note's sustain (:func:`rtgan.metrics.note_pitch`, Kim et
  al. 2018, through torchcrepe) and whether it lies within 50 cents of the conditioning (generated)
  or rendered (real) MIDI pitch (:func:`rtgan.metrics.pitch_accuracy`; unvoiced counts as wrong).
  GANSynth (Engel et al. 2019) scored pitch with an NSynth pitch classifier instead; see
  :func:`~rtgan.metrics.pitch_accuracy` for why this differs. The real notes' accuracy is the
  estimator's own on the data: the ceiling a generator can be measured to reach.
* **decay**: the release decay rate after the note-off, dB/s (:func:`rtgan.metrics.decay_rate_db_per_s`;
  the note-off is the note set's ``note_seconds``, 3 s), per label, and the dry-minus-reverb
  difference: per pitch, the mean rate of its dry notes minus that of its reverberant notes, then
  the mean and 95 % interval over pitches; the reverberant label decays *measurably slower* when
  that interval lies above 0 and both labels' median rates are positive (notes whose level holds
  or grows after the note-off have no slower decay, they have none).
* **diversity**: per pitch and label, the mean pairwise log-mel distance
  (:func:`rtgan.metrics.mean_pairwise_logmel_distance`, RMS-normalised notes) of the generated notes
  (the seeds) and of the real notes (the split's programs and velocities of that pitch), then the
  mean over pitches; their ratio says how much of the data's variety the seeds reach.

Intervals are :func:`rtgan.evaluate.confidence_interval`'s (normal approximation; for an accuracy,
the mean of 0/1 values).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .evaluate import CI_NOTE, confidence_interval

__all__ = ["NoteEvalResult", "evaluate_notes", "format_table", "check_note_model", "check_note_set", "ifmel_png",
           "DEFAULT_SEEDS", "TOLERANCE_CENTS"]

#: latent seeds of the generated notes (the same for every pitch and label)
DEFAULT_SEEDS = (0, 1, 2, 3)
#: a pitch estimate is right within this many cents of the target
TOLERANCE_CENTS = 50.0


def check_note_model(model, label: str = "model") -> None:
    """Raise ``ValueError`` unless ``model`` is a note model (``kind == "note"`` with ``render_note``)."""
    if getattr(model, "kind", None) != "note" or not hasattr(model, "render_note"):
        raise ValueError(f"{label}: {getattr(model, 'name', type(model).__name__)} is not a note model")


def check_note_set(root: str | Path) -> Path:
    """``root`` as a path, if it holds a note set (``notes.jsonl``, :mod:`rtgan.data.notes`).

    Raises:
        ValueError: one line, when it does not.
    """
    from .data.notes import MANIFEST
    root = Path(root)
    if not (root / MANIFEST).is_file():
        raise ValueError(f"{root} is not a note set (no {MANIFEST}; build one with 'rtgan data notes --out DIR')")
    return root


def _cents(f0: float, pitch: int) -> float | None:
    if not (np.isfinite(f0) and f0 > 0):
        return None
    return float(1200.0 * np.log2(f0 / (440.0 * 2.0 ** ((pitch - 69) / 12.0))))


@dataclass
class NoteEvalResult:
    """What :func:`evaluate_notes` measured.

    Attributes:
        table: ``{"generated" | "real": {label: stats}, "decay_difference": {"generated" | "real":
            diff}, "diversity_ratio": {label: generated / real}}`` where ``stats`` is ``{"notes",
            "pitch_accuracy" (mean of 0/1 with its interval), "pitch_accuracy_all" (the share), "abs_cents_median"
            (median |cents error| of the voiced notes), "voiced_fraction", "decay_db_per_s",
            "decay_median_db_per_s", "decay_measured" (notes whose decay could be measured),
            "diversity" (over pitches)}`` and ``diff`` is ``{"dry_minus_reverb_db_per_s" (over
            pitches), "reverb_slower_pitches", "pitches", "median_db_per_s" (per label),
            "ratio_of_medians" (dry / reverb; None unless both decay), "measurably_slower" (the
            interval above 0 and both medians positive)}``.
        pitches: per pitch and label: the real notes' programs and velocities, and for ``real`` and
            ``generated``: ``accuracy``, ``decay_mean_db_per_s``, ``diversity``.
        notes: per note: ``source`` (real / generated), ``pitch``, ``label``, ``program`` and
            ``velocity`` (real) or ``seed`` (generated), ``path`` (real), ``f0_hz``, ``cents``,
            ``voiced_fraction``, ``correct``, ``decay_db_per_s`` (None: not measurable), and
            ``nonfinite: true`` for a generated note with NaN or Inf samples (counted as wrong).
        settings: what was measured how (seeds, velocity, CREPE, windows, note-off, ...).
        example: audio of one dry and one reverberant note of one pitch, real and generated, for the picture.
        timing: seconds.
    """

    table: dict
    pitches: list[dict]
    notes: list[dict]
    settings: dict
    example: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The figures the issue names: pitch accuracy per label (generated and real), the decay
        medians, whether the reverberant label decays measurably slower, diversity."""
        t = self.table
        out: dict = {"pitch_accuracy": {}, "decay_median_db_per_s": {}, "reverb_measurably_slower": {},
                     "diversity": {}}
        for src in ("generated", "real"):
            out["pitch_accuracy"][src] = {lab: s["pitch_accuracy_all"] for lab, s in t[src].items()}
            out["decay_median_db_per_s"][src] = {lab: s["decay_median_db_per_s"] for lab, s in t[src].items()}
            out["diversity"][src] = {lab: s["diversity"]["mean"] for lab, s in t[src].items()}
            d = t["decay_difference"].get(src)
            out["reverb_measurably_slower"][src] = None if d is None else d["measurably_slower"]
        for src in ("generated", "real"):
            rows = [n for n in self.notes if n["source"] == src]
            out["pitch_accuracy"][src]["all"] = (float(np.mean([n["correct"] for n in rows])) if rows else None)
        return out

    def to_dict(self) -> dict:
        return {"ci": CI_NOTE, "summary": self.summary(), "settings": self.settings, "table": self.table,
                "timing": self.timing, "pitches": self.pitches, "notes": self.notes}

    def to_json(self, **extra) -> str:
        """:meth:`to_dict` (with ``extra`` keys first) as indented JSON text."""
        return json.dumps({**extra, **self.to_dict()}, indent=1) + "\n"

    def print_table(self) -> None:
        """Print :func:`format_table`."""
        print(format_table(self))


def _group_stats(rows: list[dict], diversities: list[float]) -> dict:
    decays = [r["decay_db_per_s"] for r in rows if r["decay_db_per_s"] is not None]
    cents = [abs(r["cents"]) for r in rows if r["cents"] is not None]
    return {"notes": len(rows),
            "pitch_accuracy": confidence_interval([float(r["correct"]) for r in rows]),
            "pitch_accuracy_all": float(np.mean([r["correct"] for r in rows])) if rows else None,
            "abs_cents_median": float(np.median(cents)) if cents else None,
            "voiced_fraction": confidence_interval([r["voiced_fraction"] for r in rows]),
            "decay_db_per_s": confidence_interval(decays),
            "decay_median_db_per_s": float(np.median(decays)) if decays else None,
            "decay_measured": len(decays),
            "diversity": confidence_interval(diversities)}


def _decay_difference(rows: list[dict], pitches: list[int]) -> dict | None:
    diffs = []
    for p in pitches:
        means = {}
        for lab in ("dry", "reverb"):
            d = [r["decay_db_per_s"] for r in rows if r["pitch"] == p and r["label"] == lab
                 and r["decay_db_per_s"] is not None]
            means[lab] = float(np.mean(d)) if d else None
        if means["dry"] is not None and means["reverb"] is not None:
            diffs.append(means["dry"] - means["reverb"])
    med = {}
    for lab in ("dry", "reverb"):
        d = [r["decay_db_per_s"] for r in rows if r["label"] == lab and r["decay_db_per_s"] is not None]
        med[lab] = float(np.median(d)) if d else None
    if not diffs:
        return None
    ci = confidence_interval(diffs)
    decays = med["dry"] is not None and med["reverb"] is not None and med["dry"] > 0 and med["reverb"] > 0
    return {"dry_minus_reverb_db_per_s": ci, "reverb_slower_pitches": int(sum(d > 0 for d in diffs)),
            "pitches": len(diffs), "median_db_per_s": med,
            "ratio_of_medians": (med["dry"] / med["reverb"]) if decays else None,
            # slower, and still a decay: a reverb label whose level holds or grows is not a slower decay
            "measurably_slower": bool(decays and ci["ci95"] is not None and ci["mean"] - ci["ci95"] > 0)}


def evaluate_notes(model, notes_root: str | Path, split: str = "test", seeds=DEFAULT_SEEDS, velocity: float = 1.0,
                   crepe_model: str = "full", crepe_device: str | None = None,
                   progress: bool = True) -> NoteEvalResult:
    """Score a note model on a note set's split (module docstring).

    Args:
        model: a note model (``render_note``, ``labels``, ``pitch_range``, ``sample_rate_out``).
        notes_root: a note set (``rtgan data notes --out DIR``).
        split: whose (program, pitch) pairs give the test pitches and the real notes.
        seeds: latent seeds, at least two (diversity needs pairs).
        velocity: gain of the generated notes (0..1).
        crepe_model: torchcrepe capacity, ``"full"`` (default) or ``"tiny"``.
        crepe_device: torchcrepe's device (default: the model's).

    Raises:
        ValueError: not a note model or not a note set, an unknown split, fewer than two seeds, no
            pitch of the split within the model's range, no label shared by the model and the data.
        ImportError: torchcrepe is not installed (:data:`rtgan.metrics.TORCHCREPE_PIP`).
    """
    from .data.common import SPLITS
    from .data.notes import read_config, read_manifest
    from .metrics import (NOTE_PITCH_FMAX_HZ, NOTE_PITCH_FMIN_HZ, NOTE_PITCH_WINDOW_S, NOTE_PERIODICITY_THRESHOLD,
                          decay_rate_db_per_s, load_torchcrepe, mean_pairwise_logmel_distance, note_pitch,
                          pitch_accuracy)

    t_start = time.perf_counter()
    check_note_model(model)
    root = check_note_set(notes_root)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    seeds = tuple(int(s) for s in seeds)
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"evaluate_notes: need at least two distinct seeds (diversity is over pairs), got {seeds}")
    if not 0.0 < velocity <= 1.0:
        raise ValueError(f"evaluate_notes: velocity must be in (0, 1], got {velocity}")
    load_torchcrepe()  # fail before any work
    rows = [r for r in read_manifest(root) if r["split"] == split]
    if not rows:
        raise ValueError(f"no notes in the {split} split of {root}")
    try:
        cfg = read_config(root)
        note_off = float(cfg.note_seconds)
    except (FileNotFoundError, ValueError, KeyError):
        from .data.notes import NoteSetConfig
        note_off = float(NoteSetConfig().note_seconds)
    window = (NOTE_PITCH_WINDOW_S[0], min(NOTE_PITCH_WINDOW_S[1], note_off - NOTE_PITCH_WINDOW_S[0]))
    if not window[1] > window[0]:
        window = (0.0, note_off)
    lo, hi = model.pitch_range
    test_pitches = sorted({int(r["pitch"]) for r in rows})
    skipped = [p for p in test_pitches if not lo <= p <= hi]
    gen_pitches = [p for p in test_pitches if lo <= p <= hi]
    if not gen_pitches:
        raise ValueError(f"no pitch of the {split} split ({test_pitches[0]}..{test_pitches[-1]}) is in the model's "
                         f"range {lo}..{hi}")
    data_labels = sorted({r["label"] for r in rows})
    model_labels = tuple(model.labels) or ("dry",)  # a model without labels renders its one kind: call it dry
    labels = [lab for lab in model_labels if lab in data_labels]
    if not labels:
        raise ValueError(f"the model's labels {model_labels} and the data's {data_labels} have none in common")
    p0 = next(model.parameters(), None)
    device = crepe_device or (str(p0.device) if p0 is not None else "cpu")
    crepe = {"model": crepe_model, "fmin_hz": NOTE_PITCH_FMIN_HZ, "fmax_hz": NOTE_PITCH_FMAX_HZ, "window_s": window,
             "hop_s": 0.05, "periodicity_threshold": NOTE_PERIODICITY_THRESHOLD, "decoder": "weighted_argmax"}

    def measure(x: np.ndarray, sr: int, pitch: int) -> dict:
        if not np.isfinite(x).all():  # a diverged generator: nothing to measure, and wrong
            return {"f0_hz": None, "cents": None, "voiced_fraction": 0.0, "correct": False, "decay_db_per_s": None,
                    "nonfinite": True}
        f0, voiced = note_pitch(x, sr, fmin=crepe["fmin_hz"], fmax=crepe["fmax_hz"], model=crepe_model,
                                window_s=window, hop_s=crepe["hop_s"], device=device)
        try:
            decay = decay_rate_db_per_s(x, sr, note_off_s=note_off)
        except ValueError:
            decay = None  # too short for the note-off, or silent before it
        return {"f0_hz": None if not np.isfinite(f0) else f0, "cents": _cents(f0, pitch), "voiced_fraction": voiced,
                "correct": bool(pitch_accuracy([f0], [pitch], TOLERANCE_CENTS)), "decay_db_per_s": decay}

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(rows) + len(gen_pitches) * len(labels) * len(seeds), desc=f"eval notes {split}",
                   unit="note", dynamic_ncols=True)
    notes: list[dict] = []
    real_audio: dict[tuple[int, str], list[np.ndarray]] = {}
    real_sr = None
    for r in sorted(rows, key=lambda r: (r["pitch"], r["label"], r["program"], r["velocity"])):
        x, sr = sf.read(str(root / r["path"]), dtype="float64", always_2d=True)
        x = x.mean(axis=1)
        real_sr = sr if real_sr is None else real_sr
        if sr != real_sr:
            raise ValueError(f"{root}: the {split} split mixes sample rates ({real_sr}, {sr} Hz)")
        notes.append({"source": "real", "pitch": int(r["pitch"]), "label": r["label"], "program": int(r["program"]),
                      "velocity": int(r["velocity"]), "path": r["path"], **measure(x, sr, int(r["pitch"]))})
        real_audio.setdefault((int(r["pitch"]), r["label"]), []).append(x)
        if bar is not None:
            bar.update(1)
    sr_out = int(model.sample_rate_out)
    gen_audio: dict[tuple[int, str], list[np.ndarray]] = {}
    model = model.eval()
    for p in gen_pitches:
        for lab in labels:
            for s in seeds:
                with torch.no_grad():
                    y = model.render_note(p, velocity, lab if model.labels else None, seed=s)
                y = y.detach().double().cpu().numpy()
                notes.append({"source": "generated", "pitch": p, "label": lab, "seed": s, **measure(y, sr_out, p)})
                gen_audio.setdefault((p, lab), []).append(y)
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()

    def diversity(audio: dict, key, sr: int) -> float | None:
        group = audio.get(key, [])
        try:
            return mean_pairwise_logmel_distance(group, sr) if len(group) >= 2 else None
        except ValueError:
            return None  # notes shorter than the STFT, or silent

    pitch_rows, div = [], {("real", lab): [] for lab in labels} | {("generated", lab): [] for lab in labels}
    for p in test_pitches:
        for lab in labels:
            real = [n for n in notes if n["source"] == "real" and n["pitch"] == p and n["label"] == lab]
            gen = [n for n in notes if n["source"] == "generated" and n["pitch"] == p and n["label"] == lab]
            row = {"pitch": p, "label": lab, "programs": sorted({n["program"] for n in real}),
                   "velocities": sorted({n["velocity"] for n in real})}
            for src, sel, audio, sr in (("real", real, real_audio, real_sr), ("generated", gen, gen_audio, sr_out)):
                if not sel:
                    continue
                d = diversity(audio, (p, lab), sr)
                if d is not None:
                    div[(src, lab)].append(d)
                decays = [n["decay_db_per_s"] for n in sel if n["decay_db_per_s"] is not None]
                row[src] = {"notes": len(sel), "accuracy": float(np.mean([n["correct"] for n in sel])),
                            "decay_mean_db_per_s": float(np.mean(decays)) if decays else None, "diversity": d}
            pitch_rows.append(row)
    table: dict = {"generated": {}, "real": {}, "decay_difference": {}, "diversity_ratio": {}}
    for src in ("generated", "real"):
        for lab in labels:
            sel = [n for n in notes if n["source"] == src and n["label"] == lab]
            table[src][lab] = _group_stats(sel, div[(src, lab)])
        table["decay_difference"][src] = (_decay_difference([n for n in notes if n["source"] == src], test_pitches)
                                          if {"dry", "reverb"} <= set(labels) else None)
    for lab in labels:
        g, r = table["generated"][lab]["diversity"]["mean"], table["real"][lab]["diversity"]["mean"]
        table["diversity_ratio"][lab] = (g / r) if g is not None and r else None

    # the picture: the test pitch nearest the middle of the split's range, one real note (the loudest
    # velocity of its lowest program) and the first seed's generated note per label
    example: dict = {}
    mid = gen_pitches[int(np.argmin([abs(p - np.median(gen_pitches)) for p in gen_pitches]))]
    reals = sorted((r for r in rows if int(r["pitch"]) == mid), key=lambda r: (r["program"], -r["velocity"]))
    if reals:
        prog, vel = reals[0]["program"], reals[0]["velocity"]
        example = {"pitch": mid, "program": prog, "velocity": vel, "seed": seeds[0], "real_sample_rate": real_sr,
                   "sample_rate": sr_out}
        for lab in labels:
            match = [n for n in notes if n["source"] == "real" and n["pitch"] == mid and n["label"] == lab
                     and n["program"] == prog and n["velocity"] == vel]
            if match:
                i = [n for n in notes if n["source"] == "real" and n["pitch"] == mid and n["label"] == lab].index(match[0])
                example[lab] = {"real": real_audio[(mid, lab)][i], "generated": gen_audio[(mid, lab)][0]}
    settings = {"split": split, "notes_root": str(root), "test_pitches": test_pitches, "generated_pitches": gen_pitches,
                "skipped_pitches_out_of_range": skipped, "labels": labels, "seeds": list(seeds), "velocity": velocity,
                "note_off_s": note_off, "tolerance_cents": TOLERANCE_CENTS, "crepe": crepe,
                "decay": "release decay after the note-off (rtgan.metrics.decay_rate_db_per_s): -slope of 20 ms "
                         "frame levels re the 100 ms before the note-off, from the note-off down to 30 dB below",
                "diversity": "mean pairwise mean |log-mel difference| (nats; rtgan.metrics."
                             "mean_pairwise_logmel_distance: 80 mels, n_fft 1024, hop 256, RMS-normalised notes) "
                             "per pitch and label, mean over pitches",
                "real_sample_rate": real_sr, "model_sample_rate": sr_out}
    timing = {"seconds": time.perf_counter() - t_start, "real_notes": len(rows),
              "generated_notes": sum(1 for n in notes if n["source"] == "generated")}
    return NoteEvalResult(table, pitch_rows, notes, settings, example, timing)


def _fmt(s: dict | None, digits: int) -> str:
    if s is None or s.get("mean") is None:
        return "–"
    ci = "–" if s["ci95"] is None else f"{s['ci95']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {ci}"


def format_table(result: NoteEvalResult) -> str:
    """Text table: per source and label, pitch accuracy, decay and diversity; then the decay difference."""
    st = result.settings
    lines = [f"{st['split']} split: {len(st['test_pitches'])} pitches, seeds {st['seeds']}, velocity {st['velocity']}, "
             f"CREPE {st['crepe']['model']} ({CI_NOTE})",
             f"{'':<20}{'pitch acc':>16}{'|cents| med':>12}{'voiced':>14}{'decay dB/s':>22}{'median':>9}"
             f"{'diversity':>16}"]
    for src in ("real", "generated"):
        for lab, s in result.table[src].items():
            cents = "–" if s["abs_cents_median"] is None else f"{s['abs_cents_median']:.1f}"
            med = "–" if s["decay_median_db_per_s"] is None else f"{s['decay_median_db_per_s']:.1f}"
            decay = f"{_fmt(s['decay_db_per_s'], 1)} (n={s['decay_measured']})"
            lines.append(f"{src + ' ' + lab:<20}{_fmt(s['pitch_accuracy'], 3):>16}{cents:>12}"
                         f"{_fmt(s['voiced_fraction'], 2):>14}{decay:>22}{med:>9}{_fmt(s['diversity'], 3):>16}")
    for src in ("real", "generated"):
        d = result.table["decay_difference"].get(src)
        if d is None:
            lines.append(f"{src}: no dry/reverb decay difference (a label missing or no decay measured)")
            continue
        med = d["median_db_per_s"]
        lines.append(f"{src}: dry - reverb decay {_fmt(d['dry_minus_reverb_db_per_s'], 1)} dB/s over {d['pitches']} "
                     f"pitches (reverb slower at {d['reverb_slower_pitches']}), medians dry {med['dry']:.1f}, reverb "
                     f"{med['reverb']:.1f} dB/s: reverb {'decays measurably slower' if d['measurably_slower'] else 'does NOT decay measurably slower'}"
                     f"{'' if d['ratio_of_medians'] is not None else ' (a label that does not decay)'}")
    ratios = ", ".join(f"{lab} {v:.2f}" for lab, v in result.table["diversity_ratio"].items() if v is not None)
    if ratios:
        lines.append(f"diversity generated / real: {ratios}")
    return "\n".join(lines)


def _levels_db(x: np.ndarray, sr: int, frame_s: float = 0.02, hop_s: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    frame, hop = max(1, int(frame_s * sr)), max(1, int(hop_s * sr))
    if len(x) < frame:
        return np.zeros(0), np.zeros(0)
    n = 1 + (len(x) - frame) // hop
    e = np.mean(x[np.arange(frame)[None, :] + hop * np.arange(n)[:, None]] ** 2, axis=1)
    return (hop * np.arange(n) + frame / 2) / sr, 10.0 * np.log10(np.maximum(e, 1e-12))


def ifmel_png(path: str | Path, example: dict, spec, title: str = "") -> Path:
    """Save real and generated IF-Mel images (log mel power and mel IF, :func:`rtgan.dsp.ifmel` with
    ``spec``, the model's :class:`~rtgan.dsp.IFMelSpec`) of one dry and one reverberant note of one
    pitch (``example`` from :func:`evaluate_notes`), and below them the four notes' frame levels
    (20 ms, dB re each note's peak) over time, where the release after the note-off shows the decay.
    Real notes are cut or zero-padded to ``spec.samples``. Written atomically.

    Raises:
        ImportError: matplotlib is not installed.
        ValueError: ``example`` holds no note.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .dsp import ifmel
    from .fileio import atomic_write
    labels = [lab for lab in ("dry", "reverb") if lab in example]
    if not labels:
        raise ValueError("ifmel_png: no note in the example")

    def image(x: np.ndarray) -> np.ndarray:
        x = np.nan_to_num(np.asarray(x, dtype=np.float64)[: spec.samples], nan=0.0, posinf=0.0, neginf=0.0)
        x = np.pad(x, (0, spec.samples - len(x)))
        with torch.no_grad():
            return ifmel(torch.from_numpy(x)[None], spec)[0].numpy()  # (2, frames, mels)

    imgs = {(lab, src): image(example[lab][src]) for lab in labels for src in ("real", "generated")}
    lo = min(float(np.percentile(imgs[(lab, "real")][0], 1)) for lab in labels)
    hi = max(float(imgs[(lab, "real")][0].max()) for lab in labels)
    fig = plt.figure(figsize=(16, 3.2 * len(labels) + 3.2), constrained_layout=True)
    grid = fig.add_gridspec(len(labels) + 1, 4)
    # frame t spans samples t * hop - padding .. + n_fft of the note (IFMelSpec pads on the left): centres
    t0 = (spec.n_fft / 2 - spec.padding - spec.hop_length / 2) / spec.sample_rate
    t_end = t0 + spec.frames * spec.hop_length / spec.sample_rate
    for i, lab in enumerate(labels):
        for j, (src, ch) in enumerate((("real", 0), ("real", 1), ("generated", 0), ("generated", 1))):
            ax = fig.add_subplot(grid[i, j])
            im = imgs[(lab, src)][ch].T
            kw = dict(vmin=lo, vmax=hi, cmap="magma") if ch == 0 else dict(vmin=-1.0, vmax=1.0, cmap="twilight")
            h = ax.imshow(im, origin="lower", aspect="auto", extent=(t0, t_end, 0, im.shape[0]), **kw)
            ax.set_title(f"{lab}, {src}: {'log mel power' if ch == 0 else 'mel IF / pi'}")
            ax.set_ylabel("mel bin")
            ax.set_xlabel("time (s)")
            fig.colorbar(h, ax=ax)
    ax = fig.add_subplot(grid[len(labels), :])
    for lab in labels:
        for src, style in (("real", "-"), ("generated", "--")):
            sr = example["real_sample_rate"] if src == "real" else example["sample_rate"]
            t, lv = _levels_db(np.nan_to_num(np.asarray(example[lab][src], dtype=np.float64)), sr)
            if lv.size:
                ax.plot(t, lv - lv.max(), style, label=f"{lab} {src}", linewidth=1.0)
    ax.set_ylim(-90, 3)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("level re peak (dB, 20 ms frames)")
    ax.legend(loc="lower left", ncol=4)
    ax.grid(alpha=0.3)
    fig.suptitle(title or f"MIDI {example['pitch']}: real (program {example['program']}, velocity "
                          f"{example['velocity']}) and generated (seed {example['seed']}) IF-Mel")
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
    finally:
        plt.close(fig)
    return path
