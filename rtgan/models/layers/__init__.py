"""Streaming-aware building blocks: padded convs, superpixel/subpixel, inception."""
from .conv import PaddedConv1d, conv_padding
from .inception import Inception1d, split_filters
from .reach import Reach
from .shuffle import PixelShuffle1d, PixelUnshuffle1d

__all__ = ["PaddedConv1d", "conv_padding", "Inception1d", "split_filters", "Reach", "PixelShuffle1d",
           "PixelUnshuffle1d"]
