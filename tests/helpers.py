"""Shared test helpers."""
from pathlib import Path

import torch

from rtgan.models import registry

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
