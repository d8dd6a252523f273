"""The ``rtgan`` command: thin argument parsing over the library."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shlex
import signal
import sys
import threading
from pathlib import Path


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process gets SIGTERM while a command runs.

    A subclass of KeyboardInterrupt, so SIGTERM unwinds like Ctrl-C: ``finally`` blocks and
    the atomic writers' cleanup run (no temporary file is left behind) and :func:`main`
    reports one line and exits with 143 (128 + SIGTERM).
    """


def _version() -> str:
    """The installed distribution's version, else the package's ``__version__``."""
    try:
        from importlib.metadata import PackageNotFoundError, version
        return version("rtgan")
    except PackageNotFoundError:
        from .. import __version__
        return __version__


@contextlib.contextmanager
def _sigterm_raises_terminated():
    """While the block runs, SIGTERM raises :class:`Terminated` in this process's main thread.

    Forked children (the corpus builder's workers) inherit the handler; in them it restores
    the default action and re-sends the signal, so they end quietly as before.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pid = os.getpid()

    def handler(signum, frame):
        if os.getpid() != pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _samples(value: str) -> int:
    """argparse type of sample counts: an integer, also written like ``1e5`` (range checked later)."""
    try:
        return int(value)
    except ValueError:
        pass
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of samples: {value!r}") from None
    if not f.is_integer():
        raise argparse.ArgumentTypeError(f"not a whole number of samples: {value!r}")
    return int(f)


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
    from ..data.corpus import build_corpus, build_summary
    cache_dir = Path(args.cache_dir).expanduser()
    debs_dir = Path(args.debs).expanduser() if args.debs else None
    try:
        manifest = build_corpus(Path(args.out), size=args.size, sample_rate=args.sample_rate,
                                debs_dir=debs_dir, progress=not args.quiet,
                                with_midi=args.with_midi, cache_dir=cache_dir)
    except RuntimeError as e:
        from ..data.midi import MissingToolError
        if not isinstance(e, MissingToolError):
            raise
        print(f"rtgan data build: error: {e}", file=sys.stderr)
        return 2
    print(build_summary(manifest.parent, cache_dir, debs_dir))
    return 0


def cmd_train(args, argv) -> int:
    from ..models.discriminators import DiscriminatorConfig
    from ..training.config import PRESETS, TrainConfig
    from ..training.loop import pick_device, train
    dev = pick_device(args.device)
    cfg = TrainConfig.with_recipe(PRESETS[args.preset], args.recipe)
    overrides = {}
    for key, value in (("steps", args.steps), ("batch_size", args.batch_size),
                       ("segment_samples", args.segment_samples), ("num_workers", args.workers),
                       ("adv_start_step", args.adv_start), ("min_bandwidth_hz", args.min_bandwidth),
                       ("ckpt_every", args.ckpt_every), ("val_every", args.val_every)):
        if value is not None:
            overrides[key] = value
    disc = args.discriminator
    if disc == "auto":  # the paper's widths are a GPU job: 26 s a step and 850 MB checkpoints on a CPU
        disc = "full" if dev.type == "cuda" else ("tiny" if args.preset == "tiny" else "small")
        print(f"discriminator: {disc} (auto for {dev.type}; --discriminator full|small|tiny to choose)")
    if disc != "full" or args.preset != "tiny":
        overrides["discriminator"] = {"full": DiscriminatorConfig(), "small": DiscriminatorConfig.small(),
                                      "tiny": DiscriminatorConfig.tiny()}[disc]
    if args.no_adversarial:
        overrides["adversarial"] = False
    lambdas = {"adv": args.lambda_adv, "flat": args.lambda_flat, "time": args.lambda_time,
               "stft": args.lambda_stft, "mel": args.lambda_mel, "feature_matching": args.lambda_fm}
    if any(v is not None for v in lambdas.values()):
        overrides["weights"] = dataclasses.replace(cfg.weights, **{k: v for k, v in lambdas.items() if v is not None})
    cfg = dataclasses.replace(cfg, model=args.model, **overrides)
    run_dir = Path(args.run_dir or f"runs/{args.model}-{args.preset}")
    state = train(cfg, Path(args.data), run_dir, device=str(dev), resume=not args.no_resume,
                  command=_command_line(argv), progress=not args.quiet, max_minutes=args.max_minutes)
    last = state.history[-1] if state.history else {}
    print(f"trained {state.step} steps; last validation: {json.dumps(last)}; checkpoints in {run_dir}")
    return 0


def _speech_png(path: str) -> Path:
    """``--png``'s speech companion: ``PATH`` with ``_speech`` before the suffix."""
    p = Path(path)
    return p.with_name(f"{p.stem}_speech{p.suffix or '.png'}")


def cmd_calibrate(args, argv) -> int:
    from ..calibrate import calibrate_residual_gain, with_gain
    from ..checkpoint import save_generator
    from ..models import registry
    out = Path(args.out)
    if out.resolve() == Path(args.checkpoint).resolve():
        raise ValueError("--out must not be the --checkpoint it reads")
    model = registry.load_model(args.model, path=args.checkpoint)
    res = calibrate_residual_gain(model, Path(args.data), split=args.split, limiters=tuple(args.limiter),
                                  margin_db=args.margin_db, max_clips=args.max_clips, progress=not args.quiet)
    for lim, domains in res["table"].items():
        for domain, t in domains.items():
            shown = " ".join(f"{g}:{v:.2f}" for g, v in t["snr_db_by_gain"].items())
            print(f"{lim:8s} {domain:7s} input {t['input_snr_db']:.2f} dB, spline {t['spline_snr_db']:.2f} dB; "
                  f"model SNR by gain: {shown}")
    if res["gain"] is None:
        print(f"rtgan calibrate: error: no gain satisfies: {res['rule']}", file=sys.stderr)
        return 1
    meta = {k: v for k, v in model.metadata.items() if k not in ("model", "config", "format_version")}
    meta["calibration"] = {**res, "from_checkpoint": str(args.checkpoint)}
    meta["commands"] = list(meta.get("commands", [meta.get("command", "")])) + [_command_line(argv)]
    save_generator(out, with_gain(model, res["gain"]), meta)
    print(f"residual gain {res['gain']:g} ({res['rule']}); wrote {out}")
    return 0


def cmd_eval(args, argv) -> int:
    from ..audio.bandlimit import BAND_LIMITERS
    from ..evaluate import default_cache_path, evaluate, format_table, format_tonal, write_json
    if args.update_metadata and not args.checkpoint:
        raise ValueError("--update-metadata needs --checkpoint (the shipped weights' JSON is not rewritten)")
    model = _load(args)
    limiters = list(dict.fromkeys(args.limiter))
    cache = False if args.no_cache else (Path(args.cache) if args.cache else True)
    result = evaluate(model, Path(args.data), split=args.split, limiters=limiters, visqol=not args.no_visqol,
                      min_bandwidth_hz=args.min_bandwidth, max_clips=args.max_clips, progress=not args.quiet,
                      cache=cache)
    print(format_table(result))
    print(format_tonal(result.tonal))
    t = result.timing
    print(f"{t['clips']} clips in {t['seconds']:.1f} s"
          + (f"; ViSQOL {t['visqol_calls']} calls, {t['visqol_seconds']:.1f} s" if t["visqol_calls"] else "")
          + f"; baselines cached for {t['cache_hits']} of {t['cache_hits'] + t['cache_misses']} clip x limiter pairs"
          + ("" if args.no_cache else f" ({args.cache or default_cache_path(args.data)})"))
    extra = {"model": args.model, "checkpoint": args.checkpoint or "shipped", "split": args.split,
             "command": _command_line(argv)}
    if args.json:
        write_json(result, Path(args.json), extra)
        print(f"wrote {args.json}")
    pngs = {"music": args.png, "speech": args.png_speech or (_speech_png(args.png) if args.png else None)}
    for domain, png in pngs.items():
        ex = result.examples.get(domain)
        if not png:
            continue
        if ex is None:
            print(f"no {domain} clip among those evaluated: {png} not written")
            continue
        try:
            from ..plots import spectrogram_png
            spectrogram_png(png, {f"input (band-limited, {ex['limiter']})": ex["input"],
                                  "output (model)": ex["output"], "target": ex["target"]},
                            model.sample_rate_out, title=f"{ex['path']} ({args.model})", mark_khz=(8.0,))
            print(f"wrote {png}")
        except ImportError:
            logging.warning("matplotlib not installed: no spectrogram (pip install 'rtgan[dev]')")
            break
    if args.update_metadata:
        from ..checkpoint import metadata_path
        from ..fileio import atomic_write_text
        meta_file = metadata_path(Path(args.checkpoint))
        meta = json.loads(meta_file.read_text())
        meta.setdefault("metrics", {})[args.split] = {
            "limiters": {n: BAND_LIMITERS[n].description for n in result.limiters},
            "table": result.table, "tonal": result.tonal, "command": _command_line(argv)}
        atomic_write_text(meta_file, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        print(f"updated {meta_file}")
    return 0


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
    # every cheap check first: a bad path must not cost a model load and a whole render
    if not Path(args.input).exists():
        raise AudioError(f"{args.input}: file does not exist")
    check_output_path(args.output, protect=[args.input])
    png = _spectrogram_path(args)
    if png is not None:
        check_spectrogram_path(png, args.input, args.output)
    model = _load(args)
    rep = render_file(model, args.input, args.output, block_size=args.block_size, mode=args.mode,
                      progress=not args.quiet, runtime=args.runtime, spectrogram=png)
    print(f"wrote {args.output}: {rep.channels} ch, {rep.seconds:.2f} s, {rep.input_sample_rate} Hz -> "
          f"{rep.output_sample_rate} Hz, latency {rep.latency_samples} samples compensated"
          + (f", {rep.clipped_samples} samples limited to +-1" if rep.clipped_samples else ""))
    if rep.spectrogram is not None:
        print(f"wrote {rep.spectrogram}: spectrograms before (input at {rep.output_sample_rate} Hz) and after")
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
    from ..engine.roundtrip import format_roundtrip_table, jack_loopback, measure_roundtrip, missing_clicks_message
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
    print(format_roundtrip_table(rows))
    if args.json:
        from ..fileio import atomic_write_text
        atomic_write_text(args.json, json.dumps({n: r.to_dict() for n, r in rows}, indent=2) + "\n")
    missing = missing_clicks_message(rows, jack_loopback=args.jack_loopback)
    if missing:
        print(f"rtgan latency: {missing}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ..data.corpus import default_cache_dir
    from ..engine.bench import BLOCK_SIZES
    from ..engine.render import MAX_BLOCK_SIZE
    from ..engine.runtime import STEP_RUNTIMES as RUNTIMES
    from ..engine.stream import MODES
    p = argparse.ArgumentParser(prog="rtgan", description="Real-time neural audio processing with GAN generators.")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    block_range = f"1 to 2**20 = {MAX_BLOCK_SIZE}"
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("models", help="list registered models and whether weights ship")

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
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    from ..training.config import PRESETS as TRAIN_PRESETS, RECIPES

    def per_preset(field: str) -> str:
        return "default: " + ", ".join(f"{k} {getattr(v, field)}" for k, v in TRAIN_PRESETS.items())

    def per_recipe(field: str) -> str:
        return "default: " + ", ".join(f"{k} {getattr(v, field):g}" for k, v in RECIPES.items())

    t = sub.add_parser("train", help="train a model")
    t.add_argument("model", help="registered model name, e.g. sr-hifigan")
    t.add_argument("--data", required=True, help="corpus directory (from 'rtgan data build')")
    t.add_argument("--preset", default="live", choices=tuple(TRAIN_PRESETS),
                   help="model/training preset (default %(default)s)")
    t.add_argument("--recipe", default="bwe", choices=tuple(RECIPES),
                   help="loss recipe (default %(default)s): bwe = MR-STFT + feature matching + LSGAN + L_time + "
                        "L_flat; paper = the seed's 1e-3 L_adv + 1e-3 L_flat + L_time (Coldenhoff & Ren)")
    t.add_argument("--steps", type=int, help=f"total optimiser steps ({per_preset('steps')})")
    t.add_argument("--batch-size", type=int, help=f"items per step ({per_preset('batch_size')})")
    t.add_argument("--segment-samples", type=int,
                   help=f"training segment length in samples ({per_preset('segment_samples')})")
    t.add_argument("--discriminator", choices=("auto", "full", "small", "tiny"), default="auto",
                   help="HiFi-GAN MPD+MSD width: full (paper), small (1/8) or tiny; auto (default): full on CUDA, "
                        "small on CPU (tiny for the tiny preset)")
    t.add_argument("--no-adversarial", action="store_true", help="reconstruction losses only")
    t.add_argument("--adv-start", type=int,
                   help=f"steps of reconstruction-only training before the GAN terms (default: bwe {TRAIN_PRESETS['live'].adv_start_step}, paper 0)")
    for name, field_name, what in (("adv", "adv", "LSGAN generator loss"), ("flat", "flat", "spectral-flatness loss"),
                                   ("time", "time", "time-domain MSE"), ("stft", "stft", "multi-resolution STFT loss"),
                                   ("mel", "mel", "mel L1 loss"), ("fm", "feature_matching", "feature-matching loss")):
        t.add_argument(f"--lambda-{name}", type=float, help=f"weight of the {what} ({per_recipe(field_name)})")
    t.add_argument("--min-bandwidth", type=float,
                   help=f"use only target clips at least this wide, in Hz ({per_preset('min_bandwidth_hz')})")
    t.add_argument("--device", default="auto", help="auto (default: CUDA if present, else CPU), cpu, cuda, cuda:N")
    t.add_argument("--workers", type=int, help=f"data-loader worker processes ({per_preset('num_workers')})")
    t.add_argument("--run-dir", help="checkpoint/log directory (default runs/MODEL-PRESET)")
    t.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this many minutes (default: no limit)")
    t.add_argument("--ckpt-every", type=int, help=f"steps between resumable checkpoints ({per_preset('ckpt_every')})")
    t.add_argument("--val-every", type=int,
                   help=f"steps between validations and generator snapshots ({per_preset('val_every')})")
    t.add_argument("--no-resume", action="store_true", help="start fresh even if run-dir has a checkpoint")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    def model_args(q, block_default=None, block_help="samples per block at the model rate"):
        q.add_argument("--model", default="sr-hifigan", help="registered model name (default: %(default)s)")
        q.add_argument("--checkpoint", help="a .safetensors checkpoint instead of the shipped weights")
        if block_default is not None:
            q.add_argument("--block-size", type=_samples, default=block_default,
                           help=f"{block_help}, {block_range} (default: %(default)s)")
        q.add_argument("--runtime", choices=RUNTIMES,
                       help="how the model runs: stateful mode: onnxruntime (default when installed), "
                            "torchscript, eager; overlap-save: torchscript (default) or eager")

    from ..audio.bandlimit import BAND_LIMITERS
    ca = sub.add_parser("calibrate", help="choose the generated band's level (residual gain) on the validation split")
    ca.add_argument("--model", default="sr-hifigan", help="registered model name (default: %(default)s)")
    ca.add_argument("--checkpoint", required=True, help="the trained .safetensors checkpoint to calibrate")
    ca.add_argument("--data", required=True, help="corpus directory (with manifest.jsonl)")
    ca.add_argument("--out", required=True, help="where the calibrated checkpoint goes (.safetensors + .json)")
    ca.add_argument("--split", default="val", choices=("train", "val", "test"),
                    help="split the gain is chosen on (default: %(default)s; never test)")
    ca.add_argument("--limiter", nargs="+", default=["soxr", "kaiser"],
                    help="band-limiters the SNR rule must hold for (default: %(default)s)")
    ca.add_argument("--margin-db", type=float, default=0.15,
                    help="allowed mean SNR below the cubic-spline baseline per domain, in dB (default: %(default)s dB)")
    ca.add_argument("--max-clips", type=int, help="use at most this many clips (default: all)")
    ca.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="SNR, LSD and ViSQOL on a corpus split against band-limited and spline "
                                    "baselines, per band-limiter; the model's tonal-artifact figure",
                       description="Limiters: " + "; ".join(f"{n}: {b.description}"
                                                            for n, b in BAND_LIMITERS.items()))
    e.add_argument("--model", default="sr-hifigan", help="registered model name (default: %(default)s)")
    e.add_argument("--checkpoint", help="a .safetensors checkpoint instead of the shipped weights (default: shipped)")
    e.add_argument("--data", required=True, help="corpus directory (with manifest.jsonl)")
    e.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="manifest split to evaluate (default: %(default)s)")
    e.add_argument("--limiter", nargs="+", choices=list(BAND_LIMITERS), default=list(BAND_LIMITERS),
                   metavar="NAME", help="band-limiters making the model input from the 48 kHz target, one table "
                   f"each; choices: {', '.join(BAND_LIMITERS)} (default: all; soxr if given, else the first "
                   "one, also makes the pictures and the tonal figure)")
    e.add_argument("--no-visqol", action="store_true",
                   help="skip ViSQOL v3 (MOS-LQO, ~0.1 s per second of audio per estimate; default: computed, "
                        "needs pip install 'rtgan[eval]')")
    e.add_argument("--min-bandwidth", type=float, default=16000.0,
                   help="skip targets whose measured bandwidth is narrower than this, in Hz (default: %(default)s Hz)")
    e.add_argument("--max-clips", type=int, help="evaluate at most this many clips, in manifest order (default: all)")
    e.add_argument("--cache", metavar="PATH", help="JSON cache of the baselines' scores "
                   "(default: DATA/.rtgan_cache/eval_baselines.json)")
    e.add_argument("--no-cache", action="store_true", help="neither read nor write the baseline cache (default: use it)")
    e.add_argument("--json", metavar="PATH", help="write tables, tonal figure and per-clip rows as JSON here "
                   "(default: none)")
    e.add_argument("--png", metavar="PATH", help="write input/output/target spectrograms (kHz, dB) of the loudest "
                   "music clip here, and of the loudest speech clip at PATH with _speech before the suffix "
                   "(default: none)")
    e.add_argument("--png-speech", metavar="PATH", help="where the speech spectrogram goes instead "
                   "(default: from --png)")
    e.add_argument("--update-metadata", action="store_true",
                   help="store the tables and tonal figure in --checkpoint's JSON (default: off)")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: shown)")

    r = sub.add_parser("render", help="process an audio file offline through the block engine")
    r.add_argument("input", help="input audio file (anything soundfile reads)")
    r.add_argument("output", help="output file (format from the extension; never the input)")
    model_args(r, 4096)
    r.add_argument("--mode", choices=MODES, default="stateful",
                   help="streaming mode: stateful (cached convs), overlap-save, ola (default: %(default)s)")
    r.add_argument("--spectrogram", nargs="?", const="", metavar="PNG",
                   help="also write before/after spectrograms (input at the output rate, output) to this PNG; "
                        "without a path, OUTPUT's name with _spectrogram.png beside it (default: none; needs "
                        "matplotlib)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    be = sub.add_parser("bench", help="latency (samples, ms) and compute time per block, RTF, vs offline")
    model_args(be)
    be.add_argument("--block-size", type=_samples, nargs="+", default=list(BLOCK_SIZES),
                    help=f"block sizes in samples, {block_range} (default: "
                         f"{' '.join(str(n) for n in BLOCK_SIZES)})")
    be.add_argument("--mode", choices=MODES, help="time one mode only (default: stateful and overlap-save)")
    be.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op threads (default: 1 2)")
    be.add_argument("--seconds", type=float, default=3.0,
                    help="seconds of audio timed per row (default: %(default)s)")
    be.add_argument("--preset", default="live", help="preset for --random-weights (default: %(default)s)")
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
    lv.add_argument("--channels", type=int, default=1, help="audio channels, each processed (default: %(default)s)")
    lv.add_argument("--wet", type=float, default=1.0,
                    help="mix, 0 to 1: 0 = dry only, 1 = model only (default: %(default)s)")
    lv.add_argument("--threads", type=int, default=1, help="compute threads (default: %(default)s)")
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
    la.add_argument("--sample-rate", type=int, default=48000, help="sample rate in Hz (default: %(default)s)")
    la.add_argument("--block-size", type=_samples, default=256,
                    help=f"samples per callback, {block_range} (default: %(default)s)")
    la.add_argument("--impulses", type=int, default=8,
                    help="clicks per measurement, 0.25 s apart (default: %(default)s)")
    device_args(la)
    la.add_argument("--jack-loopback", action="store_true",
                    help="connect our JACK outputs to our inputs with jack_connect (no cable needed)")
    la.add_argument("--json", metavar="PATH", help="write the measurements as JSON here")

    be.add_argument("--json", nargs="?", const="-", metavar="PATH",
                    help="write the rows as JSON to PATH (or, with no PATH, print JSON instead of the table)")
    return p


def _check_args(args) -> None:
    """Refuse absurd numbers before any work (model loading, file reading, audio devices).

    Raises:
        ValueError: a one-line message naming the option and its valid range.
    """
    from ..engine.render import check_block_size
    if args.command not in ("render", "live", "bench", "latency"):
        return
    sizes = args.block_size if isinstance(args.block_size, list) else [args.block_size]
    for n in sizes:
        check_block_size(n, "--block-size")
    positive = {"threads": "--threads", "seconds": "--seconds", "channels": "--channels", "sample_rate": "--sample-rate",
                "impulses": "--impulses", "duration": "--duration"}
    for attr, flag in positive.items():
        value = getattr(args, attr, None)
        for v in value if isinstance(value, list) else [value]:
            if v is not None and not v > 0:
                raise ValueError(f"{flag} must be positive, got {v}")
    if getattr(args, "threads", None) is not None:
        for v in args.threads if isinstance(args.threads, list) else [args.threads]:
            if v > 1024:
                raise ValueError(f"--threads must be at most 1024, got {v}")
    wet = getattr(args, "wet", None)
    if wet is not None and not 0.0 <= wet <= 1.0:
        raise ValueError(f"--wet must be between 0 and 1, got {wet}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rtgan`` console script; returns the exit status.

    Ctrl-C (SIGINT) and SIGTERM stop any command with one line on stderr, exit status 130
    or 143 (128 + the signal number), and no temporary file left behind.
    """
    name = "rtgan"
    try:
        with _sigterm_raises_terminated():
            parser = build_parser()
            args = parser.parse_args(argv)
            name = f"rtgan {args.command}"
            return _run(parser, args, argv)
    except KeyboardInterrupt as e:
        term = isinstance(e, Terminated)
        print(f"{name}: {'terminated (SIGTERM)' if term else 'interrupted (Ctrl-C)'}", file=sys.stderr)
        return 128 + (signal.SIGTERM if term else signal.SIGINT)


def _run(parser: argparse.ArgumentParser, args, argv: list[str] | None) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..audio.io import AudioError
    from ..checkpoint import CheckpointError
    try:
        _check_args(args)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "data":
            return cmd_data_build(args)
        if args.command == "train":
            return cmd_train(args, argv)
        if args.command == "calibrate":
            return cmd_calibrate(args, argv)
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
