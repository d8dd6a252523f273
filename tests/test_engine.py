from fractions import Fraction

import numpy as np
import pytest
import torch

from rtgan.engine import LiveOverlapAdd, OverlapAdd, OverlapSave, offline, offline_ola, stream_signal
from rtgan.models import registry

from helpers import BLOCK_SIZES, CASES, Pointwise, random_model, whole_file


@pytest.mark.parametrize("name,preset", CASES)
@pytest.mark.parametrize("block", BLOCK_SIZES)
def test_overlap_save_equals_whole_file(name, preset, block):
    torch.manual_seed(1)
    m = random_model(name, preset)
    x = 0.3 * torch.randn(2, 1, 5000)
    ref = whole_file(m, x, pad=4096)
    stream = OverlapSave(m, block)
    y = stream_signal(stream, x, compensate=True)
    assert y.shape == (2, m.port_out.channels, x.shape[-1] * m.rate_ratio)
    assert (y - ref).abs().max().item() <= 1e-4


@pytest.mark.parametrize("block", [64, 65])
def test_overlap_save_output_is_delayed_by_reported_latency(block):
    torch.manual_seed(2)
    m = random_model("sr-hifigan", "tiny")
    x = 0.3 * torch.randn(1, 1, 3000)
    ref = whole_file(m, x, pad=4096)
    raw = stream_signal(OverlapSave(m, block), x, compensate=False)
    d = OverlapSave(m, block).latency_samples
    assert torch.all(raw[..., :d] == 0)
    assert (raw[..., d:] - ref[..., : 3000 - d]).abs().max() <= 1e-4
    # one sample off is visibly wrong, so the check above is meaningful
    assert (raw[..., d + 1:] - ref[..., : 3000 - d - 1]).abs().max() > 1e-2


def test_latency_is_lookahead_plus_alignment():
    m = registry.build("sr-hifigan", "live")
    s = m.total_stride
    lookahead_aligned = -(-m.lookahead // s) * s
    assert OverlapSave(m, 256).latency_samples == lookahead_aligned
    assert OverlapSave(m, 1).latency_samples == lookahead_aligned + s - 1
    assert OverlapSave(m, 65).latency_samples == lookahead_aligned + s - 1
    assert OverlapSave(m, 24).latency_samples == lookahead_aligned + s - 8


def test_offline_matches_generous_padding():
    m = random_model("sr-hifigan", "live")
    x = 0.2 * torch.randn(1, 1, 3001)
    assert (offline(m, x) - whole_file(m, x, pad=8192)).abs().max() <= 1e-5


def test_reset_restores_initial_state():
    m = random_model("sr-hifigan", "tiny")
    stream = OverlapSave(m, 64)
    x = torch.randn(1, 1, 64 * 5)
    first = [stream.process(x[..., i:i + 64]) for i in range(0, 320, 64)]
    stream.reset(1)
    second = [stream.process(x[..., i:i + 64]) for i in range(0, 320, 64)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_state_shapes_do_not_depend_on_content():
    m = random_model("sr-hifigan", "tiny")
    stream = OverlapSave(m, 65)
    s1, s2 = stream.init_state(1), stream.init_state(1)
    for _ in range(7):
        _, s1 = stream.step(torch.zeros(1, 1, 65), s1)
        _, s2 = stream.step(torch.randn(1, 1, 65), s2)
        assert s1.history.shape == s2.history.shape and s1.pending.shape == s2.pending.shape


class Identity(Pointwise):
    name = "identity"

    def forward(self, x):
        return x


@pytest.mark.parametrize("hop", [64, 65, 256])
def test_ola_identity_passes_audio_unchanged(hop):
    x = torch.randn(1, 1, 2000)
    assert (offline_ola(Identity(), x, hop) - x).abs().max() <= 1e-5


@pytest.mark.parametrize("hop", [64, 65, 256])
@pytest.mark.parametrize("name", ["sr-hifigan", "toy-up2"])
def test_ola_stream_equals_offline_ola(hop, name):
    m = random_model(name, "tiny")
    x = 0.3 * torch.randn(2, 1, 3000)
    stream = OverlapAdd(m, hop)
    # latency: one output block (hop input frames, hop x rate ratio output frames)
    assert stream.latency_samples == hop * m.rate_ratio
    ref = offline_ola(m, x, hop)
    assert ref.shape == (2, 1, 3000 * m.rate_ratio)
    assert (stream_signal(stream, x) - ref).abs().max() <= 1e-4


@pytest.mark.parametrize("block", [1, 64, 65, 256, 4097])
@pytest.mark.parametrize("name", ["xfer-violin", "toy-up2"])
def test_live_ola_equals_offline_ola_at_any_block_size_three_hops_late(block, name):
    """The callback form of overlap-add: any block size, frames on a worker thread; its output is
    offline_ola's, 3 hops (x rate ratio) late."""
    m = random_model(name, "tiny")
    hop = 256
    x = 0.3 * torch.randn(2, 1, 3000)
    stream = LiveOverlapAdd(m, block, hop=hop)
    assert stream.latency_samples == 3 * hop * m.rate_ratio
    ref = offline_ola(m, x, hop)
    assert (stream_signal(stream, x) - ref).abs().max() <= 1e-4
    # raw: 2 hops of silence (the worker's margin), a hop of the first frame's first half, then
    # offline_ola's output
    raw = stream_signal(stream, x, compensate=False)
    d = stream.latency_samples
    assert raw[..., :int(2 * hop * m.rate_ratio)].abs().max() == 0.0
    assert (raw[..., d:] - ref[..., :raw.shape[-1] - d]).abs().max() <= 1e-4


def test_live_ola_gives_each_frame_a_hop_of_callbacks_and_refuses_bad_blocks():
    """A frame goes to the worker a hop before its output is due: with a worker that never reports a
    frame done, each frame's result is first asked for at least ``hop / block`` callbacks after it was
    submitted (the compute budget a frame has before a callback would wait), and the state holds at
    most two frames. Counted in callbacks, not timed."""
    from concurrent.futures import Future

    m = random_model("xfer-violin", "tiny")
    block, hop = 64, 512
    stream = LiveOverlapAdd(m, block, hop=hop)
    now, gaps = [0], []

    class Slow(Future):
        """Never done until asked; records how many callbacks after submission it was asked."""

        def __init__(self, fn, args):
            super().__init__()
            self.fn, self.args, self.submitted = fn, args, now[0]

        def done(self):
            return False

        def result(self, timeout=None):
            gaps.append(now[0] - self.submitted)
            return self.fn(*self.args)

    class SlowPool:
        def submit(self, fn, *args):
            return Slow(fn, args)

    stream._pool = SlowPool()
    state = stream.init_state(1)
    for k in range(200):
        now[0] = k
        x = np.random.default_rng(k).standard_normal((1, 1, block)).astype(np.float32)
        y, state = stream.step_numpy(x, state)
        assert y.shape == (1, 1, block) and len(state.jobs) <= 2
    assert len(gaps) >= 200 * block // hop - 3 and min(gaps) >= hop // block
    with pytest.raises(ValueError, match="blocks of 64"):
        stream.step_numpy(np.zeros((1, 1, 65), np.float32), state)
    with pytest.raises(ValueError, match="batch"):
        stream.step_numpy(np.zeros((2, 1, 64), np.float32), state)
    with pytest.raises(ValueError):
        LiveOverlapAdd(m, 0)


def test_block_sizes_whose_output_is_not_whole_frames_are_refused():
    class Half(Identity):
        """2 input frames per output frame."""

        @property
        def sample_rate_out(self):
            return 24000

    m = Half()
    assert m.output_length(5) == 3 and m.rate_ratio == Fraction(1, 2)
    with pytest.raises(ValueError, match="multiple of 2"):
        OverlapSave(m, 65)
    assert OverlapSave(m, 64).out_block_size == 32


def test_block_size_must_be_positive():
    m = registry.build("sr-hifigan", "tiny")
    with pytest.raises(ValueError):
        OverlapSave(m, 0)
    with pytest.raises(ValueError):
        OverlapSave(m, 64).step(torch.zeros(1, 1, 63), OverlapSave(m, 64).init_state())


@pytest.mark.parametrize("block", [1, 65, 256])
def test_torchscript_runtime_streams_like_eager(block):
    m = random_model("sr-hifigan", "live")
    x = 0.3 * torch.randn(1, 1, 3000)
    ref = whole_file(m, x, pad=4096)
    y = stream_signal(OverlapSave(m, block, runtime="torchscript"), x)
    assert (y - ref).abs().max() <= 1e-4


def test_unknown_runtime_is_refused():
    with pytest.raises(ValueError, match="runtime"):
        OverlapSave(random_model("sr-hifigan", "tiny"), 64, runtime="tensorrt-please")


@pytest.mark.parametrize("mode", ["stateful", "overlap-save", "ola"])
def test_render_writes_a_different_rate_model_at_its_output_rate(tmp_path, mode):
    import numpy as np
    import soundfile as sf

    from rtgan.engine.render import render_file
    m = random_model("toy-up2")
    x = (0.1 * np.random.default_rng(0).standard_normal(8001)).astype(np.float32)
    sf.write(tmp_path / "in.wav", x, 8000, subtype="FLOAT")
    render_file(m, tmp_path / "in.wav", tmp_path / "out.wav", block_size=65, mode=mode, progress=False)
    y, sr = sf.read(tmp_path / "out.wav", dtype="float32")
    assert sr == 16000 and y.shape == (16002,)
    if mode != "ola":  # overlap-add is its own framing; the others equal offline inference
        ref = np.clip(offline(m, torch.from_numpy(x)[None, None])[0, 0].numpy(), -1, 1)
        assert np.abs(y - ref).max() <= 1e-4


@pytest.mark.parametrize("block", [7, 64])
def test_bench_latency_is_in_output_frames_for_a_rate_changing_model(block):
    from rtgan.engine.bench import bench_stream
    from rtgan.engine.stateful import StatefulStream
    m = random_model("toy-up2")
    row = bench_stream(m, block_size=block, threads=1, mode="stateful", seconds=0.05, runtime="eager")
    stream = StatefulStream(m, block, runtime="eager")
    # one block of buffering (2 * block output frames) + the stream's delay, at the 16 kHz output rate
    assert row.latency_samples == 2 * block + stream.latency_samples
    assert row.latency_ms == pytest.approx(1000 * row.latency_samples / 16000)


def test_a_model_with_nothing_to_prime_starts_from_zero_state():
    class Gain(Identity):
        def __init__(self):
            super().__init__()
            self.g = torch.nn.Parameter(torch.tensor(2.0))

        def forward(self, x):
            return self.g * x

    m = Gain()
    assert m.left_context == m.latency_samples == 0
    assert m.init_state(3) == ()
