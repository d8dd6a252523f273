"""Training configuration: :class:`TrainConfig` (the loop's settings) and each model's presets.

A model's recipe subclasses :class:`TrainConfig` with its own settings and names its presets
(:meth:`rtgan.models.recipe.Recipe.presets`); see :func:`presets` and :func:`config_from_dict`.
``PRESETS``, ``RECIPES`` and ``TRAIN_DEGRADATIONS`` are sr-hifigan's (the default model of
``rtgan train``), under the names they had before the recipes moved into the model files.
"""
from __future__ import annotations

from ..models import registry
from ..models.recipe import TrainConfig
from ..models.sr_hifigan import RECIPES, SRHiFiGANRecipe, SRHiFiGANTrainConfig, train_degradations

__all__ = ["TrainConfig", "SRHiFiGANTrainConfig", "presets", "config_from_dict", "PRESETS", "RECIPES",
           "TRAIN_DEGRADATIONS"]


def presets(model: str) -> dict[str, TrainConfig]:
    """The named training configs of ``model``'s recipe.

    Raises:
        KeyError: unknown model, or one without a training recipe.
    """
    return registry.recipe(model).presets()


def config_from_dict(d: dict) -> TrainConfig:
    """A config from :meth:`TrainConfig.to_dict` (e.g. a checkpoint's ``train_config``), by its ``model``.

    Raises:
        KeyError: unknown model, or one without a training recipe.
        TypeError: keys its config class does not have.
    """
    return registry.recipe(d["model"]).config_cls.from_dict(d)


PRESETS: dict[str, SRHiFiGANTrainConfig] = SRHiFiGANRecipe.presets()
TRAIN_DEGRADATIONS = train_degradations()
