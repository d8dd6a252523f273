"""Frozen pretrained networks inside a loss: loaded by registered model name and content hash.

A recipe declares ``frozen = {"ae": ("sr-autoencoder", "<sha256>")}``: the network ``ae`` is
the model ``sr-autoencoder`` loaded strictly from ``WEIGHTS_DIR/sr-autoencoder.safetensors``
(+ ``.json``; the shipped weights directory unless the run names another), whose
:func:`content_hash` must be the given sha256. It is put in eval mode with
``requires_grad=False``, gets no optimiser and is never written into training checkpoints.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import CheckpointError, metadata_path
from ..models import registry


def content_hash(path: str | Path) -> str:
    """sha256 (hex) identifying a checkpoint's network: its weights and what they are weights of.

    The digest of the ``.safetensors`` file's bytes followed by the JSON (sorted keys) of the
    metadata's ``model`` and ``config``; the rest of the metadata (metrics, commands) may
    change without changing the network, and does not count.

    Raises:
        FileNotFoundError: either file is missing.
    """
    path = Path(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    meta = json.loads(metadata_path(path).read_text())
    h.update(json.dumps({"model": meta.get("model"), "config": meta.get("config")}, sort_keys=True).encode())
    return h.hexdigest()


def load_frozen(name: str, model: str, sha256: str, weights_dir: str | Path,
                device: torch.device | str = "cpu") -> nn.Module:
    """Network ``name`` of a recipe: model ``model`` from ``weights_dir``, checked against ``sha256``.

    Returns:
        the network on ``device``, in eval mode, every parameter with ``requires_grad=False``.

    Raises:
        CheckpointError: ``model`` is not a registered model; ``weights_dir`` has no checkpoint
            for it; its :func:`content_hash` is not ``sha256``; or it does not load strictly.
    """
    try:
        registry.entry(model)
    except KeyError as e:
        raise CheckpointError(f"frozen network {name!r}: {e.args[0]}") from None
    path = Path(weights_dir) / f"{model}.safetensors"
    if not (path.exists() and metadata_path(path).exists()):
        raise CheckpointError(f"frozen network {name!r}: no checkpoint of model {model!r} at {path} (+ .json)")
    got = content_hash(path)
    if got != sha256:
        raise CheckpointError(f"frozen network {name!r}: {path} has content hash {got}, the recipe expects {sha256}")
    net = registry.load_generator(path, expected_name=model, device=str(device))
    net.requires_grad_(False)
    return net.eval()
