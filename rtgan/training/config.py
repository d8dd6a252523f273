"""Training configuration: :class:`TrainConfig` (the loop's settings) and each model's presets.

A model's recipe subclasses :class:`TrainConfig` with its own settings and names its presets
(:meth:`rtgan.models.recipe.Recipe.presets`); see :func:`presets`, :func:`default_preset` and
:func:`config_from_dict`. ``PRESETS``, ``RECIPES`` and ``TRAIN_DEGRADATIONS`` are sr-hifigan's
(:mod:`rtgan.models.sr_hifigan_training`), under the names they had before the recipes moved
into ``rtgan/models``.
"""
from __future__ import annotations

from ..models import registry
from ..models.recipe import TrainConfig
from ..models.sr_hifigan_training import RECIPES, SRHiFiGANRecipe, SRHiFiGANTrainConfig, train_degradations

__all__ = ["TrainConfig", "SRHiFiGANTrainConfig", "presets", "default_preset", "config_from_dict", "PRESETS",
           "RECIPES", "TRAIN_DEGRADATIONS"]

#: the training presets :func:`default_preset` prefers, in order, before a recipe's first one
DEFAULT_PRESETS = ("live", "small")


def presets(model: str) -> dict[str, TrainConfig]:
    """The named training configs of ``model``'s recipe.

    Raises:
        KeyError: unknown model, or one without a training recipe.
    """
    return registry.recipe(model).presets()


def default_preset(model: str) -> str:
    """The training preset ``rtgan train MODEL`` uses without ``--preset``.

    ``live`` if ``model``'s recipe has one, else ``small``, else its first preset (see
    :data:`DEFAULT_PRESETS`).

    Raises:
        KeyError: unknown model, one without a training recipe, or a recipe without presets.
    """
    names = list(presets(model))
    if not names:
        raise KeyError(f"model {model!r}'s training recipe has no presets")
    return next((p for p in DEFAULT_PRESETS if p in names), names[0])


def config_from_dict(d: dict) -> TrainConfig:
    """A config from :meth:`TrainConfig.to_dict` (e.g. a checkpoint's ``train_config``), by its ``model``.

    Raises:
        KeyError: unknown model, or one without a training recipe.
        TypeError: keys its config class does not have.
    """
    return registry.recipe(d["model"]).config_cls.from_dict(d)


PRESETS: dict[str, SRHiFiGANTrainConfig] = SRHiFiGANRecipe.presets()
TRAIN_DEGRADATIONS = train_degradations()
