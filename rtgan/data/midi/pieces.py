"""Which music21 pieces a build renders, with which GM programs, and in which split.

See the package docstring (:mod:`rtgan.data.midi`, steps 1 and 3) for the selection rule.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Sequence

from ..common import assign_splits, unit_hash
from .tools import SOURCE_NAME, require_music21

__all__ = ["GM_PROGRAMS", "PROGRAMS_PER_PIECE", "FULL_MAX_PIECES", "SMALL_PIECES_PER_SPLIT", "SMALL_MAX_FILE_BYTES",
           "SCORE_SUFFIXES", "corpus_root", "corpus_pieces", "order_pieces", "select_pieces", "programs_for",
           "piece_files", "parse_render_path", "resolve_pieces"]

#: General MIDI programs (0-based) a piece may be rendered with.
GM_PROGRAMS: dict[int, str] = {
    0: "Acoustic Grand Piano",
    6: "Harpsichord",
    24: "Acoustic Guitar (nylon)",
    48: "String Ensemble 1",
    71: "Clarinet",
    73: "Flute",
}
#: Renders (programs) per piece.
PROGRAMS_PER_PIECE = 2
#: Pieces of a ``size="full"`` build (first of the round-robin order).
FULL_MAX_PIECES = 300
#: Pieces per split of a ``size="small"`` build.
SMALL_PIECES_PER_SPLIT: dict[str, int] = {"train": 2, "val": 1, "test": 1}
#: Largest score file (bytes) a ``size="small"`` build takes (keeps parsing fast).
SMALL_MAX_FILE_BYTES = 16 * 1024
#: Score formats taken from the corpus (lower case).
SCORE_SUFFIXES: tuple[str, ...] = (".mxl", ".xml", ".musicxml", ".krn", ".abc", ".mid", ".midi")
#: Last path part of a render: ``<score>/program-NNN``.
_PROGRAM_DIR = "program-"


def corpus_root() -> Path:
    """Folder of music21's bundled (core) corpus."""
    from music21 import common
    require_music21()
    return Path(common.getCorpusFilePath())


def corpus_pieces() -> list[str]:
    """Sorted score paths of music21's core corpus, relative to :func:`corpus_root` (posix)."""
    require_music21()
    from music21 import corpus
    root = corpus_root()
    out = set()
    for p in corpus.getCorePaths():
        p = Path(p)
        if p.suffix.lower() in SCORE_SUFFIXES:
            out.add(p.relative_to(root).as_posix())
    return sorted(out)


def order_pieces(pieces: Sequence[str]) -> list[str]:
    """Round-robin order over top-level folders (sorted), sha256 order inside each folder."""
    groups: dict[str, list[str]] = {}
    for p in sorted(set(pieces)):
        groups.setdefault(PurePosixPath(p).parts[0], []).append(p)
    for g in groups.values():
        # salted: a hash independent of the split hash (which is of f"{SOURCE_NAME}/{p}")
        g.sort(key=lambda p: (unit_hash(f"order/{SOURCE_NAME}/{p}"), p))
    out: list[str] = []
    rounds = max((len(g) for g in groups.values()), default=0)
    for i in range(rounds):
        out.extend(groups[k][i] for k in sorted(groups) if i < len(groups[k]))
    return out


def select_pieces(size: str = "small", pieces: Sequence[str] | None = None,
                  root: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """Deterministic piece selection and splits (see the module docstring).

    Args:
        size: ``"small"`` (4 short pieces: 2 train, 1 val, 1 test) or
            ``"full"`` (the first :data:`FULL_MAX_PIECES` of the order).
        pieces: candidate score paths relative to ``root`` (default: all of
            :func:`corpus_pieces`).
        root: folder the paths are relative to (default :func:`corpus_root`);
            used for the file-size rule of ``"small"``.

    Returns:
        (selected pieces in selection order, ``{piece: split}`` for the
        selected pieces).
    """
    if size not in ("small", "full"):
        raise ValueError(f"size must be 'small' or 'full', not {size!r}")
    if pieces is None:
        pieces = corpus_pieces()
        root = root or corpus_root()
    full = order_pieces(pieces)[:FULL_MAX_PIECES]
    split_of = assign_splits(full, SOURCE_NAME)
    if size == "full":
        return full, split_of
    want = dict(SMALL_PIECES_PER_SPLIT)
    chosen = []
    for p in full:
        split = split_of[p]
        if want.get(split, 0) <= 0:
            continue
        if root is not None:
            try:
                if (Path(root) / p).stat().st_size > SMALL_MAX_FILE_BYTES:
                    continue
            except OSError:
                continue
        chosen.append(p)
        want[split] -= 1
        if all(v <= 0 for v in want.values()):
            break
    return chosen, {p: split_of[p] for p in chosen}


def programs_for(piece: str, count: int = PROGRAMS_PER_PIECE) -> tuple[int, ...]:
    """The GM programs a piece is rendered with: ``count`` of :data:`GM_PROGRAMS`, by hash of the path."""
    order = sorted(GM_PROGRAMS, key=lambda p: (unit_hash(f"{SOURCE_NAME}/{piece}/program/{p}"), p))
    return tuple(sorted(order[:max(1, min(count, len(order)))]))


def piece_files(pieces: Sequence[str]) -> list[PurePosixPath]:
    """Corpus "file" paths of the renders: ``<piece>/program-NNN`` for each piece and program."""
    return [PurePosixPath(p) / f"{_PROGRAM_DIR}{prog:03d}" for p in pieces for prog in programs_for(p)]


def parse_render_path(path: Path | str) -> tuple[Path, int]:
    """``<score>/program-NNN`` -> (score path, program)."""
    path = Path(path)
    name = path.name
    if not name.startswith(_PROGRAM_DIR) or not name[len(_PROGRAM_DIR):].isdigit():
        raise ValueError(f"not a {SOURCE_NAME} render path (<score>/program-NNN): {path}")
    program = int(name[len(_PROGRAM_DIR):])
    if not 0 <= program <= 127:
        raise ValueError(f"GM program out of range 0..127 in {path}")
    return path.parent, program


def resolve_pieces(pieces: Sequence[str] | None, size: str) -> list[tuple[Path, str, str]]:
    """(root, piece path relative to root, split) for a build.

    ``pieces=None``: :func:`select_pieces` over music21's corpus. Otherwise
    each entry is a path relative to music21's corpus folder or a path to a
    score/MIDI file anywhere (then its folder is the root); all are used
    and split with :func:`rtgan.data.common.assign_splits` (unweighted)
    over their paths.
    """
    if pieces is None:
        root = corpus_root()
        chosen, split_of = select_pieces(size)
        return [(root, p, split_of[p]) for p in chosen]
    items: list[tuple[Path, str]] = []
    for p in pieces:
        path = Path(p)
        if path.is_absolute() or path.exists() and not (corpus_root() / p).exists():
            path = path.resolve()
            items.append((path.parent, path.name))
        else:
            items.append((corpus_root(), PurePosixPath(p).as_posix()))
    split_of = assign_splits([rel for _, rel in items], SOURCE_NAME)
    return [(root, rel, split_of[rel]) for root, rel in items]
