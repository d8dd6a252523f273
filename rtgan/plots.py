"""Spectrogram pictures (matplotlib, from the ``train``/``dev`` extras)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal

from .fileio import atomic_write


def spectrogram_png(path: str | Path, signals: dict[str, np.ndarray], sample_rate: int, title: str = "",
                    n_fft: int = 2048, hop_length: int = 512, max_seconds: float = 6.0) -> Path:
    """Save stacked log-power spectrograms (dB, Hann STFT) of ``signals`` (name -> ``(samples,)``).

    Raises:
        ImportError: matplotlib is not installed.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    n = len(signals)
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.6 * n), sharex=True, constrained_layout=True)
    axes = np.atleast_1d(axes)
    ref = None
    for ax, (name, x) in zip(axes, signals.items()):
        x = np.asarray(x, dtype=np.float64)[: int(max_seconds * sample_rate)]
        f, t, z = signal.stft(x, fs=sample_rate, window="hann", nperseg=n_fft, noverlap=n_fft - hop_length)
        db = 10 * np.log10(np.abs(z) ** 2 + 1e-12)
        ref = db.max() if ref is None else ref
        im = ax.pcolormesh(t, f / 1000.0, db, vmin=ref - 100, vmax=ref, shading="auto", cmap="magma")
        ax.set_ylabel("kHz")
        ax.set_title(name)
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(im, ax=list(axes), label="power (dB)")
    if title:
        fig.suptitle(title)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    finally:
        plt.close(fig)
    return path
