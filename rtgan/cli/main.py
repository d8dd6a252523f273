"""The ``rtgan`` command: the entry point, the top-level parser, argument checks and dispatch.

The commands live in one module per group, each with its parsers (``add_parsers``) and its
``cmd_*`` functions: :mod:`~rtgan.cli.corpus` (``data build``), :mod:`~rtgan.cli.training`
(``train``, ``select``, ``calibrate``, ``eval``), :mod:`~rtgan.cli.offline` (``render``, ``bench``) and
:mod:`~rtgan.cli.realtime` (``devices``, ``live``, ``latency``); shared helpers are in
:mod:`~rtgan.cli.common`. ``models`` is here.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading

from . import corpus, notes, offline, realtime, training


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


def cmd_models(args) -> int:
    from ..models import registry
    for name in registry.available():
        e = registry.entry(name)
        shipped = ", ".join(registry.shipped_weights(name)) or "none"
        print(f"{name:16s} {e.description}")
        print(f"{'':16s} presets: {', '.join(e.presets)}; shipped weights: {shipped}")
        # ports and kind do not depend on the preset: ask the smallest one
        m = registry.build(name, "tiny" if "tiny" in e.presets else next(iter(e.presets)))
        if m.kind == "note":
            lo, hi = m.pitch_range
            print(f"{'':16s} note: MIDI pitch {lo}..{hi} -> {m.port_out}")
        else:
            print(f"{'':16s} {m.kind}: {m.port_in} -> {m.port_out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtgan", description="Real-time neural audio processing with GAN generators.")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("models", help="list registered models and whether weights ship")
    corpus.add_parsers(sub)
    training.add_parsers(sub)
    offline.add_parsers(sub)
    realtime.add_parsers(sub)
    notes.add_parsers(sub)
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
    except BrokenPipeError:  # `rtgan models | head`: the reader left; say nothing more
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (flushing at exit must not raise again)
        except OSError:
            pass
        return 141  # 128 + SIGPIPE, as a shell reports it


def _run(parser: argparse.ArgumentParser, args, argv: list[str] | None) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..audio.io import AudioError
    from ..checkpoint import CheckpointError
    try:
        _check_args(args)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "data":
            if args.data_command == "pairs":
                return corpus.cmd_data_pairs(args)
            if args.data_command == "pack":
                return corpus.cmd_data_pack(args)
            return corpus.cmd_data_notes(args) if args.data_command == "notes" else corpus.cmd_data_build(args)
        if args.command == "train":
            return training.cmd_train(args, argv)
        if args.command == "calibrate":
            return training.cmd_calibrate(args, argv)
        if args.command == "select":
            return training.cmd_select(args, argv)
        if args.command == "eval":
            return training.cmd_eval(args, argv)
        if args.command == "render":
            return offline.cmd_render(args)
        if args.command == "bench":
            return offline.cmd_bench(args)
        if args.command == "devices":
            return realtime.cmd_devices(args)
        if args.command == "live":
            return realtime.cmd_live(args)
        if args.command == "latency":
            return realtime.cmd_latency(args)
        if args.command == "synth":
            return notes.cmd_synth(args)
        if args.command == "midi-ports":
            return realtime.cmd_midi_ports(args)
    except (AudioError, CheckpointError, FileNotFoundError, KeyError, ValueError, RuntimeError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"rtgan {args.command}: error: {msg}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
