"""Live parameters (declarations, per-sample smoothing, the engine's mix) and MIDI CC control."""
import importlib.util
import json
import math
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rtgan.engine.midi import (MidiControl, MidiError, RateLimitedLog, default_map, describe_map, load_map,
                               pick_port)
from rtgan.engine.params import ParameterBank
from rtgan.models.params import ENGINE_PARAMETERS, Parameter

from helpers import Pointwise, no_more_xruns_than_the_machine

DECAY = Parameter("decay", 0.3, 3.0, 1.0, "s", "RT60", scale="log")


def bank(extra=(DECAY,), block=64, sr=48000, smooth_ms=20.0):
    return ParameterBank(ENGINE_PARAMETERS + tuple(extra), sr, block, smooth_ms)


# ------------------------------------------------------------------ declarations
def test_parameter_scales_map_controller_travel():
    lin = Parameter("gain", -60.0, 12.0, 0.0, "dB")
    assert lin.from_unit(0.0) == -60.0 and lin.from_unit(1.0) == 12.0
    assert lin.from_unit(0.25) == pytest.approx(-60.0 + 0.25 * 72.0)
    # log: equal ratios per equal travel, min * (max / min) ** u
    assert DECAY.from_unit(0.5) == pytest.approx(math.sqrt(0.3 * 3.0))
    assert DECAY.from_unit(1.0) == pytest.approx(3.0) and DECAY.from_unit(0.0) == pytest.approx(0.3)
    for u in (0.0, 0.1, 0.77, 1.0):
        assert DECAY.to_unit(DECAY.from_unit(u)) == pytest.approx(u)
        assert lin.to_unit(lin.from_unit(u)) == pytest.approx(u)
    assert lin.from_unit(7.0) == 12.0 and lin.from_unit(-1.0) == -60.0  # travel is clipped


@pytest.mark.parametrize("kw", [dict(name="Wet"), dict(name="9x"), dict(name=""), dict(minimum=1.0, maximum=1.0),
                                dict(default=2.0), dict(scale="exp"), dict(minimum=0.0, scale="log"),
                                dict(maximum=math.inf)])
def test_bad_declarations_are_refused(kw):
    base = dict(name="x", minimum=0.1, maximum=1.0, default=0.5)
    with pytest.raises(ValueError):
        Parameter(**{**base, **kw})


def test_values_are_checked_against_the_declared_range():
    assert DECAY.check("2.5") == 2.5
    for bad in (3.5, 0.1, math.nan, "loud", None):
        with pytest.raises(ValueError, match="decay"):
            DECAY.check(bad)


# ------------------------------------------------------------------ smoothing
def test_advance_is_the_one_pole_recursion_per_sample():
    b = bank(block=50)
    b.set("wet", 0.0)
    a = math.exp(-1.0 / (0.020 * 48000))
    c, want = 1.0, []
    for _ in range(3 * 50):  # c[k] = t + (c[k-1] - t) * a, sample by sample
        c = 0.0 + (c - 0.0) * a
        want.append(c)
    got = np.concatenate([b.advance()[b.index["wet"]].copy() for _ in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_a_parameter_jump_glides_without_steps():
    b = bank(block=256)
    b.set("gain", -60.0)  # the largest jump there is
    rows = np.concatenate([b.advance()[b.index["gain"]].copy() for _ in range(40)])
    steps = np.abs(np.diff(np.concatenate([[0.0], rows])))
    # the largest step is the first, (1 - a) of the jump: 0.1 % of it at 20 ms, 48 kHz
    assert steps.max() <= 60.0 * (1 - math.exp(-1.0 / 960.0)) * 1.001
    assert abs(rows[int(4.6 * 960)] + 60.0) < 0.011 * 60.0  # 99 % there after 4.6 time constants
    assert b.current("gain") == pytest.approx(-60.0 * (1 - math.exp(-40 * 256 / 960.0)), rel=1e-4)


def test_bank_refuses_unknown_names_bad_values_and_duplicates():
    b = bank()
    with pytest.raises(KeyError, match="wet, gain, decay"):
        b.set("room", 1.0)
    with pytest.raises(ValueError, match=r"wet must be in \[0, 1\]"):
        b.set("wet", 1.5)
    with pytest.raises(ValueError, match="unique"):
        ParameterBank(ENGINE_PARAMETERS + ENGINE_PARAMETERS[:1], 48000, 64)
    b.jump("decay", 2.0)  # a jump has no glide
    assert b.advance()[b.index["decay"]].min() == pytest.approx(2.0)


# ------------------------------------------------------------------ the engine's mix
class Double(Pointwise):
    """``y = 2 x``, as a processed signal or as a wet signal."""

    def __init__(self, role):
        super().__init__()
        self.output_role = role
        self.k = torch.nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        return self.k * x


def _run(proc, x, before=None):
    y = np.zeros_like(x)
    n = proc.block_size
    for k in range(len(x) // n):
        if before:
            before(k)
        proc.process(x[k * n:(k + 1) * n], y[k * n:(k + 1) * n])
    return y


@pytest.mark.skipif(importlib.util.find_spec("pedalboard") is None, reason="needs pedalboard")
@pytest.mark.parametrize("role", ["processed", "wet"])
def test_wet_mixes_by_the_models_output_role_and_gain_is_in_db(role):
    from rtgan.engine.live import LiveProcessor
    proc = LiveProcessor(Double(role), 64, wet=0.25, runtime="eager", limiter=False, deadline_ms=1e3)
    proc.params.jump("gain", -6.0)
    x = (0.05 * np.random.default_rng(0).standard_normal((64 * 20, 1))).astype(np.float32)
    y = _run(proc, x)
    g = 10 ** (-6.0 / 20)
    # processed: a crossfade dry + wet (y - dry); wet signal: added, dry + wet y
    want = x + 0.25 * (2 * x - x) if role == "processed" else x + 0.25 * 2 * x
    np.testing.assert_allclose(y, g * want, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("pedalboard") is None, reason="needs pedalboard")
def test_moving_wet_mid_stream_leaves_no_step():
    from rtgan.engine.live import LiveProcessor
    proc = LiveProcessor(Double("wet"), 64, wet=1.0, runtime="eager", limiter=False, deadline_ms=1e3)
    x = np.full((64 * 200, 1), 0.1, np.float32)  # a constant: any step in the output is the mix's

    def at(k):
        if k == 30:
            proc.params.set("wet", 0.0)
    y = _run(proc, x, at)[:, 0]
    assert y[30 * 64 - 1] == pytest.approx(0.3, rel=1e-5) and y[-1] == pytest.approx(0.1, abs=1e-4)
    assert np.abs(np.diff(y)).max() < 0.2 * (1 - math.exp(-1.0 / 960.0)) * 1.01


# ------------------------------------------------------------------ MIDI messages
class Lines(list):
    def __call__(self, line):
        self.append(line)


def control(**kw):
    b = bank()
    lines = Lines()
    return MidiControl(b, log_line=lines, **kw), b, lines


def test_default_map_puts_model_parameters_first_and_engine_ones_on_gm_ccs():
    b = bank()
    assert default_map(b) == {1: "decay", 91: "wet", 7: "gain"}
    assert "CC   1 -> decay: RT60, 0.3..3 s (log), default 1" in describe_map(default_map(b), b)


def test_control_changes_set_parameters_through_their_scales():
    ctl, b, _ = control()
    assert ctl.handle([0xB0, 91, 0]) == "wet = 0"
    assert b.target("wet") == 0.0
    ctl.handle([0xB3, 7, 64])  # any channel
    assert b.target("gain") == pytest.approx(-60.0 + 64 / 127 * 72.0, abs=1e-4)
    ctl.handle((0xB0, 1, 127))
    assert b.target("decay") == pytest.approx(3.0, rel=1e-6)
    assert ctl.counts["applied"] == 3


@pytest.mark.parametrize("garbage", [[0xB0, 7], [0xB0, 200, 3], [0xB0, 7, 128], [0x12, 0x34, 0x56], [], [256, 1, 2],
                                     "wet", None, [0xB0, 7, 1, 5], [0xB0, -1, 3], 12, [0xB0, 7.5, 1]])
def test_malformed_messages_change_nothing_and_never_raise(garbage):
    ctl, b, lines = control()
    before = {p.name: b.target(p.name) for p in b.params}
    assert ctl.handle(garbage) is None
    assert {p.name: b.target(p.name) for p in b.params} == before
    assert ctl.counts["malformed"] == 1 and len(lines) == 1


def test_other_messages_are_ignored_and_unmapped_ccs_logged_at_a_limited_rate():
    ctl, b, lines = control()
    for msg in ([0x90, 60, 100], [0x80, 60, 0], [0xE0, 0, 64], [0xF8]):
        assert ctl.handle(msg) is None
    assert ctl.counts["ignored"] == 4 and not lines
    for v in range(100):  # a knob that is not mapped, turned through its travel
        ctl.handle([0xB0, 74, v])
    assert ctl.counts["unmapped"] == 100 and len(lines) == 1 and "CC 74" in lines[0]
    ctl.handle([0xB0, 123, 0])  # all notes off: a channel-mode message, not a control
    assert ctl.counts["unmapped"] == 101


def test_rate_limited_log_says_how_many_it_held_back():
    t = [0.0]
    lines = Lines()
    rl = RateLimitedLog(2.0, lines, clock=lambda: t[0])
    assert rl("a", "one") and not rl("a", "two") and not rl("a", "three") and rl("b", "other kind")
    t[0] = 2.5
    assert rl("a", "four")
    assert lines == ["one", "other kind", "four (2 more like it not shown)"]


def test_learn_binds_the_next_cc_moved_and_a_channel_filter_holds():
    ctl, b, lines = control(learn="gain", channel=2)
    ctl.handle([0xB0, 74, 127])  # channel 1: not listened to
    assert ctl.learn == "gain" and b.target("gain") == 0.0
    assert ctl.handle([0xB1, 74, 127]) == "gain = 12"
    assert ctl.map[74] == "gain" and ctl.learn is None and lines == ["MIDI learn: CC 74 -> gain"]
    ctl.handle([0xB1, 74, 0])
    assert b.target("gain") == -60.0
    with pytest.raises(ValueError):
        MidiControl(b, channel=17)
    with pytest.raises(KeyError):
        MidiControl(b, learn="room")


def test_map_files_are_checked(tmp_path):
    b = bank()
    good = tmp_path / "map.json"
    good.write_text(json.dumps({"74": "decay", "91": "wet"}))
    assert load_map(good, b) == {74: "decay", 91: "wet"}
    for text, match in [("{", "not a JSON"), ("[1, 2]", "JSON object"), ('{"130": "wet"}', "controller number"),
                        ('{"x": "wet"}', "controller number"), ('{"7": "room"}', "not a parameter")]:
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(MidiError, match=match):
            load_map(bad, b)
    with pytest.raises(MidiError, match="cannot read"):
        load_map(tmp_path / "missing.json", b)


def test_ports_are_picked_by_index_name_or_unique_part():
    ports = ["ctl:knobs", "ctl:keys", "synth:in"]
    assert pick_port(ports, 2) == 2 and pick_port(ports, "ctl:keys") == 1 and pick_port(ports, "KNOB") == 0
    with pytest.raises(MidiError, match="ambiguous"):
        pick_port(ports, "ctl")
    with pytest.raises(MidiError, match="not found.*0: ctl:knobs"):
        pick_port(ports, "piano")


def test_cli_refuses_midi_options_without_a_port(capsys):
    from rtgan.cli.main import main
    assert main(["live", "--model", "sr-hifigan", "--midi-learn", "wet", "--duration", "1"]) == 2
    assert "need --midi PORT" in capsys.readouterr().err
    assert main(["live", "--model", "sr-hifigan", "--param", "wet", "--duration", "1"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


# ------------------------------------------------------------------ on a JACK server
def _virtual_source(name):
    import rtmidi
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="rtgan-test")
    out.open_virtual_port(name)
    return out


@pytest.mark.audio_server
def test_a_port_that_disappears_is_reported_and_comes_back(jack_server):
    pytest.importorskip("rtmidi")
    src = _virtual_source("knobs-a")
    ctl, b, lines = control()
    try:
        assert ctl.open("knobs-a", "jack") == "rtgan-test:knobs-a"
        src.send_message([0xB0, 91, 0])
        deadline = time.monotonic() + 5
        while b.target("wet") != 0.0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b.target("wet") == 0.0
        src.close_port()
        del src
        time.sleep(0.3)
        assert ctl.poll() is False and "disappeared" in lines[-1]
        assert ctl.poll() is False and sum("disappeared" in x for x in lines) == 1  # said once
        src = _virtual_source("knobs-a")
        time.sleep(0.3)
        assert ctl.poll() is True and "is back" in lines[-1]
        src.send_message([0xB0, 91, 127])
        deadline = time.monotonic() + 5
        while b.target("wet") != 1.0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b.target("wet") == 1.0
    finally:
        ctl.close()
        src.close_port()


@pytest.mark.audio_server
def test_live_cli_follows_a_cc_sweep_and_survives_garbage_with_no_xruns(jack_server, tmp_path, capsys):
    """``rtgan live --midi`` on the JACK dummy server while a controller sweeps CC 91 (wet)
    down and sends garbage bytes: the stream runs on, applies the sweep, ignores the garbage.
    Xruns: retried until a run has none, or no more than a passthrough client (_live_with_controller)."""
    pytest.importorskip("rtmidi")
    from rtgan.checkpoint import save_generator
    from helpers import random_model
    ckpt = save_generator(tmp_path / "tiny.safetensors", random_model("sr-hifigan", "tiny"), {})
    src = _virtual_source("sweep")

    def play(stop):
        time.sleep(1.5)  # the stream and its MIDI port are up
        for v in range(127, -1, -4):
            src.send_message([0xB0, 91, v])
            src.send_message([0xB0, 91])  # malformed: short
            src.send_message([0x12, 0x34, 0x56])  # malformed: no status byte
            time.sleep(0.02)
        src.send_message([0xB0, 91, 0])
        stop.set()

    def check(s):
        assert s["midi"]["applied"] >= 16 and s["midi"]["malformed"] >= 32
        assert s["params"]["wet"] == 0.0

    try:
        _live_with_controller(["--checkpoint", str(ckpt), "--midi", "sweep"], play, check, 3)
    finally:
        src.close_port()
    out = capsys.readouterr().out
    assert "CC  91 -> wet" in out and "MIDI: ignored malformed" in out


@pytest.mark.audio_server
def test_live_reverb_room_follows_a_decay_sweep_with_no_xruns(jack_server, tmp_path, capsys):
    """``rtgan live`` with reverb-room and ``--midi``: a CC 1 sweep (the default map's first model
    control) moves the decay, which the model's step runs with by the end; garbage bytes change
    nothing; xruns judged as in the test above. The tiny preset: the live preset runs at RTF
    ~0.25 here, and on a loaded 2-core CI machine its 10-20 ms compute spikes cost xruns in every
    try; its speed is rtgan bench's to measure, this test is about the control path."""
    pytest.importorskip("rtmidi")
    from rtgan.checkpoint import save_generator
    from rtgan.models import registry
    ckpt = save_generator(tmp_path / "room.safetensors", registry.build("reverb-room", "tiny"), {})
    src = _virtual_source("decay")

    def play(stop):
        time.sleep(3.0)  # building the step takes a while on a loaded machine: the port must be up
        for v in list(range(0, 128, 8)) + list(range(127, -1, -8)):
            src.send_message([0xB0, 1, v])
            src.send_message([0xF7, 0x01])  # malformed: a stray end of SysEx with data
            time.sleep(0.03)
        src.send_message([0xB0, 1, 0])
        stop.set()

    def check(s):
        assert s["midi"]["applied"] >= 30
        assert s["params"]["decay"] == pytest.approx(0.3)
        assert s["model_state"]["decay"] == pytest.approx(0.3, rel=0.01)

    try:
        _live_with_controller(["--model", "reverb-room", "--checkpoint", str(ckpt), "--midi", "decay"], play, check, 5.5)
    finally:
        src.close_port()
    assert "CC   1 -> decay" in capsys.readouterr().out


def _live_with_controller(argv, play, check, duration):
    """Run ``rtgan live ARGV --duration D --json F -q`` while ``play(stop)`` sends MIDI in a
    thread; ``check(summary)`` after each run; retried up to 8 times until a run has 0 xruns, or
    no more than a passthrough client counts right after it while ``play`` runs again
    (test_live_cli_runs_on_jack_without_xruns explains). Returns the summaries."""
    from rtgan.cli.main import main
    runs, controls = [], []
    with tempfile.TemporaryDirectory() as d:
        summary = Path(d) / "live.json"
        for _ in range(8):
            stop = threading.Event()
            t = threading.Thread(target=play, args=(stop,))
            t.start()
            rc = main(["live", *argv, "--duration", str(duration), "--block-size", "256",
                       "--json", str(summary), "-q"])
            t.join()
            assert rc == 0 and stop.is_set()
            s = json.loads(summary.read_text())
            runs.append(s)
            assert s["blocks"] >= 0.9 * duration * 48000 / 256 and s["nan_blocks"] == 0
            check(s)
            if no_more_xruns_than_the_machine(s["xruns"], duration, controls, play):
                break
        else:
            raise AssertionError(f"xruns (rtgan, passthrough): {list(zip([r['xruns'] for r in runs], controls))}")
    return runs


def test_the_live_tick_lists_ports_rarely_and_not_while_messages_arrive(monkeypatch):
    """Listing ports on a JACK server cost the graph a cycle (an xrun per listing on the dummy
    driver), so the live loop's tick checks the port at most every POLL_INTERVAL_S, and not at
    all while the port sends."""
    from rtgan.engine import midi as m
    ctl, b, lines = control()
    calls = []
    monkeypatch.setattr(ctl, "poll", lambda: calls.append(1) or True)
    clock = [1000.0]
    monkeypatch.setattr(m.time, "monotonic", lambda: clock[0])
    ctl.connected, ctl._last_poll, ctl._last_message = True, 1000.0, 0.0
    for dt in (1, 2, 5, 9.9):
        clock[0] = 1000.0 + dt
        ctl.maybe_poll()
    assert calls == []
    clock[0] = 1010.5
    ctl.maybe_poll()
    assert calls == [1]
    ctl.handle([0xB0, 91, 10])  # a message at 1010.5: the port is there
    clock[0] = 1021.0
    ctl.maybe_poll()
    assert calls == [1, 1]  # 10.5 s since the last message and the last listing
    ctl.handle([0xB0, 91, 20])
    clock[0] = 1025.0
    ctl.maybe_poll()
    assert calls == [1, 1]
    ctl.connected = False  # a lost port is looked for at every tick
    ctl.maybe_poll()
    assert calls == [1, 1, 1]
