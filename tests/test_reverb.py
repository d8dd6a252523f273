"""The neural reverbs (reverb-*): decay metrics, the learned FIR, its decay control, targets, training.

Streaming equivalence over the block-size grid, ONNX export and the other per-model grids cover
the reverbs through :data:`helpers.CASES` (every registered model); this file tests what is
particular to them.
"""
import dataclasses
import math

import numpy as np
import pytest
import torch

from rtgan.checkpoint import read_checkpoint
from rtgan.engine.live import LiveProcessor
from rtgan.engine.stateful import StatefulStream
from rtgan.metrics import decay_time, decay_times, energy_decay_curve, mrstft_distance
from rtgan.models import registry
from rtgan.models.reverb import ReverbConfig, ReverbGenerator, band_noise
from rtgan.models.reverb_training import (TARGETS, ReverbTarget, simulate_rooms, target_impulse_response,
                                          target_wet)

SR = 48000


def exponential_noise(rt60: float, seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    """White noise under an envelope falling 60 dB (energy) in ``rt60`` s."""
    t = np.arange(int(seconds * sr)) / sr
    return np.random.default_rng(seed).standard_normal(t.size) * 10 ** (-3 * t / rt60)


# -- Schroeder decay metrics ----------------------------------------------------------------

def test_energy_decay_curve_is_the_backward_integral_in_db():
    edc = energy_decay_curve(np.array([2.0, -1.0, 1.0, 0.0]))
    # energies 4, 1, 1, 0: tails 6, 2, 1, 0
    assert edc[:3] == pytest.approx([0.0, 10 * math.log10(2 / 6), 10 * math.log10(1 / 6)])
    assert edc[3] == -np.inf


@pytest.mark.parametrize("rt60", [0.3, 1.0, 2.5])
def test_decay_times_of_an_exponential_decay_are_its_rt60(rt60):
    d = decay_times(exponential_noise(rt60, 2 * rt60), SR)
    for kind in ("t30", "t20", "edt"):
        assert d[kind] == pytest.approx(rt60, rel=0.05), kind


def test_t30_agrees_with_pyroomacoustics_measure_rt60():
    pra = pytest.importorskip("pyroomacoustics")
    for rt60, seed in ((0.5, 1), (1.7, 2)):
        h = exponential_noise(rt60, 1.5 * rt60, seed)
        ref = pra.experimental.measure_rt60(h, fs=SR, decay_db=30)
        assert decay_time(h, SR, "t30") == pytest.approx(ref, rel=0.03)


def test_a_two_slope_decay_has_a_short_edt_and_a_long_t30():
    h = exponential_noise(0.4, 3.0, 3) + 0.05 * exponential_noise(2.0, 3.0, 4)
    d = decay_times(h, SR)
    assert d["edt"] < 0.6 and math.isnan(d["t30"])  # curved: not one decay rate
    with pytest.raises(ValueError, match="double slope"):
        decay_time(h, SR, "t30")
    assert decay_time(h, SR, "t30", max_nonlinearity=None) > 2 * d["edt"]


def test_decay_metrics_refuse_what_they_cannot_measure():
    with pytest.raises(ValueError, match="all zeros"):
        energy_decay_curve(np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        energy_decay_curve(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="1-D"):
        energy_decay_curve(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="unknown decay"):
        decay_time(exponential_noise(0.5, 1.0), SR, "t60")
    short = exponential_noise(2.0, 0.5)  # cut off 15 dB down its decay: no T30
    with pytest.raises(ValueError, match="curved"):
        decay_time(short, SR, "t30")
    assert decay_time(short, SR, "t30", max_nonlinearity=None) < 0.6 * 2.0  # what the check prevents
    d = decay_times(short, SR)
    assert math.isnan(d["t30"]) and d["edt"] == pytest.approx(2.0, rel=0.15)
    with pytest.raises(ValueError, match="does not reach"):
        decay_time(np.r_[1.0, np.full(100, 0.1)], SR, "t30")


def test_mrstft_distance_is_zero_for_a_signal_and_grows_with_a_change():
    x = np.random.default_rng(0).standard_normal(SR // 2).astype(np.float32)
    assert mrstft_distance(x, x) == pytest.approx(0.0, abs=1e-5)
    assert 0 < mrstft_distance(0.9 * x, x) < mrstft_distance(0.5 * x, x)
    with pytest.raises(ValueError):
        mrstft_distance(x, x[:-1])


# -- the learned FIR ---------------------------------------------------------------------------

def plain(cfg: ReverbConfig, **kw) -> ReverbGenerator:
    """A reverb with its late part alone (no early taps): its decay is the configured one."""
    g = ReverbGenerator(dataclasses.replace(cfg, early_taps=0, **kw))
    return g.eval()


def test_band_noise_is_unit_rms_octave_bands():
    cfg = ReverbConfig(tail_seconds=1.0)
    n = band_noise(cfg)
    assert n.shape == (8, cfg.taps) and np.allclose(np.sqrt((n.astype(np.float64) ** 2).mean(1)), 1.0, atol=1e-5)
    f = np.fft.rfftfreq(cfg.taps, 1 / SR)
    for b in range(1, 7):  # the octave band-passes: most energy between their edges
        p = np.abs(np.fft.rfft(n[b])) ** 2
        lo, hi = 125 * 2 ** (b - 1), 125 * 2 ** b
        assert p[(f >= lo) & (f < hi)].sum() > 0.6 * p.sum()
    assert np.array_equal(n, band_noise(cfg))  # fixed: the seed's stream


@pytest.mark.parametrize("rt60", [0.5, 1.0, 2.0])
def test_the_late_part_decays_in_its_configured_rt60(rt60):
    g = plain(ReverbConfig(tail_seconds=min(2.5, 1.6 * rt60)), rt60_default=rt60, rt60_min=0.3)
    with torch.no_grad():
        h = g.impulse_response()[0].numpy()
    assert h.shape == (g.config.taps,)
    assert decay_time(h, SR, "t30") == pytest.approx(rt60, rel=0.05)


def test_the_decay_control_sets_the_rt60_of_an_untrained_room_model():
    g = plain(ReverbConfig(conditioned=True, tail_seconds=2.5))
    for rt60 in (0.3, 0.8, 2.0, 3.0):
        with torch.no_grad():
            h = g.impulse_response(g.control(rt60))[0].numpy()
        assert decay_time(h, SR, "t30") == pytest.approx(rt60, rel=0.06), rt60


def test_forward_is_the_convolution_with_the_impulse_response():
    g = registry.build("reverb-freeverb", "tiny").eval()
    with torch.no_grad():
        g.free.normal_(0, 0.01)  # (the spectra of the partitions of the free taps)
        g.early.normal_(0, 0.1)
        x = torch.randn(2, 1, 640)
        h = g.impulse_response()[0].numpy()
        y = g(x).numpy()
    ref = np.stack([np.convolve(x[i, 0].numpy(), h)[:640] for i in range(2)])
    assert np.allclose(y[:, 0], ref, atol=1e-4)
    with torch.no_grad():  # an impulse in gives h out
        imp = torch.zeros(1, 1, g.config.taps)
        imp[..., 0] = 1
        assert np.allclose(g(imp)[0, 0].numpy(), h, atol=1e-5)


@pytest.mark.parametrize("name", ["reverb-freeverb", "reverb-rir", "reverb-room"])
def test_reverbs_have_no_lookahead_and_stream_whole_partitions_with_no_latency(name):
    g = registry.build(name, "live")
    assert g.reach().right == 0 and g.latency_samples == 0 and g.output_role == "wet"
    assert StatefulStream(g, 256).latency_samples == 0
    assert StatefulStream(g, 512).latency_samples == 0


def test_a_streamed_decay_change_is_the_offline_output_at_that_decay():
    g = registry.build("reverb-room", "tiny").eval()
    assert g.parameter_states() == {"decay": 0}
    x = torch.randn(2, 1, 32 * 40)
    state = g.init_state(2)
    state = (g.parameter_state("decay", 0.45, 2),) + tuple(state[1:])
    with torch.no_grad():
        y, _ = g.step(x, state)
        ref = g(x, rt60=0.45)
    assert torch.allclose(y, ref, atol=1e-5, rtol=1e-4)
    with pytest.raises(KeyError):
        g.parameter_state("size", 1.0)
    with pytest.raises(ValueError):
        g.parameter_state("decay", 10.0)
    with pytest.raises(ValueError, match="RT60"):
        g(x, rt60=-1.0)


def test_anchors_carry_no_state_parameters():
    g = registry.build("reverb-rir", "tiny")
    assert g.parameter_states() == {} and not getattr(g, "live_parameters", ())
    with pytest.raises(KeyError):
        g.parameter_state("decay", 1.0)


def test_config_refuses_bad_values():
    with pytest.raises(ValueError):
        ReverbConfig(partition=0)
    with pytest.raises(ValueError, match="shorter than one partition"):
        ReverbConfig(tail_seconds=1e-4)
    with pytest.raises(ValueError, match="rt60_min"):
        ReverbConfig(rt60_default=5.0)
    with pytest.raises(ValueError, match="Nyquist"):
        ReverbConfig(bands=10)
    with pytest.raises(ValueError, match="conditioned"):
        ReverbConfig(free_taps=True, conditioned=True)


def test_live_decay_knob_reaches_the_stream_and_the_output_is_dry_plus_wet():
    """The engine's LiveProcessor: the decay moves the step's filter state (made off the audio
    thread), and the output is dry + wet * wet-parameter with the model's wet signal."""
    g = registry.build("reverb-room", "tiny").eval()
    with torch.no_grad():
        g.log_gain.add_(3.0)  # a loud tail, so the decay shows
    proc = LiveProcessor(g, block_size=64, wet=0.5, limiter=False, deadline_ms=1e6)
    assert proc.latency_samples == 64
    proc.params.jump("decay", 0.6)
    proc.settle_parameters()
    assert proc.state_parameter_values() == {"decay": pytest.approx(0.6)}
    x = 0.1 * np.random.default_rng(0).standard_normal(64 * 30).astype(np.float32)
    out = np.zeros((x.size, 1), np.float32)
    for i in range(0, x.size, 64):
        proc.process(x[i:i + 64, None], out[i:i + 64])
    with torch.no_grad():
        wet = g(torch.from_numpy(x)[None, None], rt60=0.6)[0, 0].numpy()
    assert np.allclose(out[:, 0], x + 0.5 * wet, atol=1e-5)


def test_warmup_starts_the_state_worker_so_no_callback_starts_a_thread(monkeypatch):
    """Thread.start() waits for the new thread to run: on a loaded 2-core machine that cost a
    live stream one late block at the first decay change. After warmup the worker exists, and
    the callbacks that send it decay requests start no thread."""
    import threading
    g = registry.build("reverb-room", "tiny").eval()
    proc = LiveProcessor(g, block_size=64, limiter=False, deadline_ms=1e6)
    proc.warmup(blocks=2)
    workers = [t for t in threading.enumerate() if t.name.startswith("rtgan-params")]
    assert len(workers) == 1 and workers[0].is_alive()
    started = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self.name), real_start(self)))
    z = np.zeros((64, 1), np.float32)
    out = np.zeros_like(z)
    for v in (0.5, 1.5, 2.5):
        proc.params.jump("decay", v)
        proc.process(z, out)
        proc.settle_parameters()
    assert started == [] and proc.state_parameter_values() == {"decay": pytest.approx(2.5)}


# -- targets -----------------------------------------------------------------------------------

def test_freeverb_target_is_linear_and_time_invariant_from_silence():
    t = TARGETS["reverb-freeverb"]
    ir = target_impulse_response(t, SR)
    x = np.zeros(SR, np.float32)
    x[1000], x[5000] = 0.5, -0.25
    y = target_wet(x, SR, t)
    ref = 0.5 * np.concatenate([np.zeros(1000), ir])[:SR] - 0.25 * np.concatenate([np.zeros(5000), ir])[:SR]
    assert np.allclose(y, ref, atol=1e-5)
    assert "damping" in t.describe() and "wet_level=1" in t.describe()


def test_simulated_rooms_are_deterministic_and_labelled_with_their_t30():
    t = ReverbTarget(kind="rir", rooms=2, rt60_min=0.3, rt60_max=0.6, room_seed=5, max_order=3, rays=300,
                     ir_seconds=0.6)
    a, b = simulate_rooms(t, 16000), simulate_rooms(t, 16000)
    assert len(a) == 2 and all(np.array_equal(r["ir"], s["ir"]) for r, s in zip(a, b))
    for r in a:
        assert r["ir"].shape == (int(0.6 * 16000),)
        assert np.all(r["ir"][: int(0.002 * 16000)] == 0)  # the direct path is the engine's dry
        assert r["rt60"] == pytest.approx(decay_time(r["ir"], 16000, "t30", max_nonlinearity=None))
        assert r["rt60"] == pytest.approx(r["design_rt60"], rel=0.5)
    with pytest.raises(ValueError):
        ReverbTarget(kind="plate")


# -- training ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["reverb-freeverb", "reverb-room"])
def test_tiny_training_lowers_the_validation_loss(name, corpus, tmp_path):
    from rtgan.training.loop import train
    cfg = dataclasses.replace(registry.recipe(name).presets()["tiny"], steps=30, val_every=15, ckpt_every=30,
                              adv_start_step=15)
    state = train(cfg, corpus, tmp_path / "run", device="cpu", progress=False)
    h = state.history
    assert [e["step"] for e in h] == [0, 15, 30]
    assert h[-1]["loss"] < 0.9 * h[0]["loss"]
    g = registry.load_model(name, tmp_path / "run" / f"{name}.safetensors")
    assert g.config == state.generator.config
    _, meta = read_checkpoint(tmp_path / "run" / f"{name}.safetensors")
    assert meta["train_config"]["target"] == dataclasses.asdict(cfg.target)  # the target, stated


def test_free_part_round_trips_through_its_spectral_parameters():
    g = registry.build("reverb-freeverb", "tiny")
    part = torch.randn(g.config.taps, dtype=torch.float64) * g.free_envelope().double()
    g.set_free_part(part)
    with torch.no_grad():
        assert torch.allclose(g.free_part().double(), part, atol=1e-6)


def test_h1_initialisation_recovers_the_targets_response(corpus):
    """The anchors' start: the H1 estimate from a few training items is the target's own
    response (Freeverb is linear and time-invariant), so ``h`` starts on it."""
    from rtgan.training.loop import init_state, make_datasets
    tiny = registry.recipe("reverb-freeverb").presets()["tiny"]
    # the target's response padded to 2 s: the Freeverb's tail (T30 1.4 s) is in it to -90 dB
    cfg = dataclasses.replace(tiny, h1_items=4, target=dataclasses.replace(tiny.target, ir_seconds=2.0))
    state = init_state(cfg, torch.device("cpu"))
    train_set, _ = make_datasets(corpus, state.recipe, state.nets)
    sampler = torch.utils.data.RandomSampler(train_set, replacement=True, num_samples=8)
    loader = iter(torch.utils.data.DataLoader(train_set, batch_size=2, sampler=sampler))
    done = state.recipe.initialise(state.nets, lambda: next(loader))
    g = state.generator
    assert done["method"] == "H1" and done["items"] == 4 and done["set_error"] < 1e-5
    with torch.no_grad():
        h = g.impulse_response()[0].numpy()
    ir = target_impulse_response(cfg.target, SR)[: g.config.taps]
    assert np.linalg.norm(h - ir) < 0.02 * np.linalg.norm(ir)


def test_decay_calibration_is_a_reparametrisation_that_lands_the_t30_on_the_control():
    g = plain(ReverbConfig(conditioned=True, tail_seconds=2.5))
    with torch.no_grad():  # a control that misses: T30 = 1.15 c^0.9
        g.decay_slope.fill_(-0.1)
        g.log_decay.fill_(0.14)
        g.gain_slope.fill_(0.3)
        g.onset_slope.fill_(0.2)
    old = ReverbGenerator(g.config).eval()
    old.load_state_dict(g.state_dict())
    res = g.calibrate_decay()
    assert max(res["err_before"]) > 0.1 and max(res["err_after"]) < 0.02
    beta = np.prod([f["beta"] for f in res["fits"]])
    assert beta == pytest.approx(0.9, rel=0.02)
    # control c now acts as c' = exp((log c - alpha) / beta) did before: the same h
    a, b = res["fits"][0]["alpha"], res["fits"][0]["beta"]
    one = ReverbGenerator(g.config).eval()
    one.load_state_dict(old.state_dict())
    one.calibrate_decay(rounds=1)
    with torch.no_grad():
        c = 0.8
        ref = old.impulse_response(old.control(math.exp((math.log(c) - a) / b)))
        assert torch.allclose(one.impulse_response(one.control(c)), ref, atol=1e-6, rtol=1e-4)
    with pytest.raises(ValueError, match="conditioned"):
        registry.build("reverb-rir", "tiny").calibrate_decay()


def test_render_writes_dry_plus_wet_with_the_tail(tmp_path):
    import soundfile as sf

    from rtgan.engine.render import render_file
    g = registry.build("reverb-rir", "tiny").eval()
    with torch.no_grad():
        g.log_gain.add_(2.0)
    x = (0.1 * np.random.default_rng(1).standard_normal(1000)).astype(np.float32)
    sf.write(tmp_path / "in.wav", x, SR, subtype="FLOAT")
    render_file(g, tmp_path / "in.wav", tmp_path / "out.wav", block_size=64, wet=0.25, progress=False)
    y, sr = sf.read(tmp_path / "out.wav", dtype="float32")
    n = x.size + g.reach().left + 1
    assert sr == SR and y.size == n
    xp = np.pad(x, (0, n - x.size))
    with torch.no_grad():
        ref = xp + 0.25 * g(torch.from_numpy(np.pad(xp, (0, (-n) % 32)))[None, None])[0, 0, :n].numpy()
    assert np.allclose(y, ref, atol=1e-5)
    with pytest.raises(ValueError, match="wet"):
        render_file(g, tmp_path / "in.wav", tmp_path / "out2.wav", wet=2.0, progress=False)


def test_fitted_freeverb_recovers_a_freeverbs_room_size_and_gain():
    from rtgan.evaluate_reverb import _freeverb_ir, fit_freeverb
    ir = 0.5 * _freeverb_ir(0.4, SR, 3.0)
    fit = fit_freeverb(ir, SR)
    assert fit["room_size"] == pytest.approx(0.4, abs=0.01) and fit["gain"] == pytest.approx(0.5, rel=0.02)
    assert fit["t30"] == pytest.approx(fit["target_t30"], rel=0.01)
    short = exponential_noise(0.2, 1.0)  # shorter than Freeverb goes: its shortest
    assert fit_freeverb(short, SR)["room_size"] == 0.0


def test_eval_scores_a_reverb_and_the_baseline_on_a_corpus(corpus):
    from rtgan.evaluate_reverb import BASELINE, evaluate_reverb, format_table
    g = registry.build("reverb-room", "tiny").eval()
    # the target comes from the checkpoint's metadata: the tiny preset's (3 small rooms)
    g.metadata = {"train_config": {"target": dataclasses.asdict(registry.recipe("reverb-room").presets()["tiny"].target)}}
    res = evaluate_reverb(g, corpus, split="train", seconds=0.5, progress=False)
    assert set(res.table["all"]) == {"reverb-room", BASELINE} and res.table["all"][BASELINE]["mrstft"]["n"] == 2
    assert len(res.rooms) == 3 and len(res.tracking) == 10
    assert "RT60 tracking" in format_table(res) and res.summary()["tracking_err_max"] >= 0
    with pytest.raises(ValueError, match="not a reverb"):
        evaluate_reverb(registry.build("sr-hifigan", "tiny"), corpus)
