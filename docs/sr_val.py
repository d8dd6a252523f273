"""What the sr-hifigan docs scripts share: the model by name or path, and the validation clips.

``load(checkpoint)``: a registered model name (its shipped weights) or a ``.safetensors`` path,
in eval mode. ``clips(model, corpus, domain, limit, split)``: for the clips of ``domain`` in
``split`` (default the validation split; 48 kHz, bandwidth >= 16 kHz, in manifest order, the
first ``limit`` if given), yields
``(row, y, x, x16, out)``: the original averaged to mono, the soxr band-limited input at 48 kHz
and at 16 kHz (as ``rtgan eval`` makes them), and the model's whole-file output on ``x``.
"""
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import rtgan
from rtgan.audio.bandlimit import band_limit
from rtgan.data.dataset import load_manifest
from rtgan.engine.overlap_save import offline
from rtgan.models import registry


def load(checkpoint: str):
    return (registry.load_generator(checkpoint) if checkpoint.endswith(".safetensors")
            else rtgan.load_model(checkpoint)).eval()


def clips(model, corpus, domain: str, limit: int | None = None, split: str = "val"):
    corpus = Path(corpus)
    sel = [r for r in load_manifest(corpus) if r["split"] == split and r["domain"] == domain
           and r["sample_rate"] == 48000 and r["bandwidth_hz"] >= 16000][:limit]
    for r in sel:
        y, _ = sf.read(corpus / r["path"], dtype="float32", always_2d=True)
        y = np.ascontiguousarray(y.mean(axis=1))
        x, x16 = band_limit("soxr", y)
        with torch.no_grad():
            out = offline(model, torch.from_numpy(x)[None, None])[0, 0].numpy()
        yield r, y, x, x16, out
