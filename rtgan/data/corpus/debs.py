"""Debian packages as corpus input: the download cache, ``apt-get download`` and ``dpkg -x``.

:func:`ensure_package_root` gives the folder a source's package is extracted to (downloading
and extracting it once); :func:`default_cache_dir` and :func:`cache_usage` say where that cache
is and how big it is.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import unquote

__all__ = ["default_cache_dir", "cache_usage", "ensure_package_root", "root_version"]

log = logging.getLogger(__name__)

_MARKER = ".rtgan-extracted.json"


def default_cache_dir() -> Path:
    """Where downloaded ``.deb`` files and extracted packages are kept between builds.

    ``$RTGAN_CACHE_DIR`` (or the older ``$RTGAN_CACHE``), else ``$XDG_CACHE_HOME/rtgan``,
    else ``~/.cache/rtgan``. A full build keeps about 1.1 GB there.
    """
    for var in ("RTGAN_CACHE_DIR", "RTGAN_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "rtgan"


def cache_usage(path: Path | str) -> int:
    """Bytes taken by the files under ``path`` (0 if it does not exist; links not followed)."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for fn in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, fn)).st_size
            except OSError:
                pass
    return total


def _deb_version(deb: Path) -> str:
    try:
        r = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                           text=True, check=True)
        v = r.stdout.strip()
        if v:
            return v
    except (OSError, subprocess.CalledProcessError):
        pass
    parts = deb.name.split("_")
    return unquote(parts[1]) if len(parts) >= 3 else "unknown"


def _find_deb(package: str, debs_dir: Path) -> Path | None:
    found = sorted(debs_dir.glob(f"{package}_*.deb"))
    if len(found) > 1:
        log.warning("several .deb files for %s in %s; using %s", package, debs_dir, found[-1].name)
    return found[-1] if found else None


def ensure_package_root(package: str, debs_dir: Path | None = None,
                        cache_dir: Path | None = None) -> tuple[Path, str]:
    """Make sure ``package`` is downloaded and extracted; return (root, version).

    Looks for ``<package>_*.deb`` in ``debs_dir`` (default
    ``<cache>/debs``); if absent, runs ``apt-get download <package>`` there.
    Extracts it with ``dpkg -x`` into ``<cache>/extracted/<package>_<version>``
    unless that was done before (a marker file records a finished extraction).

    Raises:
        RuntimeError: if the package can't be downloaded or extracted.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    debs_dir = Path(debs_dir) if debs_dir else cache_dir / "debs"
    debs_dir.mkdir(parents=True, exist_ok=True)
    deb = _find_deb(package, debs_dir)
    if deb is None:
        if shutil.which("apt-get") is None:
            raise RuntimeError(f"{package}_*.deb not found in {debs_dir} and apt-get is not available; "
                               f"download the package and pass its folder with --debs DIR")
        log.info("downloading %s with apt-get into %s", package, debs_dir)
        r = subprocess.run(["apt-get", "download", package], cwd=debs_dir, capture_output=True, text=True)
        deb = _find_deb(package, debs_dir)
        if r.returncode != 0 or deb is None:
            raise RuntimeError(
                f"`apt-get download {package}` failed (exit {r.returncode}) in {debs_dir}: "
                f"{(r.stderr or r.stdout).strip()[-800:]}\n"
                f"Try `apt-get update` first, or put {package}_*.deb into a folder and pass --debs DIR.")
    version = _deb_version(deb)
    safe_version = re.sub(r"[^A-Za-z0-9.+~-]+", "_", version)
    root = cache_dir / "extracted" / f"{package}_{safe_version}"
    marker = root / _MARKER
    if marker.exists():
        return root, version
    if shutil.which("dpkg") is None and shutil.which("dpkg-deb") is None:
        raise RuntimeError(f"cannot extract {deb}: neither dpkg nor dpkg-deb is installed")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{package}.", dir=root.parent))
    try:
        tool = ["dpkg", "-x"] if shutil.which("dpkg") else ["dpkg-deb", "-x"]
        r = subprocess.run(tool + [str(deb), str(tmp)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"extracting {deb} failed: {r.stderr.strip()[-800:]}")
        (tmp / _MARKER).write_text(json.dumps({"package": package, "version": version,
                                               "deb": deb.name}) + "\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root, version


def root_version(root: Path) -> str:
    """The package version an extraction marker in ``root`` records, else ``"unknown"``."""
    try:
        return json.loads((root / _MARKER).read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "unknown"
