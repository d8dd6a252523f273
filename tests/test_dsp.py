"""rtgan.dsp against librosa (the reference implementation of the same conventions)."""
import librosa
import numpy as np
import pytest
import torch

from rtgan.dsp import log_mel, mel_filterbank, stft_magnitude


@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax", [(48000, 2048, 128, 0.0, None), (22050, 1024, 128, 0.0, None),
                                                      (16000, 512, 40, 20.0, 7600.0), (22050, 1024, 80, 0.0, 8000.0)])
def test_mel_filterbank_matches_librosa(sr, n_fft, n_mels, fmin, fmax):
    expected = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    got = mel_filterbank(sr, n_fft, n_mels, fmin, fmax).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_mel_filterbank_rejects_bad_ranges():
    with pytest.raises(ValueError):
        mel_filterbank(16000, 512, 40, 0.0, 9000.0)
    with pytest.raises(ValueError):
        mel_filterbank(16000, 512, 0)


def test_stft_magnitude_and_log_mel_match_librosa():
    x = np.random.default_rng(0).standard_normal(12345)
    mag = stft_magnitude(torch.from_numpy(x)[None], 1024, 256, 800)[0].numpy()
    expected = np.abs(librosa.stft(x, n_fft=1024, hop_length=256, win_length=800, window="hann", pad_mode="constant"))
    np.testing.assert_allclose(mag, expected, rtol=1e-6, atol=1e-9)
    lm = log_mel(torch.from_numpy(x)[None], 22050, n_fft=1024, hop_length=256, n_mels=80)[0].numpy()
    m = librosa.feature.melspectrogram(y=x, sr=22050, n_fft=1024, hop_length=256, n_mels=80, power=1.0,
                                       pad_mode="constant")
    np.testing.assert_allclose(lm, np.log(np.maximum(m, 1e-5)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        stft_magnitude(torch.zeros(1, 2, 3, 4), 512, 128)


def test_minimum_phase_eq_follows_its_curve_and_is_minimum_phase():
    from scipy import signal

    from rtgan.dsp import minimum_phase_eq

    pts = ((0.0, 0.0), (7000.0, 0.0), (9000.0, 1.0), (14000.0, 1.0), (18000.0, 2.0), (24000.0, 2.0))
    h = minimum_phase_eq(pts, 48000, taps=127)
    assert h.shape == (127,)
    _, resp = signal.freqz(h, worN=np.array([2000.0, 5000.0, 11000.0, 12000.0, 20000.0, 22000.0]), fs=48000)
    np.testing.assert_allclose(np.abs(resp), [0.0, 0.0, 1.0, 1.0, 2.0, 2.0], atol=0.05)
    # minimum phase: of all filters with this magnitude, its energy arrives first; the
    # linear-phase design (scipy's firwin2) has the same magnitude and its energy centred at tap 63
    lin = signal.firwin2(127, [f for f, _ in pts], [g for _, g in pts], fs=48000)
    ce_min, ce_lin = np.cumsum(h ** 2), np.cumsum(lin ** 2)
    assert np.all(ce_min >= ce_lin - 1e-6 * ce_lin[-1])
    assert ce_min[15] >= 0.9 * ce_min[-1]
    for bad in [((0.0, 1.0),), ((0.0, 1.0), (0.0, 2.0)), ((0.0, 1.0), (30000.0, 1.0)), ((0.0, -1.0), (100.0, 1.0))]:
        with pytest.raises(ValueError):
            minimum_phase_eq(bad, 48000)
    with pytest.raises(ValueError):
        minimum_phase_eq(pts, 48000, taps=128)
