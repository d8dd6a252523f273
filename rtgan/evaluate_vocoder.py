"""Evaluation of the music vocoders (seed 003) against Griffin-Lim from the same mel.

For each music clip of a corpus split: the clip at 22 050 Hz (resampled from the corpus rate,
whole mel hops, peak-normalised to 0.95 as the vocoders' training examples), its log10 mel
(the vocoder's own front end, :class:`rtgan.models.layers.mel.LogMel1d`), and from that mel:

* each vocoder's resynthesis (offline; identical to the stream, delayed);
* the baseline: Griffin-Lim (Griffin & Lim 1984) through librosa's mel inversion
  (``librosa.feature.inverse.mel_to_audio``: non-negative least squares from mel to STFT
  magnitude, then 60 Griffin-Lim iterations; Slaney filters, magnitude, Hann 1024, hop 256),
  shifted onto the vocoder's frame positions (librosa centres frame ``t`` on sample
  ``t * hop``; the vocoder's frame ``t`` is centred ``n_fft / 2 - pad_left`` samples later).

Metrics against the clip (:data:`METRICS`): ``mel_l1``, the mean absolute difference of the
log10 mels (seed 003's feature, :func:`rtgan.models.voc_melgan_training.mel_l1`; lower is
better); ``mrstft``, the multi-resolution STFT distance ``L_sc + L_mag`` of Yamamoto et al.
(2020) (:func:`rtgan.losses.multi_resolution_stft_loss`; lower is better); and ``visqol``,
ViSQOL v3 audio mode (MOS-LQO, higher is better) after resampling both to 48 kHz.
"""
from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from . import metrics as _metrics
from .data.dataset import load_manifest
from .evaluate import CI_NOTE, confidence_interval
from .models.base import Generator

__all__ = ["METRICS", "GRIFFIN_LIM_ITERATIONS", "VocoderResult", "griffin_lim", "evaluate_vocoders",
           "format_table", "check_vocoder"]

#: metric -> (label, digits, higher is better)
METRICS = {"mel_l1": ("log-mel L1", 3, False), "mrstft": ("MR-STFT", 3, False), "visqol": ("ViSQOL", 2, True)}
#: Griffin-Lim iterations of the baseline (librosa's mel inversion)
GRIFFIN_LIM_ITERATIONS = 60
#: the baseline's name in the tables
BASELINE = "griffin-lim"


def check_vocoder(model: Generator, label: str = "model") -> None:
    """Raise ``ValueError`` unless ``model`` is a vocoder (:class:`rtgan.models.vocoder.MelVocoder`)."""
    from .models.vocoder import MelVocoder
    if not isinstance(model, MelVocoder):
        raise ValueError(f"{label}: {getattr(model, 'name', type(model).__name__)} is not a vocoder "
                         "(it has no mel front end and vocode())")


def griffin_lim(mel: np.ndarray, mel_config, n_iter: int = GRIFFIN_LIM_ITERATIONS, seed: int = 0) -> np.ndarray:
    """Audio ``(frames * hop,)`` from a log10 mel ``(n_mels, frames)`` of :class:`MelConfig` ``mel_config``.

    librosa's ``mel_to_audio`` (NNLS mel -> magnitude, then ``n_iter`` Griffin-Lim iterations,
    random initial phase from ``seed``), aligned to the mel's frame positions (see the module
    docstring) and cut to ``frames * hop`` samples.
    """
    import librosa
    c = mel_config
    frames = mel.shape[-1]
    np.random.seed(seed)  # librosa's griffinlim draws its initial phase from numpy's global state
    y = librosa.feature.inverse.mel_to_audio(
        10.0 ** mel.astype(np.float64), sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length,
        win_length=c.win_length, window="hann", center=True, power=1.0, n_iter=n_iter, fmin=c.fmin,
        fmax=c.fmax)
    y = np.pad(y, (0, max(0, frames * c.hop_length + c.n_fft - len(y))))
    shift = c.n_fft // 2 - c.padding[0]  # librosa sample s is the vocoder's sample s + shift
    out = np.zeros(frames * c.hop_length)
    if shift >= 0:
        out[shift:] = y[: len(out) - shift]
    else:
        out[:] = y[-shift: -shift + len(out)]
    return out.astype(np.float32)


@dataclass
class VocoderResult:
    """Statistics and per-clip rows of :func:`evaluate_vocoders`.

    Attributes:
        table: ``estimate -> metric -> {"mean", "ci95", "std", "n"}`` over clips, plus
            ``"clips": {"count", "seconds", "minutes"}``; estimates are the models' labels and
            ``griffin-lim``.
        clips: per clip ``path``, ``source``, ``seconds`` and ``scores: estimate -> metric -> value``.
        metrics: the metrics computed.
        example: ``{"path", "target", "griffin-lim", each model's label -> audio}`` (22.05 kHz arrays) of
            the densest clip of at least 5 s, for the spectrogram picture.
        timing: seconds in total and in ViSQOL.
    """

    table: dict
    clips: list[dict]
    metrics: tuple[str, ...]
    example: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"metrics": list(self.metrics), "ci": CI_NOTE, "baseline": f"{BASELINE}: librosa mel_to_audio, "
                f"{GRIFFIN_LIM_ITERATIONS} iterations", "table": self.table, "timing": self.timing,
                "clips": self.clips}


def evaluate_vocoders(models: dict[str, Generator], corpus: str | Path, split: str = "test", domain: str = "music",
                      visqol: bool = True, max_clips: int | None = None, progress: bool = True,
                      max_seconds: float | None = None) -> VocoderResult:
    """Score each vocoder and Griffin-Lim on the ``domain`` clips of ``split`` (see the module docstring).

    Args:
        models: label -> vocoder (the same sample rate and mel settings apart from the frame
            lookahead; the first one's mel is the metric's and the baseline's).
        corpus: corpus directory with ``manifest.jsonl``.
        split, domain: which clips (manifest order; the first ``max_clips`` if given).
        visqol: also compute ViSQOL (needs visqol-python).
        max_seconds: score at most this many seconds of each clip (default: all of it).

    Raises:
        ValueError: no models, a model that is not a vocoder, vocoders with different rates or
            mel settings, or no clip.
        ImportError: ``visqol=True`` without visqol-python; librosa missing.
    """
    from .audio.io import resample
    from .losses import multi_resolution_stft_loss
    from .models.layers.mel import LogMel1d
    from .models.voc_melgan_training import mel_l1

    t_start = time.perf_counter()
    if not models:
        raise ValueError("evaluate_vocoders: no models")
    for label, m in models.items():
        check_vocoder(m, label)
    first = next(iter(models.values()))
    ref_cfg = first.config.mel
    for label, m in models.items():
        c = m.config.mel
        if (c.sample_rate, c.n_fft, c.win_length, c.hop_length, c.n_mels, c.fmin, c.fmax, c.floor) != \
                (ref_cfg.sample_rate, ref_cfg.n_fft, ref_cfg.win_length, ref_cfg.hop_length, ref_cfg.n_mels,
                 ref_cfg.fmin, ref_cfg.fmax, ref_cfg.floor):
            raise ValueError(f"{label}: its mel differs from the first model's ({c} vs {ref_cfg})")
    sr, hop = ref_cfg.sample_rate, ref_cfg.hop_length
    metric_mel = LogMel1d(ref_cfg)
    names = tuple(m for m in METRICS if visqol or m != "visqol")
    if visqol:
        _metrics._visqol_api()
    rows = [r for r in load_manifest(Path(corpus)) if r["split"] == split and r.get("domain") == domain]
    rows = rows[:max_clips] if max_clips is not None else rows
    if not rows:
        raise ValueError(f"no {domain} clips in the {split} split of {corpus}")
    timing = {"visqol_seconds": 0.0, "griffin_lim_seconds": 0.0}

    def score(est: np.ndarray, y: np.ndarray) -> dict[str, float]:
        e, t = torch.from_numpy(est)[None, None], torch.from_numpy(y)[None, None]
        out = {"mel_l1": float(mel_l1(metric_mel, e, t)[0])}
        sc, mag = multi_resolution_stft_loss(e, t)
        out["mrstft"] = float(sc + mag)
        if "visqol" in names:
            t0 = time.perf_counter()
            out["visqol"] = float(_metrics.visqol(resample(est.astype(np.float64), sr, 48000),
                                                  resample(y.astype(np.float64), sr, 48000), 48000))
            timing["visqol_seconds"] += time.perf_counter() - t0
        return out

    it = rows
    if progress:
        from tqdm import tqdm
        it = tqdm(rows, desc=f"eval {split}", unit="clip", dynamic_ncols=True)
    clips, example, loudest = [], {}, -1.0
    for r in it:
        data = (Path(corpus) / r["path"]).read_bytes()
        x, file_sr = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
        y = resample(x.mean(axis=1), file_sr, sr)
        if max_seconds is not None:
            y = y[: int(max_seconds * sr)]
        y = y[: len(y) - len(y) % hop]
        peak = float(np.abs(y).max()) if len(y) else 0.0
        if len(y) < 4 * hop or peak < 1e-4:
            continue  # silent or shorter than four hops: nothing to score
        y = (0.95 * y / peak).astype(np.float32)
        yt = torch.from_numpy(y)[None, None]
        scores, outs = {}, {}
        with torch.no_grad():
            mel = metric_mel(yt)[0].numpy()
            for label, m in models.items():
                dev = next(m.parameters()).device
                est = m.eval()(yt.to(dev))[0, 0].float().cpu().numpy()
                scores[label] = score(est, y)
                outs[label] = est
        t0 = time.perf_counter()
        gl = griffin_lim(mel, ref_cfg)
        timing["griffin_lim_seconds"] += time.perf_counter() - t0
        scores[BASELINE] = score(gl, y)
        clips.append({"path": r["path"], "source": r.get("source", ""), "seconds": len(y) / sr,
                      "sha1": hashlib.sha1(data).hexdigest(), "scores": scores})
        # the picture: the densest clip (highest mean power after peak normalisation) of at least 5 s
        energy = float(np.mean(y.astype(np.float64) ** 2)) + (1.0 if len(y) >= 5 * sr else 0.0)
        if energy > loudest:
            loudest = energy
            example = {"path": r["path"], "target": y, BASELINE: gl, **outs}
    if not clips:
        raise ValueError(f"no scorable {domain} clip in the {split} split of {corpus}")
    seconds = float(sum(c["seconds"] for c in clips))
    table = {"clips": {"count": len(clips), "seconds": seconds, "minutes": seconds / 60.0}}
    for est in (*models, BASELINE):
        table[est] = {m: confidence_interval([c["scores"][est][m] for c in clips]) for m in names}
    timing["seconds"] = time.perf_counter() - t_start
    return VocoderResult(table, clips, names, example, timing)


def format_table(result: VocoderResult) -> str:
    """A text table: one row per estimate, ``mean ± ci95`` per metric."""
    names = result.metrics
    head = f"{'':<16}" + "".join(f"{METRICS[m][0] + (' ↑' if METRICS[m][2] else ' ↓'):>18}" for m in names)
    lines = [f"{result.table['clips']['count']} clips, {result.table['clips']['minutes']:.1f} min "
             f"({CI_NOTE})", head]
    for est, stats in result.table.items():
        if est == "clips":
            continue
        cells = []
        for m in names:
            s, d = stats[m], METRICS[m][1]
            ci = "–" if s["ci95"] is None else f"{s['ci95']:.{d}f}"
            cells.append(f"{s['mean']:.{d}f} ± {ci}")
        lines.append(f"{est:<16}" + "".join(f"{c:>18}" for c in cells))
    return "\n".join(lines)
