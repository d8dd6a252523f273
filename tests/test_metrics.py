"""Tests for rtgan.metrics against closed forms and inline numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import get_window

from rtgan.metrics import lsd, snr

torch.set_num_threads(1)


def reference_snr(estimate: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Alahi et al. eq. (24), plain numpy, no eps."""
    return 10 * np.log10(np.sum(target**2, axis=-1) / np.sum((target - estimate) ** 2, axis=-1))


def reference_lsd(estimate, target, n_fft=2048, hop=512, eps=1e-10, center=True) -> np.ndarray:
    """Alahi et al. eq. (25) with explicit framing (zero-padded, centred frames)."""
    window = get_window("hann", n_fft)  # periodic Hann

    def log_power(x):
        if center:
            x = np.pad(x, [(0, 0), (n_fft // 2, n_fft // 2)])
        n_frames = 1 + (x.shape[-1] - n_fft) // hop
        frames = np.stack([x[:, i * hop : i * hop + n_fft] for i in range(n_frames)], axis=1)
        spec = np.fft.rfft(frames * window, axis=-1)  # (batch, frames, bins)
        return np.log10(np.abs(spec) ** 2 + eps)

    diff = log_power(estimate) - log_power(target)
    return np.mean(np.sqrt(np.mean(diff**2, axis=-1)), axis=-1)


def test_snr_closed_form_half_amplitude():
    x = np.random.default_rng(0).standard_normal(5000)
    # ||x||^2 / ||x/2||^2 = 4  ->  10 log10 4 = 20 log10 2
    assert snr(x / 2, x) == pytest.approx(20 * np.log10(2), abs=1e-9)
    assert snr(x / 2, x) == pytest.approx(6.0206, abs=1e-4)
    assert isinstance(snr(x / 2, x), float)


def test_snr_matches_numpy_reference_batched_torch_and_numpy():
    rng = np.random.default_rng(1)
    target = rng.standard_normal((3, 4000))
    estimate = target + rng.standard_normal((3, 4000)) * np.array([[0.01], [0.3], [2.0]])
    expected = reference_snr(estimate, target)
    got_np = snr(estimate, target)
    assert isinstance(got_np, np.ndarray) and got_np.shape == (3,)
    np.testing.assert_allclose(got_np, expected, rtol=1e-10)
    got_t = snr(torch.from_numpy(estimate).float(), torch.from_numpy(target).float())
    assert isinstance(got_t, torch.Tensor) and got_t.shape == (3,)
    np.testing.assert_allclose(got_t.numpy(), expected, rtol=1e-4)
    one = snr(torch.from_numpy(estimate[0]), torch.from_numpy(target[0]))
    assert isinstance(one, torch.Tensor) and one.dim() == 0


def test_snr_eps_keeps_degenerate_cases_finite():
    x = np.ones(100)
    perfect = snr(x, x)
    assert np.isfinite(perfect) and perfect == pytest.approx(10 * np.log10(100 / 1e-12 + 1))
    assert snr(np.zeros(10), np.zeros(10)) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        snr(np.zeros(10), np.zeros(11))
    with pytest.raises(ValueError):
        snr(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)))


def test_snr_is_differentiable():
    target = torch.randn(2, 256)
    estimate = (target + 0.1 * torch.randn(2, 256)).requires_grad_(True)
    snr(estimate, target).sum().backward()
    assert torch.all(torch.isfinite(estimate.grad)) and estimate.grad.abs().max() > 0


def test_lsd_identical_is_zero():
    x = np.random.default_rng(2).standard_normal(6000)
    assert lsd(x, x) == 0.0
    assert lsd(torch.from_numpy(x)[None], torch.from_numpy(x)[None]).item() == 0.0


def test_lsd_closed_form_for_scaled_signal():
    # |X_g|^2 = 4 |X_t|^2 in every bin -> every log10 difference is log10 4
    x = np.random.default_rng(3).standard_normal(8000)
    assert lsd(2 * x, x) == pytest.approx(np.log10(4), abs=1e-4)


@pytest.mark.parametrize("n_fft,hop,center", [(2048, 512, True), (512, 128, True), (256, 100, False)])
def test_lsd_matches_explicit_framing_reference(n_fft, hop, center):
    rng = np.random.default_rng(4)
    t = np.arange(7000) / 16_000
    target = np.stack([np.sin(2 * np.pi * 440 * t), rng.standard_normal(7000)])
    estimate = target + 0.05 * rng.standard_normal(target.shape)
    estimate[0, :1000] = 0.0  # some silence in the estimate
    expected = reference_lsd(estimate, target, n_fft, hop, center=center)
    got = lsd(estimate, target, n_fft=n_fft, hop_length=hop, center=center)
    np.testing.assert_allclose(got, expected, rtol=1e-8)
    got_t = lsd(torch.from_numpy(estimate), torch.from_numpy(target), n_fft=n_fft, hop_length=hop, center=center)
    np.testing.assert_allclose(got_t.numpy(), expected, rtol=1e-8)
    assert isinstance(lsd(estimate[1], target[1], n_fft=n_fft, hop_length=hop, center=center), float)


def test_lsd_input_validation():
    with pytest.raises(ValueError):
        lsd(np.zeros(100), np.zeros(101))
    with pytest.raises(ValueError):
        lsd(np.zeros(100), np.zeros(100), eps=0.0)
    with pytest.raises(ValueError):
        lsd(np.zeros(100), np.zeros(100), n_fft=256, center=False)
