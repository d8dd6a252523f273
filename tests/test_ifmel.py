"""GANSynth's IF-Mel representation (rtgan.dsp.ifmel / ifmel_to_audio; Engel et al. 2019).

Checked here: the spec's framing arithmetic and validation; shapes, dtypes and batching; the IF
channel's range; the forward and inverse transforms against a separate numpy implementation
(frame loop, ``np.unwrap``); the mel matrix against the HTK formula (via librosa for the bands
GANSynth does not widen); where a sine lands on the mel axis; and resynthesis of a real
fluidsynth bass note and of sines, with the errors measured when the test was written.
"""
from __future__ import annotations

import dataclasses
import math
import shutil
import subprocess
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from rtgan.dsp import (IFMelSpec, _gansynth_istft, _gansynth_stft, gansynth_mel_matrix, gansynth_mel_to_linear_matrix,
                       ifmel, ifmel_to_audio, stft_magnitude)

SR = 16000
N = 64000
FLUIDSYNTH = "/usr/bin/fluidsynth"
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


def _sine(freq: float, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(N) / SR)


def _htk_mel(f):
    """HTK mel in the textbook log10 form (the code under test uses 1127 ln(1 + f/700))."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _htk_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def _mel_centres(spec: IFMelSpec) -> np.ndarray:
    return _htk_hz(np.linspace(_htk_mel(spec.fmin), _htk_mel(spec.fmax), spec.n_mels + 2)[1:-1])


# --- the spec -----------------------------------------------------------------------------------

def test_spec_defaults_match_gansynth_framing():
    s = IFMelSpec()
    assert (s.sample_rate, s.n_fft, s.hop_length, s.n_mels, s.frames) == (16000, 2048, 512, 1024, 128)
    assert (s.fmin, s.fmax, s.eps, s.discard_dc) == (0.0, 8000.0, 1e-6, True)
    # 4 s notes; magenta pads 67072 - 64000 = 3072 zeros, all in front, for 128 un-centred frames.
    assert (s.samples, s.padded_length, s.padding, s.n_bins) == (64000, 67072, 3072, 1024)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.n_fft = 1024


@pytest.mark.parametrize("kwargs", [dict(n_fft=2047), dict(hop_length=0), dict(hop_length=4096), dict(n_mels=0),
                                    dict(frames=-1), dict(fmax=8001.0), dict(fmin=8000.0), dict(fmin=-1.0),
                                    dict(eps=0.0), dict(eps=float("nan")), dict(audio_length=67073),
                                    dict(sample_rate=16000.0), dict(frames=True)])
def test_spec_rejects_bad_fields(kwargs):
    with pytest.raises(ValueError):
        IFMelSpec(**kwargs)


# --- shapes, ranges, errors -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_dtype_and_batch_independence(dtype):
    x = 0.1 * torch.randn(3, N, generator=torch.Generator().manual_seed(0), dtype=dtype)
    s = ifmel(x)
    assert s.shape == (3, 2, 128, 1024) and s.dtype == dtype
    assert torch.allclose(ifmel(x[1:2]), s[1:2], atol=1e-4 if dtype == torch.float32 else 1e-10)
    assert torch.equal(ifmel(x[:, None]), s)  # (batch, 1, samples) is accepted too
    y = ifmel_to_audio(s)
    assert y.shape == (3, N) and y.dtype == dtype
    assert torch.allclose(ifmel_to_audio(s[2:3]), y[2:3], atol=1e-5 if dtype == torch.float32 else 1e-10)


def test_if_channel_in_unit_range_and_pad_frames_silent():
    x = torch.from_numpy(np.stack([_sine(261.63), 0.3 * np.random.default_rng(1).standard_normal(N)]))
    s = ifmel(x)
    assert s[:, 1].abs().max() <= 1.0 + 1e-12
    # Frames 0-2 see only the 3072-sample left pad: log(eps^2 W + eps) and IF 0 (angle(0) := 0).
    assert torch.all(s[:, 1, :3] == 0)
    floor = torch.log((1e-6 ** 2) * gansynth_mel_matrix().sum(0) + 1e-6)
    assert torch.allclose(s[:, 0, :3], floor.expand(2, 3, -1))


def test_bad_inputs_raise():
    good = torch.zeros(1, N)
    for bad in (torch.zeros(1, N - 1), torch.zeros(N), torch.zeros(1, 2, N), torch.zeros(1, N, dtype=torch.int64)):
        with pytest.raises(ValueError):
            ifmel(bad)
    for value in (float("nan"), float("inf")):
        x = good.clone()
        x[0, 100] = value
        with pytest.raises(ValueError):
            ifmel(x)
    s = ifmel(good)
    for bad in (s[:, :1], s[:, :, :127], s[:, :, :, :512], s[0]):
        with pytest.raises(ValueError):
            ifmel_to_audio(bad)
    s[0, 1, 5, 5] = float("nan")
    with pytest.raises(ValueError):
        ifmel_to_audio(s)


# --- against independent implementations -----------------------------------------------------------

def _numpy_stft(x: np.ndarray, spec: IFMelSpec) -> np.ndarray:
    """Frame loop: left pad, periodic Hann, rfft, drop DC -> (frames, 1024)."""
    xp = np.concatenate([np.zeros(spec.padding), x])
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(spec.n_fft) / spec.n_fft)
    frames = [np.fft.rfft(win * xp[t * spec.hop_length:t * spec.hop_length + spec.n_fft]) for t in range(spec.frames)]
    return np.array(frames)[:, 1:]


def test_ifmel_matches_numpy_reference():
    spec = IFMelSpec()
    x = 0.2 * np.random.default_rng(2).standard_normal(N) + _sine(440.0, 0.3)
    X = _numpy_stft(x, spec)
    w = gansynth_mel_matrix().numpy()
    logmel = np.log((np.abs(X) + 1e-6) ** 2 @ w + 1e-6)
    phase = np.where(X == 0, 0.0, np.angle(X))
    mel_phase = np.unwrap(phase, axis=0) @ w
    mel_if = np.concatenate([mel_phase[:1], np.diff(np.unwrap(mel_phase, axis=0), axis=0)]) / np.pi
    got = ifmel(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(got[0], logmel, atol=1e-8)
    np.testing.assert_allclose(got[1], mel_if, atol=1e-8)


def test_ifmel_to_audio_matches_numpy_overlap_add():
    spec = IFMelSpec()
    s = ifmel(torch.from_numpy(_sine(330.0) + 0.05 * np.random.default_rng(3).standard_normal(N))[None])
    v = gansynth_mel_to_linear_matrix().numpy()
    logmel, mel_if = s[0, 0].numpy(), s[0, 1].numpy()
    mag = np.sqrt(np.exp(logmel) @ v + 1e-6)
    phase = (np.pi * np.cumsum(mel_if, axis=0)) @ v
    X = np.concatenate([np.zeros((spec.frames, 1)), mag * np.exp(1j * phase)], axis=1)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(spec.n_fft) / spec.n_fft)
    out = np.zeros(spec.padded_length)
    for t in range(spec.frames):  # tf.signal.inverse_stft: window / sum of 4 overlapping hann^2 = 1.5
        out[t * spec.hop_length:t * spec.hop_length + spec.n_fft] += np.fft.irfft(X[t], spec.n_fft) * win / 1.5
    np.testing.assert_allclose(ifmel_to_audio(s)[0].numpy(), out[spec.padding:], atol=1e-9)


@pytest.mark.parametrize("discard_dc,tol", [(True, 3e-4), (False, 1e-9)])
def test_linear_stft_inverse_is_near_exact(discard_dc, tol):
    """Without the mel step GANSynth's STFT inverts exactly but for the dropped bin and the last
    1536 samples, where the fixed synthesis window is not renormalised. For this faded 97 Hz sine
    the relative RMS error was 9.8e-5 with DC dropped and 1.3e-11 with Nyquist dropped."""
    spec = IFMelSpec(discard_dc=discard_dc)
    x = torch.from_numpy(_sine(97.0, 0.4) * np.sin(np.pi * np.arange(N) / N) ** 2)[None]
    y = _gansynth_istft(_gansynth_stft(x, spec), spec)
    err = (y - x)[0, :-spec.n_fft]
    assert float(err.pow(2).mean().sqrt() / x.pow(2).mean().sqrt()) < tol


@pytest.mark.filterwarnings("ignore:Empty filters detected")  # librosa, about mel band 0 (see below)
def test_mel_matrix_against_htk_formula():
    spec = IFMelSpec()
    w = gansynth_mel_matrix(spec).numpy()
    assert w.shape == (1024, 1024) and np.all(w >= 0) and np.all(w[0] == 0)
    # librosa's HTK triangles on the same grid: n_fft = 2046 gives 1024 bins on linspace(0, 8000, 1024).
    ref = librosa.filters.mel(sr=SR, n_fft=2046, n_mels=1024, fmin=0.0, fmax=8000.0, htk=True, norm=None).T
    edges = _htk_hz(np.linspace(_htk_mel(0.0), _htk_mel(8000.0), 1026))
    bin_hz = 8000.0 / 1024
    wide = edges[2:] - edges[:-2] >= 1.5 * bin_hz
    assert 520 < wide.sum() < 530 and np.all(wide[np.argmax(wide):])  # bands above ~1.69 kHz keep their width
    np.testing.assert_allclose(w[1:, wide], ref[1:, wide], atol=1e-6)
    # Narrower bands are widened to 1.5 bins in Hz around the same centre, peak 1 at the centre.
    # Band 0 (centre 1.7 Hz) then covers only the zeroed 0 Hz point: it is empty in GANSynth too.
    assert np.flatnonzero(w.sum(0) == 0).tolist() == [0]
    grid = np.linspace(0.0, 8000.0, 1024)
    centres = _mel_centres(spec)
    for m in np.flatnonzero(~wide)[2::37]:
        support = grid[w[:, m] > 0]
        assert support.size >= 1 and np.all(np.abs(support - centres[m]) < 0.76 * bin_hz)
        k = np.argmin(np.abs(grid - centres[m]))
        assert k > 0
        assert w[k, m] == pytest.approx(1.0 - abs(grid[k] - centres[m]) / (0.75 * bin_hz), abs=0.01)
    # The mel-to-linear matrix returns a flat spectrum flat, but for the two grid ends (0 Hz, and
    # Nyquist where the top triangle ends), which no mel band sees.
    assert np.all(w[-1] == 0)
    v = gansynth_mel_to_linear_matrix(spec).numpy()
    np.testing.assert_allclose((np.ones(1024) @ w @ v)[1:-1], 1.0, rtol=1e-10)


@pytest.mark.parametrize("discard_dc", [True, False])
@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0, 5555.0])
def test_sine_peaks_at_its_mel_bin(freq, discard_dc):
    """The mel grid of GANSynth spans 0..8000 Hz in 1024 points whichever bin was dropped; with the
    DC bin dropped (GANSynth) the STFT bin k sits on grid point k - 1, so the peak reads ~8 Hz low."""
    spec = IFMelSpec(discard_dc=discard_dc)
    s = ifmel(torch.from_numpy(_sine(freq))[None], spec)[0, 0, 8:120].mean(0).numpy()
    peak_hz = _mel_centres(spec)[s.argmax()]
    expected = (freq / (SR / spec.n_fft) - discard_dc) * 8000.0 / 1023
    mel_step = (_htk_hz(_htk_mel(freq) + _htk_mel(8000.0) / 1025) - freq)
    assert abs(peak_hz - expected) < max(4.0, mel_step)


# --- resynthesis ----------------------------------------------------------------------------------------

def _spectral_convergence(x: np.ndarray, y: np.ndarray, stop: int = N) -> float:
    mx = stft_magnitude(torch.from_numpy(x[:stop])[None], 1024, 256)
    my = stft_magnitude(torch.from_numpy(y[:stop])[None], 1024, 256)
    return float(torch.linalg.norm(mx - my) / torch.linalg.norm(mx))


def _f0(x: np.ndarray, fmax: float) -> float:
    f = librosa.yin(x, fmin=40.0, fmax=fmax, sr=SR, frame_length=2048)
    return float(np.median(f[10:150]))


def _consistency(s: torch.Tensor, s2: torch.Tensor) -> tuple[float, float]:
    """Mean |log-mel power error| and mean |wrapped IF error| over cells within 60 dB of the peak."""
    loud = s[:, 0] > s[:, 0].max() - math.log(1e6)
    dlog = (s2[:, 0] - s[:, 0]).abs()[loud].mean()
    dif = torch.remainder((s2[:, 1] - s[:, 1]) + 1.0, 2.0) - 1.0
    return float(dlog), float(dif.abs()[loud].mean())


@pytest.fixture(scope="module")
def bass_note(tmp_path_factory) -> np.ndarray:
    """4 s of a fluidsynth electric bass (GM program 33, E2 = MIDI 40, held 3 s), 16 kHz mono."""
    mido = pytest.importorskip("mido")
    if not (Path(FLUIDSYNTH).exists() or shutil.which("fluidsynth")) or not Path(SOUNDFONT).exists():
        pytest.skip("fluidsynth or the FluidR3_GM soundfont is not installed")
    tmp = tmp_path_factory.mktemp("bass")
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000))
    track.append(mido.Message("program_change", program=33, time=0))
    track.append(mido.Message("note_on", note=40, velocity=100, time=0))
    track.append(mido.Message("note_off", note=40, velocity=0, time=int(mido.second2tick(3.0, 480, 500000))))
    mid.save(tmp / "in.mid")
    exe = FLUIDSYNTH if Path(FLUIDSYNTH).exists() else shutil.which("fluidsynth")
    subprocess.run([exe, "-ni", "-q", "-R", "0", "-C", "0", "-r", str(SR), "-F", str(tmp / "out.wav"), SOUNDFONT,
                    str(tmp / "in.mid")], check=True, capture_output=True, timeout=60)
    audio, sr = sf.read(tmp / "out.wav", always_2d=True)
    assert sr == SR and audio.shape[0] >= N
    return audio.mean(axis=1)[:N].astype(np.float64)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_bass_note_round_trip(bass_note, dtype):
    """Measured (float64 and float32 alike) when written:

    * spectral convergence of the resynthesis (1024/256 STFT): 0.176;
    * pitch by YIN: 82.40 Hz -> 82.39 Hz (E2 = 82.41 Hz);
    * RMS of resynthesis / original: 0.873;
    * ifmel(ifmel_to_audio(ifmel(x))) vs ifmel(x), cells within 60 dB of the peak: log mel power
      0.39 (natural log, ~1.7 dB) mean absolute error; mel IF 0.080 (x pi rad) mean wrapped error.

    The mel step is what loses: the linear STFT alone inverts to ~1e-5 (test above).
    """
    x = bass_note
    s = ifmel(torch.from_numpy(x).to(dtype)[None])
    y = ifmel_to_audio(s)
    s2 = ifmel(y)
    y = y[0].double().numpy()
    assert _spectral_convergence(x, y) < 0.25
    assert _f0(y, 400.0) == pytest.approx(_f0(x, 400.0), rel=0.005)
    assert _f0(x, 400.0) == pytest.approx(440.0 * 2 ** ((40 - 69) / 12), rel=0.01)
    assert 0.75 < np.sqrt(np.mean(y ** 2) / np.mean(x ** 2)) < 1.1
    dlog, dif = _consistency(s, s2)
    assert dlog < 0.6 and dif < 0.12


def test_sine_round_trip():
    """Measured for a 440 Hz sine of amplitude 0.5 when written: spectral convergence 0.016 before
    the last 2048 samples and 0.094 with them (the un-renormalised tail of GANSynth's
    inverse STFT); RMS ratio 0.980; YIN pitch kept exactly; log mel power 0.33 / mel IF 0.013
    mean errors of ifmel(ifmel_to_audio(ifmel(x))) on cells within 60 dB of the peak.

    Not every pitch fares as well: at 110 Hz the phase advance per hop is near +-pi, the mel
    IF (a sum of ~1.5 bins' advances, wrapped to [-1, 1]) aliases, and the spectral
    convergence is 0.33 (RMS ratio 0.67). That is a property of GANSynth's mel IF, not tested.
    """
    x = _sine(440.0)
    s = ifmel(torch.from_numpy(x)[None])
    y = ifmel_to_audio(s)
    s2 = ifmel(y)
    y = y[0].numpy()
    assert _spectral_convergence(x, y, stop=N - 2048) < 0.03
    assert _spectral_convergence(x, y) < 0.15
    assert 0.95 < np.sqrt(np.mean(y ** 2) / np.mean(x ** 2)) < 1.02
    assert _f0(y, 1000.0) == pytest.approx(440.0, rel=0.002)
    dlog, dif = _consistency(s, s2)
    assert dlog < 0.5 and dif < 0.03
