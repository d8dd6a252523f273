"""Tests for the adversarial losses, WGAN helpers and the Alahi et al. (2020) losses of rtgan.losses.

Every expected value is written out here with plain numpy/torch arithmetic on small known
tensors, independently of the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rtgan.losses import (
    clip_weights_,
    content_loss,
    gradient_penalty,
    hinge_discriminator_loss,
    hinge_generator_loss,
    nonsaturating_discriminator_loss,
    nonsaturating_generator_loss,
    power_spectrogram_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)

torch.set_num_threads(1)


def _neg_log_sigmoid(x: float) -> float:
    return -math.log(1.0 / (1.0 + math.exp(-x)))


# --- non-saturating cross-entropy (Goodfellow et al. 2014) -------------------------------------

def test_nonsaturating_discriminator_loss_hand_computed():
    real = [torch.tensor([[0.0, 2.0]], dtype=torch.float64), torch.tensor([[-1.0]], dtype=torch.float64)]
    fake = [torch.tensor([[-1.0, 3.0]], dtype=torch.float64), torch.tensor([[0.5]], dtype=torch.float64)]
    # -log D(y) = -log sigmoid(l);  -log(1 - D(G)) = -log(1 - sigmoid(l)) = -log sigmoid(-l)
    expected = (
        (_neg_log_sigmoid(0.0) + _neg_log_sigmoid(2.0)) / 2 + (_neg_log_sigmoid(1.0) + _neg_log_sigmoid(-3.0)) / 2
        + _neg_log_sigmoid(-1.0) + _neg_log_sigmoid(-0.5)
    )
    assert nonsaturating_discriminator_loss(real, fake).item() == pytest.approx(expected, rel=1e-12)
    # log 2 per term at logit 0 (D = 1/2)
    assert nonsaturating_discriminator_loss(torch.zeros(3, 4), torch.zeros(3, 4)).item() == pytest.approx(
        2 * math.log(2.0))


def test_nonsaturating_generator_loss_hand_computed():
    fake = [torch.tensor([[0.0, 2.0]], dtype=torch.float64), torch.tensor([[-3.0]], dtype=torch.float64)]
    expected = (_neg_log_sigmoid(0.0) + _neg_log_sigmoid(2.0)) / 2 + _neg_log_sigmoid(-3.0)
    assert nonsaturating_generator_loss(fake).item() == pytest.approx(expected, rel=1e-12)


def test_nonsaturating_losses_are_stable_for_large_logits():
    big = torch.tensor([[200.0, -200.0]], requires_grad=True)
    # -log sigmoid(200) ~ 0 and -log sigmoid(-200) = 200 (+ e^-200)
    d = nonsaturating_discriminator_loss([big], [big.detach()])
    assert d.item() == pytest.approx((0.0 + 200.0) / 2 + (200.0 + 0.0) / 2)
    g = nonsaturating_generator_loss([big])
    assert g.item() == pytest.approx(100.0)
    g.backward()
    # d/dl softplus(-l) = -sigmoid(-l): ~0 at l = 200, -1 at l = -200, divided by the 2 elements
    np.testing.assert_allclose(big.grad.numpy(), [[0.0, -0.5]], atol=1e-12)


# --- hinge (Lim & Ye 2017; MelGAN) --------------------------------------------------------------

def test_hinge_losses_hand_computed():
    real = [torch.tensor([[2.0, 0.5, -1.0]]), torch.tensor([[0.0]])]
    fake = [torch.tensor([[-2.0, 0.0, 1.5]]), torch.tensor([[-0.5]])]
    # sub-disc 1: max(0, 1 - [2, .5, -1]) = [0, .5, 2] -> 2.5/3; max(0, 1 + [-2, 0, 1.5]) = [0, 1, 2.5] -> 3.5/3
    # sub-disc 2: max(0, 1 - 0) = 1; max(0, 1 - 0.5) = 0.5
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(2.5 / 3 + 3.5 / 3 + 1.0 + 0.5)
    # G: -(mean([-2, 0, 1.5]) + (-0.5)) = -(-0.5/3 - 0.5)
    assert hinge_generator_loss(fake).item() == pytest.approx(0.5 / 3 + 0.5)
    # a confident discriminator (margins >= 1) costs nothing
    assert hinge_discriminator_loss(torch.full((2, 3), 1.5), torch.full((2, 3), -1.0)).item() == 0.0


# --- Wasserstein (Arjovsky et al. 2017) ---------------------------------------------------------

def test_wasserstein_losses_hand_computed():
    real = [torch.tensor([[1.0, 3.0]]), torch.tensor([[-2.0]])]
    fake = [torch.tensor([[0.0, -1.0]]), torch.tensor([[4.0]])]
    # critic: (mean fake - mean real) per sub-critic = (-0.5 - 2) + (4 - (-2)) = 3.5
    assert wasserstein_critic_loss(real, fake).item() == pytest.approx(3.5)
    # generator: -(mean fake) summed = -(-0.5 + 4) = -3.5
    assert wasserstein_generator_loss(fake).item() == pytest.approx(-3.5)


def test_adversarial_losses_accept_a_bare_tensor_and_validate_input():
    r, f = torch.tensor([[1.0, -1.0], [0.5, 2.0]]), torch.tensor([[0.0, 1.0], [-0.5, 3.0]])
    for d_loss in (nonsaturating_discriminator_loss, hinge_discriminator_loss, wasserstein_critic_loss):
        assert d_loss(r, f).item() == pytest.approx(d_loss([r], [f]).item())
        with pytest.raises(ValueError):
            d_loss([r, r], [f])
        with pytest.raises(ValueError):
            d_loss([torch.ones(2)], [torch.ones(3)])
        with pytest.raises(ValueError):
            d_loss([], [])
    for g_loss in (nonsaturating_generator_loss, hinge_generator_loss, wasserstein_generator_loss):
        assert g_loss(f).item() == pytest.approx(g_loss([f]).item())
        with pytest.raises(ValueError):
            g_loss([])


# --- WGAN-GP gradient penalty (Gulrajani et al. 2017, eq. 3) ------------------------------------

def _linear_critic(w: torch.Tensor):
    """D(x) = <w, x> per example: its input gradient is w everywhere."""
    return lambda x: x.reshape(x.shape[0], -1) @ w


def test_gradient_penalty_of_linear_critic_is_exact():
    torch.manual_seed(0)
    w_np = np.array([0.5, -2.0, 1.0, 3.0])
    w = torch.tensor(w_np, requires_grad=True)
    real = torch.randn(5, 1, 4, dtype=torch.float64)
    fake = torch.randn(5, 1, 4, dtype=torch.float64)
    norm = np.sqrt(np.sum(w_np**2))
    expected = 10.0 * (norm - 1.0) ** 2
    gp = gradient_penalty(_linear_critic(w), real, fake, weight=10.0, generator=torch.Generator().manual_seed(1))
    assert gp.item() == pytest.approx(expected, rel=1e-12)
    # differentiable w.r.t. the critic's parameters: d/dw lambda (||w|| - 1)^2 = 2 lambda (||w|| - 1) w / ||w||
    gp.backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * 10.0 * (norm - 1.0) * w_np / norm, rtol=1e-12)


def test_gradient_penalty_is_zero_for_unit_norm_critic():
    w = torch.tensor([0.6, 0.0, -0.8], dtype=torch.float64)  # ||w|| = 1
    gp = gradient_penalty(_linear_critic(w), torch.randn(3, 3, dtype=torch.float64),
                          torch.randn(3, 3, dtype=torch.float64), weight=10.0)
    assert gp.item() == pytest.approx(0.0, abs=1e-24)


def test_gradient_penalty_interpolates_per_example_with_given_eps():
    # D(x) = 0.5 ||x||^2 per example: gradient at xhat is xhat itself, so the norm reveals xhat
    real_np = np.array([[[1.0, 2.0, 2.0]], [[0.0, 3.0, 4.0]]])
    fake_np = np.array([[[-1.0, 0.0, 2.0]], [[6.0, 0.0, 0.0]]])
    eps_np = np.array([0.25, 1.0])
    real_t = torch.tensor(real_np, requires_grad=True)
    fake_t = torch.tensor(fake_np, requires_grad=True)
    gp = gradient_penalty(lambda x: 0.5 * (x**2).sum(dim=(1, 2)), real_t, fake_t, weight=2.0,
                          eps=torch.tensor(eps_np))
    x_hat = eps_np[:, None, None] * real_np + (1 - eps_np[:, None, None]) * fake_np
    norms = np.sqrt(np.sum(x_hat**2, axis=(1, 2)))  # [sqrt(0.25 + 0.25 + 4) , 5]
    expected = 2.0 * np.mean((norms - 1.0) ** 2)
    assert gp.item() == pytest.approx(expected, rel=1e-12)
    gp.backward()  # real and fake are detached: no gradient reaches them
    assert real_t.grad is None and fake_t.grad is None


def test_gradient_penalty_sums_sub_critics_and_score_maps():
    w1 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    w2 = torch.tensor([-3.0, 0.0], dtype=torch.float64)
    patches = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]], dtype=torch.float64)  # (T=2, n=3) score map
    x, y = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    gp = gradient_penalty(lambda z: [z @ w1, z @ w2], x, y, weight=1.0)
    assert gp.item() == pytest.approx((math.hypot(1.0 - 3.0, 2.0) - 1.0) ** 2, rel=1e-12)
    gp_map = gradient_penalty(lambda z: z @ patches, x, y, weight=1.0)  # gradient of the sum = row sums [3, 1]
    assert gp_map.item() == pytest.approx((math.hypot(3.0, 1.0) - 1.0) ** 2, rel=1e-12)


def test_gradient_penalty_default_eps_draws_uniform_per_example_from_generator():
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]], dtype=torch.float64)
    fake = torch.zeros_like(real)
    critic = lambda x: 0.5 * (x**2).sum(dim=1)  # noqa: E731
    a = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    b = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    assert a.item() == b.item()
    eps = torch.rand(3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert torch.all((eps >= 0) & (eps <= 1))
    assert a.item() == pytest.approx(gradient_penalty(critic, real, fake, eps=eps).item(), rel=1e-12)


def test_gradient_penalty_rejects_bad_input():
    c = _linear_critic(torch.ones(3))
    with pytest.raises(ValueError, match="shape"):
        gradient_penalty(c, torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="eps"):
        gradient_penalty(c, torch.zeros(2, 3), torch.zeros(2, 3), eps=torch.zeros(3))
    with pytest.raises(ValueError, match="weight"):
        gradient_penalty(c, torch.zeros(2, 3), torch.zeros(2, 3), weight=-1.0)


# --- WGAN weight clipping (Arjovsky et al. 2017, Algorithm 1) -----------------------------------

def test_clip_weights_clamps_every_parameter_in_place():
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    w_np = np.array([[0.5, -0.02, 0.005], [-0.3, 0.01, 0.0]])
    b_np = np.array([0.2, -0.009])
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(w_np))
        net[0].bias.copy_(torch.tensor(b_np))
        net[1].running_mean.fill_(5.0)
    weight_before = net[0].weight
    clip_weights_(net, c=0.01)
    np.testing.assert_allclose(net[0].weight.detach().numpy(),
                               [[0.01, -0.01, 0.005], [-0.01, 0.01, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(net[0].bias.detach().numpy(), [0.01, -0.009], rtol=1e-6)
    np.testing.assert_allclose(net[1].weight.detach().numpy(), [0.01, 0.01])  # BN gamma was 1
    assert torch.all(net[1].running_mean == 5.0)  # buffers are not parameters
    assert net[0].weight is weight_before and net[0].weight.requires_grad and net[0].weight.grad_fn is None
    with pytest.raises(ValueError):
        clip_weights_(net, c=0.0)


# --- Alahi, Sifringer & Stegmüller (2020), eqs. 16-17 --------------------------------------------

def _numpy_power_spectrogram(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT|^2 by hand: zero-pad n_fft//2 both sides, periodic Hann, frames every hop, rfft."""
    pad = np.pad(x, (n_fft // 2, n_fft // 2))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    n_frames = 1 + len(x) // hop
    frames = np.stack([pad[t * hop: t * hop + n_fft] * window for t in range(n_frames)], axis=1)
    return np.abs(np.fft.rfft(frames, axis=0)) ** 2  # (K, W)


def test_power_spectrogram_loss_matches_eq16_by_hand():
    rng = np.random.default_rng(16)
    y_np = rng.standard_normal((2, 1, 300))
    y_hat_np = y_np + 0.3 * rng.standard_normal((2, 1, 300))
    n_fft, hop = 64, 16
    per_example = []
    for b in range(2):
        p_t = _numpy_power_spectrogram(y_np[b, 0], n_fft, hop)
        p_g = _numpy_power_spectrogram(y_hat_np[b, 0], n_fft, hop)
        k, w = p_t.shape
        assert (k, w) == (33, 1 + 300 // 16)
        per_example.append(np.sum((p_t - p_g) ** 2) / (k * w))  # 1/(KW) || |X_t|^2 - |X_g|^2 ||_F^2
    got = power_spectrogram_loss(torch.from_numpy(y_hat_np), torch.from_numpy(y_np), n_fft=n_fft, hop_length=hop)
    assert got.item() == pytest.approx(np.mean(per_example), rel=1e-10)
    # the same on (batch, samples) and 1-D layouts; zero for identical signals
    got2d = power_spectrogram_loss(torch.from_numpy(y_hat_np[:, 0]), torch.from_numpy(y_np[:, 0]), n_fft, hop)
    assert got2d.item() == pytest.approx(got.item(), rel=1e-12)
    got1d = power_spectrogram_loss(torch.from_numpy(y_hat_np[1, 0]), torch.from_numpy(y_np[1, 0]), n_fft, hop)
    assert got1d.item() == pytest.approx(per_example[1], rel=1e-10)
    assert power_spectrogram_loss(torch.from_numpy(y_np), torch.from_numpy(y_np)).item() == 0.0


def test_power_spectrogram_loss_defaults_gradient_and_errors():
    rng = np.random.default_rng(17)
    y_np = rng.standard_normal(4096)
    # defaults: n_fft 2048, hop 512
    p_t = _numpy_power_spectrogram(y_np, 2048, 512)
    expected = np.mean(p_t**2)  # against silence
    y_hat = torch.zeros(1, 4096, dtype=torch.float64, requires_grad=True)
    loss = power_spectrogram_loss(y_hat, torch.from_numpy(y_np)[None])
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    loss.backward()  # finite gradient even at an all-zero estimate (zero there, since d|X|^2 = 0 at X = 0)
    assert torch.all(torch.isfinite(y_hat.grad))
    with pytest.raises(ValueError, match="shape"):
        power_spectrogram_loss(torch.zeros(1, 100), torch.zeros(1, 101))
    with pytest.raises(ValueError):
        power_spectrogram_loss(torch.zeros(1, 100), torch.zeros(1, 100), n_fft=0)


def test_content_loss_matches_eq17_and_freezes_the_extractor():
    # phi(x) = A x + b on (batch, 1, T=4) -> features (batch, 1, C=3)
    a_np = np.array([[1.0, 0.0, -1.0, 2.0], [0.5, 0.5, 0.0, 0.0], [0.0, -2.0, 1.0, 1.0]])
    b_np = np.array([0.1, -0.2, 0.3])
    phi = nn.Linear(4, 3).double()
    with torch.no_grad():
        phi.weight.copy_(torch.tensor(a_np))
        phi.bias.copy_(torch.tensor(b_np))
    phi.eval()
    x_t = np.array([[[1.0, 2.0, 0.0, -1.0]], [[0.0, 0.5, 1.0, 1.0]]])
    x_g = np.array([[[0.0, 2.0, 1.0, -1.0]], [[1.0, 0.0, 1.0, 0.0]]])
    f_t = x_t @ a_np.T + b_np
    f_g = x_g @ a_np.T + b_np
    c_ae, w_ae = 1, 3
    # per example 1/(C W) ||phi(x_t) - phi(x_g)||_F^2, then the batch mean
    expected = np.mean([np.sum((f_t[i] - f_g[i]) ** 2) / (c_ae * w_ae) for i in range(2)])
    y_hat = torch.tensor(x_g, requires_grad=True)
    y = torch.tensor(x_t, requires_grad=True)
    loss = content_loss(phi, y_hat, y)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    # the extractor receives no gradient, the generated input does: d/dx_g = -2/(B*C*W) A^T (f_t - f_g)
    assert phi.weight.grad is None and phi.bias.grad is None
    assert phi.weight.requires_grad  # the module itself is left as it was
    assert y.grad is None
    np.testing.assert_allclose(y_hat.grad.numpy(), -2.0 / (2 * 3) * (f_t - f_g) @ a_np, rtol=1e-12)


class _TwoFeatures(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2, bias=False)

    def forward(self, x):
        h = self.lin(x)
        return [h, torch.relu(h)]


def test_content_loss_sums_several_features_and_validates():
    net = _TwoFeatures().double()
    with torch.no_grad():
        net.lin.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
    net.eval()
    y = torch.tensor([[1.0, 2.0]], dtype=torch.float64)  # h = [3, -1], relu = [3, 0]
    y_hat = torch.tensor([[0.0, 1.0]], dtype=torch.float64)  # h = [1, -1], relu = [1, 0]
    expected = ((3 - 1) ** 2 + 0) / 2 + ((3 - 1) ** 2 + 0) / 2
    assert content_loss(net, y_hat, y).item() == pytest.approx(expected)
    net.train()
    with pytest.raises(ValueError, match="eval"):
        content_loss(net, y_hat, y)
    net.eval()
    with pytest.raises(ValueError, match="shape"):
        content_loss(net, y_hat, torch.zeros(1, 3, dtype=torch.float64))
