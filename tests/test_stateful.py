"""Stateful streaming: every registered model streams exactly like offline inference."""
import dataclasses
import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rtgan.engine import StatefulStream, make_stream, stream_signal
from rtgan.models import registry
from rtgan.models.layers import StateCursor

from helpers import BLOCK_SIZES, CASES, burst_noise, random_model, whole_file

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None


def raw_stream(model, x, block):
    """Model step over consecutive blocks with no latency compensation; ``output_length(len(x))`` frames."""
    t = x.shape[-1]
    total = -(-t // block) * block
    xp = F.pad(x, (0, total - t))
    state = model.init_state(x.shape[0])
    outs = []
    with torch.no_grad():
        for i in range(0, total, block):
            y, state = model.step(xp[..., i:i + block], state)
            outs.append(y)
    return torch.cat(outs, dim=-1)[..., :model.output_length(t)]


@pytest.mark.parametrize("name,preset", CASES)
@pytest.mark.parametrize("block", BLOCK_SIZES)
def test_stream_equals_offline_shifted_by_latency(name, preset, block):
    torch.manual_seed(3)
    m = random_model(name, preset)
    x = burst_noise(2, 3000)
    stream = StatefulStream(m, block, runtime="eager")
    delay = stream.latency_samples
    y = stream_signal(stream, F.pad(x, (0, delay)), compensate=False)
    ref = whole_file(m, x)
    # output length = input length x rate ratio
    assert ref.shape[-1] == m.output_length(x.shape[-1]) == x.shape[-1] * m.rate_ratio
    n = ref.shape[-1]
    assert (y[..., delay:delay + n] - ref).abs().max().item() <= 1e-4
    # the shift is exact: one sample off is far from the reference (relative to the output's scale:
    # an xfer model's output is tanh(f(x)) alone, small for random weights)
    assert (y[..., delay + 1:delay + n] - ref[..., :-1]).abs().max().item() > min(1e-2, 0.1 * ref.abs().max().item())


@pytest.mark.parametrize("name,preset", CASES)
def test_model_step_equals_offline(name, preset):
    m = random_model(name, preset)
    g = m.stream_granule
    x = 0.3 * torch.randn(1, 1, 40 * g)
    d = m.latency_samples
    y = raw_stream(m, F.pad(x, (0, d)), 4 * g)
    ref = whole_file(m, x)
    assert (y[..., d:d + ref.shape[-1]] - ref).abs().max().item() <= 1e-4


def test_latency_is_computed_from_layers():
    live = registry.build("sr-hifigan", "live")
    # causal convs: no lookahead beyond the granule the block already holds
    assert live.latency_samples == 0
    assert live.lookahead <= live.stream_granule - 1
    tiny = registry.build("sr-hifigan", "tiny")
    # centered convs: the stream waits at least for the lookahead (minus what a granule holds)
    assert tiny.latency_samples + tiny.stream_granule - 1 >= tiny.lookahead
    assert tiny.latency_samples > 0


@pytest.mark.parametrize("block", [1, 24, 65, 256, 4097])
def test_fifo_adds_less_than_one_granule(block):
    m = random_model("sr-hifigan", "live")
    s = StatefulStream(m, block, runtime="eager")
    g = m.stream_granule
    assert 0 <= s.fifo_latency_samples < g
    # the stream runs exactly the chunk lengths it announces (and compiles before streaming)
    seen = set()

    class Spy:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def __call__(self, x, state, out=None):
            seen.add(x.shape[-1])
            return self.inner(x, state, out)

    s.runner = Spy(s.runner)
    x = 0.3 * torch.randn(1, 1, 40 * g + (g + 2) * block)  # g + 2 blocks visit every FIFO phase
    y = stream_signal(s, x, compensate=False)
    assert seen == set(s.chunk_sizes())
    # and the FIFO's delay is the smallest that works: one sample less breaks the output
    d = s.latency_samples
    ref = whole_file(m, x)
    assert (y[..., d:] - ref[..., :-d or None]).abs().max() <= 1e-4
    if d > 0:
        assert (y[..., d - 1:] - ref[..., :-(d - 1) or None]).abs().max() > 1e-2
    if block % g:  # a block that splits granules needs the FIFO; 0 only when g divides it
        assert s.fifo_latency_samples > 0


def test_biased_model_streams_exactly():
    """init_state primes the caches with silence, so biases (f(0) != 0) stream exactly too."""
    entry = registry.entry("sr-hifigan")
    cfg = dataclasses.replace(entry.presets["tiny"], bias=True, dc_free_output=False)
    torch.manual_seed(5)
    m = entry.generator(cfg).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.2)
    x = 0.3 * torch.randn(1, 1, 1500)
    d = m.latency_samples
    y = raw_stream(m, F.pad(x, (0, d)), 64)
    assert (y[..., d:] - whole_file(m, x)).abs().max().item() <= 1e-4


def test_reset_restores_initial_state():
    m = random_model("sr-hifigan", "tiny")
    stream = StatefulStream(m, 65, runtime="eager")
    x = torch.randn(1, 1, 65 * 5)
    first = [stream.process(x[..., i:i + 65]) for i in range(0, 325, 65)]
    stream.reset(1)
    second = [stream.process(x[..., i:i + 65]) for i in range(0, 325, 65)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert any(a.abs().max() > 0 for a in first)


def test_state_shapes_do_not_depend_on_content():
    m = random_model("sr-hifigan", "tiny")
    expected = m.state_shapes(2)
    for content in (torch.zeros(2, 1, 64), torch.randn(2, 1, 64), 1e3 * torch.randn(2, 1, 256),
                     torch.full((2, 1, 4), float("nan"))):
        _, state = m.step(content, m.init_state(2))
        assert [tuple(t.shape) for t in state] == expected


def test_wrong_state_is_refused():
    m = registry.build("sr-hifigan", "tiny")
    state = m.init_state(1)
    with pytest.raises(ValueError, match="shape"):
        m.step(torch.zeros(1, 1, 16), (torch.zeros(1, 1, 3),) + state[1:])
    with pytest.raises(ValueError, match="tensors"):
        m.step(torch.zeros(1, 1, 16), state[:-1])
    with pytest.raises(ValueError, match="tensors"):
        m.step(torch.zeros(1, 1, 16), state + (torch.zeros(1, 1, 1),))
    with pytest.raises(ValueError, match="multiple"):
        m.step(torch.zeros(1, 1, 15), state)


def test_state_cursor_init_mode_gives_zeros():
    cur = StateCursor(None, 3, torch.ones(1))
    z = cur.take(4, 5)
    assert z.shape == (3, 4, 5) and not z.any()


@pytest.mark.parametrize("runtime", ["torchscript"] + (["onnxruntime"] if HAS_ORT else []))
@pytest.mark.parametrize("name,preset", CASES)
@pytest.mark.parametrize("block", BLOCK_SIZES)
def test_compiled_runtimes_stream_like_offline(runtime, name, preset, block):
    torch.manual_seed(4)
    m = random_model(name, preset)
    x = 0.3 * torch.randn(2, 1, 4500)
    y = stream_signal(StatefulStream(m, block, runtime=runtime), x)
    ref = whole_file(m, x)
    assert y.shape == ref.shape == (2, m.port_out.channels, m.output_length(4500))
    assert (y - ref).abs().max().item() <= 1e-4


@pytest.mark.parametrize("runtime", ["eager", "torchscript"] + (["onnxruntime"] if HAS_ORT else []))
@pytest.mark.parametrize("block", [64, 65])
@pytest.mark.parametrize("name", ["sr-hifigan", "toy-up2"])
def test_step_into_a_given_buffer_matches_the_plain_step(runtime, block, name):
    # the audio callback passes its own output buffer; the samples must be the same
    m = random_model(name, "tiny")
    x = (0.3 * np.random.default_rng(1).standard_normal((1, 1, 6 * block))).astype(np.float32)
    plain, into = StatefulStream(m, block, runtime=runtime), StatefulStream(m, block, runtime=runtime)
    sp, si = plain.init_state(1), into.init_state(1)
    buf = np.full((1, 1, plain.out_block_size), np.nan, np.float32)
    for i in range(0, x.shape[-1], block):
        yp, sp = plain.step_numpy(x[..., i:i + block], sp)
        yi, si = into.step_numpy(x[..., i:i + block], si, out=buf)
        assert yi is buf
        np.testing.assert_array_equal(yp, buf)


def test_stateful_is_the_default_mode():
    m = registry.build("sr-hifigan", "tiny")
    s = make_stream(m, 64, runtime="eager")
    assert isinstance(s, StatefulStream)
    with pytest.raises(ValueError, match="runtime"):
        StatefulStream(m, 64, runtime="tensorrt-please")
    with pytest.raises(ValueError):
        StatefulStream(m, 0, runtime="eager")


def test_step_numpy_refuses_wrong_block():
    s = StatefulStream(registry.build("sr-hifigan", "tiny"), 64, runtime="eager")
    with pytest.raises(ValueError, match="64"):
        s.step_numpy(np.zeros((1, 1, 63), np.float32), s.init_state(1))


def test_step_never_builds_an_autograd_graph():
    """Issue 13: ``model.step`` outside ``torch.no_grad`` grew memory without bound."""
    m = random_model("sr-hifigan", "tiny")
    for p in m.parameters():
        p.requires_grad_(True)
    assert torch.is_grad_enabled()
    state = m.init_state(2)
    assert all(not t.requires_grad and t.grad_fn is None for t in state)
    x = torch.randn(2, 1, 64, requires_grad=True)  # even an input that requires grad
    for _ in range(3):
        y, state = m.step(x, state)
        assert not y.requires_grad and y.grad_fn is None
        assert all(not t.requires_grad and t.grad_fn is None for t in state)
    assert torch.is_grad_enabled()  # the caller's grad mode is restored
    y = StatefulStream(m, 65, runtime="eager").process(torch.randn(1, 1, 65))
    assert not y.requires_grad
    # the offline forward still trains
    m(torch.randn(1, 1, 64)).square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_state_of_another_batch_size_is_a_value_error():
    m = registry.build("sr-hifigan", "tiny")
    with pytest.raises(ValueError, match="batch"):
        m.step(torch.zeros(2, 1, 16), m.init_state(1))
    with pytest.raises(ValueError, match="batch"):
        m.step(torch.zeros(1, 1, 16), m.init_state(3))
    s = StatefulStream(m, 64, runtime="eager")
    with pytest.raises(ValueError, match="batch"):
        s.step(torch.zeros(2, 1, 64), s.init_state(1))


def _tiny_sr_with(seed: int, **changes):
    """sr-hifigan tiny with config ``changes`` and every weight random (N(0, 0.1)), eval mode."""
    entry = registry.entry("sr-hifigan")
    torch.manual_seed(seed)
    m = entry.generator(dataclasses.replace(entry.presets["tiny"], **changes))
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.1)
    return m.eval()


def _eq_model(seed: int = 6):
    """sr-hifigan tiny with a residual EQ (the curve shape a calibrated model carries)."""
    return _tiny_sr_with(seed, residual_eq=((7000.0, 0.0), (8250.0, 1.0), (18000.0, 3.0)))


@pytest.mark.parametrize("runtime", ["eager", "torchscript"] + (["onnxruntime"] if HAS_ORT else []))
@pytest.mark.parametrize("block", BLOCK_SIZES)
def test_residual_eq_streams_exactly_and_adds_no_latency(runtime, block):
    m = _eq_model()
    plain = registry.entry("sr-hifigan").generator(
        dataclasses.replace(m.config, residual_eq=())).eval()
    plain.load_state_dict(m.state_dict())
    # the EQ is causal: it widens the receptive field to the left only
    assert m.reach().right == plain.reach().right
    assert m.reach().left == plain.reach().left + m.config.residual_eq_taps - 1
    assert m.latency_samples == plain.latency_samples
    x = 0.3 * torch.randn(2, 1, 3000)
    y = stream_signal(StatefulStream(m, block, runtime=runtime), x)
    ref = whole_file(m, x)
    assert (y - ref).abs().max().item() <= 1e-4
    # and the EQ does something: the generated residual differs from the one without it
    r_plain = whole_file(plain, x) - x
    assert (ref - x - r_plain).norm() > 0.1 * r_plain.norm()


def _envelope_model(seed: int = 7):
    """sr-hifigan tiny with an envelope head whose every weight is random (so G varies)."""
    m = _tiny_sr_with(seed, envelope_hidden=4)
    with torch.no_grad():
        for p in m.envelope.mlp.parameters():  # large enough that G varies, small enough for its ceiling
            p.normal_(0.0, 0.3)
    return m


@pytest.mark.parametrize("runtime", ["eager", "torchscript"] + (["onnxruntime"] if HAS_ORT else []))
@pytest.mark.parametrize("block", BLOCK_SIZES)
def test_envelope_gain_streams_exactly_and_adds_no_latency(runtime, block):
    m = _envelope_model()
    plain = registry.entry("sr-hifigan").generator(dataclasses.replace(m.config, envelope_hidden=0)).eval()
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("envelope.")})
    # the head is causal: it widens the receptive field to the left only, by its FIR and its long window
    assert m.reach().right == plain.reach().right
    assert m.reach().left == max(plain.reach().left + 2399, 254 + 479 + 1920, (m.envelope.ref_frames + 1) * 4 - 1)
    assert m.envelope.ref_frames == 3 * 48000 // 4  # the tiny preset's granule: 4 samples
    assert m.latency_samples == plain.latency_samples
    x = burst_noise(2, 6000, segment=500)
    y = stream_signal(StatefulStream(m, block, runtime=runtime), x)
    ref = whole_file(m, x)
    assert (y - ref).abs().max().item() <= 1e-4
    # and the gain does something: it varies over time
    with torch.no_grad():
        g = m.envelope(x, torch.tanh(m.out(m.body(x))))
    assert g.min() > 0 and g.max() > 1.2 * g.min()
