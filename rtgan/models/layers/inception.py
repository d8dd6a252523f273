"""1-D inception module with dimensionality reduction (Szegedy et al. 2015).

As used in the generators of Kim & Sathe (2019) and Alahi, Sifringer & Stegmüller (2020,
Sec. IV-D): parallel branches with kernels 3/9/27/81 whose filter counts keep the ratio
24/24/8/8, each preceded by a 1x1 bottleneck conv with ``C_temp`` filters, a fraction of the
branch's filters. The four 1x1 reductions read the same input, so they run as one 1x1 conv
whose output is split (mathematically identical, fewer calls).
"""
from __future__ import annotations

import torch
from torch import nn

from .cached import StateCursor, with_history
from .conv import PaddedConv1d
from .reach import Reach


def split_filters(total: int, ratios: tuple[int, ...]) -> tuple[int, ...]:
    """Split ``total`` filters over branches in proportion to ``ratios`` (each >= 1).

    Rounding error goes to the first branch, so the parts always sum to ``total``.

    Raises:
        ValueError: if ``total`` is smaller than the number of branches.
    """
    if total < len(ratios):
        raise ValueError(f"{total} filters cannot feed {len(ratios)} branches")
    s = sum(ratios)
    parts = [max(1, (total * q) // s) for q in ratios]
    parts[0] += total - sum(parts)
    if parts[0] < 1:
        raise ValueError(f"cannot split {total} filters as {ratios}")
    return tuple(parts)


class Inception1d(nn.Module):
    """Inception block: ``(batch, in_channels, frames)`` -> ``(batch, out_channels, frames)``.

    Args:
        in_channels: input channels.
        out_channels: total filters over all branches, split by ``ratios``.
        kernel_sizes: one kernel size per branch (paper: 3, 9, 27, 81).
        ratios: filter ratio per branch (paper: 24/24/8/8).
        bottleneck: ``C_temp`` as a fraction of each branch's filters (>= 1 channel).
        mode: ``"causal"`` or ``"centered"`` zero padding (see :func:`conv_padding`).
        negative_slope: leaky ReLU slope after the bottleneck.
        bias: whether the convs have biases.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_sizes: tuple[int, ...] = (3, 9, 27, 81),
                 ratios: tuple[int, ...] = (24, 24, 8, 8), bottleneck: float = 0.5, mode: str = "centered",
                 negative_slope: float = 0.2, bias: bool = True) -> None:
        super().__init__()
        if len(kernel_sizes) != len(ratios):
            raise ValueError("kernel_sizes and ratios must have the same length")
        self.branch_filters = split_filters(out_channels, ratios)
        self.temp_channels = tuple(max(1, int(round(f * bottleneck))) for f in self.branch_filters)
        self.reduce = nn.Conv1d(in_channels, sum(self.temp_channels), 1, bias=bias)
        self.act = nn.LeakyReLU(negative_slope)
        self.branches = nn.ModuleList(
            PaddedConv1d(t, f, k, mode, bias=bias) for t, f, k in zip(self.temp_channels, self.branch_filters, kernel_sizes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.act(self.reduce(x))
        parts = torch.split(z, self.temp_channels, dim=1)
        return torch.cat([branch(p) for branch, p in zip(self.branches, parts)], dim=1)

    def stream(self, x: torch.Tensor, delay: int, cur: StateCursor,
               act: nn.Module | None = None) -> tuple[torch.Tensor, int]:
        """Streaming form of :meth:`forward` (see :mod:`.cached`).

        The branches read channel groups of the same bottleneck output ``z``, so one cache of
        ``z`` serves them all. Branch ``i`` (kernel ``k_i``, right padding ``r_i``) would be
        late by ``r_i`` frames; it reads a window that ends ``max(r) - r_i`` frames earlier
        instead, so every branch comes out late by ``max(r)`` and no delay line is needed
        before the concatenation. Cache: ``max_i(k_i - 1 + max(r) - r_i)`` frames of ``z``.

        ``act``, an elementwise activation to apply to the output, is applied per branch
        before the concatenation (the same numbers; ONNX Runtime fuses it into each conv).
        """
        z = self.act(self.reduce(x))
        n = z.shape[-1]
        lags = [self._lookahead - b.padding[1] for b in self.branches]
        spans = [(b.conv.kernel_size[0] - 1) * b.conv.dilation[0] for b in self.branches]
        z = with_history(z, self._memory, cur)
        outs = []
        for branch, part, lag, span in zip(self.branches, torch.split(z, self.temp_channels, dim=1), lags, spans):
            start = self._memory - span - lag
            if start or lag:
                part = part[..., start:start + n + span]
            y = branch.conv(part)
            outs.append(y if act is None else act(y))
        return torch.cat(outs, dim=1), delay + self._lookahead

    @property
    def _lookahead(self) -> int:
        return max(b.padding[1] for b in self.branches)

    @property
    def _memory(self) -> int:
        return max((b.conv.kernel_size[0] - 1) * b.conv.dilation[0] + self._lookahead - b.padding[1]
                   for b in self.branches)

    def reach(self, r: Reach) -> Reach:
        """Bounds after the block: the widest branch decides (1x1 convs read one frame)."""
        out = self.branches[0].reach(r)
        for branch in self.branches[1:]:
            out = out.merge(branch.reach(r))
        return out


def inception_unet(blocks: int, filters, make, skips: bool) -> tuple[nn.ModuleList, "Inception1d", nn.ModuleList]:
    """The down path, bottleneck and up path of Kim & Sathe's inception U-Net (seed 001 Sec. IV-D).

    Down block ``d = 0..B-1``: ``make(c_in, F_d)`` then (in the model's forward) a superpixel
    by 2, so the next block reads ``2 F_d`` channels; the bottleneck: ``make(2 F_{B-1}, F_B)``;
    up block ``d = B-1..0``: ``make(c_in (+ 2 F_d with skips), 2 F_d)`` then a subpixel by 2, so
    the next reads ``F_d``. With ``skips`` each up block also reads the down block's ``2 F_d``
    superpixel channels (the generator, sr-hifigan); without, only the path from the bottleneck
    (the autoencoder of Sec. IV-H, ae-kimsathe).

    Args:
        blocks: ``B``.
        filters: ``d -> F_d`` for ``d = 0..B`` (``F_B``: the bottleneck's).
        make: ``(c_in, c_out) -> Inception1d``, the model's inception settings.
        skips: whether up blocks also read the skip connections.

    Returns:
        ``(down, bottleneck, up)``; the last up block writes ``F_0`` channels after its subpixel.
    """
    down, cin = nn.ModuleList(), 1
    for d in range(blocks):
        down.append(make(cin, filters(d)))
        cin = 2 * filters(d)
    bottleneck = make(cin, filters(blocks))
    up, cin = nn.ModuleList(), filters(blocks)
    for d in reversed(range(blocks)):
        up.append(make(cin + (2 * filters(d) if skips else 0), 2 * filters(d)))
        cin = filters(d)
    return down, bottleneck, up
