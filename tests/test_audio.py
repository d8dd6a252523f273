"""Tests for rtgan.audio.io and rtgan.audio.degrade."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from rtgan.audio import io as audio_io
from rtgan.audio.degrade import (
    DECIMATE_KAISER_BETAS,
    LOWPASS_FILTERS,
    DegradationConfig,
    decimate,
    degrade,
    spline_upsample,
)
from rtgan.audio.io import AudioError, read_audio, resample, write_audio

FS = 48_000


def band_energy_db(y: np.ndarray, reference: np.ndarray, fs: int, lo_hz: float, hi_hz: float = np.inf) -> float:
    """Energy of ``y`` in [lo_hz, hi_hz] relative to the total energy of
    ``reference``, in dB (plain FFT periodogram, last axis)."""
    spec_y = np.abs(np.fft.rfft(y, axis=-1)) ** 2
    spec_r = np.abs(np.fft.rfft(reference, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(y.shape[-1], 1.0 / fs)
    band = (freqs >= lo_hz) & (freqs <= hi_hz)
    return 10.0 * np.log10(spec_y[..., band].sum() / spec_r.sum())


@pytest.fixture(scope="module")
def white_noise() -> np.ndarray:
    return np.random.default_rng(1234).standard_normal((2, FS))


# --------------------------------------------------------------------------- io


def test_write_read_round_trip_pcm24_and_float(tmp_path):
    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.9, 0.9, size=(2, 1000)).astype(np.float32)
    wav = tmp_path / "x.wav"
    write_audio(wav, audio, 44_100)
    assert sf.info(str(wav)).subtype == "PCM_24"
    back, sr = read_audio(wav)
    assert sr == 44_100
    assert back.dtype == np.float32 and back.shape == (2, 1000)
    np.testing.assert_allclose(back, audio, atol=2.0 ** -22)

    flac = tmp_path / "x.flac"
    write_audio(flac, audio[0], 16_000)  # 1-D is written as mono
    back, sr = read_audio(flac)
    assert sr == 16_000 and back.shape == (1, 1000)
    np.testing.assert_allclose(back[0], audio[0], atol=2.0 ** -22)

    exact = tmp_path / "f.wav"
    write_audio(exact, audio, 8_000, subtype="FLOAT")
    back, _ = read_audio(exact)
    np.testing.assert_array_equal(back, audio)


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path):
    audio = np.zeros((1, 100), np.float32)
    out = tmp_path / "out.wav"
    write_audio(out, audio, 8000)
    write_audio(out, audio + 0.5, 8000)  # overwrite an existing output
    assert sorted(os.listdir(tmp_path)) == ["out.wav"]
    np.testing.assert_allclose(read_audio(out)[0], 0.5, atol=1e-6)


def test_failed_write_removes_temp_file_and_keeps_old_output(tmp_path, monkeypatch):
    out = tmp_path / "out.wav"
    write_audio(out, np.full((1, 50), 0.25, np.float32), 8000)

    def broken_write(file, data, samplerate, subtype=None, format=None):
        with open(file, "wb") as handle:  # leave a partial file behind
            handle.write(b"RIFF")
        raise RuntimeError("disk full")

    monkeypatch.setattr(audio_io.sf, "write", broken_write)
    with pytest.raises(AudioError, match="out.wav"):
        write_audio(out, np.zeros((1, 50), np.float32), 8000)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["out.wav"]
    np.testing.assert_allclose(read_audio(out)[0], 0.25, atol=1e-6)


def test_write_refuses_to_overwrite_protected_input(tmp_path):
    src = tmp_path / "input.wav"
    original = np.full((1, 64), 0.1, np.float32)
    write_audio(src, original, 8000)
    same_file_spellings = [src, str(tmp_path / "." / "input.wav")]
    link = tmp_path / "link.wav"
    os.symlink(src, link)
    same_file_spellings.append(link)
    for target in same_file_spellings:
        with pytest.raises(AudioError, match="protected"):
            write_audio(target, np.zeros((1, 64), np.float32), 8000, protect=[src])
    np.testing.assert_allclose(read_audio(src)[0], original, atol=1e-6)
    # a different file next to the input is fine
    write_audio(tmp_path / "output.wav", np.zeros((1, 64), np.float32), 8000, protect=[src])


def test_read_nonexistent_file(tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(AudioError, match=r"missing\.wav.*does not exist"):
        read_audio(missing)


def test_read_empty_and_zero_sample_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav"):
        read_audio(empty)
    zero = tmp_path / "zero.wav"
    sf.write(str(zero), np.zeros((0, 1), np.float32), 8000)
    with pytest.raises(AudioError, match=r"zero\.wav.*empty"):
        read_audio(zero)


def test_read_garbage_bytes(tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(AudioError, match=r"garbage\.wav.*cannot read"):
        read_audio(garbage)


def test_read_nan_content(tmp_path):
    bad = tmp_path / "nan.wav"
    data = np.zeros((100, 1), np.float32)
    data[10, 0] = np.nan
    data[20, 0] = np.inf
    sf.write(str(bad), data, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav.*2 NaN or infinite"):
        read_audio(bad)


def test_write_rejects_bad_arrays_and_rates(tmp_path):
    out = tmp_path / "o.wav"
    with pytest.raises(AudioError, match="NaN"):
        write_audio(out, np.array([[0.0, np.nan]]), 8000)
    with pytest.raises(AudioError, match="empty"):
        write_audio(out, np.zeros((1, 0)), 8000)
    with pytest.raises(AudioError, match="shape"):
        write_audio(out, np.zeros((1, 2, 3)), 8000)
    with pytest.raises(AudioError, match="sample rate"):
        write_audio(out, np.zeros((1, 8)), 0)
    with pytest.raises(AudioError, match="does not exist"):
        write_audio(tmp_path / "nodir" / "o.wav", np.zeros((1, 8)), 8000)
    with pytest.raises(AudioError, match="extension"):
        write_audio(tmp_path / "o.xyz", np.zeros((1, 8)), 8000)
    assert os.listdir(tmp_path) == []


def test_resample_lengths_and_content():
    t = np.arange(FS) / FS
    tone = np.sin(2 * np.pi * 1000 * t)[None, :]
    down = resample(tone, 48_000, 16_000)
    assert down.shape == (1, 16_000)
    t16 = np.arange(16_000) / 16_000
    np.testing.assert_allclose(down[0, 200:-200], np.sin(2 * np.pi * 1000 * t16)[200:-200], atol=1e-3)
    assert resample(tone, 44_100, 48_000).shape == (1, int(np.ceil(FS * 48_000 / 44_100)))
    same = resample(tone, 48_000, 48_000)
    np.testing.assert_array_equal(same, tone)
    assert same is not tone
    with pytest.raises(AudioError):
        resample(tone, 0, 16_000)


# ---------------------------------------------------------------------- degrade


@pytest.mark.parametrize("family", LOWPASS_FILTERS)
def test_lowpass_silences_above_cutoff_for_every_filter(white_noise, family):
    for order in (4, 6, 8):
        config = DegradationConfig(kind="lowpass", cutoff_hz=8000.0, filters=(family,), orders=(order,))
        y = degrade(white_noise, FS, config)
        assert y.shape == white_noise.shape and y.dtype == np.float32
        assert band_energy_db(y, white_noise, FS, 9000.0) < -40.0, (family, order)
        # the passband well below the cutoff is kept (within ~1 dB)
        kept = band_energy_db(y, white_noise, FS, 0.0, 5000.0) - band_energy_db(
            white_noise, white_noise, FS, 0.0, 5000.0
        )
        assert -1.5 < kept < 0.5, (family, order, kept)


def test_lowpass_random_filters_vary_and_default_is_deterministic(white_noise):
    config = DegradationConfig(kind="lowpass", cutoff_jitter=0.1)
    a = degrade(white_noise, FS, config)
    b = degrade(white_noise, FS, config)
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(7)
    draws = [degrade(white_noise[:, :4800], FS, config, rng=rng) for _ in range(4)]
    assert any(not np.allclose(draws[0], d) for d in draws[1:])
    for d in draws:  # jittered cutoff <= 8.8 kHz, so 9.8 kHz and up stays silent
        assert band_energy_db(d, white_noise[:, :4800], FS, 9800.0) < -40.0


def test_decimate_degradation_removes_content_above_new_nyquist(white_noise):
    t = np.arange(FS) / FS
    config = DegradationConfig(kind="decimate", ratio=3)  # 48 kHz / 3 -> 8 kHz band
    for f0, keep in ((2000.0, True), (10_000.0, False), (15_000.0, False)):
        tone = np.sin(2 * np.pi * f0 * t)
        y = degrade(tone, FS, config)
        assert y.shape == tone.shape
        gain_db = 10 * np.log10(np.mean(y[2000:-2000] ** 2) / np.mean(tone[2000:-2000] ** 2))
        if keep:
            assert abs(gain_db) < 0.1
        else:
            assert gain_db < -40.0
    rng = np.random.default_rng(3)
    for beta in DECIMATE_KAISER_BETAS:
        y = degrade(white_noise, FS, DegradationConfig(kind="decimate", kaiser_betas=(beta,)), rng=rng)
        assert band_energy_db(y, white_noise, FS, 9000.0) < -40.0
    # training's betas leave out scipy's default 5.0, the evaluation filter
    assert 5.0 not in DECIMATE_KAISER_BETAS and DegradationConfig().kaiser_betas[0] == 5.0


def test_resample_degradation_is_the_render_path(white_noise):
    y = degrade(white_noise, FS, DegradationConfig(kind="resample", ratio=3))
    expect = resample(resample(white_noise, FS, FS // 3), FS // 3, FS)[..., : white_noise.shape[-1]]
    np.testing.assert_allclose(y, expect, atol=1e-6)
    assert band_energy_db(y, white_noise, FS, 8500.0) < -40.0


def test_lowpass_without_guard_leaves_part_of_the_band(white_noise):
    gentle = DegradationConfig(kind="lowpass", cutoff_hz=8000.0, filters=("cheby1",), orders=(3,), guard=False)
    guarded = DegradationConfig(kind="lowpass", cutoff_hz=8000.0, filters=("cheby1",), orders=(3,))
    # cheby1 order 3 at 8 kHz, forward-backward: about -12 dB at 12 kHz (scipy's sosfreqz, squared)
    assert -25.0 < band_energy_db(degrade(white_noise, FS, gentle), white_noise, FS, 10000.0, 13000.0) < -3.0
    assert band_energy_db(degrade(white_noise, FS, guarded), white_noise, FS, 10000.0, 13000.0) < -40.0


@pytest.mark.parametrize("kind", ["lowpass", "decimate", "resample"])
@pytest.mark.parametrize("shape", [(1001,), (2, 1000), (3, 2, 999), (2, 1, 7)])
def test_degrade_preserves_shape(kind, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y = degrade(x, FS, DegradationConfig(kind=kind))
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.all(np.isfinite(y))


def test_degradation_config_validation():
    with pytest.raises(ValueError, match="kind"):
        DegradationConfig(kind="mp3")
    with pytest.raises(ValueError, match="unknown filter"):
        DegradationConfig(filters=("cheby2",))
    with pytest.raises(ValueError, match="ratio"):
        DegradationConfig(ratio=1)
    with pytest.raises(ValueError, match="order"):
        DegradationConfig(orders=(0,))
    with pytest.raises(ValueError, match="jitter"):
        DegradationConfig(cutoff_jitter=1.0)
    with pytest.raises(ValueError, match="cutoff_hz"):
        DegradationConfig(cutoff_hz=-5.0)
    with pytest.raises(ValueError, match="Nyquist"):
        degrade(np.zeros(100), 16_000, DegradationConfig(kind="lowpass", cutoff_hz=8000.0))
    with pytest.raises(ValueError, match="sample_rate"):
        degrade(np.zeros(100), 0, DegradationConfig())
    with pytest.raises(ValueError, match="zero samples"):
        degrade(np.zeros((2, 0)), FS, DegradationConfig())


def test_decimate_helper():
    t = np.arange(4800) / FS
    tone = np.sin(2 * np.pi * 1000 * t)
    low = decimate(tone, 3)
    assert low.shape == (1600,) and low.dtype == np.float32
    t_low = np.arange(1600) / (FS / 3)
    np.testing.assert_allclose(low[100:-100], np.sin(2 * np.pi * 1000 * t_low)[100:-100], atol=1e-3)
    assert decimate(np.zeros((2, 10)), 3).shape == (2, 4)
    with pytest.raises(ValueError):
        decimate(tone, 0)


def test_spline_upsample_reproduces_cubic_exactly():
    ratio = 3
    n_low = 40
    # p(j) = 0.5 - 0.02 j + 3e-4 j^2 - 2e-6 j^3, j = high-rate sample index
    j = np.arange(n_low * ratio, dtype=np.float64)
    poly = 0.5 - 0.02 * j + 3e-4 * j**2 - 2e-6 * j**3
    x_low = poly[::ratio]
    out = spline_upsample(x_low, ratio)
    assert out.shape == (n_low * ratio,) and out.dtype == np.float32
    np.testing.assert_allclose(out, poly, rtol=0, atol=1e-5)  # incl. the extrapolated tail


def test_spline_upsample_passes_through_low_rate_samples():
    x_low = np.random.default_rng(5).standard_normal((2, 3, 50))
    for ratio in (2, 3, 4):
        out = spline_upsample(x_low, ratio)
        assert out.shape == (2, 3, 50 * ratio)
        np.testing.assert_allclose(out[..., ::ratio], x_low, atol=1e-6)
    np.testing.assert_array_equal(spline_upsample(np.array([0.3]), 3), np.full(3, 0.3, np.float32))
    with pytest.raises(ValueError):
        spline_upsample(x_low, 0)


def test_spline_baseline_pipeline_on_smooth_signal():
    # A 500 Hz tone is far below the 8 kHz band of decimate-by-3 at 48 kHz, so the
    # Kuleshov et al. spline baseline should recover it almost exactly.
    t = np.arange(4800) / FS
    target = np.sin(2 * np.pi * 500 * t)
    estimate = spline_upsample(decimate(target, 3), 3)
    assert estimate.shape == target.shape
    err = estimate[300:-300] - target[300:-300]
    assert 10 * np.log10(np.sum(target[300:-300] ** 2) / np.sum(err**2)) > 40.0


def test_check_output_path_catches_every_problem_before_any_work(tmp_path):
    from rtgan.audio.io import check_output_path
    src = tmp_path / "in.wav"
    write_audio(src, np.zeros((1, 8), np.float32), 8000)
    assert check_output_path(tmp_path / "out.flac", protect=[src]) == "FLAC"
    with pytest.raises(AudioError, match="protected"):
        check_output_path(tmp_path / "." / "in.wav", protect=[src])
    with pytest.raises(AudioError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "o.wav")
    with pytest.raises(AudioError, match="extension"):
        check_output_path(tmp_path / "o.xyz")
    with pytest.raises(AudioError, match="extension"):
        check_output_path(tmp_path / "noext")
    with pytest.raises(AudioError, match="directory"):
        check_output_path(tmp_path)
    with pytest.raises(AudioError, match="subtype"):
        check_output_path(tmp_path / "o.flac", subtype="FLOAT")
    assert sorted(os.listdir(tmp_path)) == ["in.wav"]  # the write probe leaves nothing


def test_check_output_path_refuses_an_unwritable_folder(tmp_path, monkeypatch):
    from rtgan.audio.io import check_output_path
    import rtgan.fileio as fileio

    def denied(*a, **kw):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(fileio.tempfile, "mkstemp", denied)  # what a read-only folder does, even for root
    with pytest.raises(AudioError, match=r"o\.wav: cannot write to .*Permission denied"):
        check_output_path(tmp_path / "o.wav")
    with pytest.raises(AudioError, match="Permission denied"):
        write_audio(tmp_path / "o.wav", np.zeros((1, 8), np.float32), 8000)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_interrupted_write_removes_temp_file(tmp_path, monkeypatch, exc):
    """Ctrl-C (or the CLI's SIGTERM exception, a KeyboardInterrupt) in the middle of a write."""
    def interrupted(file, *a, **kw):
        with open(file, "wb") as handle:
            handle.write(b"RIFF")
        raise exc()

    monkeypatch.setattr(audio_io.sf, "write", interrupted)
    with pytest.raises(exc):
        write_audio(tmp_path / "out.wav", np.zeros((1, 50), np.float32), 8000)
    assert os.listdir(tmp_path) == []
