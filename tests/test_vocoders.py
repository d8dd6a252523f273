"""The music vocoders of seed 003: mel front end, voc-melgan's generator, discriminator and training.

Streaming equivalence, ONNX export and the other per-model grids cover the vocoders through
:data:`helpers.CASES` (every registered model); this file tests what is particular to them.
"""
import dataclasses

import numpy as np
import pytest
import torch

from rtgan.checkpoint import read_checkpoint
from rtgan.models import registry
from rtgan.models.discriminators import MelGANDiscriminator, MelGANDiscriminatorConfig
from rtgan.models.layers.mel import LogMel1d, MelConfig, dft_kernels
from rtgan.models.layers.weightnorm import apply_weight_norm, folded_state_dict, has_weight_norm, load_folded
from rtgan.models.voc_melgan import MelGANConfig, MelGANGenerator
from rtgan.models.voc_melgan_training import VocMelGANRecipe, VocoderTrainConfig, mel_l1
from rtgan.training.loop import init_state, train

CPU = torch.device("cpu")


def tiny_cfg(**overrides) -> VocoderTrainConfig:
    """The tiny preset on the three-clip test corpus (its val clip is speech: every domain)."""
    return dataclasses.replace(VocMelGANRecipe.presets()["tiny"], train_domain=None, **overrides)


# -- the mel front end ---------------------------------------------------------------------

@pytest.mark.parametrize("lookahead", [768, 384, 0])
def test_log_mel_equals_librosa_on_the_padded_signal(lookahead):
    librosa = pytest.importorskip("librosa")
    c = MelConfig(lookahead=lookahead)
    x = np.random.default_rng(0).standard_normal(20 * 256).astype(np.float32) * 0.1
    y = LogMel1d(c)(torch.from_numpy(x)[None, None])[0].numpy()
    left, right = c.padding
    assert (left, right) == (768 - lookahead, lookahead)
    spec = np.abs(librosa.stft(np.pad(x, (left, right)), n_fft=1024, hop_length=256, window="hann", center=False))
    ref = np.log10(np.maximum(librosa.filters.mel(sr=22050, n_fft=1024, n_mels=128) @ spec, 1e-5))
    assert y.shape == ref.shape == (128, 20)
    assert np.abs(y - ref).max() < 1e-4


def test_dft_kernels_give_torch_stft_bins():
    x = torch.randn(1, 1024, dtype=torch.float64)
    k = dft_kernels(1024, 512).double()
    spec = torch.stft(x, 1024, hop_length=1024, win_length=512, window=torch.hann_window(512, dtype=torch.float64),
                      center=False, return_complex=True)[0, :, 0]
    out = torch.nn.functional.conv1d(x[:, None], k)[0, :, 0]
    assert torch.allclose(out[:513], spec.real, atol=1e-4) and torch.allclose(out[513:], spec.imag, atol=1e-4)


def test_silence_gives_the_floor_and_the_front_end_has_no_weights():
    m = LogMel1d(MelConfig())
    assert torch.all(m(torch.zeros(1, 1, 1024)) == -5.0)
    assert MelConfig().log_floor == -5.0
    assert len(m.state_dict()) == 0 and not list(m.parameters())


def test_mel_frames_stream_like_offline_frames():
    from rtgan.models.layers import StateCursor
    m = LogMel1d(MelConfig(lookahead=384))
    x = 0.1 * torch.randn(1, 1, 256 * 24)
    offline = m(x)
    state, outs, delay = None, [], None
    for i in range(0, x.shape[-1], 512):
        cur = StateCursor(state, 1, x)
        y, delay = m.stream(x[..., i:i + 512], 0, cur)
        state = cur.finish()
        outs.append(y)
    streamed = torch.cat(outs, dim=-1)
    # one frame late (its window reaches 384 samples into the next hop); the first streamed
    # frame saw the zero state, as offline sees its zero padding
    assert delay == 2 and torch.allclose(streamed[..., delay:], offline[..., :-delay], atol=1e-5)


@pytest.mark.parametrize("kw", [dict(lookahead=800), dict(win_length=2048), dict(floor=0.0), dict(fmax=20000.0)])
def test_mel_config_refuses_bad_values(kw):
    with pytest.raises(ValueError):
        MelConfig(**kw)


# -- voc-melgan's generator ----------------------------------------------------------------

def test_melgan_paper_preset_is_kumar_et_al_table_4():
    c = registry.make_config("voc-melgan", "paper")
    assert (c.channels, c.ratios, c.dilations, c.input_kernel, c.output_kernel) == (512, (8, 8, 2, 2), (1, 3, 9), 7, 7)
    assert (c.mel.sample_rate, c.mel.n_fft, c.mel.hop_length, c.mel.n_mels, c.mel.lookahead) == (22050, 1024, 256, 128, 768)
    g = registry.build("voc-melgan", "paper")
    ups = [(u.conv.in_channels, u.conv.out_channels, u.conv.kernel_size[0], u.stride) for u in g.ups]
    assert ups == [(512, 256, 16, 8), (256, 128, 16, 8), (128, 64, 4, 2), (64, 32, 4, 2)]


def test_melgan_live_preset_has_no_lookahead_and_vocode_maps_frames_to_hops():
    g = registry.build("voc-melgan", "live").eval()
    assert g.config.mel.lookahead == 0 and g.latency_samples == 0
    assert g.lookahead < g.config.mel.hop_length  # only within the hop a block already holds
    mel = torch.randn(2, 128, 5) - 3
    with torch.no_grad():
        y = g.vocode(mel)
    assert y.shape == (2, 1, 5 * 256) and y.abs().max() <= 1
    with pytest.raises(ValueError):
        g.vocode(torch.randn(2, 80, 5))


def test_frame_level_is_the_log_rms_of_the_mel_magnitudes_and_gains_are_interpolated_linearly():
    m = registry.build("voc-melgan", "live").eval()
    mel = torch.randn(2, 128, 5) - 2.0
    want = 0.5 * np.log10(np.mean(10.0 ** (2.0 * mel.double().numpy()), axis=1, keepdims=True))
    np.testing.assert_allclose(m.frame_level(mel).numpy(), want, rtol=1e-5, atol=1e-5)
    hop = m.config.mel.hop_length
    g = m.level_up(torch.tensor([[[2.0, 2.0, 4.0, 4.0]]]))[0, 0]  # causal: frame t -> hop t ends on it
    assert g.shape == (4 * hop,) and not g.requires_grad
    ramp = torch.arange(1, hop + 1, dtype=torch.float32) / hop
    torch.testing.assert_close(g[:hop], 2.0 * ramp)  # from 0 before the first frame
    torch.testing.assert_close(g[hop: 2 * hop], torch.full((hop,), 2.0))  # constant frames stay constant
    torch.testing.assert_close(g[2 * hop: 3 * hop], 2.0 + 2.0 * ramp)  # a straight line between frames
    torch.testing.assert_close(g[3 * hop:], torch.full((hop,), 4.0))


@pytest.mark.parametrize("preset", ["tiny", "live"])
def test_frame_gain_applies_the_input_level_exactly(preset):
    """A louder input (all mel bins up by log10 a) leaves the generator's level-free input as it
    is, so the output before its tanh is a times louder: the level is not learnt."""
    torch.manual_seed(0)
    m = registry.build("voc-melgan", preset).eval()
    mel = m.mel(0.01 * torch.randn(1, 1, 16 * 256))
    assert float(mel.min()) > m.config.mel.log_floor + 1.0  # away from the floor, which is not scaled
    with torch.no_grad():
        quiet, loud = m.synthesize(mel), m.synthesize(mel + 1.0)  # a = 10
    torch.testing.assert_close(torch.atanh(loud), 10.0 * torch.atanh(quiet), rtol=1e-3, atol=1e-6)


def test_config_refuses_ratios_that_miss_the_hop():
    with pytest.raises(ValueError, match="hop length"):
        MelGANConfig(ratios=(8, 8, 2))


def test_weight_norm_is_folded_into_plain_weights_and_loaded_back():
    torch.manual_seed(0)
    g = apply_weight_norm(registry.build("voc-melgan", "tiny")).eval()
    assert has_weight_norm(g)
    x = 0.1 * torch.randn(1, 1, 2048)
    with torch.no_grad():
        ref = g(x)
    folded = folded_state_dict(g)
    assert not any("parametrizations" in k for k in folded)
    plain = registry.build("voc-melgan", "tiny").eval()
    plain.load_state_dict(folded, strict=True)
    with torch.no_grad():
        assert torch.allclose(plain(x), ref, atol=1e-6)
        assert torch.equal(g(x), ref)  # folding a copy left the wrapped network as it was
    again = apply_weight_norm(registry.build("voc-melgan", "tiny")).eval()
    load_folded(again, folded)
    assert has_weight_norm(again)
    with torch.no_grad():
        assert torch.allclose(again(x), ref, atol=1e-6)


# -- discriminator and losses ----------------------------------------------------------------

def test_melgan_discriminator_is_kumar_et_al_table_5():
    ch, k, s, g = MelGANDiscriminatorConfig().layers()
    assert ch == (16, 64, 256, 1024, 1024, 1024) and k == (15, 41, 41, 41, 41, 5)
    assert s == (1, 4, 4, 4, 4, 1) and g == (1, 4, 16, 64, 256, 1)
    d = MelGANDiscriminator(MelGANDiscriminatorConfig(max_channels=64))
    logits, feats = d(torch.randn(2, 1, 8192))
    # stride 256 on the raw audio, twice that on each pooled copy
    assert [t.shape for t in logits] == [(2, 32), (2, 16), (2, 8)]
    assert [len(f) for f in feats] == [7, 7, 7]


def test_mel_l1_is_the_mean_absolute_log_mel_difference():
    m = LogMel1d(MelConfig())
    a, b = 0.1 * torch.randn(2, 1, 2048), 0.1 * torch.randn(2, 1, 2048)
    ref = (m(a) - m(b)).abs().flatten(1).mean(dim=1)
    assert torch.allclose(mel_l1(m, a, b), ref)
    assert torch.all(mel_l1(m, a, a) == 0)


# -- training ------------------------------------------------------------------------------

def test_examples_are_peak_normalised_22_khz_audio_in_whole_hops(corpus):
    cfg = tiny_cfg()
    r = VocMelGANRecipe(cfg)
    clip = torch.from_numpy(np.random.default_rng(1).uniform(-0.3, 0.3, (1, cfg.segment_samples)).astype(np.float32))
    (y,) = r.val_example(clip)
    assert y.shape == (1, 4096)  # 8960 samples at 48 kHz -> 4116 at 22.05 kHz, cut to 16 hops
    assert abs(float(y.abs().max()) - 0.95) < 1e-6
    torch.manual_seed(0)
    (t,) = r.train_example(clip)
    peak_db = 20 * np.log10(float(t.abs().max()) / 0.95)
    assert cfg.gain_db[0] - 1e-6 <= peak_db <= cfg.gain_db[1] + 1e-6
    assert r.domain() is None and VocMelGANRecipe.presets()["live"].train_domain == "music"


def test_recipes_paper_and_fast():
    p = VocMelGANRecipe.presets()
    paper, live = p["paper"], p["live"]
    assert paper.recipe == "paper" and paper.weights.mel == 0 and paper.weights.feature_matching == 10
    assert paper.adv_start_step == 0 and paper.lr == 1e-4 and paper.betas == (0.5, 0.9)
    assert live.recipe == "fast" and live.weights.mel == 45 and live.adv_start_step > 0
    assert VocoderTrainConfig.with_recipe(live, "paper").weights == paper.weights
    with pytest.raises(ValueError, match="unknown recipe"):
        VocoderTrainConfig.with_recipe(live, "bwe")
    with pytest.raises(ValueError, match="no term"):
        dataclasses.replace(live, weights=dataclasses.replace(live.weights, mel=0.0), adversarial=False)


def test_tiny_training_lowers_the_validation_loss_and_trains_the_discriminator(corpus, tmp_path):
    cfg = tiny_cfg(steps=16, val_every=8, ckpt_every=16, adv_start_step=8)
    fresh = init_state(cfg, CPU)
    state = train(cfg, corpus, tmp_path / "run", device="cpu", progress=False)
    h = state.history
    assert [e["step"] for e in h] == [0, 8, 16]
    assert h[-1]["mel_l1"] < 0.85 * h[0]["mel_l1"]
    before, after = fresh.nets["discriminator"].state_dict(), state.nets["discriminator"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_release_checkpoint_holds_folded_weights_and_loads_by_name(corpus, tmp_path):
    cfg = tiny_cfg(steps=2, val_every=2, ckpt_every=2, adv_start_step=1)
    run = tmp_path / "run"
    state = train(cfg, corpus, run, device="cpu", progress=False)
    tensors, meta = read_checkpoint(run / "voc-melgan.safetensors")
    assert meta["model"] == "voc-melgan" and not any("parametrizations" in k for k in tensors)
    g = registry.load_model("voc-melgan", run / "voc-melgan.safetensors")
    assert type(g) is MelGANGenerator and not has_weight_norm(g)
    x = 0.1 * torch.randn(1, 1, 2048)
    with torch.no_grad():
        assert torch.allclose(g(x), state.generator.eval()(x), atol=1e-6)
    # the resumable checkpoint keeps the training form (g and v) and resumes
    more = train(dataclasses.replace(cfg, steps=4), corpus, run, device="cpu", progress=False)
    assert more.step == 4 and has_weight_norm(more.generator)


# -- saved mels: analysis, chunked vocoding, files ---------------------------------------------

def test_vocode_pads_with_silence_so_offline_equals_the_stream_from_the_first_sample():
    import sys
    sys.path.insert(0, "tests")
    from helpers import random_model
    g = random_model("voc-melgan", "tiny")
    x = 0.2 * torch.randn(1, 1, 256 * 12)
    with torch.no_grad():
        offline = g(x)
    state, outs = g.init_state(1), []
    xp = torch.nn.functional.pad(x, (0, 256 * 8))  # the latency's worth of silence after
    for i in range(0, xp.shape[-1], 256):
        y, state = g.step(xp[..., i:i + 256], state)
        outs.append(y)
    d = g.latency_samples
    streamed = torch.cat(outs, dim=-1)[..., d:d + x.shape[-1]]
    assert torch.allclose(streamed, offline, atol=1e-5)


def test_chunked_vocode_equals_one_pass():
    import sys
    sys.path.insert(0, "tests")
    from helpers import random_model
    from rtgan.engine.vocode import vocode
    g = random_model("voc-melgan", "tiny")
    mel = torch.rand(2, 128, 37) * 4 - 4.5
    with torch.no_grad():
        whole = g.vocode(mel)
    assert torch.allclose(vocode(g, mel, chunk_frames=5), whole, atol=1e-5)


def test_mel_files_round_trip_and_bad_ones_are_refused(tmp_path):
    from rtgan.audio.io import AudioError
    from rtgan.engine.vocode import load_mel, save_mel
    mel = np.random.default_rng(0).uniform(-5, 1, (128, 9)).astype(np.float32)
    save_mel(tmp_path / "a.npy", mel)
    assert np.array_equal(load_mel(tmp_path / "a.npy", 128), mel[None])
    assert not list(tmp_path.glob(".*tmp"))
    for bad, match in ((np.zeros((80, 9), np.float32), "expected a mel"), (np.zeros((128, 0), np.float32), "no frames"),
                       (np.full((128, 3), np.nan, np.float32), "NaN"), (np.zeros((128, 3), np.int16), "floats")):
        np.save(tmp_path / "bad.npy", bad)
        with pytest.raises(AudioError, match=match):
            load_mel(tmp_path / "bad.npy", 128)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(AudioError, match="not a readable"):
        load_mel(tmp_path / "obj.npy", 128)


def test_cli_writes_a_mel_and_renders_it_like_the_audio_render(tmp_path, capsys):
    import soundfile as sf
    from helpers import EXAMPLES
    from rtgan.cli.main import main
    torch.manual_seed(0)
    g = registry.build("voc-melgan", "tiny")
    from rtgan.checkpoint import save_generator
    ckpt = save_generator(tmp_path / "v.safetensors", g, {})
    src = EXAMPLES / "drums_BJA_Pacific.flac"
    common = ["--model", "voc-melgan", "--checkpoint", str(ckpt), "-q"]
    assert main(["render", str(src), str(tmp_path / "d.npy"), *common]) == 0
    mel = np.load(tmp_path / "d.npy")
    assert mel.shape[0] == 128 and mel.min() >= -5.0
    assert main(["render", str(tmp_path / "d.npy"), str(tmp_path / "from_mel.wav"), *common]) == 0
    assert main(["render", str(src), str(tmp_path / "from_audio.wav"), *common]) == 0
    a, sr_a = sf.read(tmp_path / "from_mel.wav")
    b, sr_b = sf.read(tmp_path / "from_audio.wav")
    assert sr_a == sr_b == 22050 and len(a) >= len(b) and len(a) - len(b) < 256
    # the same resynthesis (PCM-24 files) away from the edges, where the saved mel has no frames
    # of the silence around the clip (a stream sees them; the mel render assumes silence)
    edge = 40 * 256
    assert np.abs(a[edge:len(b) - edge] - b[edge:-edge]).max() < 1e-3
    # a mel needs a vocoder; two mels make no render
    assert main(["render", str(tmp_path / "d.npy"), str(tmp_path / "x.wav"), "--model", "sr16-unet", "-q"]) != 0
    assert main(["render", str(tmp_path / "d.npy"), str(tmp_path / "e.npy"), *common]) != 0
    assert not (tmp_path / "x.wav").exists() and not (tmp_path / "e.npy").exists()
    capsys.readouterr()


# -- voc-multiscale -----------------------------------------------------------------------------

from rtgan.models.voc_multiscale import (MultiScaleConfig, filter_bank, interpolator,  # noqa: E402
                                         morlet_filters, split_bands)
from rtgan.models.voc_multiscale_training import (BandDiscriminator, BandDiscriminatorConfig,  # noqa: E402
                                                  VocMultiScaleRecipe, seed_feature_matching)


def test_multiscale_band_levels_read_the_mel_bins_of_their_band_and_scale_exactly():
    from rtgan.models.voc_multiscale import PRESETS, band_bins
    from rtgan.dsp import hz_to_mel, mel_to_hz
    c = PRESETS["live"]
    bins = [band_bins(c, k) for k in range(c.bands)]
    assert sorted(torch.cat(bins).tolist()) == list(range(c.mel.n_mels))  # a partition of the mel bins
    centres = mel_to_hz(torch.linspace(0.0, float(hz_to_mel(11025.0)), 130))[1:-1]
    for k, b in enumerate(bins):
        lo, hi = (0.0, 689.0625 * 2 ** k) if k == 0 else (689.0625 * 2 ** (k - 1), 689.0625 * 2 ** k)
        assert float(centres[b].min()) >= lo and float(centres[b].max()) < hi
    torch.manual_seed(0)
    m = registry.build("voc-multiscale", "live").eval()
    mel = m.mel(0.01 * torch.randn(1, 1, 16 * 256))
    assert float(mel.min()) > c.mel.log_floor + 1.0
    with torch.no_grad():
        quiet, loud = m.bands(mel), m.bands(mel + 1.0)  # every band 10 times louder, nothing else
    for q, lo in zip(quiet, loud):
        torch.testing.assert_close(lo, 10.0 * q, rtol=1e-4, atol=1e-7)


def test_multiscale_paper_preset_is_seed_003():
    c = registry.make_config("voc-multiscale", "paper")
    assert [c.band_rate(k) for k in range(5)] == [1378.125, 2756.25, 5512.5, 11025.0, 22050.0]
    assert c.factors == ((2, 2, 2, 2), (4, 2, 2, 2), (4, 4, 2, 2), (4, 4, 4, 2), (4, 4, 4, 4))
    assert (c.channels, c.filters, c.taps, c.morlet_scale) == (128, 128, 128, 0.05)
    g = registry.build("voc-multiscale", "paper")
    # the filter banks are frozen: not trained, not counted
    assert not any(p.requires_grad for gen in g.band_generators for p in gen.bank.parameters())
    assert all(not p.requires_grad for p in g.upsamplers.parameters())


def test_morlet_filters_peak_at_their_centres_and_span_the_upper_half_band():
    rate, taps = 22050.0, 128
    bank = morlet_filters(rate, 5512.5, 11025.0, 16, taps, 0.05)
    assert np.allclose(np.linalg.norm(bank, axis=1), 1.0, atol=1e-6)
    spec = np.abs(np.fft.rfft(bank, n=8192, axis=1))
    peaks = np.argmax(spec, axis=1) * rate / 8192
    centres = 5512.5 + (np.arange(16) + 0.5) * (5512.5 / 16)
    # within a quarter of the filters' resolution (rate / taps); the highest lean on Nyquist
    assert np.all(np.abs(peaks - centres * taps / (taps - 1)) < rate / taps / 4)
    c = MultiScaleConfig()
    low = filter_bank(c, 0)  # the lowest band spans [0, nyquist]
    lowpeak = np.argmax(np.abs(np.fft.rfft(low, n=8192, axis=1)), axis=1) * c.band_rate(0) / 8192
    assert lowpeak.min() < 20 and lowpeak.max() > 0.9 * c.band_rate(0) / 2


def test_split_bands_partition_the_spectrum_and_add_back_up():
    c = MultiScaleConfig()
    y = torch.randn(2, 1, 8192, dtype=torch.float64)
    bands = split_bands(y, c)
    assert [b.shape[-1] for b in bands] == [512, 1024, 2048, 4096, 8192]
    total = torch.zeros(2, 1, 4097, dtype=torch.complex128)
    for k, b in enumerate(bands):
        spec = torch.fft.rfft(b / c.band_gain(k), dim=-1) * c.decimation(k)  # ideal upsampling, in the spectrum
        total[..., :spec.shape[-1]] += spec
    assert torch.allclose(torch.fft.irfft(total, n=8192), y, atol=1e-9)


def test_resample_and_sum_rebuilds_a_signal_from_its_bands():
    g = registry.build("voc-multiscale", "paper").eval()
    t = torch.arange(16384, dtype=torch.float64) / 22050
    # tones inside each band, away from the band edges the interpolators roll off at
    y = sum(torch.sin(2 * np.pi * f * t) for f in (300.0, 1000.0, 2000.0, 4000.0, 8000.0))[None, None] * 0.1
    with torch.no_grad():
        rebuilt = g.combine([b.float() for b in split_bands(y, g.config)]).double()
    inner = slice(2048, -2048)  # FFT splitting is circular; the interpolators need context
    err = rebuilt[..., inner] - y[..., inner]
    snr = 10 * torch.log10(y[..., inner].pow(2).sum() / err.pow(2).sum())
    assert snr > 40


def test_interpolator_is_unit_gain_in_the_passband_and_zero_phase_on_its_samples():
    h = interpolator(4, 8, 8.0)
    assert len(h) == 65 and np.isclose(h[32], 1.0, atol=1e-6)
    assert np.allclose(h[32 + 4::4], 0.0, atol=1e-6)  # an interpolator keeps the input samples
    assert np.allclose(interpolator(1, 8, 8.0), [1.0])


def test_band_generators_and_discriminator_shapes():
    torch.manual_seed(0)
    g = registry.build("voc-multiscale", "tiny")
    mel = torch.rand(2, 128, 6) * 4 - 4.5
    bands = g.bands(mel)
    assert [b.shape for b in bands] == [(2, 1, 6 * 256 // d) for d in (16, 8, 4, 2, 1)]
    assert g.vocode(mel).shape == (2, 1, 6 * 256)
    d = BandDiscriminator(g.config, BandDiscriminatorConfig(4, 8))
    logits, feats = d(bands, mel)
    assert len(logits) == 6 and all(t.shape == (2, 6) for t in logits)
    assert [len(f) for f in feats] == [7, 7, 7, 7, 7, 3]
    with pytest.raises(ValueError, match="bands"):
        d(bands[:4], mel)


def test_seed_feature_matching_averages_layers_then_groups():
    r = [[torch.zeros(1, 2, 3)], [torch.zeros(1, 1, 4), torch.zeros(1, 1, 4)]]
    f = [[torch.ones(1, 2, 3)], [torch.full((1, 1, 4), 2.0), torch.full((1, 1, 4), 4.0)]]
    assert float(seed_feature_matching(r, f)) == pytest.approx((1.0 + (2.0 + 4.0) / 2) / 2)


def test_multiscale_tiny_training_lowers_the_validation_loss_and_ships_plain_weights(corpus, tmp_path):
    cfg = dataclasses.replace(VocMultiScaleRecipe.presets()["tiny"], train_domain=None, steps=16, val_every=8,
                              ckpt_every=16, adv_start_step=8)
    state = train(cfg, corpus, tmp_path / "run", device="cpu", progress=False)
    h = state.history
    assert [e["step"] for e in h] == [0, 8, 16] and h[-1]["mel_l1"] < 0.85 * h[0]["mel_l1"]
    g = registry.load_model("voc-multiscale", tmp_path / "run" / "voc-multiscale.safetensors")
    x = 0.1 * torch.randn(1, 1, 2048)
    with torch.no_grad():
        assert torch.allclose(g(x), state.generator.eval()(x), atol=1e-6)


# -- evaluation against Griffin-Lim -------------------------------------------------------------

def test_griffin_lim_is_aligned_with_the_mel_frames():
    pytest.importorskip("librosa")
    from rtgan.evaluate_vocoder import griffin_lim
    from helpers import EXAMPLES
    import soundfile as sf
    from rtgan.audio.io import resample
    x, sr = sf.read(EXAMPLES / "music_wesnoth_nunc_dimittis.flac")
    y = resample(x.mean(axis=1) if x.ndim == 2 else x, sr, 22050)[: 22050 * 2]
    y = (0.9 * y / np.abs(y).max()).astype(np.float32)[: 22050 * 2 // 256 * 256]
    for lookahead in (768, 0):
        c = MelConfig(lookahead=lookahead)
        m = LogMel1d(c)
        mel = m(torch.from_numpy(y)[None, None])[0].numpy()
        gl = griffin_lim(mel, c, n_iter=16)
        assert gl.shape == y.shape

        def err(shift):
            return float(mel_l1(m, torch.from_numpy(np.roll(gl, shift))[None, None], torch.from_numpy(y)[None, None]))
        # in place it matches the mel far better than a hop early or late
        assert err(0) < 0.7 * min(err(256), err(-256))


def test_eval_cli_scores_vocoders_and_griffin_lim(corpus, tmp_path, capsys):
    pytest.importorskip("librosa")
    import json
    from rtgan.checkpoint import save_generator
    from rtgan.cli.main import main
    torch.manual_seed(0)
    a = save_generator(tmp_path / "a.safetensors", registry.build("voc-melgan", "tiny"), {"steps": 3})
    b = save_generator(tmp_path / "b.safetensors", registry.build("voc-multiscale", "tiny"), {"steps": 4})
    out = tmp_path / "eval.json"
    assert main(["eval", "--vocoders", f"voc-melgan={a}", f"voc-multiscale={b}", "--data", str(corpus), "--split",
                 "train", "--max-clips", "1", "--no-visqol", "--json", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "griffin-lim" in text and "log-mel L1" in text
    data = json.loads(out.read_text())
    table = data["table"]
    assert set(table) == {"clips", "voc-melgan", "voc-multiscale", "griffin-lim"} and table["clips"]["count"] == 1
    # untrained vocoders are far from the mel they were given; Griffin-Lim is close to it
    assert table["griffin-lim"]["mel_l1"]["mean"] < 0.5 * table["voc-melgan"]["mel_l1"]["mean"]
    assert data["models"]["voc-multiscale"]["steps"] == 4
    assert main(["eval", "--vocoders", "sr16-unet", "--data", str(corpus)]) == 2  # not a vocoder: one line


@pytest.mark.parametrize("model", ["voc-melgan", "voc-multiscale"])
def test_live_presets_with_upsampling_holds_stream_like_offline(model):
    from helpers import burst_noise, random_model, whole_file
    from rtgan.engine import StatefulStream, stream_signal
    m = random_model(model, "live")
    assert m.config.upsample_hold
    x = burst_noise(1, 256 * 12)
    for block in (256, 1000):
        stream = StatefulStream(m, block, runtime="eager")
        d = stream.latency_samples
        y = stream_signal(stream, torch.nn.functional.pad(x, (0, d)), compensate=False)
        ref = whole_file(m, x)
        assert (y[..., d:d + ref.shape[-1]] - ref).abs().max() < 1e-4


def test_hold_of_f_taps_turns_a_period_f_pattern_into_a_constant():
    from rtgan.models.layers import Hold1d
    x = torch.tensor([1.0, -2.0, 5.0, 0.5]).repeat(6)[None, None]  # period 4, mean 1.125
    y = Hold1d(4)(x)
    assert torch.allclose(y[..., 3:], torch.full_like(y[..., 3:], 1.125))
    assert torch.allclose(Hold1d(2)(x), 0.5 * (x + torch.nn.functional.pad(x, (1, 0))[..., :-1]))
    with pytest.raises(ValueError):
        Hold1d(0)
