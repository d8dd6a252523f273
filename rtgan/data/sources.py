"""Registry of the Debian packages that make up the real-audio corpus.

Every source is one small :class:`Source` entry: which Debian package ships the
audio, where inside the extracted package the files live (``base``), which
files to take (``patterns``, :mod:`fnmatch` patterns matched case-insensitively
against the path relative to ``base``; ``*`` also crosses ``/``), the license,
the domain (``"music"`` or ``"speech"``) and how the *split key* is derived
from a file's path.

The split key names the unit that must never be spread over two of the
train/val/test splits (a track, a drum kit, a speaker, a dialogue scene...).
See :func:`rtgan.data.common.assign_splits` for the split rule.

Notes on individual sources (what was found inside the packages):

* ``wesnoth-1.16-music`` - 41 orchestral tracks, Ogg/Vorbis 44.1 kHz stereo.
  Split key: the track (file stem).
* ``hydrogen-drumkits`` - 14 Hydrogen drum kits (WAV/FLAC/AIFF one-shots,
  44.1/48 kHz). Split key: the kit folder. Licenses differ per kit; they are
  taken from the package's ``debian/copyright`` (see ``HYDROGEN_KIT_LICENSES``).
* ``sonic-pi-samples`` - 165 FLAC samples (one-shots and loops, 44.1 kHz),
  all CC0 per ``debian/copyright``. Split key: the sample family, i.e. the
  file-name prefix before the first ``_`` (``bd``, ``loop``, ``tabla``...).
* ``lmms-common`` - LMMS sample library (``samples/<category>/*.ogg|wav|flac``).
  Five ``*.ogg`` files are really malformed WAVs; they are skipped with a
  logged warning. Single-cycle waveforms (< 0.5 s) fall out by the length rule.
  Split key: ``<category>/<family>`` where the family is the file stem with its
  trailing take number removed (``drums/snare01`` .. ``drums/snare07`` ->
  ``drums/snare``).
* ``klettres-data`` - spoken letters (``<lang>/alpha``) and syllables
  (``<lang>/syllab``) for 20 languages, mostly 44.1 kHz. The package does not
  name its speakers, but each language folder was recorded by its own
  contributor, so the language folder is the speaker/voice id and the split
  key (20 keys: enough for speaker-disjoint splits).
* ``fillets-ng-data`` - the base Fish Fillets package holds *no dialogue*: its
  ``sound/`` folder has sound effects only, plus 15 game-music tracks
  (22.05 kHz mono) in ``music/``. This source therefore takes the music tracks
  (domain ``"music"``, split key = track) and ignores the effects.
* ``fillets-ng-data-cs`` / ``fillets-ng-data-nl`` - Czech / Dutch dubbing of
  the game dialogues (``sound/<level>/<lang>/<level>-<character>-<line>.ogg``,
  mostly 22.05 kHz). Two actors (the two fish, characters ``m`` and ``v``)
  speak ~80% of all lines, so speaker-disjoint splits would put almost all
  data in one split. The split key is the level (one dialogue scene/file),
  which keeps every scene within one split; speakers do overlap across splits.

* ``music21-fluidsynth`` - *opt-in* (``build_corpus(..., with_midi=True)``,
  ``rtgan data build --with-midi``): scores of music21's bundled corpus
  exported to MIDI and rendered with Debian's ``fluidsynth`` +
  ``fluid-soundfont-gm``, each piece with 2 General MIDI programs. Not a
  Debian package source: its "files" are ``<score path>/program-NNN``
  (relative to music21's corpus folder), and the split key is the score
  path. Mostly nothing above ~11-12 kHz (harpsichord renders reach ~18 kHz):
  for the 22.05 kHz vocoders, not for 48 kHz super-resolution targets. See
  :mod:`rtgan.data.midi`.

* ``ktuberling-data`` - *not built by default* (``rtgan data build --add-source
  ktuberling-data``): the spoken words of KDE's KTuberling game in 25 language
  folders (``<lang>/*.ogg|wav``; 44.1, 22.05 and 8 kHz), each language one
  voice, so the language folder is the split key. Measured (bandwidth as the
  manifest's): da, de, el, gl, ro, ru, sl and wa are mostly full band (>= 16 kHz),
  fr, lt and uk in part; 22 minutes in all. Extra voices for speech super-resolution
  (KLettres' training speech is half one voice); kept out of the default build so
  the default corpus, and every number measured on it, stays as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Callable

__all__ = [
    "Source",
    "SOURCES",
    "DEFAULT_SOURCES",
    "OPTIONAL_SOURCES",
    "OPT_IN_SOURCES",
    "HYDROGEN_KIT_LICENSES",
    "get_source",
]


@dataclass(frozen=True)
class Source:
    """One corpus source (a set of audio files inside one Debian package).

    Attributes:
        name: Source id, used in the output paths and the manifest.
        package: Debian binary package that ships the files.
        base: Folder inside the extracted package (posix path, relative to the
            package root) under which ``patterns`` are matched.
        patterns: fnmatch patterns for the file paths relative to ``base``,
            matched case-insensitively; ``*`` also matches ``/``.
        license: License string (SPDX-like) for the whole source.
        domain: ``"music"`` or ``"speech"``.
        split_key_fn: Maps the path relative to ``base`` to the split key.
        license_fn: Optional per-file license override (path relative to
            ``base`` -> license string); falls back to ``license``.
        description: One line for humans.
        exclude: fnmatch patterns of paths to leave out even where ``patterns`` match.
        default: built by default; ``False``: only when named (``rtgan data build
            --add-source NAME``), so adding the source does not change the default corpus,
            its splits or any number measured on them.
    """

    name: str
    package: str
    base: str
    patterns: tuple[str, ...]
    license: str
    domain: str
    split_key_fn: Callable[[PurePosixPath], str]
    license_fn: Callable[[PurePosixPath], str | None] | None = None
    description: str = ""
    exclude: tuple[str, ...] = field(default_factory=tuple)
    default: bool = True

    def matches(self, rel: PurePosixPath | str) -> bool:
        """True if ``rel`` (path relative to ``base``) is an audio file of this source."""
        s = str(rel).lower()
        if any(fnmatchcase(s, p.lower()) for p in self.exclude):
            return False
        return any(fnmatchcase(s, p.lower()) for p in self.patterns)

    def split_key(self, rel: PurePosixPath | str) -> str:
        """Split key (track / kit / speaker / scene id) of a file, given its path relative to ``base``."""
        return self.split_key_fn(PurePosixPath(rel))

    def license_for(self, rel: PurePosixPath | str) -> str:
        """License of one file (path relative to ``base``)."""
        if self.license_fn is not None:
            lic = self.license_fn(PurePosixPath(rel))
            if lic:
                return lic
        return self.license


# --- split-key functions (module level so that they pickle) -----------------

def _key_stem(rel: PurePosixPath) -> str:
    return rel.stem


def _key_first_dir(rel: PurePosixPath) -> str:
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _key_prefix_family(rel: PurePosixPath) -> str:
    return rel.stem.split("_", 1)[0]


_TRAILING_TAKE = re.compile(r"[\s_\-!.]*\d*[\s_\-!.]*$")


def _key_parent(rel: PurePosixPath) -> str:
    return str(rel.parent) if len(rel.parts) > 1 else rel.stem


def _key_category_family(rel: PurePosixPath) -> str:
    family = _TRAILING_TAKE.sub("", rel.stem) or rel.stem
    category = rel.parts[0] if len(rel.parts) > 1 else ""
    return f"{category}/{family}" if category else family


# --- per-file licenses -------------------------------------------------------

#: Per-kit licenses of ``hydrogen-drumkits``, from the package's debian/copyright.
HYDROGEN_KIT_LICENSES: dict[str, str] = {
    "Audiophob": "CC0-1.0",
    "BJA_Pacific": "CC-BY-SA-3.0-US",
    "ColomboAcousticDrumkit": "GPL-2+ with composition exception",
    "ElectricEmpireKit": "GPL-2+",
    "ForzeeStereo": "GPL-2",
    "Gimme A Hand 1.0": "GPL-2",
    "HardElectro1": "GPL-2+",
    "Millo-Drums_v.1": "GPL-2",
    "Millo_MultiLayered2": "GPL-2",
    "Millo_MultiLayered3": "GPL-2",
    "The Black Pearl 1.0": "GPL-2",
    "VariBreaks": "GPL-2+",
    "circAfrique v4": "CC-BY-SA-3.0",
    "rumpf_kit_z01_h2": "CC-BY-3.0",
}


def _hydrogen_license(rel: PurePosixPath) -> str | None:
    return HYDROGEN_KIT_LICENSES.get(rel.parts[0]) if len(rel.parts) > 1 else None


# --- the registry -------------------------------------------------------------

_ALL: list[Source] = [
    Source(
        name="wesnoth-1.16-music",
        package="wesnoth-1.16-music",
        base="usr/share/games/wesnoth/1.16/data/core/music",
        patterns=("*.ogg",),
        license="GPL-2",
        domain="music",
        split_key_fn=_key_stem,
        description="Battle for Wesnoth orchestral soundtrack (41 tracks)",
    ),
    Source(
        name="hydrogen-drumkits",
        package="hydrogen-drumkits",
        base="usr/share/hydrogen/data/drumkits",
        patterns=("*.wav", "*.flac", "*.aif", "*.aiff"),
        license="GPL-2 / GPL-2+ / CC-BY-3.0 / CC-BY-SA-3.0 / CC0-1.0 (per kit)",
        domain="music",
        split_key_fn=_key_first_dir,
        license_fn=_hydrogen_license,
        description="Hydrogen drum kits (one-shot drum samples); split key = kit",
    ),
    Source(
        name="sonic-pi-samples",
        package="sonic-pi-samples",
        base="usr/share/sonic-pi/samples",
        patterns=("*.flac", "*.wav"),
        license="CC0-1.0",
        domain="music",
        split_key_fn=_key_prefix_family,
        description="Sonic Pi sample library; split key = sample family (name prefix)",
    ),
    Source(
        name="lmms-common",
        package="lmms-common",
        base="usr/share/lmms/samples",
        patterns=("*.ogg", "*.wav", "*.flac"),
        license="GPL-2+",
        domain="music",
        split_key_fn=_key_category_family,
        description="LMMS sample library; split key = category/family",
    ),
    Source(
        name="klettres-data",
        package="klettres-data",
        base="usr/share/klettres",
        patterns=("*/alpha/*.ogg", "*/syllab/*.ogg"),
        license="GPL-2+",
        domain="speech",
        split_key_fn=_key_first_dir,
        description="KLettres spoken letters/syllables; split key = language folder (one voice each)",
    ),
    Source(
        name="fillets-ng-data",
        package="fillets-ng-data",
        base="usr/share/games/fillets-ng/music",
        patterns=("*.ogg",),
        license="GPL-2",
        domain="music",
        split_key_fn=_key_stem,
        description="Fish Fillets NG game music (the base package has no dialogue)",
    ),
    Source(
        name="fillets-ng-data-cs",
        package="fillets-ng-data-cs",
        base="usr/share/games/fillets-ng/sound",
        patterns=("*/cs/*.ogg",),
        license="GPL-2",
        domain="speech",
        split_key_fn=_key_first_dir,
        description="Fish Fillets NG Czech acted dialogue; split key = level (scene)",
    ),
    Source(
        name="fillets-ng-data-nl",
        package="fillets-ng-data-nl",
        base="usr/share/games/fillets-ng/sound",
        patterns=("*/nl/*.ogg",),
        license="GPL-2",
        domain="speech",
        split_key_fn=_key_first_dir,
        description="Fish Fillets NG Dutch acted dialogue; split key = level (scene)",
    ),
    Source(
        name="ktuberling-data",
        package="ktuberling-data",
        base="usr/share/ktuberling/sounds",
        patterns=("*/*.ogg", "*/*.wav"),
        license="GPL-2+",
        domain="speech",
        split_key_fn=_key_first_dir,
        description="KTuberling spoken words, one voice per language folder; split key = language; "
                    "not built by default (--add-source)",
        default=False,
    ),
]

#: All implemented sources, by name, in build order.
SOURCES: dict[str, Source] = {s.name: s for s in _ALL}

#: Sources built when ``build_corpus(..., sources=None)``: those of :data:`SOURCES` with
#: ``default`` set (the others are built only when named).
DEFAULT_SOURCES: tuple[str, ...] = tuple(n for n, s in SOURCES.items() if s.default)

#: Sources built only on request (never by default), by name, in build order
#: after :data:`SOURCES`. ``base`` is empty: the worker renders each "file".
OPT_IN_SOURCES: dict[str, Source] = {
    "music21-fluidsynth": Source(
        name="music21-fluidsynth",
        package="music21",
        base="",
        patterns=("*/program-*",),
        license="music21 corpus (see music21 docs); rendered with FluidR3_GM (MIT)",
        domain="music",
        split_key_fn=_key_parent,
        description="music21 corpus scores rendered with FluidSynth (2 GM programs each); "
                    "split key = score; mostly < ~12 kHz (vocoders only)",
    ),
}

#: Sources that :func:`get_source` refuses unless asked for (name -> how to ask).
OPTIONAL_SOURCES: dict[str, str] = {
    "music21-fluidsynth": "opt-in source (MIDI rendered with FluidSynth, needs Debian packages "
                          "fluidsynth and fluid-soundfont-gm): pass with_midi=True to build_corpus "
                          "(CLI: rtgan data build --with-midi)",
}


def get_source(name: str, opt_in: bool = False) -> Source:
    """Return the :class:`Source` called ``name``.

    Args:
        name: source name.
        opt_in: also return sources of :data:`OPT_IN_SOURCES` (else they raise).

    Raises:
        NotImplementedError: for an opt-in source without ``opt_in`` (the
            message says how to ask for it).
        KeyError: for an unknown name (the message lists the known ones).
    """
    if name in SOURCES:
        return SOURCES[name]
    if opt_in and name in OPT_IN_SOURCES:
        return OPT_IN_SOURCES[name]
    if name in OPTIONAL_SOURCES:
        raise NotImplementedError(f"source {name!r}: {OPTIONAL_SOURCES[name]}")
    raise KeyError(f"unknown corpus source {name!r}; known: {', '.join([*SOURCES, *OPT_IN_SOURCES])}")
