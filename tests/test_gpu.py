"""CUDA paths; skipped cleanly on machines without a GPU (CI has none)."""
import dataclasses

import pytest
import torch

from rtgan.engine import OverlapSave, offline, stream_signal
from rtgan.training.config import PRESETS
from rtgan.training.loop import init_state, train_step

from helpers import random_model

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_bf16_autocast_train_step_on_cuda():
    cfg = dataclasses.replace(PRESETS["tiny"], adv_start_step=0)
    state = init_state(cfg, torch.device("cuda"))
    x = 0.1 * torch.randn(2, 1, 4096, device="cuda")
    terms = train_step(state, cfg, x, x + 0.01 * torch.randn_like(x), amp_dtype=torch.bfloat16)
    assert all(torch.isfinite(torch.tensor(v)) for v in terms.values())


def test_streaming_on_cuda_matches_cpu():
    m = random_model("sr-hifigan", "live")
    x = 0.3 * torch.randn(1, 1, 4000)
    ref = offline(m, x)
    y = stream_signal(OverlapSave(m.cuda(), 256), x.cuda()).cpu()
    assert (y - ref).abs().max() <= 1e-3
