"""Level, DC and onset figures of a vocoder on the corpus (README, "How the shipped vocoders were trained").

    python docs/voc_levels.py MODEL [CHECKPOINT] [--corpus /work/corpus]

Prints, for the model (its shipped weights, or CHECKPOINT):
* per validation music clip (every 10th, the first 8; first 4 s at 22.05 kHz, peak 0.9): the slope
  of the output's frame energies (dB) regressed on the original's, and their mean difference (dB);
* the mean absolute log10-mel difference of cells within 20 dB of the clip's peak and of the rest;
* the DC share of the output energy over 10 validation music clips (every 12th, first 4 s, peak 0.95);
* on test/lmms-common/instruments/flute01_001.flac (first 2 s): the output's AC RMS after 0.19 s
  against the original's, its DC share there, and the onset overshoot (AC RMS of 23-46 ms over that).
"""
import argparse

import numpy as np
import soundfile as sf
import torch

from rtgan.audio.io import resample
from rtgan.data.dataset import load_manifest
from rtgan.models.registry import load_generator, load_model


def clip(path, seconds, peak):
    x, sr = sf.read(path, dtype="float64")
    y = resample(x, sr, 22050)
    y = y[: 256 * (min(len(y), int(22050 * seconds)) // 256)]
    return (peak * y / np.abs(y).max()).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("checkpoint", nargs="?")
    ap.add_argument("--corpus", default="/work/corpus")
    a = ap.parse_args()
    torch.set_num_threads(1)
    m = (load_generator(a.checkpoint) if a.checkpoint else load_model(a.model)).eval()
    run = lambda y: m(torch.from_numpy(y)[None, None])[0, 0]  # noqa: E731
    val = [r for r in load_manifest(a.corpus) if r["split"] == "val" and r["domain"] == "music"]
    loud, quiet = [], []
    for r in val[::10][:8]:
        y = clip(f"{a.corpus}/{r['path']}", 4.0, 0.9)
        with torch.no_grad():
            mt = m.mel(torch.from_numpy(y)[None, None])[0].numpy()
            my = m.mel(run(y)[None, None])[0].numpy()
        et, ey = (10 * np.log10((10 ** (2 * v)).sum(0) + 1e-12) for v in (mt, my))
        d, rel = np.abs(mt - my), mt - mt.max()
        loud.append(d[rel > -1].mean())
        quiet.append(d[rel <= -1].mean())
        print(f"{r['path']}: frame-energy slope {np.polyfit(et, ey, 1)[0]:.2f}, mean difference {np.mean(ey - et):+.1f} dB")
    print(f"|log10 mel| difference: cells within 20 dB of the peak {np.mean(loud):.2f}, the rest {np.mean(quiet):.2f}")
    shares = []
    for r in val[::12][:10]:
        y = clip(f"{a.corpus}/{r['path']}", 4, 0.95)
        with torch.no_grad():
            out = run(y).numpy()
        shares.append(out.mean() ** 2 / (out ** 2).mean())
    print(f"DC share of output energy over {len(shares)} val clips: median {np.median(shares):.3f}, max {max(shares):.3f}")
    y = clip(f"{a.corpus}/test/lmms-common/instruments/flute01_001.flac", 2, 0.95)
    with torch.no_grad():
        out = run(y).numpy()
    seg = out[4096:]
    print(f"flute: AC RMS {seg.std():.4f} against the original's {y[4096:].std():.4f}, DC share "
          f"{seg.mean() ** 2 / (seg ** 2).mean():.2f}, onset overshoot "
          f"{20 * np.log10(out[512:1024].std() / seg.std()):+.1f} dB")


if __name__ == "__main__":
    main()
