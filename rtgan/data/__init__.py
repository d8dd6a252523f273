"""Offline real-audio corpus built from Debian packages, and its PyTorch dataset.

Public API (imported lazily, so that building a corpus does not import torch):

* :func:`build_corpus`, :func:`manifest_hash` - :mod:`rtgan.data.corpus`
* :class:`ClipDataset`, :func:`load_manifest` - :mod:`rtgan.data.dataset`
* :data:`SOURCES`, :class:`Source`, :func:`get_source` - :mod:`rtgan.data.sources`
"""

from __future__ import annotations

import importlib

__all__ = ["build_corpus", "manifest_hash", "ClipDataset", "load_manifest", "SOURCES", "Source",
           "get_source"]

_WHERE = {
    "build_corpus": "corpus",
    "manifest_hash": "corpus",
    "ClipDataset": "dataset",
    "load_manifest": "dataset",
    "SOURCES": "sources",
    "Source": "sources",
    "get_source": "sources",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
