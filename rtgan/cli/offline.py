"""``rtgan render`` and ``rtgan bench``: process a file offline through the block engine; time the engine."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from . import common
from .common import block_range, model_args, samples


#: Left context (input samples) above which ``rtgan bench`` leaves overlap-save out of its default modes.
OVERLAP_SAVE_MAX_CONTEXT = 32768


def add_parsers(sub) -> None:
    """The ``render`` and ``bench`` commands."""
    from ..engine.bench import BLOCK_SIZES
    from ..engine.stream import MODES

    r = sub.add_parser("render", help="process an audio file offline through the block engine",
                       description="Vocoders (voc-melgan, voc-multiscale) also read and write mels: OUTPUT.npy "
                                   "writes the mel of INPUT as the model's front end computes it; INPUT.npy "
                                   "renders a saved mel ((n_mels, frames) or (channels, n_mels, frames) float32 "
                                   "log10 mel magnitudes, floor -5; see rtgan.engine.vocode).")
    r.add_argument("input", help="input audio file (anything soundfile reads), or a saved mel (.npy) for a vocoder")
    r.add_argument("output", help="output file (format from the extension; never the input), or .npy: the "
                                  "input's mel (vocoders)")
    model_args(r, 4096)
    r.add_argument("--mode", choices=MODES, default="stateful",
                   help="streaming mode: stateful (cached convs), overlap-save, ola (default: %(default)s)")
    r.add_argument("--spectrogram", nargs="?", const="", metavar="PNG",
                   help="also write before/after spectrograms (input at the output rate, output) to this PNG; "
                        "without a path, OUTPUT's name with _spectrogram.png beside it (default: none; needs "
                        "matplotlib)")
    r.add_argument("--wet", type=float, default=1.0,
                   help="models whose output is a wet signal (reverb-*): the file holds dry + WET x output, "
                        "0 to 1, with the tail rendered after the input ends (default: %(default)s)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    be = sub.add_parser("bench", help="latency (samples, ms) and compute time per block, RTF, vs offline")
    model_args(be)
    be.add_argument("--block-size", type=samples, nargs="+", default=list(BLOCK_SIZES),
                    help=f"block sizes in samples, {block_range()} (default: "
                         f"{' '.join(str(n) for n in BLOCK_SIZES)})")
    be.add_argument("--mode", choices=MODES,
                    help="time one mode only (default: stateful and overlap-save; overlap-save is left out for a "
                         f"model that reads more than {OVERLAP_SAVE_MAX_CONTEXT} samples of past input, which it would "
                         "recompute every block)")
    be.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op threads (default: 1 2)")
    be.add_argument("--seconds", type=float, default=3.0,
                    help="seconds of audio timed per row (default: %(default)s)")
    be.add_argument("--preset", default="live", help="preset for --random-weights (default: %(default)s)")
    be.add_argument("--random-weights", action="store_true", help="benchmark an untrained model of --preset")
    be.add_argument("--json", nargs="?", const="-", metavar="PATH",
                    help="write the rows as JSON to PATH (or, with no PATH, print JSON instead of the table)")


def _spectrogram_path(args) -> Path | None:
    """``--spectrogram``'s path; with no PATH, ``OUTPUT`` with ``_spectrogram.png`` beside it."""
    if args.spectrogram is None:
        return None
    if args.spectrogram:
        return Path(args.spectrogram)
    out = Path(args.output)
    return out.with_name(f"{out.stem}_spectrogram.png")


def cmd_render(args) -> int:
    from ..audio.io import AudioError, check_output_path
    from ..engine.render import check_spectrogram_path, render_file
    from ..engine.vocode import check_mel_output_path, is_mel_path
    # every cheap check first: a bad path must not cost a model load and a whole render
    if not Path(args.input).exists():
        raise AudioError(f"{args.input}: file does not exist")
    if is_mel_path(args.input) or is_mel_path(args.output):
        return _render_mel(args)
    check_output_path(args.output, protect=[args.input])
    png = _spectrogram_path(args)
    if png is not None:
        check_spectrogram_path(png, args.input, args.output)
    model = common.load_model(args)
    rep = render_file(model, args.input, args.output, block_size=args.block_size, mode=args.mode,
                      progress=not args.quiet, runtime=args.runtime, spectrogram=png, wet=args.wet)
    print(f"wrote {args.output}: {rep.channels} ch, {rep.seconds:.2f} s, {rep.input_sample_rate} Hz -> "
          f"{rep.output_sample_rate} Hz, latency {rep.latency_samples} samples compensated"
          + (f", {rep.clipped_samples} samples limited to +-1" if rep.clipped_samples else ""))
    if rep.spectrogram is not None:
        print(f"wrote {rep.spectrogram}: spectrograms before (input at {rep.output_sample_rate} Hz) and after")
    return 0


def _render_mel(args) -> int:
    """``rtgan render`` with a ``.npy`` input (vocode a saved mel) or output (save the input's mel)."""
    from ..audio.io import check_output_path
    from ..engine.vocode import analyse_file, check_mel_output_path, is_mel_path, vocode_file
    if is_mel_path(args.input) and is_mel_path(args.output):
        raise ValueError("render: a mel in and a mel out: give an audio file on one side")
    if args.spectrogram is not None:
        raise ValueError("render: --spectrogram is for audio in and out, not for mels")
    if is_mel_path(args.output):
        check_mel_output_path(args.output, protect=[args.input])
    else:
        check_output_path(args.output, protect=[args.input])
    model = common.load_model(args)
    if is_mel_path(args.output):
        rep = analyse_file(model, args.input, args.output)
        print(f"wrote {args.output}: mel of {rep.channels} ch, {rep.frames} frames ({rep.seconds:.2f} s at "
              f"{rep.sample_rate} Hz, hop {model.config.mel.hop_length}, lookahead {model.config.mel.lookahead})")
    else:
        rep = vocode_file(model, args.input, args.output, progress=not args.quiet)
        print(f"wrote {args.output}: {rep.channels} ch, {rep.seconds:.2f} s at {rep.sample_rate} Hz from "
              f"{rep.frames} mel frames")
    return 0


def cmd_bench(args) -> int:
    import torch
    from ..engine.bench import bench_grid
    model = common.load_model(args)
    modes = [args.mode] if args.mode else ["stateful", "overlap-save"]
    from ..engine.overlap_save import context
    left = context(model)[0]
    if not args.mode and left > OVERLAP_SAVE_MAX_CONTEXT:
        # overlap-save recomputes the whole left context for every block (e.g. sr-hifigan's envelope
        # head reads 3 s of past input): orders of magnitude above the live budget, and slow to time
        modes = ["stateful"]
        print(f"overlap-save not timed: it would recompute {left} samples of left context per block "
              f"(--mode overlap-save times it anyway)", file=sys.stderr)
    elif not args.mode and model.index_period > 1:
        modes = ["stateful"]
        print(f"overlap-save not timed: the model depends on the sample index modulo {model.index_period}, "
              "which overlap-save does not carry", file=sys.stderr)
    to_stdout = args.json == "-"
    if not to_stdout:
        g = model.stream_granule
        rates = (f"{model.sample_rate_in} Hz" if model.sample_rate_in == model.sample_rate_out
                 else f"{model.sample_rate_in} Hz in, {model.sample_rate_out} Hz out")
        print(f"model {model.name}  {model.num_parameters():,} parameters  {rates}  "
              f"(torch {torch.__version__}, {'CUDA' if torch.cuda.is_available() else 'CPU'}, "
              f"{torch.get_num_threads()} cores visible)")
        print(f"model latency {model.latency_samples} output samples (lookahead {model.lookahead}, granule {g} "
              f"input samples); algorithmic latency = block + model latency + FIFO (< one granule, 0 when {g} "
              f"divides the block), in output samples")
        print(f"{'block':>6} {'thr':>3} {'mode':>12} {'runtime':>11} {'latency':>8} {'ms':>6} {'median':>7} "
              f"{'p99':>7} {'max':>7} {'RTF':>6} {'offline':>8} {'x offline':>9}")
        print(f"{'':>6} {'':>3} {'':>12} {'':>11} {'samples':>8} {'':>6} {'ms':>7} {'ms':>7} {'ms':>7} {'':>6} "
              f"{'ms/block':>8} {'':>9}")

    def show(r) -> None:
        if not to_stdout:
            print(f"{r.block_size:>6} {r.threads:>3} {r.mode:>12} {r.runtime:>11} {r.latency_samples:>8} "
                  f"{r.latency_ms:>6.2f} {r.block_ms_median:>7.3f} {r.block_ms_p99:>7.3f} {r.block_ms_max:>7.3f} "
                  f"{r.rtf:>6.3f} {r.offline_block_ms:>8.3f} {r.ratio_to_offline:>9.2f}", flush=True)

    rows = bench_grid(model, args.block_size, args.threads, modes=modes, seconds=args.seconds,
                      runtime=args.runtime, on_row=show)
    data = [r.to_dict() for r in rows]
    if to_stdout:
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2))
    elif args.json:
        from ..fileio import atomic_write_text
        atomic_write_text(args.json, json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
