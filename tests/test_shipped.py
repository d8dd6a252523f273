"""The shipped sr-hifigan checkpoint: present, loadable offline, documented, and sane."""
import numpy as np
import soundfile as sf
import torch

import rtgan
from rtgan.engine import offline
from rtgan.metrics import lsd, snr
from rtgan.models import registry
from rtgan.audio.degrade import DegradationConfig, degrade

from helpers import EXAMPLES


def test_shipped_model_loads_with_no_other_argument():
    m = rtgan.load_model("sr-hifigan")
    assert not m.training
    assert m.config == registry.make_config("sr-hifigan", m.metadata["preset"])
    meta = m.metadata
    for key in ("config", "corpus_manifest_hash", "steps", "command", "metrics"):
        assert key in meta
    assert meta["command"].startswith("rtgan train sr-hifigan")
    assert {"val", "test"} <= set(meta["metrics"])
    assert (registry.WEIGHTS_DIR / "sr-hifigan.safetensors").stat().st_size < 20 * 2**20


def test_shipped_model_extends_the_band_of_a_real_clip():
    y, sr = sf.read(EXAMPLES / "music_wesnoth_nunc_dimittis.flac", dtype="float32")
    m = rtgan.load_model("sr-hifigan")
    x = degrade(y, sr, DegradationConfig()).astype(np.float32)
    out = offline(m, torch.from_numpy(x)[None, None])[0, 0].numpy()
    assert lsd(out, y) < lsd(x, y) - 0.2
    assert snr(out, y) > snr(x, y) - 0.5
