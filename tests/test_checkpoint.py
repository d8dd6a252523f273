import json

import pytest
import torch

from rtgan.checkpoint import CheckpointError, read_checkpoint, save_checkpoint, save_generator
from rtgan.models import registry
from rtgan.models.registry import load_generator

from helpers import random_model


def _model():
    torch.manual_seed(0)
    return random_model("sr-hifigan", "tiny")


def test_generator_round_trip(tmp_path):
    m = _model()
    path = save_generator(tmp_path / "m.safetensors", m, {"steps": 7, "command": "rtgan train x"})
    loaded = load_generator(path, expected_name="sr-hifigan")
    assert loaded.config == m.config
    x = torch.randn(1, 1, 256)
    with torch.no_grad():
        assert torch.equal(loaded(x), m(x))
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["format_version"] == 1 and meta["steps"] == 7 and meta["model"] == "sr-hifigan"


def test_load_model_by_path_through_registry(tmp_path):
    m = _model()
    save_generator(tmp_path / "m.safetensors", m, {})
    assert registry.load_model("sr-hifigan", path=tmp_path / "m.safetensors").config == m.config


def test_wrong_model_name_is_refused(tmp_path):
    save_generator(tmp_path / "m.safetensors", _model(), {})
    with pytest.raises(CheckpointError, match="not 'other'"):
        load_generator(tmp_path / "m.safetensors", expected_name="other")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="missing"):
        read_checkpoint(tmp_path / "none.safetensors")
    path = save_generator(tmp_path / "m.safetensors", _model(), {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_generator(path)
    save_generator(path, _model(), {})
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_generator(path)


def test_strict_loading_rejects_missing_and_extra_weights(tmp_path):
    m = _model()
    tensors = {f"generator.{k}": v for k, v in m.state_dict().items()}
    meta = {"model": "sr-hifigan", "config": json.loads(json.dumps(m.config.__dict__))}
    dropped = dict(tensors)
    dropped.pop(next(iter(dropped)))
    save_checkpoint(tmp_path / "a.safetensors", dropped, meta)
    with pytest.raises(CheckpointError, match="do not match"):
        load_generator(tmp_path / "a.safetensors")
    extra = dict(tensors, **{"generator.bogus": torch.zeros(1)})
    save_checkpoint(tmp_path / "b.safetensors", extra, meta)
    with pytest.raises(CheckpointError, match="do not match"):
        load_generator(tmp_path / "b.safetensors")


def test_config_with_unknown_field_is_refused(tmp_path):
    m = _model()
    save_generator(tmp_path / "m.safetensors", m, {})
    meta = json.loads((tmp_path / "m.json").read_text())
    meta["config"]["mystery"] = 1
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unknown fields"):
        load_generator(tmp_path / "m.safetensors")


def test_unsupported_format_version(tmp_path):
    save_generator(tmp_path / "m.safetensors", _model(), {})
    meta = json.loads((tmp_path / "m.json").read_text())
    meta["format_version"] = 99
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format_version"):
        load_generator(tmp_path / "m.safetensors")


def test_checkpoint_is_not_pickle(tmp_path):
    path = save_generator(tmp_path / "m.safetensors", _model(), {})
    # a safetensors file starts with an 8-byte little-endian header length and a JSON header
    head = path.read_bytes()[:9]
    assert head[8:9] == b"{"


def test_tagged_shipped_weights_load_by_name_at_tag(tmp_path, monkeypatch):
    """A model may ship several weights: ``NAME.safetensors`` and ``NAME@TAG.safetensors``."""
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    r2, r4 = registry.build("sr16-unet", "tiny"), registry.build("sr16-unet", "tiny-r4")
    save_generator(tmp_path / "sr16-unet.safetensors", r2, {})
    save_generator(tmp_path / "sr16-unet@r4.safetensors", r4, {})
    save_generator(tmp_path / "sr16-unet-c@r4.safetensors", r4, {})  # another model's: not sr16-unet's
    assert registry.shipped_weights("sr16-unet") == ["sr16-unet", "sr16-unet@r4"]
    assert registry.shipped_weights("sr16-gan") == []
    assert registry.load_model("sr16-unet").config.ratio == 2
    assert registry.load_model("sr16-unet@r4").config.ratio == 4
    assert registry.split_ref("sr16-unet@r4") == ("sr16-unet", "r4") and registry.split_ref("sr16-unet") == \
        ("sr16-unet", None)
    with pytest.raises(FileNotFoundError, match="shipped: sr16-unet, sr16-unet@r4"):
        registry.load_model("sr16-unet@r8")
    with pytest.raises(ValueError, match="weights tag"):
        registry.load_model("sr16-unet@")
    with pytest.raises(ValueError, match="weights tag"):
        registry.load_model("sr16-unet@../x")
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        registry.load_model("nope@r4")
    with pytest.raises(ValueError, match="give the model name alone"):
        registry.load_model("sr16-unet@r4", path=tmp_path / "sr16-unet@r4.safetensors")
    # the tagged file still holds the model it is named after
    save_generator(tmp_path / "sr16-gan@r4.safetensors", r4, {})
    with pytest.raises(CheckpointError, match="holds model 'sr16-unet', not 'sr16-gan'"):
        registry.load_model("sr16-gan@r4")
