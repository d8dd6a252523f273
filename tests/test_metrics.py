"""Tests for rtgan.metrics against closed forms and inline numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import get_window

from scipy import signal

from rtgan.metrics import lsd, snr, tonal_artifact, tonal_peak_db, tonal_peak_db_global, visqol

from helpers import EXAMPLES, Pointwise

torch.set_num_threads(1)


def reference_snr(estimate: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Alahi et al. eq. (24), plain numpy, no eps."""
    return 10 * np.log10(np.sum(target**2, axis=-1) / np.sum((target - estimate) ** 2, axis=-1))


def reference_lsd(estimate, target, n_fft=2048, hop=512, eps=1e-10, center=True) -> np.ndarray:
    """Alahi et al. eq. (25) with explicit framing (zero-padded, centred frames)."""
    window = get_window("hann", n_fft)  # periodic Hann

    def log_power(x):
        if center:
            x = np.pad(x, [(0, 0), (n_fft // 2, n_fft // 2)])
        n_frames = 1 + (x.shape[-1] - n_fft) // hop
        frames = np.stack([x[:, i * hop : i * hop + n_fft] for i in range(n_frames)], axis=1)
        spec = np.fft.rfft(frames * window, axis=-1)  # (batch, frames, bins)
        return np.log10(np.abs(spec) ** 2 + eps)

    diff = log_power(estimate) - log_power(target)
    return np.mean(np.sqrt(np.mean(diff**2, axis=-1)), axis=-1)


def test_snr_closed_form_half_amplitude():
    x = np.random.default_rng(0).standard_normal(5000)
    # ||x||^2 / ||x/2||^2 = 4  ->  10 log10 4 = 20 log10 2
    assert snr(x / 2, x) == pytest.approx(20 * np.log10(2), abs=1e-9)
    assert snr(x / 2, x) == pytest.approx(6.0206, abs=1e-4)
    assert isinstance(snr(x / 2, x), float)


def test_snr_matches_numpy_reference_batched_torch_and_numpy():
    rng = np.random.default_rng(1)
    target = rng.standard_normal((3, 4000))
    estimate = target + rng.standard_normal((3, 4000)) * np.array([[0.01], [0.3], [2.0]])
    expected = reference_snr(estimate, target)
    got_np = snr(estimate, target)
    assert isinstance(got_np, np.ndarray) and got_np.shape == (3,)
    np.testing.assert_allclose(got_np, expected, rtol=1e-10)
    got_t = snr(torch.from_numpy(estimate).float(), torch.from_numpy(target).float())
    assert isinstance(got_t, torch.Tensor) and got_t.shape == (3,)
    np.testing.assert_allclose(got_t.numpy(), expected, rtol=1e-4)
    one = snr(torch.from_numpy(estimate[0]), torch.from_numpy(target[0]))
    assert isinstance(one, torch.Tensor) and one.dim() == 0


def test_snr_eps_keeps_degenerate_cases_finite():
    x = np.ones(100)
    perfect = snr(x, x)
    assert np.isfinite(perfect) and perfect == pytest.approx(10 * np.log10(100 / 1e-12 + 1))
    assert snr(np.zeros(10), np.zeros(10)) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        snr(np.zeros(10), np.zeros(11))
    with pytest.raises(ValueError):
        snr(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)))


def test_snr_is_differentiable():
    target = torch.randn(2, 256)
    estimate = (target + 0.1 * torch.randn(2, 256)).requires_grad_(True)
    snr(estimate, target).sum().backward()
    assert torch.all(torch.isfinite(estimate.grad)) and estimate.grad.abs().max() > 0


def test_lsd_identical_is_zero():
    x = np.random.default_rng(2).standard_normal(6000)
    assert lsd(x, x) == 0.0
    assert lsd(torch.from_numpy(x)[None], torch.from_numpy(x)[None]).item() == 0.0


def test_lsd_closed_form_for_scaled_signal():
    # |X_g|^2 = 4 |X_t|^2 in every bin -> every log10 difference is log10 4
    x = np.random.default_rng(3).standard_normal(8000)
    assert lsd(2 * x, x) == pytest.approx(np.log10(4), abs=1e-4)


@pytest.mark.parametrize("n_fft,hop,center", [(2048, 512, True), (512, 128, True), (256, 100, False)])
def test_lsd_matches_explicit_framing_reference(n_fft, hop, center):
    rng = np.random.default_rng(4)
    t = np.arange(7000) / 16_000
    target = np.stack([np.sin(2 * np.pi * 440 * t), rng.standard_normal(7000)])
    estimate = target + 0.05 * rng.standard_normal(target.shape)
    estimate[0, :1000] = 0.0  # some silence in the estimate
    expected = reference_lsd(estimate, target, n_fft, hop, center=center)
    got = lsd(estimate, target, n_fft=n_fft, hop_length=hop, center=center)
    np.testing.assert_allclose(got, expected, rtol=1e-8)
    got_t = lsd(torch.from_numpy(estimate), torch.from_numpy(target), n_fft=n_fft, hop_length=hop, center=center)
    np.testing.assert_allclose(got_t.numpy(), expected, rtol=1e-8)
    assert isinstance(lsd(estimate[1], target[1], n_fft=n_fft, hop_length=hop, center=center), float)


def test_lsd_input_validation():
    with pytest.raises(ValueError):
        lsd(np.zeros(100), np.zeros(101))
    with pytest.raises(ValueError):
        lsd(np.zeros(100), np.zeros(100), eps=0.0)
    with pytest.raises(ValueError):
        lsd(np.zeros(100), np.zeros(100), n_fft=256, center=False)


# --------------------------------------------------------------------------- tonal peaks

SR = 48000
NPERSEG = 8192


def _white(seconds=10.0, sigma=0.1, seed=0):
    return sigma * np.random.default_rng(seed).standard_normal(int(seconds * SR))


def test_tonal_peak_of_white_noise_is_small():
    peak, freq = tonal_peak_db(_white())
    assert 0.0 < peak < 3.0
    assert 8500.0 <= freq <= 23500.0
    gpeak, _ = tonal_peak_db_global(_white())
    assert gpeak < 3.0


def _expected_sine_peak_db(amplitude, sigma, offset_bins):
    """Analytic Welch level of a sine over white noise, at the sine's nearest bin.

    One-sided PSD with scaling="density": white noise of variance sigma^2 gives 2 sigma^2 / fs;
    a sine of amplitude A at offset d (in bins) from a bin centre gives
    2 (A/2)^2 |W(d)|^2 / (fs sum w^2), W the window's DTFT (W(0) = sum w = N/2 for Hann).
    The running median ignores the one line, so the expected peak is 10 log10(1 + ratio)."""
    w = signal.get_window("hann", NPERSEG)
    n = np.arange(NPERSEG)
    wd = np.abs(np.sum(w * np.exp(-2j * np.pi * offset_bins * n / NPERSEG))) ** 2
    ratio = (amplitude**2 * wd / (2 * np.sum(w**2))) / (2 * sigma**2)
    return 10 * np.log10(1 + ratio)


@pytest.mark.parametrize("offset_bins", [0.0, 0.5])
def test_tonal_peak_of_a_sine_in_noise_matches_the_analytic_level(offset_bins):
    sigma = 0.1
    # bin-centred: A^2 N / (6 sigma^2) = 100, a sine 11 dB below the noise's total power stands
    # 20 dB above its per-bin level
    amplitude = sigma * np.sqrt(600.0 / NPERSEG)
    f0 = 12000.0 + offset_bins * SR / NPERSEG
    t = np.arange(10 * SR) / SR
    x = _white(sigma=sigma, seed=1) + amplitude * np.sin(2 * np.pi * f0 * t + 0.3)
    expected = _expected_sine_peak_db(amplitude, sigma, offset_bins)
    if offset_bins == 0.0:
        assert expected == pytest.approx(10 * np.log10(101), abs=1e-9)
    peak, freq = tonal_peak_db(x, SR)
    assert peak == pytest.approx(expected, abs=1.0)
    assert abs(freq - f0) <= SR / NPERSEG
    gpeak, gfreq = tonal_peak_db_global(x, SR)
    assert gpeak == pytest.approx(expected, abs=1.0) and gfreq == freq


def test_spectral_slope_is_ignored_by_the_local_median_only():
    # 2nd-order Butterworth at 2 kHz: falls ~12 dB/octave (more near Nyquist) across the band
    sloped = signal.sosfilt(signal.butter(2, 2000, fs=SR, output="sos"), _white(seed=2))
    assert tonal_peak_db(sloped, SR)[0] < 3.0
    gpeak, gfreq = tonal_peak_db_global(sloped, SR)
    assert gpeak > 10.0 and gfreq < 10000.0


def test_tonal_peak_input_validation():
    x = _white(1.0)
    with pytest.raises(ValueError):
        tonal_peak_db(x[:1000])  # shorter than nperseg
    with pytest.raises(ValueError):
        tonal_peak_db(x, band=(9000.0, 30000.0))  # above Nyquist
    with pytest.raises(ValueError):
        tonal_peak_db(np.stack([x, x]))
    with pytest.raises(ValueError):
        tonal_peak_db(np.full(10000, np.nan))
    with pytest.raises(ValueError):
        tonal_peak_db(x, median_hz=0.0)
    assert tonal_peak_db(np.zeros(SR))[0] == 0.0  # silence: 0 dB, not 0/0


class _Tone(Pointwise):
    """Identity plus a constant fs/4 (12 kHz) tone of amplitude ``a``: what stride-2 subpixel
    layers can leave."""

    def __init__(self, a):
        super().__init__()
        self.a = a

    def forward(self, x):
        n = torch.arange(x.shape[-1], dtype=x.dtype)
        return x + self.a * torch.cos(torch.pi * n / 2)


def test_tonal_artifact_finds_a_12_khz_tone_and_passes_a_clean_model():
    clean = tonal_artifact(_Tone(0.0), seconds=2.0)
    assert clean["peak_db"] == pytest.approx(clean["input_peak_db"])
    assert clean["limiter"] == "soxr" and clean["seconds"] == 2.0
    toned = tonal_artifact(_Tone(1e-3), seconds=2.0, limiter="kaiser")
    assert toned["freq_hz"] == 12000.0 and toned["peak_db"] > 20.0
    assert toned["global_freq_hz"] == 12000.0
    for key in ("global_peak_db", "input_peak_db", "input_freq_hz", "input_global_peak_db"):
        assert np.isfinite(toned[key])
    with pytest.raises(ValueError):
        tonal_artifact(_Tone(0.0), limiter="nope")


# --------------------------------------------------------------------------- ViSQOL

def test_visqol_input_validation_needs_no_visqol():
    x = np.zeros(SR)
    with pytest.raises(ValueError, match="48000"):
        visqol(x[:16000], x[:16000], sample_rate=16000)
    with pytest.raises(ValueError):
        visqol(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError):
        visqol(np.full(SR, np.nan), x)
    with pytest.raises(ValueError):
        visqol(x[:-1], x)


@pytest.mark.slow
def test_visqol_identical_is_high_and_band_limited_is_lower():
    pytest.importorskip("visqol")
    from rtgan.audio.bandlimit import band_limit
    import soundfile as sf

    y, sr = sf.read(EXAMPLES / "music_wesnoth_nunc_dimittis.flac", dtype="float64")
    assert sr == SR and y.ndim == 1
    y = y[: 3 * SR]
    same = visqol(y, y)
    assert isinstance(same, float) and same > 4.5
    x48, _ = band_limit("kaiser", y)
    assert visqol(x48, y) < same - 1.0
    assert visqol(torch.from_numpy(y).float(), torch.from_numpy(y)) > 4.5  # tensors too


@pytest.mark.slow
def test_visqol_bands_show_where_a_band_limited_input_loses():
    """The per-band similarities: ~1 below the limiter's 8 kHz edge, clearly lower above it."""
    pytest.importorskip("visqol")
    from rtgan.audio.bandlimit import band_limit
    from rtgan.metrics import visqol_bands
    import soundfile as sf

    y, _ = sf.read(EXAMPLES / "music_wesnoth_nunc_dimittis.flac", dtype="float64")
    y = y[: 3 * SR]
    x48, _ = band_limit("soxr", y)
    got = visqol_bands(x48, y)
    centres, nsim = got["band_centres_hz"], got["band_nsim"]
    assert centres.shape == nsim.shape == (32,)
    assert np.all(np.diff(centres) > 0) and centres[0] == pytest.approx(50.0) and centres[-1] < SR / 2
    assert got["moslqo"] == visqol(x48, y)
    assert np.all(nsim[centres < 4000] > 0.98)
    assert np.mean(nsim[centres > 10000]) < 0.6


@pytest.mark.slow
def test_visqol_scores_a_short_word_by_tiling_it():
    """ViSQOL needs ~1 s; a 0.6 s pair is tiled (both alike) and scored like the tiled pair."""
    pytest.importorskip("visqol")
    from rtgan.audio.bandlimit import band_limit
    import soundfile as sf
    from rtgan.metrics import VISQOL_MIN_SAMPLES

    y, _ = sf.read(EXAMPLES / "speech_klettres_en_car-dog.flac", dtype="float64")
    word = y[:int(0.6 * SR)]
    x48, _ = band_limit("kaiser", word)
    reps = -(-VISQOL_MIN_SAMPLES // len(word))
    assert visqol(word, word) > 4.5
    assert visqol(x48, word) == pytest.approx(visqol(np.tile(x48, reps), np.tile(word, reps)))


def test_visqol_modes_check_their_rates():
    x = np.zeros(SR)
    with pytest.raises(ValueError, match="16000"):
        visqol(x, x, sample_rate=SR, mode="speech")
    with pytest.raises(ValueError, match="unknown mode"):
        visqol(x, x, mode="music")


@pytest.mark.slow
def test_visqol_speech_mode_scores_16k_speech_and_tiles_short_words():
    pytest.importorskip("visqol")
    import soundfile as sf
    from scipy.signal import resample_poly

    y, _ = sf.read(EXAMPLES / "speech_klettres_en_car-dog.flac", dtype="float64")
    y16 = resample_poly(y, 1, 3)
    word = y16[:int(0.6 * 16000)]
    muffled = resample_poly(resample_poly(word, 1, 4), 4, 1)[:len(word)]
    reps = -(-20000 // len(word))  # 1.25 s at 16 kHz
    same = visqol(word, word, 16000, mode="speech")
    assert 1.0 <= visqol(muffled, word, 16000, mode="speech") < same
    assert visqol(muffled, word, 16000, mode="speech") == pytest.approx(
        visqol(np.tile(muffled, reps), np.tile(word, reps), 16000, mode="speech"))


class _Tone16(Pointwise):
    """Zero-order upsampling by ``r`` (a stand-in 16 kHz model) plus a 4 kHz tone of amplitude ``a``."""

    def __init__(self, a, r):
        super().__init__()
        self.a, self.r = a, r

    @property
    def sample_rate_in(self):
        return 16000 // self.r

    @property
    def sample_rate_out(self):
        return 16000

    def forward(self, x):
        if x.dtype != torch.float32:
            raise TypeError("models take float32")
        y = torch.repeat_interleave(x, self.r, dim=-1)
        n = torch.arange(y.shape[-1], dtype=y.dtype)
        return y + self.a * torch.cos(torch.pi * n / 2)


@pytest.mark.parametrize("r", [2, 4])
def test_tonal_artifact_of_16_khz_models_searches_the_generated_band(r):
    clean = tonal_artifact(_Tone16(0.0, r), seconds=2.0)
    assert clean["band_hz"] == [0.8 * 8000 / r + 250.0, 7750.0] and clean["limiter"] == "cheby1"
    toned = tonal_artifact(_Tone16(1e-2, r), seconds=2.0)
    assert toned["freq_hz"] == pytest.approx(4000.0, abs=2.0) and toned["peak_db"] > 20.0
    assert toned["peak_db"] > clean["peak_db"] + 15.0
