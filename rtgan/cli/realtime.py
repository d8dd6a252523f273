"""``rtgan devices``, ``rtgan live``, ``rtgan midi-ports`` and ``rtgan latency``: audio interfaces, real-time
processing with parameters and MIDI control, round trips."""
from __future__ import annotations

import json
import sys

from . import common
from .common import block_range, device_args, model_args, samples


def add_parsers(sub) -> None:
    """The ``devices``, ``live``, ``midi-ports`` and ``latency`` commands."""
    from ..engine.runtime import STEP_RUNTIMES as RUNTIMES

    sub.add_parser("devices", help="list audio host APIs and devices (rates, latencies in ms)")

    lv = sub.add_parser("live", help="process an audio interface's input in real time (PortAudio duplex)",
                        description="Process an audio interface's input in real time (PortAudio duplex). Where the "
                                    "device rate differs from a rate of the model (say sr16-unet: 8 kHz in, 16 kHz "
                                    "out), the input is resampled to the model's input rate and the model's output "
                                    "to the device rate (libsamplerate); the reported latency counts both.")
    model_args(lv, 256, "frames per audio callback at the device rate")
    device_args(lv)
    lv.add_argument("--sample-rate", type=int,
                    help="device sample rate in Hz (default: the model's output rate, or the output device's "
                         "default rate if the devices refuse it)")
    lv.add_argument("--channels", type=int, default=1, help="audio channels, each processed (default: %(default)s)")
    lv.add_argument("--wet", type=float, default=1.0,
                    help="mix, 0 to 1: 0 = dry only, 1 = model only; a model whose output is a wet signal "
                         "(reverb-*) is added to the dry instead: dry + wet x output (default: %(default)s)")
    lv.add_argument("--threads", type=int, default=1, help="compute threads (default: %(default)s)")
    lv.add_argument("--mode", choices=("stateful", "ola"), default="stateful",
                    help="stateful: the model's cached-conv step (latency: block + its lookahead); ola: seed 001's "
                         "50 %% Hann overlap-add of frames of 2 x --hop model-rate samples, each computed by a worker "
                         "thread (latency: 3 hops; for frame-based models, e.g. xfer-violin's paper preset, whose "
                         "stateful lookahead is seconds) (default: %(default)s)")
    lv.add_argument("--hop", type=int, default=4096,
                    help="--mode ola: frame advance in samples at the model's rate; frames are twice as long "
                         "(default: %(default)s, the seed's 8192-sample frames)")
    lv.add_argument("--worker", choices=("auto", "on", "off"), default="auto",
                    help="with a device rate other than the model's (e.g. voc-melgan at 22 050 Hz on a 48 kHz "
                         "device): compute the model-rate blocks on a worker thread, taken in one device block "
                         "later (latency + one block), so no callback computes a whole model block alone; auto: on "
                         "when a model block spans two device blocks or more (default: %(default)s)")
    lv.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    lv.add_argument("--no-limiter", action="store_true", help="no 0 dBFS limiter (output is still clipped at +-1)")
    lv.add_argument("--no-mlock", action="store_true",
                    help="do not lock the process's memory in RAM while streaming (locked by default where permitted)")
    lv.add_argument("--cpu-dma-latency", type=int, metavar="US",
                    help="while streaming, ask the kernel (PM QoS, /dev/cpu_dma_latency) to wake idle CPUs within "
                         "US microseconds; 0 keeps them polling: fewer late wake-ups, more power (needs permission)")
    lv.add_argument("--param", action="append", default=None, metavar="NAME=VALUE",
                    help="set a live parameter at start (repeatable): the engine's wet (0-1) and gain (dB), and "
                         "the model's own; the declared names, ranges and units are printed at start (default: each parameter's own default)")
    lv.add_argument("--midi", metavar="PORT",
                    help="MIDI CC control from this source port (index, name or part of it; see 'rtgan midi-ports'); "
                         "the CC map is printed at start")
    lv.add_argument("--midi-map", metavar="FILE",
                    help='JSON CC map replacing the default, e.g. {"91": "wet", "7": "gain"} (needs --midi)')
    lv.add_argument("--midi-learn", metavar="PARAM", help="bind the next CC moved to this parameter (needs --midi)")
    lv.add_argument("--midi-channel", type=int, metavar="1-16", help="listen to this MIDI channel only (default: all)")
    lv.add_argument("--midi-api", choices=("auto", "jack", "alsa"), default="auto",
                    help="MIDI system (default: %(default)s: JACK where a server runs, else ALSA)")
    lv.add_argument("--polyphony", type=int, default=8,
                    help="note models (reverbsynth): voices sounding at once (default: %(default)s)")
    lv.add_argument("--json", metavar="PATH", help="write the summary as JSON here")
    lv.add_argument("-q", "--quiet", action="store_true", help="no status line")

    mp = sub.add_parser("midi-ports", help="list MIDI source ports (for rtgan live --midi)")
    mp.add_argument("--api", choices=("auto", "jack", "alsa"), default="auto",
                    help="MIDI system (default: %(default)s)")

    la = sub.add_parser("latency", help="measure round-trip latency with clicks, with and without a model")
    la.add_argument("--model", help="also measure with this model in the loop (shipped weights)")
    la.add_argument("--checkpoint", help="a .safetensors checkpoint instead of the shipped weights")
    la.add_argument("--runtime", choices=RUNTIMES, help="step runtime for --model")
    la.add_argument("--sample-rate", type=int, default=48000, help="sample rate in Hz (default: %(default)s)")
    la.add_argument("--block-size", type=samples, default=256,
                    help=f"samples per callback, {block_range()} (default: %(default)s)")
    la.add_argument("--impulses", type=int, default=8,
                    help="clicks per measurement, 0.25 s apart (default: %(default)s)")
    device_args(la)
    la.add_argument("--jack-loopback", action="store_true",
                    help="connect our JACK outputs to our inputs with jack_connect (no cable needed)")
    la.add_argument("--json", metavar="PATH", help="write the measurements as JSON here")


def cmd_devices(args) -> int:
    from ..engine.device import list_devices
    print(list_devices())
    return 0


def cmd_midi_ports(args) -> int:
    from ..engine.midi import list_ports, resolve_api
    api, _ = resolve_api(args.api)
    ports = list_ports(args.api)
    print(f"MIDI sources ({api}):" if ports else f"no MIDI sources ({api})")
    for i, p in enumerate(ports):
        print(f"  {i}: {p}")
    return 0


def parse_params(pairs: list[str]) -> list[tuple[str, str]]:
    """``["wet=0.5", ...]`` -> ``[("wet", "0.5"), ...]``.

    Raises:
        ValueError: an item without ``=`` or a name (one line).
    """
    out = []
    for item in pairs:
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise ValueError(f"--param takes NAME=VALUE (e.g. wet=0.5), got {item!r}")
        out.append((name.strip(), value.strip()))
    return out


def start_params(proc, params: list[tuple[str, str]]):
    """Set ``--param`` values on ``proc``'s parameter bank (no glide), print every parameter; the bank."""
    bank = proc.params
    for name, value in params:
        bank.jump(name, value)
    print("parameters: " + "; ".join(f"{p.name} = {bank.target(p.name):g}{' ' + p.unit if p.unit else ''} "
                                      f"({p.minimum:g}..{p.maximum:g})" for p in bank.params))
    return bank


def setup_midi(args, bank, on_note=None):
    """The :class:`~rtgan.engine.midi.MidiControl` that ``--midi*`` ask for (None without
    ``--midi``), its port open and its map printed.

    Raises:
        MidiError: as :meth:`MidiControl.open` and :func:`load_map`.
        KeyError: ``--midi-learn`` names no parameter.
    """
    from ..engine.midi import MidiControl, describe_map, load_map
    if args.midi is None:
        return None
    midi_map = load_map(args.midi_map, bank) if args.midi_map else None
    ctl = MidiControl(bank, midi_map, learn=args.midi_learn, channel=args.midi_channel, log_line=print,
                      on_note=on_note)
    name = ctl.open(args.midi, args.midi_api)
    print(f"MIDI control from {name!r}{f' (channel {args.midi_channel})' if args.midi_channel else ''}"
          f"{' (map ' + args.midi_map + ')' if args.midi_map else ''}:\n{describe_map(ctl.map, bank)}")
    if args.midi_learn:
        print(f"MIDI learn: move a controller to bind it to {args.midi_learn}")
    return ctl


def cmd_live(args) -> int:
    import torch
    from ..engine.device import import_sounddevice, pick_sample_rate, run_live, summary_line
    from ..engine.resampling import CrossRateProcessor, ResamplingProcessor, live_processor
    params = parse_params(args.param or [])
    if args.midi is None and (args.midi_map or args.midi_learn or args.midi_channel is not None):
        raise ValueError("--midi-map, --midi-learn and --midi-channel need --midi PORT")
    sd = import_sounddevice()
    torch.set_num_threads(args.threads)
    model = common.load_model(args)
    if getattr(model, "kind", "") == "note":
        return _live_notes(args, model, params, sd)
    ind, outd = common.device(args.input_device), common.device(args.output_device)
    rate = args.sample_rate or model.sample_rate_out
    rate = pick_sample_rate(sd, ind, outd, args.channels, rate, strict=args.sample_rate is not None)
    if not 1 <= args.hop <= 1 << 20:
        raise ValueError(f"--hop must be 1 to {1 << 20} samples, got {args.hop}")
    opts = dict(channels=args.channels, wet=args.wet, runtime=args.runtime, threads=args.threads,
                limiter=not args.no_limiter, mode=args.mode, hop=args.hop,
                worker={"auto": None, "on": True, "off": False}[args.worker])
    proc = live_processor(model, rate, args.block_size, **opts)
    runtime = proc.runtime if isinstance(proc, CrossRateProcessor) else getattr(proc, "inner", proc).stream.runtime
    print(f"rtgan live: {model.name} on {sd.query_devices(ind, 'input')['name']} -> "
          f"{sd.query_devices(outd, 'output')['name']}, {rate} Hz, block {args.block_size}, "
          f"{args.channels} ch, wet {args.wet:g}, runtime {runtime}")
    if isinstance(proc, CrossRateProcessor):
        ways = [f"input {rate} -> {model.port_in.rate} Hz" if model.port_in.rate != rate else "",
                f"output {model.port_out.rate} -> {rate} Hz" if model.port_out.rate != rate else ""]
        print(f"{model.name} reads {model.port_in.rate} Hz and writes {model.port_out.rate} Hz: resampling with "
              f"libsamplerate ({', '.join(w for w in ways if w)}; model steps of {proc.chunk_sizes} input frames, "
              f"FIFO prefill {proc.prefill} samples); mix and limiter at {rate} Hz")
        parts = " + ".join(f"{k} {v:.1f}" for k, v in proc.latency_parts.items())
        print(f"algorithmic latency {proc.latency_samples} samples = {proc.latency_ms:.2f} ms at {rate} Hz "
              f"({parts}); Ctrl-C stops")
    else:
        inner = getattr(proc, "inner", proc)
        if isinstance(proc, ResamplingProcessor):
            print(f"the device runs at {rate} Hz, {model.name} at {model.sample_rate_in} Hz: resampling with "
                  f"libsamplerate (model blocks of {inner.block_size}, output FIFO {proc.prefill} samples"
                  + (", computed on a worker thread one device block later" if proc.worker else "") + ")")
        print(f"algorithmic latency {proc.latency_samples} samples = {proc.latency_ms:.2f} ms (model-rate part: block "
              f"{inner.block_size} + model {inner.stream.model_latency_samples} + FIFO "
              f"{inner.stream.fifo_latency_samples} + limiter {inner.limiter_latency_samples}); Ctrl-C stops")
    bank = start_params(proc, params)
    midi = setup_midi(args, bank)
    try:
        summary = run_live(proc, ind, outd, duration=args.duration, status=None if args.quiet else print,
                           lock_memory=not args.no_mlock, wakeup_latency_us=args.cpu_dma_latency,
                           on_tick=midi.maybe_poll if midi is not None else None)
    finally:
        if midi is not None:
            midi.close()
    summary["params"] = {p.name: bank.target(p.name) for p in bank.params}
    inner = getattr(proc, "inner", proc)
    if getattr(inner, "state_parameter_values", None) and inner.state_parameter_values():
        summary["model_state"] = inner.state_parameter_values()  # what the model's step last ran with
    if midi is not None:
        summary["midi"] = {"port": midi.port_name, **midi.counts}
    print(summary_line(summary))
    if args.json:
        from ..fileio import atomic_write_text
        atomic_write_text(args.json, json.dumps(summary, indent=2) + "\n")
    return 0


def _live_notes(args, model, params, sd) -> int:
    """``rtgan live`` for a note model: MIDI notes play pre-generated notes (rtgan.engine.voices)."""
    from ..engine.device import pick_sample_rate, run_live, summary_line
    from ..engine.voices import VoiceProcessor
    if args.midi is None:
        raise ValueError(f"{model.name} is played from MIDI notes: give --midi PORT (see 'rtgan midi-ports')")
    if args.polyphony < 1:
        raise ValueError(f"--polyphony must be at least 1, got {args.polyphony}")
    ind, outd = common.device(args.input_device), common.device(args.output_device)
    rate = pick_sample_rate(sd, ind, outd, args.channels, args.sample_rate or model.sample_rate_out,
                            strict=args.sample_rate is not None)
    lo, hi = model.pitch_range
    print(f"rtgan live: {model.name}, generating {hi - lo + 1} pitches x {max(len(model.labels), 1)} labels ahead ...")
    proc = VoiceProcessor(model, args.block_size, channels=args.channels, polyphony=args.polyphony, sample_rate=rate)
    resampled = f" (resampled {model.sample_rate_out} -> {rate} Hz)" if rate != model.sample_rate_out else ""
    print(f"rendered {len(proc.cache.notes)} notes{resampled} in {proc.cache.last_render_s:.1f} s; MIDI {lo}..{hi} -> "
          f"{sd.query_devices(outd, 'output')['name']}, {rate} Hz, block {args.block_size}, "
          f"{args.polyphony} voices; note-on to first sample: at most one block = "
          f"{1000.0 * args.block_size / rate:.2f} ms; Ctrl-C stops")
    bank = start_params(proc, params)
    midi = setup_midi(args, bank, on_note=proc.note_event)
    try:
        summary = run_live(proc, ind, outd, duration=args.duration, status=None if args.quiet else print,
                           lock_memory=not args.no_mlock, wakeup_latency_us=args.cpu_dma_latency, on_tick=midi.maybe_poll)
    finally:
        midi.close()
    summary["params"] = {p.name: bank.target(p.name) for p in bank.params}
    summary["midi"] = {"port": midi.port_name, **midi.counts}
    summary["notes"] = {**proc.counts, "latency": proc.latency_summary(), "morph": proc.cache.morph,
                        "cache_renders": proc.cache.renders}
    lat = summary["notes"]["latency"]
    print(summary_line(summary))
    print(f"notes: {proc.counts['notes_on']} on, {proc.counts['notes_off']} off; note-on to first sample median "
          f"{lat['median_ms']:.2f} ms, max {lat['max_ms']:.2f} ms over {lat['n']} notes")
    if args.json:
        from ..fileio import atomic_write_text
        atomic_write_text(args.json, json.dumps(summary, indent=2) + "\n")
    return 0


def cmd_latency(args) -> int:
    from ..engine.live import LiveProcessor
    from ..engine.roundtrip import format_roundtrip_table, jack_loopback, measure_roundtrip, missing_clicks_message
    ind, outd = common.device(args.input_device), common.device(args.output_device)
    hook = jack_loopback if args.jack_loopback else None
    if args.checkpoint and not args.model:
        raise ValueError("--checkpoint needs --model (which model the checkpoint holds)")
    proc = None
    if args.model:
        model = common.load_model(args)
        if model.port_in != model.port_out:  # resampled around, at the rate asked for
            from ..engine.resampling import CrossRateProcessor
            proc = CrossRateProcessor(model, args.sample_rate, args.block_size, channels=1, runtime=args.runtime,
                                      threads=1)
        elif model.sample_rate_in != args.sample_rate:
            raise ValueError(f"{model.name} runs at {model.sample_rate_in} Hz; pass --sample-rate {model.sample_rate_in}")
        else:
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
