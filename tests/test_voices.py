"""Note models played live (rtgan.engine.voices): the note cache, voices, release, velocity, morph;
and ``rtgan live --model reverbsynth --midi`` on the JACK test server, recorded with jack_rec."""
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rtgan.engine.voices import NoteCache, VoiceProcessor, slerp
from rtgan.models import registry

from helpers import no_more_xruns_than_the_machine


def _model():
    torch.manual_seed(0)
    return registry.build("reverbsynth", "tiny").eval()


def test_slerp_keeps_the_ends_and_the_norm_of_orthogonal_unit_vectors():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    torch.testing.assert_close(mid, torch.tensor([2 ** -0.5, 2 ** -0.5, 0.0]))  # on the circle, not the chord


def test_cache_holds_every_pitch_and_label_as_render_note_makes_it():
    m = _model()
    cache = NoteCache(m, seeds=(3, 4))
    lo, hi = m.pitch_range
    assert set(cache.notes) == {(p, lab) for p in range(lo, hi + 1) for lab in (0, 1)}
    z = torch.randn(m.config.z_dim, generator=torch.Generator().manual_seed(3))  # morph 0 = seed A
    want = m.render_note(40, 1.0, "reverb", z=z).numpy()
    np.testing.assert_allclose(cache.notes[(40, 1)], want, atol=1e-6)


def test_morph_rerenders_in_the_background_and_swaps_the_notes():
    m = _model()
    cache = NoteCache(m, seeds=(3, 4), morph_steps=4)
    before = cache.notes
    cache.request(0.3)  # quantised to 0.25
    cache.wait()
    assert cache.morph == 0.25 and cache.notes is not before and cache.renders == 2
    assert not np.allclose(cache.notes[(40, 0)], before[(40, 0)])
    cache.request(0.26)  # the same grid step: nothing to do
    cache.wait()
    assert cache.renders == 2


def test_requests_start_no_thread_and_a_failed_render_keeps_the_notes(monkeypatch):
    """The audio callback requests re-renders; Thread.start() waits for the new thread to run,
    so the worker is started with the cache, never by a request."""
    cache = NoteCache(_model(), seeds=(3, 4), morph_steps=4)
    started = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self.name), real_start(self)))
    for v in (0.5, 1.0, 0.0):
        cache.request(v)
        cache.wait()
    assert started == [] and cache.renders == 4 and cache.morph == 0.0
    before = cache.notes
    monkeypatch.setattr(cache, "render", lambda q: 1 / 0)
    cache.request(0.75)
    cache.wait(10)
    assert isinstance(cache.error, ZeroDivisionError) and cache.notes is before and cache.morph == 0.0


def _run(vp, blocks):
    z = np.zeros((vp.block_size, vp.channels), np.float32)
    out = np.zeros_like(z)
    ys = []
    for _ in range(blocks):
        vp.process(z, out)
        ys.append(out[:, 0].copy())
    return np.concatenate(ys)


def test_a_note_on_starts_at_the_next_block_with_velocity_as_gain_and_note_off_fades():
    m = _model()
    vp = VoiceProcessor(m, block_size=64, release_ms=1.0)  # 16 samples of release at 16 kHz
    note = vp.cache.notes[(40, 0)]
    _run(vp, 2)
    vp.note_event(True, 40, 64)
    y = _run(vp, 4)
    np.testing.assert_allclose(y, note[:256] * 64 / 127, atol=1e-7)  # from the first sample of the block
    vp.note_event(False, 40, 0)
    y = _run(vp, 2)
    ramp = np.clip(16 - np.arange(16), 0, None) / 16
    np.testing.assert_allclose(y[:16], note[256:272] * 64 / 127 * ramp, atol=1e-7)
    assert np.all(y[16:] == 0) and vp.voices == []
    assert vp.counts["notes_on"] == 1 and vp.counts["notes_off"] == 1


def test_polyphony_mixes_voices_steals_the_oldest_and_ignores_pitches_out_of_range():
    m = _model()
    vp = VoiceProcessor(m, block_size=64, polyphony=2)
    for p in (30, 40):
        vp.note_event(True, p, 127)
    y = _run(vp, 1)
    np.testing.assert_allclose(y, vp.cache.notes[(30, 0)][:64] + vp.cache.notes[(40, 0)][:64], atol=1e-7)
    vp.note_event(True, 50, 127)
    vp.note_event(True, 127, 127)  # above the model's range
    _run(vp, 1)
    assert [v[4] for v in vp.voices] == [40, 50]
    assert vp.counts["stolen"] == 1 and vp.counts["out_of_range"] == 1


def test_the_reverb_parameter_picks_the_label_of_the_next_notes_and_gain_is_in_db():
    m = _model()
    vp = VoiceProcessor(m, block_size=64)
    vp.params.jump("reverb", 1.0)
    vp.params.jump("gain", -6.0)
    vp.note_event(True, 40, 127)
    y = _run(vp, 1)
    np.testing.assert_allclose(y, vp.cache.notes[(40, 1)][:64] * 10 ** (-6 / 20), rtol=1e-5, atol=1e-8)


def test_voice_processor_refuses_streamable_models():
    with pytest.raises(ValueError, match="not a note model"):
        VoiceProcessor(registry.build("sr-hifigan", "tiny"))


def test_live_note_model_needs_a_midi_port(tmp_path, capsys):
    from rtgan.checkpoint import save_generator
    from rtgan.cli.main import main
    pytest.importorskip("sounddevice")
    ckpt = save_generator(tmp_path / "rs.safetensors", _model(), {})
    rc = main(["live", "--model", "reverbsynth", "--checkpoint", str(ckpt), "--duration", "1"])
    err = capsys.readouterr().err
    if "PortAudio" in err and "--midi" not in err:
        pytest.skip("PortAudio is not usable here")
    assert rc == 2 and "give --midi PORT" in err


# ------------------------------------------------------------------ on a JACK server
@pytest.mark.audio_server
def test_live_reverbsynth_plays_midi_notes_on_jack_with_the_stated_latency_and_no_xruns(jack_server, tmp_path,
                                                                                        capsys):
    """``rtgan live --model reverbsynth --midi PORT`` on the JACK dummy server (48 kHz): notes sent
    through a JACK MIDI port are found in the recorded output (jack_rec on our output port) as the
    cache's notes; each note-on's first sample lies at most one block (+ 1 ms) after the event;
    a CC 1 sweep moves the morph; garbage bytes change nothing; 0 xruns, or no more than a
    passthrough client counts right after with the same port listing and recorder joining
    (retried: test_live_cli_runs_on_jack_without_xruns explains)."""
    rtmidi = pytest.importorskip("rtmidi")
    if shutil.which("jack_rec") is None:
        pytest.skip("jack_rec not installed (Debian: jackd2)")
    from rtgan.checkpoint import save_generator
    from rtgan.cli.main import main
    model = _model()
    ckpt = save_generator(tmp_path / "rs.safetensors", model, {})
    src = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="rtgan-test")
    src.open_virtual_port("keys")
    wav = tmp_path / "rec.wav"
    pitches = (33, 45, 57)

    def play(stop, wav=wav):
        # the notes are rendered and the stream is up once our output port is there (how long
        # that takes depends on the machine's load: wait for it, up to 15 s); PortAudio numbers a
        # process's streams' ports on: out_0, then out_1 for the next stream
        deadline = time.monotonic() + 15
        while not (ports := re.findall(r"^PortAudio:out_\d+$", subprocess.run(
                ["jack_lsp"], capture_output=True, text=True).stdout, flags=re.M)):
            if time.monotonic() > deadline:
                stop.set()
                return
            time.sleep(0.2)
        rec = subprocess.Popen(["jack_rec", "-f", str(wav), "-d", "2", "-b", "32", ports[-1]],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        for p in pitches:
            src.send_message([0x90, p, 127])
            src.send_message([0x90, p])  # malformed: short
            time.sleep(0.15)
            src.send_message([0x80, p, 0])
            time.sleep(0.15)
        src.send_message([0xB0, 1, 127])  # morph to seed B
        rec.wait(timeout=10)
        stop.set()

    def control(stop):  # the same graph changes (port listing, a recorder joining) beside a passthrough
        play(stop, tmp_path / "control.wav")

    summary = tmp_path / "live.json"
    runs, controls = [], []
    try:
        for _ in range(8):
            stop = threading.Event()
            t = threading.Thread(target=play, args=(stop,))
            t.start()
            rc = main(["live", "--model", "reverbsynth", "--checkpoint", str(ckpt), "--midi", "keys",
                       "--duration", "6", "--block-size", "256", "--json", str(summary), "-q"])
            t.join()
            assert rc == 0 and stop.is_set()
            s = json.loads(summary.read_text())
            runs.append(s["xruns"])
            if s["notes"]["notes_on"] == 3 and no_more_xruns_than_the_machine(s["xruns"], 6, controls, control):
                break
        else:
            raise AssertionError(f"xruns (rtgan, passthrough): {list(zip(runs, controls))}")
    finally:
        src.close_port()
    assert s["sample_rate"] == 48000
    n = s["notes"]
    assert n["notes_on"] == 3 and n["notes_off"] == 3 and s["midi"]["malformed"] >= 3
    # note-on to first sample: the wait for the next callback, at most one block (5.33 ms) + 1 ms
    assert n["latency"]["n"] == 3 and n["latency"]["max_ms"] <= 1000 * 256 / 48000 + 1.0
    assert n["morph"] == 1.0
    # the recording holds each note: the cache's note (48 kHz, morph 0), velocity 127, found by
    # normalised cross-correlation (a raw one peaks on the loudest note, whatever the template)
    y, sr = sf.read(wav, dtype="float32")
    assert sr == 48000
    cache = NoteCache(model, sample_rate=48000)
    for p in pitches:
        note = cache.notes[(p, 0)][:2048].astype(np.float64)
        c = np.correlate(y, note, mode="valid")
        seg_norm = np.sqrt(np.convolve(y.astype(np.float64) ** 2, np.ones(len(note)), mode="valid").clip(0))
        heard = seg_norm > 1e-3 * seg_norm.max()  # not the silence between notes
        ncc = np.where(heard, c / (seg_norm * np.linalg.norm(note) + 1e-30), 0.0)
        assert ncc.max() > 0.99, p
    out = capsys.readouterr().out
    assert "note-on to first sample" in out
