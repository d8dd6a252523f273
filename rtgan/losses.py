"""Training losses of the spectral-flatness HiFi-GAN super-resolution model.

Follows Coldenhoff & Ren (2021), "Music Super-resolution with Spectral
Flatness Loss and HiFi-GAN Discriminators", Sec. V:

* total discriminator loss ``L_total(D; G) = L_adv(D; G)``;
* total generator loss
  ``L_total(G; D) = lambda_adv L_adv(G; D) + lambda_flat L_flat(G) + L_time(G)``
  (here every term, including ``L_time``, has a weight; see
  :class:`LossWeights`), optionally plus the HiFi-GAN feature-matching loss.

The adversarial terms are the least-squares GAN losses (Mao et al. 2017) in
the form used by HiFi-GAN (Kong et al. 2020, eqs. 1-2): real target 1, fake
target 0.

Shapes: waveforms are ``(batch, samples)`` or ``(batch, 1, samples)``;
discriminator outputs are lists with one tensor of any shape
(typically ``(batch, n)``) per sub-discriminator.

Also offered for other model families: the non-saturating cross-entropy
(Goodfellow et al. 2014), hinge (Lim & Ye 2017) and Wasserstein (Arjovsky et
al. 2017) adversarial losses, the WGAN-GP gradient penalty (Gulrajani et al.
2017), WGAN weight clipping, and the power-spectrogram and content losses of
Alahi, Sifringer & Stegmüller (2020, eqs. 16-17).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "nonsaturating_discriminator_loss",
    "nonsaturating_generator_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
    "gradient_penalty",
    "clip_weights_",
    "feature_matching_loss",
    "time_mse",
    "spectral_flatness",
    "spectral_flatness_loss",
    "multi_resolution_stft_loss",
    "mel_l1_loss",
    "power_spectrogram_loss",
    "content_loss",
    "STFT_RESOLUTIONS",
    "LossWeights",
    "generator_loss",
]


def _check_nonempty(name: str, items: Sequence) -> None:
    if len(items) == 0:
        raise ValueError(f"{name} must contain at least one sub-discriminator output")


def lsgan_discriminator_loss(real: Sequence[Tensor], fake: Sequence[Tensor]) -> Tensor:
    """Least-squares discriminator loss summed over sub-discriminators.

    ``L_adv(D; G) = sum_k ( mean[(D_k(y) - 1)^2] + mean[D_k(G(x))^2] )``:
    Coldenhoff & Ren (2021) Sec. V-A (L2 adversarial loss), written with the
    HiFi-GAN / LSGAN convention (Kong et al. 2020 eq. 1; Mao et al. 2017):
    real outputs are pushed to 1, generated ones to 0. ``fake`` should come
    from a detached generator output when training D.

    Args:
        real: per sub-discriminator, ``D_k(y)`` for target audio (any shape,
            e.g. ``(batch, n_k)``).
        fake: per sub-discriminator, ``D_k(G(x))``, same length and shapes as
            ``real``.

    Returns:
        Scalar tensor (dimensionless).

    Raises:
        ValueError: empty lists, different numbers of sub-discriminators, or
            mismatched shapes between ``real[k]`` and ``fake[k]``.
    """
    _check_nonempty("real", real)
    if len(real) != len(fake):
        raise ValueError(
            f"real and fake have different numbers of sub-discriminators ({len(real)} vs {len(fake)})"
        )
    total = real[0].new_zeros(())
    for k, (dr, dg) in enumerate(zip(real, fake)):
        if dr.shape != dg.shape:
            raise ValueError(
                f"sub-discriminator {k}: real shape {tuple(dr.shape)} != fake shape {tuple(dg.shape)}"
            )
        total = total + torch.mean((dr - 1.0) ** 2) + torch.mean(dg**2)
    return total


def lsgan_generator_loss(fake: Sequence[Tensor]) -> Tensor:
    """Least-squares adversarial loss for the generator.

    ``L_adv(G; D) = sum_k mean[(D_k(G(x)) - 1)^2]`` (Kong et al. 2020 eq. 2;
    Mao et al. 2017), the generator term of Coldenhoff & Ren (2021) Sec. V-A.

    Args:
        fake: per sub-discriminator, ``D_k(G(x))`` (any shape).

    Returns:
        Scalar tensor (dimensionless).

    Raises:
        ValueError: ``fake`` is empty.
    """
    _check_nonempty("fake", fake)
    total = fake[0].new_zeros(())
    for dg in fake:
        total = total + torch.mean((dg - 1.0) ** 2)
    return total


Logits = Union[Tensor, Sequence[Tensor]]


def _as_outputs(name: str, outputs: Logits) -> list[Tensor]:
    """A bare tensor is one sub-discriminator's output; a sequence has one per sub-discriminator."""
    items = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    _check_nonempty(name, items)
    return items


def _paired_outputs(real: Logits, fake: Logits) -> list[tuple[Tensor, Tensor]]:
    real, fake = _as_outputs("real", real), _as_outputs("fake", fake)
    if len(real) != len(fake):
        raise ValueError(
            f"real and fake have different numbers of sub-discriminators ({len(real)} vs {len(fake)})"
        )
    for k, (dr, dg) in enumerate(zip(real, fake)):
        if dr.shape != dg.shape:
            raise ValueError(
                f"sub-discriminator {k}: real shape {tuple(dr.shape)} != fake shape {tuple(dg.shape)}"
            )
    return list(zip(real, fake))


def nonsaturating_discriminator_loss(real: Logits, fake: Logits) -> Tensor:
    """Cross-entropy GAN discriminator loss on logits (Goodfellow et al. 2014, eq. 1).

    With ``D_k = sigmoid(l_k)`` for logits ``l_k``:
    ``L_D = sum_k ( mean[-log sigmoid(l_k(y))] + mean[-log(1 - sigmoid(l_k(G(x))))] )
    = sum_k ( mean[softplus(-l_k(y))] + mean[softplus(l_k(G(x)))] )``,
    i.e. binary cross-entropy with real label 1 and fake label 0 (Alahi et al. 2020 eq. 2).
    Evaluated with ``softplus`` so that large logits neither overflow nor lose precision.

    Args:
        real: logits of the target audio, one tensor (any shape, e.g. ``(batch, n)``) or a
            sequence with one per sub-discriminator.
        fake: logits of the generated audio (detached when training D), same structure.

    Returns:
        Scalar tensor (nats).

    Raises:
        ValueError: empty input, different numbers of sub-discriminators or mismatched shapes.
    """
    pairs = _paired_outputs(real, fake)
    total = pairs[0][0].new_zeros(())
    for dr, dg in pairs:
        total = total + torch.mean(F.softplus(-dr)) + torch.mean(F.softplus(dg))
    return total


def nonsaturating_generator_loss(fake: Logits) -> Tensor:
    """Non-saturating GAN generator loss on logits (Goodfellow et al. 2014, Sec. 3).

    ``L_G = sum_k mean[-log sigmoid(l_k(G(x)))] = sum_k mean[softplus(-l_k(G(x)))]``, the
    ``-log D(G(z))`` form that keeps gradients strong while D wins (Alahi et al. 2020 eq. 4),
    instead of minimising ``log(1 - D(G(z)))``.

    Args:
        fake: logits of the generated audio, one tensor or one per sub-discriminator.

    Returns:
        Scalar tensor (nats).

    Raises:
        ValueError: ``fake`` is empty.
    """
    items = _as_outputs("fake", fake)
    total = items[0].new_zeros(())
    for dg in items:
        total = total + torch.mean(F.softplus(-dg))
    return total


def hinge_discriminator_loss(real: Logits, fake: Logits) -> Tensor:
    """Hinge GAN discriminator loss (Lim & Ye 2017, "Geometric GAN"; MelGAN, Kumar et al. 2019 eq. 1).

    ``L_D = sum_k ( mean[max(0, 1 - D_k(y))] + mean[max(0, 1 + D_k(G(x)))] )`` on raw (unbounded)
    discriminator outputs.

    Args:
        real: ``D_k(y)``, one tensor (any shape) or one per sub-discriminator.
        fake: ``D_k(G(x))`` (detached when training D), same structure.

    Returns:
        Scalar tensor (dimensionless).

    Raises:
        ValueError: empty input, different numbers of sub-discriminators or mismatched shapes.
    """
    pairs = _paired_outputs(real, fake)
    total = pairs[0][0].new_zeros(())
    for dr, dg in pairs:
        total = total + torch.mean(torch.relu(1.0 - dr)) + torch.mean(torch.relu(1.0 + dg))
    return total


def hinge_generator_loss(fake: Logits) -> Tensor:
    """Hinge GAN generator loss (Lim & Ye 2017; MelGAN, Kumar et al. 2019 eq. 2).

    ``L_G = -sum_k mean[D_k(G(x))]`` (no hinge on the generator side).

    Args:
        fake: ``D_k(G(x))``, one tensor or one per sub-discriminator.

    Returns:
        Scalar tensor (dimensionless).

    Raises:
        ValueError: ``fake`` is empty.
    """
    items = _as_outputs("fake", fake)
    total = items[0].new_zeros(())
    for dg in items:
        total = total - torch.mean(dg)
    return total


def wasserstein_critic_loss(real: Logits, fake: Logits) -> Tensor:
    """Wasserstein critic loss (Arjovsky, Chintala & Bottou 2017, Algorithm 1; Alahi et al. 2020 eq. 19).

    ``L_C = sum_k ( mean[D_k(G(x))] - mean[D_k(y)] )``: minimising it maximises the
    Kantorovich-Rubinstein estimate ``E[D(y)] - E[D(G(x))]`` of the Wasserstein-1 distance,
    valid only while the critic is kept (about) 1-Lipschitz, by :func:`clip_weights_` or
    :func:`gradient_penalty` (add it separately).

    Args:
        real: critic scores ``D_k(y)``, one tensor (any shape) or one per sub-critic.
        fake: critic scores ``D_k(G(x))`` (detached when training the critic), same structure.

    Returns:
        Scalar tensor (units of the critic output).

    Raises:
        ValueError: empty input, different numbers of sub-critics or mismatched shapes.
    """
    pairs = _paired_outputs(real, fake)
    total = pairs[0][0].new_zeros(())
    for dr, dg in pairs:
        total = total + torch.mean(dg) - torch.mean(dr)
    return total


def wasserstein_generator_loss(fake: Logits) -> Tensor:
    """Wasserstein generator loss (Arjovsky et al. 2017, Algorithm 1; Alahi et al. 2020 eq. 18).

    ``L_G = -sum_k mean[D_k(G(x))]``.

    Args:
        fake: critic scores ``D_k(G(x))``, one tensor or one per sub-critic.

    Returns:
        Scalar tensor (units of the critic output).

    Raises:
        ValueError: ``fake`` is empty.
    """
    items = _as_outputs("fake", fake)
    total = items[0].new_zeros(())
    for dg in items:
        total = total - torch.mean(dg)
    return total


def gradient_penalty(
    critic: Callable[[Tensor], Logits],
    real: Tensor,
    fake: Tensor,
    weight: float = 10.0,
    eps: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """WGAN-GP gradient penalty (Gulrajani et al. 2017, eq. 3 and Algorithm 1).

    ``L_GP = lambda * E_xhat[(||grad_xhat D(xhat)||_2 - 1)^2]`` with
    ``xhat = eps * y + (1 - eps) * G(x)``, ``eps ~ U[0, 1]`` drawn once per example, the norm
    taken over all non-batch axes of each example and the expectation a mean over the batch.
    The paper's ``lambda`` is 10. Real and fake are detached; the gradient is built with
    ``create_graph=True``, so the penalty back-propagates into the critic's parameters. A
    critic returning several tensors (sub-critics) or a score map ``(batch, n)`` is
    differentiated through the sum of all its scores; each example's score must depend on that
    example only (no batch normalisation, as the paper notes).

    Args:
        critic: callable mapping a batch like ``real`` to a tensor or a sequence of tensors,
            each with the batch on axis 0.
        real: target audio ``y``, ``(batch, ...)``, e.g. ``(batch, 1, samples)``.
        fake: generated audio ``G(x)``, same shape.
        weight: ``lambda`` (>= 0).
        eps: optional interpolation weights, shape ``(batch,)``, values in [0, 1]; drawn
            from ``U[0, 1)`` with ``generator`` when omitted.
        generator: random generator for ``eps`` (on the device of ``real``).

    Returns:
        Scalar tensor (``lambda`` times squared critic-output-per-input-amplitude units).

    Raises:
        ValueError: shapes differ, ``real`` has no batch axis, ``eps`` has the wrong shape,
            or ``weight < 0``.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real shape {tuple(real.shape)} != fake shape {tuple(fake.shape)}")
    if real.dim() < 1 or real.shape[0] == 0:
        raise ValueError(f"real must have a non-empty batch axis, got shape {tuple(real.shape)}")
    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight}")
    batch = real.shape[0]
    if eps is None:
        eps = torch.rand(batch, generator=generator, dtype=real.dtype, device=real.device)
    elif eps.shape != (batch,):
        raise ValueError(f"eps must have shape ({batch},), got {tuple(eps.shape)}")
    e = eps.to(dtype=real.dtype, device=real.device).reshape((batch,) + (1,) * (real.dim() - 1))
    x_hat = (e * real.detach() + (1.0 - e) * fake.detach()).requires_grad_(True)
    scores = _as_outputs("critic output", critic(x_hat))
    total_score = sum(s.sum() for s in scores)
    (grad,) = torch.autograd.grad(total_score, x_hat, create_graph=True)
    norms = torch.linalg.vector_norm(grad.reshape(batch, -1), dim=1)
    return weight * torch.mean((norms - 1.0) ** 2)


@torch.no_grad()
def clip_weights_(module: nn.Module, c: float = 0.01) -> None:
    """Clip every parameter of ``module`` to ``[-c, c]`` in place (WGAN weight clipping).

    Arjovsky et al. (2017), Algorithm 1: after each critic update,
    ``w <- clip(w, -c, c)`` for every critic parameter ``w``; the paper uses ``c = 0.01``.
    This keeps the critic in a compact set of functions, hence K-Lipschitz for some K.

    Args:
        module: the critic; all of ``module.parameters()`` are clipped, buffers are not.
        c: clipping bound (> 0, same units as the parameters).

    Raises:
        ValueError: ``c`` is not a finite positive number.
    """
    if not (0.0 < c < float("inf")):
        raise ValueError(f"c must be a finite positive number, got {c}")
    for p in module.parameters():
        p.clamp_(-c, c)


def feature_matching_loss(
    real_feats: Sequence[Sequence[Tensor]], fake_feats: Sequence[Sequence[Tensor]]
) -> Tensor:
    """HiFi-GAN feature-matching loss (Kong et al. 2020, eq. 4).

    ``L_FM = sum_k sum_i mean|D_k^i(y) - D_k^i(G(x))|`` over sub-discriminators
    ``k`` and their intermediate feature maps ``i``. The real features are
    detached, so only the generator receives gradients. (HiFi-GAN's weight
    of 2 is left to :attr:`LossWeights.feature_matching`.)

    Args:
        real_feats: per sub-discriminator, the list of feature maps of the
            target, e.g. ``(batch, C, T')`` or ``(batch, C, T', p)``.
        fake_feats: the same structure for the generated audio.

    Returns:
        Scalar tensor.

    Raises:
        ValueError: empty input, or the structures (number of
            sub-discriminators, number of maps, map shapes) differ.
    """
    _check_nonempty("real_feats", real_feats)
    if len(real_feats) != len(fake_feats):
        raise ValueError(
            f"real_feats and fake_feats have different numbers of sub-discriminators "
            f"({len(real_feats)} vs {len(fake_feats)})"
        )
    total: Optional[Tensor] = None
    for k, (fr_list, fg_list) in enumerate(zip(real_feats, fake_feats)):
        if len(fr_list) != len(fg_list):
            raise ValueError(
                f"sub-discriminator {k}: {len(fr_list)} real vs {len(fg_list)} fake feature maps"
            )
        for i, (fr, fg) in enumerate(zip(fr_list, fg_list)):
            if fr.shape != fg.shape:
                raise ValueError(
                    f"sub-discriminator {k}, feature map {i}: real shape {tuple(fr.shape)} "
                    f"!= fake shape {tuple(fg.shape)}"
                )
            term = torch.mean(torch.abs(fr.detach() - fg))
            total = term if total is None else total + term
    if total is None:
        raise ValueError("real_feats contains no feature maps")
    return total


def _check_pair(y_hat: Tensor, y: Tensor) -> None:
    if y_hat.shape != y.shape:
        raise ValueError(f"y_hat shape {tuple(y_hat.shape)} != y shape {tuple(y.shape)}")


def time_mse(y_hat: Tensor, y: Tensor) -> Tensor:
    """Time-domain loss ``L_time(G) = E[(x_G - x_D)^2]``.

    Coldenhoff & Ren (2021) Sec. V-B: mean squared error between generated
    and target waveforms, averaged over every element.

    Args:
        y_hat: generated waveform, any shape, e.g. ``(batch, 1, samples)``.
        y: target waveform of the same shape.

    Returns:
        Scalar tensor (squared amplitude units).

    Raises:
        ValueError: shapes differ.
    """
    _check_pair(y_hat, y)
    return torch.mean((y_hat - y) ** 2)


def _as_batch_waveform(x: Tensor, name: str) -> Tensor:
    if x.dim() == 1:
        return x.unsqueeze(0)
    if x.dim() == 2:
        return x
    if x.dim() == 3 and x.shape[1] == 1:
        return x[:, 0, :]
    raise ValueError(
        f"{name} must have shape (batch, samples) or (batch, 1, samples), got {tuple(x.shape)}"
    )


def spectral_flatness(
    x: Tensor,
    n_fft: int = 2048,
    hop_length: int = 512,
    amin: float = 1e-10,
    power: float = 2.0,
    center: bool = True,
    pad_mode: str = "constant",
) -> Tensor:
    """Differentiable spectral flatness per STFT frame.

    Coldenhoff & Ren (2021) Sec. V-C:
    ``SF(x)_t = exp(mean_w ln S(w, t)) / mean_w S(w, t)`` with
    ``S = max(|STFT(x)|^power, amin)``, i.e. the ratio of the geometric to the
    arithmetic mean over the ``n_fft // 2 + 1`` frequency bins (Johnston 1988).
    Values are in (0, 1]: 1 for a perfectly flat (white) spectrum, near 0 for
    a pure tone.

    The defaults reproduce ``librosa.feature.spectral_flatness(y=x)``
    exactly: a periodic Hann window of length ``n_fft``, ``center=True`` with
    **zero** padding of ``n_fft // 2`` samples on both sides (librosa's
    ``pad_mode="constant"`` default), no normalisation of the STFT, power 2
    and ``amin = 1e-10``. The power spectrum is computed as
    ``re^2 + im^2`` so that gradients stay finite at zero magnitude.

    Args:
        x: waveform ``(batch, samples)``, ``(batch, 1, samples)`` or
            ``(samples,)`` (treated as a batch of one); real floating tensor.
        n_fft: FFT size and window length in samples.
        hop_length: hop between frames in samples.
        amin: floor applied to ``|X|^power`` before the logarithm (> 0).
        power: exponent of the magnitude spectrogram (2 = power spectrum).
        center: pad ``n_fft // 2`` on each side so frame ``t`` is centred at
            sample ``t * hop_length``.
        pad_mode: padding mode for ``center=True`` (``"constant"`` = zeros,
            as librosa; ``"reflect"`` needs ``samples > n_fft // 2``).

    Returns:
        Tensor ``(batch, frames)`` with ``frames = 1 + samples // hop_length``
        when ``center=True``.

    Raises:
        ValueError: bad input shape, ``amin <= 0``, ``power <= 0`` or
            non-positive ``n_fft``/``hop_length``.
    """
    if amin <= 0:
        raise ValueError(f"amin must be strictly positive, got {amin}")
    if power <= 0:
        raise ValueError(f"power must be strictly positive, got {power}")
    if n_fft <= 0 or hop_length <= 0:
        raise ValueError(f"n_fft and hop_length must be positive, got {n_fft}, {hop_length}")
    wav = _as_batch_waveform(x, "x")
    window = torch.hann_window(n_fft, periodic=True, dtype=wav.dtype, device=wav.device)
    spec = torch.stft(
        wav,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=n_fft,
        window=window,
        center=center,
        pad_mode=pad_mode,
        normalized=False,
        onesided=True,
        return_complex=True,
    )  # (batch, n_fft // 2 + 1, frames)
    power_spec = spec.real**2 + spec.imag**2
    if power == 2.0:
        s = power_spec
    else:
        # |X|^p = (|X|^2)^(p/2); the inner clamp keeps the gradient finite at 0.
        s = torch.clamp(power_spec, min=torch.finfo(power_spec.dtype).tiny) ** (power / 2.0)
    s = torch.clamp(s, min=amin)
    gmean = torch.exp(torch.mean(torch.log(s), dim=-2))
    amean = torch.mean(s, dim=-2)
    return gmean / amean


def spectral_flatness_loss(y_hat: Tensor, y: Tensor, **stft_kwargs) -> Tensor:
    """Spectral-flatness loss ``L_flat(G) = E[(SF(x_G) - SF(x_D))^2]``.

    Coldenhoff & Ren (2021) Sec. V-C: squared difference of the per-frame
    spectral flatness (:func:`spectral_flatness`) of generated and target
    audio, averaged over batch and frames.

    Args:
        y_hat: generated waveform ``(batch, samples)`` or ``(batch, 1, samples)``.
        y: target waveform of the same shape.
        **stft_kwargs: forwarded to :func:`spectral_flatness` (``n_fft``,
            ``hop_length``, ``amin``, ``power``, ``center``, ``pad_mode``).

    Returns:
        Scalar tensor (dimensionless).

    Raises:
        ValueError: shapes differ or are invalid for :func:`spectral_flatness`.
    """
    _check_pair(y_hat, y)
    return torch.mean((spectral_flatness(y_hat, **stft_kwargs) - spectral_flatness(y, **stft_kwargs)) ** 2)


#: ``(n_fft, hop_length, win_length)`` of the multi-resolution STFT loss at 48 kHz: the
#: three resolutions of Yamamoto et al. (2020) at 24 kHz, windows and hops doubled.
STFT_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((1024, 100, 480), (2048, 240, 1200), (4096, 480, 2400))

#: Magnitude floor of the log-magnitude terms: Parallel WaveGAN's reference implementation
#: (Yamamoto et al. 2020; ``stft_loss.py``) clamps the power ``re^2 + im^2`` at 1e-7, i.e. the
#: magnitude at ``sqrt(1e-7)`` = 3.16e-4. For a full-scale (+-1) signal and these unnormalised
#: Hann STFTs that is white noise near -92 dBFS (480-sample window) to -100 dBFS (2400): about
#: 16-bit quantisation noise, so bins below what a 16-bit file can hold weigh nothing. (rtgan
#: clamped the magnitude itself at 1e-7 until 2026-12-04, a floor 70 dB lower than the reference.)
_MAG_FLOOR = 1e-7 ** 0.5


def multi_resolution_stft_loss(
    y_hat: Tensor, y: Tensor, resolutions: Sequence[tuple[int, int, int]] = STFT_RESOLUTIONS
) -> tuple[Tensor, Tensor]:
    """Multi-resolution STFT loss of Parallel WaveGAN (Yamamoto, Song & Kim 2020, eqs. 1-4).

    For each resolution ``m`` (FFT size, hop, Hann window length) with magnitudes
    ``S = |STFT(y)|`` and ``S_hat = |STFT(y_hat)|`` (:func:`rtgan.dsp.stft_magnitude`):

    * spectral convergence (eq. 2): ``L_sc = ||S - S_hat||_F / ||S||_F``;
    * log STFT magnitude (eq. 3): ``L_mag = mean |log S - log S_hat|`` (natural log, L1 over
      every bin and frame);

    and (eq. 4) ``L_mr = 1/M sum_m (L_sc + L_mag)``. Returned as the two averages
    ``(1/M sum L_sc, 1/M sum L_mag)`` so they can be logged apart; their sum is ``L_mr``.
    Both are level-invariant, so the quiet band above 8 kHz weighs as much per bin as the loud
    band below it (a time-domain MSE lets it stay dull). Powers are floored at 1e-7 (magnitudes at
    3.16e-4) as in the reference implementation.

    Args:
        y_hat: generated waveform ``(batch, samples)`` or ``(batch, 1, samples)``.
        y: target of the same shape.
        resolutions: ``(n_fft, hop_length, win_length)`` triples in samples.

    Returns:
        ``(L_sc, L_mag)``, scalar tensors (dimensionless).

    Raises:
        ValueError: shapes differ, or no resolution.
    """
    _check_pair(y_hat, y)
    if not resolutions:
        raise ValueError("need at least one STFT resolution")
    from .dsp import stft_magnitude

    y_hat, y = _as_batch_waveform(y_hat, "y_hat"), _as_batch_waveform(y, "y")
    sc = mag = y.new_zeros(())
    for n_fft, hop, win in resolutions:
        s_hat = stft_magnitude(y_hat, n_fft, hop, win, floor=_MAG_FLOOR)
        s = stft_magnitude(y, n_fft, hop, win, floor=_MAG_FLOOR)
        sc = sc + torch.linalg.vector_norm(s - s_hat) / torch.linalg.vector_norm(s)
        mag = mag + torch.mean(torch.abs(torch.log(s) - torch.log(s_hat)))
    return sc / len(resolutions), mag / len(resolutions)


def mel_l1_loss(y_hat: Tensor, y: Tensor, sample_rate: int = 48000, n_fft: int = 2048, hop_length: int = 480,
                n_mels: int = 128) -> Tensor:
    """Mel-spectrogram loss of HiFi-GAN (Kong et al. 2020, eq. 3).

    ``L_mel = mean |log M(y) - log M(y_hat)|``: L1 between natural-log mel magnitude
    spectrograms (:func:`rtgan.dsp.log_mel`, floor 1e-5, Slaney filters over 0 to Nyquist).
    HiFi-GAN uses n_fft 1024, hop 256, 80 bands at 22.05 kHz; the defaults here keep its
    ~21 ms frames at 48 kHz with 128 bands.

    Raises:
        ValueError: shapes differ.
    """
    _check_pair(y_hat, y)
    from .dsp import log_mel

    kw = dict(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
    return torch.mean(torch.abs(log_mel(_as_batch_waveform(y, "y"), **kw) - log_mel(_as_batch_waveform(y_hat, "y_hat"), **kw)))


def _power_spectrogram(wav: Tensor, n_fft: int, hop_length: int) -> Tensor:
    """``|STFT(x)|^2`` as ``re^2 + im^2`` (finite gradient at 0), ``(batch, n_fft//2 + 1, frames)``.

    The STFT convention of :mod:`rtgan.dsp`: periodic Hann window of ``n_fft`` samples,
    ``center=True`` with ``n_fft // 2`` zeros on each side, no normalisation.
    """
    if n_fft <= 0 or hop_length <= 0:
        raise ValueError(f"n_fft and hop_length must be positive, got {n_fft}, {hop_length}")
    window = torch.hann_window(n_fft, periodic=True, dtype=wav.dtype, device=wav.device)
    spec = torch.stft(wav, n_fft=n_fft, hop_length=hop_length, win_length=n_fft, window=window,
                      center=True, pad_mode="constant", normalized=False, onesided=True, return_complex=True)
    return spec.real**2 + spec.imag**2


#: STFT scalings of :func:`power_spectrogram_loss`: the divisor of the STFT for a periodic Hann
#: window ``w`` of ``n_fft`` samples (the power spectrogram is divided by its square)
FREQ_SCALES = ("none", "window", "energy", "fft")


def _stft_divisor(scale: str, n_fft: int) -> float:
    """The number :func:`power_spectrogram_loss` divides the STFT by under ``scale`` (see there)."""
    if scale == "none":
        return 1.0
    if scale == "fft":
        return math.sqrt(n_fft)
    w = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    if scale == "window":
        return float(w.sum())
    if scale == "energy":
        return math.sqrt(float((w ** 2).sum()))
    raise ValueError(f"power_spectrogram_loss: scale must be one of {', '.join(FREQ_SCALES)}, got {scale!r}")


def power_spectrogram_loss(y_hat: Tensor, y: Tensor, n_fft: int = 2048, hop_length: int = 512,
                           scale: str = "none") -> Tensor:
    """Power-spectrogram distance of Alahi, Sifringer & Stegmüller (2020), eq. (16).

    ``L_freq = 1/(K W) || |X_t|^2 - |X_g|^2 ||_F^2`` (Sec. IV-I), with ``X`` the STFT of
    ``x`` on ``K`` frequency bins and ``W`` time frames, ``x_t = y`` the target and
    ``x_g = y_hat`` the generated audio: the mean squared difference of the power
    spectrograms, per example; averaged over the batch here (the paper writes every loss for
    a single sample). The paper weights it by ``lambda_f = 10`` (Sec. V-B, eq. 21).

    STFT parameters: the paper gives none (no FFT size, hop or window). Here: periodic Hann
    window of ``n_fft`` samples, ``center=True`` with zero padding of ``n_fft // 2`` on each
    side, no normalisation (the :mod:`rtgan.dsp` convention), so ``K = n_fft // 2 + 1`` and
    ``W = 1 + samples // hop_length``. The defaults 2048 / 512 are those of
    :func:`rtgan.metrics.lsd`, which implements the paper's eq. (25) "using the same
    convention" as eq. (16).

    Args:
        y_hat: generated waveform ``(batch, samples)``, ``(batch, 1, samples)`` or ``(samples,)``.
        y: target waveform of the same shape.
        n_fft: FFT size and window length in samples.
        hop_length: hop between frames in samples.
        scale: what the STFT ``X`` is divided by before squaring (so the loss by its fourth
            power), for a Hann window ``w``: ``"none"`` (default, the behaviour above), ``"window"``
            (``sum w``: a sinusoid of amplitude ``a`` peaks at ``a / 2``), ``"energy"``
            (``sqrt(sum w^2)``: white noise of variance ``s^2`` has ``E |X|^2 = s^2``, an
            orthonormal-like scaling), ``"fft"`` (``sqrt(n_fft)``, ``torch.stft(normalized=True)``).
            On seed-001 pair crops (8192 samples at 16 kHz, RMS ~0.01-0.02) ``"energy"`` puts
            ``10 L_freq`` at the level of ``L_time`` (see
            :class:`rtgan.models.xfer_training.XferTrainConfig`'s ``freq_scale``); ``"none"`` puts
            it ~10^5-10^6 times higher. The ratio of the two still grows with the signal level
            squared (``L_freq`` is amplitude^4, ``L_time`` amplitude^2).

    Returns:
        Scalar tensor in squared power-spectrum units (amplitude^4; the unnormalised STFT
        makes it grow with ``n_fft``, and it is not level-invariant).

    Raises:
        ValueError: shapes differ or are invalid, non-positive ``n_fft``/``hop_length``, or an
            unknown ``scale``.
    """
    _check_pair(y_hat, y)
    div = _stft_divisor(scale, n_fft) if n_fft > 0 else 1.0
    p_hat = _power_spectrogram(_as_batch_waveform(y_hat, "y_hat"), n_fft, hop_length)
    p = _power_spectrogram(_as_batch_waveform(y, "y"), n_fft, hop_length)
    if div != 1.0:
        p_hat, p = p_hat / div ** 2, p / div ** 2
    return torch.mean((p - p_hat) ** 2)


def content_loss(extractor: nn.Module, y_hat: Tensor, y: Tensor) -> Tensor:
    """Content loss on a frozen network's features, Alahi, Sifringer & Stegmüller (2020), eq. (17).

    ``L_ae = 1/(C_ae W_ae) || phi(x_t) - phi(x_g) ||_F^2`` (Sec. IV-I), with ``phi`` the
    ``C_ae x W_ae`` bottleneck of a pretrained autoencoder, ``x_t = y`` and ``x_g = y_hat``:
    the mean squared (L2) difference of the features, per example; averaged over the batch
    here. If ``extractor`` returns several feature tensors, the mean squared differences are
    summed over them (one tensor, as in the paper, gives eq. 17 exactly). The paper weights it
    by ``lambda_ae = 0.1`` (Sec. V-B, eq. 22). After Johnson, Alahi & Fei-Fei (2016).

    The extractor stays frozen: it is run with detached copies of its parameters
    (:func:`torch.func.functional_call`), so they receive no gradient whatever their
    ``requires_grad``, while ``y_hat`` does; the target's features are computed without a
    graph. The module is not modified.

    Args:
        extractor: feature network ``phi`` in eval mode, mapping a waveform batch like ``y``
            to a tensor or a list/tuple of tensors.
        y_hat: generated waveform, e.g. ``(batch, 1, samples)``.
        y: target waveform of the same shape.

    Returns:
        Scalar tensor (squared feature units).

    Raises:
        ValueError: shapes differ; ``extractor`` is in training mode; it returns no tensor,
            or different numbers/shapes of features for ``y_hat`` and ``y``.
    """
    _check_pair(y_hat, y)
    if extractor.training:
        raise ValueError("extractor must be frozen in eval mode (call extractor.eval())")
    frozen = {name: p.detach() for name, p in extractor.named_parameters()}
    frozen.update(dict(extractor.named_buffers()))
    feats_hat = _as_outputs("extractor output", torch.func.functional_call(extractor, frozen, (y_hat,)))
    with torch.no_grad():
        feats = _as_outputs("extractor output", torch.func.functional_call(extractor, frozen, (y,)))
    if len(feats) != len(feats_hat):
        raise ValueError(f"extractor returned {len(feats_hat)} features for y_hat but {len(feats)} for y")
    total = feats_hat[0].new_zeros(())
    for i, (f_hat, f) in enumerate(zip(feats_hat, feats)):
        if f_hat.shape != f.shape:
            raise ValueError(f"feature {i}: y_hat shape {tuple(f_hat.shape)} != y shape {tuple(f.shape)}")
        total = total + torch.mean((f - f_hat) ** 2)
    return total


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator loss terms (Coldenhoff & Ren 2021 Sec. V).

    Defaults are the paper's best run, ``lambda_adv = lambda_flat = 1e-3``
    (Sec. VII-C), with ``L_time`` at weight 1 and no feature matching, multi-resolution
    STFT or mel term (the ``paper`` recipe of :mod:`rtgan.training.config`).

    Attributes:
        adv: ``lambda_adv`` for the LSGAN generator loss.
        flat: ``lambda_flat`` for the spectral-flatness loss.
        time: weight of the time-domain MSE (1 in the paper).
        feature_matching: weight of the HiFi-GAN feature-matching loss
            (HiFi-GAN uses 2; not used by Coldenhoff & Ren).
        stft: weight of the multi-resolution STFT loss ``L_sc + L_mag``
            (:func:`multi_resolution_stft_loss`; Yamamoto et al. 2020).
        mel: weight of the mel L1 loss (:func:`mel_l1_loss`; HiFi-GAN uses 45).

    Raises:
        ValueError: a weight is negative or not finite.
    """

    adv: float = 1e-3
    flat: float = 1e-3
    time: float = 1.0
    feature_matching: float = 0.0
    stft: float = 0.0
    mel: float = 0.0

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if not (float(value) >= 0.0 and float(value) != float("inf")):
                raise ValueError(f"LossWeights.{key} must be a finite number >= 0, got {value!r}")


def generator_loss(
    y_hat: Tensor,
    y: Tensor,
    fake_logits: Optional[Sequence[Tensor]],
    weights: LossWeights = LossWeights(),
    fake_feats: Optional[Sequence[Sequence[Tensor]]] = None,
    real_feats: Optional[Sequence[Sequence[Tensor]]] = None,
    time_view: Optional[Callable[[Tensor], Tensor]] = None,
    **stft_kwargs,
) -> tuple[Tensor, dict[str, float]]:
    """Total generator loss of Coldenhoff & Ren (2021) Sec. V.

    ``L = adv * L_adv(G; D) + flat * L_flat(G) + time * L_time(G)
    + feature_matching * L_FM + stft * (L_sc + L_mag) + mel * L_mel``, with
    :func:`lsgan_generator_loss`, :func:`spectral_flatness_loss`, :func:`time_mse`,
    :func:`feature_matching_loss`, :func:`multi_resolution_stft_loss` and
    :func:`mel_l1_loss` (the last two computed only when their weight is > 0).

    Terms whose weight is 0 are still evaluated for logging when their inputs
    are available, but without building an autograd graph; a term whose
    inputs are missing is reported as 0.0. So e.g. a pre-training phase may
    pass ``fake_logits=None`` with ``weights.adv == 0``, and a run with
    ``flat == 0`` still logs the spectral-flatness loss (as in Coldenhoff &
    Ren Fig. 5).

    Args:
        y_hat: generated waveform ``(batch, 1, samples)`` or ``(batch, samples)``.
        y: target waveform of the same shape.
        fake_logits: discriminator outputs ``D_k(G(x))`` per sub-discriminator.
        weights: the loss weights.
        fake_feats: discriminator feature maps of ``y_hat`` (needed when
            ``weights.feature_matching > 0``).
        real_feats: discriminator feature maps of ``y`` (same condition).
        time_view: a linear filter applied to both waveforms before ``L_time`` (shape kept),
            e.g. a low-pass that keeps the MSE to the band the input carries; ``None``: the
            whole waveform, as in the seed.
        **stft_kwargs: forwarded to :func:`spectral_flatness`.

    Returns:
        ``(total, terms)``: ``total`` is a scalar tensor with gradients;
        ``terms`` maps ``"adv"``, ``"flat"``, ``"time"``, ``"fm"``, and when
        weighted ``"sc"``, ``"mag"``, ``"mel"`` (unweighted values) and ``"total"``
        to Python floats for logging.

    Raises:
        ValueError: shapes differ; ``weights.adv > 0`` without logits; or
            ``weights.feature_matching > 0`` without both feature lists.
    """
    _check_pair(y_hat, y)
    zero = y_hat.new_zeros(())

    def _maybe_grad(weight: float, fn, *args, **kwargs) -> Tensor:
        if weight > 0:
            return fn(*args, **kwargs)
        with torch.no_grad():  # logged only, no graph kept
            return fn(*args, **kwargs)

    view = time_view or (lambda t: t)
    l_time = _maybe_grad(weights.time, lambda a, b: time_mse(view(a), view(b)), y_hat, y)
    l_flat = _maybe_grad(weights.flat, spectral_flatness_loss, y_hat, y, **stft_kwargs)
    if fake_logits:
        l_adv = _maybe_grad(weights.adv, lsgan_generator_loss, fake_logits)
    elif weights.adv > 0:
        raise ValueError("weights.adv > 0 but no discriminator outputs (fake_logits) were given")
    else:
        l_adv = zero
    if fake_feats is not None and real_feats is not None:
        l_fm = _maybe_grad(weights.feature_matching, feature_matching_loss, real_feats, fake_feats)
    elif weights.feature_matching > 0:
        raise ValueError("weights.feature_matching > 0 needs both fake_feats and real_feats")
    else:
        l_fm = zero
    total = (
        weights.adv * l_adv
        + weights.flat * l_flat
        + weights.time * l_time
        + weights.feature_matching * l_fm
    )
    terms = {
        "adv": float(l_adv.detach()),
        "flat": float(l_flat.detach()),
        "time": float(l_time.detach()),
        "fm": float(l_fm.detach()),
    }
    if weights.stft > 0:
        l_sc, l_mag = multi_resolution_stft_loss(y_hat, y)
        total = total + weights.stft * (l_sc + l_mag)
        terms.update(sc=float(l_sc.detach()), mag=float(l_mag.detach()))
    if weights.mel > 0:
        l_mel = mel_l1_loss(y_hat, y)
        total = total + weights.mel * l_mel
        terms["mel"] = float(l_mel.detach())
    terms["total"] = float(total.detach())
    return total, terms
