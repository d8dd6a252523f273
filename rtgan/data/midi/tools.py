"""What the ``music21-fluidsynth`` source needs, and its errors: find fluidsynth, the soundfont, mido and music21.

A missing tool raises :class:`MissingToolError` naming the Debian package or pip package that
provides it; a piece that can't be used raises :class:`MidiSourceError` (the piece is skipped).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from pathlib import Path

from ..sources import OPT_IN_SOURCES

__all__ = ["SOURCE_NAME", "LICENSE", "DEFAULT_SOUNDFONT", "MidiSourceError", "MissingToolError", "check_tools",
           "find_fluidsynth", "fluidsynth_version", "music21_version", "require", "require_mido",
           "require_music21", "soundfont_path"]

#: Source name in the corpus registry and the manifest.
SOURCE_NAME = "music21-fluidsynth"
#: Manifest ``license`` of every clip of this source.
LICENSE = OPT_IN_SOURCES[SOURCE_NAME].license
#: Soundfont of Debian's ``fluid-soundfont-gm`` (override: ``$RTGAN_SOUNDFONT``).
DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
_INSTALL_HINT = "install them with `apt-get install fluidsynth fluid-soundfont-gm`"


class MidiSourceError(RuntimeError):
    """A score or MIDI file that can't be parsed, exported or rendered (the piece is skipped)."""


class MissingToolError(RuntimeError):
    """``fluidsynth``, the soundfont, ``mido`` or ``music21`` is not installed."""


def soundfont_path(soundfont: Path | str | None = None) -> Path:
    """``soundfont``, else ``$RTGAN_SOUNDFONT``, else :data:`DEFAULT_SOUNDFONT`."""
    return Path(soundfont or os.environ.get("RTGAN_SOUNDFONT") or DEFAULT_SOUNDFONT)


def find_fluidsynth(soundfont: Path | str | None = None) -> tuple[str, Path]:
    """Return (fluidsynth executable, soundfont path).

    The soundfont is ``soundfont``, else ``$RTGAN_SOUNDFONT``, else
    :data:`DEFAULT_SOUNDFONT`.

    Raises:
        MissingToolError: naming what is missing and the ``apt-get install``
            command that provides it.
    """
    exe = shutil.which("fluidsynth")
    sf2 = soundfont_path(soundfont)
    missing = []
    if exe is None:
        missing.append("the `fluidsynth` program (Debian package fluidsynth)")
    if not sf2.is_file():
        missing.append(f"the soundfont {sf2} (Debian package fluid-soundfont-gm)")
    if missing:
        raise MissingToolError(f"the {SOURCE_NAME} corpus source needs {' and '.join(missing)}; "
                               f"{_INSTALL_HINT}")
    return exe, sf2


def require(module: str):
    """Import ``module`` (``mido`` or ``music21``) or raise :class:`MissingToolError` saying how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingToolError(f"the {SOURCE_NAME} corpus source needs the Python package {module} "
                               f"(pip install {module})") from e


def require_mido():
    """The ``mido`` module, or :class:`MissingToolError`."""
    return require("mido")


def require_music21():
    """The ``music21`` module, or :class:`MissingToolError`."""
    return require("music21")


def music21_version() -> str:
    """Installed music21 version (the manifest's ``package_version``)."""
    return str(require_music21().__version__)


def fluidsynth_version(exe: str | None = None) -> str:
    """First line of ``fluidsynth --version`` ("" if it can't be run)."""
    try:
        r = subprocess.run([exe or shutil.which("fluidsynth") or "fluidsynth", "--version"],
                           capture_output=True, text=True, timeout=30)
        return (r.stdout.strip().splitlines() or [""])[0]
    except (OSError, subprocess.SubprocessError):
        return ""


def check_tools(soundfont: Path | str | None = None) -> dict:
    """Check everything the source needs before a build starts; return facts for ``corpus.json``.

    Raises:
        MissingToolError: if fluidsynth, the soundfont, mido or music21 is missing.
    """
    exe, sf2 = find_fluidsynth(soundfont)
    require_mido()
    return {"music21_version": music21_version(), "fluidsynth": fluidsynth_version(exe),
            "soundfont": str(sf2)}
