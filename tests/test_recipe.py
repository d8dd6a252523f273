"""The recipe contract, proven with toy WGAN recipes on synthetic data (no corpus).

A tiny conv generator learns a fixed smoothing filter (MSE) against a tiny MLP critic with the
Wasserstein losses, ``n_critic = 3``: kept Lipschitz by the WGAN-GP gradient penalty, or by
weight clipping in ``after_critic_step``. A third variant puts a frozen pretrained network
inside the generator loss (content loss), loaded by name and content hash.
"""
import dataclasses
import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from rtgan.checkpoint import CheckpointError, read_checkpoint, save_generator
from rtgan.losses import (clip_weights_, content_loss, gradient_penalty, wasserstein_critic_loss,
                          wasserstein_generator_loss)
from rtgan.models import registry
from rtgan.models.recipe import Recipe, TrainConfig
from rtgan.training.frozen import content_hash, load_frozen
from rtgan.training.loop import init_state, train
from rtgan.training.state import load_train_state

SAMPLES = 16
SMOOTH = torch.tensor([0.5, 1.0, 0.5]).view(1, 1, 3)  # what the generator has to learn


@dataclass(frozen=True)
class ToyConfig(TrainConfig):
    """The loop's settings for a few CPU seconds, and the toy's own."""

    model: str = "toy"
    preset: str = "toy"
    steps: int = 12
    batch_size: int = 16
    val_items: int = 64
    val_every: int = 4
    ckpt_every: int = 4
    log_every: int = 1
    num_workers: int = 0
    amp: bool = False
    lr: float = 2e-2
    adv_weight: float = 0.05
    adv_start_step: int = 0
    clip: float = 0.0  # > 0: weight clipping at this bound instead of the gradient penalty
    gp_weight: float = 10.0
    content_weight: float = 0.0


@dataclass(frozen=True)
class ToyNetConfig:
    channels: int = 1


class ToyGenerator(nn.Module):
    """``(batch, 1, SAMPLES)`` -> same shape: one conv."""

    name = "toy"

    def __init__(self, config: ToyNetConfig = ToyNetConfig()) -> None:
        super().__init__()
        self.config = config
        self.conv = nn.Conv1d(1, 1, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


class ToyCritic(nn.Module):
    """``(batch, 1, SAMPLES)`` -> one score per example ``(batch, 1)``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(SAMPLES, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))

    def forward(self, y):
        return self.net(y)


class WGANToy(Recipe):
    """``(x, y = SMOOTH * x)`` pairs; generator loss MSE + ``adv_weight`` Wasserstein; critic WGAN-GP or clipped.

    Records every call in ``events`` as ``(what, step, batch id)`` and the critic's largest
    absolute weight wherever it is seen, to check the loop's order of calls.
    """

    config_cls = ToyConfig
    n_critic = 3
    progress = ("gen_total", "mse")

    def __init__(self, cfg):
        super().__init__(cfg)
        self.events = []
        self.critic_max = []  # (where, max |w|)

    def networks(self):
        return {"generator": ToyGenerator(), "critic": ToyCritic()}

    def optimisers(self, nets):
        return {name: torch.optim.Adam(nets[name].parameters(), lr=self.cfg.lr, betas=(0.5, 0.9))
                for name in ("generator", "critic")}

    def schedulers(self, optimisers):
        return {name: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99) for name, opt in optimisers.items()}

    def synthetic_data(self):
        g = torch.Generator().manual_seed(self.cfg.seed)
        x = torch.randn(256, 1, SAMPLES, generator=g)
        ids = torch.arange(256, dtype=torch.float32)
        y = nn.functional.conv1d(x, SMOOTH, padding=1)
        val = torch.randn(self.cfg.val_items, 1, SAMPLES, generator=g)
        return (torch.utils.data.TensorDataset(x, y, ids),
                (val, nn.functional.conv1d(val, SMOOTH, padding=1), torch.zeros(self.cfg.val_items)))

    def adversarial(self, step):
        return step >= self.cfg.adv_start_step

    def _max_w(self, nets, where):
        self.critic_max.append((where, max(float(p.detach().abs().max()) for p in nets["critic"].parameters())))

    def generate(self, nets, batch):
        return nets["generator"](batch[0])

    def critic_loss(self, nets, batch, fake, step):
        assert not fake.requires_grad  # the loop passes the generator output detached
        self.events.append(("critic", step, tuple(batch[2].tolist())))
        self._max_w(nets, "critic_loss")
        c, y = nets["critic"], batch[1]
        loss = wasserstein_critic_loss(c(y), c(fake))
        terms = {"critic_w": float(loss.detach())}
        if self.cfg.clip == 0:
            gp = gradient_penalty(c, y, fake, weight=self.cfg.gp_weight)
            loss = loss + gp
            terms["critic_gp"] = float(gp.detach())
        return loss, terms

    def after_critic_step(self, nets, step):
        if self.cfg.clip > 0:
            clip_weights_(nets["critic"], self.cfg.clip)
        self.events.append(("after", step, None))
        self._max_w(nets, "after_critic_step")

    def generator_loss(self, nets, batch, out, step):
        assert out.requires_grad
        self.events.append(("generator", step, tuple(batch[2].tolist())))
        self._max_w(nets, "generator_loss")
        y = batch[1]
        mse = torch.mean((out - y) ** 2)
        loss = mse
        terms = {"gen_mse": float(mse.detach())}
        if self.adversarial(step):
            adv = wasserstein_generator_loss(nets["critic"](out))
            loss = loss + self.cfg.adv_weight * adv
            terms["gen_adv"] = float(adv.detach())
        if self.cfg.content_weight > 0:
            c = content_loss(nets["ae"], out, y)
            loss = loss + self.cfg.content_weight * c
            terms["gen_content"] = float(c.detach())
        terms["gen_total"] = float(loss.detach())
        return loss, terms

    def validate(self, nets, val):
        assert not torch.is_grad_enabled() and not any(n.training for n in nets.values())
        return {"mse": float(torch.mean((nets["generator"](val[0]) - val[1]) ** 2))}


def _steps(events):
    """``{step: [what, ...]}`` in call order."""
    out = {}
    for what, step, _ in events:
        out.setdefault(step, []).append(what)
    return out


def _lowered(state):
    """The validation MSE went down at every validation, by 20 % in all."""
    first, last = state.history[0], state.history[-1]
    assert first["step"] == 0 and last["step"] == state.recipe.cfg.steps
    mse = [h["mse"] for h in state.history]
    return all(b < a for a, b in zip(mse, mse[1:])) and last["mse"] < 0.8 * first["mse"]


# before adv_start_step the critic's scheduler steps with the generator's, before the critic's
# first step (as sr-hifigan's does): torch warns about that order
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_wgan_gp_critic_steps_n_critic_times_per_generator_step(tmp_path):
    cfg = ToyConfig(adv_start_step=2)
    state = train(cfg, None, tmp_path / "run", device="cpu", progress=False, recipe=WGANToy)
    steps = _steps(state.recipe.events)
    assert sorted(steps) == list(range(cfg.steps))
    # the schedule: no critic before adv_start_step, then 3 critic steps (each followed by the hook)
    assert steps[0] == steps[1] == ["generator"]
    for s in range(2, cfg.steps):
        assert steps[s] == ["critic", "after"] * 3 + ["generator"]
    # each critic round draws a fresh batch; the generator step reuses the last one
    for s in range(2, cfg.steps):
        ev = [e for e in state.recipe.events if e[1] == s and e[0] != "after"]
        assert len({e[2] for e in ev[:3]}) == 3 and ev[3][2] == ev[2][2]
    assert _lowered(state)


class WarmupToy(WGANToy):
    """WGANToy whose critic starts two steps before its adversarial terms (a critic warm-up)."""

    def critic_trains(self, step):
        return step >= self.cfg.adv_start_step - 2


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_a_critic_warm_up_trains_the_critic_once_per_step_before_the_adversarial_terms(tmp_path):
    cfg = ToyConfig(adv_start_step=3, steps=6)
    state = train(cfg, None, tmp_path / "run", device="cpu", progress=False, recipe=WarmupToy)
    steps = _steps(state.recipe.events)
    assert steps[0] == ["generator"]
    # warm-up: one critic step on the generator step's own batch, no adversarial term yet
    assert steps[1] == steps[2] == ["critic", "after", "generator"]
    for s in (1, 2):
        ev = [e for e in state.recipe.events if e[1] == s and e[0] != "after"]
        assert ev[0][2] == ev[1][2]
    for s in range(3, cfg.steps):
        assert steps[s] == ["critic", "after"] * 3 + ["generator"]
    assert state.recipe.stage(0) == "reconstruction" and state.recipe.stage(1) == "critic warm-up"
    assert state.recipe.stage(3) == "adversarial"


def test_sr_hifigan_disc_warmup_starts_the_discriminators_before_the_gan_terms():
    from rtgan.models.sr_hifigan_training import SRHiFiGANRecipe, SRHiFiGANTrainConfig
    r = SRHiFiGANRecipe(SRHiFiGANTrainConfig(preset="tiny", adv_start_step=10, disc_warmup_steps=4))
    assert [r.critic_trains(s) for s in (5, 6, 9, 10)] == [False, True, True, True]
    assert [r.adversarial(s) for s in (6, 9, 10)] == [False, False, True]
    assert not SRHiFiGANRecipe(SRHiFiGANTrainConfig(preset="tiny", adv_start_step=10)).critic_trains(9)
    with pytest.raises(ValueError, match="disc_warmup_steps"):
        SRHiFiGANTrainConfig(disc_warmup_steps=-1)


def test_weight_clipping_holds_after_every_critic_step(tmp_path):
    c = 2.0 ** -4  # exact in float32
    cfg = ToyConfig(clip=c, adv_weight=1.0)
    state = train(cfg, None, tmp_path / "run", device="cpu", progress=False, recipe=WGANToy)
    seen = state.recipe.critic_max
    assert seen[0][1] > c  # the fresh critic is outside the box: clipping had work to do
    after = [w for where, w in seen if where == "after_critic_step"]
    assert len(after) == 3 * cfg.steps and max(after) <= c
    # nothing between a critic step and the next use of the critic undoes it
    assert max(w for where, w in seen[1:] if where != "after_critic_step") <= c
    assert all(p.abs().max() <= c for p in state.nets["critic"].parameters())
    assert _lowered(state)


def test_generic_checkpoint_holds_every_trainable_network_and_resumes(tmp_path):
    cfg = ToyConfig(steps=4, ckpt_every=2)
    run = tmp_path / "run"
    state = train(cfg, None, run, device="cpu", progress=False, recipe=WGANToy)
    tensors, meta = read_checkpoint(run / "last.safetensors")
    assert meta["networks"] == ["critic", "generator"] and meta["step"] == 4
    assert {"optim_g", "sched_g", "optim_critic", "sched_critic"} <= set(meta)
    assert any(k.startswith("critic.") for k in tensors) and any(k.startswith("optim_critic.") for k in tensors)
    fresh = init_state(cfg, torch.device("cpu"), recipe=WGANToy)
    load_train_state(run / "last.safetensors", fresh)
    for name in ("generator", "critic"):
        for a, b in zip(state.nets[name].state_dict().values(), fresh.nets[name].state_dict().values(), strict=True):
            assert torch.equal(a, b)
        sa, sb = state.optimisers[name].state_dict(), fresh.optimisers[name].state_dict()
        assert sa["param_groups"] == sb["param_groups"]
        assert all(torch.equal(v, sb["state"][i][k]) for i in sa["state"] for k, v in sa["state"][i].items()
                   if torch.is_tensor(v))
        assert state.schedulers[name].state_dict() == fresh.schedulers[name].state_dict()
    more = train(dataclasses.replace(cfg, steps=6), None, run, device="cpu", progress=False, recipe=WGANToy)
    assert more.step == 6 and _steps(more.recipe.events).keys() == {4, 5}


def test_a_critic_step_without_a_critic_is_refused(tmp_path):
    class NoCritic(WGANToy):
        def networks(self):
            return {"generator": ToyGenerator()}

        def optimisers(self, nets):
            return {"generator": torch.optim.Adam(nets["generator"].parameters())}

    with pytest.raises(ValueError, match="no critic"):
        train(ToyConfig(), None, tmp_path / "run", device="cpu", progress=False, recipe=NoCritic)


def test_a_non_finite_loss_stops_before_the_update(tmp_path):
    class Exploding(WGANToy):
        def generator_loss(self, nets, batch, out, step):
            loss, terms = super().generator_loss(nets, batch, out, step)
            return loss * float("nan"), terms

    state = init_state(ToyConfig(), torch.device("cpu"), recipe=Exploding)
    before = [p.clone() for p in state.nets["generator"].parameters()]
    x = torch.randn(4, 1, SAMPLES)
    from rtgan.training.loop import gan_step
    with pytest.raises(FloatingPointError, match="generator"):
        gan_step(state, lambda: (x, x, torch.zeros(4)))
    assert all(torch.equal(a, b) for a, b in zip(before, state.nets["generator"].parameters()))


# -- frozen networks --------------------------------------------------------------------------

@dataclass(frozen=True)
class ToyAEConfig:
    channels: int = 4


class ToyAE(nn.Module):
    """A 'pretrained' feature extractor: ``(batch, 1, SAMPLES)`` -> ``(batch, channels, SAMPLES // 2)``."""

    name = "toy-ae"

    def __init__(self, config: ToyAEConfig = ToyAEConfig()) -> None:
        super().__init__()
        self.config = config
        self.enc = nn.Conv1d(1, config.channels, 4, stride=2, padding=1)

    def forward(self, y):
        return torch.tanh(self.enc(y))


@pytest.fixture()
def toy_ae(tmp_path, monkeypatch):
    """``toy-ae`` registered for the test only, its checkpoint in ``tmp_path/weights``: (dir, sha256, net)."""
    registry.available()  # discover the real models first
    monkeypatch.setitem(registry._REGISTRY, "toy-ae",
                        registry.ModelEntry("toy-ae", ToyAE, ToyAEConfig, {"tiny": ToyAEConfig()}, "test"))
    torch.manual_seed(123)
    ae = ToyAE()
    weights = tmp_path / "weights"
    save_generator(weights / "toy-ae.safetensors", ae, {"steps": 1})
    return weights, content_hash(weights / "toy-ae.safetensors"), ae


def _with_frozen(spec):
    return type("FrozenToy", (WGANToy,), {"frozen": spec})


def test_a_frozen_network_loads_by_name_and_hash_and_stays_frozen(toy_ae, tmp_path):
    weights, sha, ae = toy_ae
    recipe = _with_frozen({"ae": ("toy-ae", sha)})
    cfg = ToyConfig(content_weight=1.0)
    run = tmp_path / "run"
    state = train(cfg, None, run, device="cpu", progress=False, recipe=recipe, weights_dir=weights)
    net = state.nets["ae"]
    assert isinstance(net, ToyAE) and not net.training
    assert not any(p.requires_grad for p in net.parameters())
    assert "ae" not in state.optimisers
    for a, b in zip(ae.state_dict().values(), net.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # loaded exactly, and training did not move it
    tensors, meta = read_checkpoint(run / "last.safetensors")
    assert not any(k.startswith("ae.") for k in tensors)
    assert meta["frozen"] == {"ae": {"model": "toy-ae", "sha256": sha}}
    assert json.loads((run / "toy.json").read_text())["frozen"] == meta["frozen"]  # release provenance
    assert _lowered(state)
    # the metadata's non-network parts do not change the hash; the config does
    meta_file = weights / "toy-ae.json"
    d = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**d, "metrics": {"val": 1}}))
    assert content_hash(weights / "toy-ae.safetensors") == sha
    meta_file.write_text(json.dumps({**d, "config": {"channels": 5}}))
    assert content_hash(weights / "toy-ae.safetensors") != sha


def test_a_frozen_network_with_the_wrong_hash_or_name_is_a_clear_error(toy_ae, tmp_path):
    weights, sha, _ = toy_ae
    run = tmp_path / "run"
    bad = "0" * 64
    with pytest.raises(CheckpointError, match=f"content hash {sha}.*expects {bad}"):
        train(ToyConfig(), None, run, device="cpu", progress=False, recipe=_with_frozen({"ae": ("toy-ae", bad)}),
              weights_dir=weights)
    with pytest.raises(CheckpointError, match="unknown model 'no-such-model'"):
        train(ToyConfig(), None, run, device="cpu", progress=False,
              recipe=_with_frozen({"ae": ("no-such-model", sha)}), weights_dir=weights)
    assert not run.exists()  # both fail before the run directory is made
    with pytest.raises(CheckpointError, match="no checkpoint of model 'toy-ae'"):
        load_frozen("ae", "toy-ae", sha, tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="also a trainable"):
        init_state(ToyConfig(), torch.device("cpu"), recipe=_with_frozen({"critic": ("toy-ae", sha)}),
                   weights_dir=weights)


# -- registration -----------------------------------------------------------------------------

def test_recipes_register_with_their_model(monkeypatch):
    from rtgan.models.sr_hifigan_training import SRHiFiGANRecipe
    assert registry.recipe("sr-hifigan") is SRHiFiGANRecipe
    with pytest.raises(ValueError, match="already has a recipe"):
        registry.register_recipe("sr-hifigan")(WGANToy)
    with pytest.raises(ValueError, match="no such model"):
        registry.register_recipe("no-such-model")(WGANToy)
    monkeypatch.setitem(registry._REGISTRY, "toy-ae",
                        registry.ModelEntry("toy-ae", ToyAE, ToyAEConfig, {"tiny": ToyAEConfig()}, "test"))
    with pytest.raises(KeyError, match="no training recipe"):
        registry.recipe("toy-ae")
    with pytest.raises(TypeError, match="ToyConfig"):
        WGANToy(TrainConfig())


def test_models_never_import_training():
    """The recipe lives with the model; the dependency goes training -> models only."""
    from test_imports import GRAPH
    bad = {m: sorted(d for d in deps if d == "rtgan.training" or d.startswith("rtgan.training."))
           for m, deps in GRAPH.items() if m.startswith("rtgan.models")}
    assert not {m: d for m, d in bad.items() if d}, bad
    assert "rtgan.models.recipe" in GRAPH["rtgan.models.sr_hifigan_training"]
    assert "rtgan.models.recipe" in GRAPH["rtgan.training.loop"]
