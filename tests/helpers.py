"""Shared test helpers."""
from pathlib import Path

import torch
import torch.nn.functional as F

from rtgan.models import registry
from rtgan.models.base import Generator
from rtgan.models.layers import Reach

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def random_model(name: str, preset: str = "tiny", seed: int = 0):
    """A generator with random weights everywhere (zero-initialised layers included), eval mode.

    Trained generators start as the identity (zero output conv); streaming tests need a
    model whose every layer matters.
    """
    torch.manual_seed(seed)
    m = registry.build(name, preset)
    with torch.no_grad():
        for p in m.parameters():
            if torch.count_nonzero(p) == 0:
                p.normal_(0.0, 0.1)
    return m.eval()


#: Block sizes every streaming test runs (1, a power of two, one past it, a typical block,
#: one past a large power of two).
BLOCK_SIZES = [1, 64, 65, 256, 4097]
#: Every registered model at its tiny preset, plus the shipped live preset.
CASES = [(name, "tiny") for name in registry.available()] + [("sr-hifigan", "live")]


def whole_file(model, x, pad=8192):
    """Reference: one forward pass over the whole signal with ``pad`` zeros each side."""
    t = x.shape[-1]
    tail = pad + (-(t + 2 * pad) % model.total_stride)
    with torch.no_grad():
        return model(F.pad(x, (pad, tail)))[..., pad:pad + t]


class Pointwise(Generator):
    """Test generator base: sample-wise (stride 1, no receptive field beyond the sample, no
    latency) at 48 kHz; subclasses define ``forward``."""

    name = "pointwise"

    def __init__(self):
        super().__init__()
        self.config = type("C", (), {"sample_rate": 48000})()

    @property
    def total_stride(self):
        return 1

    def reach(self):
        return Reach()

    def stream_forward(self, x, cur):
        return self.forward(x), 0
