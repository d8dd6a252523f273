"""Tests for the opt-in music21-fluidsynth corpus source (rtgan.data.midi)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from rtgan.data.common import SPLITS
from rtgan.data.corpus import build_corpus, manifest_hash
from rtgan.data.midi.export import export_midi, rewrite_programs
from rtgan.data.midi.pieces import (FULL_MAX_PIECES, GM_PROGRAMS, PROGRAMS_PER_PIECE, SMALL_PIECES_PER_SPLIT,
                                    corpus_root, order_pieces, programs_for, select_pieces)
from rtgan.data.midi.render import RENDER_SAMPLE_RATE
from rtgan.data.midi.tools import (DEFAULT_SOUNDFONT, LICENSE, SOURCE_NAME, MidiSourceError, MissingToolError,
                                   check_tools, find_fluidsynth, music21_version)
from rtgan.data.dataset import load_manifest
from rtgan.data.sources import DEFAULT_SOURCES, OPT_IN_SOURCES, SOURCES, get_source

pytest.importorskip("music21")
mido = pytest.importorskip("mido")

PIECE = "bach/bwv66.6.mxl"  # a four-part chorale, ~30 s, bundled with music21
HAS_FLUIDSYNTH = shutil.which("fluidsynth") is not None and DEFAULT_SOUNDFONT.is_file()


def _fake_tools(monkeypatch, tmp_path):
    """Pretend fluidsynth and the soundfont are installed (for tests that never render)."""
    sf2 = tmp_path / "fake.sf2"
    sf2.write_bytes(b"RIFF")
    monkeypatch.setenv("RTGAN_SOUNDFONT", str(sf2))
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which",
                        lambda name, *a, **k: "/nonexistent/fluidsynth" if name == "fluidsynth"
                        else real_which(name, *a, **k))


def test_registry_opt_in():
    name = SOURCE_NAME
    assert name not in SOURCES and name not in DEFAULT_SOURCES and name in OPT_IN_SOURCES
    with pytest.raises(NotImplementedError, match="with_midi"):
        get_source(name)
    src = get_source(name, opt_in=True)
    assert src.package == "music21" and src.domain == "music" and src.license == LICENSE
    assert src.split_key(f"{PIECE}/program-048") == PIECE


def test_piece_selection_deterministic():
    small, small_split = select_pieces("small")
    full, full_split = select_pieces("full")
    assert (small, small_split) == select_pieces("small")
    assert (full, full_split) == select_pieces("full")
    assert len(full) == len(set(full)) == FULL_MAX_PIECES
    assert len(small) == sum(SMALL_PIECES_PER_SPLIT.values())
    assert set(small) <= set(full) and all(full_split[p] == small_split[p] for p in small)
    assert set(small_split.values()) == set(SPLITS)
    counts = {s: sum(v == s for v in full_split.values()) for s in SPLITS}
    assert counts["train"] > 0.7 * len(full) and min(counts.values()) > 0.05 * len(full)
    assert all(p.rsplit(".", 1)[-1] != "rntxt" for p in full)
    # round robin over composer folders: the first pieces come from distinct folders
    heads = [p.split("/")[0] for p in full[:20]]
    assert len(set(heads)) == 20
    # programs: fixed per piece, distinct, from the palette
    for p in full[:30]:
        progs = programs_for(p)
        assert progs == programs_for(p) and len(set(progs)) == PROGRAMS_PER_PIECE
        assert set(progs) <= set(GM_PROGRAMS)
    assert len({programs_for(p) for p in full}) > 5


def test_order_pieces_round_robin():
    pieces = [f"b/{i}.krn" for i in range(5)] + ["a/x.mxl", "c/y.abc", "c/z.abc"]
    out = order_pieces(pieces)
    assert sorted(out) == sorted(pieces) and out == order_pieces(list(reversed(pieces)))
    assert [p.split("/")[0] for p in out[:3]] == ["a", "b", "c"]


def _programs_by_channel(path: Path) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for tr in mido.MidiFile(str(path)).tracks:
        for m in tr:
            if m.type == "program_change":
                out.setdefault(m.channel, set()).add(m.program)
    return out


def test_export_and_rewrite_programs(tmp_path):
    base = export_midi(corpus_root() / PIECE, tmp_path / "base.mid")
    m = mido.MidiFile(str(base))
    assert 10 < m.length < 120
    notes = [x for x in m.tracks[0] if x.type == "note_on" and x.velocity > 0]
    assert len(notes) > 50
    for prog in (48, 73):
        out = rewrite_programs(base, tmp_path / f"p{prog}.mid", prog)
        progs = _programs_by_channel(out)
        assert set(progs) == set(range(16)) - {9} and all(v == {prog} for v in progs.values())
        assert len([x for x in mido.MidiFile(str(out)).tracks[0] if x.type == "note_on" and x.velocity > 0]) \
            == len(notes)
    cut = mido.MidiFile(str(rewrite_programs(base, tmp_path / "cut.mid", 0, max_seconds=4.0)))
    t, last = 0.0, 0.0
    for x in cut:
        t += x.time
        last = t if not x.is_meta else last
    assert last == pytest.approx(4.0, abs=0.01)  # all-notes-off at the cut ...
    assert cut.length == pytest.approx(5.0, abs=0.01)  # ... then 1 s for the release
    with pytest.raises(ValueError):
        rewrite_programs(base, tmp_path / "bad.mid", 128)


def test_rewrite_keeps_drums_and_drops_bank_select(tmp_path):
    mid = mido.MidiFile(type=1)
    for ch, prog in ((0, 5), (9, 3)):
        tr = mido.MidiTrack([mido.Message("control_change", channel=ch, control=0, value=1),
                             mido.Message("program_change", channel=ch, program=prog),
                             mido.Message("note_on", channel=ch, note=60, velocity=90),
                             mido.Message("program_change", channel=ch, program=prog + 1, time=240),
                             mido.Message("note_off", channel=ch, note=60, time=240)])
        mid.tracks.append(tr)
    mid.save(str(tmp_path / "in.mid"))
    out = rewrite_programs(tmp_path / "in.mid", tmp_path / "out.mid", 24)
    progs = _programs_by_channel(out)
    assert progs[0] == {24} and progs[9] == {3, 4}
    banks = [x for x in mido.MidiFile(str(out)).tracks[0] if x.type == "control_change" and x.control == 0]
    assert [x.channel for x in banks] == [9]


def test_missing_fluidsynth_message(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(MissingToolError, match="apt-get install fluidsynth fluid-soundfont-gm"):
        find_fluidsynth()
    # the build stops before any work (no .deb download, no output)
    with pytest.raises(MissingToolError, match="fluidsynth"):
        build_corpus(tmp_path / "c", sources=[SOURCE_NAME], with_midi=True, progress=False)
    assert not (tmp_path / "c" / "manifest.jsonl").exists()
    from rtgan.cli.main import main
    assert main(["data", "build", "--out", str(tmp_path / "d"), "--with-midi", "-q"]) == 2
    # a missing soundfont is named too
    monkeypatch.undo()
    monkeypatch.setattr(shutil, "which", lambda *a, **k: "/usr/bin/fluidsynth")
    monkeypatch.setenv("RTGAN_SOUNDFONT", str(tmp_path / "none.sf2"))
    with pytest.raises(MissingToolError, match="none.sf2.*fluid-soundfont-gm"):
        find_fluidsynth()


def test_missing_mido_message(monkeypatch, tmp_path):
    import sys
    _fake_tools(monkeypatch, tmp_path)
    monkeypatch.setitem(sys.modules, "mido", None)  # import mido -> ImportError
    with pytest.raises(MissingToolError, match="pip install mido"):
        check_tools()


def test_cli_flag_parses():
    from rtgan.cli.main import build_parser
    p = build_parser()
    assert p.parse_args(["data", "build", "--out", "x", "--with-midi"]).with_midi is True
    assert p.parse_args(["data", "build", "--out", "x"]).with_midi is False


def test_malformed_inputs_skipped_with_warning(monkeypatch, tmp_path, caplog):
    _fake_tools(monkeypatch, tmp_path)
    bad_xml = tmp_path / "in" / "broken.musicxml"
    bad_xml.parent.mkdir()
    bad_xml.write_text("<score-partwise><part id='P1'><measure number='1'><note>")
    bad_mid = tmp_path / "in" / "garbage.mid"
    bad_mid.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\xff\xff")
    with pytest.raises(MidiSourceError, match="garbage.mid"):
        export_midi(bad_mid, tmp_path / "x.mid")
    with caplog.at_level(logging.WARNING, logger="rtgan.data.corpus"):
        m = build_corpus(tmp_path / "c", size="small", sample_rate=22050, clip_seconds=2.0,
                         sources=[SOURCE_NAME], with_midi=True, progress=False, workers=1,
                         midi_pieces=[str(bad_xml), str(bad_mid)])
    msgs = [r.getMessage() for r in caplog.records]
    assert any("broken.musicxml" in s and "cannot parse score" in s for s in msgs)
    assert any("garbage.mid" in s and "malformed MIDI" in s for s in msgs)
    assert m.read_text() == ""
    meta = json.loads((tmp_path / "c" / "corpus.json").read_text())
    assert meta["files"]["skipped"] == 2 * PROGRAMS_PER_PIECE and meta["num_clips"] == 0


@pytest.mark.skipif(not HAS_FLUIDSYNTH, reason="needs fluidsynth and fluid-soundfont-gm "
                                                "(apt-get install fluidsynth fluid-soundfont-gm)")
def test_render_end_to_end(tmp_path):
    out = tmp_path / "c"
    kw = dict(size="small", sample_rate=22050, clip_seconds=2.0, sources=[SOURCE_NAME], with_midi=True,
              progress=False, workers=1, midi_pieces=[PIECE])
    m = build_corpus(out, **kw)
    rows = load_manifest(out)
    progs = programs_for(PIECE)
    assert {r["original_path"] for r in rows} == {f"{PIECE}/program-{p:03d}" for p in progs}
    assert len(rows) == 2 * len(progs)  # small: 2 clips per render
    assert len({r["split"] for r in rows}) == 1
    for r in rows:
        assert r["source"] == SOURCE_NAME and r["package"] == "music21" and r["domain"] == "music"
        assert r["package_version"] == music21_version() and r["license"] == LICENSE
        assert r["split_key"] == PIECE and r["sample_rate"] == 22050
        assert r["original_sample_rate"] == RENDER_SAMPLE_RATE and r["original_channels"] == 2
        assert r["path"].startswith(f"{r['split']}/{SOURCE_NAME}/bach/")
        info = sf.info(str(out / r["path"]))
        assert info.samplerate == 22050 and info.channels == 1 and info.frames == r["num_samples"] == 44100
        assert 1000 < r["bandwidth_hz"] <= 11025 and r["rms_dbfs"] > -50
    meta = json.loads((out / "corpus.json").read_text())
    assert meta["sources"][SOURCE_NAME]["num_pieces"] == 1
    # re-run: nothing rendered again, same manifest
    h = manifest_hash(m)
    build_corpus(out, **kw)
    meta2 = json.loads((out / "corpus.json").read_text())
    assert meta2["files"]["done"] == 0 and meta2["files"]["cached"] == len(progs)
    assert manifest_hash(m) == h


def test_a_render_that_never_ends_is_stopped_after_the_midi_and_its_tail(monkeypatch, tmp_path):
    """FluidSynth 2.3 kept rendering some music21 pieces forever (14 GB in 8 minutes): render_midi stops it."""
    mido = pytest.importorskip("mido")
    sf = pytest.importorskip("soundfile")
    from rtgan.data.midi import render as render_mod
    # a stand-in fluidsynth that writes a valid WAV header and then silence forever, 10x real time
    fake = tmp_path / "fluidsynth"
    fake.write_text("#!/usr/bin/env python3\n"
                    "import sys, time, soundfile as sf, numpy as np\n"
                    "out = sys.argv[sys.argv.index('-F') + 1]\n"
                    "rate = int(sys.argv[sys.argv.index('-r') + 1])\n"
                    "with sf.SoundFile(out, 'w', rate, 2, 'PCM_16') as f:\n"
                    "    while True:\n"
                    "        f.write(np.zeros((rate // 10, 2))); f.flush(); time.sleep(0.01)\n")
    fake.chmod(0o755)
    sf2 = tmp_path / "x.sf2"
    sf2.write_bytes(b"\0")
    monkeypatch.setattr(render_mod, "find_fluidsynth", lambda soundfont=None: (str(fake), sf2))
    mid = mido.MidiFile(ticks_per_beat=480)
    mid.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=0),
                                      mido.Message("note_off", note=60, velocity=0, time=960)]))  # 1 s at 120 bpm
    mid.save(tmp_path / "in.mid")
    assert render_mod.midi_seconds(tmp_path / "in.mid") == 1.0
    wav = render_mod.render_midi(tmp_path / "in.mid", tmp_path / "out.wav", 8000, timeout=60)
    seconds = sf.info(str(wav)).duration
    assert 1.0 + render_mod.RELEASE_TAIL_SECONDS <= seconds < 1.0 + render_mod.RELEASE_TAIL_SECONDS + 5
