"""Band-limiters (rtgan.audio.bandlimit), the held-out evaluation (rtgan.evaluate) and `rtgan eval`."""
import json
import math

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

import rtgan.metrics
from rtgan.audio.bandlimit import BAND_LIMITERS, DEFAULT_LIMITER, band_limit
from rtgan.audio.degrade import spline_upsample
from rtgan.evaluate import (CI_NOTE, ESTIMATES, confidence_interval, default_cache_path, evaluate, format_table,
                            format_tonal, write_json)

from helpers import EXAMPLES, random_model

SR = 48000


def _lag(x, y) -> int:
    """Lag (samples) of the cross-correlation peak of x against y: > 0 when x is late."""
    c = signal.correlate(x, y, mode="full", method="fft")
    return int(signal.correlation_lags(len(x), len(y))[np.argmax(c)])


# --------------------------------------------------------------------------- band-limiters

def test_registry_and_default():
    assert list(BAND_LIMITERS) == ["soxr", "kaiser", "butter4"]
    assert DEFAULT_LIMITER == "soxr"
    for name, b in BAND_LIMITERS.items():
        assert b.name == name and b.description and "\n" not in b.description


@pytest.mark.parametrize("name", list(BAND_LIMITERS))
def test_band_limiters_keep_length_and_alignment_on_white_noise(name):
    y = np.random.default_rng(0).standard_normal(2 * SR + 1)
    x48, x16 = band_limit(name, y)
    assert x48.shape == y.shape and x48.dtype == np.float32
    assert x16.shape == (math.ceil(len(y) / 3),) and x16.dtype == np.float32
    assert _lag(x48, y) == 0
    assert _lag(spline_upsample(x16, 3)[: len(y)], y) == 0  # x16[i] lies at y[3 i]


@pytest.mark.parametrize("clip", ["music_wesnoth_nunc_dimittis", "drums_BJA_Pacific"])
@pytest.mark.parametrize("name", list(BAND_LIMITERS))
def test_band_limiters_keep_alignment_on_real_music(name, clip):
    y, sr = sf.read(EXAMPLES / f"{clip}.flac", dtype="float64")
    x48, x16 = band_limit(name, y, sr)
    assert _lag(x48, y) == 0
    assert _lag(spline_upsample(x16, 3)[: len(y)], y) == 0


@pytest.mark.parametrize("name", list(BAND_LIMITERS))
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 1000, 1001])
def test_band_limiter_lengths(name, n):
    x48, x16 = band_limit(name, np.random.default_rng(n).standard_normal(n))
    assert len(x48) == n and len(x16) == -(-n // 3)
    assert np.all(np.isfinite(x48)) and np.all(np.isfinite(x16))


def test_limiters_follow_their_recipes():
    soxr = pytest.importorskip("soxr")
    from rtgan.audio.bandlimit import BUTTER4_DELAY, butter4_sos
    from rtgan.audio.io import resample

    y = np.random.default_rng(1).standard_normal(3 * 8000)
    x48, x16 = band_limit("soxr", y)
    ref16 = soxr.resample(y, 48000, 16000, quality="VHQ")
    np.testing.assert_allclose(x16, ref16, atol=1e-6)
    np.testing.assert_allclose(x48, resample(ref16, 16000, 48000), atol=1e-6)

    x48, x16 = band_limit("kaiser", y)
    k16 = signal.resample_poly(y, 1, 3, window=("kaiser", 5.0))
    np.testing.assert_allclose(x16, k16, atol=1e-6)
    np.testing.assert_allclose(x48, signal.resample_poly(k16, 3, 1, window=("kaiser", 5.0))[: len(y)], atol=1e-6)

    assert BUTTER4_DELAY == 3
    x48, x16 = band_limit("butter4", y)
    sos = signal.butter(4, 7500.0, fs=SR, output="sos")
    np.testing.assert_allclose(butter4_sos(), sos)
    causal = signal.sosfilt(sos, y)
    np.testing.assert_allclose(x48[:-3], causal[3:], atol=1e-6)
    np.testing.assert_allclose(x16, signal.resample_poly(x48.astype(np.float64), 1, 3), atol=1e-5)


def _band_db(x, lo, hi):
    f, p = signal.welch(x, fs=SR, nperseg=4096)
    return 10 * np.log10(np.mean(p[(f >= lo) & (f <= hi)]) + 1e-30)


def test_limiters_remove_the_high_band():
    y = 0.1 * np.random.default_rng(2).standard_normal(2 * SR)
    ref = _band_db(y, 1000, 6000)
    for name, stop_db in (("soxr", -100.0), ("kaiser", -45.0)):
        x48, _ = band_limit(name, y)
        assert abs(_band_db(x48, 1000, 6000) - ref) < 0.1  # passband kept
        assert _band_db(x48, 9000, 23000) - ref < stop_db
    x48, _ = band_limit("butter4", y)
    assert -26.0 < _band_db(x48, 11800, 12200) - ref < -18.0  # gentle: -22 dB at 12 kHz
    assert abs(_band_db(x48, 100, 2000) - ref) < 0.2


def test_band_limit_errors():
    y = np.zeros(100)
    with pytest.raises(ValueError, match="soxr, kaiser, butter4"):
        band_limit("brickwall", y)
    with pytest.raises(ValueError, match="48000"):
        band_limit("soxr", y, 44100)
    for bad in (np.zeros((2, 100)), np.zeros(0), np.array([0.0, np.nan]), np.zeros(3, dtype=complex)):
        with pytest.raises(ValueError):
            band_limit("kaiser", bad)


# --------------------------------------------------------------------------- evaluate

CLIPS = {"music_wesnoth_nunc_dimittis.flac": "music", "drums_BJA_Pacific.flac": "music",
         "speech_klettres_en_car-dog.flac": "speech"}


@pytest.fixture()
def test_corpus(tmp_path):
    """The three shipped examples, 1.5 s of each (0.5-2 s), as a 'test' split (two music clips,
    one speech clip)."""
    root = tmp_path / "corpus"
    rows = []
    for name, domain in CLIPS.items():
        dst = root / "test" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        y, sr = sf.read(EXAMPLES / name, dtype="float32")
        sf.write(dst, y[sr // 2: 2 * sr], sr, subtype="PCM_24")
        info = sf.info(dst)
        rows.append({"path": f"test/{name}", "split": "test", "domain": domain, "source": "examples",
                     "sample_rate": info.samplerate, "bandwidth_hz": 20000.0,
                     "duration_seconds": info.duration, "num_samples": info.frames})
    rows.append({**rows[0], "path": "test/narrow.flac", "bandwidth_hz": 9000.0})  # filtered out
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _counting(monkeypatch, name):
    calls = {"n": 0}
    real = getattr(rtgan.metrics, name)

    def wrapped(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(rtgan.metrics, name, wrapped)
    return calls


def test_evaluate_tables_intervals_and_cache(test_corpus, tmp_path, monkeypatch):
    model = random_model("sr-hifigan", "tiny")
    cache = tmp_path / "cache" / "baselines.json"
    res = evaluate(model, test_corpus, visqol=False, progress=False, cache=cache)
    assert res.limiters == ("soxr", "kaiser", "butter4") and res.metrics == ("snr_db", "lsd")
    assert [c["path"] for c in res.clips] == [f"test/{n}" for n in CLIPS]
    for lim in res.limiters:
        assert list(res.table[lim]) == ["music", "speech", "all"]
        assert [res.table[lim][d]["clips"]["count"] for d in ("music", "speech", "all")] == [2, 1, 3]
        for domain, t in res.table[lim].items():
            assert t["clips"]["minutes"] == pytest.approx(t["clips"]["seconds"] / 60)
            for e in ESTIMATES:
                assert set(t[e]) == {"snr_db", "lsd"}
                sel = [c for c in res.clips if domain in ("all", c["domain"])]
                for m in ("snr_db", "lsd"):
                    v = np.array([c["limiters"][lim][e][m] for c in sel])
                    assert t[e][m]["mean"] == pytest.approx(v.mean())
                    assert t[e][m]["n"] == len(v)
                    if len(v) > 1:
                        assert t[e][m]["ci95"] == pytest.approx(1.96 * np.std(v, ddof=1) / np.sqrt(len(v)))
                    else:
                        assert t[e][m]["ci95"] is None
    # the input and spline baselines are what they claim to be
    y, _ = sf.read(test_corpus / "test" / "drums_BJA_Pacific.flac", dtype="float32")
    x48, x16 = band_limit("butter4", y)
    row = res.clips[1]["limiters"]["butter4"]
    assert row["input"]["snr_db"] == pytest.approx(rtgan.metrics.snr(x48, y))
    assert row["spline"]["lsd"] == pytest.approx(rtgan.metrics.lsd(spline_upsample(x16, 3)[: len(y)], y))

    text = format_table(res)
    for lim in res.limiters:
        assert f"band-limiter `{lim}`" in text
    header = "| domain | clips | minutes | input SNR dB | spline SNR dB | model SNR dB | input LSD | spline LSD | model LSD |"
    assert text.count(header) == 3 and "ViSQOL" not in text and CI_NOTE in text
    assert text.count("| speech | 1 |") == 3 and " ± –" in text  # one clip: no interval

    assert set(res.examples) == {"music", "speech"} and res.example is res.examples["music"]
    for domain, ex in res.examples.items():
        assert ex["limiter"] == "soxr" and CLIPS[ex["path"].split("/")[-1]] == domain
        assert len(ex["input"]) == len(ex["output"]) == len(ex["target"]) == len(ex["spline"])
    assert res.tonal["limiter"] == "soxr" and np.isfinite(res.tonal["peak_db"])
    assert "tonal artifact (band-limited white noise, soxr)" in format_tonal(res.tonal)

    out = tmp_path / "eval.json"
    write_json(res, out, {"model": "tiny"})
    data = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert data["model"] == "tiny" and set(data["table"]) == set(res.limiters) and len(data["clips"]) == 3

    # second run: the baselines come from the cache, only the model is scored
    cached = json.loads(cache.read_text())["entries"]
    assert len(cached) == 9 and all(e["sha1"] for e in cached.values())
    snr_calls, lsd_calls = _counting(monkeypatch, "snr"), _counting(monkeypatch, "lsd")
    res2 = evaluate(model, test_corpus, visqol=False, progress=False, cache=cache, tonal=False)
    assert snr_calls["n"] == lsd_calls["n"] == 3 * 3  # clips x limiters, model only
    assert res2.timing["cache_hits"] == 9 and res2.tonal is None
    for c1, c2 in zip(res.clips, res2.clips):
        assert c1 == c2
    # a changed clip file invalidates its entries (SHA-1): its two baselines are scored again
    y, sr = sf.read(test_corpus / "test" / "drums_BJA_Pacific.flac", dtype="float32")
    sf.write(test_corpus / "test" / "drums_BJA_Pacific.flac", 0.5 * y, sr, subtype="PCM_24")
    evaluate(model, test_corpus, visqol=False, progress=False, cache=cache, tonal=False, limiters=["kaiser"])
    assert snr_calls["n"] == 9 + 3 + 2


def test_evaluate_options_and_errors(test_corpus, monkeypatch):
    model = random_model("sr-hifigan", "tiny")
    res = evaluate(model, test_corpus, limiters=["butter4"], visqol=False, progress=False, cache=False,
                   max_clips=1, tonal=False)
    assert res.limiters == ("butter4",) and list(res.table["butter4"]) == ["music", "all"]
    assert res.examples["music"]["limiter"] == "butter4"  # soxr not evaluated: the first limiter
    assert not default_cache_path(test_corpus).exists()  # cache=False writes nothing
    evaluate(model, test_corpus, limiters=["kaiser"], visqol=False, progress=False, max_clips=1, tonal=False)
    assert default_cache_path(test_corpus).is_file()
    with pytest.raises(ValueError, match="known"):
        evaluate(model, test_corpus, limiters=["nope"], visqol=False, progress=False)
    with pytest.raises(ValueError, match="no val clips"):
        evaluate(model, test_corpus, split="val", visqol=False, progress=False)
    assert confidence_interval([1.0, 2.0, 4.0])["ci95"] == pytest.approx(1.96 * np.std([1, 2, 4], ddof=1) / np.sqrt(3))


@pytest.mark.slow
def test_evaluate_with_visqol_one_clip(test_corpus, monkeypatch):
    pytest.importorskip("visqol")
    model = random_model("sr-hifigan", "tiny")
    calls = _counting(monkeypatch, "visqol")
    res = evaluate(model, test_corpus, limiters=["soxr"], visqol=True, progress=False, max_clips=1, tonal=False)
    assert calls["n"] == 3 and res.metrics == ("snr_db", "lsd", "visqol")
    t = res.table["soxr"]["all"]
    for e in ESTIMATES:
        assert 1.0 <= t[e]["visqol"]["mean"] <= 5.0
    assert t["input"]["visqol"]["mean"] < 4.5  # the band-limited input is audibly worse
    assert "input ViSQOL" in format_table(res)
    evaluate(model, test_corpus, limiters=["soxr"], visqol=True, progress=False, max_clips=1, tonal=False)
    assert calls["n"] == 4  # the baselines' ViSQOL came from the cache


@pytest.mark.slow
def test_cli_eval_writes_tables_json_and_two_pictures(test_corpus, tmp_path, capsys, monkeypatch):
    """The shipped model end to end (about 5 s, most of it the two pictures)."""
    pytest.importorskip("matplotlib")
    from rtgan.cli.main import main

    real = rtgan.metrics.tonal_artifact
    monkeypatch.setattr(rtgan.metrics, "tonal_artifact", lambda m, **k: real(m, seconds=2.0, **k))

    png, js = tmp_path / "pics" / "eval.png", tmp_path / "eval.json"
    rc = main(["eval", "--data", str(test_corpus), "--no-visqol", "--limiter", "soxr", "kaiser", "-q",
               "--json", str(js), "--png", str(png)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.count("| domain |") == 2 and "tonal artifact (band-limited white noise, soxr):" in out
    assert "dB above the local median at" in out and "(global:" in out
    assert png.is_file() and (tmp_path / "pics" / "eval_speech.png").is_file()
    data = json.loads(js.read_text())
    assert data["checkpoint"] == "shipped" and list(data["table"]) == ["soxr", "kaiser"]
    assert "peak_db" in data["tonal"]
    with pytest.raises(SystemExit):
        main(["eval", "--data", str(test_corpus), "--limiter", "brickwall"])
