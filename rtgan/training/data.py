"""Training and validation data: corpus clips made into examples by the model's recipe."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..data.dataset import ClipDataset, evenly_spaced
from ..models.recipe import Batch, Nets, Recipe


class Examples(torch.utils.data.Dataset):
    """``make(clips[i])`` for each item ``i``: a tuple of tensors without a batch axis."""

    def __init__(self, clips: torch.utils.data.Dataset, make: Callable[[torch.Tensor], Batch]) -> None:
        self.clips = clips
        self.make = make

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> Batch:
        return self.make(self.clips[i])


def make_datasets(corpus: Path | None, recipe: Recipe, nets: Nets) -> tuple[torch.utils.data.Dataset, Batch]:
    """The training dataset and the fixed validation batch of ``recipe``.

    Unless the recipe brings its own (:meth:`~rtgan.models.recipe.Recipe.data`, by default
    :meth:`~rtgan.models.recipe.Recipe.synthetic_data`): training examples
    are :meth:`~rtgan.models.recipe.Recipe.train_example` of random crops of
    ``cfg.segment_samples`` samples from the corpus's train clips at
    :meth:`~rtgan.models.recipe.Recipe.sample_rate` Hz; the
    validation batch stacks :meth:`~rtgan.models.recipe.Recipe.val_example` of the first
    ``2 * cfg.segment_samples`` samples of up to ``cfg.val_items`` val clips spread evenly over
    the split, each element ``(items, ...)``.

    Raises:
        FileNotFoundError: ``corpus`` has no ``manifest.jsonl``.
        ValueError: no usable clips in a split, or no corpus for a recipe that needs one.
    """
    own = recipe.data(corpus)
    if own is not None:
        return own
    if corpus is None:
        raise ValueError(f"{type(recipe).__name__} trains on a corpus: give one")
    cfg, sample_rate, domain = recipe.cfg, recipe.sample_rate(nets), recipe.domain()
    train = ClipDataset(corpus, "train", cfg.segment_samples, sample_rate=sample_rate, domain=domain,
                        min_bandwidth_hz=cfg.min_bandwidth_hz, seed=cfg.seed, random_offset=True)
    val = ClipDataset(corpus, "val", cfg.segment_samples * 2, sample_rate=sample_rate, domain=domain,
                      min_bandwidth_hz=cfg.min_bandwidth_hz, seed=cfg.seed, random_offset=False)
    items = [recipe.val_example(val[int(i)]) for i in evenly_spaced(len(val), cfg.val_items)]
    return Examples(train, recipe.train_example), tuple(torch.stack(parts) for parts in zip(*items))
