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
