"""``rtgan data build``, ``data notes``, ``data pairs``: build the real-audio corpus and the rendered sets."""
from __future__ import annotations

import sys
from pathlib import Path


def add_parsers(sub) -> None:
    """The ``data`` command group and its ``build`` command."""
    from ..data.corpus.debs import default_cache_dir

    data = sub.add_parser("data", help="corpus tools").add_subparsers(dest="data_command", required=True)
    b = data.add_parser("build", help="build the real-audio corpus from Debian packages")
    b.add_argument("--out", required=True, help="output directory")
    b.add_argument("--size", choices=("small", "full"), default="small",
                   help="small: a few minutes of audio, for CI; full: every file, ~7 h (default: %(default)s)")
    b.add_argument("--sample-rate", type=int, default=48000, help="target sample rate in Hz (default: %(default)s)")
    b.add_argument("--cache-dir", default=str(default_cache_dir()), metavar="DIR",
                   help="where downloaded .deb files and extracted packages are kept between builds, about 1.1 GB "
                        "for --size full; delete it to free the space (default: $RTGAN_CACHE_DIR or "
                        "~/.cache/rtgan, here %(default)s)")
    b.add_argument("--debs", metavar="DIR",
                   help="directory of .deb files (default: CACHE_DIR/debs; apt-get download when missing)")
    b.add_argument("--with-midi", action="store_true",
                   help="also render music21's corpus with FluidSynth (source music21-fluidsynth; needs "
                        "apt-get install fluidsynth fluid-soundfont-gm, pip install mido; audio < ~11 kHz, "
                        "for 22.05 kHz vocoders)")
    from ..data.sources import DEFAULT_SOURCES, SOURCES
    extra = [n for n in SOURCES if n not in DEFAULT_SOURCES]
    b.add_argument("--add-source", action="append", default=[], choices=extra, metavar="NAME",
                   help="also build this Debian source, which the default corpus leaves out (repeatable; "
                        f"choices: {', '.join(extra)}). The default sources and their splits are unchanged")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    n = data.add_parser("notes", help="render the bass-note set of note models (reverbsynth) with FluidSynth",
                        description="Every General MIDI bass program (32-39) x pitch (MIDI 28-64) x velocity "
                                    "(80, 110), 4 s at 16 kHz, dry and through pedalboard's Reverb; split by "
                                    "(program, pitch). Needs apt-get install fluidsynth fluid-soundfont-gm and "
                                    "pip install mido pedalboard. About 1200 files, 72 MB, a minute or two.")
    n.add_argument("--out", required=True, help="output directory (a complete set there is kept as is)")
    n.add_argument("--workers", type=int, default=2, help="rendering processes (default: %(default)s)")
    n.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    pr = data.add_parser("pairs", help="render instrument-transfer pairs (piano -> violin, flute, guitar) with "
                                       "FluidSynth",
                         description="music21 pieces exported to MIDI and rendered by FluidSynth once as acoustic "
                                     "grand piano (input) and once per target program (24 nylon guitar, 40 violin, "
                                     "73 flute), sample-aligned, 16 kHz mono, at most 30 s per piece; split by piece "
                                     "(Alahi et al. 2020, Sec. III-B). Needs apt-get install fluidsynth "
                                     "fluid-soundfont-gm and pip install mido music21. Prints the test split's "
                                     "input-vs-target SNR baseline per target program.")
    pr.add_argument("--out", required=True, help="output directory (a complete set there is kept as is)")
    pr.add_argument("--size", choices=("small", "full"), default="full",
                    help="small: 4 short pieces, for CI; full: music21's first 300 pieces over all composers, "
                         "minus scores that parse slowly (>1 MB MusicXML, >50 KB ABC/Humdrum): 247 pieces, "
                         "~10 min (default: %(default)s)")
    pr.add_argument("--max-pieces", type=int, default=0, metavar="N",
                    help="keep only the first N pieces of the selection (default: all)")
    pr.add_argument("--max-seconds", type=float, default=None, metavar="S",
                    help="audio kept per piece, from its start (default: 30)")
    pr.add_argument("--workers", type=int, default=2, help="rendering processes (default: %(default)s)")
    pr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    pk = data.add_parser("pack", help="a size-bounded copy of a corpus, to carry to a machine that cannot build one",
                         description="Copy a subset of a corpus into a new corpus folder that rtgan train --data reads "
                                     "unchanged: each split gets a share of the budget (train 85 %, val 15 %), "
                                     "filled round-robin over its voices and pieces (one clip of each in turn), "
                                     "as 16-bit FLAC. For a lent GPU, whose command carries at most 64 MiB and "
                                     "reaches no network (README, 'Training on a lent GPU').")
    pk.add_argument("corpus", help="source corpus folder (from 'rtgan data build')")
    pk.add_argument("--out", required=True, help="the pack's folder (new, or empty)")
    pk.add_argument("--max-mib", type=float, required=True, metavar="MIB",
                    help="size budget of the pack's audio, MiB (2^20 bytes)")
    pk.add_argument("--splits", nargs="+", default=["train", "val"], choices=("train", "val", "test"),
                    help="splits to pack (default: %(default)s)")
    pk.add_argument("--domain", choices=("music", "speech"), default=None,
                    help="keep only this domain (default: both)")
    pk.add_argument("--max-seconds", type=float, default=None, metavar="S",
                    help="cut each clip to its first S seconds, so more voices and pieces fit (default: whole clips)")
    pk.add_argument("--min-bandwidth", type=float, default=0.0, metavar="HZ",
                    help="keep clips whose measured bandwidth is at least HZ, as rtgan train --min-bandwidth "
                         "(sr-hifigan trains on >= 16000; default: %(default)s)")
    pk.add_argument("--seed", type=int, default=0, help="order of groups and clips (default: %(default)s)")
    pk.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def cmd_data_pack(args) -> int:
    from ..data.pack import pack_corpus
    meta = pack_corpus(args.corpus, args.out, args.max_mib, tuple(args.splits), args.domain, args.max_seconds,
                       args.min_bandwidth, args.seed, progress=not args.quiet)
    parts = [f"{s} {v['clips']} clips of {v['groups']} groups, {v['seconds'] / 60:.1f} min, {v['mib']:.1f} MiB"
             for s, v in meta["splits"].items()]
    print(f"{args.out}: {'; '.join(parts)}")
    return 0


def cmd_data_pairs(args) -> int:
    from ..data.common import SPLITS
    from ..data.pairs import PROGRAM_NAMES, PairSetConfig, build_pairs, input_target_snr, read_manifest
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.max_pieces < 0:
        raise ValueError(f"--max-pieces must be at least 0, got {args.max_pieces}")
    kw = {"size": args.size, "max_pieces": args.max_pieces}
    if args.max_seconds is not None:
        kw["max_seconds"] = args.max_seconds
    cfg = PairSetConfig(**kw)
    out = build_pairs(Path(args.out), cfg, progress=not args.quiet, workers=args.workers)
    rows = read_manifest(out)
    parts = []
    for s in SPLITS:
        mine = [r for r in rows if r["split"] == s]
        parts.append(f"{s} {len(mine)} pieces {sum(r['seconds'] for r in mine) / 60:.1f} min")
    print(f"{out}: {len(rows)} pieces x {len(cfg.programs)} programs ({'; '.join(parts)})")
    if not any(r["split"] == "test" for r in rows):
        print("input-vs-target SNR: no test pieces")
        return 0
    print(f"input-vs-target SNR on the test split (program {cfg.input_program} "
          f"{PROGRAM_NAMES.get(cfg.input_program, '')} as the estimate, 8192-sample crops; seed: -4.70 +- 3.23 dB):")
    for p in cfg.target_programs:
        b = input_target_snr(out, "test", p)
        print(f"  {p:3d} {PROGRAM_NAMES.get(p, ''):24s} {b['mean']:6.2f} +- {b['std']:.2f} dB ({b['n']} crops; "
              f"input {b['level_db']:+.1f} dB against the target)")
    return 0


def cmd_data_notes(args) -> int:
    from ..data.notes import build_notes, read_manifest
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    out = build_notes(Path(args.out), progress=not args.quiet, workers=args.workers)
    rows = read_manifest(out)
    per_split = {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")}
    print(f"{out}: {len(rows)} files ({', '.join(f'{k} {v}' for k, v in per_split.items())})")
    return 0


def cmd_data_build(args) -> int:
    from ..data.corpus import build_corpus, build_summary
    cache_dir = Path(args.cache_dir).expanduser()
    debs_dir = Path(args.debs).expanduser() if args.debs else None
    try:
        from ..data.sources import DEFAULT_SOURCES
        sources = [*DEFAULT_SOURCES, *args.add_source] if args.add_source else None
        manifest = build_corpus(Path(args.out), size=args.size, sample_rate=args.sample_rate,
                                debs_dir=debs_dir, progress=not args.quiet, sources=sources,
                                with_midi=args.with_midi, cache_dir=cache_dir)
    except RuntimeError as e:
        from ..data.midi.tools import MissingToolError
        if not isinstance(e, MissingToolError):
            raise
        print(f"rtgan data build: error: {e}", file=sys.stderr)
        return 2
    print(build_summary(manifest.parent, cache_dir, debs_dir))
    return 0
