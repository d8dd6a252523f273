"""The training loop: plain functions over a :class:`TrainState`.

One step (Coldenhoff & Ren 2021, Sec. V): the discriminators take an LSGAN step on
``(y, G(x))``, then the generator minimises
``lambda_adv L_adv(G; D) + lambda_flat L_flat(G) + L_time(G)``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import save_generator
from ..engine.overlap_save import offline
from ..losses import LossWeights, generator_loss, lsgan_discriminator_loss
from ..metrics import lsd, snr
from ..models import registry
from ..models.discriminators import HiFiGANDiscriminator
from .config import TrainConfig
from .data import make_datasets
from .state import TrainState, load_train_state, save_train_state

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


def init_state(cfg: TrainConfig, device: torch.device) -> TrainState:
    """Fresh generator (preset ``cfg.preset``), discriminators and optimisers."""
    torch.manual_seed(cfg.seed)
    g = registry.build(cfg.model, cfg.preset).to(device)
    opt_g = torch.optim.AdamW(g.parameters(), lr=cfg.lr, betas=cfg.betas)
    sched_g = torch.optim.lr_scheduler.ExponentialLR(opt_g, gamma=cfg.lr_gamma)
    d = opt_d = sched_d = None
    if cfg.adversarial:
        d = HiFiGANDiscriminator(cfg.discriminator).to(device)
        opt_d = torch.optim.AdamW(d.parameters(), lr=cfg.lr, betas=cfg.betas)
        sched_d = torch.optim.lr_scheduler.ExponentialLR(opt_d, gamma=cfg.lr_gamma)
    return TrainState(g, d, opt_g, opt_d, sched_g, sched_d)


def discriminator_view(cfg: TrainConfig, sample_rate: int, device: torch.device):
    """What the discriminators see of a waveform ``(batch, 1, samples)``.

    With ``cfg.disc_highpass_hz`` > 0: the band above that frequency (zero-phase linear-phase
    FIR high-pass, 127 taps, Kaiser window, at ``sample_rate`` Hz), times ``cfg.disc_input_gain``.
    The band below it is the input itself in real and generated audio alike, and the band the
    generator makes carries ~1 % of the energy: on the raw waveform the discriminators sit at
    chance (LSGAN loss 0.5 per sub-discriminator) and give the generator nothing to learn from.
    Otherwise the identity (the seed's discriminators see the waveform).
    """
    if cfg.disc_highpass_hz <= 0:
        return lambda w: w
    from scipy.signal import firwin

    taps = 127
    h = torch.tensor(firwin(taps, cfg.disc_highpass_hz, fs=sample_rate, pass_zero=False, window=("kaiser", 8.0)),
                     dtype=torch.float32, device=device).view(1, 1, taps) * cfg.disc_input_gain
    return lambda w: torch.nn.functional.conv1d(w, h.to(w.dtype), padding=taps // 2)


def train_step(state: TrainState, cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor,
               amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """One discriminator + generator update on a batch ``(batch, 1, samples)``; returns loss terms."""
    g, d = state.generator, state.discriminator
    view = discriminator_view(cfg, g.sample_rate_out, x.device)
    g.train()
    adv = d is not None and state.step >= cfg.adv_start_step
    autocast = torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    terms: dict[str, float] = {}
    with autocast:
        y_hat = g(x)
    if adv:
        d.train()
        with autocast:
            real_logits, real_feats = d(view(y))
            fake_logits, _ = d(view(y_hat.detach()))
            loss_d = lsgan_discriminator_loss(real_logits, fake_logits)
        state.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        state.opt_d.step()
        terms["disc"] = float(loss_d.detach())
        with autocast:
            fake_logits, fake_feats = d(view(y_hat))
            if cfg.weights.feature_matching > 0:
                with torch.no_grad():
                    _, real_feats = d(view(y))
    weights = cfg.weights if adv else dataclasses.replace(cfg.weights, adv=0.0, feature_matching=0.0)
    with autocast:
        loss_g, g_terms = generator_loss(
            y_hat.float(), y, fake_logits if adv else None, weights,
            fake_feats=fake_feats if adv and cfg.weights.feature_matching > 0 else None,
            real_feats=real_feats if adv and cfg.weights.feature_matching > 0 else None)
    state.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    state.opt_g.step()
    state.step += 1
    if state.step % cfg.lr_decay_every == 0:
        state.sched_g.step()
        if state.sched_d is not None:
            state.sched_d.step()
    terms.update({f"gen_{k}": v for k, v in g_terms.items()})
    return terms


@torch.no_grad()
def validate(state: TrainState, val: tuple[torch.Tensor, torch.Tensor], weights: LossWeights | None = None,
             batch: int = 8) -> dict[str, float]:
    """Mean SNR (dB), LSD, time-domain MSE and reconstruction loss on the fixed validation pairs.

    ``loss`` is the recipe's generator loss without its adversarial and feature-matching
    terms (``weights``; default: :class:`LossWeights`'s), averaged over batches of ``batch``.
    """
    g = state.generator.eval()
    recon = dataclasses.replace(weights or LossWeights(), adv=0.0, feature_matching=0.0)
    dev = next(g.parameters()).device
    rows, losses = [], []
    for i in range(0, val[0].shape[0], batch):
        x, y = val[0][i:i + batch].to(dev), val[1][i:i + batch].to(dev)
        y_hat = offline(g, x)
        rows.append(torch.stack([snr(y_hat[:, 0], y[:, 0]), lsd(y_hat[:, 0], y[:, 0]),
                                 ((y_hat - y) ** 2).mean(dim=(1, 2)), snr(x[:, 0], y[:, 0]),
                                 lsd(x[:, 0], y[:, 0])], dim=1).cpu())
        losses.append(generator_loss(y_hat, y, None, recon)[0].item())
    m = torch.cat(rows).mean(dim=0).tolist()
    return {"snr_db": m[0], "lsd": m[1], "mse": m[2], "loss": sum(losses) / len(losses),
            "input_snr_db": m[3], "input_lsd": m[4]}


def _infinite(loader):
    while True:
        yield from loader


def train(cfg: TrainConfig, corpus: Path, run_dir: Path, device: str = "auto", resume: bool = True,
          command: str = "", progress: bool = True, max_minutes: float | None = None) -> TrainState:
    """Train ``cfg.model`` on ``corpus`` until ``cfg.steps`` (or ``max_minutes``), checkpointing to ``run_dir``.

    Writes ``run_dir/last.safetensors`` (+ ``.json``; resumable), ``run_dir/NAME.safetensors``
    (+ ``.json``, the generator alone, a release candidate) and TensorBoard logs in
    ``run_dir/tb`` when tensorboard is installed.

    Raises:
        ValueError: no usable clips in the corpus (from the dataset), or an unusable device
            (:func:`pick_device`); both before ``run_dir`` is created.
        FileNotFoundError: ``corpus`` has no ``manifest.jsonl`` (also before ``run_dir`` exists).
        rtgan.checkpoint.CheckpointError: a resume checkpoint that does not fit ``cfg``.
    """
    from ..data.corpus import manifest_hash

    run_dir = Path(run_dir)
    # everything that can fail fast fails before the run directory exists
    dev = pick_device(device)
    amp_dtype = torch.bfloat16 if (cfg.amp and dev.type == "cuda") else None
    state = init_state(cfg, dev)
    pairs, val = make_datasets(Path(corpus), cfg, state.generator.sample_rate_out)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"train_config": cfg.to_dict(), "command": command,
                            "corpus_manifest_hash": manifest_hash(Path(corpus) / "manifest.jsonl"),
                            "corpus": str(corpus), "preset": cfg.preset, "recipe": cfg.recipe}
    last = run_dir / LAST
    if resume and last.exists():
        old = load_train_state(last, state)
        meta["resumed_from_step"] = state.step
        meta["command_history"] = old.get("command_history", [old.get("command", "")]) + [command]
        log.info("resumed from %s at step %d", last, state.step)
    else:
        meta["command_history"] = [command]
    # clips are drawn with replacement (a random crop each time), so even a corpus with
    # fewer clips than a batch yields full batches
    sampler = torch.utils.data.RandomSampler(pairs, replacement=True, num_samples=cfg.batch_size * 1000,
                                             generator=torch.Generator().manual_seed(cfg.seed + state.step))
    loader = torch.utils.data.DataLoader(pairs, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                                         num_workers=cfg.num_workers, persistent_workers=cfg.num_workers > 0)
    writer = None
    try:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(run_dir / "tb"))
    except ImportError:
        log.warning("tensorboard not installed: no TensorBoard logs (pip install 'rtgan[train]')")

    def checkpoint(metrics: dict[str, float] | None = None) -> None:
        save_train_state(last, state, meta)
        release = {k: v for k, v in meta.items() if k != "command_history"}
        release.update(steps=state.step, commands=meta["command_history"],
                       metrics={"val": metrics or (state.history[-1] if state.history else {})})
        save_generator(run_dir / f"{cfg.model}.safetensors", state.generator, release)

    start = time.monotonic()
    pbar = None
    if progress:
        from tqdm import tqdm
        pbar = tqdm(total=cfg.steps, initial=state.step, unit="step", dynamic_ncols=True)
    batches = _infinite(loader)
    metrics = None
    if state.step == 0:  # the untrained baseline, so curves start where training starts
        metrics = validate(state, val, cfg.weights)
        state.history.append({"step": 0, **metrics})
    while state.step < cfg.steps:
        x, y = next(batches)
        terms = train_step(state, cfg, x.to(dev), y.to(dev), amp_dtype)
        if not all(math.isfinite(v) for v in terms.values()):
            raise FloatingPointError(f"non-finite loss at step {state.step}: {terms}")
        if writer is not None and state.step % cfg.log_every == 0:
            for k, v in terms.items():
                writer.add_scalar(f"train/{k}", v, state.step)
            writer.add_scalar("train/lr", state.opt_g.param_groups[0]["lr"], state.step)
        out_of_time = max_minutes is not None and time.monotonic() - start > 60 * max_minutes
        if state.step % cfg.val_every == 0 or state.step == cfg.steps or out_of_time:
            metrics = validate(state, val, cfg.weights)
            state.history.append({"step": state.step, **metrics})
            if writer is not None:
                for k, v in metrics.items():
                    writer.add_scalar(f"val/{k}", v, state.step)
            log.info("step %d val %s", state.step, json.dumps(metrics))
            snapshots = run_dir / "snapshots"
            save_generator(snapshots / f"{cfg.model}-step{state.step:07d}.safetensors", state.generator,
                           {**{k: v for k, v in meta.items() if k != "command_history"}, "steps": state.step,
                            "metrics": {"val": metrics}})
        if pbar is not None:
            pbar.update(1)
            pbar.set_postfix(loss=f"{terms['gen_total']:.3g}", snr=f"{metrics['snr_db']:.2f}" if metrics else "-",
                             lsd=f"{metrics['lsd']:.3f}" if metrics else "-")
        if state.step % cfg.ckpt_every == 0 or state.step == cfg.steps or out_of_time:
            checkpoint(metrics)
        if out_of_time:
            log.info("stopping at step %d: time budget of %.1f min used", state.step, max_minutes)
            break
    if pbar is not None:
        pbar.close()
    if writer is not None:
        writer.close()
    return state
