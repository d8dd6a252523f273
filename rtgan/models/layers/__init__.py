"""Streaming-aware building blocks: padded and cached convs, superpixel/subpixel, inception."""
from .cached import StateCursor, align, align_phase, cached_conv, delay_line
from .conv import PaddedConv1d, conv_padding
from .hold import Hold1d
from .inception import Inception1d, split_filters
from .reach import Reach
from .shuffle import PixelShuffle1d, PixelUnshuffle1d

__all__ = ["StateCursor", "align", "align_phase", "cached_conv", "delay_line", "PaddedConv1d", "conv_padding", "Hold1d",
           "Inception1d", "split_filters", "Reach", "PixelShuffle1d", "PixelUnshuffle1d"]
