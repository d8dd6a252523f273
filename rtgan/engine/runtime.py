"""Runtimes that execute a generator inside the streaming engine.

On a small network the per-op overhead of eager PyTorch dominates a 256-sample block.
Overlap-save runs the forward pass as a frozen TorchScript graph (traced once, constants
folded, the same numbers as eager); the stateful step (:class:`StepRunner`) runs in ONNX
Runtime when it is installed, else as frozen TorchScript. ``eager`` stays available for
models that cannot be traced.
"""
from __future__ import annotations

import logging
import warnings
from typing import Callable

import numpy as np
import torch

from ..models.base import Generator

log = logging.getLogger(__name__)

RUNTIMES = ("torchscript", "eager")


def compile_forward(model: Generator, runtime: str, example_samples: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable computing ``model(x)`` for ``x`` of shape ``(batch, channels_in, frames)``.

    Args:
        runtime: ``"eager"`` (the module itself) or ``"torchscript"`` (``torch.jit.trace`` on an
            input of ``example_samples`` samples, then ``torch.jit.freeze`` and
            ``optimize_for_inference``; falls back to eager with a warning if tracing fails).
        example_samples: trace length; a multiple of the model's total stride.

    Raises:
        ValueError: unknown runtime.
    """
    if runtime == "eager":
        return model
    if runtime != "torchscript":
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {RUNTIMES}")
    example = torch.zeros(1, model.port_in.channels, example_samples, device=next(model.parameters()).device)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # optimize_for_inference is deprecated, still works
            traced = torch.jit.trace(model.eval(), example, check_trace=False)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    except Exception as e:  # noqa: BLE001 - any tracing failure means: run eagerly
        log.warning("TorchScript tracing of %s failed (%s); running eagerly", getattr(model, "name", model), e)
        return model


# ---------------------------------------------------------------------------- stateful step
STEP_RUNTIMES = ("onnxruntime", "torchscript", "eager")


def default_step_runtime() -> str:
    """``"onnxruntime"`` when it is installed (least per-op overhead), else ``"torchscript"``."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torchscript"
    return "onnxruntime"


class StepRunner:
    """Runs a generator's stateful :meth:`~rtgan.models.base.Generator.step` in one runtime.

    Audio crosses the boundary as float32 numpy arrays ``(batch, channels, samples)``; the
    state stays in the runtime's own type (torch tensors or numpy arrays) and is passed in
    and returned explicitly. With ONNX Runtime the returned state lives in buffers the runner
    owns (see :class:`_BoundStep`): it stays valid until a step is taken from its successor,
    which is all a stream ever does.

    Args:
        model: generator (eval mode is set here), on the CPU.
        runtime: ``"onnxruntime"`` (the step exported by :func:`rtgan.export.export_step_onnx`),
            ``"torchscript"`` (traced, frozen), or ``"eager"``.
        threads: intra-op threads of the ONNX Runtime session (default: torch's setting);
            the torch runtimes follow ``torch.set_num_threads``.

    Raises:
        ValueError: unknown runtime.
        ImportError: ``onnxruntime`` asked for but not installed (``pip install rtgan[live]``).
    """

    def __init__(self, model: Generator, runtime: str = "onnxruntime", threads: int | None = None) -> None:
        if runtime not in STEP_RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; expected one of {STEP_RUNTIMES}")
        self.model = model.eval()
        self.runtime = runtime
        self.granule = model.stream_granule
        self.threads = threads
        # one compiled graph per (batch, samples): fixed shapes let TorchScript and ONNX Runtime
        # fold the reshapes of the superpixel layers; a stream runs at most two lengths
        self._compiled: dict[tuple[int, int], Callable] = {}
        if runtime == "onnxruntime":
            import onnxruntime  # noqa: F401  (fail here, not in the first audio callback)

    def prepare(self, batch: int, samples: int) -> None:
        """Compile the graph for ``(batch, samples)`` steps now (before real time starts)."""
        if self.runtime != "eager" and (batch, samples) not in self._compiled:
            self._compiled[(batch, samples)] = self._compile(batch, samples)

    def _compile(self, batch: int, samples: int) -> Callable:
        from ..export.onnx import StepModule, export_step_onnx
        if self.runtime == "onnxruntime":
            import onnxruntime as ort
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads or torch.get_num_threads()
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.log_severity_level = 3
            session = ort.InferenceSession(export_step_onnx(self.model, block_size=samples, batch=batch), opts,
                                           providers=["CPUExecutionProvider"])
            return _BoundStep(session, self.model, batch, samples)
        x = torch.zeros(batch, self.model.port_in.channels, samples)
        state = self.model.init_state(batch)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(StepModule(self.model).eval(), (x, *state), check_trace=False)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))

    def init_state(self, batch: int = 1):
        """The model's initial state for ``batch`` streams, in this runtime's type."""
        state = self.model.init_state(batch, dtype=torch.float32, device="cpu")
        if self.runtime == "onnxruntime":
            return [t.numpy() for t in state]
        return state

    @torch.no_grad()
    def __call__(self, x: np.ndarray, state, out: np.ndarray | None = None):
        """Process ``x`` of shape ``(batch, channels_in, n)``, ``n`` a multiple of the granule.

        Args:
            out: a float32 array ``(batch, channels_out, n * rate_ratio)`` to write the output
                into; with ONNX Runtime the step then allocates no array (the audio callback's path).

        Returns:
            ``(y, new_state)`` with ``y`` a float32 array ``(batch, channels_out, n * rate_ratio)``
            (``out`` when given).
        """
        if self.runtime == "eager":
            y, new = self.model.step(torch.from_numpy(x), state)
            return copy_into(y.numpy(), out), new
        key = (x.shape[0], x.shape[-1])
        fn = self._compiled.get(key)
        if fn is None:
            self.prepare(*key)
            fn = self._compiled[key]
        if self.runtime == "onnxruntime":
            return fn(x, state, out)
        res = fn(torch.from_numpy(x), *state)
        return copy_into(res[0].numpy(), out), tuple(res[1:])


def copy_into(y: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``y``, or ``out`` with ``y`` copied into it when one is given (same shape)."""
    if out is None:
        return y
    np.copyto(out, y)
    return out


class _BoundStep:
    """An ONNX Runtime step session with preallocated, double-buffered inputs and outputs.

    Two I/O bindings alternate: binding ``k`` reads the state from buffer set ``k`` and writes
    the new state into set ``1 - k``, so a step converts, allocates and copies no state on the
    Python side (``session.run`` with 38 numpy inputs spends ~40 us per call doing that). A
    state that is not one of the two sets (the initial state, or one from another chunk
    length) is first copied into set 0.
    """

    def __init__(self, session, model: Generator, batch: int, samples: int) -> None:
        from ..export.onnx import step_io_names
        inputs, outputs = step_io_names(model)
        shapes = model.state_shapes(batch)
        self.session = session
        self.x = np.zeros((batch, model.port_in.channels, samples), np.float32)
        self.y = np.zeros((batch, model.port_out.channels, model.output_length(samples)), np.float32)
        self.sets = tuple(tuple(np.zeros(shape, np.float32) for shape in shapes) for _ in range(2))
        self.bindings = []
        for k in (0, 1):
            b = session.io_binding()
            b.bind_cpu_input("x", self.x)
            for name, a in zip(inputs[1:], self.sets[k]):
                b.bind_cpu_input(name, a)
            b.bind_output("y", "cpu", 0, np.float32, self.y.shape, self.y.ctypes.data)
            for name, a in zip(outputs[1:], self.sets[1 - k]):
                b.bind_output(name, "cpu", 0, np.float32, a.shape, a.ctypes.data)
            self.bindings.append(b)

    def __call__(self, x: np.ndarray, state, out: np.ndarray | None = None) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        if state is self.sets[0]:
            k = 0
        elif state is self.sets[1]:
            k = 1
        else:
            k = 0
            for dst, src in zip(self.sets[0], state):
                np.copyto(dst, src)
        np.copyto(self.x, x)
        self.session.run_with_iobinding(self.bindings[k])
        return self.y.copy() if out is None else copy_into(self.y, out), self.sets[1 - k]
