"""The shipped sr-hifigan checkpoint: present, loadable offline, documented, and sane."""
import numpy as np
import pytest
import soundfile as sf
import torch

import rtgan
from rtgan.engine import offline
from rtgan.audio.degrade import spline_upsample
from rtgan.metrics import lsd, snr, visqol
from rtgan.models import registry
from rtgan.audio.bandlimit import band_limit
from rtgan.metrics import tonal_artifact

from helpers import EXAMPLES


def test_shipped_model_loads_with_no_other_argument():
    m = rtgan.load_model("sr-hifigan")
    assert not m.training
    # the preset's network, with the residual gain calibrated on the validation split
    assert m.config == registry.make_config("sr-hifigan", m.metadata["preset"], residual_gain=m.config.residual_gain)
    meta = m.metadata
    cal = meta["calibration"]
    assert cal["split"] == "val" and cal["gain"] == m.config.residual_gain
    for key in ("config", "corpus_manifest_hash", "steps", "command", "metrics"):
        assert key in meta
    assert meta["command"].startswith("rtgan train sr-hifigan")
    assert any(c.startswith("rtgan calibrate") for c in meta["commands"])
    assert {"val", "test"} <= set(meta["metrics"])
    assert (registry.WEIGHTS_DIR / "sr-hifigan.safetensors").stat().st_size < 20 * 2**20


@pytest.mark.parametrize("clip", ["music_wesnoth_nunc_dimittis", "speech_klettres_en_car-dog", "drums_BJA_Pacific"])
def test_shipped_model_extends_the_band_of_real_clips(clip):
    """On the shipped test-split examples, band-limited by a filter training never used: LSD
    well below cubic spline's, SNR within 0.3 dB of spline's (issue 13's bar), and ViSQOL above
    the band-limited input's."""
    y, sr = sf.read(EXAMPLES / f"{clip}.flac", dtype="float32")
    m = rtgan.load_model("sr-hifigan")
    x, x16 = band_limit("kaiser", y, sr)
    spline = np.pad(spline_upsample(x16, 3)[:len(y)], (0, max(0, len(y) - 3 * len(x16))))
    out = offline(m, torch.from_numpy(x)[None, None])[0, 0].numpy()
    assert lsd(out, y) < lsd(spline, y) - 0.5
    assert snr(out, y) >= snr(spline, y) - 0.3
    assert visqol(out, y) > visqol(x, y)


#: Highest tonal figure (dB above the local median of the output's spectrum in 8.5-23.5 kHz,
#: band-limited white noise in; see rtgan.metrics.tonal_artifact) a shipped model may have.
#: White noise itself measures 1-2 dB; a steady fs/4 tone from stride-2 subpixel layers more.
MAX_TONAL_PEAK_DB = 6.0
SHIPPED = [n for n in registry.available() if (registry.WEIGHTS_DIR / f"{n}.safetensors").exists()]


def test_some_model_ships():
    assert SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_leaves_no_tone_in_the_generated_band(name):
    res = tonal_artifact(rtgan.load_model(name))
    assert res["peak_db"] <= MAX_TONAL_PEAK_DB, (
        f"{name}: {res['peak_db']:.1f} dB above the local median at {res['freq_hz']:.0f} Hz "
        f"(global {res['global_peak_db']:.1f} dB at {res['global_freq_hz']:.0f} Hz)")
