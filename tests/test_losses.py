"""Tests for rtgan.losses (expected values from librosa, numpy or by hand)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from rtgan.losses import (
    LossWeights,
    feature_matching_loss,
    generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    mel_l1_loss,
    multi_resolution_stft_loss,
    spectral_flatness,
    spectral_flatness_loss,
    time_mse,
)

torch.set_num_threads(1)

SR = 22_050


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2021)
    t = np.arange(SR) / SR
    # "real-ish": decaying harmonic tone with vibrato, a chirp and a little noise
    f0 = 220.0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    harmonic = sum(np.sin(k * phase) / k for k in range(1, 8)) * np.exp(-2 * t)
    chirp = 0.3 * np.sin(2 * np.pi * (300 + 1500 * t) * t)
    return {
        "white_noise": rng.standard_normal(SR),
        "sine": np.sin(2 * np.pi * 440.0 * t),
        "music_like": harmonic + chirp + 0.01 * rng.standard_normal(SR),
    }


@pytest.mark.parametrize("name", ["white_noise", "sine", "music_like"])
def test_spectral_flatness_matches_librosa(name):
    x = _signals()[name]
    expected = librosa.feature.spectral_flatness(y=x)[0]
    got = spectral_flatness(torch.from_numpy(x)[None]).numpy()[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=0)


def test_spectral_flatness_matches_librosa_non_default_stft_and_layouts():
    sigs = _signals()
    batch = np.stack([sigs["white_noise"][:8000], sigs["music_like"][:8000]])
    expected = librosa.feature.spectral_flatness(y=batch, n_fft=1024, hop_length=256)[:, 0, :]
    got2d = spectral_flatness(torch.from_numpy(batch), n_fft=1024, hop_length=256).numpy()
    got3d = spectral_flatness(torch.from_numpy(batch)[:, None, :], n_fft=1024, hop_length=256).numpy()
    np.testing.assert_allclose(got2d, expected, rtol=1e-4)
    np.testing.assert_allclose(got3d, expected, rtol=1e-4)
    # float32 input of a noise-like signal also agrees with librosa on float32
    x32 = sigs["white_noise"].astype(np.float32)
    np.testing.assert_allclose(
        spectral_flatness(torch.from_numpy(x32)[None]).numpy()[0],
        librosa.feature.spectral_flatness(y=x32)[0],
        rtol=1e-4,
    )
    # power=1 (magnitude spectrum) too
    np.testing.assert_allclose(
        spectral_flatness(torch.from_numpy(batch), power=1.0).numpy(),
        librosa.feature.spectral_flatness(y=batch, power=1.0)[:, 0, :],
        rtol=1e-4,
    )


def test_spectral_flatness_gradients_flow():
    x = torch.from_numpy(_signals()["music_like"][:4096]).float()[None].requires_grad_(True)
    sf = spectral_flatness(x, n_fft=512, hop_length=128)
    sf.sum().backward()
    assert torch.all(torch.isfinite(x.grad))
    assert x.grad.abs().max() > 0
    # also through the loss, including at an all-zero (silent) estimate
    y_hat = torch.zeros(1, 2048, requires_grad=True)
    loss = spectral_flatness_loss(y_hat, torch.randn(1, 2048), n_fft=256, hop_length=64)
    loss.backward()
    assert torch.all(torch.isfinite(y_hat.grad))


def test_spectral_flatness_loss_against_librosa():
    sigs = _signals()
    a, b = sigs["music_like"][:6000], sigs["white_noise"][:6000]
    sf_a = librosa.feature.spectral_flatness(y=a, n_fft=512, hop_length=128)[0]
    sf_b = librosa.feature.spectral_flatness(y=b, n_fft=512, hop_length=128)[0]
    expected = np.mean((sf_a - sf_b) ** 2)
    got = spectral_flatness_loss(
        torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None], n_fft=512, hop_length=128
    )
    assert got.item() == pytest.approx(expected, rel=1e-6)
    same = spectral_flatness_loss(torch.from_numpy(a)[None], torch.from_numpy(a)[None])
    assert same.item() == 0.0


def test_spectral_flatness_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        spectral_flatness(torch.zeros(2, 2, 100))
    with pytest.raises(ValueError, match="amin"):
        spectral_flatness(torch.zeros(1, 100), amin=0.0)
    with pytest.raises(ValueError, match="shape"):
        spectral_flatness_loss(torch.zeros(1, 100), torch.zeros(1, 101))


def test_lsgan_discriminator_loss_hand_computed():
    real = [torch.tensor([[1.0, 0.5]]), torch.tensor([[2.0]])]
    fake = [torch.tensor([[0.0, 1.0]]), torch.tensor([[-1.0]])]
    # sub-disc 1: mean([0, 0.25]) + mean([0, 1]) = 0.625; sub-disc 2: 1 + 1 = 2
    assert lsgan_discriminator_loss(real, fake).item() == pytest.approx(2.625)
    perfect = lsgan_discriminator_loss([torch.ones(3, 4)], [torch.zeros(3, 4)])
    assert perfect.item() == 0.0
    with pytest.raises(ValueError):
        lsgan_discriminator_loss(real, fake[:1])
    with pytest.raises(ValueError):
        lsgan_discriminator_loss([torch.ones(2)], [torch.ones(3)])
    with pytest.raises(ValueError):
        lsgan_discriminator_loss([], [])


def test_lsgan_generator_loss_hand_computed():
    fake = [torch.tensor([[0.0, 1.0]]), torch.tensor([[3.0]])]
    # mean([1, 0]) + 4 = 4.5
    assert lsgan_generator_loss(fake).item() == pytest.approx(4.5)
    assert lsgan_generator_loss([torch.ones(2, 7)]).item() == 0.0
    with pytest.raises(ValueError):
        lsgan_generator_loss([])


def test_feature_matching_loss_hand_computed_and_real_detached():
    real = [[torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([[0.0]], requires_grad=True)],
            [torch.tensor([5.0, 5.0, 5.0, 5.0], requires_grad=True)]]
    fake = [[torch.tensor([0.0, 4.0], requires_grad=True), torch.tensor([[-3.0]], requires_grad=True)],
            [torch.tensor([5.0, 6.0, 5.0, 3.0], requires_grad=True)]]
    # mean(|1|,|2|) = 1.5 ; 3 ; mean(0,1,0,2) = 0.75  -> 5.25
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(5.25)
    loss.backward()
    assert all(t.grad is None for group in real for t in group)
    # d/df mean|r - f| = sign(f - r) / n: fake [0, 4] vs real [1, 2]
    np.testing.assert_allclose(fake[0][0].grad.numpy(), [-0.5, 0.5])
    with pytest.raises(ValueError):
        feature_matching_loss(real, fake[:1])
    with pytest.raises(ValueError):
        feature_matching_loss([[torch.ones(2)]], [[torch.ones(3)]])


def test_time_mse_hand_computed():
    y_hat = torch.tensor([[[0.0, 1.0, 2.0, 3.0]]])
    y = torch.tensor([[[1.0, 1.0, 0.0, 3.0]]])
    assert time_mse(y_hat, y).item() == pytest.approx((1 + 0 + 4 + 0) / 4)
    with pytest.raises(ValueError):
        time_mse(torch.zeros(1, 3), torch.zeros(1, 4))


def test_generator_loss_combines_terms_with_weights():
    rng = np.random.default_rng(0)
    y_np = rng.standard_normal((2, 4096))
    y_hat_np = y_np + 0.1 * rng.standard_normal((2, 4096))
    y = torch.from_numpy(y_np)[:, None, :]
    y_hat = torch.from_numpy(y_hat_np)[:, None, :].requires_grad_(True)
    fake_logits = [torch.tensor([[0.0, 1.0]], dtype=torch.float64), torch.tensor([[3.0]], dtype=torch.float64)]
    weights = LossWeights(adv=0.5, flat=2.0, time=3.0, feature_matching=0.0)

    total, terms = generator_loss(y_hat, y, fake_logits, weights, n_fft=512, hop_length=128)

    expected_time = np.mean((y_hat_np - y_np) ** 2)
    sf_hat = librosa.feature.spectral_flatness(y=y_hat_np, n_fft=512, hop_length=128)
    sf_y = librosa.feature.spectral_flatness(y=y_np, n_fft=512, hop_length=128)
    expected_flat = np.mean((sf_hat - sf_y) ** 2)
    expected_adv = 4.5  # as in test_lsgan_generator_loss_hand_computed
    assert terms["time"] == pytest.approx(expected_time, rel=1e-9)
    assert terms["flat"] == pytest.approx(expected_flat, rel=1e-6)
    assert terms["adv"] == pytest.approx(expected_adv)
    assert terms["fm"] == 0.0
    expected_total = 0.5 * expected_adv + 2.0 * expected_flat + 3.0 * expected_time
    assert total.item() == pytest.approx(expected_total, rel=1e-6)
    assert terms["total"] == pytest.approx(expected_total, rel=1e-6)
    total.backward()
    assert torch.all(torch.isfinite(y_hat.grad)) and y_hat.grad.abs().max() > 0


def test_generator_loss_feature_matching_and_missing_inputs():
    y = torch.zeros(1, 1, 1024)
    y_hat = torch.full((1, 1, 1024), 0.5)
    real_feats = [[torch.zeros(1, 4)]]
    fake_feats = [[torch.full((1, 4), 2.0)]]
    weights = LossWeights(adv=0.0, flat=0.0, time=1.0, feature_matching=2.0)
    total, terms = generator_loss(y_hat, y, None, weights, fake_feats=fake_feats, real_feats=real_feats)
    assert terms["time"] == pytest.approx(0.25)
    assert terms["fm"] == pytest.approx(2.0)
    assert terms["adv"] == 0.0
    assert total.item() == pytest.approx(0.25 + 2.0 * 2.0)
    with pytest.raises(ValueError, match="feature"):
        generator_loss(y_hat, y, None, weights)
    with pytest.raises(ValueError, match="fake_logits"):
        generator_loss(y_hat, y, None, LossWeights(adv=1.0))
    with pytest.raises(ValueError, match="shape"):
        generator_loss(y_hat, y[..., :10], None, LossWeights(adv=0.0))


def test_loss_weights_defaults_and_validation():
    w = LossWeights()
    assert (w.adv, w.flat, w.time, w.feature_matching) == (1e-3, 1e-3, 1.0, 0.0)
    with pytest.raises(ValueError):
        LossWeights(adv=-1.0)
    with pytest.raises(ValueError):
        LossWeights(flat=float("nan"))


def _librosa_mag(x: np.ndarray, n_fft: int, hop: int, win: int) -> np.ndarray:
    s = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, win_length=win, window="hann", center=True,
                            pad_mode="constant"))
    return np.sqrt(np.maximum(s**2, 1e-7))  # Parallel WaveGAN's stft_loss.py clamps the power at 1e-7


def test_multi_resolution_stft_loss_matches_formula_with_librosa_stft():
    sig = _signals()
    y_np, y_hat_np = sig["music_like"], sig["music_like"] + 0.05 * sig["white_noise"]
    res = ((512, 128, 256), (1024, 200, 1024))
    sc, mag = multi_resolution_stft_loss(torch.from_numpy(y_hat_np)[None, None], torch.from_numpy(y_np)[None, None],
                                         resolutions=res)
    exp_sc, exp_mag = [], []
    for n_fft, hop, win in res:
        s, s_hat = _librosa_mag(y_np, n_fft, hop, win), _librosa_mag(y_hat_np, n_fft, hop, win)
        exp_sc.append(np.linalg.norm(s - s_hat) / np.linalg.norm(s))  # Yamamoto et al. eq. 2
        exp_mag.append(np.mean(np.abs(np.log(s) - np.log(s_hat))))  # eq. 3
    assert sc.item() == pytest.approx(np.mean(exp_sc), rel=1e-6)
    assert mag.item() == pytest.approx(np.mean(exp_mag), rel=1e-6)
    zero_sc, zero_mag = multi_resolution_stft_loss(torch.from_numpy(y_np)[None], torch.from_numpy(y_np)[None])
    assert zero_sc.item() == 0.0 and zero_mag.item() == 0.0


def test_multi_resolution_stft_loss_ignores_differences_below_16_bit_noise():
    # Floor of the reference implementation: power 1e-7. Noise at -140 dBFS (far below a 16-bit
    # file's quantisation noise) must not count; noise at -60 dBFS must.
    t = np.arange(48000) / 48000.0
    y = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    noise = np.random.default_rng(0).standard_normal(48000)
    as_t = lambda a: torch.from_numpy(a)[None]
    _, inaudible = multi_resolution_stft_loss(as_t(y + 1e-7 * noise), as_t(y))
    _, audible = multi_resolution_stft_loss(as_t(y + 1e-3 * noise), as_t(y))
    assert inaudible.item() < 1e-3 and audible.item() > 0.5


def test_mel_l1_loss_matches_librosa():
    rng = np.random.default_rng(3)
    y_np = rng.standard_normal(48000) * 0.1
    y_hat_np = y_np + 0.02 * rng.standard_normal(48000)

    def log_mel(x):
        m = librosa.feature.melspectrogram(y=x, sr=48000, n_fft=2048, hop_length=480, n_mels=128, power=1.0,
                                           center=True, pad_mode="constant")
        return np.log(np.maximum(m, 1e-5))

    expected = np.mean(np.abs(log_mel(y_np) - log_mel(y_hat_np)))  # HiFi-GAN eq. 3
    got = mel_l1_loss(torch.from_numpy(y_hat_np)[None], torch.from_numpy(y_np)[None]).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_generator_loss_adds_stft_and_mel_terms():
    rng = np.random.default_rng(1)
    y = torch.from_numpy(rng.standard_normal((2, 1, 8192)) * 0.1)
    y_hat = (y + 0.01 * torch.from_numpy(rng.standard_normal((2, 1, 8192)))).requires_grad_(True)
    w = LossWeights(adv=0.0, flat=0.0, time=0.0, stft=2.0, mel=3.0)
    total, terms = generator_loss(y_hat, y, None, w)
    sc, mag = multi_resolution_stft_loss(y_hat.detach(), y)
    mel = mel_l1_loss(y_hat.detach(), y)
    assert terms["sc"] == pytest.approx(sc.item()) and terms["mag"] == pytest.approx(mag.item())
    assert total.item() == pytest.approx(2.0 * (sc.item() + mag.item()) + 3.0 * mel.item(), rel=1e-6)
    total.backward()
    assert torch.all(torch.isfinite(y_hat.grad)) and y_hat.grad.abs().max() > 0
    # terms with weight 0 are not computed
    assert "sc" not in generator_loss(y_hat, y, None, LossWeights(adv=0.0))[1]
