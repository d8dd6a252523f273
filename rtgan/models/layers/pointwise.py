"""Per-frame layers: activations and per-channel normalisation, which stream with no state.

A layer that computes output frame ``t`` from input frame ``t`` alone (any function of the
channels of that one frame, the same for every ``t``) needs no cache, adds no delay and
leaves :class:`.reach.Reach` unchanged: its streaming form is its offline form applied to
the block. Leaky ReLU, tanh, Snake (Ziyin, Hartwig & Ueda 2020; used by BigVGAN, Lee et al.
2022), a per-channel affine, 1x1 convs and normalisations with *fixed* statistics (an
eval-mode batch norm, folded into a :class:`ChannelAffine`; weight norm, which only
reparametrises a conv's weight) are such layers.

Normalisations whose statistics are taken over time (instance norm, group norm, layer norm
over frames, a batch norm in training mode) are not: every output frame depends on every
input frame of the tensor, so offline and streamed outputs differ and no finite cache can
fix it. :class:`Pointwise` refuses the usual ones; the tests show that the perturbation
check of a layer's reach (perturb one input frame, see which output frames change) catches
an instance norm.
"""
from __future__ import annotations

import torch
from torch import nn

from .cached import StateCursor
from .reach import Reach

#: Module types whose output frame depends on other frames (statistics over time, or a
#: kernel wider than one frame); :class:`Pointwise` refuses them.
NOT_POINTWISE = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def check_pointwise(module: nn.Module) -> None:
    """Refuse modules (or submodules) known to mix frames.

    A guard against the common mistakes, not a proof: instance/batch/group/layer norms and
    ``nn.Linear`` (it mixes the last axis, time) and convolutions whose kernel, stride or
    dilation is not 1. The perturbation test of a
    layer's reach is the proof.

    Raises:
        ValueError: naming the offending submodule.
    """
    for name, m in module.named_modules():
        where = name or type(module).__name__
        if isinstance(m, NOT_POINTWISE):
            raise ValueError(f"{where} ({type(m).__name__}) normalises over time or batch, so it is not per-frame; "
                             "use a ChannelAffine (ChannelAffine.from_batchnorm for an eval-mode batch norm)")
        if isinstance(m, nn.Linear):
            raise ValueError(f"{where} (Linear) acts on the last axis, which is time in (batch, channels, frames)")
        if isinstance(m, nn.modules.conv._ConvNd) and any(v != 1 for v in (*m.kernel_size, *m.stride, *m.dilation)):
            raise ValueError(f"{where} ({type(m).__name__}) reads more than one frame")


class Pointwise(nn.Module):
    """Wrap a per-frame module: ``(batch, C, n)`` -> ``(batch, C', n)``, frame by frame.

    :meth:`stream` applies the module to the block (no state, delay unchanged) and
    :meth:`reach` returns its argument.

    Raises:
        ValueError: from :func:`check_pointwise`.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        check_pointwise(module)
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def stream(self, x: torch.Tensor, delay: int, cur: StateCursor) -> tuple[torch.Tensor, int]:
        """The offline form on the block; no state is taken, the delay is unchanged."""
        return self.module(x), delay

    def reach(self, r: Reach) -> Reach:
        """Unchanged: frame ``t`` reads frame ``t`` only."""
        return r.pointwise()


class Snake1d(nn.Module):
    """Snake activation ``x + sin(alpha * x)**2 / alpha`` with a learned ``alpha`` per channel.

    Ziyin, Hartwig & Ueda (2020, "Neural networks fail to learn periodic functions and how to
    fix it"). Input and output ``(batch, channels, frames)``; ``alpha`` has shape
    ``(1, channels, 1)`` and the division uses ``alpha + eps`` (no infinity at ``alpha = 0``).
    Per frame: wrap it in :class:`Pointwise` or call it directly in a stream.
    """

    def __init__(self, channels: int, alpha: float = 1.0, eps: float = 1e-9) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.full((1, channels, 1), float(alpha)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.sin(self.alpha * x).pow(2) / (self.alpha + self.eps)


class ChannelAffine(nn.Module):
    """Per-channel scale and shift ``y = scale_c * x + shift_c`` on ``(batch, channels, frames)``.

    The per-frame normalisation: any normalisation with fixed statistics folds into it
    (:meth:`from_batchnorm`). Parameters ``scale`` (ones) and ``shift`` (zeros), each
    ``(1, channels, 1)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, channels, 1))
        self.shift = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift

    @classmethod
    @torch.no_grad()
    def from_batchnorm(cls, bn: nn.BatchNorm1d) -> "ChannelAffine":
        """The eval-mode function of ``bn`` (its running statistics and affine parameters).

        Raises:
            ValueError: ``bn`` tracks no running statistics (it always normalises over the batch).
        """
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError("a batch norm without running statistics cannot be folded")
        out = cls(bn.num_features)
        scale = torch.rsqrt(bn.running_var + bn.eps)
        shift = -bn.running_mean * scale
        if bn.affine:
            scale, shift = scale * bn.weight, shift * bn.weight + bn.bias
        out.scale.copy_(scale[None, :, None])
        out.shift.copy_(shift[None, :, None])
        return out
