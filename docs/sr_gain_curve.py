"""ViSQOL and SNR of sr-hifigan's output as the level of its generated band changes, on validation clips.

For the validation clips of one domain (48 kHz, bandwidth >= 16 kHz, band-limited by soxr as
``rtgan eval`` does), the model's residual ``r = (model(x) - x) / g0`` (``g0``: the checkpoint's
``residual_gain``) is computed once per clip; the output at gain ``g`` is ``x + g r``, exactly what
the model gives with ``residual_gain = g``. Prints, per gain, the mean over clips of ViSQOL v3
(audio mode, 48 kHz; :func:`rtgan.metrics.visqol`) and SNR (dB) against the original. Gain 0 is
the band-limited input itself.

Run from the repository root:
``python docs/sr_gain_curve.py [CHECKPOINT] [--corpus DIR] [--domain speech|music] [--gains 0 0.3 ...]``
(default: the shipped sr-hifigan, /work/corpus from ``rtgan data build --size full``, speech).
"""
import argparse

import numpy as np
import torch

import sr_val
from rtgan.metrics import snr, visqol

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("checkpoint", nargs="?", default="sr-hifigan", help="model name or .safetensors path")
ap.add_argument("--corpus", default="/work/corpus")
ap.add_argument("--domain", default="speech", choices=("speech", "music"))
ap.add_argument("--gains", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7, 1.0])
args = ap.parse_args()
torch.set_num_threads(1)
model = sr_val.load(args.checkpoint)
g0 = float(model.config.residual_gain)
scores = {g: ([], []) for g in args.gains}
n = 0
for _, y, x, _, out in sr_val.clips(model, args.corpus, args.domain):
    n += 1
    res = (out - x) / g0
    for g in args.gains:
        est = (x + g * res).astype(np.float32)
        scores[g][0].append(visqol(est, y, 48000))
        scores[g][1].append(float(snr(est, y)))
print(f"{n} validation {args.domain} clips, soxr")
for g in args.gains:
    print(f"gain {g:4.2f}: ViSQOL {np.mean(scores[g][0]):.3f}  SNR {np.mean(scores[g][1]):.3f} dB")
