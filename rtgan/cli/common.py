"""Helpers shared by the command modules: argument types and groups, the model a command names,
the command line recorded in metadata.

Command modules call :func:`load_model` as ``common.load_model`` (an attribute look-up at call
time), so that tests can replace it in one place.
"""
from __future__ import annotations

import argparse
import shlex
import sys


def samples(value: str) -> int:
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


def command_line(argv: list[str] | None) -> str:
    """The command as typed (``rtgan ...``, shell-quoted), for checkpoint and result metadata."""
    return "rtgan " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))


def load_model(args) -> "object":
    """The model a command names: ``--checkpoint`` if given, else random weights of ``--preset``
    with ``--random-weights``, else the shipped weights of ``--model``."""
    from ..models import registry
    if getattr(args, "checkpoint", None):
        return registry.load_model(args.model, path=args.checkpoint)
    if getattr(args, "random_weights", False):
        name, tag = registry.split_ref(args.model)
        if tag is not None:
            raise ValueError(f"--random-weights builds {name} from --preset; {args.model!r} names shipped weights")
        return registry.build(args.model, args.preset)
    return registry.load_model(args.model)


def device(value: str | None):
    """A PortAudio device given as an index or a (sub)string of its name."""
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def block_range() -> str:
    """The valid block sizes, as the options' help states them."""
    from ..engine.render import MAX_BLOCK_SIZE
    return f"1 to 2**20 = {MAX_BLOCK_SIZE}"


def model_args(q: argparse.ArgumentParser, block_default=None,
               block_help: str = "samples per block at the model rate") -> None:
    """``--model``, ``--checkpoint``, ``--block-size`` (when ``block_default`` is given) and ``--runtime``."""
    from ..engine.runtime import STEP_RUNTIMES as RUNTIMES
    q.add_argument("--model", default="sr-hifigan",
                   help="registered model name, or NAME@TAG for one of its shipped weights, e.g. sr16-unet@r4 "
                        "(see 'rtgan models'; default: %(default)s)")
    q.add_argument("--checkpoint", help="a .safetensors checkpoint instead of the shipped weights")
    if block_default is not None:
        q.add_argument("--block-size", type=samples, default=block_default,
                       help=f"{block_help}, {block_range()} (default: %(default)s)")
    q.add_argument("--runtime", choices=RUNTIMES,
                   help="how the model runs: stateful mode: onnxruntime (default when installed), "
                        "torchscript, eager; overlap-save: torchscript (default) or eager")


def device_args(q: argparse.ArgumentParser) -> None:
    """``--input-device`` and ``--output-device``."""
    for side in ("input", "output"):
        q.add_argument(f"--{side}-device", help=f"{side} device index or name substring "
                                               "(default: system default; see 'rtgan devices')")
