"""rtgan: real-time neural audio processing with streaming GAN generators.

    >>> import rtgan
    >>> model = rtgan.load_model("sr-hifigan")      # shipped weights, offline
    >>> stream = rtgan.engine.OverlapSave(model, block_size=256)
"""
from . import engine  # noqa: F401
from .models.registry import available, build, load_model

__version__ = "0.1.0"
__all__ = ["available", "build", "load_model", "engine", "__version__"]
