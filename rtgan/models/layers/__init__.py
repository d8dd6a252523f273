"""Streaming-aware building blocks: padded and cached convs, superpixel/subpixel, inception."""
from .cached import StateCursor, align, align_phase, cached_conv, delay_line
from .conv import PaddedConv1d, conv_padding
from .inception import Inception1d, split_filters
from .reach import Reach
from .shuffle import PixelShuffle1d, PixelUnshuffle1d

__all__ = ["StateCursor", "align", "align_phase", "cached_conv", "delay_line", "PaddedConv1d", "conv_padding",
           "Inception1d", "split_filters", "Reach", "PixelShuffle1d", "PixelUnshuffle1d"]
