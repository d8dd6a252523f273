"""How closely the level of sr-hifigan's generated band follows the original's, on the validation split.

For the first 30 validation clips per domain (48 kHz, bandwidth >= 16 kHz, band-limited by soxr as
``rtgan eval`` does): STFT (4800-sample Hann windows, 100 ms) of the original and of what the model
adds (output minus input); the level above 8.2 kHz of each, relative to the whole clip's energy
(dB). Prints, per domain, the least-squares slope of generated level on original level across
clips and across frames (1.0: the generated band follows the original's dynamics; below 1: it is
compressed, too loud on dull clips and too quiet on bright ones) and their correlation.

Run from the repository root: ``python docs/sr_level_tracking.py [CHECKPOINT] [--corpus DIR]``
(default: the shipped sr-hifigan and /work/corpus from ``rtgan data build --size full``).
"""
import argparse
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import stft

import rtgan
from rtgan.audio.bandlimit import band_limit
from rtgan.data.dataset import load_manifest
from rtgan.engine.overlap_save import offline
from rtgan.models import registry

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("checkpoint", nargs="?", default="sr-hifigan", help="model name or .safetensors path")
ap.add_argument("--corpus", default="/work/corpus")
ap.add_argument("--clips", type=int, default=30, help="clips per domain (default 30)")
args = ap.parse_args()
torch.set_num_threads(1)
corpus = Path(args.corpus)
rows = load_manifest(corpus)
model = (registry.load_generator(args.checkpoint) if args.checkpoint.endswith(".safetensors")
         else rtgan.load_model(args.checkpoint)).eval()
for dom in ("speech", "music"):
    sel = [r for r in rows if r["split"] == "val" and r["domain"] == dom and r["sample_rate"] == 48000
           and r["bandwidth_hz"] >= 16000][:args.clips]
    clip_true, clip_gen, frame_true, frame_gen = [], [], [], []
    for r in sel:
        y, sr = sf.read(corpus / r["path"], dtype="float32", always_2d=True)
        y = y.mean(1)
        x, _ = band_limit("soxr", y, sr)
        x = x[:len(y)]
        with torch.no_grad():
            out = offline(model, torch.from_numpy(np.ascontiguousarray(x))[None, None])[0, 0].numpy()[:len(y)]
        f, _, Y = stft(y, sr, nperseg=4800)
        _, _, R = stft(out - x, sr, nperseg=4800)
        _, _, X = stft(x, sr, nperseg=4800)
        hi = f >= 8200
        e_true, e_gen, e_all = (np.abs(Y[hi]) ** 2).sum(0), (np.abs(R[hi]) ** 2).sum(0), (np.abs(X) ** 2).sum(0)
        keep = e_all > e_all.max() * 1e-4  # frames within 40 dB of the loudest
        frame_true += list(10 * np.log10(e_true[keep] / e_all[keep] + 1e-12))
        frame_gen += list(10 * np.log10(e_gen[keep] / e_all[keep] + 1e-12))
        clip_true.append(10 * np.log10(e_true.sum() / e_all.sum()))
        clip_gen.append(10 * np.log10(e_gen.sum() / e_all.sum()))
    for what, t, g in (("clips", clip_true, clip_gen), ("frames", frame_true, frame_gen)):
        t, g = np.asarray(t), np.asarray(g)
        print(f"{dom:6s} {what:6s} n {len(t):5d}  original above 8.2 kHz {t.mean():6.1f} dB, generated {g.mean():6.1f} dB;"
              f" slope {np.polyfit(t, g, 1)[0]:.2f}, correlation {np.corrcoef(t, g)[0, 1]:.2f}")
