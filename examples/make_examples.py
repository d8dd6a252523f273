"""Re-create the example clips in this folder from a full corpus build.

    python examples/make_examples.py /path/to/corpus
    python examples/make_examples.py --band-limited     # only the *_16k.flac step, no corpus needed

Takes audio from the corpus's TEST split only (48 kHz mono 16-bit FLAC clips
made by ``rtgan data build --size full``) and writes three ~4 s FLACs plus
README.md next to this script, then a band-limited 16 kHz copy of each
(``<name>_16k.flac``, see :func:`band_limited`): the kind of input
``sr-hifigan`` is for. The clips:

* music: the 4 s window (0.5 s grid) of a held-out Wesnoth track whose quietest
  50 ms frames are loudest (continuous orchestral content, no fades/silence);
* drums: a 4 s, 120 BPM groove laid out from whole one-shot hits of the
  held-out Hydrogen kit (the kit ships single hits, no loops);
* speech: two whole held-out KLettres words of one voice, back to back
  (each recording is ~2 s).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from rtgan.data.dataset import load_manifest

SR = 48000
#: Rate of the band-limited copies (content up to 8 kHz, what a 16 kHz source carries).
LOW_SR = 16000
LOW_SUFFIX = "_16k"
HERE = Path(__file__).resolve().parent

MUSIC_TRACK = "nunc_dimittis"
DRUM_KIT = "BJA_Pacific"
SPEECH_VOICE, SPEECH_WORDS = "en", ("car", "dog")
# (time in s, file stem in the kit, gain): 2 bars of 4/4 at 120 BPM
GROOVE = (
    [(t * 0.25, "HH_08" if t % 2 == 0 else "HH_06", 0.8) for t in range(16) if t not in (7, 15)]
    + [(0.0, "BD_08", 1.0), (0.75, "BD_06", 1.0), (1.25, "BD_07", 1.0), (2.0, "BD_08", 1.0),
       (2.75, "BD_06", 1.0), (3.25, "BD_07", 1.0)]
    + [(0.5, "SN_08", 1.0), (1.5, "SN_08", 1.0), (2.5, "SN_08", 1.0), (3.5, "SN4_06", 1.0)]
    + [(1.75, "HH2_07", 0.7), (3.75, "TM_08", 1.0)]
)


def _test_rows(rows, source, key):
    out = [r for r in rows if r["split"] == "test" and r["source"] == source and r["split_key"] == key]
    if not out:
        raise SystemExit(f"{source}/{key} is not in the test split of this corpus")
    return out


def _frame_rms_db(x, n=2400):
    f = x[: len(x) // n * n].reshape(-1, n)
    return 20 * np.log10(np.sqrt((f.astype(np.float64) ** 2).mean(axis=1)) + 1e-12)


def music(corpus: Path, rows):
    best = None
    for r in _test_rows(rows, "wesnoth-1.16-music", MUSIC_TRACK):
        x, sr = sf.read(corpus / r["path"], dtype="float32")
        assert sr == SR
        for off in range(0, len(x) - 4 * SR + 1, SR // 2):
            score = np.percentile(_frame_rms_db(x[off: off + 4 * SR]), 5)
            if best is None or score > best[0]:
                best = (score, r, off, x[off: off + 4 * SR])
    _, r, off, seg = best
    name = f"music_wesnoth_{MUSIC_TRACK}.flac"
    sf.write(HERE / name, seg, SR, subtype="PCM_16")
    t0 = r["start_seconds"] + off / SR
    return name, r, [f"`{r['original_path']}` from {t0:.3f} s to {t0 + 4:.3f} s"]


def drums(corpus: Path, rows):
    by_stem = {Path(r["original_path"]).stem: r for r in _test_rows(rows, "hydrogen-drumkits", DRUM_KIT)}
    out = np.zeros(4 * SR, dtype=np.float64)
    used = {}
    for t, stem, gain in GROOVE:
        r = by_stem[stem]
        x, _ = sf.read(corpus / r["path"], dtype="float64")
        i = int(round(t * SR))
        n = min(len(x), len(out) - i)
        out[i: i + n] += gain * x[:n]
        used.setdefault(stem, (r, []))[1].append(t)
    peak = np.abs(out).max()
    if peak > 0.89:
        out *= 0.89 / peak
    name = f"drums_{DRUM_KIT}.flac"
    sf.write(HERE / name, out.astype(np.float32), SR, subtype="PCM_16")
    lines = [f"`{r['original_path']}` (whole hit, {r['duration_seconds']:.3f} s) at "
             f"{', '.join(f'{t:.2f}' for t in ts)} s" for _, (r, ts) in sorted(used.items())]
    return name, next(iter(used.values()))[0], lines


def speech(corpus: Path, rows):
    rs = _test_rows(rows, "klettres-data", SPEECH_VOICE)
    parts, lines = [], []
    t = 0.0
    for w in SPEECH_WORDS:
        r = next(r for r in rs if Path(r["original_path"]).stem == w)
        x, _ = sf.read(corpus / r["path"], dtype="float32")
        parts.append(x)
        lines.append(f"`{r['original_path']}` (whole file, {r['duration_seconds']:.3f} s) at {t:.3f} s")
        t += len(x) / SR
    name = f"speech_klettres_{SPEECH_VOICE}_{'-'.join(SPEECH_WORDS)}.flac"
    sf.write(HERE / name, np.concatenate(parts), SR, subtype="PCM_16")
    return name, rs[0], lines


def band_limited(folder: Path = HERE) -> list[Path]:
    """Write ``<name>_16k.flac`` beside every 48 kHz ``<name>.flac`` in ``folder``.

    Downsampled with soxr (``soxr.resample(y, 48000, 16000, quality="VHQ")``: linear phase,
    flat to ~7.6 kHz, alias rejection ~175 dB) and stored as 16-bit FLAC. Needs only the
    48 kHz examples (no corpus) and ``pip install soxr``. Returns the files written.
    """
    try:
        import soxr
    except ImportError as e:
        raise SystemExit("the band-limited examples need soxr: pip install soxr") from e
    written = []
    for src in sorted(folder.glob("*.flac")):
        if src.stem.endswith(LOW_SUFFIX):
            continue
        y, sr = sf.read(src, dtype="float64", always_2d=True)
        if sr != SR:
            raise SystemExit(f"{src} is at {sr} Hz, expected {SR} Hz")
        low = soxr.resample(y, SR, LOW_SR, quality="VHQ")
        peak = np.abs(low).max()
        if peak > 32767 / 32768:  # resampling can overshoot a near-full-scale peak
            low *= (32767 / 32768) / peak
        dst = folder / f"{src.stem}{LOW_SUFFIX}.flac"
        sf.write(dst, low.astype(np.float32), LOW_SR, subtype="PCM_16")
        written.append(dst)
    return written


BAND_LIMITED_NOTE = [
    "## Band-limited copies (`*_16k.flac`)",
    "",
    f"Each clip also comes at {LOW_SR} Hz (`<name>{LOW_SUFFIX}.flac`, 16-bit FLAC): the 48 kHz clip downsampled",
    f"with soxr (`soxr.resample(y, {SR}, {LOW_SR}, quality=\"VHQ\")`), so it holds nothing above 8 kHz, the",
    "input `sr-hifigan` is made for. `rtgan render` resamples it back to 48 kHz and the model adds the",
    "missing band; compare the spectrograms:",
    "",
    "```bash",
    "rtgan render examples/music_wesnoth_nunc_dimittis_16k.flac music_superres.wav --spectrogram",
    "```",
    "",
    "Re-create them from the 48 kHz clips alone (no corpus needed) with",
    "`python examples/make_examples.py --band-limited`.",
    "",
]


def main(corpus: Path) -> None:
    rows = load_manifest(corpus)
    entries = [music(corpus, rows), drums(corpus, rows), speech(corpus, rows)]
    md = ["# Example clips", "",
          "Three short clips from the **test split** of the rtgan corpus (`rtgan data build --size full`),",
          "48 kHz, mono, 16-bit FLAC: decoded from the Debian package, channels averaged, resampled with",
          "`scipy.signal.resample_poly` (exactly the corpus clips). Re-create them with",
          "`python examples/make_examples.py CORPUS_DIR`.", ""]
    for name, r, lines in entries:
        info = sf.info(HERE / name)
        md += [f"## `{name}`", "",
               f"- domain: {r['domain']}; source `{r['source']}`; split key `{r['split_key']}` (test split)",
               f"- Debian package: `{r['package']}` {r['package_version']}",
               f"- license: {r['license']}",
               f"- length: {info.frames / info.samplerate:.3f} s at {info.samplerate} Hz",
               "- made from:"] + [f"  - {ln}" for ln in lines] + [""]
    md += ["Notes: the music clip is one continuous excerpt. The drum clip is a groove laid out from whole",
           "one-shot hits of the kit (it ships single hits, not loops), hi-hats at gain 0.8 and the open hat",
           "at 0.7, mixed, cut at 4 s (ringing tails of the last hits are cut) and scaled by one gain so the",
           "peak is about -1 dBFS. The speech clip is two whole single-word recordings of one voice,",
           "back to back (each recording is about 2 s).", ""]
    band_limited()
    md += BAND_LIMITED_NOTE
    (HERE / "README.md").write_text("\n".join(md))


if __name__ == "__main__":
    if sys.argv[1:] == ["--band-limited"]:
        for path in band_limited():
            print(f"wrote {path}")
    else:
        main(Path(sys.argv[1] if len(sys.argv) > 1 else "/work/corpus"))
