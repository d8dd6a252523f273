"""Exporters: compile a generator's streaming step for other runtimes (ONNX Runtime, ...)."""
from .onnx import export_step_onnx, step_io_names

__all__ = ["export_step_onnx", "step_io_names"]
