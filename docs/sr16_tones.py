"""Makes docs/sr16_tones.png: white noise through the sr16-unet release before the tone fix and the shipped one.

Run from the repository root: ``git show e8780e7:rtgan/weights/sr16-unet.safetensors`` (and ``.json``,
and the ``@r4`` pair) into OLD_DIR first, then ``python docs/sr16_tones.py OLD_DIR``.
"""
import sys

import matplotlib
import numpy as np
import scipy.signal as ss
import torch

from rtgan.engine.overlap_save import offline
from rtgan.models import registry

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

old_dir = sys.argv[1]
noise = np.random.default_rng(0).standard_normal(16000 * 10) * 0.1  # -20 dBFS RMS, 10 s at 16 kHz
fig, axes = plt.subplots(2, 1, figsize=(10, 7), constrained_layout=True)
for ax, r in zip(axes, (2, 4)):
    x = ss.decimate(noise, r, ftype="iir", zero_phase=True).astype(np.float32)  # as the sr16 recipes decimate
    tag = "" if r == 2 else "@r4"
    for label, path, colour in (("release before (the seed's U-Net as is)", f"{old_dir}/sr16-unet{tag}.safetensors",
                                 "tab:red"),
                                ("shipped now (hold + DC-free output)", f"rtgan/weights/sr16-unet{tag}.safetensors",
                                 "tab:blue")):
        g = registry.load_generator(path).eval()
        with torch.no_grad():
            y = offline(g, torch.from_numpy(x)[None, None])[0, 0].numpy()
        f, p = ss.welch(y, 16000, nperseg=8192)
        ax.plot(f / 1000, 10 * np.log10(p + 1e-20), lw=0.7, color=colour, label=label)
    ax.axvspan(0, 0.8 * 8 / r, color="0.9", zorder=0)
    ax.set_xlim(0, 8)
    ax.set_ylabel("PSD (dB/Hz)")
    ax.set_title(f"sr16-unet{tag}: r = {r}, input band 0-{8 / r:g} kHz (grey: kept by the decimation filter)")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
axes[-1].set_xlabel("frequency (kHz)")
fig.suptitle("White noise at -20 dBFS decimated by r, through the model: Welch spectrum (nperseg 8192)")
fig.savefig("docs/sr16_tones.png", dpi=100)
