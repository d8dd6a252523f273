"""Spectrogram pictures (matplotlib, from the ``train``/``dev`` extras)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal

from .fileio import atomic_write


def spectrogram_png(path: str | Path, signals: dict[str, np.ndarray], sample_rate: int, title: str = "",
                    n_fft: int = 2048, hop_length: int = 512, max_seconds: float = 6.0,
                    mark_khz: tuple[float, ...] = (), dynamic_range_db: float = 100.0) -> Path:
    """Save stacked log-power spectrograms of ``signals`` (name -> ``(samples,)``) as a PNG.

    Each panel: Hann STFT of ``n_fft`` samples, hop ``hop_length``, of the first
    ``max_seconds`` seconds; time in seconds, frequency in kHz; colour = power in dB
    (``10 log10 |X|^2``), all panels on the scale of the first one, from its maximum down by
    ``dynamic_range_db`` dB (one colour bar). ``mark_khz``: frequencies (kHz) drawn as dashed
    horizontal lines on every panel (e.g. 8 kHz, the band edge of a 16 kHz input). The file
    is written atomically.

    Returns:
        ``path``.

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
        # frames centred up to max_seconds, computed on a little more signal: cropping the signal
        # itself would draw the cut (a step into the zero padding) as a broadband line at the end
        x = np.asarray(x, dtype=np.float64)[: int(max_seconds * sample_rate) + n_fft]
        f, t, z = signal.stft(x, fs=sample_rate, window="hann", nperseg=n_fft, noverlap=n_fft - hop_length)
        keep = t <= min(max_seconds, (len(x) - n_fft // 2) / sample_rate) if len(x) > n_fft else t >= 0
        t, z = t[keep], z[:, keep]
        db = 10 * np.log10(np.abs(z) ** 2 + 1e-12)
        ref = db.max() if ref is None else ref
        im = ax.pcolormesh(t, f / 1000.0, db, vmin=ref - dynamic_range_db, vmax=ref, shading="auto", cmap="magma")
        for khz in mark_khz:
            ax.axhline(khz, color="white", linestyle="--", linewidth=0.7, alpha=0.6)
        ax.set_ylabel("frequency (kHz)")
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
