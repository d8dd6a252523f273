"""Where sr-hifigan's SNR goes: the cost of its generated band, band by band and voice by voice.

The model's output is ``x + r`` (``x`` the band-limited input, soxr as ``rtgan eval`` does, ``r``
the residual). With ``e = y - x`` the input's error against the original ``y``, the output's
error energy is ``||e - r||^2 = ||e||^2 + (||r||^2 - 2 <e, r>)``, so its SNR is the input's
minus ``10 log10(1 + cost)`` with ``cost = (||r||^2 - 2 <e, r>) / ||e||^2``, and ``cost`` is a
sum over frequency bands (FFT bins of the whole clip). Per band this prints, as means over
clips: the band's share of the input's error energy (the original's energy that the input
lacks), the residual's energy over the same total (above 1 where the model adds more than the
original had), the correlation of residual and missing signal (0: no phase is rebuilt), and the
band's share of ``cost``. Then, per group of clips (the manifest's ``split_key``: the voice of a
speech clip, the piece of a music clip), the mean SNR change against the input and the
residual's energy over the original's per band above 7.5 kHz.

Run from the repository root:
``python docs/sr_band_cost.py [CHECKPOINT] [--corpus DIR] [--split test|val] [--domain speech|music]``
(default: the shipped sr-hifigan, /work/corpus from ``rtgan data build --size full``, test, speech).
"""
import argparse
from collections import defaultdict

import numpy as np
import torch

import sr_val

EDGES_HZ = (0, 6000, 7000, 7500, 8000, 8500, 10000, 12000, 16000, 24001)

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("checkpoint", nargs="?", default="sr-hifigan", help="model name or .safetensors path")
ap.add_argument("--corpus", default="/work/corpus")
ap.add_argument("--split", default="test", choices=("val", "test"))
ap.add_argument("--domain", default="speech", choices=("speech", "music"))
args = ap.parse_args()
torch.set_num_threads(2)
model = sr_val.load(args.checkpoint)
e_b, r_b, c_b, groups, paths = [], [], [], [], []
for row, y, x, _, out in sr_val.clips(model, args.corpus, args.domain, split=args.split):
    n = min(len(y), len(x), len(out))
    e = np.fft.rfft((y[:n] - x[:n]).astype(np.float64))
    r = np.fft.rfft((out[:n] - x[:n]).astype(np.float64))
    f = np.fft.rfftfreq(n, 1.0 / 48000)
    bands = [(f >= lo) & (f < hi) for lo, hi in zip(EDGES_HZ[:-1], EDGES_HZ[1:])]
    e_b.append([np.sum(np.abs(e[b]) ** 2) for b in bands])
    r_b.append([np.sum(np.abs(r[b]) ** 2) for b in bands])
    c_b.append([np.sum((e[b].conj() * r[b]).real) for b in bands])
    groups.append(row.get("split_key", "?"))
    paths.append(row["path"])
e_b, r_b, c_b = np.array(e_b), np.array(r_b), np.array(c_b)
total = e_b.sum(axis=1, keepdims=True)
cost = (r_b - 2 * c_b) / total
d_snr = -10 * np.log10(1 + cost.sum(axis=1))
print(f"{len(d_snr)} {args.split} {args.domain} clips (soxr): mean SNR change of the output against the input "
      f"{d_snr.mean():+.2f} dB; clip quantiles 0/10/50/90/100 %: "
      + " ".join(f"{q:+.2f}" for q in np.percentile(d_snr, [0, 10, 50, 90, 100])))
print("band (Hz) | share of input error | residual / input error | corr(missing, residual) | share of cost")
for i, (lo, hi) in enumerate(zip(EDGES_HZ[:-1], EDGES_HZ[1:])):
    corr = c_b[:, i].sum() / np.sqrt(e_b[:, i].sum() * r_b[:, i].sum() + 1e-30)
    print(f"{lo:5d}-{min(hi, 24000):5d} | {np.mean(e_b[:, i] / total[:, 0]):.3f} | {np.mean(r_b[:, i] / total[:, 0]):.3f}"
          f" | {corr:+.3f} | {np.mean(cost[:, i]):+.3f}")
by = defaultdict(list)
for i, g in enumerate(groups):
    by[g].append(i)
first = EDGES_HZ.index(7500)
print("group | clips | mean SNR change (dB) | residual / original energy per band from 7.5 kHz: "
      + " ".join(f"{lo}-{min(hi, 24000)}" for lo, hi in zip(EDGES_HZ[first:-1], EDGES_HZ[first + 1:])))
for g, idx in sorted(by.items()):
    ratio = r_b[idx, first:].sum(axis=0) / e_b[idx, first:].sum(axis=0)
    print(f"{g} | {len(idx)} | {d_snr[idx].mean():+.2f} | " + " ".join(f"{v:.2f}" for v in ratio))
print("the five clips whose SNR the residual costs most:")
for i in np.argsort(d_snr)[:5]:
    lvl = 10 * np.log10((r_b[i, first:] + 1e-30) / (e_b[i, first:] + 1e-30))
    print(f"  {d_snr[i]:+.2f} dB {paths[i]}: residual over original per band from 7.5 kHz (dB) "
          + " ".join(f"{v:+.0f}" for v in lvl))
