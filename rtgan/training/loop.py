"""The training loop: one loop for every model, driven by the model's recipe.

A model's file in ``rtgan/models`` (or its ``*_training`` module there) supplies a
:class:`rtgan.models.recipe.Recipe` (its networks, optimisers, data, losses, validation and
schedule; see that module for the contract and the order of calls).
This module only orchestrates: device, bf16 autocast on CUDA, ``zero_grad``/``backward``/
optimiser steps, the critic's ``n_critic`` steps per generator step, learning-rate schedulers,
the non-finite-loss guard (:func:`gan_step`); logging (TensorBoard, tqdm), validation cadence,
generator snapshots, resumable checkpoints and ``max_minutes`` (:func:`train`).
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..checkpoint import CheckpointError, generator_state, read_checkpoint, save_generator
from ..models import registry
from ..models.layers.weightnorm import folded_keys, load_folded
from ..models.recipe import Batch, Recipe, TrainConfig
from . import distributed
from .data import make_datasets
from .frozen import content_hash, load_frozen
from .state import TrainState, check_names, load_train_state, save_train_state

log = logging.getLogger(__name__)

LAST = "last.safetensors"


def pick_device(device: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; otherwise the named device.

    Raises:
        ValueError: an unknown device string, or a CUDA device on a machine without CUDA.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but this machine has no CUDA device "
                             f"(torch {torch.__version__}); use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} asked for, but there are {torch.cuda.device_count()} CUDA devices")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device {device!r} (use auto, cpu, cuda or cuda:N)")
    return dev


def recipe_class(model: str) -> type[Recipe]:
    """The recipe registered with ``model``.

    Raises:
        ValueError: unknown model, or one without a training recipe.
    """
    try:
        return registry.recipe(model)
    except KeyError as e:
        raise ValueError(e.args[0]) from None


def init_state(cfg: TrainConfig, device: torch.device, recipe: type[Recipe] | None = None,
               weights_dir: str | Path | None = None) -> TrainState:
    """Fresh networks, optimisers and schedulers of ``cfg``'s recipe on ``device``.

    ``torch.manual_seed(cfg.seed)`` comes first, so the same config builds the same networks.
    Frozen networks (:attr:`Recipe.frozen`) are loaded from ``weights_dir`` (default: the
    shipped weights, ``rtgan/weights``) by :func:`rtgan.training.frozen.load_frozen`.

    Args:
        recipe: the recipe class (default: the one registered with ``cfg.model``).

    Raises:
        ValueError: no recipe for ``cfg.model``; ``n_critic < 1``; no ``generator`` network; a frozen network
            named like a trainable one; an optimiser for a network that does not exist or is
            frozen; network names that make ambiguous checkpoint keys.
        rtgan.checkpoint.CheckpointError: a frozen network that is unknown, missing, or whose
            content hash differs from the recipe's.
    """
    r = (recipe or recipe_class(cfg.model))(cfg)
    if int(r.n_critic) != r.n_critic or r.n_critic < 1:
        raise ValueError(f"{type(r).__name__}.n_critic must be a positive integer, got {r.n_critic!r}")
    torch.manual_seed(cfg.seed)
    nets = {name: net.to(device) for name, net in r.networks().items()}
    if "generator" not in nets:
        raise ValueError(f"{type(r).__name__}.networks() has no 'generator' (it has {sorted(nets)})")
    frozen = {}
    for name, (model, sha256) in r.frozen.items():
        if name in nets:
            raise ValueError(f"{type(r).__name__}: frozen network {name!r} is also a trainable network")
        nets[name] = load_frozen(name, model, sha256, weights_dir or registry.WEIGHTS_DIR, device)
        frozen[name] = {"model": model, "sha256": sha256}
    optimisers = r.optimisers(nets)
    wrong = [n for n in optimisers if n not in nets or n in frozen]
    if wrong:
        raise ValueError(f"{type(r).__name__}.optimisers(): {wrong} are not trainable networks "
                         f"({sorted(set(nets) - set(frozen))})")
    check_names(nets)
    return TrainState(r, nets, optimisers, r.schedulers(optimisers), frozen=frozen)


def init_generator(state: TrainState, path: str | Path) -> dict[str, Any]:
    """Start ``state``'s generator from the weights of a trained generator checkpoint (a warm start).

    Any checkpoint whose generator tensors load strictly into this generator will do: the
    same network under another model name (sr16-unet's weights for sr16-gan), or another
    config with the same weight shapes (sr16's ratio lives in its spline front end, which
    has no weights). One difference is allowed, because a warm start is where a config
    change meets trained weights: bias tensors of layers this config builds without a bias
    (e.g. ``dc_free_output``, ``bias=False``) are dropped and listed in the returned record
    (``dropped``), and so are the tensors of an sr-hifigan envelope head (``envelope.*``) when
    this config has none: the head is fitted after training (:func:`rtgan.calibrate.fit_envelope`),
    so a calibrated release warm-starts the network it was fitted to. Every other tensor must
    be there with its shape. Only the generator's
    weights are taken; optimisers start fresh.

    Returns:
        what the run's metadata records: the source's path, :func:`content_hash`, model,
        steps, producing command and the dropped tensors (sorted; empty if none).

    Raises:
        CheckpointError: an unreadable checkpoint, one without generator weights, or weights
            that do not load strictly once those tensors are dropped (missing, other unexpected
            or differently shaped tensors).
    """
    path = Path(path)
    tensors, meta = read_checkpoint(path)
    weights = generator_state(tensors)
    if not weights:
        raise CheckpointError(f"--init-from {path}: no generator weights in it")
    expected = folded_keys(state.generator)
    dropped = sorted(k for k in weights if k not in expected and k.endswith(".bias")
                     and k[: -len("bias")] + "weight" in expected)
    if not any(k.startswith("envelope.") for k in expected):
        dropped = sorted({*dropped, *(k for k in weights if k.startswith("envelope."))})
    for k in dropped:
        del weights[k]
    if dropped:
        log.info("--init-from %s: dropped %s (layers without a bias, or a fitted envelope head, this config "
                 "does not have)", path, ", ".join(dropped))
    try:
        load_folded(state.generator, weights)  # checkpoints hold folded weights; a recipe may train with weight norm
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(f"--init-from {path} ({meta.get('model')}) does not fit "
                              f"{state.generator.name}: {' '.join(x.strip() for x in first[:3])}") from None
    return {"path": str(path), "sha256": content_hash(path), "model": meta.get("model"),
            "steps": meta.get("steps"), "command": meta.get("command"), "dropped": dropped}


def _detach(out: Any) -> Any:
    """``out`` (a tensor, or a tuple/list/dict of them) cut from the autograd graph."""
    if torch.is_tensor(out):
        return out.detach()
    if isinstance(out, (tuple, list)):
        return type(out)(_detach(o) for o in out)
    if isinstance(out, dict):
        return {k: _detach(v) for k, v in out.items()}
    return out


def _minimise(loss: torch.Tensor, optimisers, what: str, step: int, terms: dict[str, float]) -> None:
    """``zero_grad``, ``backward``, ``step`` for ``optimisers``; refuses a non-finite loss before any update."""
    if not math.isfinite(float(loss.detach())):
        raise FloatingPointError(f"non-finite {what} loss at step {step}: {float(loss.detach())}; terms {terms}")
    for opt in optimisers:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    for opt in optimisers:
        opt.step()


def gan_step(state: TrainState, next_batch: Callable[[], Batch],
             amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """One generator step, preceded by ``n_critic`` critic steps while the schedule is adversarial
    (one critic step on the same batch during a critic warm-up, ``recipe.critic_trains``).

    Each critic round draws a batch from ``next_batch`` (tensors on the device), runs
    ``recipe.generate`` (without a graph but on the last round), minimises
    ``recipe.critic_loss`` over the critic optimisers and calls ``recipe.after_critic_step``.
    The generator step minimises ``recipe.generator_loss`` on the last batch and its
    generator output over every other optimiser. Then ``state.step`` goes up by one and, when
    ``recipe.step_schedulers(step)``, every scheduler steps. Trainable networks are put in
    train mode first; frozen ones stay in eval mode.

    In a distributed run the recipe gets :attr:`TrainState.step_nets` (the trainable networks
    wrapped in DistributedDataParallel, which averages their gradients across ranks in
    ``backward``); the critics' gradients from the generator loss, which no optimiser uses,
    are not averaged (:func:`.distributed.no_sync`).

    Returns:
        the logged terms: the critic's (mean over the rounds) and the generator's.

    Raises:
        FloatingPointError: a non-finite loss (before the update it would make).
        ValueError: an adversarial or critic warm-up step without a critic optimiser.
    """
    r, nets = state.recipe, state.step_nets
    critic_opts = [opt for name, opt in state.optimisers.items() if name in r.critics]
    gen_opts = [opt for name, opt in state.optimisers.items() if name not in r.critics]
    for name in state.optimisers:
        nets[name].train()
    adv = r.adversarial(state.step)
    critic = adv or r.critic_trains(state.step)
    if critic and not critic_opts:
        raise ValueError(f"{type(r).__name__}.adversarial/critic_trains({state.step}) is True but no critic network "
                         f"({', '.join(r.critics)}) has an optimiser")
    autocast = torch.autocast(next(iter(nets["generator"].parameters())).device.type, dtype=amp_dtype,
                              enabled=amp_dtype is not None)
    rounds = r.n_critic if adv else 1
    terms: dict[str, float] = {}
    for i in range(rounds):
        batch = next_batch()
        with autocast, torch.set_grad_enabled(i == rounds - 1):
            out = r.generate(nets, batch)
        if critic:
            with autocast:
                loss_c, terms_c = r.critic_loss(nets, batch, _detach(out), state.step)
            _minimise(loss_c, critic_opts, "critic", state.step, terms_c)
            r.after_critic_step(nets, state.step)
            for k, v in terms_c.items():
                terms[k] = terms.get(k, 0.0) + v / rounds
    with distributed.no_sync([m for name, m in state.wrapped.items() if name in r.critics]):
        with autocast:
            loss_g, terms_g = r.generator_loss(nets, batch, out, state.step)
        _minimise(loss_g, gen_opts, "generator", state.step, terms_g)
    state.step += 1
    if r.step_schedulers(state.step):
        for sched in state.schedulers.values():
            sched.step()
    terms.update(terms_g)
    return terms


def train_step(state: TrainState, cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor,
               amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """:func:`gan_step` on the batch ``(x, y)`` (every critic round reuses it): the pre-recipe call.

    Raises:
        ValueError: ``cfg`` is not the config ``state`` was built with.
    """
    if cfg != state.recipe.cfg:
        raise ValueError("cfg is not the config the training state was built with")
    return gan_step(state, lambda: (x, y), amp_dtype)


@torch.no_grad()
def validate(state: TrainState, val: Batch) -> dict[str, float]:
    """The recipe's metrics on the fixed validation batch ``val``, every network in eval mode."""
    for net in state.nets.values():
        net.eval()
    return state.recipe.validate(state.nets, val)


def _infinite(loader):
    while True:
        yield from loader


def make_sampler(train_set: torch.utils.data.Dataset, balance_groups: bool, num_samples: int,
                 seed: int) -> torch.utils.data.Sampler:
    """Indices of ``train_set`` drawn with replacement, ``num_samples`` of them (seeded by ``seed``).

    Uniform over items, or with ``balance_groups`` weighted by the clips' group weights
    (:meth:`rtgan.data.dataset.ClipDataset.group_weights`: every voice or piece of a domain
    equally often); ``train_set`` is a :class:`~rtgan.data.dataset.ClipDataset` or wraps one
    as ``.clips``.

    Raises:
        ValueError: ``balance_groups`` for data without clip groups (a recipe's own data).
    """
    draw = torch.Generator().manual_seed(seed)
    if not balance_groups:
        return torch.utils.data.RandomSampler(train_set, replacement=True, num_samples=num_samples, generator=draw)
    clips = getattr(train_set, "clips", train_set)
    if not hasattr(clips, "group_weights"):
        raise ValueError("balance_groups: this model's training data has no clip groups (voices, pieces) to balance")
    return torch.utils.data.WeightedRandomSampler(torch.from_numpy(clips.group_weights()), num_samples,
                                                  replacement=True, generator=draw)


def train(cfg: TrainConfig, corpus: Path | None, run_dir: Path, device: str = "auto", resume: bool = True,
          command: str = "", progress: bool = True, max_minutes: float | None = None,
          recipe: type[Recipe] | None = None, weights_dir: str | Path | None = None,
          init_from: str | Path | None = None) -> TrainState:
    """Train ``cfg.model`` with its recipe until ``cfg.steps`` (or ``max_minutes``), checkpointing to ``run_dir``.

    Writes ``run_dir/last.safetensors`` (+ ``.json``; resumable, see :mod:`.state`),
    ``run_dir/NAME.safetensors`` (+ ``.json``, the generator alone, a release candidate),
    generator snapshots at every validation in ``run_dir/snapshots`` and TensorBoard logs in
    ``run_dir/tb`` when tensorboard is installed. A run with a ``last.safetensors`` resumes
    from it (unless ``resume`` is False).

    Launched by ``torchrun`` (``RANK``, ``WORLD_SIZE``, ... set; see :mod:`.distributed`), each
    process trains a replica with DistributedDataParallel on its own batches (``cuda:LOCAL_RANK``
    on CUDA); every rank resumes from the same checkpoint and validates, only rank 0 writes
    files and shows progress. Otherwise a single process trains, as it always has.

    Args:
        cfg: the run's config (the recipe's :class:`TrainConfig` subclass).
        corpus: corpus directory (with ``manifest.jsonl``); ``None`` for recipes with
            synthetic data.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (:func:`pick_device`).
        max_minutes: stop (with a validation and a checkpoint) once this much wall time is used.
        recipe: the recipe class (default: the one registered with ``cfg.model``).
        weights_dir: where frozen networks are loaded from (default: the shipped weights).
        init_from: a generator checkpoint to start from (:func:`init_generator`); ignored,
            with a log line, when the run resumes from its own ``last.safetensors``.

    Raises:
        ValueError: no usable clips in the corpus (from the dataset), an unusable device
            (:func:`pick_device`) or a model without a recipe; all before ``run_dir`` is created.
        FileNotFoundError: ``corpus`` has no ``manifest.jsonl`` (also before ``run_dir`` exists).
        rtgan.checkpoint.CheckpointError: a frozen network that does not load or match its
            hash (before ``run_dir`` exists), an ``init_from`` that does not load (also before),
            or a resume checkpoint that does not fit ``cfg``.
        FloatingPointError: a non-finite loss.
        RuntimeError: (distributed) a process group that cannot start, ranks that resumed
            at different steps, replicas whose weights diverged.
    """
    run_dir = Path(run_dir)
    # everything that can fail fast fails before the run directory exists
    ctx, dev = distributed.setup(pick_device(device))
    done = False
    try:
        state = _train(cfg, corpus, run_dir, dev, ctx, resume, command, progress, max_minutes, recipe, weights_dir,
                       init_from)
        done = True
    finally:
        distributed.shutdown(ctx, wait=done)
    return state


def _train(cfg: TrainConfig, corpus: Path | None, run_dir: Path, dev: torch.device, ctx: distributed.Context,
           resume: bool, command: str, progress: bool, max_minutes: float | None, recipe: type[Recipe] | None,
           weights_dir: str | Path | None, init_from: str | Path | None = None) -> TrainState:
    """:func:`train` on device ``dev``, as rank ``ctx.rank`` of a distributed run or alone."""
    from ..data.corpus import manifest_hash

    amp_dtype = torch.bfloat16 if (cfg.amp and dev.type == "cuda") else None
    state = init_state(cfg, dev, recipe, weights_dir)
    warm = init_generator(state, init_from) if init_from is not None else None
    r = state.recipe
    train_set, val = make_datasets(Path(corpus) if corpus is not None else None, r, state.nets)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    manifest = Path(r.data_manifest(Path(corpus))) if corpus is not None else None
    meta: dict[str, Any] = {"train_config": cfg.to_dict(), "command": command,
                            "corpus_manifest_hash": manifest_hash(manifest) if manifest and manifest.exists() else None,
                            "corpus": str(corpus) if corpus is not None else None, "preset": cfg.preset,
                            "recipe": cfg.recipe}
    if state.frozen:
        meta["frozen"] = state.frozen
    if warm is not None:
        meta["init_from"] = warm
    if ctx.enabled:
        meta["distributed"] = {"world_size": ctx.world_size, "backend": ctx.backend,
                               "examples_per_step": ctx.world_size * cfg.batch_size}
    last = run_dir / LAST
    if resume and last.exists():
        old = load_train_state(last, state)
        meta["resumed_from_step"] = state.step
        meta["command_history"] = old.get("command_history", [old.get("command", "")]) + [command]
        if ctx.is_main:
            log.info("resumed from %s at step %d", last, state.step)
        meta.pop("init_from", None)
        if old.get("init_from") is not None:  # where the run started, whatever this command says
            meta["init_from"] = old["init_from"]
        if old.get("initialise") is not None:
            meta["initialise"] = old["initialise"]
        if warm is not None and ctx.is_main:
            log.info("--init-from %s ignored: the run resumes from its own checkpoint", init_from)
    else:
        meta["command_history"] = [command]
    data_seed = cfg.seed
    if ctx.enabled:
        distributed.agree(state.step, "the step resumed from (is the run directory shared?)", ctx)
        state.wrapped = distributed.wrap(state.nets, state.optimisers, dev)
        data_seed = distributed.rank_seed(cfg.seed, ctx)
        if ctx.rank:  # other examples than rank 0's: the recipe's draws, the loader's workers, the crops
            torch.manual_seed(data_seed)
            clips = getattr(train_set, "clips", train_set)
            if isinstance(getattr(clips, "seed", None), int):
                clips.seed = distributed.rank_seed(clips.seed, ctx)
    # examples are drawn with replacement (a random crop each time), so even a corpus with
    # fewer clips than a batch yields full batches
    sampler = make_sampler(train_set, cfg.balance_groups, cfg.batch_size * 1000, data_seed + state.step)
    loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                                         num_workers=cfg.num_workers, persistent_workers=cfg.num_workers > 0)
    writer = None
    try:
        if ctx.is_main:
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(str(run_dir / "tb"))
    except ImportError:
        log.warning("tensorboard not installed: no TensorBoard logs (pip install 'rtgan[train]')")
    model_name = state.generator.name or cfg.model

    def checkpoint(metrics: dict[str, float] | None = None) -> None:
        if ctx.enabled:  # every rank takes part; rank 0 writes
            distributed.check_replicas(state.nets, state.optimisers, ctx)
            if not ctx.is_main:
                return
        save_train_state(last, state, meta)
        release = {k: v for k, v in meta.items() if k != "command_history"}
        release.update(steps=state.step, commands=meta["command_history"],
                       metrics={"val": metrics or (state.history[-1] if state.history else {})})
        save_generator(run_dir / f"{model_name}.safetensors", state.generator, release)

    start = time.monotonic()
    pbar = None
    if progress and ctx.is_main:
        from tqdm import tqdm
        pbar = tqdm(total=cfg.steps, initial=state.step, unit="step", dynamic_ncols=True)
    batches = _infinite(loader)

    def next_batch() -> Batch:
        return tuple(t.to(dev) for t in next(batches))

    metrics = None
    if state.step == 0 and warm is None:
        with torch.no_grad():
            done = r.initialise(state.nets, next_batch)
        if done is not None:
            meta["initialise"] = done
            if ctx.is_main:
                log.info("initialised from data: %s", json.dumps(done))
    if state.step == 0:  # the untrained baseline, so curves start where training starts
        metrics = validate(state, val)
        state.history.append({"step": 0, **metrics})
    stage = None
    while state.step < cfg.steps:
        if r.stage(state.step) != stage:
            stage = r.stage(state.step)
            if ctx.is_main:
                log.info("step %d: stage %s", state.step, stage)
        terms = gan_step(state, next_batch, amp_dtype)
        if not all(math.isfinite(v) for v in terms.values()):
            raise FloatingPointError(f"non-finite loss at step {state.step}: {terms}")
        if writer is not None and state.step % cfg.log_every == 0:
            for k, v in terms.items():
                writer.add_scalar(f"train/{k}", v, state.step)
            for name, opt in state.optimisers.items():
                writer.add_scalar("train/lr" if name == "generator" else f"train/lr_{name}",
                                  opt.param_groups[0]["lr"], state.step)
        out_of_time = max_minutes is not None and time.monotonic() - start > 60 * max_minutes
        if max_minutes is not None:  # ranks stop together
            out_of_time = distributed.any_rank(out_of_time, ctx, dev)
        if state.step % cfg.val_every == 0 or state.step == cfg.steps or out_of_time:
            metrics = validate(state, val)
            state.history.append({"step": state.step, **metrics})
            if writer is not None:
                for k, v in metrics.items():
                    writer.add_scalar(f"val/{k}", v, state.step)
            if ctx.is_main:
                log.info("step %d val %s", state.step, json.dumps(metrics))
                snapshots = run_dir / "snapshots"
                save_generator(snapshots / f"{model_name}-step{state.step:07d}.safetensors", state.generator,
                               {**{k: v for k, v in meta.items() if k != "command_history"}, "steps": state.step,
                                "metrics": {"val": metrics}})
        if pbar is not None:
            pbar.update(1)
            shown = {**terms, **(metrics or {})}
            pbar.set_postfix({k: f"{shown[k]:.3g}" if k in shown else "-" for k in r.progress})
        if state.step % cfg.ckpt_every == 0 or state.step == cfg.steps or out_of_time:
            checkpoint(metrics)
        if out_of_time:
            if ctx.is_main:
                log.info("stopping at step %d: time budget of %.1f min used", state.step, max_minutes)
            break
    if pbar is not None:
        pbar.close()
    if writer is not None:
        writer.close()
    return state
