"""The training contract a model supplies: a :class:`Recipe` and its :class:`TrainConfig`.

Where this lives, and why: a model's file (``rtgan/models/NAME.py``) defines the network *and*
how to train it, so the recipe base class must be importable from a model module. Models never
import :mod:`rtgan.training` (training depends on models, not the other way round), so the base
class sits here in :mod:`rtgan.models`, beside :mod:`.base` (the generator contract), and the
training loop (:mod:`rtgan.training.loop`) imports it. It depends on torch only.

Division of labour. The recipe says *what* is trained: its networks, their optimisers and
learning-rate schedulers, how a training example is made from a corpus clip, the critic
(discriminator) loss and the generator loss, validation metrics, and the schedule (when the
adversarial terms are on). The loop says *how*: device and bf16 autocast on CUDA,
``zero_grad``/``backward``/``step``, schedulers, the critic's ``n_critic`` steps per generator
step and the :meth:`Recipe.after_critic_step` hook, logging, validation cadence, snapshots,
resumable checkpoints, ``max_minutes`` and the non-finite-loss guard. One loop step::

    adv = recipe.adversarial(step); critic = recipe.critic_trains(step)   # critic: adv or warm-up
    for i in range(recipe.n_critic if adv else 1):          # one fresh batch each
        batch = next batch                                    # tuple of tensors, on the device
        out = recipe.generate(nets, batch)                    # graph kept on the last round only
        if critic:
            loss_c, terms = recipe.critic_loss(nets, batch, detached(out), step)
            zero_grad, loss_c.backward(), step the critics' optimisers
            recipe.after_critic_step(nets, step)              # e.g. WGAN weight clipping
    loss_g, terms = recipe.generator_loss(nets, batch, out, step)   # the last batch and its out
    zero_grad, loss_g.backward(), step the other optimisers; step += 1
    if recipe.step_schedulers(step): step every scheduler

Networks are named (``"generator"`` always; ``"discriminator"`` or ``"critic"`` for the
adversary, see :attr:`Recipe.critics`; anything else). A network is trainable when
:meth:`Recipe.optimisers` gives it an optimiser; frozen pretrained networks are declared in
:attr:`Recipe.frozen` and loaded by the loop (by registered model name and content hash) into
the same ``nets`` dict, in eval mode and without gradients.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import nn

__all__ = ["TrainConfig", "Recipe"]


@dataclass(frozen=True)
class TrainConfig:
    """What every training run has, whatever the model; a recipe subclasses it with its own fields.

    Attributes:
        model: registered model name (its recipe is the one registered with it).
        preset: the model's preset (architecture size), e.g. ``tiny``, ``live``, ``paper``.
        recipe: name of the recipe's variant (e.g. sr-hifigan's ``bwe`` or ``paper``); ``""``
            for recipes without variants. Recorded; the fields are what is used.
        steps: generator steps to train (in total, counting resumed steps).
        batch_size: examples per batch (the critic draws one batch per critic step).
        segment_samples: length of the corpus clip cut for one training example, in samples
            at the model rate; validation clips are twice as long.
        min_bandwidth_hz: corpus clips whose measured bandwidth is lower are not used.
        balance_groups: draw training clips so that every group (``split_key``: voice or
            piece) of a domain is drawn equally often, the domains as often as their clip
            counts say (:meth:`rtgan.data.dataset.ClipDataset.group_weights`); False: every
            clip equally often.
        val_items: validation examples (a fixed set, spread over the validation split).
        val_every, ckpt_every, log_every: cadence in generator steps of validation (and
            generator snapshots), resumable checkpoints and TensorBoard scalars.
        num_workers: data-loader worker processes.
        seed: seeds torch before the networks are built, and the data order.
        amp: bf16 autocast on CUDA (ignored on CPU).
    """

    model: str = ""
    preset: str = "live"
    recipe: str = ""
    steps: int = 20000
    batch_size: int = 8
    segment_samples: int = 16384
    min_bandwidth_hz: float = 0.0
    balance_groups: bool = False
    val_items: int = 32
    val_every: int = 500
    ckpt_every: int = 500
    log_every: int = 50
    num_workers: int = 1
    seed: int = 0
    amp: bool = True

    def to_dict(self) -> dict:
        """JSON-ready dict (nested dataclasses become dicts)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of :meth:`to_dict` for flat configs (subclasses with nested ones override it).

        Raises:
            TypeError: unknown keys.
        """
        return cls(**tuples(d))


def resampled_length(corpus_samples: int, corpus_rate: int, rate: int, unit: int) -> int:
    """Samples at ``rate`` Hz made from ``corpus_samples`` at ``corpus_rate`` Hz, cropped down to a
    multiple of ``unit`` (a model's whole frames): ``ceil(n rate / corpus_rate)`` rounded down."""
    n = -(-corpus_samples * rate // corpus_rate)
    return n - n % unit


def tuples(d: dict) -> dict:
    """JSON turns tuples into lists; turn them back (dict values, recursively)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = tuples(v)
        elif isinstance(v, list):
            v = tuple(tuples(i) if isinstance(i, dict) else i for i in v)
        out[k] = v
    return out


#: one batch (or, without the batch axis, one example): a tuple of tensors ``(batch, ...)``
Batch = tuple[torch.Tensor, ...]
#: every network of a run by name: ``"generator"``, a critic, frozen ones
Nets = dict[str, nn.Module]


class Recipe:
    """How to train one model; subclass it in the model's file (or a ``*_training`` module beside
    it), decorated with ``@rtgan.models.registry.register_recipe(MODEL)``.

    The loop builds ``recipe = RecipeClass(cfg)`` and calls the methods below; see the module
    docstring for the order. ``nets`` is always the dict of every network (trainable and frozen)
    by name, on the training device. Batches are tuples of tensors ``(batch, ...)`` as collated
    from :meth:`train_example` (or :meth:`synthetic_data`).

    Class attributes:
        config_cls: the :class:`TrainConfig` subclass holding the recipe's settings.
        n_critic: critic steps per generator step while :meth:`adversarial` is on (WGAN: 5).
        critics: names of the networks the critic step trains (those of them that exist and
            have an optimiser); every other optimiser belongs to the generator step.
        frozen: pretrained networks to load, ``{name in nets: (registered model name, sha256)}``;
            the sha256 is :func:`rtgan.training.frozen.content_hash` of the model's checkpoint.
        progress: names of loss terms or validation metrics shown in the progress bar.
    """

    config_cls: ClassVar[type[TrainConfig]] = TrainConfig
    n_critic: ClassVar[int] = 1
    critics: ClassVar[tuple[str, ...]] = ("discriminator", "critic")
    frozen: ClassVar[dict[str, tuple[str, str]]] = {}
    progress: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: TrainConfig) -> None:
        if not isinstance(cfg, self.config_cls):
            raise TypeError(f"{type(self).__name__} needs a {self.config_cls.__name__}, got {type(cfg).__name__}")
        self.cfg = cfg

    @classmethod
    def presets(cls) -> dict[str, TrainConfig]:
        """Named training configs (``rtgan train --preset``); none by default."""
        return {}

    # -- networks, optimisers, schedulers --------------------------------------------------

    def networks(self) -> Nets:
        """Fresh networks to train, on the CPU: ``{"generator": ..., "critic": ..., ...}``.

        Called once, right after ``torch.manual_seed(cfg.seed)``; build them in a fixed order.
        ``"generator"`` is required: it is what release checkpoints and snapshots hold.
        """
        raise NotImplementedError

    def optimisers(self, nets: Nets) -> dict[str, torch.optim.Optimizer]:
        """One optimiser per trainable network, under the network's name (nets are on the device)."""
        raise NotImplementedError

    def schedulers(self, optimisers: dict[str, torch.optim.Optimizer]) -> dict[str, Any]:
        """Learning-rate schedulers by network name (a subset of ``optimisers``); none by default."""
        return {}

    def step_schedulers(self, step: int) -> bool:
        """Whether the loop steps every scheduler after generator step ``step`` (1-based); default always."""
        return True

    # -- data --------------------------------------------------------------------------------

    def sample_rate(self, nets: Nets) -> int:
        """Sample rate (Hz) of the corpus clips to read; default the generator's output rate."""
        return int(nets["generator"].sample_rate_out)

    def domain(self) -> str | None:
        """Corpus domain to train on (``"music"``, ``"speech"``); default ``None``: every clip."""
        return None

    def train_example(self, clip: torch.Tensor) -> Batch:
        """One training example from a corpus clip ``(1, segment_samples)`` float32 in [-1, 1].

        Runs in data-loader workers; draw randomness from torch's global generator (seeded per
        worker by the loader). Returns a tuple of tensors without a batch axis.
        """
        raise NotImplementedError

    def val_example(self, clip: torch.Tensor) -> Batch:
        """One validation example from a clip ``(1, 2 * segment_samples)``; deterministic."""
        raise NotImplementedError

    def data(self, corpus: Any) -> tuple[torch.utils.data.Dataset, Batch] | None:
        """``(training dataset of tuples, stacked validation batch)`` for recipes that read their own data.

        ``corpus`` is the ``--data`` directory (a :class:`pathlib.Path`) or ``None``. ``None``
        (default: :meth:`synthetic_data`'s answer): the loop cuts corpus clips and calls
        :meth:`train_example` and :meth:`val_example`. A note model reads a note set here.
        """
        return self.synthetic_data()

    def data_manifest(self, corpus: Any) -> Any:
        """The manifest file of ``corpus`` whose hash the run's metadata records (default ``corpus/manifest.jsonl``)."""
        return corpus / "manifest.jsonl"

    def synthetic_data(self) -> tuple[torch.utils.data.Dataset, Batch] | None:
        """``(training dataset of tuples, stacked validation batch)`` for recipes that need no corpus.

        ``None`` (default): the loop cuts corpus clips and calls :meth:`train_example` and
        :meth:`val_example`.
        """
        return None

    # -- schedule ----------------------------------------------------------------------------

    def adversarial(self, step: int) -> bool:
        """Whether generator step ``step`` (0-based) has critic steps and adversarial terms.

        Default: always (a recipe without a critic must say ``False``; the loop refuses a
        critic step without a critic optimiser).
        """
        return True

    def critic_trains(self, step: int) -> bool:
        """Whether the critics take a step at generator step ``step`` (0-based).

        Default: exactly when :meth:`adversarial`. A recipe may start its critics earlier (a
        critic warm-up: they learn to judge the generator's output before their gradient
        reaches it, e.g. fresh discriminators facing a warm-started generator).
        """
        return self.adversarial(step)

    def stage(self, step: int) -> str:
        """Name of the training stage at ``step``, logged when it changes."""
        if self.adversarial(step):
            return "adversarial"
        return "critic warm-up" if self.critic_trains(step) else "reconstruction"

    # -- the steps -------------------------------------------------------------------------

    def generate(self, nets: Nets, batch: Batch) -> Any:
        """The generator's output on ``batch`` (any structure of tensors), shared by both steps."""
        raise NotImplementedError

    def critic_loss(self, nets: Nets, batch: Batch, fake: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss the critic minimises on ``batch`` and detached generator output ``fake``.

        Returns ``(loss, terms)``; ``terms`` are logged as given (floats).
        """
        raise NotImplementedError

    def initialise(self, nets: Nets, next_batch: Callable[[], Batch]) -> dict | None:
        """Called once before step 0 of a fresh run (not on resume, not with ``--init-from``): a
        recipe may set its networks from data here (``next_batch()`` draws training batches).
        Returns what the run's metadata records of it (``None``: nothing done)."""
        return None

    def after_critic_step(self, nets: Nets, step: int) -> None:
        """Called after every critic optimiser step (e.g. :func:`rtgan.losses.clip_weights_`)."""

    def generator_loss(self, nets: Nets, batch: Batch, out: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss the generator minimises; ``out`` is :meth:`generate`'s, with its graph.

        Returns ``(loss, terms)``; ``terms`` are logged as given (floats).
        """
        raise NotImplementedError

    def validate(self, nets: Nets, val: Batch) -> dict[str, float]:
        """Metrics on the fixed validation batch; the loop runs it under ``no_grad``, nets in eval mode."""
        raise NotImplementedError
