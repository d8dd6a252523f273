"""The ``rtgan`` command: thin argument parsing over the library."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shlex
import sys
from pathlib import Path


def _command_line(argv: list[str] | None) -> str:
    return "rtgan " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))


def _load(args) -> "object":
    from ..models import registry
    if getattr(args, "checkpoint", None):
        return registry.load_model(args.model, path=args.checkpoint)
    if getattr(args, "random_weights", False):
        return registry.build(args.model, args.preset)
    return registry.load_model(args.model)


def cmd_models(args) -> int:
    from ..models import registry
    for name in registry.available():
        e = registry.entry(name)
        shipped = (registry.WEIGHTS_DIR / f"{name}.safetensors").exists()
        print(f"{name:16s} presets: {', '.join(e.presets):22s} shipped weights: {'yes' if shipped else 'no':3s}  {e.description}")
    return 0


def cmd_data_build(args) -> int:
    from ..data.corpus import build_corpus
    try:
        manifest = build_corpus(Path(args.out), size=args.size, sample_rate=args.sample_rate,
                                debs_dir=Path(args.debs) if args.debs else None, progress=not args.quiet,
                                with_midi=args.with_midi)
    except RuntimeError as e:
        from ..data.midi import MissingToolError
        if not isinstance(e, MissingToolError):
            raise
        print(f"rtgan data build: error: {e}", file=sys.stderr)
        return 2
    print(f"corpus manifest: {manifest}")
    return 0


def cmd_train(args, argv) -> int:
    from ..models.discriminators import DiscriminatorConfig
    from ..training.config import PRESETS
    from ..training.loop import train
    cfg = PRESETS[args.preset]
    overrides = {}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.segment_samples is not None:
        overrides["segment_samples"] = args.segment_samples
    if args.workers is not None:
        overrides["num_workers"] = args.workers
    if args.discriminator == "tiny":
        overrides["discriminator"] = DiscriminatorConfig.tiny()
    elif args.discriminator == "small":
        overrides["discriminator"] = DiscriminatorConfig.small()
    if args.no_adversarial:
        overrides["adversarial"] = False
    if args.adv_start is not None:
        overrides["adv_start_step"] = args.adv_start
    if args.lambda_adv is not None or args.lambda_flat is not None:
        overrides["weights"] = dataclasses.replace(
            cfg.weights, **{k: v for k, v in (("adv", args.lambda_adv), ("flat", args.lambda_flat)) if v is not None})
    if args.min_bandwidth is not None:
        overrides["min_bandwidth_hz"] = args.min_bandwidth
    cfg = dataclasses.replace(cfg, model=args.model, **overrides)
    run_dir = Path(args.run_dir or f"runs/{args.model}-{args.preset}")
    state = train(cfg, Path(args.data), run_dir, device=args.device, resume=not args.no_resume,
                  command=_command_line(argv), progress=not args.quiet, max_minutes=args.max_minutes)
    last = state.history[-1] if state.history else {}
    print(f"trained {state.step} steps; last validation: {json.dumps(last)}; checkpoints in {run_dir}")
    return 0


def cmd_eval(args, argv) -> int:
    from ..audio.degrade import DegradationConfig
    from ..evaluate import evaluate, format_table, write_json
    model = _load(args)
    deg = DegradationConfig(kind=args.degradation)
    result = evaluate(model, Path(args.data), split=args.split, degradation=deg,
                      min_bandwidth_hz=args.min_bandwidth, max_clips=args.max_clips, progress=not args.quiet)
    print(format_table(result))
    extra = {"model": args.model, "checkpoint": args.checkpoint or "shipped", "split": args.split,
             "degradation": dataclasses.asdict(deg), "command": _command_line(argv)}
    if args.json:
        write_json(result, Path(args.json), extra)
        print(f"wrote {args.json}")
    if args.png and result.example is not None:
        try:
            from ..plots import spectrogram_png
            ex = result.example
            spectrogram_png(args.png, {"input (band-limited)": ex["input"], "output (model)": ex["output"],
                                       "target": ex["target"]}, model.sample_rate_out, title=ex["path"])
            print(f"wrote {args.png}")
        except ImportError:
            logging.warning("matplotlib not installed: no spectrogram (pip install 'rtgan[dev]')")
    if args.update_metadata:
        from ..checkpoint import metadata_path
        from ..fileio import atomic_write_text
        meta_file = metadata_path(Path(args.checkpoint))
        meta = json.loads(meta_file.read_text())
        meta.setdefault("metrics", {})[args.split] = {**result.table, "command": _command_line(argv)}
        atomic_write_text(meta_file, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        print(f"updated {meta_file}")
    return 0


def cmd_render(args) -> int:
    from ..engine.render import render_file
    model = _load(args)
    rep = render_file(model, args.input, args.output, block_size=args.block_size, mode=args.mode,
                      progress=not args.quiet, runtime=args.runtime)
    print(f"wrote {args.output}: {rep.channels} ch, {rep.seconds:.2f} s, {rep.input_sample_rate} Hz -> "
          f"{rep.output_sample_rate} Hz, latency {rep.latency_samples} samples compensated"
          + (f", {rep.clipped_samples} samples limited to +-1" if rep.clipped_samples else ""))
    return 0


def cmd_bench(args) -> int:
    import torch
    from ..engine.bench import bench_grid
    model = _load(args)
    modes = [args.mode] if args.mode else ["stateful", "overlap-save"]
    to_stdout = args.json == "-"
    if not to_stdout:
        g = model.stream_granule
        print(f"model {model.name}  {model.num_parameters():,} parameters  {model.sample_rate_in} Hz  "
              f"(torch {torch.__version__}, {'CUDA' if torch.cuda.is_available() else 'CPU'}, "
              f"{torch.get_num_threads()} cores visible)")
        print(f"model latency {model.latency_samples} samples (lookahead {model.lookahead}, granule {g}); "
              f"algorithmic latency = block + model latency + FIFO (< {g}, 0 when {g} divides the block)")
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


def _device(value: str | None):
    """A PortAudio device given as an index or a (sub)string of its name."""
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def cmd_devices(args) -> int:
    from ..engine.live import list_devices
    print(list_devices())
    return 0


def cmd_live(args) -> int:
    import torch
    from ..engine.live import (LiveProcessor, ResamplingProcessor, import_sounddevice, pick_sample_rate, run_live,
                               summary_line)
    sd = import_sounddevice()
    torch.set_num_threads(args.threads)
    model = _load(args)
    ind, outd = _device(args.input_device), _device(args.output_device)
    rate = args.sample_rate or model.sample_rate_in
    rate = pick_sample_rate(sd, ind, outd, args.channels, rate, strict=args.sample_rate is not None)
    opts = dict(channels=args.channels, wet=args.wet, runtime=args.runtime, threads=args.threads,
                limiter=not args.no_limiter)
    if rate == model.sample_rate_in:
        proc = inner = LiveProcessor(model, args.block_size, **opts)
    else:
        proc = ResamplingProcessor(model, rate, args.block_size, **opts)
        inner = proc.inner
    print(f"rtgan live: {model.name} on {sd.query_devices(ind, 'input')['name']} -> "
          f"{sd.query_devices(outd, 'output')['name']}, {rate} Hz, block {args.block_size}, "
          f"{args.channels} ch, wet {args.wet:g}, runtime {inner.stream.runtime}")
    if proc is not inner:
        print(f"the device runs at {rate} Hz, {model.name} at {model.sample_rate_in} Hz: resampling with libsamplerate "
              f"(model blocks of {inner.block_size}, output FIFO {proc.prefill} samples)")
    print(f"algorithmic latency {proc.latency_samples} samples = {proc.latency_ms:.2f} ms (model-rate part: block "
          f"{inner.block_size} + model {inner.stream.model_latency_samples} + FIFO {inner.stream.fifo_latency_samples}"
          f" + limiter {inner.limiter_latency_samples}); Ctrl-C stops")
    summary = run_live(proc, ind, outd, duration=args.duration, status=None if args.quiet else print,
                       lock_memory=not args.no_mlock, wakeup_latency_us=args.cpu_dma_latency)
    print(summary_line(summary))
    if args.json:
        from ..fileio import atomic_write_text
        atomic_write_text(args.json, json.dumps(summary, indent=2) + "\n")
    return 0


def cmd_latency(args) -> int:
    from ..engine.live import LiveProcessor
    from ..engine.roundtrip import jack_loopback, measure_roundtrip
    ind, outd = _device(args.input_device), _device(args.output_device)
    hook = jack_loopback if args.jack_loopback else None
    if args.checkpoint and not args.model:
        raise ValueError("--checkpoint needs --model (which model the checkpoint holds)")
    proc = None
    if args.model:
        model = _load(args)
        if model.sample_rate_in != args.sample_rate:
            raise ValueError(f"{model.name} runs at {model.sample_rate_in} Hz; pass --sample-rate {model.sample_rate_in}")
        proc = LiveProcessor(model, args.block_size, channels=1, runtime=args.runtime, threads=1)
    rows = [("device only", measure_roundtrip(args.sample_rate, args.block_size, None, ind, outd,
                                             count=args.impulses, on_start=hook))]
    if proc is not None:
        rows.append((f"with {model.name}", measure_roundtrip(args.sample_rate, args.block_size, proc, ind, outd,
                                                              count=args.impulses, on_start=hook)))
    print(f"round trip at {args.sample_rate} Hz, block {args.block_size} (samples / ms)")
    print(f"{'path':>22} {'measured':>14} {'spread':>7} {'clicks':>7} {'PortAudio reports':>19} "
          f"{'+ processor (computed)':>24}")
    for name, r in rows:
        print(f"{name:>22} {r.measured:>6.0f} {r.ms(r.measured):>6.2f} ms {r.spread:>7.0f} {r.found:>3}/{r.sent:<3} "
              f"{r.reported:>7.0f} {r.ms(r.reported):>6.2f} ms {r.reported + r.processor:>10.0f} "
              f"{r.ms(r.reported + r.processor):>6.2f} ms")
    if args.json:
        from ..fileio import atomic_write_text
        atomic_write_text(args.json, json.dumps({n: r.to_dict() for n, r in rows}, indent=2) + "\n")
    return 0 if all(r.found > 0 for _, r in rows) else 1


def build_parser() -> argparse.ArgumentParser:
    from ..engine.bench import BLOCK_SIZES
    from ..engine.runtime import STEP_RUNTIMES as RUNTIMES
    from ..engine.stream import MODES
    p = argparse.ArgumentParser(prog="rtgan", description="Real-time neural audio processing with GAN generators.")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("models", help="list registered models and whether weights ship")

    data = sub.add_parser("data", help="corpus tools").add_subparsers(dest="data_command", required=True)
    b = data.add_parser("build", help="build the real-audio corpus from Debian packages")
    b.add_argument("--out", required=True, help="output directory")
    b.add_argument("--size", choices=("small", "full"), default="small", help="small: a few minutes, for CI")
    b.add_argument("--sample-rate", type=int, default=48000, help="target sample rate in Hz (default 48000)")
    b.add_argument("--debs", help="directory of .deb files (default ~/.cache/rtgan/debs; apt-get download when missing)")
    b.add_argument("--with-midi", action="store_true",
                   help="also render music21's corpus with FluidSynth (source music21-fluidsynth; needs "
                        "apt-get install fluidsynth fluid-soundfont-gm, pip install mido; audio < ~11 kHz, "
                        "for 22.05 kHz vocoders)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    t = sub.add_parser("train", help="train a model")
    t.add_argument("model", help="registered model name, e.g. sr-hifigan")
    t.add_argument("--data", required=True, help="corpus directory (from 'rtgan data build')")
    t.add_argument("--preset", default="live", choices=("tiny", "live", "paper"), help="model/training preset")
    t.add_argument("--steps", type=int, help="total optimiser steps (default from preset)")
    t.add_argument("--batch-size", type=int, help="items per step")
    t.add_argument("--segment-samples", type=int, help="training segment length in samples")
    t.add_argument("--discriminator", choices=("full", "small", "tiny"), default="full",
                   help="HiFi-GAN discriminator width: full (paper), small or tiny (CPU)")
    t.add_argument("--no-adversarial", action="store_true", help="reconstruction losses only")
    t.add_argument("--adv-start", type=int, help="steps of reconstruction-only training before the GAN terms")
    t.add_argument("--lambda-adv", type=float, help="weight of the LSGAN generator loss (paper: 1e-3)")
    t.add_argument("--lambda-flat", type=float, help="weight of the spectral-flatness loss (paper: 1e-3)")
    t.add_argument("--min-bandwidth", type=float, help="use only target clips at least this wide (Hz)")
    t.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    t.add_argument("--workers", type=int, help="data-loader worker processes")
    t.add_argument("--run-dir", help="checkpoint/log directory (default runs/MODEL-PRESET)")
    t.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this many minutes")
    t.add_argument("--no-resume", action="store_true", help="start fresh even if run-dir has a checkpoint")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    def model_args(q, block_default=None, block_help="samples per block at the model rate"):
        q.add_argument("--model", default="sr-hifigan", help="registered model name (default sr-hifigan)")
        q.add_argument("--checkpoint", help="a .safetensors checkpoint instead of the shipped weights")
        if block_default is not None:
            q.add_argument("--block-size", type=int, default=block_default,
                           help=f"{block_help} (default {block_default})")
        q.add_argument("--runtime", choices=RUNTIMES,
                       help="how the model runs: stateful mode: onnxruntime (default when installed), "
                            "torchscript, eager; overlap-save: torchscript (default) or eager")

    e = sub.add_parser("eval", help="SNR/LSD on a corpus split against band-limited and spline baselines")
    e.add_argument("--model", default="sr-hifigan", help="registered model name")
    e.add_argument("--checkpoint", help="a .safetensors checkpoint instead of the shipped weights")
    e.add_argument("--data", required=True, help="corpus directory")
    e.add_argument("--split", default="test", choices=("train", "val", "test"))
    e.add_argument("--degradation", default="decimate", choices=("decimate", "lowpass"),
                   help="how inputs are band-limited (default: decimate by 3, resample_poly Kaiser 5.0)")
    e.add_argument("--min-bandwidth", type=float, default=16000.0, help="skip targets narrower than this (Hz)")
    e.add_argument("--max-clips", type=int, help="evaluate at most this many clips")
    e.add_argument("--json", help="write results as JSON here")
    e.add_argument("--png", help="write an input/output/target spectrogram here")
    e.add_argument("--update-metadata", action="store_true", help="store the table in --checkpoint's JSON")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    r = sub.add_parser("render", help="process an audio file offline through the block engine")
    r.add_argument("input", help="input audio file (anything soundfile reads)")
    r.add_argument("output", help="output file (format from the extension; never the input)")
    model_args(r, 4096)
    r.add_argument("--mode", choices=MODES, default="stateful",
                   help="streaming mode: stateful (cached convs, default), overlap-save, ola")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    be = sub.add_parser("bench", help="latency (samples, ms) and compute time per block, RTF, vs offline")
    model_args(be)
    be.add_argument("--block-size", type=int, nargs="+", default=list(BLOCK_SIZES),
                    help="block sizes in samples (default: %(default)s)")
    be.add_argument("--mode", choices=MODES, help="time one mode only (default: stateful and overlap-save)")
    be.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op threads (default: 1 2)")
    be.add_argument("--seconds", type=float, default=3.0, help="audio seconds timed per row (default 3)")
    be.add_argument("--preset", default="live", help="preset for --random-weights")
    be.add_argument("--random-weights", action="store_true", help="benchmark an untrained model of --preset")
    sub.add_parser("devices", help="list audio host APIs and devices (rates, latencies in ms)")

    def device_args(q):
        for side in ("input", "output"):
            q.add_argument(f"--{side}-device", help=f"{side} device index or name substring "
                                                   "(default: system default; see 'rtgan devices')")

    lv = sub.add_parser("live", help="process an audio interface's input in real time (PortAudio duplex)")
    model_args(lv, 256, "frames per audio callback at the device rate")
    device_args(lv)
    lv.add_argument("--sample-rate", type=int, help="device sample rate in Hz (default: the model's)")
    lv.add_argument("--channels", type=int, default=1, help="audio channels, each processed (default 1)")
    lv.add_argument("--wet", type=float, default=1.0, help="mix: 0 = dry only, 1 = model only (default 1)")
    lv.add_argument("--threads", type=int, default=1, help="compute threads (default 1)")
    lv.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    lv.add_argument("--no-limiter", action="store_true", help="no 0 dBFS limiter (output is still clipped at +-1)")
    lv.add_argument("--no-mlock", action="store_true",
                    help="do not lock the process's memory in RAM while streaming (locked by default where permitted)")
    lv.add_argument("--cpu-dma-latency", type=int, metavar="US",
                    help="while streaming, ask the kernel (PM QoS, /dev/cpu_dma_latency) to wake idle CPUs within "
                         "US microseconds; 0 keeps them polling: fewer late wake-ups, more power (needs permission)")
    lv.add_argument("--json", metavar="PATH", help="write the summary as JSON here")
    lv.add_argument("-q", "--quiet", action="store_true", help="no status line")

    la = sub.add_parser("latency", help="measure round-trip latency with clicks, with and without a model")
    la.add_argument("--model", help="also measure with this model in the loop (shipped weights)")
    la.add_argument("--checkpoint", help="a .safetensors checkpoint instead of the shipped weights")
    la.add_argument("--runtime", choices=RUNTIMES, help="step runtime for --model")
    la.add_argument("--sample-rate", type=int, default=48000, help="Hz (default 48000)")
    la.add_argument("--block-size", type=int, default=256, help="samples per callback (default 256)")
    la.add_argument("--impulses", type=int, default=8, help="clicks per measurement, 0.25 s apart (default 8)")
    device_args(la)
    la.add_argument("--jack-loopback", action="store_true",
                    help="connect our JACK outputs to our inputs with jack_connect (no cable needed)")
    la.add_argument("--json", metavar="PATH", help="write the measurements as JSON here")

    be.add_argument("--json", nargs="?", const="-", metavar="PATH",
                    help="write the rows as JSON to PATH (or, with no PATH, print JSON instead of the table)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rtgan`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..audio.io import AudioError
    from ..checkpoint import CheckpointError
    try:
        if args.command == "models":
            return cmd_models(args)
        if args.command == "data":
            return cmd_data_build(args)
        if args.command == "train":
            return cmd_train(args, argv)
        if args.command == "eval":
            return cmd_eval(args, argv)
        if args.command == "render":
            return cmd_render(args)
        if args.command == "bench":
            return cmd_bench(args)
        if args.command == "devices":
            return cmd_devices(args)
        if args.command == "live":
            return cmd_live(args)
        if args.command == "latency":
            return cmd_latency(args)
    except (AudioError, CheckpointError, FileNotFoundError, KeyError, ValueError, RuntimeError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"rtgan {args.command}: error: {msg}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
