"""``rtgan synth``: render one note of a note model (kind ``"note"``, e.g. reverbsynth) to a file."""
from __future__ import annotations

from pathlib import Path

from . import common


def add_parsers(sub) -> None:
    """The ``synth`` command."""
    s = sub.add_parser("synth", help="render one generated note of a note model (reverbsynth) to an audio file",
                       description="Generates one note from a pitch, a velocity, a processing label and a latent "
                                   "seed: the note model's IF-Mel image, inverted to audio at the model's rate "
                                   "(reverbsynth: 4 s at 16 kHz).")
    s.add_argument("output", help="output audio file (format from the extension: .wav, .flac, ...)")
    s.add_argument("--model", default="reverbsynth", help="registered note model (default: %(default)s)")
    s.add_argument("--checkpoint", help="a .safetensors checkpoint instead of the shipped weights")
    s.add_argument("--random-weights", action="store_true", help="an untrained model of --preset (for testing)")
    s.add_argument("--preset", default="small", help="preset for --random-weights (default: %(default)s)")
    s.add_argument("--pitch", type=int, required=True, help="MIDI note number (reverbsynth: 28..64, E1..E4)")
    s.add_argument("--velocity", type=int, default=100, help="MIDI velocity 1..127, the note's gain velocity/127 "
                                                              "(default: %(default)s)")
    lab = s.add_mutually_exclusive_group()
    lab.add_argument("--reverb", action="store_true", help="the reverberant label (same as --label reverb)")
    lab.add_argument("--label", help="processing label (reverbsynth: dry or reverb; default: dry)")
    s.add_argument("--seed", type=int, default=0, help="seed of the latent z (default: %(default)s)")
    s.add_argument("--spectrogram", nargs="?", const="", metavar="PNG",
                   help="also write the note's spectrogram to this PNG (without a path: OUTPUT's name with "
                        "_spectrogram.png)")


def cmd_synth(args) -> int:
    """Check the arguments and the output path, load the model, render, write atomically."""
    from ..audio.io import check_output_path, write_audio

    if not 1 <= args.velocity <= 127:
        raise ValueError(f"--velocity must be 1..127, got {args.velocity}")
    check_output_path(args.output)
    png = None
    if args.spectrogram is not None:
        out = Path(args.output)
        png = Path(args.spectrogram) if args.spectrogram else out.with_name(f"{out.stem}_spectrogram.png")
    model = common.load_model(args)
    if getattr(model, "kind", "") != "note":
        raise ValueError(f"{args.model} is a {model.kind} model; rtgan synth plays note models (e.g. reverbsynth); "
                         f"use rtgan render for it")
    lo, hi = model.pitch_range
    if not lo <= args.pitch <= hi:
        raise ValueError(f"--pitch {args.pitch} is outside {args.model}'s range {lo}..{hi}")
    label = "reverb" if args.reverb else args.label
    audio = model.render_note(args.pitch, args.velocity / 127.0, label, seed=args.seed).cpu().numpy()
    write_audio(args.output, audio, model.sample_rate_out)
    print(f"wrote {args.output}: MIDI {args.pitch}, velocity {args.velocity}, label "
          f"{model.labels[model.label_index(label)] if model.labels else '-'}, seed {args.seed}, "
          f"{len(audio) / model.sample_rate_out:.2f} s at {model.sample_rate_out} Hz")
    if png is not None:
        from ..plots import spectrogram_png
        spectrogram_png(png, {"note": audio}, model.sample_rate_out, n_fft=min(1024, len(audio)), hop_length=128)
        print(f"wrote {png}")
    return 0
