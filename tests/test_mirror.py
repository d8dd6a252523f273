"""sr-hifigan's band mirror (spectral folding about the input's band edge): its output, its streaming."""
import dataclasses
import importlib.util

import numpy as np
import pytest
import torch

from helpers import BLOCK_SIZES
from rtgan.engine import StatefulStream, stream_signal
from rtgan.engine.overlap_save import OverlapSave, offline
from rtgan.models import registry
from rtgan.models.layers.mirror import BandMirror, mirror_period

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None


def _peak(y: np.ndarray, sr: int = 48000) -> tuple[float, float]:
    """(frequency Hz, amplitude) of the largest bin of a Hann-windowed spectrum."""
    w = np.hanning(len(y))
    s = np.abs(np.fft.rfft(y * w)) * 2 / w.sum()
    k = int(np.argmax(s))
    return k * sr / len(y), float(s[k])


@pytest.mark.parametrize("f_in", [6500.0, 7000.0, 7600.0])
def test_a_tone_below_the_edge_comes_back_mirrored_above_it(f_in):
    m = BandMirror(48000, 8000.0)
    assert m.period == 3
    n = np.arange(48000)
    x = torch.tensor(0.5 * np.sin(2 * np.pi * f_in / 48000 * n), dtype=torch.float32)[None, None]
    with torch.no_grad():
        y = m(x)[0, 0, 4800:].numpy()  # past the FIRs' start-up
    f, a = _peak(y)
    # 2 cos(2 pi 16000 n / 48000) * 0.5 sin(2 pi f n / fs) = 0.5 sin(2 pi (16000 - f) ...) + the image at 16000 + f
    assert abs(f - (16000.0 - f_in)) <= 1.0
    assert 0.5 * 10 ** (-1 / 20) <= a <= 0.5 * 10 ** (1 / 20)  # passband of both band-passes: within 1 dB
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / 48000)
    assert spec[np.abs(freqs - f_in) < 50].max() < 1e-3 * spec.max()  # the tone itself is not passed


def test_a_tone_outside_the_mirrored_quarter_gives_nothing():
    m = BandMirror(48000, 8000.0)
    x = torch.tensor(0.5 * np.sin(2 * np.pi * 3000 / 48000 * np.arange(48000)), dtype=torch.float32)[None, None]
    with torch.no_grad():
        y = m(x)[0, 0, 4800:]
    assert y.abs().max() < 0.5 * 10 ** (-40 / 20)


def test_the_period_must_be_whole():
    assert mirror_period(48000, 8000.0) == 3 and mirror_period(44100, 5512.5) == 4
    for rate, bw in ((48000, 7000.0), (48000, 12000.0)):  # 3.43; 2 (the image would reach Nyquist)
        with pytest.raises(ValueError):
            mirror_period(rate, bw)
    entry = registry.entry("sr-hifigan")
    with pytest.raises(ValueError):
        dataclasses.replace(entry.presets["tiny"], mirror_gain=0.5, input_bandwidth_hz=7000.0)
    with pytest.raises(ValueError):
        dataclasses.replace(entry.presets["tiny"], mirror_gain=5.0)


def _mirror_model(preset: str, seed: int = 8):
    entry = registry.entry("sr-hifigan")
    torch.manual_seed(seed)
    m = entry.generator(dataclasses.replace(entry.presets[preset], mirror_gain=0.5))
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.1 if preset == "tiny" else 0.02)
    return m.eval()


@pytest.mark.parametrize("runtime", ["eager", "torchscript"] + (["onnxruntime"] if HAS_ORT else []))
@pytest.mark.parametrize("block", BLOCK_SIZES)
def test_the_mirror_streams_exactly_and_adds_no_latency(runtime, block):
    # tiny: centred padding, so the stream is primed with more zeros than offline() pads: the
    # carrier's count must still line up
    m = _mirror_model("tiny")
    plain = registry.entry("sr-hifigan").generator(dataclasses.replace(m.config, mirror_gain=0.0)).eval()
    plain.load_state_dict(m.state_dict())
    assert m.index_period == 3 and plain.index_period == 1
    assert m.latency_samples == plain.latency_samples > 0 and m.reach().right == plain.reach().right
    assert m.reach().left == max(plain.reach().left, m.mirror.memory)
    x = 0.3 * torch.randn(2, 1, 3000)
    y = stream_signal(StatefulStream(m, block, runtime=runtime), x)
    with torch.no_grad():
        ref = offline(m, x)
        mirrored = ref - offline(plain, x)
    assert (y - ref).abs().max().item() <= 1e-4
    assert mirrored.norm() > 0.01 * x.norm()  # and the mirror adds something


def test_the_live_preset_with_the_mirror_streams_exactly():
    m = _mirror_model("live")
    x = 0.3 * torch.randn(1, 1, 4000)
    for block in (32, 96, 256):  # the carrier's period (3) against the granule (32)
        y = stream_signal(StatefulStream(m, block), x)
        with torch.no_grad():
            ref = offline(m, x)
        assert (y - ref).abs().max().item() <= 1e-4


def test_overlap_save_refuses_a_model_that_counts_samples():
    with pytest.raises(ValueError, match="sample index"):
        OverlapSave(_mirror_model("tiny"), 64)
