"""Note-model evaluation (rtgan eval for reverbsynth): CREPE pitch, release decay, log-mel diversity,
the evaluator end to end on a note set written here, and the CLI branch."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from rtgan.metrics import decay_rate_db_per_s, mean_pairwise_logmel_distance, pitch_accuracy

SR = 16000


def _torchcrepe_or_skip():
    from rtgan.metrics import load_torchcrepe
    try:
        return load_torchcrepe()
    except ImportError as e:
        pytest.skip(str(e))


def _hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def _note(pitch: int, seconds: float, note_off: float, release_tau: float, gain: float = 0.3,
          harmonics: int = 6, sustain_tau: float = 2.0) -> np.ndarray:
    """A harmonic tone, slowly decaying while held, then released with time constant ``release_tau`` (s)."""
    t = np.arange(int(round(seconds * SR))) / SR
    f0 = _hz(pitch)
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, harmonics + 1) if k * f0 < SR / 2)
    env = np.exp(-t / sustain_tau) * np.where(t < note_off, 1.0, np.exp(-(t - note_off) / release_tau))
    return (gain * x * env).astype(np.float64)


def test_importing_metrics_loads_neither_torchcrepe_nor_torchaudio():
    code = ("import sys, rtgan.metrics, rtgan.evaluate_notes; "
            "bad = [m for m in ('torchcrepe', 'torchaudio') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_load_torchcrepe_leaves_no_torchaudio_placeholder_behind():
    tc = _torchcrepe_or_skip()
    assert hasattr(tc, "predict")
    if "torchaudio" not in sys.modules:  # the placeholder stood in only during the import
        with pytest.raises(ImportError, match="never loads files"):
            tc.load.torchaudio.load("x.wav")


@pytest.mark.parametrize("pitch", [28, 35, 45, 57, 64])
def test_note_pitch_finds_the_fundamental_of_harmonic_bass_tones(pitch):
    _torchcrepe_or_skip()
    from rtgan.metrics import note_pitch
    x = _note(pitch, 1.0, 1.0, 0.1)
    f0, voiced = note_pitch(x, SR, window_s=(0.1, 0.9))
    assert abs(1200 * np.log2(f0 / _hz(pitch))) < 20 and voiced > 0.7


def test_note_pitch_refuses_fmin_at_or_below_crepes_lowest_bin():
    from rtgan.metrics import note_pitch
    x = _note(40, 0.5, 0.5, 0.1)
    for fmin in (32.7, 30.0, 0.0):
        with pytest.raises(ValueError, match="fmin"):
            note_pitch(x, SR, fmin=fmin)


def test_pitch_accuracy_against_hand_computed_cases():
    est = [440.0, 452.0, 466.16, float("nan"), 0.0, 220.0]  # 0, +46.6, +100 cents; unvoiced; 0 Hz; 0 cents
    midi = [69, 69, 69, 69, 69, 57]
    assert pitch_accuracy(est, midi) == pytest.approx(3 / 6)
    assert pitch_accuracy(est, midi, tolerance_cents=30) == pytest.approx(2 / 6)
    assert pitch_accuracy(est, midi, tolerance_cents=101) == pytest.approx(4 / 6)
    assert pitch_accuracy([_hz(40.499)], [40]) == 1.0 and pitch_accuracy([_hz(40.501)], [40]) == 0.0
    with pytest.raises(ValueError):
        pitch_accuracy([440.0], [69, 70])


@pytest.mark.parametrize("tau", [0.05, 0.1, 0.3, 1.0])
def test_decay_rate_of_exponential_releases(tau):
    # 250 Hz: a 20 ms frame holds 5 whole periods, so frame energies follow the envelope exactly
    t = np.arange(4 * SR) / SR
    x = np.sin(2 * np.pi * 250.0 * t) * np.where(t < 3.0, 1.0, np.exp(-(t - 3.0) / tau))
    want = 20.0 * np.log10(np.e) / tau  # amplitude exp(-t / tau): 8.69 / tau dB/s of energy decay
    assert decay_rate_db_per_s(x, SR) == pytest.approx(want, rel=0.05)


def test_decay_rate_errors_and_a_rising_level():
    with pytest.raises(ValueError, match="too short"):
        decay_rate_db_per_s(np.ones(SR), SR)  # 1 s: no note-off at 3 s
    with pytest.raises(ValueError, match="silent"):
        decay_rate_db_per_s(np.r_[np.zeros(3 * SR), np.ones(SR)], SR)
    t = np.arange(4 * SR) / SR
    assert decay_rate_db_per_s(np.sin(2 * np.pi * 250 * t) * (1 + t), SR) < 0  # growing after the note-off


def test_pairwise_logmel_distance():
    a, b = _note(40, 0.5, 0.3, 0.05), _note(47, 0.5, 0.3, 0.05)
    assert mean_pairwise_logmel_distance([a, a, a], SR) == pytest.approx(0.0, abs=1e-9)
    assert mean_pairwise_logmel_distance([a, 0.1 * a], SR) == pytest.approx(0.0, abs=1e-6)  # level-free
    d_ab = mean_pairwise_logmel_distance([a, b], SR)
    assert d_ab > 0.1
    # the mean over the three pairs of (a, a, b): two of them are (a, b)
    assert mean_pairwise_logmel_distance(np.stack([a, a, b]), SR) == pytest.approx(2 * d_ab / 3, rel=1e-5)
    with pytest.raises(ValueError):
        mean_pairwise_logmel_distance([a], SR)
    with pytest.raises(ValueError):
        mean_pairwise_logmel_distance([a, b[:-10]], SR)


NOTE_OFF, SECONDS = 0.3, 0.5


@pytest.fixture(scope="module")
def note_set(tmp_path_factory):
    """A note set in rtgan.data.notes' layout, 0.5 s notes held 0.3 s: two programs x two pitches x two
    velocities in the test split (one pair in train), 'dry' released fast, 'reverb' with a slow tail."""
    from rtgan.data.notes import NoteSetConfig
    root = tmp_path_factory.mktemp("notes")
    cfg = NoteSetConfig(programs=(32, 33), pitches=(40, 52), seconds=SECONDS, note_seconds=NOTE_OFF)
    (root / "notes_config.json").write_text(json.dumps({"target": {"config": cfg.to_dict()}}))
    rows = []
    for program, split in ((32, "test"), (33, "test"), (34, "train")):
        for pitch in (40, 52):
            for velocity in (80, 110):
                for label in ("dry", "reverb"):
                    tau = (0.004 + 0.002 * (program - 32)) if label == "dry" else (0.2 + 0.05 * (program - 32))
                    x = _note(pitch, SECONDS, NOTE_OFF, tau, gain=0.3 * velocity / 127, harmonics=4 + program - 32)
                    rel = f"{label}/p{program:03d}_n{pitch:03d}_v{velocity:03d}.flac"
                    (root / label).mkdir(exist_ok=True)
                    sf.write(root / rel, x, SR, subtype="PCM_24")
                    rows.append({"path": rel, "program": program, "pitch": pitch, "velocity": velocity,
                                 "label": label, "split": split, "sample_rate": SR, "peak_dbfs": -10.0})
    (root / "notes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_evaluate_notes_end_to_end_with_an_untrained_tiny_model(note_set):
    _torchcrepe_or_skip()
    from rtgan.evaluate_notes import evaluate_notes, format_table
    from rtgan.models import registry
    torch.manual_seed(0)
    model = registry.build("reverbsynth", "tiny")
    res = evaluate_notes(model, note_set, split="test", seeds=(0, 1), progress=False)
    d = json.loads(res.to_json(model="reverbsynth"))
    assert d["model"] == "reverbsynth"
    for key in ("ci", "summary", "settings", "table", "timing", "pitches", "notes"):
        assert key in d
    t = d["table"]
    assert set(t) == {"generated", "real", "decay_difference", "diversity_ratio"}
    assert set(t["real"]) == set(t["generated"]) == {"dry", "reverb"}
    for stats in (*t["real"].values(), *t["generated"].values()):
        for key in ("notes", "pitch_accuracy", "pitch_accuracy_all", "abs_cents_median", "voiced_fraction",
                    "decay_db_per_s", "decay_median_db_per_s", "decay_measured", "diversity"):
            assert key in stats
    assert d["settings"]["test_pitches"] == [40, 52] and d["settings"]["note_off_s"] == NOTE_OFF
    assert t["real"]["dry"]["notes"] == 8 and t["generated"]["dry"]["notes"] == 4  # 2 pitches x 2 seeds
    # the estimator on the data: every real note within 50 cents
    assert d["summary"]["pitch_accuracy"]["real"] == {"dry": 1.0, "reverb": 1.0, "all": 1.0}
    # the data's reverb decays measurably slower than its dry release
    real = t["decay_difference"]["real"]
    assert real["measurably_slower"] and real["reverb_slower_pitches"] == 2
    assert t["real"]["reverb"]["decay_median_db_per_s"] < 60 < t["real"]["dry"]["decay_median_db_per_s"]
    # the tiny model's 64 ms notes end before the note-off: no decay, said so (not a number)
    assert t["generated"]["dry"]["decay_measured"] == 0 and t["decay_difference"]["generated"] is None
    assert t["real"]["dry"]["diversity"]["mean"] > 0 and t["generated"]["dry"]["diversity"]["mean"] >= 0
    assert len(d["notes"]) == 16 + 8 and len(d["pitches"]) == 4
    assert "real dry" in format_table(res)


def test_eval_command_branches_to_the_note_evaluator(note_set, tmp_path, capsys):
    _torchcrepe_or_skip()
    from rtgan.checkpoint import save_generator
    from rtgan.cli.main import main
    from rtgan.models import registry
    torch.manual_seed(1)
    ckpt = save_generator(tmp_path / "rs.safetensors", registry.build("reverbsynth", "tiny"), {"steps": 0})
    out, png = tmp_path / "eval.json", tmp_path / "ifmel.png"
    assert main(["eval", "--model", "reverbsynth", "--checkpoint", str(ckpt), "--data", str(note_set), "--split",
                 "test", "--seeds", "2", "--crepe-model", "tiny", "--json", str(out), "--png", str(png), "-q"]) == 0
    d = json.loads(out.read_text())
    assert d["model"] == "reverbsynth" and d["split"] == "test" and d["settings"]["crepe"]["model"] == "tiny"
    assert d["summary"]["pitch_accuracy"]["real"]["all"] == 1.0
    assert png.read_bytes()[:4] == b"\x89PNG"
    # a folder that is not a note set: one line
    assert main(["eval", "--model", "reverbsynth", "--checkpoint", str(ckpt), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a note set" in err and len(err.strip().splitlines()) == 1
