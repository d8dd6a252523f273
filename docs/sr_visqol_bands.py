"""Where sr-hifigan's ViSQOL comes from, band by band, on validation clips.

For the validation clips of one domain (48 kHz, bandwidth >= 16 kHz, band-limited by soxr as
``rtgan eval`` does) four estimates are scored against the original with
:func:`rtgan.metrics.visqol_bands` (ViSQOL v3, audio mode): the band-limited input, cubic-spline
upsampling of the 16 kHz signal (the baseline of ``rtgan eval``), and the model's output
``x + g r`` at the gains given (``r = (model(x) - x) / g0``, ``g0`` the checkpoint's
``residual_gain``). Prints the mean MOS-LQO of each, then, for the gammatone bands from
``--from-hz`` up, the mean per-band similarity (NSIM, 0..1) of each estimate and the
mapping's sensitivity there: the mean over clips of the change in MOS-LQO per unit of that
band's similarity at the first model gain (a finite difference of +0.05 through visqol-python's
own SVR mapping), i.e. how much a band is worth to the score.

Run from the repository root:
``python docs/sr_visqol_bands.py [CHECKPOINT] [--corpus DIR] [--domain speech|music] [--gains 0.5 1]``
(default: the shipped sr-hifigan, /work/corpus from ``rtgan data build --size full``, speech).
"""
import argparse

import numpy as np
import torch

import sr_val
from rtgan.audio.degrade import spline_upsample
from rtgan.metrics import _visqol_api, visqol_bands

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("checkpoint", nargs="?", default="sr-hifigan", help="model name or .safetensors path")
ap.add_argument("--corpus", default="/work/corpus")
ap.add_argument("--domain", default="speech", choices=("speech", "music"))
ap.add_argument("--gains", type=float, nargs="+", default=[0.5, 1.0])
ap.add_argument("--from-hz", type=float, default=5000.0, help="print bands with centres from here (Hz)")
args = ap.parse_args()
torch.set_num_threads(1)
model = sr_val.load(args.checkpoint)
g0 = float(model.config.residual_gain)
mapper = _visqol_api("audio")._manager.quality_mapper  # the SVR that turns band similarities into MOS-LQO
names = ["input", "spline"] + [f"model g={g:g}" for g in args.gains]
mos = {n: [] for n in names}
bands = {n: [] for n in names}
sens = []
centres = None
for _, y, x, x16, out in sr_val.clips(model, args.corpus, args.domain):
    spline = spline_upsample(x16, 3)[: len(y)]
    spline = np.pad(spline, (0, len(y) - len(spline)))
    res = (out - x) / g0
    ests = [x, spline] + [(x + g * res).astype(np.float32) for g in args.gains]
    for n, est in zip(names, ests):
        got = visqol_bands(est, y, 48000)
        mos[n].append(got["moslqo"])
        bands[n].append(got["band_nsim"])
        centres = got["band_centres_hz"]
    f = bands[names[2]][-1]
    base = mapper.predict_quality(f)
    row = []
    for b in range(len(f)):
        up = f.copy()
        up[b] = min(1.0, up[b] + 0.05)
        row.append((mapper.predict_quality(up) - base) / 0.05)
    sens.append(row)
print(f"{len(sens)} validation {args.domain} clips, soxr; mean ViSQOL: "
      + ", ".join(f"{n} {np.mean(mos[n]):.3f}" for n in names))
print("band centre (Hz) | " + " | ".join(names) + " | d MOS / d NSIM")
means = {n: np.mean(bands[n], axis=0) for n in names}
s = np.mean(sens, axis=0)
for b in np.flatnonzero(centres >= args.from_hz):
    print(f"{centres[b]:7.0f} | " + " | ".join(f"{means[n][b]:.3f}" for n in names) + f" | {s[b]:+.2f}")
