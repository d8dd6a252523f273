"""Atomic file writes: write to a temporary file beside the target, then rename."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def unwritable_reason(folder: str | Path) -> str | None:
    """Why no new file can be created in ``folder`` (``None`` if one can).

    Probes by creating and removing a hidden temporary file, which also catches read-only
    file systems and permissions that :func:`os.access` misreports (e.g. for root).
    """
    try:
        fd, probe = tempfile.mkstemp(prefix=".rtgan-probe.", suffix=".tmp", dir=folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(probe)
    return None


def atomic_write(path: str | Path, writer: Callable[[str], None]) -> Path:
    """Call ``writer(tmp_path)`` and rename the result onto ``path``.

    The temporary file lives in ``path``'s folder (created if needed), so the rename is
    atomic: a crash leaves either the old file or the new one, never half of one. The
    temporary file is removed if ``writer`` fails or is interrupted (any exception,
    ``KeyboardInterrupt`` and the CLI's SIGTERM exception included: a signal that kills
    the process outright, like SIGKILL, is the only way to leave it behind).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.close(fd)
        writer(tmp)
        umask = os.umask(0)  # mkstemp creates the file 0600: give it the usual mode for a new file
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))
