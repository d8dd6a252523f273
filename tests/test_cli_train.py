"""``rtgan train``'s options: the per-model default preset, the content-loss settings and ``--weights-dir``.

Most tests stop short of training: :func:`rtgan.training.loop.train` is replaced by one that
records what the command would train (config, run directory, weights directory). One test trains
sr16-unet-c's tiny preset for two steps against a tiny frozen ae-kimsathe, all from the command line.
"""
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import rtgan.training.loop as loop
from rtgan.checkpoint import read_checkpoint, save_generator
from rtgan.cli.main import build_parser, main
from rtgan.models import registry
from rtgan.models.sr16_content_training import CONTENT_NET, ContentLossSettings
from rtgan.training.config import default_preset, presets
from rtgan.training.frozen import content_hash

C_MODELS = ("sr16-gan-c", "sr16-unet-c", "sr16-wgan-c")


@pytest.fixture()
def recorded(monkeypatch):
    """``rtgan train`` with the loop replaced: the keyword arguments of each call to ``train``."""
    calls = []

    def fake_train(cfg, corpus, run_dir, **kw):
        calls.append({"cfg": cfg, "corpus": corpus, "run_dir": run_dir, **kw})
        return SimpleNamespace(step=0, history=[])

    monkeypatch.setattr(loop, "train", fake_train)
    return calls


@pytest.fixture()
def frozen_ae(tmp_path):
    """A tiny ae-kimsathe saved as a trained one would be: ``(weights dir, sha256)``."""
    torch.manual_seed(7)
    weights = tmp_path / "weights"
    save_generator(weights / "ae-kimsathe.safetensors", registry.build("ae-kimsathe", "tiny"), {"steps": 0})
    return weights, content_hash(weights / "ae-kimsathe.safetensors")


def _error(capsys) -> str:
    """The one line a refused command writes to stderr (and nothing on stdout)."""
    out, err = capsys.readouterr()
    assert not out, out
    err = err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _train(*args: str, data: Path) -> int:
    return main(["train", *args, "--data", str(data), "-q"])


# -- the default preset -----------------------------------------------------------------------

def test_the_default_preset_is_the_models_own(monkeypatch):
    assert default_preset("sr-hifigan") == "live"
    assert default_preset("sr16-unet") == "live" and default_preset("sr16-wgan-c") == "live"
    assert "live" not in presets("ae-kimsathe") and default_preset("ae-kimsathe") == "small"
    import rtgan.training.config as config
    monkeypatch.setattr(config, "presets", lambda model: {"b": None, "a": None})
    assert default_preset("anything") == "b"  # neither live nor small: the recipe's first
    monkeypatch.setattr(config, "presets", lambda model: {})
    with pytest.raises(KeyError, match="no presets"):
        default_preset("anything")


def test_train_without_preset_takes_the_models_default(recorded, tmp_path, capsys):
    assert _train("ae-kimsathe", "--steps", "1", data=tmp_path) == 0
    assert _train("sr16-unet", "--steps", "1", data=tmp_path) == 0
    ae, unet = recorded
    assert ae["cfg"].preset == "small" and ae["cfg"].model == "ae-kimsathe" and ae["cfg"].steps == 1
    assert ae["run_dir"] == Path("runs/ae-kimsathe-small") and ae["weights_dir"] is None
    assert unet["cfg"].preset == "live" and unet["run_dir"] == Path("runs/sr16-unet-live")


def test_an_unknown_preset_lists_the_models_presets(recorded, tmp_path, capsys):
    assert _train("ae-kimsathe", "--preset", "live", data=tmp_path) == 2
    line = _error(capsys)
    assert "model 'ae-kimsathe' has no training preset 'live'; presets: tiny, small, paper" in line
    assert not recorded


def test_the_help_gives_the_defaults(capsys):
    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    text = " ".join(sub.choices["train"].format_help().split())
    assert "default: live, or small, or the model's first preset" in text
    assert f"(default: {ContentLossSettings().content_weight:g})" in text  # --lambda-content
    assert f"default: the shipped weights, {registry.WEIGHTS_DIR}" in " ".join(text.split())  # --weights-dir
    for option in ("--lambda-content FLOAT", "--content-net-sha256 HEX", "--weights-dir DIR"):
        assert option in text


# -- content-loss settings and the frozen networks' directory ---------------------------------

def test_content_options_reach_the_config_and_the_loop(recorded, frozen_ae, tmp_path):
    weights, sha = frozen_ae
    for model in C_MODELS:
        assert _train(model, "--preset", "tiny", "--lambda-content", "0.25", "--content-net-sha256", sha.upper(),
                      "--weights-dir", str(weights), data=tmp_path) == 0
    for model, call in zip(C_MODELS, recorded, strict=True):
        cfg = call["cfg"]
        assert cfg.model == model and cfg.preset == "tiny"
        assert cfg.content_weight == 0.25 and cfg.content_net_sha256 == sha  # lower-cased
        assert call["weights_dir"] == weights
    # without --weights-dir the loop gets None: the shipped weights
    assert _train("sr16-unet-c", "--preset", "tiny", "--content-net-sha256", sha, data=tmp_path) == 0
    assert recorded[-1]["weights_dir"] is None
    assert recorded[-1]["cfg"].content_weight == ContentLossSettings().content_weight


@pytest.mark.parametrize("model,option,value,message", [
    ("sr-hifigan", "--lambda-content", "0.5",
     "model 'sr-hifigan''s training has no content loss (--lambda-content); models with one: " + ", ".join(C_MODELS)),
    ("sr16-unet", "--content-net-sha256", "0" * 64, "model 'sr16-unet''s training has no content loss "
                                                    "(--content-net-sha256)"),
    ("ae-kimsathe", "--weights-dir", ".", "model 'ae-kimsathe''s training loads no frozen networks (--weights-dir"),
    ("sr16-gan", "--weights-dir", ".", "model 'sr16-gan''s training loads no frozen networks (--weights-dir"),
    ("ae-kimsathe", "--no-adversarial", None, "model 'ae-kimsathe''s training has no setting adversarial "
                                              "(--no-adversarial)"),
    ("sr16-unet-c", "--lambda-content", "-1", "content_weight must be a finite number >= 0"),
    ("sr16-unet-c", "--content-net-sha256", "abc", "content_net_sha256 must be 64 lowercase hex digits"),
])
def test_settings_a_models_training_lacks_are_refused_in_one_line(recorded, tmp_path, capsys, model, option,
                                                                  value, message):
    args = [option] + ([value] if value is not None else [])
    assert _train(model, "--preset", "tiny", *args, "--run-dir", str(tmp_path / "run"), data=tmp_path) == 2
    assert message in _error(capsys)
    assert not recorded and not (tmp_path / "run").exists()


def test_weights_dir_without_a_hash_or_that_is_missing(recorded, frozen_ae, tmp_path, capsys):
    weights, sha = frozen_ae
    assert _train("sr16-unet-c", "--preset", "tiny", "--content-net-sha256", "", "--weights-dir", str(weights),
                  data=tmp_path) == 2
    line = _error(capsys)
    assert "train ae-kimsathe first" in line and "--content-net-sha256 HASH --weights-dir runs/ae-kimsathe" in line
    missing = tmp_path / "nowhere"
    assert _train("sr16-unet-c", "--preset", "tiny", "--content-net-sha256", sha, "--weights-dir", str(missing),
                  data=tmp_path) == 2
    assert f"--weights-dir {missing} is not a directory" in _error(capsys)
    assert not recorded
    # no option: the shipped ae-kimsathe, by its hash, from the shipped weights
    assert _train("sr16-unet-c", "--preset", "tiny", data=tmp_path) == 0
    assert recorded[-1]["cfg"].content_net_sha256 == content_hash(registry.WEIGHTS_DIR / "ae-kimsathe.safetensors")
    assert recorded[-1]["weights_dir"] is None


def test_cli_trains_sr16_unet_c_against_a_frozen_autoencoder(corpus, frozen_ae, tmp_path, capsys):
    """End to end: the hash and the directory from the command line load the frozen network; its weight is used."""
    weights, sha = frozen_ae
    run = tmp_path / "run"
    assert main(["train", "sr16-unet-c", "--data", str(corpus), "--preset", "tiny", "--steps", "2",
                 "--val-every", "2", "--ckpt-every", "2", "--lambda-content", "0.5", "--content-net-sha256", sha,
                 "--weights-dir", str(weights), "--run-dir", str(run), "-q"]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    _, meta = read_checkpoint(run / "last.safetensors")
    assert meta["frozen"] == {CONTENT_NET: {"model": "ae-kimsathe", "sha256": sha}}
    assert meta["networks"] == ["generator"] and meta["step"] == 2
    tc = meta["train_config"]
    assert (tc["model"], tc["content_weight"], tc["content_net_sha256"]) == ("sr16-unet-c", 0.5, sha)
    assert [h["step"] for h in meta["history"]] == [0, 2] and all(h["content"] > 0 for h in meta["history"])
    # a wrong hash for the same directory is refused before anything is written
    other = tmp_path / "run2"
    assert main(["train", "sr16-unet-c", "--data", str(corpus), "--preset", "tiny", "--steps", "2",
                 "--content-net-sha256", "0" * 64, "--weights-dir", str(weights), "--run-dir", str(other), "-q"]) == 2
    assert f"content hash {sha}" in _error(capsys)
    assert not other.exists()


def test_lr_recipe_and_discriminator_options_reach_a_vocoders_config(recorded, tmp_path, capsys):
    assert _train("voc-melgan", "--preset", "live", "--lr", "5e-4", "--recipe", "paper", "--adv-start", "7",
                  "--discriminator", "tiny", "--lambda-mel", "3", data=tmp_path) == 0
    cfg = recorded[0]["cfg"]
    assert cfg.lr == 5e-4 and cfg.recipe == "paper" and cfg.weights.mel == 3 and cfg.adv_start_step == 7
    assert cfg.discriminator == type(cfg).discriminator_widths()["tiny"]
    assert _train("voc-multiscale", "--preset", "live", data=tmp_path) == 0  # CPU: the small discriminator
    assert recorded[1]["cfg"].discriminator == type(recorded[1]["cfg"]).discriminator_widths()["small"]
    capsys.readouterr()
    # a loss term the vocoders do not have, a recipe of another model, an absurd rate: one line each
    for args, message in ((("--lambda-flat", "1"), "has no term --lambda-flat"),
                          (("--recipe", "bwe"), "unknown recipe 'bwe'"), (("--lr", "3"), "--lr must be in (0, 1)")):
        assert _train("voc-melgan", "--preset", "live", *args, data=tmp_path) == 2
        assert message in _error(capsys)
    assert len(recorded) == 2


def test_disc_warmup_reaches_sr_hifigan_and_is_refused_where_there_is_none(recorded, tmp_path, capsys):
    assert _train("sr-hifigan", "--preset", "live", "--adv-start", "200", "--disc-warmup", "150", data=tmp_path) == 0
    cfg = recorded[0]["cfg"]
    assert (cfg.adv_start_step, cfg.disc_warmup_steps) == (200, 150)
    capsys.readouterr()
    assert _train("voc-melgan", "--preset", "live", "--disc-warmup", "5", data=tmp_path) == 2
    assert "--disc-warmup" in _error(capsys)
    assert len(recorded) == 1


def test_growth_schedule_options_reach_reverbsynth_and_are_refused_elsewhere(recorded, tmp_path, capsys):
    assert _train("reverbsynth", "--preset", "small", "--stable-steps", "1", "--transition-steps", "0",
                  data=tmp_path) == 0
    cfg = recorded[0]["cfg"]
    assert (cfg.stable_steps, cfg.transition_steps) == (1, 0)
    capsys.readouterr()
    assert _train("reverbsynth", "--preset", "small", "--stable-steps", "0", data=tmp_path) == 2
    assert "stable_steps must be >= 1" in _error(capsys)
    assert _train("voc-melgan", "--preset", "live", "--stable-steps", "5", data=tmp_path) == 2
    assert "--stable-steps" in _error(capsys)
    assert len(recorded) == 1


# -- --domain ---------------------------------------------------------------------------------

def test_domain_option_sets_the_training_domain(recorded, tmp_path, capsys):
    assert _train("sr-hifigan", "--preset", "tiny", data=tmp_path) == 0
    assert recorded[-1]["cfg"].train_domain is None  # sr-hifigan: every clip by default
    assert _train("sr-hifigan", "--preset", "tiny", "--domain", "speech", data=tmp_path) == 0
    assert recorded[-1]["cfg"].train_domain == "speech"
    assert _train("voc-melgan", "--preset", "tiny", "--domain", "all", data=tmp_path) == 0
    assert recorded[-1]["cfg"].train_domain is None  # the vocoders' music default, lifted
    capsys.readouterr()
    assert _train("ae-kimsathe", "--preset", "tiny", "--domain", "music", "--run-dir", str(tmp_path / "run"),
                  data=tmp_path) == 2
    assert "model 'ae-kimsathe''s training has no setting train_domain (--domain)" in _error(capsys)
    assert not (tmp_path / "run").exists()


def test_balance_groups_option_reaches_the_config(recorded, tmp_path):
    assert _train("sr-hifigan", "--preset", "tiny", data=tmp_path) == 0
    assert recorded[-1]["cfg"].balance_groups is False  # every clip equally often by default
    assert _train("sr-hifigan", "--preset", "tiny", "--balance-groups", data=tmp_path) == 0
    assert recorded[-1]["cfg"].balance_groups is True


def test_sr_hifigan_trains_on_the_chosen_domain_only(corpus):
    import dataclasses
    import json
    import shutil

    from rtgan.models.sr_hifigan_training import SRHiFiGANRecipe, SRHiFiGANTrainConfig
    from rtgan.training.data import make_datasets
    from rtgan.training.loop import init_state

    # the three-clip corpus plus a speech clip and a music clip in train and val
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    extra = []
    for r in rows:
        split = "val" if r["split"] == "train" else "train"
        dst = corpus / split / ("copy_" + Path(r["path"]).name)
        shutil.copy(corpus / r["path"], dst)
        extra.append({**r, "split": split, "path": f"{split}/{dst.name}"})
    (corpus / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + extra))
    domains = {r["path"]: r["domain"] for r in rows + extra}
    for domain in ("speech", "music"):
        cfg = dataclasses.replace(SRHiFiGANRecipe.presets()["tiny"], train_domain=domain)
        state = init_state(cfg, torch.device("cpu"))
        train_set, _ = make_datasets(corpus, state.recipe, state.nets)
        paths = [e["path"] for e in train_set.clips.entries]
        assert len(paths) == sum(d == domain for p, d in domains.items() if p.startswith("train/"))
        assert {domains[p] for p in paths} == {domain}
    with pytest.raises(ValueError, match="train_domain"):
        SRHiFiGANTrainConfig(train_domain="noise")
