"""Evaluation of instrument-transfer models (seed 001, ``xfer-violin`` and kin) on a pair set's split.

Alahi, Sifringer & Stegmüller (2020) Table I: SNR (eq. 24, :func:`rtgan.metrics.snr`) and LSD (eq. 25,
:func:`rtgan.metrics.lsd`) of the generated track against the target instrument's render, mean ± std
over the test windows, with the untouched input (the piano) as the baseline row. Here, per sounding
8192-sample grid crop of :class:`rtgan.data.pairs.PairDataset` (``random_crop=False``; the seed's
rectangular test windows; the model runs offline on each whole crop, ``model(x)`` with ``x``
``(batch, 1, 8192)``):

* **SNR** (dB) and **LSD** of the output and of the input against the target; the input row's SNR is
  :func:`rtgan.data.pairs.input_target_snr` on the same crops;
* **MFCC distance** to the target (:func:`mfcc_distance`: 20 MFCCs, librosa's defaults) of the output
  and of the input: a timbre distance that ignores phase, which SNR punishes;
* **instrument share**: the fraction of outputs that the instrument classifier
  (:mod:`rtgan.instrument`) assigns to the target program; the same for the inputs (a baseline that
  should be ~0) and for the real targets (the classifier's accuracy on these crops: the ceiling).
  A silent crop (RMS below -100 dBFS, e.g. an untrained generator's output) is assigned to no
  program (``"silent"``), so it never counts as the target.

Std is the population standard deviation over crops (``ddof=0``, as :func:`input_target_snr`); the
tables also give the 95 % interval half-width of the mean (:func:`rtgan.evaluate.confidence_interval`).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["XferEvalResult", "evaluate_xfer", "format_table", "format_table_i", "mfcc_distance", "mfcc", "check_xfer_model", "CROP",
           "MFCC_SETTINGS"]

#: samples per crop (the seed's window; a multiple of every xfer preset's total stride)
CROP = 8192
#: crops in the example excerpt of :func:`evaluate_xfer` (4 x 8192 samples: 2 s at 16 kHz)
EXAMPLE_CROPS = 4
#: MFCC settings (librosa.feature.mfcc's defaults)
MFCC_SETTINGS = {"n_fft": 2048, "hop_length": 512, "n_mels": 128, "amin": 1e-10, "top_db": 80.0, "dct": "II, ortho"}


def check_xfer_model(model, label: str = "model") -> None:
    """Raise ``ValueError`` unless ``model`` is an instrument-transfer model (config with ``target_program``)."""
    if not hasattr(getattr(model, "config", None), "target_program"):
        raise ValueError(f"{label}: {getattr(model, 'name', type(model).__name__)} is not an instrument-transfer "
                         f"model (no target_program in its config)")


def _dct_matrix(n_mels: int, n_mfcc: int) -> torch.Tensor:
    """Orthonormal DCT-II rows ``(n_mfcc, n_mels)`` (scipy.fft.dct(type=2, norm='ortho'))."""
    k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    n = torch.arange(n_mels, dtype=torch.float64)[None, :]
    d = torch.cos(torch.pi * k * (2 * n + 1) / (2 * n_mels)) * (2.0 / n_mels) ** 0.5
    d[0] /= 2.0 ** 0.5
    return d


def mfcc(audio, sample_rate: int, n_mfcc: int = 20, n_fft: int = 2048, hop_length: int = 512,
         n_mels: int = 128) -> np.ndarray:
    """MFCCs as ``librosa.feature.mfcc`` computes them by default, without librosa.

    Power spectrogram (periodic Hann, centred, zero padding: :func:`rtgan.dsp.stft_magnitude` squared)
    -> Slaney mel bank (:func:`rtgan.dsp.mel_filterbank`, 0 Hz..Nyquist) -> ``10 log10(max(S, 1e-10))``
    clipped at 80 dB below each item's maximum (librosa's ``power_to_db`` with ``ref=1``, ``top_db=80``)
    -> orthonormal DCT-II over the mel bands, the first ``n_mfcc`` coefficients.

    Args:
        audio: ``(samples,)`` or ``(n, samples)``, array or tensor.

    Returns:
        float64 ``(n_mfcc, frames)`` for 1-D input, else ``(n, n_mfcc, frames)``; ``frames = 1 + samples //
        hop_length``.
    """
    from .dsp import mel_filterbank, stft_magnitude
    x = torch.as_tensor(np.asarray(audio) if not isinstance(audio, torch.Tensor) else audio).double()
    one_d = x.dim() == 1
    if one_d:
        x = x[None]
    if x.dim() != 2 or x.shape[-1] == 0:
        raise ValueError(f"mfcc: expected (samples,) or (n, samples), got {tuple(x.shape)}")
    with torch.no_grad():
        power = stft_magnitude(x, n_fft, hop_length) ** 2
        fb = mel_filterbank(int(sample_rate), n_fft, n_mels).double()
        db = 10.0 * torch.log10(torch.clamp(fb @ power, min=MFCC_SETTINGS["amin"]))
        db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - MFCC_SETTINGS["top_db"])
        out = torch.einsum("km,nmt->nkt", _dct_matrix(n_mels, n_mfcc), db).numpy()
    return out[0] if one_d else out


def mfcc_distance(a, b, sample_rate: int, n_mfcc: int = 20):
    """Mean Euclidean distance between the MFCC frames (:func:`mfcc`) of ``a`` and ``b``.

    ``mean_t || MFCC_a[:, t] - MFCC_b[:, t] ||_2`` (dB-scaled cepstral units); 0 for identical signals.

    Args:
        a, b: ``(samples,)`` or ``(n, samples)`` of one shape.

    Returns:
        a float for 1-D input, else a float64 array ``(n,)``.

    Raises:
        ValueError: shapes differ.
    """
    ma, mb = mfcc(a, sample_rate, n_mfcc), mfcc(b, sample_rate, n_mfcc)
    if ma.shape != mb.shape:
        raise ValueError(f"mfcc_distance: shapes differ: {np.shape(a)} vs {np.shape(b)}")
    d = np.sqrt(((ma - mb) ** 2).sum(axis=-2)).mean(axis=-1)
    return float(d) if np.ndim(d) == 0 else d


def _stats(values) -> dict:
    from .evaluate import confidence_interval
    v = np.asarray(values, dtype=np.float64)
    ci = confidence_interval(v)
    return {"mean": ci["mean"], "std": float(v.std()) if v.size else None, "ci95": ci["ci95"], "n": int(v.size)}


@dataclass
class XferEvalResult:
    """What :func:`evaluate_xfer` measured.

    Attributes:
        table: ``{"output" | "input": {"snr_db", "lsd", "mfcc_distance": {"mean", "std", "ci95", "n"},
            "target_share": float | None, "assigned": {program: share} | None}, "target": {"target_share",
            "assigned"}}``: ``target_share`` is the share of crops the classifier assigns to the target
            program (for ``target``: its accuracy on the real targets); None without a classifier.
        crops: per crop: ``piece``, ``start``, ``snr_db``/``lsd``/``mfcc`` for output and input
            (``out_*``, ``in_*``), assigned programs (``out_class``, ``in_class``, ``target_class``).
        settings: what was measured how.
        timing: seconds.
        example: for a picture: ``piece``, ``start`` (sample) and ``input``, ``output``, ``target``
            ``(samples,)`` float32 of :data:`EXAMPLE_CROPS` crops from the crop with the loudest
            target on (the model run offline on the whole excerpt); None when not asked for.
    """

    table: dict
    crops: list[dict]
    settings: dict
    timing: dict = field(default_factory=dict)
    example: dict | None = None

    def summary(self) -> dict:
        """Mean ± std of SNR, LSD, MFCC distance per row and the target shares."""
        out = {}
        for row in ("output", "input"):
            t = self.table[row]
            out[row] = {k: (t[k]["mean"], t[k]["std"]) for k in ("snr_db", "lsd", "mfcc_distance")}
            out[row]["target_share"] = t["target_share"]
        out["target"] = {"target_share": self.table["target"]["target_share"]}
        return out

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "settings": self.settings, "table": self.table, "timing": self.timing,
                "crops": self.crops}

    def to_json(self, **extra) -> str:
        """:meth:`to_dict` (with ``extra`` keys first) as indented JSON text."""
        return json.dumps({**extra, **self.to_dict()}, indent=1) + "\n"

    def print_table(self) -> None:
        """Print :func:`format_table`."""
        print(format_table(self))


def _fmt(s: dict | None, digits: int) -> str:
    if s is None or s.get("mean") is None:
        return "–"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def format_table(result: XferEvalResult) -> str:
    """Text table: rows output (model), input (untouched piano) and target (real); SNR, LSD and MFCC
    distance mean ± std, and the share of crops classified as the target instrument."""
    st = result.settings
    lines = [f"{st['split']} split of {st['pairs_root']}: {st['crops']} crops of {st['crop']} samples, program "
             f"{st['input_program']} -> {st['target_program']} ({st['target_name']}); mean ± std over crops",
             f"{'':<18}{'SNR dB':>18}{'LSD':>16}{'MFCC dist':>18}{'as target':>11}"]
    for row, name in (("output", "output (model)"), ("input", "input (baseline)"), ("target", "target (real)")):
        t = result.table[row]
        share = "–" if t["target_share"] is None else f"{t['target_share']:.3f}"
        lines.append(f"{name:<18}{_fmt(t.get('snr_db'), 2):>18}{_fmt(t.get('lsd'), 3):>16}"
                     f"{_fmt(t.get('mfcc_distance'), 1):>18}{share:>11}")
    silent = (result.table["output"].get("assigned") or {}).get("silent")
    if silent:
        lines.append(f"{silent:.3f} of the outputs are silent (RMS < -100 dBFS): assigned to no instrument")
    if st.get("nonfinite_crops"):
        lines.append(f"{st['nonfinite_crops']} crops with NaN/Inf output samples (set to 0 before scoring)")
    return "\n".join(lines)


def format_table_i(results: dict[str, XferEvalResult]) -> str:
    """Seed 001's Table I: one row per model (``{label: result}``, e.g. the composite losses
    ``g1``..``g4``) after the untouched input's row; SNR (dB) and LSD mean ± std over crops, then the
    MFCC distance and the share of crops classified as the target instrument; the real targets'
    share (the classifier's ceiling on these crops) last.

    Raises:
        ValueError: no results, or results scored on different crops or target programs.
    """
    if not results:
        raise ValueError("format_table_i: no results")
    first = next(iter(results.values()))
    key = [(r["piece"], r["start"]) for r in first.crops]
    for label, res in results.items():
        if [(r["piece"], r["start"]) for r in res.crops] != key or \
                res.settings["target_program"] != first.settings["target_program"]:
            raise ValueError(f"format_table_i: {label!r} was scored on other crops or another target program")
    st = first.settings
    width = max(18, *(len(k) + 2 for k in results))
    lines = [f"Table I ({st['split']} split of {st['pairs_root']}: {st['crops']} crops of {st['crop']} samples, "
             f"program {st['input_program']} -> {st['target_program']} ({st['target_name']}); mean ± std over crops)",
             f"{'':<{width}}{'SNR dB':>18}{'LSD':>16}{'MFCC dist':>18}{'as target':>11}"]

    def row(name: str, t: dict) -> str:
        share = "–" if t["target_share"] is None else f"{t['target_share']:.3f}"
        return (f"{name:<{width}}{_fmt(t.get('snr_db'), 2):>18}{_fmt(t.get('lsd'), 3):>16}"
                f"{_fmt(t.get('mfcc_distance'), 1):>18}{share:>11}")

    lines.append(row("input (piano)", first.table["input"]))
    lines += [row(label, res.table["output"]) for label, res in results.items()]
    lines.append(row("target (real)", first.table["target"]))
    return "\n".join(lines)


def _share(assigned: np.ndarray, program: int, programs) -> tuple[float, dict]:
    from .instrument import SILENT
    shares = {str(p): float(np.mean(assigned == p)) for p in programs}
    shares["silent"] = float(np.mean(assigned == SILENT))
    return float(np.mean(assigned == program)), shares


def grid_batch(ds, indices, cache: dict) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int]]]:
    """Crops ``indices`` of a grid :class:`rtgan.data.pairs.PairDataset` (``random_crop=False``) as arrays.

    Returns:
        ``(x, y, keys)``: input and target crops ``(n, CROP)`` float32 (zero-padded at a
        file's end) and ``(piece, start sample)`` per crop. ``cache`` keeps the last file read.
    """
    xs, ys, keys = [], [], []
    for i in indices:
        ri, s = ds.crop_at(i)
        if ri not in cache:
            cache.clear()
            cache[ri] = ds._load(ds.rows[ri])
        x, y = cache[ri]
        xc, yc = np.zeros(CROP, np.float32), np.zeros(CROP, np.float32)
        xc[:len(x[s:s + CROP])] = x[s:s + CROP]
        yc[:len(y[s:s + CROP])] = y[s:s + CROP]
        xs.append(xc)
        ys.append(yc)
        keys.append((ds.rows[ri]["piece"], s))
    return np.stack(xs), np.stack(ys), keys


def evaluate_xfer(model, pairs_root: str | Path, split: str = "test", classifier=None, max_crops: int | None = None,
                  progress: bool = True, batch: int = 16, device: str = "cpu",
                  example: bool = False) -> XferEvalResult:
    """Score ``model`` (an xfer generator) on the sounding 8192-sample grid crops of ``split``.

    Args:
        model: ``(batch, 1, samples)`` -> same, at the pair set's rate, with ``config.target_program``.
        pairs_root: a pair set (:func:`rtgan.data.pairs.build_pairs`) with the model's target program.
        classifier: an :class:`rtgan.instrument.InstrumentClassifier` (None: no instrument shares).
        max_crops: score the first N crops (grid order) only.
        batch: crops per model call.
        example: also keep an excerpt of input, output and target (``result.example``) for a picture.

    Raises:
        ValueError: not an xfer model, a pair set without its target program, a rate mismatch.
        FileNotFoundError: no pair set at ``pairs_root``.
    """
    from .data.pairs import PairDataset
    from .metrics import lsd, snr
    check_xfer_model(model)
    t0 = time.perf_counter()
    root = Path(pairs_root)
    target = int(model.config.target_program)
    ds = PairDataset(root, split, target, crop=CROP, random_crop=False)
    sr = int(getattr(model.config, "sample_rate", ds.sample_rate))
    if sr != ds.sample_rate:
        raise ValueError(f"model runs at {sr} Hz, the pair set at {ds.sample_rate} Hz")
    if classifier is not None and target not in classifier.programs:
        raise ValueError(f"the instrument classifier knows programs {classifier.programs}, not {target}")
    n = len(ds) if max_crops is None else min(len(ds), int(max_crops))
    model = model.to(device).eval()
    rows: list[dict] = []
    nonfinite = 0
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    it = range(0, n, batch)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=f"xfer eval ({split})", unit="batch", leave=False)
    for lo in it:
        xb, yb, keys = grid_batch(ds, range(lo, min(lo + batch, n)), cache)
        with torch.no_grad():
            out = model(torch.from_numpy(xb)[:, None].to(device))[:, 0].float().cpu().numpy()
        bad = ~np.isfinite(out).all(axis=1)
        nonfinite += int(bad.sum())
        out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
        x64, y64, o64 = xb.astype(np.float64), yb.astype(np.float64), out.astype(np.float64)
        scores = {"out_snr_db": snr(o64, y64), "in_snr_db": snr(x64, y64), "out_lsd": lsd(o64, y64),
                  "in_lsd": lsd(x64, y64), "out_mfcc": mfcc_distance(o64, y64, sr), "in_mfcc": mfcc_distance(x64, y64, sr)}
        if classifier is not None:
            from .instrument import classify
            scores.update(out_class=classify(classifier, out), in_class=classify(classifier, xb),
                          target_class=classify(classifier, yb))
        rms = np.sqrt(np.mean(y64 ** 2, axis=1))
        for j, (piece, s) in enumerate(keys):
            r = {"piece": piece, "start": int(s), "target_rms": float(rms[j])}
            r.update({k: (int(v[j]) if k.endswith("_class") else float(v[j])) for k, v in scores.items()})
            if bad[j]:
                r["nonfinite"] = True
            rows.append(r)
    table: dict = {}
    for row, p in (("output", "out"), ("input", "in")):
        table[row] = {"snr_db": _stats([r[f"{p}_snr_db"] for r in rows]), "lsd": _stats([r[f"{p}_lsd"] for r in rows]),
                      "mfcc_distance": _stats([r[f"{p}_mfcc"] for r in rows]), "target_share": None, "assigned": None}
    table["target"] = {"target_share": None, "assigned": None}
    if classifier is not None:
        for row, p in (("output", "out"), ("input", "in"), ("target", "target")):
            table[row]["target_share"], table[row]["assigned"] = _share(
                np.asarray([r[f"{p}_class"] for r in rows]), target, classifier.programs)
    from .instrument import PROGRAM_NAMES
    cmeta = getattr(classifier, "metadata", None) or {}
    settings = {"split": split, "pairs_root": str(root), "crop": CROP, "crops": len(rows), "crops_in_split": len(ds),
                "sample_rate": sr, "input_program": int(getattr(model.config, "input_program", 0)),
                "target_program": target, "target_name": PROGRAM_NAMES.get(target, f"program {target}"),
                "inference": "offline, model(x) on each whole crop, (batch, 1, 8192)",
                "snr": "rtgan.metrics.snr (eq. 24), float64", "lsd": "rtgan.metrics.lsd (eq. 25): n_fft 2048, hop 512",
                "mfcc": {"n_mfcc": 20, **MFCC_SETTINGS, "distance": "mean over frames of the Euclidean distance"},
                "std": "population (ddof=0) over crops", "nonfinite_crops": nonfinite,
                "classifier": None if classifier is None else {
                    "programs": list(classifier.programs), "test_accuracy": (cmeta.get("accuracy") or {}).get("test"),
                    "pair_set_hash": cmeta.get("pair_set_hash"), "command": cmeta.get("command")}}
    ex = _example(model, ds, rows, device) if example and rows else None
    return XferEvalResult(table, rows, settings, {"seconds": time.perf_counter() - t0, "crops": len(rows)}, ex)


def _example(model, ds, rows: list[dict], device: str) -> dict:
    """The excerpt of :attr:`XferEvalResult.example`: from the scored crop whose target is loudest."""
    best = max(range(len(rows)), key=lambda i: rows[i].get("target_rms", 0.0))
    ri, s = ds.crop_at(best)
    x, y = ds._load(ds.rows[ri])
    n = EXAMPLE_CROPS * CROP
    s = max(0, min(s, len(x) - n))
    xe, ye = np.zeros(n, np.float32), np.zeros(n, np.float32)
    xe[:len(x[s:s + n])], ye[:len(y[s:s + n])] = x[s:s + n], y[s:s + n]
    with torch.no_grad():
        out = model(torch.from_numpy(xe)[None, None].to(device))[0, 0].float().cpu().numpy()
    return {"piece": ds.rows[ri]["piece"], "start": int(s), "input": xe, "output": out, "target": ye}
