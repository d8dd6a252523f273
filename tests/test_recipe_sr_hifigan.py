"""sr-hifigan's recipe trains exactly as the loop did before recipes, and resumes its old checkpoints.

``_old_*`` below are the pre-recipe code (``git show 2b1352f:rtgan/training/loop.py`` and
``...:rtgan/training/state.py``), copied with only the imports adapted: the numbers of the new
loop are compared with what that code computes, not with values the new code produced.
"""
import dataclasses
import json

import pytest
import torch

from rtgan.checkpoint import config_to_dict, save_checkpoint
from rtgan.engine.overlap_save import offline
from rtgan.losses import LossWeights, generator_loss, lsgan_discriminator_loss
from rtgan.metrics import lsd, snr
from rtgan.models import registry
from rtgan.models.discriminators import HiFiGANDiscriminator
from rtgan.models.sr_hifigan_training import SRHiFiGANTrainConfig, discriminator_view
from rtgan.training.config import PRESETS
from rtgan.training.loop import gan_step, init_state, train, train_step, validate
from rtgan.training.state import load_train_state


# -- the pre-recipe code --------------------------------------------------------------------

class _OldState:
    def __init__(self, generator, discriminator, opt_g, opt_d, sched_g, sched_d):
        self.generator, self.discriminator = generator, discriminator
        self.opt_g, self.opt_d, self.sched_g, self.sched_d = opt_g, opt_d, sched_g, sched_d
        self.step, self.history = 0, []


def _old_init_state(cfg, device):
    torch.manual_seed(cfg.seed)
    g = registry.build(cfg.model, cfg.preset).to(device)
    opt_g = torch.optim.AdamW(g.parameters(), lr=cfg.lr, betas=cfg.betas)
    sched_g = torch.optim.lr_scheduler.ExponentialLR(opt_g, gamma=cfg.lr_gamma)
    d = opt_d = sched_d = None
    if cfg.adversarial:
        d = HiFiGANDiscriminator(cfg.discriminator).to(device)
        opt_d = torch.optim.AdamW(d.parameters(), lr=cfg.lr, betas=cfg.betas)
        sched_d = torch.optim.lr_scheduler.ExponentialLR(opt_d, gamma=cfg.lr_gamma)
    return _OldState(g, d, opt_g, opt_d, sched_g, sched_d)


def _old_train_step(state, cfg, x, y, amp_dtype=None):
    g, d = state.generator, state.discriminator
    view = discriminator_view(cfg, g.sample_rate_out, x.device)
    g.train()
    adv = d is not None and state.step >= cfg.adv_start_step
    autocast = torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    terms = {}
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
def _old_validate(state, val, weights=None, batch=8):
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


def _old_flatten_optimizer(prefix, opt):
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _old_save_train_state(path, state, metadata):
    tensors = {f"generator.{k}": v for k, v in state.generator.state_dict().items()}
    meta = dict(metadata)
    meta.update(step=state.step, history=state.history, model=state.generator.name,
                config=config_to_dict(state.generator.config), sched_g=state.sched_g.state_dict())
    t, m = _old_flatten_optimizer("optim_g", state.opt_g)
    tensors.update(t)
    meta["optim_g"] = m
    if state.discriminator is not None:
        tensors.update({f"discriminator.{k}": v for k, v in state.discriminator.state_dict().items()})
        t, m = _old_flatten_optimizer("optim_d", state.opt_d)
        tensors.update(t)
        meta["optim_d"] = m
        meta["sched_d"] = state.sched_d.state_dict()
    return save_checkpoint(path, tensors, meta)


# -- the tests ------------------------------------------------------------------------------

CONFIGS = {
    "bwe": PRESETS["tiny"],  # high-passed discriminator view, feature matching, MR-STFT
    "paper": SRHiFiGANTrainConfig.with_recipe(PRESETS["tiny"], "paper"),
    "before-adv-start": dataclasses.replace(PRESETS["tiny"], adv_start_step=2),  # steps 0, 1 without D
    "no-adversarial": dataclasses.replace(PRESETS["tiny"], adversarial=False),
    "lr-decay": dataclasses.replace(PRESETS["tiny"], lr_decay_every=2),
}


def _pair(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.randn(2, 1, 4096, generator=g)
    return x, x + 0.01 * torch.randn(2, 1, 4096, generator=g)


def _same_optimizer(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        for key, v in sa["state"][k].items():
            assert torch.equal(v, sb["state"][k][key]), (k, key)


def _same_as_old(new, old):
    for a, b in zip(old.generator.state_dict().values(), new.nets["generator"].state_dict().values(), strict=True):
        assert torch.equal(a, b)
    _same_optimizer(old.opt_g, new.optimisers["generator"])
    assert old.sched_g.state_dict() == new.schedulers["generator"].state_dict()
    if old.discriminator is None:
        assert "discriminator" not in new.nets
        return
    for a, b in zip(old.discriminator.state_dict().values(), new.nets["discriminator"].state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    _same_optimizer(old.opt_d, new.optimisers["discriminator"])
    assert old.sched_d.state_dict() == new.schedulers["discriminator"].state_dict()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_recipe_steps_exactly_as_the_old_train_step(name):
    """Same seed, same batches: the same loss terms (to the bit), weights, optimiser and scheduler states."""
    cfg = CONFIGS[name]
    old, new = _old_init_state(cfg, torch.device("cpu")), init_state(cfg, torch.device("cpu"))
    _same_as_old(new, old)  # the networks are built in the same order from the same seed
    batches = [_pair(1), _pair(2), _pair(3)]
    for x, y in batches:
        want = _old_train_step(old, cfg, x, y)
        got = gan_step(new, lambda: (x, y))
        assert got == want
    assert new.step == old.step == 3
    _same_as_old(new, old)
    assert validate(new, _pair(4)) == _old_validate(old, _pair(4), cfg.weights)
    # the pre-recipe entry point still works, and refuses a config the state was not built with
    x, y = _pair(5)
    assert train_step(new, cfg, x, y) == _old_train_step(old, cfg, x, y)
    with pytest.raises(ValueError, match="config"):
        train_step(new, dataclasses.replace(cfg, seed=1), x, y)


def test_a_checkpoint_in_the_old_format_resumes_identically(corpus, tmp_path):
    """A last.safetensors written by the pre-recipe code loads strictly into the new state, then trains on."""
    cfg = dataclasses.replace(PRESETS["tiny"], steps=4, val_every=2, ckpt_every=2)
    old = _old_init_state(cfg, torch.device("cpu"))
    for i in range(2):
        x, y = _pair(10 + i)
        _old_train_step(old, cfg, x, y)
    old.history = [{"step": 2, "loss": 1.0}]
    run = tmp_path / "run"
    _old_save_train_state(run / "last.safetensors", old,
                          {"train_config": cfg.to_dict(), "command": "old", "preset": "tiny", "recipe": "bwe"})
    assert "networks" not in json.loads((run / "last.json").read_text())  # really the old format

    new = init_state(cfg, torch.device("cpu"))
    meta = load_train_state(run / "last.safetensors", new)
    assert new.step == 2 and new.history == old.history and meta["command"] == "old"
    _same_as_old(new, old)
    # and the next step from there is the old code's next step
    x, y = _pair(12)
    assert gan_step(new, lambda: (x, y)) == _old_train_step(old, cfg, x, y)
    _same_as_old(new, old)

    # train() resumes the run from the old checkpoint and rewrites it in the new format
    state = train(cfg, corpus, run, device="cpu", command="new", progress=False)
    assert state.step == 4
    meta = json.loads((run / "last.json").read_text())
    assert meta["command_history"] == ["old", "new"] and meta["resumed_from_step"] == 2
    assert meta["networks"] == ["discriminator", "generator"]
    assert {"optim_g", "optim_d", "sched_g", "sched_d"} <= set(meta)


def test_an_adversarial_checkpoint_does_not_resume_a_reconstruction_run(corpus, tmp_path):
    from rtgan.checkpoint import CheckpointError
    cfg = dataclasses.replace(PRESETS["tiny"], steps=2, val_every=2, ckpt_every=2)
    train(cfg, corpus, tmp_path / "run", device="cpu", progress=False)
    with pytest.raises(CheckpointError, match="networks"):
        load_train_state(tmp_path / "run" / "last.safetensors",
                         init_state(dataclasses.replace(cfg, adversarial=False), torch.device("cpu")))
