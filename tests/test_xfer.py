"""xfer-* (seed 001): sr-hifigan's U-Net without the additive input skip; what is particular to
them (the streaming grid, ONNX export and loading by name run through helpers.CASES)."""
import pytest
import torch

from helpers import random_model, write_pair_set
from rtgan.models import registry
from rtgan.models.xfer import TARGETS, XferConfig


def test_the_output_is_tanh_of_the_network_with_no_input_added():
    m = random_model("xfer-violin", "tiny")
    x = torch.randn(2, 1, 64)
    with torch.no_grad():
        y = m(x)
        h = m.out(m.body(x))
    torch.testing.assert_close(y, torch.tanh(h))
    # an untrained xfer model (zero output conv) is silent, not the identity (sr-hifigan starts as y = x)
    with torch.no_grad():
        assert torch.count_nonzero(registry.build("xfer-violin", "tiny")(x)) == 0
        torch.testing.assert_close(registry.build("sr-hifigan", "tiny")(x), x)


def test_paper_preset_is_the_seeds_generator_and_each_name_its_instrument():
    c = registry.make_config("xfer-violin", "paper")
    assert (c.blocks, c.sample_rate, c.kernel_sizes, c.filter_ratios) == (8, 16000, (3, 9, 27, 81), (24, 24, 8, 8))
    assert [c.filters(d) for d in range(6)] == [2 ** (6 + min(d, 3)) for d in range(6)]  # Alahi et al. Sec. IV-F
    for name, program in TARGETS.items():
        for preset in ("paper", "live", "tiny"):
            assert registry.make_config(name, preset).target_program == program
    assert registry.make_config("xfer-flute", "live").padding == "causal"
    with pytest.raises(ValueError, match="program"):
        XferConfig(target_program=128)


# ------------------------------------------------------------------ training (seed 001's recipe)
import numpy as np  # noqa: E402


@pytest.fixture(scope="module")
def pair_set(tmp_path_factory):
    """Toy pairs (helpers.write_pair_set): 'piano' decaying sines, 'violin' the same notes as
    sustained sawtooth-like tones, so the map is learnable; two pieces per split."""
    return write_pair_set(tmp_path_factory.mktemp("pairs"))


@pytest.mark.parametrize("loss", ["g1", "g2", "g4"])
def test_tiny_training_runs_each_composite_loss_and_l_time_alone_raises_the_snr(pair_set, tmp_path, loss):
    import dataclasses
    from rtgan.training.loop import train
    cfg = dataclasses.replace(registry.recipe("xfer-violin").presets()["tiny"], loss=loss, steps=24, val_every=12,
                              ckpt_every=24)
    state = train(cfg, pair_set, tmp_path / "run", device="cpu", progress=False)
    h = state.history
    assert [e["step"] for e in h] == [0, 12, 24]
    assert h[0]["snr_db"] == pytest.approx(0.0, abs=1e-6)  # an untrained xfer model is silent: 0 dB
    assert all(np.isfinite(e["composite"]) for e in h)
    if loss == "g1":  # L_time alone: the loss falls and the SNR rises within two dozen steps
        assert h[-1]["loss"] < 0.9 * h[0]["loss"] and h[-1]["snr_db"] > 1.0
    assert ("critic" in state.nets) == (loss == "g4")
    g = registry.load_model("xfer-violin", tmp_path / "run" / "xfer-violin.safetensors")
    assert g.config.target_program == 40


def test_g3_needs_a_trained_autoencoder_and_the_critic_scores_each_example():
    import dataclasses
    from rtgan.models.xfer_training import InceptionCritic
    tiny = registry.recipe("xfer-violin").presets()["tiny"]
    with pytest.raises(ValueError, match="content_net_sha256"):
        registry.recipe("xfer-violin")(dataclasses.replace(tiny, loss="g3"))
    c = InceptionCritic(crop=1024, blocks=3, base_filters=4, hidden=8)
    x = torch.randn(3, 1, 1024)
    s = c(x)
    assert s.shape == (3,)
    # layer norm, not batch norm: an example's score does not depend on the others in its batch
    torch.testing.assert_close(c(x[:1]), s[:1])
    with pytest.raises(ValueError):
        c(torch.randn(3, 1, 1000))


def test_lambda_stft_adds_the_multi_resolution_stft_loss_to_the_composite(pair_set):
    """Beyond the seed: ``lambda_stft`` adds lambda (L_sc + L_mag) to any composite loss; 0 (the
    default) leaves Table I's losses as they are; the CLI's --lambda-stft sets it for xfer-*."""
    import dataclasses
    from rtgan.losses import multi_resolution_stft_loss, time_mse
    rcls = registry.recipe("xfer-violin")
    base = rcls.presets()["tiny"]
    torch.manual_seed(0)
    y_hat, y = 0.1 * torch.randn(2, 1, 1024), 0.1 * torch.randn(2, 1, 1024)
    for lam in (0.0, 2.5):
        r = rcls(dataclasses.replace(base, loss="g1", lambda_stft=lam))
        loss, terms = r.generator_loss({}, (None, y), y_hat, 0)
        expected = time_mse(y_hat, y) + lam * sum(multi_resolution_stft_loss(y_hat, y))
        assert float(loss) == pytest.approx(float(expected), rel=1e-6)
        assert ("stft_mag" in terms) == (lam > 0)
    with pytest.raises(ValueError, match="lambda_stft"):
        dataclasses.replace(base, lambda_stft=-1.0)
