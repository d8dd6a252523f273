"""Training of seed 002's "-C" variants: sr16-unet-c, sr16-gan-c and sr16-wgan-c (a content loss).

The generators are registered in :mod:`.sr16` (the sr16-unet network under these names); this
module registers their recipes: the recipes of :mod:`.sr16_training` with the content term of
:class:`ContentLossMixin`, and their settings (:class:`ContentLossSettings` mixed into the
sr16 training configs).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .registry import register_recipe
from .sr16_training import (SR16GANRecipe, SR16GANTrainConfig, SR16TrainConfig, SR16UNetRecipe, SR16WGANRecipe,
                            SR16WGANTrainConfig)


# -- seed 002's "-C" variants: the same three models with a content loss -----------------------
#
# Seed 002 (Sec. III) trains each of its models a second time with a feature ("content") loss
# added to the generator's: the L2 distance of VGGish features (Hershey et al. 2017) of output
# and target. VGGish's weights cannot be fetched here, so the feature network is the project's
# own: the autoencoder of seed 001 (Alahi et al. 2020, Sec. IV-H, :mod:`.autoencoder`,
# ``ae-kimsathe``) pretrained on the corpus, whose bottleneck gives seed 001's content loss
# (eq. 17, :func:`rtgan.losses.content_loss`). The autoencoder is a frozen network of the recipe
# (:attr:`.recipe.Recipe.frozen`): loaded by registered name and content hash, never trained.

#: name of the frozen content network in the recipes' ``nets``
CONTENT_NET = "content"
#: :func:`rtgan.training.frozen.content_hash` of the shipped ``ae-kimsathe`` (rtgan/weights):
#: the -c recipes' frozen content network unless told otherwise
AE_SHA256 = "068749fe50f54ca1dc57b0a9b808b0d21f7c666163c8e086cb16f02536de2490"


@dataclass(frozen=True)
class ContentLossSettings:
    """The content-loss fields of the ``-c`` training configs (mixed into the sr16 ones).

    Attributes:
        content_net: registered model name of the frozen feature network (an :class:`.autoencoder.AEKimSathe`).
        content_net_sha256: :func:`rtgan.training.frozen.content_hash` of its checkpoint, which
            the training loop loads from ``WEIGHTS_DIR/<content_net>.safetensors`` (the shipped
            weights, or the ``weights_dir`` given to :func:`rtgan.training.loop.train`, e.g. the
            run directory the autoencoder was trained in). Default: the shipped
            ``ae-kimsathe`` (:data:`AE_SHA256`). Empty: none; the recipe refuses to start.
        content_weight: ``lambda_c`` on the content term. Seed 002 gives no weight for its
            content term ("take the L_2 loss between them, finally add it to the generator
            loss term", Sec. III). Seed 001 weights its content loss by ``lambda_ae = 0.1``
            (Sec. V-B, eq. 22), chosen so that ``L_time`` (a per-sample mean, eq. 15) and
            ``L_ae`` "have comparable level of importance" for its autoencoder. That number
            does not carry over to another autoencoder: the bottleneck of the ``ae-kimsathe``
            trained here (small preset, 1257 steps) gives ``L_ae`` about 1e-4 where the
            per-sample MSE of a trained sr16-unet is about 1.3e-3 (validation split, r = 2),
            so 0.1 made the term 0.4 % of the loss and changed nothing. The default 10 keeps
            seed 001's rule instead: the content term is about 40 % of the L2 term at the start.
            Seed 002's ``L_2`` sums over the ``W`` samples of an example
            (:func:`.sr16_training.l2_loss`), so the recipes multiply the content term by ``W``
            as well: ``L_G = L_2 + lambda_c W L_ae (+ the adversarial term)``, the two terms in
            the same proportion whatever the clip length.

    Raises:
        ValueError: a negative or non-finite ``content_weight``, a ``content_net_sha256`` that
            is neither empty nor 64 hex digits.
    """

    content_net: str = "ae-kimsathe"
    content_net_sha256: str = AE_SHA256
    content_weight: float = 10.0

    def __post_init__(self) -> None:
        post = getattr(super(), "__post_init__", None)
        if post is not None:
            post()
        if not 0.0 <= self.content_weight < float("inf"):
            raise ValueError(f"content_weight must be a finite number >= 0, got {self.content_weight}")
        sha = self.content_net_sha256
        if sha and not (len(sha) == 64 and all(ch in "0123456789abcdef" for ch in sha)):
            raise ValueError(f"content_net_sha256 must be 64 lowercase hex digits (or empty), got {sha!r}")


@dataclass(frozen=True)
class SR16UNetCTrainConfig(ContentLossSettings, SR16TrainConfig):
    """Training of sr16-unet-c: :class:`SR16TrainConfig` and :class:`ContentLossSettings`."""

    model: str = "sr16-unet-c"


@dataclass(frozen=True)
class SR16GANCTrainConfig(ContentLossSettings, SR16GANTrainConfig):
    """Training of sr16-gan-c: :class:`SR16GANTrainConfig` and :class:`ContentLossSettings`."""

    model: str = "sr16-gan-c"


@dataclass(frozen=True)
class SR16WGANCTrainConfig(ContentLossSettings, SR16WGANTrainConfig):
    """Training of sr16-wgan-c: :class:`SR16WGANTrainConfig` and :class:`ContentLossSettings`."""

    model: str = "sr16-wgan-c"


class ContentLossMixin:
    """The content term of the ``-c`` recipes, mixed in before an sr16 recipe.

    The frozen network ``content`` (:data:`CONTENT_NET`) is ``cfg.content_net`` checked against
    ``cfg.content_net_sha256`` (:attr:`.recipe.Recipe.frozen`, set per run from the config); it
    gets no optimiser. The generator loss becomes the base recipe's plus
    ``cfg.content_weight * W * L_ae(y_hat, y)`` (``W``: target samples per example, see
    :attr:`ContentLossSettings.content_weight`), ``L_ae`` the mean squared difference of the
    autoencoder's bottlenecks (seed 001 eq. 17, :func:`rtgan.losses.content_loss`), logged as
    ``gen_content``; validation adds ``content`` (``L_ae`` of the output) beside the base metrics.
    """

    cfg: ContentLossSettings

    def __init__(self, cfg) -> None:
        """Raises: ValueError: no ``content_net_sha256`` (no trained autoencoder named yet)."""
        super().__init__(cfg)
        if not cfg.content_net_sha256:
            net = cfg.content_net
            raise ValueError(
                f"{cfg.model} needs a trained {net} as its frozen content network, and content_net_sha256 is "
                f"empty: train {net} first: rtgan train {net} --data CORPUS --preset small --run-dir runs/{net}; "
                f"then set content_net_sha256 to rtgan.training.frozen.content_hash('runs/{net}/{net}.safetensors') "
                f"and load it from where it is (rtgan train {cfg.model} --content-net-sha256 HASH --weights-dir "
                f"runs/{net}; rtgan.training.loop.train(..., weights_dir='runs/{net}')) or put "
                f"{net}.safetensors and {net}.json in the shipped weights directory")
        self.frozen = {CONTENT_NET: (cfg.content_net, cfg.content_net_sha256)}
        self._phi: nn.Module | None = None

    def optimisers(self, nets):
        trainable = {name: net for name, net in nets.items() if name not in self.frozen}
        return super().optimisers(trainable)

    def content_features(self, nets) -> nn.Module:
        """``phi``: the frozen autoencoder's bottleneck (:class:`.autoencoder.BottleneckFeatures`), in eval mode.

        Raises:
            ValueError: the content network runs at another rate than the targets, or has no ``encode``.
        """
        from .autoencoder import BottleneckFeatures
        ae = nets[CONTENT_NET]
        if self._phi is None or self._phi.ae is not ae:
            if not hasattr(ae, "encode"):
                raise ValueError(f"content network {self.cfg.content_net!r} has no encode() (a bottleneck)")
            if int(ae.sample_rate_in) != self.rate:
                raise ValueError(f"content network {self.cfg.content_net!r} runs at {ae.sample_rate_in} Hz; "
                                 f"{self.cfg.model}'s targets are at {self.rate} Hz")
            self._phi = BottleneckFeatures(ae)
        return self._phi.eval()

    def generator_loss(self, nets, batch, out, step):
        from ..losses import content_loss
        loss, terms = super().generator_loss(nets, batch, out, step)
        c = content_loss(self.content_features(nets), out.float(), batch[1])
        loss = loss + self.cfg.content_weight * out.shape[-1] * c  # W: L_2 sums over the example's samples
        terms["gen_content"] = float(c.detach())
        terms["gen_total"] = float(loss.detach())
        return loss, terms

    def validate(self, nets, val, batch: int = 8) -> dict[str, float]:
        """The base recipe's metrics and ``content``, the mean ``L_ae`` of the output against ``y``."""
        from ..losses import content_loss
        m = super().validate(nets, val, batch)
        g, phi = nets["generator"], self.content_features(nets)
        dev = next(g.parameters()).device
        total, count = 0.0, 0
        for i in range(0, val[0].shape[0], batch):
            x, y = val[0][i:i + batch].to(dev), val[1][i:i + batch].to(dev)
            total += float(content_loss(phi, g(x).float(), y)) * x.shape[0]
            count += x.shape[0]
        m["content"] = total / count
        return m


@register_recipe("sr16-unet-c")
class SR16UNetCRecipe(ContentLossMixin, SR16UNetRecipe):
    """sr16-unet-c's training: :class:`SR16UNetRecipe` plus the content term (:class:`ContentLossMixin`)."""

    config_cls = SR16UNetCTrainConfig


@register_recipe("sr16-gan-c")
class SR16GANCRecipe(ContentLossMixin, SR16GANRecipe):
    """sr16-gan-c's training: :class:`SR16GANRecipe` plus the content term (:class:`ContentLossMixin`)."""

    config_cls = SR16GANCTrainConfig


@register_recipe("sr16-wgan-c")
class SR16WGANCRecipe(ContentLossMixin, SR16WGANRecipe):
    """sr16-wgan-c's training: :class:`SR16WGANRecipe` plus the content term (:class:`ContentLossMixin`)."""

    config_cls = SR16WGANCTrainConfig
