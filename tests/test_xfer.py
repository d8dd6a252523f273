"""xfer-* (seed 001): sr-hifigan's U-Net without the additive input skip; what is particular to
them (the streaming grid, ONNX export and loading by name run through helpers.CASES)."""
import pytest
import torch

from helpers import random_model
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
