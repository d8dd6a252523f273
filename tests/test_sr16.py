"""sr16-unet (Kuleshov et al. 2017 via seed 002) and its cubic-spline front end."""
import dataclasses
import importlib.util
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rtgan.engine import StatefulStream, stream_signal
from rtgan.models import registry
from rtgan.models.layers import Reach, StateCursor
from rtgan.models.layers.spline import SplineUpsample1d, cardinal_spline3, spline_kernel
from rtgan.models.ports import Port
from rtgan.models.sr16 import SR16Config, SR16UNet

from helpers import BLOCK_SIZES, random_model, whole_file

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
TINY = ["tiny", "tiny-r4"]


# ------------------------------------------------------------------ the spline front end
@pytest.mark.parametrize("r", [2, 3, 4])
def test_spline_kernel_interpolates_and_keeps_constants(r):
    w = spline_kernel(r, 12)
    crop = 12 * r - 1
    assert w.shape == (2 * 12 * r - 1,)
    assert torch.equal(w, w.flip(0))  # symmetric: the spline has no preferred direction
    # phase 0 (the input samples themselves) is exactly a unit impulse
    phase0 = w[crop % r::r]
    assert phase0.sum() == 1 and torch.count_nonzero(phase0) == 1 and w[crop] == 1
    for j in range(1, r):
        assert abs(float(w[(crop + j) % r::r].sum()) - 1.0) < 1e-15
    # the cardinal spline: 1 at 0, 0 at other integers, decaying like |sqrt(3) - 2|**|t|
    assert cardinal_spline3(0.0) == pytest.approx(1.0, abs=1e-15)
    assert all(abs(cardinal_spline3(float(k))) < 1e-15 for k in range(1, 6))
    ratios = [abs(cardinal_spline3(k + 0.5) / cardinal_spline3(k - 0.5)) for k in range(3, 10)]
    assert max(abs(q - (2 - math.sqrt(3))) for q in ratios) < 1e-9


@pytest.mark.parametrize("r", [2, 4])
def test_spline_matches_scipy_away_from_the_edges(r):
    """Against scipy's interpolating cubic spline (CubicSpline, not-a-knot) and Kuleshov's
    splrep/splev on the same grid: the FIR is the same spline away from the ends of a clip."""
    from scipy.interpolate import CubicSpline, splev, splrep
    n = 6000
    x = np.random.default_rng(r).standard_normal(n)
    exact = CubicSpline(np.arange(n), x)(np.arange(n * r) / r)
    kuleshov = splev(np.arange(n * r), splrep(np.arange(0, n * r, r), x))
    inner = slice(100 * r, (n - 100) * r)  # the ends' influence has decayed by 0.268**100
    assert np.abs(exact - kuleshov)[inner].max() < 1e-12
    y64 = SplineUpsample1d(r, 12).double()(torch.from_numpy(x)[None, None])[0, 0].numpy()
    y32 = SplineUpsample1d(r, 12)(torch.from_numpy(x).float()[None, None])[0, 0].double().numpy()
    assert np.abs(y64 - exact)[inner].max() < 2e-6  # measured 5.7e-7 for unit-variance noise
    assert np.abs(y32 - exact)[inner].max() < 1e-5  # measured 9.7e-7
    # and the error shrinks like 0.268**K with the half width K
    e6 = np.abs(SplineUpsample1d(r, 6).double()(torch.from_numpy(x)[None, None])[0, 0].numpy() - exact)[inner].max()
    assert 1e-4 < e6 < 1e-2 and e6 / np.abs(y64 - exact)[inner].max() > 0.5 * (1 / 0.268) ** 6


@pytest.mark.parametrize("r", [2, 4])
@pytest.mark.parametrize("block", [1, 5, 64])
def test_spline_streams_like_offline(r, block):
    up = SplineUpsample1d(r, 6)
    x = torch.randn(2, 3, 640)
    ref = up(F.pad(x, (0, 16)))  # room for the lookahead
    state, outs, delay = None, [], None
    for blk in x.split(block, dim=-1):
        cur = StateCursor(state, 2, blk)
        y, delay = up.stream(blk, 0, cur)
        outs.append(y)
        state = cur.finish()
    y = torch.cat(outs, dim=-1)
    assert delay == up.crop_left == 6 * r - 1
    torch.testing.assert_close(y[..., delay:], ref[..., : y.shape[-1] - delay], atol=1e-6, rtol=0)


@pytest.mark.parametrize("r", [2, 4])
def test_spline_reach_equals_perturbation(r):
    up = SplineUpsample1d(r, 5)
    rule = up.reach(Reach())
    emp = _discrete_reach(up, 200, range(90, 110))
    # the kernel's outermost taps are ~0.268**5 small but nonzero: the rule is tight
    assert (rule.whole().left, rule.whole().right) == emp == (4, 5)


def test_spline_is_not_trainable_and_not_saved():
    up = SplineUpsample1d(2, 12)
    assert list(up.parameters()) == [] and "kernel" not in up.state_dict()
    m = registry.build("sr16-unet", "tiny")
    assert not any(k.startswith("spline") for k in m.state_dict())


# ------------------------------------------------------------------ the model
@pytest.mark.parametrize("preset,r", [("tiny", 2), ("tiny-r4", 4), ("live-r2", 2), ("live-r4", 4)])
def test_shapes_ports_and_rate_ratio(preset, r):
    m = registry.build("sr16-unet", preset)
    assert m.config.ratio == r and m.rate_ratio == r
    assert m.port_in == Port.audio(16000 // r) and m.port_out == Port.audio(16000)
    assert (m.sample_rate_in, m.sample_rate_out) == (16000 // r, 16000)
    # the granule in input frames makes a whole number of the U-Net's deepest frames
    assert (m.total_stride * r) % m.unet_stride == 0 and m.total_stride == max(1, m.unet_stride // r)
    assert m.out_granule == m.total_stride * r
    x = torch.randn(3, 1, 8 * m.total_stride)
    with torch.no_grad():
        assert m(x).shape == (3, 1, 8 * m.total_stride * r)
    with pytest.raises(ValueError):
        m(torch.randn(3, 1, 8 * m.total_stride + 1))


def test_unsized_preset_names_take_ratio_2():
    assert registry.make_config("sr16-unet", "live") == registry.make_config("sr16-unet", "live-r2")
    assert registry.make_config("sr16-unet", "paper") == registry.make_config("sr16-unet", "paper-r2")
    assert registry.make_config("sr16-unet", "tiny").ratio == 2


def test_paper_preset_follows_kuleshov():
    c = registry.make_config("sr16-unet", "paper-r4")
    assert c.ratio == 4 and c.sample_rate == 16000 and c.blocks == 4 and c.dropout == 0.5
    # min(2**(6 + b), 512) filters of length max(2**(7 - b) + 1, 9); the bottleneck is level B + 1
    assert [c.filters(b) for b in range(1, 6)] == [128, 256, 512, 512, 512]
    assert [c.kernel(b) for b in range(1, 6)] == [65, 33, 17, 9, 9]
    with torch.device("meta"):  # shapes only, no 56 M random numbers
        m = SR16UNet(c)
    assert [(d.conv.out_channels, d.conv.kernel_size[0], d.stride) for d in m.down] == \
        [(128, 65, 2), (256, 33, 2), (512, 17, 2), (512, 9, 2)]
    assert (m.bottleneck.conv.out_channels, m.bottleneck.conv.kernel_size[0]) == (512, 9)
    # up blocks: 2 F_b filters of length K_b on the stacked (2 F_{b+1}) input
    assert [(u.conv.in_channels, u.conv.out_channels, u.conv.kernel_size[0]) for u in m.up] == \
        [(512, 1024, 9), (1024, 1024, 17), (1024, 512, 33), (512, 256, 65)]
    assert (m.out.conv.in_channels, m.out.conv.out_channels, m.out.conv.kernel_size[0]) == (256, 2, 9)
    assert m.unet_stride == 32 and m.total_stride == 8
    assert 50e6 < m.num_parameters() < 60e6


def test_live_presets_are_causal_and_small():
    for p in ("live-r2", "live-r4"):
        m = registry.build("sr16-unet", p)
        assert m.config.padding == "causal" and m.num_parameters() < 300_000
    tiny = registry.build("sr16-unet", "tiny")
    assert tiny.config.padding == "centered" and tiny.num_parameters() < 10_000


@pytest.mark.parametrize("preset", ["tiny", "tiny-r4", "live-r2"])
def test_untrained_model_is_the_spline_baseline(preset):
    m = registry.build("sr16-unet", preset).eval()
    assert torch.count_nonzero(m.out.conv.weight) == 0
    assert m.out.conv.bias is None if m.config.dc_free_output else torch.count_nonzero(m.out.conv.bias) == 0
    x = torch.randn(2, 1, 16 * m.total_stride)
    with torch.no_grad():
        assert torch.equal(m(x), m.spline(x))
    # and the network is not the identity once the output conv is trained (random here)
    r = random_model("sr16-unet", preset)
    with torch.no_grad():
        assert (r(x) - r.spline(x)).abs().max() > 1e-3


@pytest.mark.parametrize("preset", TINY)
@pytest.mark.parametrize("block", BLOCK_SIZES)
def test_stream_equals_offline_eager(preset, block):
    torch.manual_seed(3)
    m = random_model("sr16-unet", preset)
    x = 0.3 * torch.randn(2, 1, 3000)
    stream = StatefulStream(m, block, runtime="eager")
    delay = stream.latency_samples
    y = stream_signal(stream, F.pad(x, (0, delay)), compensate=False)
    ref = whole_file(m, x)
    n = ref.shape[-1]
    assert n == 3000 * m.config.ratio
    assert (y[..., delay:delay + n] - ref).abs().max().item() <= 1e-4
    # the shift is exact: one sample off is far from the reference
    assert (y[..., delay + 1:delay + n] - ref[..., :-1]).abs().max().item() > 1e-2


@pytest.mark.parametrize("runtime", ["torchscript"] + (["onnxruntime"] if HAS_ORT else []))
@pytest.mark.parametrize("preset", TINY)
def test_compiled_runtimes_stream_like_offline(runtime, preset):
    torch.manual_seed(4)
    m = random_model("sr16-unet", preset)
    x = 0.3 * torch.randn(2, 1, 2000)
    y = stream_signal(StatefulStream(m, 65, runtime=runtime), x)
    ref = whole_file(m, x)
    assert y.shape == ref.shape == (2, 1, 2000 * m.config.ratio)
    assert (y - ref).abs().max().item() <= 1e-4


def test_live_preset_streams_like_offline():
    m = random_model("sr16-unet", "live-r4")
    x = 0.3 * torch.randn(1, 1, 1500)
    y = stream_signal(StatefulStream(m, 64, runtime="eager"), x)
    assert (y - whole_file(m, x)).abs().max().item() <= 1e-4


def _discrete_reach(fn, length, positions):
    """Past/future input frames an output group depends on, found by perturbing single input
    frames (float64, any change counts): output frame ``n`` lies in input frame ``n // r``;
    left = max(n // r - j), right = max(j - n // r) over perturbed frames ``j`` and the
    output frames they change."""
    torch.manual_seed(0)
    x = torch.randn(1, 1, length, dtype=torch.float64)
    left = right = 0
    with torch.no_grad():
        y0 = fn(x)
        r = y0.shape[-1] // length
        for j in positions:
            x2 = x.clone()
            x2[..., j] += 1.0
            changed = torch.nonzero((fn(x2) - y0).abs()[0, 0] > 0)[:, 0]
            assert changed.numel()
            left = max(left, int(changed.max()) // r - j)
            right = max(right, j - int(changed.min()) // r)
    return left, right


@pytest.mark.parametrize("preset", ["tiny", "tiny-r4", "live-r2", "live-r4"])
def test_reach_bounds_true_dependencies(preset):
    m = random_model("sr16-unet", preset).double()
    r = m.reach().whole()
    s = m.total_stride
    # room for the receptive field on both sides; a granule of positions covers every phase
    half = -(-(r.left + r.right + 2 * s) // s) * s
    left, right = _discrete_reach(m, 2 * half + s, range(half, half + s))
    assert left <= r.left and right <= r.right
    # tight within one input frame (the rules bound each layer's worst phase; the spline's
    # and the U-Net's worst phases do not coincide)
    assert r.left <= left + 1 and r.right <= right + 1
    # the stream can only equal offline if its latency covers what the deepest group reads
    assert m.latency_samples + (s - 1) * m.config.ratio >= (right - 1) * m.config.ratio


def test_latency_is_computed_from_the_layers():
    for p in ("live-r2", "live-r4"):
        m = registry.build("sr16-unet", p)
        # causal: the stream waits for the spline's lookahead and the U-Net's stride alignment only
        assert m.spline.crop_left <= m.latency_samples <= m.spline.crop_left + m.unet_stride
    # centered convs add their lookahead
    tiny = registry.build("sr16-unet", "tiny")
    assert tiny.latency_samples > tiny.spline.crop_left + tiny.unet_stride
    # a wider spline (more lookahead) makes a later stream: by its extra lookahead, rounded up
    # to the phase the strided convs need
    wide = SR16UNet(dataclasses.replace(tiny.config, spline_half_width=9))
    extra = 3 * tiny.config.ratio
    assert extra <= wide.latency_samples - tiny.latency_samples < extra + tiny.unet_stride


def test_dropout_acts_only_in_training():
    cfg = dataclasses.replace(registry.make_config("sr16-unet", "tiny"), dropout=0.5)
    torch.manual_seed(0)
    m = SR16UNet(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.2)
    x = torch.randn(1, 1, 256)
    m.train()
    with torch.no_grad():
        assert not torch.equal(m(x), m(x))
    m.eval()
    with torch.no_grad():
        ref = whole_file(m, x)
    y = stream_signal(StatefulStream(m, 64, runtime="eager"), x)
    assert (y - ref).abs().max() <= 1e-4


@pytest.mark.parametrize("bad", [dict(ratio=1), dict(ratio=3, sample_rate=16000), dict(blocks=0),
                                 dict(padding="same"), dict(dropout=1.0), dict(spline_half_width=0),
                                 dict(min_kernel=1)])
def test_bad_configs_are_refused(bad):
    with pytest.raises(ValueError):
        SR16Config(**bad)


def test_other_ratios_fit_the_stride():
    # r = 3 at 24 kHz out (8 kHz in): granules of lcm(32, 3) / 3 input frames
    m = SR16UNet(SR16Config(ratio=3, sample_rate=24000, blocks=4, filter_exp=2, max_filters=8, kernel_exp=3,
                            min_kernel=3, output_kernel=3, spline_half_width=4))
    assert m.total_stride == 32 and m.rate_ratio == 3 and m.port_in.rate == 8000
    with torch.no_grad():
        assert m(torch.randn(1, 1, 64)).shape == (1, 1, 192)


def test_configs_are_frozen():
    c = registry.make_config("sr16-unet", "live")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.ratio = 4


@pytest.mark.parametrize("options", [False, True])
def test_holds_and_a_dc_free_output_leave_no_pattern_on_a_constant(options):
    """Steady tones come from constants (biases, rectified DC) that subpixel layers interleave
    with unequal weights (Sugawara et al. 2018). With a hold after every up block's subpixel and
    a DC-free output conv, a constant input comes out as itself (the spline keeps constants and
    the U-Net adds nothing away from the edges); without them, as a pattern of period 2**k."""
    cfg = dataclasses.replace(registry.make_config("sr16-unet", "tiny"), upsample_hold=options,
                              dc_free_output=options, bias=True)
    torch.manual_seed(5)
    m = SR16UNet(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.3)
    x = torch.full((1, 1, 256 * m.total_stride), 0.3)
    with torch.no_grad():
        inner = (m(x) - 0.3)[..., 128:-128]
    if options:
        assert inner.abs().max().item() < 1e-5
    else:
        assert inner.abs().max().item() > 1e-2
