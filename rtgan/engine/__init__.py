"""Streaming engine: stateful, overlap-save and overlap-add runners with computed latency."""
from .ola import LiveOverlapAdd, OverlapAdd, offline_ola
from .overlap_save import OverlapSave, context, offline
from .stateful import StatefulState, StatefulStream
from .stream import MODES, make_stream, stream_signal

__all__ = ["LiveOverlapAdd", "OverlapAdd", "offline_ola", "OverlapSave", "StatefulState", "StatefulStream", "context", "offline",
           "MODES", "make_stream", "stream_signal"]
