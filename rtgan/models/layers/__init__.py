"""Streaming-aware building blocks: padded, strided, transposed and cached convs, superpixel/subpixel,
per-frame layers, inception, cubic-spline upsampling."""
from .cached import StateCursor, align, align_phase, cached_conv, delay_line, with_history
from .conv import PaddedConv1d, conv_padding
from .hold import Hold1d
from .inception import Inception1d, inception_unet, split_filters
from .pointwise import ChannelAffine, Pointwise, Snake1d, check_pointwise
from .reach import Reach
from .shuffle import PixelShuffle1d, PixelUnshuffle1d
from .spline import SplineUpsample1d, spline_kernel
from .strided import (StridedConv1d, TransposedConv1d, cached_strided_conv, cached_transposed_conv, strided_padding,
                      transposed_crop)

__all__ = ["StateCursor", "align", "align_phase", "cached_conv", "delay_line", "with_history", "PaddedConv1d", "conv_padding", "Hold1d",
           "Inception1d", "inception_unet", "split_filters", "Reach", "PixelShuffle1d", "PixelUnshuffle1d", "ChannelAffine", "Pointwise",
           "Snake1d", "check_pointwise", "SplineUpsample1d", "spline_kernel", "StridedConv1d", "TransposedConv1d",
           "cached_strided_conv", "cached_transposed_conv", "strided_padding", "transposed_crop"]
