"""The envelope head of sr-hifigan: its features, its gain, its fit and its calibration command."""
import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal

from helpers import random_model
from rtgan.audio.bandlimit import band_limit
from rtgan.calibrate import envelope_targets, fit_envelope
from rtgan.engine.overlap_save import offline
from rtgan.models import registry
from rtgan.models.layers.envelope import EnvelopeGain


def _causal_mean(s, w):
    c = np.cumsum(np.concatenate([np.zeros(w), s]))
    return (c[w:] - c[:-w]) / w


def test_features_are_log_ratios_of_causal_mean_squares():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(9600) * np.repeat(10 ** rng.uniform(-2, 0, 16), 600)
    x[2000:2600] = 0.0  # a pause: not counted in the level reference
    r = 0.1 * rng.standard_normal(9600)
    head = EnvelopeGain(48000, 8000.0, hidden=4, frame=32)
    head.ref_frames = 100  # a 3200-sample reference, so that the test sees it full
    got = head.features(torch.tensor(x, dtype=torch.float32)[None, None],
                        torch.tensor(r, dtype=torch.float32)[None, None])[0].double().numpy()
    # independent reference: window-method FIRs at 0/1/2/4/6/8 kHz, means over the last 480 and 2400 samples
    edges = [0, 1000, 2000, 4000, 6000, 8000]
    bands = [signal.lfilter(signal.firwin(255, hi, fs=48000) if lo == 0 else
                            signal.firwin(255, [lo, hi], pass_zero=False, fs=48000), 1.0, x) for lo, hi in zip(edges, edges[1:])]
    e = {w: [np.log(_causal_mean(s ** 2, w) + 1e-12) for s in bands + [x, r]] for w in (480, 2400)}
    want = []
    for b in range(5):
        want += [e[480][b] - e[480][5], e[2400][b] - e[2400][5]]
    want += [e[480][6] - e[480][5], e[2400][6] - e[2400][5], e[480][5] - e[2400][5]]
    # the reference: mean square over the active samples of the 100 frames of 32 before the current frame
    sq = x ** 2
    p = np.zeros(9600)
    for t in range(9600):
        lo, hi = max(0, (t // 32 - 100) * 32), (t // 32) * 32
        p[t] = sq[lo:hi].sum() / max(1, int((sq[lo:hi] > 1e-12).sum()))
    want.append(e[2400][5] - np.log(p + 1e-12))
    want = np.stack(want)
    assert got.shape == (14, 9600)
    assert np.abs(got[:, 3000:] - want[:, 3000:]).max() < 2e-3  # float32 against float64


def test_gain_is_level_independent_and_follows_the_fitted_mlp():
    torch.manual_seed(1)
    head = EnvelopeGain(48000, 8000.0, hidden=8, frame=32, max_gain=8.0)
    layers = [(torch.randn(8, 14) * 0.3, torch.randn(8) * 0.3), (torch.randn(8, 8) * 0.3, torch.randn(8) * 0.3),
              (torch.randn(1, 8) * 0.3, torch.randn(1) * 0.3)]
    mean, std = torch.randn(14), torch.rand(14) + 0.5
    head.set_mlp(layers, mean, std)
    x, r = torch.randn(1, 1, 6016), 0.05 * torch.randn(1, 1, 6016)
    with torch.no_grad():
        g = head(x, r)
        f = head.features(x, r)[0].T
        h = torch.nn.functional.gelu((f - mean) / std @ layers[0][0].T + layers[0][1])
        h = torch.nn.functional.gelu(h @ layers[1][0].T + layers[1][1])
        want = torch.exp(0.5 * (h @ layers[2][0].T + layers[2][1]))[:, 0].clamp(max=8.0)
        assert torch.allclose(g[0, 0], want, rtol=1e-4)
        # scaling input and band together changes nothing (ratios only)
        assert torch.allclose(head(30 * x, 30 * r)[..., 3000:], g[..., 3000:], rtol=1e-4)
    assert float(g.std()) > 0


def test_unfitted_head_leaves_the_model_unchanged():
    plain = random_model("sr-hifigan", "tiny")
    m = registry.entry("sr-hifigan").generator(dataclasses.replace(plain.config, envelope_hidden=4)).eval()
    assert m.load_state_dict(plain.state_dict(), strict=False).unexpected_keys == []
    x = 0.3 * torch.randn(1, 1, 4096)
    with torch.no_grad():
        assert torch.equal(m(x), plain(x))


def test_oracle_target_is_the_log_energy_ratio_above_the_band():
    rng = np.random.default_rng(2)
    hi = signal.sosfilt(signal.butter(8, 10000, "highpass", fs=48000, output="sos"), rng.standard_normal(48000))
    lo = signal.sosfilt(signal.butter(8, 4000, fs=48000, output="sos"), rng.standard_normal(48000))
    y = lo + hi
    t = envelope_targets(y, 0.5 * hi, 48000, 8000.0, 480)
    # the band of y is hi, the band of r is hi / 2: energy ratio 4 away from the ends
    assert np.median(t[2000:-2000]) == pytest.approx(np.log(4.0), abs=0.05)
    assert envelope_targets(y, 0 * hi, 48000, 8000.0, 480).max() == 6.0  # no band: clipped
    with pytest.raises(ValueError):
        envelope_targets(y, hi[:100], 48000, 8000.0, 480)


def _speech_train_corpus(corpus):
    """The fixture corpus with its speech clip in train too (two domains to fit on)."""
    rows = [json.loads(s) for s in (corpus / "manifest.jsonl").read_text().splitlines()]
    rows += [dict(r, split="train") for r in rows if r["domain"] == "speech"]
    (corpus / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return corpus


def test_fit_envelope_learns_and_keeps_the_network(corpus):
    model = random_model("sr-hifigan", "tiny")
    with torch.no_grad():
        model.out.conv.weight.mul_(0.05)
    new, rep = fit_envelope(model, _speech_train_corpus(corpus), hidden=8, clips_per_domain=2, seconds=4.0,
                            steps=300, holdout_every=2, progress=False)
    assert rep["clips"] == {"music": 2, "speech": 1} and new.config.envelope_hidden == 8
    assert rep["final_loss"] < rep["first_loss"]  # least squares on the log gain: the loss falls
    for k, v in model.state_dict().items():
        assert torch.equal(new.state_dict()[k], v)
    with pytest.raises(ValueError):
        fit_envelope(model, corpus, hidden=0, progress=False)


def test_calibrate_envelope_writes_a_checkpoint_that_loads_strictly(corpus, tmp_path):
    from rtgan.checkpoint import save_generator
    from rtgan.cli.main import main

    model = random_model("sr-hifigan", "tiny")
    with torch.no_grad():
        model.out.conv.weight.mul_(0.05)
    src = save_generator(tmp_path / "trained.safetensors", model, {"command": "rtgan train sr-hifigan --preset tiny"})
    out = tmp_path / "calibrated.safetensors"
    assert main(["calibrate", "--checkpoint", str(src), "--data", str(corpus), "--out", str(out), "--limiter",
                 "kaiser", "--margin-db", "100", "--envelope", "--envelope-hidden", "4", "--envelope-clips", "2",
                 "--envelope-seconds", "3", "-q"]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["calibration"]["envelope"]["hidden"] == 4
    loaded = registry.load_model("sr-hifigan", path=str(out))
    assert loaded.config.envelope_hidden == 4 and loaded.envelope is not None
    # the gain was chosen with the head in place: the table's SNR at that gain is the loaded model's
    y, _ = sf.read(corpus / "val" / "speech_klettres_en_car-dog.flac", dtype="float32")
    x48, _ = band_limit("kaiser", y)
    with torch.no_grad():
        got = offline(loaded, torch.from_numpy(x48)[None, None])[0, 0].numpy()
    from rtgan.metrics import snr
    row = meta["calibration"]["table"]["kaiser"]["speech"]
    assert row["snr_db_by_gain"][f"{loaded.config.residual_gain:g}"] == pytest.approx(float(snr(got, y)), abs=0.01)


def test_balanced_pick_shares_clips_equally_over_groups():
    from rtgan.calibrate import balanced_pick

    rows = [{"split_key": k, "i": i} for i, k in enumerate("a" * 10 + "b" * 3 + "c")]
    got = balanced_pick(rows, 8)
    # quota 4: a gets 4 of its 10 (evenly spaced), b all 3, c its 1; manifest order kept
    assert [r["i"] for r in got] == [0, 3, 6, 9, 10, 11, 12, 13]
    # quota 2 and one left over, which goes to a: a 3 of 10 (0, 4.5 -> 4, 9), b 2 of 3 (first, last), c 1
    assert [r["i"] for r in balanced_pick(rows, 6)] == [0, 4, 9, 10, 12, 13]
    assert len(balanced_pick(rows, 100)) == 14
    with pytest.raises(ValueError):
        balanced_pick(rows, 0)
    assert len(balanced_pick([{"path": "x.flac"}, {"path": "y.flac"}], 1)) == 1  # no key: each row its own group
    # one folder name in two sources: two voices, one row each
    two = [{"source": "k", "split_key": "ru", "i": 0}, {"source": "k", "split_key": "ru", "i": 1},
           {"source": "t", "split_key": "ru", "i": 2}]
    assert [r["i"] for r in balanced_pick(two, 2)] == [0, 2]


def test_init_from_a_calibrated_release_drops_its_envelope_head(tmp_path):
    """``rtgan train --init-from`` a release with a fitted head: the head (fitted after training,
    refitted by calibrate) is dropped and recorded, every network tensor is taken as it is."""
    from rtgan.checkpoint import save_generator
    from rtgan.training.loop import init_generator, init_state

    plain = random_model("sr-hifigan", "tiny")
    released = registry.entry("sr-hifigan").generator(dataclasses.replace(plain.config, envelope_hidden=4)).eval()
    released.load_state_dict(plain.state_dict(), strict=False)
    save_generator(tmp_path / "release.safetensors", released, {})
    cfg = registry.recipe("sr-hifigan").presets()["tiny"]
    state = init_state(cfg, torch.device("cpu"))
    assert not any(k.startswith("envelope.") for k in state.generator.state_dict())
    rec = init_generator(state, tmp_path / "release.safetensors")
    head = sorted(k for k in released.state_dict() if k.startswith("envelope.mlp"))
    assert head and rec["dropped"] == head
    got, want = state.generator.state_dict(), plain.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in got)
