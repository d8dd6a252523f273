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

import numpy as np
import torch
from scipy.signal import stft

import sr_val

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("checkpoint", nargs="?", default="sr-hifigan", help="model name or .safetensors path")
ap.add_argument("--corpus", default="/work/corpus")
ap.add_argument("--clips", type=int, default=30, help="clips per domain (default 30)")
args = ap.parse_args()
torch.set_num_threads(1)
model = sr_val.load(args.checkpoint)
sr = 48000
for dom in ("speech", "music"):
    clip_true, clip_gen, frame_true, frame_gen = [], [], [], []
    for _, y, x, _, out in sr_val.clips(model, args.corpus, dom, args.clips):
        x, out = x[:len(y)], out[:len(y)]
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
