"""Cached streaming forms of the strided, transposed and per-frame layers, and their Reach rules.

For every layer: (a) streamed blocks (multiples of its granule, from a zero state, after an
incoming delay) equal the offline output shifted by the delay the stream reports; (b) the
Reach rule equals the dependency bounds found by perturbing single input frames (random
weights: the bounds are tight, not just safe). Bounds are compared in the continuous time of
:mod:`rtgan.models.layers.reach`: input frame ``j`` occupies ``[j, j + 1)``, frame ``n`` of a
tensor at stride ``s`` occupies ``[n*s, (n + 1)*s)``.
"""
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rtgan.models.layers import (ChannelAffine, PaddedConv1d, PixelShuffle1d, PixelUnshuffle1d, Pointwise, Reach,
                                 Snake1d, StateCursor, StridedConv1d, TransposedConv1d, cached_conv,
                                 cached_strided_conv, cached_transposed_conv, check_pointwise, with_history)

from helpers import random_model

TOL = 1e-5


def run_stream(fn, x, block, delay_in=0):
    """Stream ``x`` delayed by ``delay_in`` frames through ``fn(block, delay, cur) -> (y, delay)``.

    The state layout comes from one call in init mode (``StateCursor(None, ...)``); the stream
    then starts from zeros. Returns the concatenated output and its (constant) delay.
    """
    b = x.shape[0]
    xs = F.pad(x, (delay_in, -(x.shape[-1] + delay_in) % block))
    cur = StateCursor(None, b, xs)
    with torch.no_grad():
        fn(xs[..., :block], delay_in, cur)
    state = tuple(torch.zeros_like(t) for t in cur.finish())
    outs, delays = [], set()
    with torch.no_grad():
        for i in range(0, xs.shape[-1], block):
            blk = xs[..., i:i + block]
            cur = StateCursor(state, b, blk)
            y, d = fn(blk, delay_in, cur)
            state = cur.finish()
            outs.append(y)
            delays.add(d)
    assert len(delays) == 1, delays
    return torch.cat(outs, dim=-1), delays.pop()


def assert_streams_exactly(fn, offline, x, block, delay_in=0, skip=(0, 0)):
    """Streamed output == offline output shifted by the reported delay; returns that delay.

    ``skip``: offline frames left out at the start and at the end. A single layer caches its
    own input, which offline zero-pads the same way, so it needs none. In a stack, offline
    zero-pads every layer's input, while the stream feeds the inner caches what the layers
    really output for the frames before and after the input (biases, and kernels that reach
    the first or last input frames): the frames within the receptive field of either end
    differ (the reason model-level tests compare against one pass over a zero-padded input).
    """
    with torch.no_grad():
        ref = offline(x)
    y, d = run_stream(fn, x, block, delay_in)
    a, b = skip[0], min(y.shape[-1] - d, ref.shape[-1] - skip[1])
    assert b - a >= ref.shape[-1] // 2
    assert (y[..., d + a:d + b] - ref[..., a:b]).abs().max().item() <= TOL
    # the shift is exact: one frame off is far from the reference
    assert (y[..., d + a + 1:d + b] - ref[..., a:b - 1]).abs().max().item() > 1e-2
    return d


def empirical_reach(fn, channels, length, positions, seed=0):
    """Reach of ``fn``'s output on its input, found by adding 1 to single input frames.

    ``left``/``right`` are the largest ``n*s - j`` and ``j + 1 - (n + 1)*s`` over input
    frames ``j`` in ``positions`` and output frames ``n`` they change (``s``: input frames
    per output frame). ``positions`` must lie far enough from both ends.
    """
    torch.manual_seed(seed)
    x = torch.randn(1, channels, length)
    with torch.no_grad():
        y0 = fn(x)
        s = Fraction(length, y0.shape[-1])
        left = right = None
        for j in positions:
            x2 = x.clone()
            x2[..., j] += 1.0
            changed = torch.nonzero((fn(x2) - y0).abs().amax(dim=(0, 1)) > 1e-6)[:, 0]
            assert changed.numel(), f"input frame {j} changes nothing"
            lo, hi = int(changed.min()), int(changed.max())
            assert changed.numel() == hi - lo + 1  # dependencies are contiguous
            lft, rgt = hi * s - j, j + 1 - (lo + 1) * s
            left = lft if left is None else max(left, lft)
            right = rgt if right is None else max(right, rgt)
    return Reach(s, left, right)


def discrete_reach(fn, channels, length, positions, seed=0):
    """Like :func:`empirical_reach` in whole input frames: output frame ``n`` belongs to the
    input frames ``floor(n*s) .. ceil((n + 1)*s) - 1`` it overlaps; bounds count whole input
    frames beyond them (what a model reports as left context and lookahead)."""
    torch.manual_seed(seed)
    x = torch.randn(1, channels, length)
    left = right = 0
    with torch.no_grad():
        y0 = fn(x)
        s = Fraction(length, y0.shape[-1])
        for j in positions:
            x2 = x.clone()
            x2[..., j] += 1.0
            changed = torch.nonzero((fn(x2) - y0).abs().amax(dim=(0, 1)) > 1e-6)[:, 0].tolist()
            left = max(left, max(int(n * s) - j for n in changed))
            right = max(right, max(j - (-(-(n + 1) * s // 1) - 1) for n in changed))
    return left, right


def randomise(module, seed=0):
    """Random weights everywhere (zero-initialised parameters included), eval mode."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.5)
    return module.eval()


# ------------------------------------------------------------------------------------ Reach
def test_reach_keeps_whole_strides_as_ints():
    r = Reach(Fraction(4, 2), Fraction(6, 3), 0)
    assert (type(r.stride), type(r.left), type(r.right)) == (int, int, int)
    assert r == Reach(2, 2, 0)
    assert Reach().unshuffle(2).conv(1, 1).shuffle(2) == Reach(1, 3, 3)
    r = Reach().unshuffle(4).conv(2, 1).downsample(2, 1, 0).shuffle(2)
    assert r == Reach(4, 16, 8) and all(type(v) is int for v in (r.stride, r.left, r.right))


def test_reach_fractional_strides():
    r = Reach().shuffle(2)
    assert r == Reach(Fraction(1, 2), Fraction(1, 2), Fraction(1, 2))
    assert r == Reach().upsample(2, 2, 0)
    # a conv at stride 1/2 reads half input frames
    assert r.conv(1, 0) == Reach(Fraction(1, 2), 1, Fraction(1, 2))
    # back to stride 1: the bounds over phases are kept (a safe bound)
    assert r.unshuffle(2) == Reach(1, Fraction(1, 2), Fraction(1, 2))
    # whole input frames: the floor, grouped by the input frame each frame lies in
    assert r.whole() == Reach(1, 0, 0)
    assert Reach(Fraction(1, 256), Fraction(1023, 256), Fraction(255, 256)).whole() == Reach(1, 3, 0)
    assert Reach(Fraction(3, 2), Fraction(5, 2), 1).whole() == Reach(3, 2, 1)
    assert Reach(4, 3, 2).whole() == Reach(4, 3, 2)
    with pytest.raises(ValueError):
        r.merge(Reach())


def test_reach_rejects_inexact_values():
    with pytest.raises(TypeError):
        Reach(0.5)
    with pytest.raises(TypeError):
        Reach(1, 1.0, 0)
    with pytest.raises(ValueError):
        Reach(0)
    with pytest.raises(ValueError):
        Reach(Fraction(-1, 2))


# ------------------------------------------------------------------------------ strided conv
STRIDED = [(2, 2, "causal"), (3, 2, "centered"), (4, 2, "centered"), (5, 2, "causal"), (3, 3, "centered"),
           (7, 3, "centered"), (8, 4, "causal"), (8, 4, "centered"), (4, 4, "centered")]


@pytest.mark.parametrize("k,f,mode", STRIDED)
@pytest.mark.parametrize("delay_in", [0, 1, 2])
def test_strided_conv_streams_exactly(k, f, mode, delay_in):
    layer = randomise(StridedConv1d(3, 4, k, f, mode))
    torch.manual_seed(1)
    x = torch.randn(2, 3, 40 * f)
    delays = {assert_streams_exactly(lambda b, d, c: cached_strided_conv(layer, b, d, c), layer, x, g * f, delay_in)
              for g in (1, 3, 7)}
    assert len(delays) == 1  # the delay depends on the architecture, not on the block size
    # the method is the same function
    y1, _ = run_stream(layer.stream, x, 3 * f, delay_in)
    y2, _ = run_stream(lambda b, d, c: cached_strided_conv(layer, b, d, c), x, 3 * f, delay_in)
    assert torch.equal(y1, y2)


@pytest.mark.parametrize("k,f,mode", STRIDED)
def test_strided_conv_reach_is_tight(k, f, mode):
    layer = randomise(StridedConv1d(2, 3, k, f, mode))
    r = layer.reach(Reach())
    assert r == Reach(f, *layer.padding)
    mid = 8 * f
    assert empirical_reach(layer, 2, 16 * f, range(mid, mid + f)) == r


def test_strided_conv_lengths_and_errors():
    layer = StridedConv1d(1, 2, 5, 2, "centered")
    assert layer(torch.zeros(3, 1, 16)).shape == (3, 2, 8)
    assert layer.padding == (2, 1)
    assert StridedConv1d(1, 1, 5, 2, "causal").padding == (3, 0)
    with pytest.raises(ValueError):
        layer(torch.zeros(1, 1, 15))
    with pytest.raises(ValueError):
        StridedConv1d(1, 1, 1, 2)  # kernel shorter than the stride
    with pytest.raises(ValueError):
        StridedConv1d(1, 1, 3, 2, "same")
    cur = StateCursor(None, 1, torch.zeros(1))
    with pytest.raises(ValueError):
        cached_strided_conv(layer, torch.zeros(1, 1, 3), 0, cur)


def test_strided_conv_aligns_phase_in_its_cache():
    # centered k=4, f=2 (padding (1, 1)): from delay 0 the windows shift by one frame (a
    # cache of k - f + 1 frames), and the output is one frame (two input frames) late
    layer = StridedConv1d(1, 1, 4, 2, "centered")
    cur = StateCursor(None, 1, torch.zeros(1))
    _, d = cached_strided_conv(layer, torch.zeros(1, 1, 4), 0, cur)
    assert d == 1 and [t.shape[-1] for t in cur.finish()] == [3]
    cur = StateCursor(None, 1, torch.zeros(1))
    _, d = cached_strided_conv(layer, torch.zeros(1, 1, 4), 1, cur)  # already in phase
    assert d == 1 and [t.shape[-1] for t in cur.finish()] == [2]
    # causal, kernel = stride: no state at all
    cur = StateCursor(None, 1, torch.zeros(1))
    _, d = cached_strided_conv(StridedConv1d(1, 1, 2, 2, "causal"), torch.zeros(1, 1, 4), 0, cur)
    assert d == 0 and cur.finish() == ()


# ---------------------------------------------------------------------------- transposed conv
TRANSPOSED = [(2, 2, "causal"), (3, 2, "centered"), (4, 2, "centered"), (5, 2, "causal"), (7, 3, "centered"),
              (8, 4, "causal"), (9, 4, "centered"), (4, 4, "centered"), (3, 1, "centered")]


@pytest.mark.parametrize("k,f,mode", TRANSPOSED)
@pytest.mark.parametrize("delay_in", [0, 2])
def test_transposed_conv_streams_exactly(k, f, mode, delay_in):
    layer = randomise(TransposedConv1d(3, 2, k, f, mode))
    torch.manual_seed(1)
    x = torch.randn(2, 3, 40)
    for g in (1, 3, 7):
        d = assert_streams_exactly(lambda b, d, c: cached_transposed_conv(layer, b, d, c), layer, x, g, delay_in)
        assert d == delay_in * f + layer.crop_left
    # state: the k - f frames of partial sums that spill past a block
    cur = StateCursor(None, 2, x)
    layer.stream(x[..., :3], delay_in, cur)
    assert [tuple(t.shape) for t in cur.finish()] == ([(2, 2, k - f)] if k > f else [])


@pytest.mark.parametrize("k,f,mode", TRANSPOSED)
def test_transposed_conv_reach_is_tight(k, f, mode):
    layer = randomise(TransposedConv1d(2, 3, k, f, mode))
    r = layer.reach(Reach())
    assert r.stride == Fraction(1, f)
    assert empirical_reach(layer, 2, 24, range(10, 13)) == r
    # after a stride-2 tensor (a superpixel in front): the rule scales with the input stride
    chain = nn.Sequential(PixelUnshuffle1d(2), layer)
    assert empirical_reach(chain, 1, 48, range(20, 24)) == layer.reach(Reach().unshuffle(2))


def test_transposed_conv_lengths_and_errors():
    layer = TransposedConv1d(2, 1, 7, 3, "centered")
    assert layer(torch.zeros(1, 2, 10)).shape == (1, 1, 30)
    assert layer.crop_left == 2
    assert TransposedConv1d(2, 1, 7, 3, "causal").crop_left == 0
    with pytest.raises(ValueError):
        TransposedConv1d(1, 1, 2, 3)
    with pytest.raises(ValueError):
        TransposedConv1d(1, 1, 4, 2, "same")


def test_transposed_conv_with_kernel_equal_stride_is_a_subpixel_layer():
    layer = TransposedConv1d(1, 1, 3, 3, "causal", bias=False)
    with torch.no_grad():
        layer.conv.weight.copy_(torch.tensor([[[1.0, 2.0, 3.0]]]))
    x = torch.randn(1, 1, 5)
    y = layer(x)
    assert torch.allclose(y, PixelShuffle1d(3)(torch.cat([x, 2 * x, 3 * x], dim=1)))
    assert layer.reach(Reach()) == PixelShuffle1d(3).reach(Reach())


# ----------------------------------------------------------------------------- per-frame layers
def _pointwise_layers():
    torch.manual_seed(0)
    affine = randomise(ChannelAffine(3))
    conv1 = nn.utils.parametrizations.weight_norm(nn.Conv1d(3, 3, 1))
    return {"leaky_relu": nn.LeakyReLU(0.2), "tanh": nn.Tanh(), "snake": randomise(Snake1d(3)), "affine": affine,
            "weight_norm_1x1": conv1.eval(), "stack": nn.Sequential(affine, nn.LeakyReLU(0.1), nn.Tanh())}


@pytest.mark.parametrize("name", list(_pointwise_layers()))
def test_pointwise_layers_need_no_state_and_keep_reach(name):
    layer = Pointwise(_pointwise_layers()[name])
    torch.manual_seed(1)
    x = torch.randn(2, 3, 30)
    for block in (1, 3, 7):
        d = assert_streams_exactly(layer.stream, layer, x, block, delay_in=2)
        assert d == 2
    cur = StateCursor(None, 2, x)
    layer.stream(x, 0, cur)
    assert cur.finish() == ()
    r = Reach(2, 3, 1)
    assert layer.reach(r) == r
    assert empirical_reach(layer, 3, 20, range(5, 15)) == Reach()


def test_instance_norm_is_not_pointwise():
    norm = nn.InstanceNorm1d(3)
    # the perturbation check has teeth: every output frame depends on every input frame
    r = empirical_reach(norm, 3, 32, range(8, 24))
    assert r.left >= 31 - 8 and r.right >= 24 - 1
    assert r != Reach()
    for bad in (norm, nn.BatchNorm1d(3), nn.GroupNorm(1, 3), nn.LayerNorm(8), nn.Linear(8, 8), nn.Conv1d(3, 3, 3),
                nn.Sequential(nn.Tanh(), nn.Conv1d(3, 3, 1, stride=2))):
        with pytest.raises(ValueError):
            Pointwise(bad)
    check_pointwise(nn.Sequential(nn.Conv1d(3, 3, 1), nn.LeakyReLU()))


def test_batchnorm_folds_into_a_channel_affine():
    bn = nn.BatchNorm1d(4)
    bn.train()
    with torch.no_grad():
        bn(3 * torch.randn(8, 4, 50) + 1)  # running statistics
        bn.weight.normal_()
        bn.bias.normal_()
    bn.eval()
    x = torch.randn(2, 4, 30)
    with torch.no_grad():
        assert torch.allclose(ChannelAffine.from_batchnorm(bn)(x), bn(x), atol=1e-6)
    with pytest.raises(ValueError):
        ChannelAffine.from_batchnorm(nn.BatchNorm1d(4, track_running_stats=False))


# --------------------------------------------------------------------------------- composition
class Stack(nn.Module):
    """Strided conv down by 2, conv, transposed conv up by 4: twice as many frames out as in."""

    def __init__(self, mode, bias=True):
        super().__init__()
        self.down = StridedConv1d(1, 6, 4, 2, mode, bias=bias)
        self.conv = PaddedConv1d(6, 6, 3, mode, bias=bias)
        self.act = Pointwise(nn.LeakyReLU(0.2))
        self.snake = Pointwise(Snake1d(6))
        self.up = TransposedConv1d(6, 2, 7, 4, mode, bias=bias)

    def forward(self, x):
        return self.up(self.snake(self.conv(self.act(self.down(x)))))

    def stream(self, x, d, cur):
        h, d = self.down.stream(x, d, cur)
        h, d = self.act.stream(h, d, cur)
        h, d = cached_conv(self.conv, h, d, cur)
        h, d = self.snake.stream(h, d, cur)
        return self.up.stream(h, d, cur)

    def reach(self, r):
        return self.up.reach(self.snake.reach(self.conv.reach(self.act.reach(self.down.reach(r)))))


@pytest.mark.parametrize("mode", ["causal", "centered"])
@pytest.mark.parametrize("delay_in", [0, 1])
@pytest.mark.parametrize("bias", [False, True])
def test_composed_stack_streams_exactly(mode, delay_in, bias):
    stack = randomise(Stack(mode, bias))
    torch.manual_seed(2)
    x = torch.randn(2, 1, 80)
    assert stack(x).shape == (2, 2, 160)
    r = stack.reach(Reach())
    # leave out the output frames whose receptive field reaches past either end of the input,
    # except at the start for causal layers without biases (their inner frames before the
    # input are zeros, as offline)
    start = 0 if mode == "causal" and not bias else int(-(-(r.left + 1) // r.stride))
    skip = (start, int(-(-(r.right + 1) // r.stride)))
    for g in (1, 3, 7):
        assert_streams_exactly(stack.stream, stack, x, 2 * g, delay_in, skip)


@pytest.mark.parametrize("mode", ["causal", "centered"])
def test_composed_stack_reach_is_tight(mode):
    stack = randomise(Stack(mode))
    r = stack.reach(Reach())
    assert r.stride == Fraction(1, 2)
    assert empirical_reach(stack, 1, 64, range(30, 34)) == r
    # in whole input frames (what a model reports): the floor of the exact bounds
    w = r.whole()
    assert w.stride == 1 and discrete_reach(stack, 1, 64, range(30, 34)) == (w.left, w.right)
    if mode == "causal":
        # reads nothing past the granule of 2 input frames each output frame lies in
        assert w.right == 1 and r.right == Fraction(3, 2)


def test_upsampling_toy_reach_in_fractional_strides():
    # the 8 -> 16 kHz toy (two subpixel layers): its output is at stride 1/2; its model-level
    # reach (stride 1, whole frames) is the whole() of the exact one
    toy = random_model("toy-up2")
    exact = toy.c2.reach(toy.c1.reach(Reach().unshuffle(2))).shuffle(2).shuffle(2)
    assert exact.stride == Fraction(1, 2)
    assert empirical_reach(toy, 1, 64, range(28, 32)) == exact
    assert toy.reach() == exact and exact.whole() == Reach(1, toy.left_context, toy.lookahead)


@pytest.mark.parametrize("memory", [0, 1, 5])
def test_with_history_gives_each_block_its_past_frames(memory):
    """Streamed over uneven blocks, each block comes back preceded by the ``memory`` frames before
    it in the whole signal (zeros before the start): the windows of the left-zero-padded signal."""
    x = torch.randn(2, 3, 40)
    padded = F.pad(x, (memory, 0))
    state, start = None, 0
    for n in (1, 7, 3, 16, 13):
        cur = StateCursor(state, batch=2, like=x)
        y = with_history(x[..., start:start + n], memory, cur)
        state = cur.finish()
        assert torch.equal(y, padded[..., start:start + memory + n])
        start += n
    assert start == x.shape[-1] and len(state) == (1 if memory else 0)
