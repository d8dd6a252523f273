"""Reference points for the vocoder table: lossy codecs and Griffin-Lim scored like the vocoders.

    python docs/voc_codec_ref.py [--corpus /work/corpus] [--clips 20]

Every 9th music clip of the test split (the first ``--clips`` of them), its first 4 s at
22.05 kHz, peak-normalised to 0.95 (as ``rtgan eval --vocoders`` prepares them), is encoded and
decoded by libsndfile (through soundfile) as Ogg Vorbis and as MP3 at two settings each
(``compression_level`` 0.5 and 0.9 for Vorbis, 0.3 and 0.7 for MP3: 0 is libsndfile's highest
quality, 1 its smallest file), aligned by cross-correlation (MP3 adds encoder delay), and scored
against the clip with the vocoder table's log-mel L1 (seed 003's log10 mel) and ViSQOL v3 (audio
mode, both resampled to 48 kHz); Griffin-Lim from the clip's mel (the table's baseline) on the same
clips. Prints each estimate's mean bit rate (kbit/s), log-mel L1 and ViSQOL.
"""
import argparse
import io

import numpy as np
import soundfile as sf
import torch

from voc_levels import clip

from rtgan.audio.io import resample
from rtgan.data.dataset import load_manifest
from rtgan.evaluate_vocoder import griffin_lim
from rtgan.metrics import visqol
from rtgan.models.registry import load_model
from rtgan.models.voc_melgan_training import mel_l1

SR = 22050
CODECS = {"Vorbis 0.5": ("OGG", "VORBIS", 0.5), "Vorbis 0.9": ("OGG", "VORBIS", 0.9),
          "MP3 0.3": ("MP3", "MPEG_LAYER_III", 0.3), "MP3 0.7": ("MP3", "MPEG_LAYER_III", 0.7)}


def codec(y, fmt, subtype, level):
    """``y`` through the codec, aligned to ``y``, and the file's bit rate (kbit/s)."""
    buf = io.BytesIO()
    sf.write(buf, y, SR, format=fmt, subtype=subtype, compression_level=level)
    kbps = 8 * buf.tell() / (len(y) / SR) / 1000
    buf.seek(0)
    z, _ = sf.read(buf, dtype="float32")
    z = np.pad(z, (0, max(0, len(y) - len(z))))
    c = np.correlate(z[:SR], y[:SR], "full")
    lag = int(np.argmax(c)) - (SR - 1)
    if lag > 0:
        z = np.concatenate([z[lag:], np.zeros(lag, np.float32)])
    return z[: len(y)], kbps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="/work/corpus")
    ap.add_argument("--clips", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(1)
    voc = load_model("voc-melgan")
    mel, cfg = voc.mel, voc.config.mel
    rows = [r for r in load_manifest(a.corpus) if r["split"] == "test" and r["domain"] == "music"][::9][: a.clips]
    scores = {}
    for r in rows:
        y = clip(f"{a.corpus}/{r['path']}", 4.0, 0.95)
        t = torch.from_numpy(y)[None, None]
        with torch.no_grad():
            ests = {k: codec(y, *v) for k, v in CODECS.items()}
            ests["Griffin-Lim"] = (griffin_lim(mel(t)[0].numpy(), cfg), float("nan"))
        for k, (e, kbps) in ests.items():
            l1 = float(mel_l1(mel, torch.from_numpy(e)[None, None], t)[0])
            vq = visqol(resample(e.astype(np.float64), SR, 48000), resample(y.astype(np.float64), SR, 48000), 48000)
            scores.setdefault(k, []).append((kbps, l1, vq))
    print(f"{len(rows)} test music clips, first 4 s")
    for k, v in scores.items():
        s = np.array(v)
        rate = f"{s[:, 0].mean():6.0f}" if k in CODECS else f"{'-':>6}"
        print(f"{k:<12} {rate} kbit/s   log-mel L1 {s[:, 1].mean():.3f}   ViSQOL {s[:, 2].mean():.2f}")


if __name__ == "__main__":
    main()
